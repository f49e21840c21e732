"""Solver speed and accuracy: the JAX interior-point solver against scipy and optax.

    python -m benchmarks.solve_speed            # m = 16 languages, 4000 draws
    python -m benchmarks.solve_speed --quick    # m = 8, 500 draws (under a minute)
    python -m benchmarks.solve_speed --languages 16 --draws 4000 --scipy-draws 10

Synthetic posterior: one world from :func:`climb_bayes.data.simulated.draw_world`, each of its
parameters jittered per draw (log-normal for the positive ones, normal for the transfer
terms), the target budget 10x ``D_ref``, equal weights, the full simplex. In this one process:

- ``posterior_mean``: :func:`climb_bayes.decide.optimal_mix.minimise` of the posterior expected
  weighted loss over all draws (exact JAX gradient and Hessian, float64); time after
  compilation (best of 3), with the compile time shown separately; once without and once
  with the effective-share floor (:func:`climb_bayes.decide.optimal_mix.floor_constraint`, what
  ``solve`` uses), whose time ratio is the constraint's cost;
- ``per-draw optima``: :func:`climb_bayes.decide.optimal_mix.per_draw_optima`, every draw's own
  optimum in one vmapped solve, time after compilation;
- ``scipy trust-constr`` and ``scipy SLSQP``: the same jitted float64 JAX objective with JAX's
  exact gradient (and, for trust-constr, exact Hessian), sum-to-one as a constraint, the
  bounds as bounds; for the per-draw optima trust-constr solves ``--scipy-draws`` draws and
  the time is scaled to all of them (marked ``est.``);
- ``optax projected gradient``: gradient steps (``optax.sgd``, step 0.1: it diverges at 3, and
  Adam's per-coordinate scaling stalls, since the projection cancels a step that has the
  same sign on every coordinate) on the exact gradient, each projected onto the simplex
  (``optax.projections.projection_simplex``; the benchmark's bounds are the whole simplex),
  jitted, until ``max |x - P(x - grad f)| < 1e-9`` or 20000 steps.

Every solver's time is after compilation (each was run once before).

Columns: wall time, the objective reached, its excess over the interior-point solution
(positive: worse), the KKT error where the solver reports one, and the time relative to the
JAX solver of the same task.
"""

import argparse
import functools
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
from scipy.optimize import Bounds, LinearConstraint, minimize

from climb_bayes.data.simulated import draw_world, language_names
from climb_bayes.decide.objectives import Problem, objective, objective_data, objective_value
from climb_bayes.decide.optimal_mix import minimise, per_draw_optima
from climb_bayes.model.law import FLOOR_REGION, LawParams, self_map


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


@functools.cache
def exact_derivatives(form: str) -> tuple:
    """The float64 objective ``f(x, data)``, its gradient and its Hessian, jitted once."""
    f = objective("mean", form)
    return jax.jit(f), jax.jit(jax.grad(f)), jax.jit(jax.hessian(f))


def scipy_solve(prob: Problem, params: LawParams, method: str) -> tuple[np.ndarray, int]:
    """scipy ``trust-constr`` (exact gradient and Hessian) or ``SLSQP`` (exact gradient) on the
    same float64 objective; the minimiser and the number of objective evaluations."""
    m = len(prob.lower)
    with jax.enable_x64(True), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        data = objective_data(prob, params)
        jitted = exact_derivatives(prob.form)
        value, grad, hess = (lambda x, g=g: np.asarray(g(jnp.asarray(x), data)) for g in jitted)
        if method == "trust-constr":
            result = minimize(lambda x: float(value(x)), np.full(m, 1.0 / m),
                              method="trust-constr", jac=grad, hess=hess,
                              bounds=Bounds(prob.lower, prob.upper),
                              constraints=[LinearConstraint(np.ones((1, m)), 1.0, 1.0)],
                              options={"gtol": 1e-10, "xtol": 1e-14, "maxiter": 3000})
        else:
            result = minimize(lambda x: float(value(x)), np.full(m, 1.0 / m), method="SLSQP",
                              jac=grad, bounds=list(zip(prob.lower, prob.upper, strict=True)),
                              constraints=[{"type": "eq", "fun": lambda x: x.sum() - 1.0,
                                            "jac": lambda x: np.ones((1, m))}],
                              options={"ftol": 1e-15, "maxiter": 1000})
    return np.asarray(result.x), int(result.nfev)


#: Projected-gradient stopping rule: ``max |x - P(x - grad f(x))| < PROJECTED_TOL``, ``P`` the
#: projection onto the simplex (a first-order stationarity measure), or ``OPTAX_STEPS`` steps.
PROJECTED_TOL = 1e-9
OPTAX_STEPS = 20_000


