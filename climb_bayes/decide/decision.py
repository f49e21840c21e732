"""The decision in memory: every mix, compared under the posterior, and the recommendation
(:func:`decision`).
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from climb_bayes.decide.compare import bounded_uniform, recommendation, run_noise
from climb_bayes.decide.inputs import Options
from climb_bayes.decide.interior import Solution
from climb_bayes.decide.mixes import baseline_mixes, optimised_mixes
from climb_bayes.decide.objectives import Problem
from climb_bayes.decide.optimal_mix import is_feasible, per_draw_optima, per_draw_optimal_values
from climb_bayes.decide.tables import comparison_table, weighted_loss_draws
from climb_bayes.model.posterior import Posterior


def noise_margin(posterior: Posterior, weights: np.ndarray) -> tuple[float, str]:
    """The default ``delta`` and where it comes from: the run-to-run noise of the weighted
    loss (:func:`climb_bayes.decide.compare.run_noise`) from the run effect's scale where the fit
    has
    one, else from the observation noise."""
    if posterior.run_sd is not None:
        return run_noise(posterior.run_sd, weights), "the run effect's scale (run_sd)"
    return run_noise(posterior.sigma, weights), "the observation noise (sigma)"


@dataclass(frozen=True)
class Decision:
    """Every mix and what the posterior says of it (:func:`decision`)."""

    names: list[str]  # optimised mixes, heuristics, then the reference if it is added
    shares: np.ndarray  # (mix, source)
    losses: np.ndarray  # (draw, mix, target) at the target budget
    table: pd.DataFrame  # :func:`comparison_table`, one row per mix in ``names``' order
    info: dict[str, dict[str, Any]]  # each optimised mix's solver diagnostics
    optima: Solution  # each draw's own optimal mix
    optimum_values: np.ndarray  # (draw,) W_s(r*_s)
    versus: dict[str, Any]  # reference, delta and where it came from, the recommendation

    @property
    def recommended(self) -> np.ndarray:
        """The shares of the mix :func:`climb_bayes.decide.compare.recommendation` chose."""
        return self.shares[self.names.index(self.versus["recommended"])]


def decision(posterior: Posterior, problem: Problem, options: Options, weights: np.ndarray
             ) -> Decision:
    """Solve every mix and compare them under the posterior, in memory.

    The reference is ``uniform`` where it respects the bounds, else ``uniform_capped``
    (:func:`climb_bayes.decide.compare.bounded_uniform`); ``delta`` is ``decision.delta`` or else
    the
    run-to-run noise the fit learned (the run effect's scale where it has one, else the
    observation noise: :func:`climb_bayes.decide.compare.run_noise`).
    """
    optima = per_draw_optima(problem, options.settings)
    optimum_values = per_draw_optimal_values(problem, optima)
    mixes, info = optimised_mixes(problem, options, optimum_values)
    mixes.update(baseline_mixes(len(posterior.sources), options))
    reference = "uniform"
    if not is_feasible(problem, mixes["uniform"]):
        reference = "uniform_capped"
        mixes[reference] = bounded_uniform(problem.lower, problem.upper)
    names = list(mixes)
    shares = np.stack([mixes[n] for n in names])
    losses, weighted = weighted_loss_draws(posterior, shares, options.target_tokens, weights)
    delta, delta_from = ((options.delta, "decision.delta") if options.delta is not None
                         else noise_margin(posterior, weights))
    table = comparison_table(names, shares, weighted, posterior.sources, reference,
                             optimum_values, delta)
    recommended, reason = recommendation(
        float(table.set_index("mix").loc["posterior_mean", "p_gain"]), "posterior_mean",
        reference, delta, options.doubt_threshold)
    versus = {"reference": reference, "delta": delta, "delta_from": delta_from,
              "threshold": options.doubt_threshold, "recommended": recommended,
              "recommendation": reason}
    return Decision(names, shares, losses, table, info, optima, optimum_values, versus)
