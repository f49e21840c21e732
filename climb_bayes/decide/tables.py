"""Evaluating the mixes under the posterior: per-draw losses, and the tables the solver writes
(the comparison, the shares of the near-optimal mixes, each draw's optimal shares), as data
frames; :mod:`climb_bayes.decide.mix_directory` writes them.
"""

import numpy as np
import pandas as pd

from climb_bayes.data.pilot_table import SHARE_PREFIX
from climb_bayes.decide.compare import gains, near_optimal_range
from climb_bayes.decide.interior import Solution
from climb_bayes.decide.mixes import clean_shares
from climb_bayes.model.posterior import Posterior

QUANTILES = (0.05, 0.5, 0.95)
#: How many per-draw optima join the named mixes as candidates of the near-optimal set.
NEAR_OPTIMAL_CANDIDATES = 400


def weighted_loss_draws(posterior: Posterior, shares: np.ndarray, target_tokens: float,
                        weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-draw losses ``(sample, mix, target)`` and weighted losses ``(sample, mix)``."""
    losses = np.asarray(posterior.law.predict_loss(shares, np.full(len(shares), target_tokens)),
                        dtype=np.float64)
    return losses, losses @ weights


def comparison_table(names: list[str], shares: np.ndarray, weighted: np.ndarray,
                     sources: list[str], reference: str, optima: np.ndarray, delta: float
                     ) -> pd.DataFrame:
    """One row per mix: the weighted loss's posterior mean and 90% interval; the gain over
    ``reference`` and ``P(gain > delta)``, and ``P(regret < delta)`` against each draw's own
    optimum ``optima`` (:func:`climb_bayes.decide.compare.gains`); ``P(W(mix) <
    W(posterior_mean))``."""
    q = np.quantile(weighted, (0.05, 0.95), axis=0)
    best = weighted[:, names.index("posterior_mean")][:, None]
    table = pd.concat([
        pd.DataFrame({"mix": names, "weighted_loss_mean": weighted.mean(0),
                      "weighted_loss_q05": q[0], "weighted_loss_q95": q[1]}),
        gains(weighted, names.index(reference), delta, optima),
        pd.DataFrame({"p_beats_posterior_mean": (weighted < best).mean(0)})], axis=1)
    for j, source in enumerate(sources):
        table[f"{SHARE_PREFIX}{source}"] = shares[:, j]
    return table


def near_optimal_table(posterior: Posterior, named: np.ndarray, optima: Solution,
                       optimum_values: np.ndarray, target_tokens: float, weights: np.ndarray,
                       delta: float) -> pd.DataFrame:
    """:func:`climb_bayes.decide.compare.near_optimal_range` over the named mixes and up to
    :data:`NEAR_OPTIMAL_CANDIDATES` per-draw optima (evenly spaced draws)."""
    keep = np.unique(np.linspace(0, len(optima.x) - 1, NEAR_OPTIMAL_CANDIDATES).astype(int))
    candidates = np.vstack([named, np.stack([clean_shares(x) for x in optima.x[keep]])])
    _, weighted = weighted_loss_draws(posterior, candidates, target_tokens, weights)
    return near_optimal_range(candidates, weighted, optimum_values, delta, posterior.sources)


def optimal_share_tables(optima: np.ndarray, sources: list[str]
                         ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Summary (one row per language: mean, q05, q50, q95) and the draws of the optimal share."""
    q = np.quantile(optima, QUANTILES, axis=0)
    summary = pd.DataFrame({"language": sources, "mean": optima.mean(0), "q05": q[0],
                            "q50": q[1], "q95": q[2]})
    draws = pd.DataFrame(optima, columns=[f"{SHARE_PREFIX}{s}" for s in sources])
    draws.insert(0, "draw", np.arange(len(optima)))
    return summary, draws
