"""Comparing mixes under the posterior: the gain over a reference, near-optimality, and doubt.

With posterior draws ``s = 1..S`` of the weighted loss ``W_s(r)``, each draw's own optimum
``W_s(r*_s)`` and a margin ``delta`` (nats):

- gain of a mix over the reference mix ``r0``: ``G_s(r) = W_s(r0) - W_s(r)`` (positive: better);
  reported as its posterior mean and 90% interval, and ``P(gain > delta) = mean_s [G_s > delta]``;
- near-optimality: ``P(regret < delta) = mean_s [W_s(r) - W_s(r*_s) < delta]``;
- ``delta`` defaults to the run-to-run noise of ``W`` the pilots show (:func:`run_noise`): a
  gain smaller than that could not be seen in one training run.

Pure functions of arrays.
"""

import numpy as np
import pandas as pd

#: ``P(gain > delta)`` below this: the evidence cannot tell the mix from the reference.
DOUBT_THRESHOLD = 0.8
#: ``P(regret < delta)`` at or above this puts a mix in the near-optimal set.
NEAR_OPTIMAL_LEVEL = 0.8


def bounded_uniform(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """The mix closest to uniform within the bounds (water-filling):
    ``r_i = clip(t, lower_i, upper_i)`` with ``t`` such that ``sum_i r_i = 1``. Uniform where
    it is feasible; UniMax (Chung et al. 2023) where the only bounds are epoch caps."""
    if lower.sum() > 1.0 + 1e-12 or upper.sum() < 1.0 - 1e-12:
        raise ValueError(f"no mix within the bounds {lower} and {upper}")
    low, high = 0.0, 1.0
    for _ in range(200):
        t = 0.5 * (low + high)
        low, high = (t, high) if np.clip(t, lower, upper).sum() < 1.0 else (low, t)
    shares = np.clip(0.5 * (low + high), lower, upper)
    return shares / shares.sum()


def run_noise(spread: np.ndarray, weights: np.ndarray) -> float:
    """The run-to-run spread of ``W = sum_i w_i L_i``: the posterior median of
    ``sqrt(sum_i w_i^2 s_i^2)``, ``spread`` ``(draw, target)`` the per-language spread of one
    run's loss (the observation noise, or the run effect's scale where the fit has one)."""
    return float(np.median(np.sqrt((np.asarray(spread) ** 2) @ (np.asarray(weights) ** 2))))


def gains(weighted: np.ndarray, reference: int, delta: float, optima: np.ndarray | None = None
          ) -> pd.DataFrame:
    """Per mix (columns of ``weighted``, ``(draw, mix)``): ``gain_mean``, ``gain_q05``,
    ``gain_q95`` over the mix at index ``reference``, ``p_gain`` (``P(gain > delta)``) and,
    given each draw's optimum ``optima`` ``(draw,)``, ``p_near_optimal`` (``P(regret <
    delta)``)."""
    gain = weighted[:, [reference]] - weighted
    q05, q95 = np.quantile(gain, (0.05, 0.95), axis=0)
    table = pd.DataFrame({"gain_mean": gain.mean(0), "gain_q05": q05, "gain_q95": q95,
                          "p_gain": (gain > delta).mean(0)})
    if optima is not None:
        table["p_near_optimal"] = (weighted - optima[:, None] < delta).mean(0)
    return table


def near_optimal_range(candidates: np.ndarray, weighted: np.ndarray, optima: np.ndarray,
                       delta: float, sources: list[str], level: float = NEAR_OPTIMAL_LEVEL
                       ) -> pd.DataFrame:
    """The shares the evidence leaves open: among the candidate mixes ``(mix, source)`` with
    weighted losses ``(draw, mix)``, those whose ``P(regret < delta) >= level``; per language
    the smallest and largest share across them (NaN when no candidate qualifies) and how many
    qualified."""
    near = (weighted - optima[:, None] < delta).mean(0) >= level
    chosen = candidates[near]
    return pd.DataFrame({
        "language": sources,
        "min": chosen.min(0) if len(chosen) else np.full(len(sources), np.nan),
        "max": chosen.max(0) if len(chosen) else np.full(len(sources), np.nan),
        "near_optimal_mixes": int(near.sum()), "candidates": len(candidates)})


def recommendation(p_gain: float, mix: str, reference: str, delta: float,
                   threshold: float = DOUBT_THRESHOLD) -> tuple[str, str]:
    """``(recommended mix, the reason in words)``: ``mix`` when ``P(gain > delta)`` over the
    reference reaches ``threshold``, else the reference."""
    if p_gain >= threshold:
        return mix, (f"{mix} beats {reference} by more than {delta:.3g} nats (the run-to-run "
                     f"noise) with probability {p_gain:.2f} >= {threshold:g}: train {mix}.")
    return reference, (f"the evidence cannot tell {mix} from {reference}: it beats it by more "
                       f"than {delta:.3g} nats (the run-to-run noise) with probability only "
                       f"{p_gain:.2f} < {threshold:g}. Train {reference}, or run more pilots.")
