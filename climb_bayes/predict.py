"""Predicted losses for any mixes and budgets: ``python -m climb_bayes.predict``.

``python -m climb_bayes.predict posterior=DIR/posterior.nc mixes=MIXES.csv tokens=1e9
output=PRED.csv``. ``MIXES.csv`` has one row per mix: an optional ``mix`` name column, an
optional ``tokens`` column (overrides the ``tokens`` argument row by row) and ``share_<lang>``
columns for the posterior's training languages (a training language without a column gets
share 0). The output has one row per (mix, tokens, evaluated language) with the posterior of
the noise-free loss (``mean``, ``q05``, ``q50``, ``q95``) and of a new observed loss with
observation noise (``pred_q05``, ``pred_q50``, ``pred_q95``). Both come from the posterior's
law (:class:`climb_bayes.model.loss_model.Law`), with its learned error in budget. A posterior from
a broken fit (:mod:`climb_bayes.model.health`) is refused unless ``allow_broken=true``; one from a
marginal fit is used with a note beside the numbers. The keys, their types, defaults and
meaning are those of :class:`climb_bayes.predict_config.PredictConfig`.
"""

from pathlib import Path

import hydra
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from omegaconf import DictConfig

import climb_bayes.config_store  # noqa: F401  (registers predict_schema before Hydra starts)
from climb_bayes.cli import budget, count, output_file, required, schema_keys
from climb_bayes.data.pilot_table import SHARE_PREFIX
from climb_bayes.data.table_files import read_csv
from climb_bayes.errors import InputError, exits_on_input_error, listing, rows
from climb_bayes.io import atomic_path
from climb_bayes.model.health import notice
from climb_bayes.model.posterior import Posterior, read_posterior
from climb_bayes.overrides import check_command_line

QUANTILES = (0.05, 0.5, 0.95)


def predictive_losses(posterior: Posterior, mean: jax.Array, tokens: np.ndarray,
                      rng_key: jax.Array) -> jax.Array:
    """Draws of a new run's observed loss, same shape as ``mean`` ``(sample, mix, target)``,
    the mixes at budgets ``tokens`` ``(mix,)``: ``mean + u + sigma(D) * StudentT(nu)``, with
    ``sigma(D)`` the noise at that budget (:meth:`Posterior.noise_sd`; Gaussian where ``nu``
    is infinite) and ``u`` a new run's offset
    (:func:`climb_bayes.model.run_effect.run_likelihood`, correlated across languages;
    its slope is zero at its last checkpoint, the target) when the fit has one."""
    noise_key, run_key = jax.random.split(rng_key)
    noise = (jax.random.normal(noise_key, mean.shape) if np.isinf(posterior.nu).all()
             else jax.random.t(noise_key, jnp.asarray(posterior.nu)[:, None, None], mean.shape))
    observed = mean + jnp.asarray(posterior.noise_sd(tokens)) * noise
    if posterior.run_sd is None:
        return observed
    z = jax.random.normal(run_key, mean.shape)
    offset = jnp.einsum("sij,smj->smi", jnp.asarray(posterior.run_correlation), z)
    return observed + jnp.asarray(posterior.run_sd)[:, None, :] * offset