@functools.cache
def _optax_run(form: str, learning_rate: float):
    f = objective("mean", form)
    optimiser = optax.sgd(learning_rate)
    project = optax.projections.projection_simplex

    @jax.jit
    def run(x: jax.Array, data: tuple) -> tuple[jax.Array, jax.Array]:
        def moving(state: tuple) -> jax.Array:
            x, _, count = state
            stationarity = jnp.max(jnp.abs(x - project(x - jax.grad(f)(x, data))))
            return (count < OPTAX_STEPS) & (stationarity > PROJECTED_TOL)

        def step(state: tuple) -> tuple:
            x, opt_state, count = state
            updates, opt_state = optimiser.update(jax.grad(f)(x, data), opt_state)
            return project(optax.apply_updates(x, updates)), opt_state, count + 1

        end, _, count = jax.lax.while_loop(moving, step, (x, optimiser.init(x), jnp.asarray(0)))
        return end, count

    return run


def optax_projected(prob: Problem, params: LawParams, learning_rate: float = 0.1
                    ) -> tuple[np.ndarray, int]:
    """Gradient steps on the exact gradient, projected onto the simplex after each (the whole
    simplex: the benchmark's bounds), from the centre; the end and the number of steps."""
    m = len(prob.lower)
    with jax.enable_x64(True):
        end, count = _optax_run(prob.form, learning_rate)(jnp.full(m, 1.0 / m),
                                                           objective_data(prob, params))
        return np.asarray(end), int(count)


def benchmark(languages: int, draws: int, scipy_draws: int) -> pd.DataFrame:
    prob = synthetic_problem(languages, draws)
    compile_s, _ = timed(lambda: minimise(prob))
    ipm_s, ipm = timed(lambda: minimise(prob), repeats=3)
    best = objective_value(prob, ipm.x)
    floored = prob._replace(floor=FLOOR_REGION)
    floor_compile_s, _ = timed(lambda: minimise(floored))
    floor_s, floor = timed(lambda: minimise(floored), repeats=3)
    scipy_solve(prob, prob.params, "SLSQP")  # compile the objective and its derivatives
    scipy_solve(prob, prob.params, "trust-constr")
    optax_projected(prob, prob.params)
    sp_s, (sp_x, sp_nfev) = timed(lambda: scipy_solve(prob, prob.params, "trust-constr"))
    sl_s, (sl_x, sl_nfev) = timed(lambda: scipy_solve(prob, prob.params, "SLSQP"))
    ox_s, (ox_x, ox_steps) = timed(lambda: optax_projected(prob, prob.params))
    draw_compile_s, _ = timed(lambda: per_draw_optima(prob))
    draws_s, optima = timed(lambda: per_draw_optima(prob))
    subset = range(min(scipy_draws, draws))

    def per_draw_scipy(method: str) -> tuple[float, float]:
        """Time to solve every draw with scipy (``subset`` timed, scaled) and its largest
        objective excess over our per-draw optima."""
        single = [LawParams(*(p[s:s + 1] for p in prob.params)) for s in subset]
        seconds, ends = timed(lambda: [scipy_solve(prob, one, method)[0] for one in single])
        excess = max(objective_value(prob, x, one) - objective_value(prob, optima.x[s], one)
                     for s, x, one in zip(subset, ends, single, strict=True))
        return seconds * draws / len(subset), excess

    sp_all_s, sp_draw_excess = per_draw_scipy("trust-constr")
    sl_all_s, sl_draw_excess = per_draw_scipy("SLSQP")

    def row(solver: str, seconds: float, x: np.ndarray, notes: str) -> tuple:
        value = objective_value(prob, x)
        return ("posterior_mean", solver, f"{seconds:.3f}", value, value - best, np.nan, notes,
                seconds / ipm_s)

    rows = [
        ("posterior_mean", "JAX interior point (exact H)", f"{ipm_s:.3f}", best, 0.0,
         float(ipm.kkt_error), f"iterations {int(ipm.iterations)}, compile {compile_s:.1f} s",
         1.0),
        ("posterior_mean", "JAX interior point, with the floor", f"{floor_s:.3f}",
         objective_value(prob, floor.x), objective_value(prob, floor.x) - best,
         float(floor.kkt_error),
         f"iterations {int(floor.iterations)}, compile {floor_compile_s:.1f} s", floor_s / ipm_s),
        row("scipy trust-constr (exact g, H)", sp_s, sp_x, f"{sp_nfev} objective evaluations"),
        row("scipy SLSQP (exact g)", sl_s, sl_x, f"{sl_nfev} objective evaluations"),
        row("optax projected gradient (exact g)", ox_s, ox_x, f"{ox_steps} steps"),
        (f"per-draw optima ({draws})", "JAX interior point (vmap)", f"{draws_s:.3f}", np.nan,
         0.0, float(np.max(optima.kkt_error)),
         f"converged {np.mean(optima.converged):.3f}, compile {draw_compile_s:.1f} s", 1.0),
        (f"per-draw optima ({draws})", "scipy trust-constr (exact g, H)",
         f"{sp_all_s:.1f} est.", np.nan, sp_draw_excess, np.nan,
         f"{len(subset)} draws timed, scaled", sp_all_s / draws_s),
        (f"per-draw optima ({draws})", "scipy SLSQP (exact g)", f"{sl_all_s:.1f} est.", np.nan,
         sl_draw_excess, np.nan, f"{len(subset)} draws timed, scaled", sl_all_s / draws_s),
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
