"""Where a decision extrapolates, in words: a target budget far beyond the pilots', a share
outside the range the mixed pilots gave a language, or an effective share on the law's floor.
"""

import numpy as np

from climb_bayes.model.law import FLOOR_REGION
from climb_bayes.model.loss_model import Law


def extrapolation_warnings(sources: list[str], pilot_shares: np.ndarray, pilot_tokens: float,
                           target_tokens: float, mixes: dict[str, np.ndarray],
                           budget_factor: float) -> list[str]:
    """Where a decision extrapolates, in words: a target budget beyond ``budget_factor`` times
    the largest pilot budget ``pilot_tokens``, and every optimised mix's share of a language
    outside the range of shares the *mixed* pilots gave it. ``pilot_shares`` is ``(run,
    source)``. Monolingual pilots (one share of 1) do not count: they give every language the
    shares 0 and 1, which would hide any extrapolation in the mix.
    """
    messages = []
    if target_tokens > budget_factor * pilot_tokens:
        messages.append(f"target_tokens = {target_tokens:.3g} is "
                        f"{target_tokens / pilot_tokens:.1f}x the largest pilot budget "
                        f"({pilot_tokens:.3g}), beyond the guard factor {budget_factor:g}: the "
                        f"law is extrapolating in D; check its calibration there (pilots at "
                        f"larger budgets pin it down).")
    mixed = pilot_shares[pilot_shares.max(axis=1) < 1.0 - 1e-9]
    if not len(mixed):
        return [*messages, "no pilot mixes more than one language: every optimised mix "
                "extrapolates in the mix; add mixed pilots (python -m climb_bayes.design)."]
    low, high = mixed.min(axis=0), mixed.max(axis=0)
    for name, shares in mixes.items():
        for j, source in enumerate(sources):
            outside = max(low[j] - shares[j], shares[j] - high[j])
            if outside > 1e-9:
                side = "below" if shares[j] < low[j] else "above"
                messages.append(f"{name}: the share of {source} ({shares[j]:.3f}) is "
                                f"{outside:.3f} {side} the range the mixed pilots gave it "
                                f"[{low[j]:.3f}, {high[j]:.3f}]: the law is extrapolating in "
                                f"the mix.")
    return messages


def mean_effective_shares(law: Law, shares: np.ndarray, target_tokens: float) -> np.ndarray:
    """Posterior mean of every target's effective share ``rt_i`` at each mix ``(mix,
    source)``, at the target budget: ``(mix, target)``."""
    return np.mean(law.effective_share(shares, np.full(len(shares), target_tokens)), axis=0)


def floor_warnings(law: Law, weights: np.ndarray, target_tokens: float,
                   mixes: dict[str, np.ndarray]) -> list[str]:
    """Every mix of ``mixes`` that leaves a weighted language's effective share ``rt_i``
    (posterior mean) below :data:`climb_bayes.model.law.FLOOR_REGION`, where the law rests on its
    floor rather than on anything the pilots measured, in words. The mixes optimised on the
    posterior keep above it (:func:`climb_bayes.decide.optimal_mix.floor_constraint`) unless the
    bounds
    forbid it; ``climb_two_step`` and ``isolated`` (optimised on a law without transfer) may
    not."""
    names = list(mixes)
    mean = mean_effective_shares(law, np.stack([mixes[n] for n in names]), target_tokens)
    return [f"{name}: the effective share of {target} (tokens of its own plus what transfer "
            f"gives it) is {mean[m, i]:.2g} (posterior mean), below {FLOOR_REGION:g}, on the "
            f"law's floor where no pilot measures it; raise min_share.{target}."
            for m, name in enumerate(names) for i, target in enumerate(law.targets)
            if weights[i] > 0 and mean[m, i] < FLOOR_REGION * (1 - 1e-6)]
