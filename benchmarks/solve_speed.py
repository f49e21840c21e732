"""Solver speed and accuracy: the JAX interior-point solver against scipy's trust-constr.

    python benchmarks/solve_speed.py            # m = 16 languages, 4000 draws
    python benchmarks/solve_speed.py --quick    # m = 8, 500 draws (under a minute)
    python benchmarks/solve_speed.py --languages 16 --draws 4000 --scipy-draws 10

Synthetic posterior: one world from :func:`climb_bayes.simulate.draw_world`, each of its
parameters jittered per draw (log-normal for the positive ones, normal for the transfer
terms), the target budget 10x ``D_ref``, equal weights, the full simplex. In this one process:

- ``posterior_mean``: :func:`climb_bayes.optimal_mix.minimise` of the posterior expected
  weighted loss over all draws (exact JAX gradient and Hessian, float64); time after
  compilation (best of 3), with the compile time shown separately; once without and once
  with the effective-share floor (:func:`climb_bayes.optimal_mix.floor_constraint`, what
  ``solve`` uses), whose time ratio is the constraint's cost;
- ``per-draw optima``: :func:`climb_bayes.optimal_mix.per_draw_optima`, every draw's own
  optimum in one vmapped solve, time after compilation;
- ``scipy trust-constr``: the same objective (the same jitted float64 JAX function, values
  only) with ``jac='2-point'`` finite differences and a BFGS Hessian, sum-to-one as a
  ``LinearConstraint``, the bounds as ``Bounds``; for the per-draw optima it solves
  ``--scipy-draws`` draws and scales the time to all of them (marked ``est.``).

Columns: wall time, the objective reached, its excess over the interior-point solution
(positive: worse), the KKT error where the solver reports one, and the time relative to the
JAX solver of the same task.
"""

import argparse
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from scipy.optimize import BFGS, Bounds, LinearConstraint, minimize

from climb_bayes.law import FLOOR_REGION, LawParams, self_map
from climb_bayes.optimal_mix import (
    Problem,
    minimise,
    objective,
    objective_data,
    objective_value,
    per_draw_optima,
)
from climb_bayes.simulate import draw_world, language_names


def synthetic_problem(languages: int, draws: int, seed: int = 0) -> Problem:
    """A posterior-like cloud of ``draws`` parameter sets around one simulated world."""
    rng = np.random.default_rng(seed)
    names = language_names(languages)
    world = draw_world(rng, names, names, reference=1e8)
    p = world.params
    cross = 1.0 - self_map(names, names)

    def positive(value: np.ndarray, sd: float) -> np.ndarray:
        return value * np.exp(rng.normal(0.0, sd, (draws, *np.shape(value))))

    def signed(value: np.ndarray, sd: float) -> np.ndarray:
        return value + cross * rng.normal(0.0, sd, (draws, *np.shape(value)))

    params = LawParams(E=positive(p.E, 0.02), B=positive(p.B, 0.1), beta=positive(p.beta, 0.1),
                       a=signed(p.a, 0.03), k=signed(p.k, 0.01), eta=positive(p.eta, 0.2))
    return Problem(params, 10.0, self_map(names, names).astype(np.float64),
                   np.full(languages, 1.0 / languages), np.zeros(languages), np.ones(languages))


def timed(function, repeats: int = 1):
    """``(best wall time, last result)`` over ``repeats`` calls."""
    best, result = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def scipy_trust_constr(prob: Problem, params: LawParams) -> tuple[np.ndarray, int]:
    """trust-constr with finite-difference gradients on the same float64 objective."""
    m = len(prob.lower)
    with jax.enable_x64(True), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # BFGS: "delta_grad == 0.0" near the end
        f = jax.jit(objective("mean", prob.form))
        data = objective_data(prob, params)

        def value(x: np.ndarray) -> float:
            return float(f(jnp.asarray(x), data))

        result = minimize(value, np.full(m, 1.0 / m), method="trust-constr", jac="2-point",
                          hess=BFGS(), bounds=Bounds(prob.lower, prob.upper),
                          constraints=[LinearConstraint(np.ones((1, m)), 1.0, 1.0)],
                          options={"gtol": 1e-9, "xtol": 1e-12, "maxiter": 3000})
    return np.asarray(result.x), int(result.nfev)


