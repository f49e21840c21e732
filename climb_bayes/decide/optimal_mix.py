"""Solving for the optimal mixes: above the effective-share floor, from several starts, and
draw by draw.

The objectives and their notation are in :mod:`climb_bayes.decide.objectives`:
:func:`minimise` minimises one of them over ``{r : sum r = 1, lower <= r <= upper}`` by
:func:`climb_bayes.decide.interior.minimise_on_simplex`, :func:`minimise_from` from several
starts, :func:`per_draw_optima` for every posterior draw on its own.

The floor. Below an effective share of ``FLOOR_REGION`` (1%) no pilot measures the law: its loss
there is the smooth floor of :func:`climb_bayes.model.law.positive_floor`, large but bounded and
flat.
A mix that left a weighted language there would rest on that plateau, not on evidence; so the
optimised mixes keep the posterior mean of every weighted training language's effective share
at or above it (:func:`floor_constraint`)::

    c_i(r) = (1/S) sum_s rt_i(r; theta_s) - floor >= 0   (rt before the law's floor)

A problem whose bounds admit no such mix is solved without it (:func:`floor_start`), and the
caller says so.
"""

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from climb_bayes.decide.interior import (
    START_PULL,
    Solution,
    feasible_start,
    minimise_on_simplex,
    no_constraint,
)
from climb_bayes.decide.objectives import (
    DEFAULT_SETTINGS,
    Problem,
    Settings,
    draw_weighted_losses,
    objective,
    objective_data,
    objective_value,
    solve_on_simplex,
)
from climb_bayes.model.law import LawParams, unfloored_share

Array = jax.Array


@functools.cache
def floor_constraint(form: str, floor: float) -> Callable[[Array, Any], Array]:
    """``c(r, data)``: per target, ``(1/S) sum_s rt_i(r; theta_s) - floor`` where ``i`` is a
    weighted training language, and 1 (never binding) for the others; ``data`` as for
    :func:`objective`. ``rt`` before the law's own floor
    (:func:`climb_bayes.model.law.unfloored_share`),
    so the constraint has a gradient where the law is flat. Cached: one form and floor
    compile once."""

    def c(shares: Array, data: tuple[Any, ...]) -> Array:
        params, tokens_scaled, self_map, weights = data[:4]
        per_draw = jax.vmap(unfloored_share, in_axes=(0, None, None, None, None))
        rt = per_draw(params, shares[None, :], jnp.reshape(tokens_scaled, (1,)), self_map,
                      form)[:, 0, :]
        bound = (weights > 0) & (jnp.sum(self_map, axis=0) > 0)
        return jnp.where(bound, jnp.mean(rt, axis=0) - floor, 1.0)

    return c


def _constraint(problem: Problem) -> Callable[[Array, Any], Array]:
    return floor_constraint(problem.form, problem.floor) if problem.floor > 0 else no_constraint


def floor_margin(problem: Problem, shares: np.ndarray, params: LawParams | None = None
                 ) -> float:
    """``min_i c_i(r)`` of :func:`floor_constraint` at ``shares`` (inf without a floor)."""
    if problem.floor <= 0:
        return math.inf
    params = problem.params if params is None else params
    with jax.enable_x64(True):
        c = jax.jit(_constraint(problem))(jnp.asarray(shares, jnp.float64),
                                          objective_data(problem, params))
        return float(jnp.min(c))


#: Smoothing (in effective share) of the smallest floor margin that :func:`floor_start`
#: maximises.
FLOOR_SMOOTHING = 1e-3


@functools.cache
def _smallest_margin(form: str, floor: float) -> Callable[[Array, Any], Array]:
    """``-softmin_i c_i(r)``, a smooth ``-min_i c_i`` over :data:`FLOOR_SMOOTHING`."""
    c = floor_constraint(form, floor)

    def f(shares: Array, data: tuple[Any, ...]) -> Array:
        return FLOOR_SMOOTHING * jax.nn.logsumexp(-c(shares, data) / FLOOR_SMOOTHING)

    return f


def _pulled(problem: Problem, shares: np.ndarray) -> np.ndarray:
    """Where :func:`climb_bayes.decide.interior.minimise_on_simplex` starts from ``shares``."""
    centre, free = feasible_start(jnp.asarray(problem.lower), jnp.asarray(problem.upper))
    return np.where(np.asarray(free), (1 - START_PULL) * shares + START_PULL * np.asarray(centre),
                    np.asarray(centre))


def floor_start(problem: Problem, params: LawParams | None = None,
                settings: Settings = DEFAULT_SETTINGS) -> tuple[str, np.ndarray | None] | None:
    """Where to start a solve strictly above the floor: ``("box_centre", None)`` if the box
    centre clears it, else ``("floor_start", r)`` with ``r`` the mix that maximises the
    smallest margin ``min_i c_i``; None if no feasible mix clears the floor."""
    params = problem.params if params is None else params
    centre = np.asarray(feasible_start(jnp.asarray(problem.lower), jnp.asarray(problem.upper))[0])
    if floor_margin(problem, centre, params) > 0:
        return "box_centre", None
    with jax.enable_x64(True):
        solution = solve_on_simplex(_smallest_margin(problem.form, problem.floor),
                          objective_data(problem, params), jnp.asarray(problem.lower, jnp.float64),
                          jnp.asarray(problem.upper, jnp.float64), tol=settings.tol,
                          max_iter=settings.max_iter)
    best = np.asarray(solution.x)
    return ("floor_start", best) if floor_margin(problem, _pulled(problem, best), params) > 0 \
        else None


