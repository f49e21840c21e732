"""Can the pilots tell how far the law is from the truth? A leave-future-out check.

    python -m benchmarks.leave_future_out               # 6 worlds per setting, real pilots
    python -m benchmarks.leave_future_out --worlds 3    # quicker

``law.extrapolation_sd`` (the law's own error beyond the pilots, nats per e-fold; see
:meth:`climb_bayes.model.loss_model.Law.extrapolation_error`) is a prior belief. This benchmark
measures whether it could be learned from the pilots instead. For each pilot table it keeps the
observations at up to a third of the largest pilot budget (the *past*), fits the law to them,
and predicts the rest (the *future*, 1.5x and 3x beyond the past). The fit is the MAP of
:func:`climb_bayes.model.map_search.find_map` (every pooled site centred, so it is the MAP of the
pooled values themselves) and 1000 draws of its Laplace approximation, a cheap stand-in for
NUTS. The future's residuals give the maximum-likelihood ``extrapolation_sd`` (``tau_lfo``:
residual ``~ Normal(0, v + (tau ln(D / D_past))^2)``, ``v`` the predictive variance). In the
simulated worlds (settings of :mod:`benchmarks.simulation.settings`, correct law
``law_m4_pos_10x`` and misspecified ``dml_m4_10x``) the same fit to all the pilots also predicts
100 held-out runs at the target (10x the largest pilot), whose residuals give the ``tau_target``
that would have been right there. If the check worked, ``tau_lfo`` would track ``tau_target``:
near 0 for the correct law, large for the wrong one. The bundled real pilots
(``climb_bayes/data/example``) get the past/future part only. One row per world, then means.
"""

import argparse
from pathlib import Path

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import scipy.optimize
from jax.flatten_util import ravel_pytree
from numpyro.infer.util import constrain_fn

from benchmarks.simulation.scoring import heldout
from benchmarks.simulation.settings import SETTINGS, make_world
from climb_bayes.data.pilot_table import SHARE_PREFIX, PilotTable  # noqa: E402
from climb_bayes.data.table_files import read_pilots  # noqa: E402
from climb_bayes.data.validation import validate_pilots  # noqa: E402
from climb_bayes.fit import bundled_example  # noqa: E402
from climb_bayes.model.fitting import model_data
from climb_bayes.model.health import MARGINAL, Health  # noqa: E402
from climb_bayes.model.law import LawParams  # noqa: E402
from climb_bayes.model.loss_model import Law  # noqa: E402
from climb_bayes.model.map_search import find_map  # noqa: E402
from climb_bayes.model.numpyro_model import LAW_SITES, POOLED_SITES, climb_model  # noqa: E402
from climb_bayes.model.posterior import Posterior  # noqa: E402
from climb_bayes.model.priors import Priors
from climb_bayes.predict import predictive_losses  # noqa: E402

FORM = "source_saturating"
PAST_FRACTION = 1 / 3
DRAWS = 1000
#: The stand-in posterior is not a NUTS fit, so it has no sampler diagnostics to judge.
LAPLACE = Health(MARGINAL, ("a Laplace approximation, not NUTS",), np.nan, np.nan, np.nan, 0,
                 0, np.nan)
SIM_SETTINGS = ("law_m4_pos_10x", "dml_m4_10x")


def laplace_posterior(table: PilotTable, seed: int) -> Posterior:
    """Draws of the law from the Laplace approximation at the MAP of ``table``."""
    data, loss, reference = model_data(table)
    kwargs = {"data": data, "priors": Priors(), "form": FORM, "centred": POOLED_SITES,
              "loss": loss}
    optima = find_map(climb_model, kwargs, jax.random.PRNGKey(seed), num_starts=4,
                      max_iter=3000)
    flat, unravel = ravel_pytree(jax.tree.map(lambda x: x[0], optima.z))
    z = np.random.default_rng(seed).multivariate_normal(np.asarray(flat, np.float64),
                                                        optima.covariance, DRAWS)
    sites = jax.vmap(lambda f: constrain_fn(climb_model, (), kwargs, unravel(f),
                                            return_deterministic=True))(jnp.asarray(z))
    law = Law(LawParams(*(np.asarray(sites[n]) for n in LAW_SITES)), reference, table.sources,
              table.targets, FORM, pilot_tokens=float(table.frame["tokens"].max()))
    return Posterior(law=law, sigma=np.asarray(sites["sigma"]), nu=np.full(DRAWS, Priors().nu),
                     idata=az.InferenceData(), health=LAPLACE)