def read_mixes(path: str | Path, sources: list[str]) -> pd.DataFrame:
    """Read and check a mixes CSV; returns it with a ``mix`` column and every source's share."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"mixes file {path} does not exist; it needs one row per mix with "
                         f"share_<lang> columns for {sources}.")
    mixes = read_csv(path)
    share_columns = [c for c in mixes.columns if c.startswith(SHARE_PREFIX)]
    unknown = [c for c in share_columns if c.removeprefix(SHARE_PREFIX) not in sources]
    other = [c for c in mixes.columns if c not in (*share_columns, "mix", "tokens")]
    if unknown or other or not share_columns:
        raise InputError(
            f"{path}: columns {unknown + other or '(no share_ columns)'} are not allowed; the "
            f"posterior's training languages are {sources}, so use share_<lang> columns for "
            f"those, plus optional 'mix' and 'tokens' columns.")
    if "mix" not in mixes:
        mixes.insert(0, "mix", [f"mix{i + 1}" for i in range(len(mixes))])
    for source in sources:
        mixes[f"{SHARE_PREFIX}{source}"] = mixes.get(f"{SHARE_PREFIX}{source}", 0.0)
    shares = mixes[[f"{SHARE_PREFIX}{s}" for s in sources]].to_numpy(dtype=np.float64)
    bad = ~(np.isfinite(shares).all(1) & (shares >= 0).all(1) & (shares <= 1).all(1)
            & (np.abs(shares.sum(1) - 1.0) <= 1e-6))
    if bad.any():
        raise InputError(f"{path}: the shares of mixes {listing(mixes['mix'][bad])} "
                         f"({rows(np.flatnonzero(bad))}) are not in [0, 1] or do not sum to 1 "
                         f"(within 1e-6); fix those rows.")
    return mixes


def mix_budgets(mixes: pd.DataFrame, tokens: float | None, path: str | Path) -> np.ndarray:
    """Each mix's budget: its ``tokens`` column, else the ``tokens`` argument (a budget > 0,
    checked by the caller); the column's values must be finite numbers > 0."""
    if "tokens" not in mixes and tokens is None:
        raise InputError(f"no budget for the mixes in {path}: pass tokens=N (total training "
                         f"tokens) or add a 'tokens' column.")
    if "tokens" not in mixes:
        return np.full(len(mixes), float(tokens))
    column = mixes["tokens"]
    budgets = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    empty = column.isna().to_numpy()
    if tokens is not None:
        budgets = np.where(empty, float(tokens), budgets)
    bad = ~(np.isfinite(budgets) & (budgets > 0))
    if bad.any():
        shown = listing("empty" if e else v for e, v in zip(empty[bad], column[bad], strict=True))
        raise InputError(f"{path}: the 'tokens' column must hold finite numbers > 0, but "
                         f"{rows(np.flatnonzero(bad))} hold {shown}; fix these rows (empty ones "
                         f"take tokens=N).")
    return budgets


def summarise(mean: np.ndarray, predictive: np.ndarray, mixes: pd.DataFrame,
              budgets: np.ndarray, targets: list[str]) -> pd.DataFrame:
    """Long table of posterior and predictive quantiles, one row per (mix, language)."""
    q = np.quantile(mean, QUANTILES, axis=0)
    pq = np.quantile(predictive, QUANTILES, axis=0)
    n_mix, n_target = mean.shape[1:]
    return pd.DataFrame({
        "mix": np.repeat(mixes["mix"].to_numpy(), n_target),
        "tokens": np.repeat(budgets, n_target),
        "language": np.tile(targets, n_mix),
        "mean": mean.mean(axis=0).ravel(),
        **{f"q{round(100 * p):02d}": q[i].ravel() for i, p in enumerate(QUANTILES)},
        **{f"pred_q{round(100 * p):02d}": pq[i].ravel() for i, p in enumerate(QUANTILES)},
    })


def predict(posterior: Posterior, mixes: pd.DataFrame, budgets: np.ndarray,
            seed: int = 0) -> pd.DataFrame:
    """Posterior and posterior-predictive loss quantiles for every mix and language."""
    shares = mixes[[f"{SHARE_PREFIX}{s}" for s in posterior.sources]].to_numpy()
    law_key = jax.random.PRNGKey(seed)  # the draws solve and report use with seed 0
    noise_key = jax.random.fold_in(law_key, 1)
    mean = posterior.law.predict_loss(shares, budgets, law_key)
    predictive = predictive_losses(posterior, mean, budgets, noise_key)
    return summarise(np.asarray(mean), np.asarray(predictive), mixes, budgets, posterior.targets)


@hydra.main(config_path="../conf", config_name="predict", version_base="1.3")
@exits_on_input_error
def main(cfg: DictConfig) -> None:
    """Read the posterior and the mixes, write the prediction table (``cfg`` typed by
    :class:`~climb_bayes.predict_config.PredictConfig`; every value checked first)."""
    schema_keys(cfg)
    tokens = None if cfg.tokens is None else budget(cfg.tokens, example="tokens=1e9")
    seed = count(cfg.seed, "seed", "seed", "seed=0", minimum=0)
    path = required(cfg, "mixes", "mixes CSV (share_<lang> columns, optional mix and tokens)",
                    "mixes=mixes.csv")
    output = output_file(cfg.output, "output", "predictions.csv")
    posterior = read_posterior(cfg.posterior, allow_broken=cfg.allow_broken)
    mixes = read_mixes(path, posterior.sources)
    table = predict(posterior, mixes, mix_budgets(mixes, tokens, path), seed)
    with atomic_path(output) as tmp:
        table.to_csv(tmp, index=False)
    print(table.to_string(index=False, float_format="%.4f"))
    if (message := notice(posterior.health, str(cfg.posterior))) is not None:
        print(message)
    print(f"wrote {output}")


if __name__ == "__main__":
    check_command_line("predict")
    main()
