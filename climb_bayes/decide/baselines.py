"""Heuristic mixes that the solver's mixes are compared with (pure functions of arrays).

``available`` is the number of tokens of each training language's corpus ``A_i``;
``budget`` the total training tokens ``D``; ``max_epochs`` the repetition cap ``K``.
"""

import numpy as np


def uniform_mix(count: int) -> np.ndarray:
    """``r_i = 1 / m``."""
    return np.full(count, 1.0 / count)


def natural_mix(available: np.ndarray) -> np.ndarray:
    """Proportional to the data: ``r_i = A_i / sum_j A_j``."""
    available = np.asarray(available, dtype=np.float64)
    return available / available.sum()


def temperature_mix(available: np.ndarray, exponent: float = 0.3) -> np.ndarray:
    """Temperature sampling: ``r_i = A_i^e / sum_j A_j^e`` (``e = 1 / T``; ``e = 0.3`` is the
    mT5 / XLM-R choice ``T = 3.33``; ``e = 1`` is natural, ``e = 0`` uniform)."""
    powered = np.asarray(available, dtype=np.float64) ** exponent
    return powered / powered.sum()


def unimax_mix(available: np.ndarray, budget: float, max_epochs: float = 4.0) -> np.ndarray:
    """UniMax (Chung et al. 2023, Algorithm 1): a uniform budget with a per-language epoch cap.

    Visit the languages from the smallest corpus to the largest; each gets the remaining budget
    split evenly over the languages not yet visited, ``b_i = B_rem / (m - rank_i)``, capped at
    ``K * A_i`` (at most ``K`` epochs); what a capped language cannot use goes to the larger
    ones. ``r_i = b_i / D``. If even the caps cannot use the budget (``K * sum A < D``) the
    result does not sum to 1; the caller checks feasibility first.
    """
    available = np.asarray(available, dtype=np.float64)
    allocation = np.zeros_like(available)
    remaining = float(budget)
    order = np.argsort(available, kind="stable")
    for rank, index in enumerate(order):
        allocation[index] = min(remaining / (len(order) - rank), max_epochs * available[index])
        remaining -= allocation[index]
    return allocation / budget
