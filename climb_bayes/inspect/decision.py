"""The decision as the report shows it, computed from the posterior: each mix's predicted loss
at the target budget, its difference from the reference mix draw by draw, and its weighted gain
over the reference with ``P(gain > delta)``; the solver's own numbers are kept beside them."""

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from climb_bayes.decide.compare import gains
from climb_bayes.decide.decision import noise_margin
from climb_bayes.decide.mix_file import MixFile
from climb_bayes.inspect.mix_directory import MixDirectory, solver_comparison
from climb_bayes.model.posterior import Posterior

#: Name of the reference mix every mix is compared with.
UNIFORM = "uniform"
#: Label of the weighted loss over all evaluated languages in the decision figure.
WEIGHTED = "weighted total"
LEVELS = (0.05, 0.5, 0.95)


def with_uniform(shares: pd.DataFrame) -> pd.DataFrame:
    """The mixes with a ``uniform`` row (equal shares) added when there is none."""
    if UNIFORM in shares.index:
        return shares
    uniform = pd.DataFrame([np.full(shares.shape[1], 1.0 / shares.shape[1])],
                           index=pd.Index([UNIFORM], name=shares.index.name),
                           columns=shares.columns)
    return pd.concat([shares, uniform])


def mix_losses(posterior: Posterior, shares: pd.DataFrame, tokens: float) -> np.ndarray:
    """Noise-free loss of every draw, mix and target at ``tokens``: ``(sample, mix, target)``."""
    budgets = np.full(len(shares), float(tokens))
    return posterior.law.predict_loss(shares[posterior.sources].to_numpy(), budgets)


def _quantile_columns(draws: np.ndarray) -> dict[str, np.ndarray]:
    quantiles = np.quantile(draws, LEVELS, axis=0)
    return {"mean": draws.mean(0),
            **{f"q{round(100 * p):02d}": q for p, q in zip(LEVELS, quantiles, strict=True)}}


def loss_table(losses: np.ndarray, mixes: list[str], targets: list[str],
               files: Mapping[str, MixFile] | None = None) -> pd.DataFrame:
    """One row per (mix, language): posterior mean and 5/50/95% quantiles of the loss.

    ``solver_mean`` is the solver's own predicted mean from the mix's file (for a cross-check),
    else NaN.
    """
    columns = {k: v.ravel() for k, v in _quantile_columns(losses).items()}
    table = pd.DataFrame({"mix": np.repeat(mixes, len(targets)),
                          "language": np.tile(targets, len(mixes)), **columns})
    files = files or {}
    table["solver_mean"] = [files[m].predicted_mean(t) if m in files else np.nan
                            for m, t in zip(table["mix"], table["language"], strict=True)]
    return table


def loss_differences(losses: np.ndarray, mixes: list[str], targets: list[str],
                     reference: str = UNIFORM) -> pd.DataFrame:
    """Per draw, each mix's loss minus the ``reference`` mix's; quantiles per (mix, language)."""
    ref = mixes.index(reference)
    keep = [m for m, name in enumerate(mixes) if name != reference]
    difference = losses[:, keep, :] - losses[:, ref:ref + 1, :]
    return loss_table(difference, [mixes[m] for m in keep], targets).drop(
        columns="solver_mean")


def decision_table(losses: np.ndarray, mixes: list[str], weights: np.ndarray,
                   reference: str, delta: float, comparison: pd.DataFrame | None = None
                   ) -> pd.DataFrame:
    """Per mix: posterior of the weighted loss and of its gain over ``reference`` (draw by
    draw), and ``P(gain > delta)`` (:func:`climb_bayes.decide.compare.gains`), computed here; NaN
    where the weighted losses are not numbers, and for the reference itself.

    Columns of the solver's ``comparison.csv`` are appended with a ``solver_`` prefix.
    """
    weighted = losses @ weights  # (sample, mix)
    versus = gains(weighted, mixes.index(reference), delta)
    versus.loc[~np.isfinite(weighted).all(0), "p_gain"] = np.nan
    table = pd.concat([
        pd.DataFrame({"mix": mixes, **{f"weighted_loss_{k}": v
                                       for k, v in _quantile_columns(weighted).items()}}),
        versus], axis=1)
    table.loc[table["mix"] == reference, "p_gain"] = np.nan
    if comparison is not None and "mix" in comparison.columns:
        solver = comparison.drop_duplicates("mix").set_index("mix").add_prefix("solver_")
        table = table.join(solver, on="mix")
    return table


def with_weighted(losses: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The losses with the weighted loss appended as one more target: ``(sample, mix, t + 1)``."""
    return np.concatenate([losses, (losses @ weights)[..., None]], axis=-1)


def is_number(value: Any) -> bool:
    """Whether ``value`` (read from a file, of any type) is a finite number."""
    try:
        return bool(np.isfinite(float(value)))
    except (TypeError, ValueError):
        return False


def reference_and_margin(mixes: MixDirectory, names: list[str], posterior: Posterior,
                         weights: np.ndarray) -> tuple[str, float, str]:
    """The reference mix and ``delta`` the solver compared against, where its files say and
    the reference is among ``names``; else ``uniform`` and the run-to-run noise of the
    posterior (:func:`climb_bayes.decide.decision.noise_margin`). Also where ``delta`` came from."""
    comparison = solver_comparison(mixes)
    reference = comparison.get("reference")
    reference = reference if reference in names else UNIFORM
    if is_number(comparison.get("delta")):
        return reference, float(comparison["delta"]), "the solver's delta"
    delta, source = noise_margin(posterior, weights)
    return reference, delta, source


def mix_markers(shares: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Shares of the mixes worth marking on the optimal-share figure."""
    names = [n for n in ("posterior_mean", UNIFORM) if n in shares.index]
    return {n: shares.loc[n].to_dict() for n in names}