def residuals(posterior: Posterior, shares: np.ndarray, tokens: np.ndarray,
              observed: np.ndarray, target: np.ndarray | None = None, seed: int = 0
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Observed minus predicted mean, the predictive variance, and whether each observation
    lies in its 90% predictive interval; ``target`` picks one language per row (else all)."""
    mean = posterior.law.predict_loss(shares, tokens)
    draws = np.asarray(predictive_losses(posterior, mean, tokens, jax.random.PRNGKey(seed)),
                       np.float64)
    if target is not None:
        draws = draws[:, np.arange(len(target)), target]
    low, high = np.quantile(draws, (0.05, 0.95), axis=0)
    return (observed - draws.mean(0), draws.var(0),
            (observed >= low) & (observed <= high))


def likeliest_sd(residual: np.ndarray, variance: np.ndarray, efolds: np.ndarray) -> float:
    """Maximum-likelihood ``tau`` of ``residual ~ Normal(0, variance + (tau * efolds)^2)``."""
    def negative_log_likelihood(log_tau: float) -> float:
        total = variance + np.exp(2 * log_tau) * efolds ** 2
        return 0.5 * float(np.sum(np.log(total) + residual ** 2 / total))

    found = scipy.optimize.minimize_scalar(negative_log_likelihood, bounds=(-12.0, 2.0),
                                           method="bounded")
    return float(np.exp(found.x)) if found.x > -11.9 else 0.0


def future_check(table: PilotTable, seed: int) -> dict[str, float]:
    """Fit the past, predict the future: bias, RMSE, 90% coverage and ``tau_lfo``."""
    frame = table.frame
    past = validate_pilots(frame[frame["tokens"] <= PAST_FRACTION * frame["tokens"].max()]
                           .reset_index(drop=True))
    horizon = float(past.frame["tokens"].max())
    future = frame[frame["tokens"] > horizon]
    posterior = laplace_posterior(past, seed)
    tokens = future["tokens"].to_numpy(np.float64)
    residual, variance, inside = residuals(
        posterior, future[[f"{SHARE_PREFIX}{s}" for s in past.sources]].to_numpy(), tokens,
        future["loss"].to_numpy(np.float64),
        future["language"].map(past.targets.index).to_numpy(), seed)
    return {"future_obs": len(future), "lfo_bias": residual.mean(),
            "lfo_rmse": np.sqrt(np.mean(residual ** 2)), "lfo_pred_sd": np.sqrt(variance).mean(),
            "lfo_cover90": inside.mean(),
            "tau_lfo": likeliest_sd(residual, variance, np.log(tokens / horizon))}


def target_check(table: PilotTable, world: object, target: float, seed: int
                 ) -> dict[str, float]:
    """Fit all the pilots, predict held-out runs at the target: bias, 90% coverage, ``tau``."""
    posterior = laplace_posterior(table, seed)
    shares, tokens, _, observed = heldout(world, 100, (target,), np.random.default_rng(seed))
    residual, variance, inside = residuals(posterior, shares, tokens, observed, seed=seed)
    efolds = np.broadcast_to(np.log(tokens / posterior.law.pilot_tokens)[:, None], residual.shape)
    return {"target_bias": residual.mean(), "target_cover90": inside.mean(),
            "tau_target": likeliest_sd(residual.ravel(), variance.ravel(), efolds.ravel())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", type=int, default=6)
    parser.add_argument("--output", default=str(Path(__file__).resolve().parent / "results"
                                                / "leave_future_out.csv"))
    args = parser.parse_args()
    rows = [{"setting": "real_example_pilots", "seed": 0,
             **future_check(read_pilots(bundled_example()), 0)}]
    for name in SIM_SETTINGS:
        for seed in range(args.worlds):
            frame, world, _, target = make_world(SETTINGS[name], seed)
            table = validate_pilots(frame)
            rows.append({"setting": name, "seed": seed, **future_check(table, seed),
                         **target_check(table, world, target, seed)})
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    table.to_csv(args.output, index=False)
    summary = table.drop(columns="seed").groupby("setting", sort=False).mean()
    summary.insert(0, "worlds", table.groupby("setting", sort=False).size())
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(summary.to_string(float_format=lambda v: f"{v:.4g}"))


if __name__ == "__main__":
    main()