def benchmark(languages: int, draws: int, scipy_draws: int) -> pd.DataFrame:
    prob = synthetic_problem(languages, draws)
    compile_s, _ = timed(lambda: minimise(prob))
    ipm_s, ipm = timed(lambda: minimise(prob), repeats=3)
    best = objective_value(prob, ipm.x)
    floored = prob._replace(floor=FLOOR_REGION)
    floor_compile_s, _ = timed(lambda: minimise(floored))
    floor_s, floor = timed(lambda: minimise(floored), repeats=3)
    sp_s, (sp_x, sp_nfev) = timed(lambda: scipy_trust_constr(prob, prob.params))
    draw_compile_s, _ = timed(lambda: per_draw_optima(prob))
    draws_s, optima = timed(lambda: per_draw_optima(prob))
    subset = range(min(scipy_draws, draws))
    sp_draw_s, sp_draws = timed(lambda: [scipy_trust_constr(
        prob, LawParams(*(p[s:s + 1] for p in prob.params)))[0] for s in subset])
    sp_draw_excess = max(
        objective_value(prob, x, LawParams(*(p[s:s + 1] for p in prob.params)))
        - objective_value(prob, optima.x[s], LawParams(*(p[s:s + 1] for p in prob.params)))
        for s, x in zip(subset, sp_draws, strict=True))
    sp_all_s = sp_draw_s * draws / len(subset)
    rows = [
        ("posterior_mean", "JAX interior point (exact H)", f"{ipm_s:.3f}", best, 0.0,
         float(ipm.kkt_error), f"iterations {int(ipm.iterations)}, compile {compile_s:.1f} s",
         1.0),
        ("posterior_mean", "JAX interior point, with the floor", f"{floor_s:.3f}",
         objective_value(prob, floor.x), objective_value(prob, floor.x) - best,
         float(floor.kkt_error),
         f"iterations {int(floor.iterations)}, compile {floor_compile_s:.1f} s", floor_s / ipm_s),
        ("posterior_mean", "scipy trust-constr (FD)", f"{sp_s:.3f}",
         objective_value(prob, sp_x), objective_value(prob, sp_x) - best, np.nan,
         f"{sp_nfev} objective evaluations", sp_s / ipm_s),
        (f"per-draw optima ({draws})", "JAX interior point (vmap)", f"{draws_s:.3f}", np.nan,
         0.0, float(np.max(optima.kkt_error)),
         f"converged {np.mean(optima.converged):.3f}, compile {draw_compile_s:.1f} s", 1.0),
        (f"per-draw optima ({draws})", "scipy trust-constr (FD)", f"{sp_all_s:.1f} est.",
         np.nan, sp_draw_excess, np.nan, f"{len(subset)} draws timed, scaled",
         sp_all_s / draws_s),
    ]
    return pd.DataFrame(rows, columns=["task", "solver", "wall_s", "objective",
                                       "excess_over_jax", "kkt_error", "notes", "time_ratio"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="m = 8, 500 draws")
    parser.add_argument("--languages", type=int, default=16)
    parser.add_argument("--draws", type=int, default=4000)
    parser.add_argument("--scipy-draws", type=int, default=10,
                        help="draws solved by scipy for the per-draw estimate")
    args = parser.parse_args()
    languages, draws = (8, 500) if args.quick else (args.languages, args.draws)
    print(f"m = {languages} languages, {draws} draws, target 10 x D_ref, "
          f"{jax.devices()[0].platform} ({jax.device_count()} device)")
    table = benchmark(languages, draws, 3 if args.quick else args.scipy_draws)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))


if __name__ == "__main__":
    main()
