"""The mixes: those optimised on the posterior (:func:`optimised_mixes`), each from several
starts, and the heuristics they are compared with (:func:`baseline_mixes`).
"""

import logging
from typing import Any

import numpy as np

from climb_bayes.decide.baselines import natural_mix, temperature_mix, uniform_mix, unimax_mix
from climb_bayes.decide.inputs import Options
from climb_bayes.decide.objectives import (
    Problem,
    objective_value,
    point_estimate,
    without_transfer,
)
from climb_bayes.decide.optimal_mix import (
    MultiStart,
    minimise_from,
    per_draw_optima,
    per_draw_optimal_values,
)
from climb_bayes.decide.two_step import two_step_mix

log = logging.getLogger(__name__)

#: The optimised mixes, in the order of the comparison table.
OPTIMISED = ("posterior_mean", "plugin", "climb_two_step", "robust", "isolated")
#: Objectives (nats) further apart than this at the ends of two starts are different optima.
START_TOLERANCE = 1e-8


def clean_shares(shares: np.ndarray) -> np.ndarray:
    """Shares clipped at 0 (rounding of the solver) and renormalised to sum to 1."""
    shares = np.clip(np.asarray(shares, np.float64), 0.0, None)
    return shares / shares.sum()


def _diagnostics(result: MultiStart, kind: str) -> dict[str, Any]:
    solution = result.best
    disagree = result.disagreement > START_TOLERANCE
    if disagree:
        log.warning("the solver's starts ended at different optima (objective %s by %.3g "
                    "nats); the best, from %s, is kept", kind, result.disagreement, result.start)
    return {"objective": kind, "converged": bool(solution.converged),
            "kkt_error": float(solution.kkt_error), "iterations": int(solution.iterations),
            "effective_share_floor": result.floor,
            "start": result.start, "starts": result.values,
            "start_disagreement": result.disagreement, "starts_disagree": disagree}


def optimised_mixes(problem: Problem, options: Options,
                    optimum_values: np.ndarray | None = None
                    ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
    """``posterior_mean``, ``plugin``, ``climb_two_step``, ``robust``, ``isolated``, with each
    one's solver diagnostics.

    Each optimised mix is solved from several starts (:func:`minimise_from`): the box centre,
    every feasible heuristic of :func:`baseline_mixes`, and the mixes optimised before it
    (``plugin``, then ``posterior_mean``); the best end is kept, and the metadata says where
    each start ended and whether they disagree by more than :data:`START_TOLERANCE`.
    ``optimum_values`` (each draw's ``W_s(r*_s)``, :func:`per_draw_optimal_values`) are
    computed when ``robust`` needs them (``cvar_regret``) and not given.
    """
    settings = options.settings
    robust_args = {"k": options.robust_k, "level": options.robust_level}
    point = point_estimate(problem.params)
    heuristics = baseline_mixes(len(problem.lower), options)
    plugin = minimise_from(problem, heuristics, point, settings=settings)
    starts = heuristics | {"plugin": plugin.best.x}
    mean = minimise_from(problem, starts, settings=settings)
    if options.robust_kind == "cvar_regret":
        robust_args["optima"] = (per_draw_optimal_values(problem, per_draw_optima(problem,
                                                                                  settings))
                                 if optimum_values is None else optimum_values)
    robust = minimise_from(problem, starts | {"posterior_mean": mean.best.x},
                           kind=options.robust_kind, settings=settings, **robust_args)
    isolated = minimise_from(problem, heuristics, without_transfer(problem.params),
                             settings=settings)
    solutions = {"posterior_mean": (mean, "mean"),
                 "plugin": (plugin, "mean at the posterior means"),
                 "robust": (robust, options.robust_kind),
                 "isolated": (isolated, "mean with b = k = 0")}
    mixes = {name: clean_shares(result.best.x) for name, (result, _) in solutions.items()}
    info = {name: _diagnostics(result, kind) for name, (result, kind) in solutions.items()}
    info["robust"].update(k=options.robust_k, level=options.robust_level)
    two_step = two_step_mix(problem, settings)
    mixes["climb_two_step"] = clean_shares(two_step.shares)
    plugin_value = objective_value(problem, mixes["plugin"], point)
    two_step_value = objective_value(problem, mixes["climb_two_step"], point)
    info["climb_two_step"] = {
        "objective": "equal weighted marginal benefit of effective share, largest reachable",
        "lambda": two_step.lam, "plugin_objective": plugin_value,
        "two_step_objective": two_step_value, "gap_to_plugin": two_step_value - plugin_value,
        "l1_distance_to_plugin": float(np.abs(mixes["climb_two_step"] - mixes["plugin"]).sum()),
    }
    return {name: mixes[name] for name in OPTIMISED}, info


def baseline_mixes(count: int, options: Options) -> dict[str, np.ndarray]:
    """``uniform``, and with available tokens ``natural``, ``temperature`` and ``unimax``."""
    mixes = {"uniform": uniform_mix(count)}
    if options.available is not None:
        mixes["natural"] = natural_mix(options.available)
        mixes["temperature"] = temperature_mix(options.available, options.temperature)
        mixes["unimax"] = unimax_mix(options.available, options.target_tokens,
                                     options.max_epochs)
    return mixes
