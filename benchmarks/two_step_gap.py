"""The paper's two-step procedure against the direct optimum, on the TRUE law of simulated worlds.

    python -m benchmarks.two_step_gap                      # 8 worlds of two settings (~1 min)
    python -m benchmarks.two_step_gap --settings law_m4_scarce_100x --worlds 20

For each world of the simulation study (:mod:`benchmarks.simulation.settings`) whose truth is
the CLIMB law, the true parameters are plugged in (no fit, so only the procedure is measured):
``plugin`` minimises the weighted loss directly
(:func:`climb_bayes.decide.optimal_mix.minimise`), ``climb_two_step`` equalises the weighted
marginal benefit of effective share and then reaches it
(:func:`climb_bayes.decide.two_step.two_step_mix`, water-filling where an epoch cap binds).
Prints and writes ``benchmarks/results/two_step_gap.csv``: per world, the objective gap
``W(two_step) - W(plugin)`` (nats), the L1 distance of the shares and how many caps bind.
"""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.simulation.settings import MAX_EPOCHS, SETTINGS, make_world
from climb_bayes.decide.inputs import feasible_bounds
from climb_bayes.decide.objectives import Problem, objective_value
from climb_bayes.decide.optimal_mix import minimise
from climb_bayes.decide.two_step import two_step_mix

RESULTS = Path(__file__).resolve().parent / "results"


def gap(setting: str, seed: int) -> dict[str, float | int | str]:
    """Two-step against plug-in on world ``seed`` of ``setting``, at its target budget."""
    _, world, available, target = make_world(SETTINGS[setting], seed)
    m = len(world.sources)
    weights = np.full(m, 1.0 / m)
    lower, upper = feasible_bounds(np.zeros(m), np.ones(m), available, MAX_EPOCHS,
                                   target, world.sources)
    problem = Problem.at_budget(world.law, target, weights, lower, upper)
    plugin = minimise(problem).x
    two_step = two_step_mix(problem).shares
    return {"setting": setting, "seed": seed,
            "gap": objective_value(problem, two_step) - objective_value(problem, plugin),
            "l1": float(np.abs(two_step - plugin).sum()),
            "binding_caps": int(np.sum(plugin >= upper - 1e-6))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", default=["law_m4_pos_10x", "law_m4_scarce_100x"],
                        choices=[s.name for s in SETTINGS.values() if s.truth == "law"])
    parser.add_argument("--worlds", type=int, default=8)
    args = parser.parse_args()
    table = pd.DataFrame([gap(s, seed) for s in args.settings for seed in range(args.worlds)])
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    summary = table.groupby("setting").agg(worlds=("gap", "size"), gap_median=("gap", "median"),
                                           gap_max=("gap", "max"),
                                           above_1e3=("gap", lambda g: int((g > 1e-3).sum())))
    print(summary.to_string(float_format=lambda v: f"{v:.3g}"))
    table.to_csv(RESULTS / "two_step_gap.csv", index=False)


if __name__ == "__main__":
    main()