def minimise(problem: Problem, params: LawParams | None = None, kind: str = "mean",
             settings: Settings = DEFAULT_SETTINGS, k: float = 1.0, level: float = 0.9,
             start: np.ndarray | None = None, optima: np.ndarray | None = None) -> Solution:
    """Minimise the objective ``kind`` over the problem's draws (or ``params``), above the
    problem's floor (:func:`floor_constraint`); float64. From the box centre, or near a
    feasible ``start``, which must clear the floor (:func:`floor_start`).
    ``cvar_regret`` needs ``optima``."""
    params = problem.params if params is None else params
    with jax.enable_x64(True):
        solution = solve_on_simplex(objective(kind, problem.form, k, level),
                          objective_data(problem, params, optima),
                          jnp.asarray(problem.lower, jnp.float64),
                          jnp.asarray(problem.upper, jnp.float64),
                          tol=settings.tol, max_iter=settings.max_iter,
                          start=None if start is None else jnp.asarray(start, jnp.float64),
                          constraint=_constraint(problem))
        return Solution(*(np.asarray(v) for v in solution))


class MultiStart(NamedTuple):
    """The best of several local solves, and where each start ended."""

    best: Solution
    start: str  # the name of the start that gave ``best``
    values: dict[str, float]  # objective at each start's end (nan: did not converge)
    floor: float  # the floor the solves kept (0 where no feasible mix clears the problem's)

    @property
    def disagreement(self) -> float:
        """Largest minus smallest objective over the converged ends: above the solver's
        tolerance, the starts found different local optima."""
        ends = [v for v in self.values.values() if np.isfinite(v)]
        return float(max(ends) - min(ends)) if ends else math.nan


def is_feasible(problem: Problem, shares: np.ndarray, tol: float = 1e-9) -> bool:
    """Whether ``shares`` sum to 1 and lie within the problem's bounds (to ``tol``)."""
    return bool(abs(np.sum(shares) - 1.0) <= tol and np.all(shares >= problem.lower - tol)
                and np.all(shares <= problem.upper + tol))


def minimise_from(problem: Problem, starts: dict[str, np.ndarray],
                  params: LawParams | None = None, kind: str = "mean",
                  settings: Settings = DEFAULT_SETTINGS, k: float = 1.0, level: float = 0.9,
                  optima: np.ndarray | None = None) -> MultiStart:
    """:func:`minimise` from the box centre (or, where it is below the floor, from
    :func:`floor_start`) and from every start of ``starts`` that is feasible and clears the
    floor; the converged end with the lowest objective wins (the first's if none converged).
    Where no feasible mix clears the floor, every solve drops it."""
    params = problem.params if params is None else params
    first = floor_start(problem, params, settings)
    if first is None:
        problem, first = problem._replace(floor=0.0), ("box_centre", None)
    name, shares = first
    ends = {name: minimise(problem, params, kind, settings, k, level, start=shares,
                           optima=optima)}
    for name, shares in starts.items():
        if is_feasible(problem, shares) and floor_margin(problem, _pulled(problem, shares),
                                                         params) > 0:
            ends[name] = minimise(problem, params, kind, settings, k, level, start=shares,
                                  optima=optima)
    values = {name: objective_value(problem, solution.x, params, kind, k, level, optima)
              if solution.converged else math.nan for name, solution in ends.items()}
    converged = [name for name in ends if np.isfinite(values[name])]
    best = min(converged, key=values.__getitem__) if converged else next(iter(ends))
    return MultiStart(ends[best], best, values, problem.floor)


@functools.partial(jax.jit, static_argnums=(0,), static_argnames=("tol", "max_iter"))
def _solve_each_draw(f: Callable[[Array, Any], Array], data: tuple[Any, ...], lower: Array,
                     upper: Array, tol: float, max_iter: int) -> Solution:
    params, tokens_scaled, self_map, weights, below, optima = data

    def one(draw: LawParams, optimum: Array) -> Solution:
        single = jax.tree.map(lambda a: a[None], draw)
        return minimise_on_simplex(f, (single, tokens_scaled, self_map, weights, below,
                                       optimum[None]),
                                   lower, upper, tol, max_iter)

    return jax.vmap(one)(params, optima)


def per_draw_optima(problem: Problem, settings: Settings = DEFAULT_SETTINGS) -> Solution:
    """The optimal mix of every posterior draw on its own (``vmap`` of the solver): each field
    gets a leading draw axis. Their spread is the uncertainty of the decision."""
    with jax.enable_x64(True):
        solution = _solve_each_draw(objective("mean", problem.form),
                                    objective_data(problem, problem.params),
                                    jnp.asarray(problem.lower, jnp.float64),
                                    jnp.asarray(problem.upper, jnp.float64),
                                    tol=settings.tol, max_iter=settings.max_iter)
        return Solution(*(np.asarray(v) for v in solution))


def per_draw_optimal_values(problem: Problem, optima: Solution) -> np.ndarray:
    """``W_s(r*_s)``: each draw's weighted loss at its own optimum (of :func:`per_draw_optima`),
    what ``cvar_regret`` measures regret against; ``(sample,)``."""
    with jax.enable_x64(True):
        data = objective_data(problem, problem.params)

        def one(draw: LawParams, shares: Array) -> Array:
            single = jax.tree.map(lambda a: a[None], draw)
            return draw_weighted_losses(shares, single, *data[1:5], problem.form)[0]

        return np.asarray(jax.jit(jax.vmap(one))(data[0], jnp.asarray(optima.x, jnp.float64)))
