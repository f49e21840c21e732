"""The decision's mathematics: mixes that minimise the law's weighted loss over posterior draws.

Notation of ``../shared/DESIGN.md`` ("The decision"): draws ``theta_1..theta_S``, target
budget ``D`` (``tokens_scaled = D / D_ref``), weights ``w`` over the evaluated languages
(summing to 1), shares ``r`` of the training languages. The weighted loss of one draw is::

    W_s(r) = sum_i w_i L_i(r, D; theta_s)

with ``L`` from :mod:`climb_bayes.model.law` (never written again here). Objectives, all minimised
over ``{r : sum r = 1, lower <= r <= upper}`` (``upper`` folds in the availability cap
``r_i D <= K A_i``) by :func:`climb_bayes.decide.interior.minimise_on_simplex` with exact JAX
derivatives in float64:

- ``mean``:     ``(1/S) sum_s W_s(r)`` (``posterior_mean``; at one draw: ``plugin``)
- ``mean_sd``:  ``mean_s W_s(r) + k * sd_s W_s(r)`` (``robust``)
- ``quantile``: the ``level`` quantile of ``W_s(r)`` over draws (``robust``; piecewise smooth,
  so its optimum is certified only up to the kinks of the empirical quantile)
- ``cvar_regret``: ``CVaR_level`` of the regret ``R_s(r) = W_s(r) - W_s(r*_s)`` against each
  draw's own optimum ``r*_s`` (:func:`per_draw_optima`), the mean of its worst ``1 - level``
  tail (``robust``, the default), smoothed so that Newton's method applies
  (:func:`smooth_cvar`). Uncertainty common to every mix cancels in ``R_s``, so it hedges
  against choosing wrongly, not against noise no mix can avoid.

and, for the paper's two-step procedure (:func:`two_step_mix`), the shortfall of the effective
shares from a target curve.

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
from climb_bayes.model.law import (
    FLOOR_REGION,
    LawParams,
    effective_share,
    expected_loss,
    unfloored_share,
)
from climb_bayes.model.loss_model import Law

Array = jax.Array
OBJECTIVE_KINDS = ("mean", "mean_sd", "quantile", "cvar_regret")


class Problem(NamedTuple):
    """Everything the objectives read besides the shares (float64 numpy arrays)."""

    params: LawParams  # each with a leading draw axis
    tokens_scaled: float  # D_target / D_ref
    self_map: np.ndarray  # (source, target)
    weights: np.ndarray  # (target,), summing to 1
    lower: np.ndarray  # (source,)
    upper: np.ndarray  # (source,)
    form: str = "source_saturating"
    floor: float = 0.0  # least mean effective share of a weighted language (0: none)

    @classmethod
    def at_budget(cls, law: Law, tokens: float, weights: np.ndarray, lower: np.ndarray,
                  upper: np.ndarray, floor: float = FLOOR_REGION) -> "Problem":
        """The problem of ``law``'s draws at the target budget ``tokens``, its learned error
        in budget folded into ``B`` (:meth:`climb_bayes.model.loss_model.Law.at_budget`, the draws
        :meth:`~climb_bayes.model.loss_model.Law.predict_loss` makes with the default key), with
        the effective-share ``floor`` (:func:`floor_constraint`)."""
        return cls(LawParams(*(np.asarray(p, np.float64) for p in law.at_budget(tokens))),
                   tokens / law.reference, np.asarray(law.self_map, np.float64),
                   np.asarray(weights, np.float64), np.asarray(lower, np.float64),
                   np.asarray(upper, np.float64), law.form, floor)


class Settings(NamedTuple):
    """Solver settings: KKT tolerance and iteration cap of the interior-point method."""

    tol: float = 1e-10
    max_iter: int = 200


DEFAULT_SETTINGS = Settings()


def draw_weighted_losses(shares: Array, params: LawParams, tokens_scaled: Array,
                         self_map: Array, weights: Array, form: str) -> Array:
    """``W_s(r) = sum_i w_i L_i(r, D; theta_s)`` of every draw: ``(sample,)``; ``r`` is
    ``(source,)``."""
    per_draw = jax.vmap(expected_loss, in_axes=(0, None, None, None, None))
    losses = per_draw(params, shares[None, :], jnp.reshape(tokens_scaled, (1,)), self_map, form)
    return losses[:, 0, :] @ weights


#: Nats over which :func:`smooth_cvar` rounds the corner of ``max(0, x)``.
CVAR_SMOOTHING = 1e-5


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2))
def _tail_threshold(x: Array, level: float, eps: float) -> Array:
    """The ``t`` with ``sum_s sigmoid((x_s - t) / eps) = (1 - level) S`` (bisection), the
    smoothed ``level`` quantile of ``x`` that :func:`smooth_cvar` minimises over."""
    goal = (1.0 - level) * x.shape[0]

    def halve(_: int, bracket: tuple[Array, Array]) -> tuple[Array, Array]:
        low, high = bracket
        middle = 0.5 * (low + high)
        above = jnp.sum(jax.nn.sigmoid((x - middle) / eps)) > goal
        return jnp.where(above, middle, low), jnp.where(above, high, middle)

    low, high = jax.lax.fori_loop(0, 200, halve, (jnp.min(x) - 50 * eps, jnp.max(x) + 50 * eps))
    return 0.5 * (low + high)


@_tail_threshold.defjvp
def _tail_threshold_jvp(level: float, eps: float, primals: tuple[Array],
                        tangents: tuple[Array]) -> tuple[Array, Array]:
    (x,), (x_dot,) = primals, tangents
    t = _tail_threshold(x, level, eps)
    slope = jax.nn.sigmoid((x - t) / eps) * jax.nn.sigmoid(-(x - t) / eps)  # implicit function
    return t, jnp.sum(slope * x_dot) / jnp.maximum(jnp.sum(slope), jnp.finfo(x.dtype).tiny)


def smooth_cvar(x: Array, level: float, eps: float) -> Array:
    """``CVaR_level`` of the draws ``x``, the mean of their worst ``1 - level`` tail, in
    Rockafellar and Uryasev's form with the corner of ``max(0, .)`` rounded over ``eps``::

        CVaR(x) = min_t  t + sum_s eps * softplus((x_s - t) / eps) / ((1 - level) S)

    Twice differentiable in ``x`` (the inner minimiser ``t`` by bisection, its derivative by
    the implicit function theorem), and above the exact CVaR by at most
    ``eps * log 2 / (1 - level)``.
    """
    t = _tail_threshold(x, level, eps)
    return t + jnp.sum(eps * jax.nn.softplus((x - t) / eps)) / ((1.0 - level) * x.shape[0])


@functools.cache
def objective(kind: str = "mean", form: str = "source_saturating", k: float = 1.0,
              level: float = 0.9) -> Callable[[Array, Any], Array]:
    """The objective ``f(r, data)`` of one kind, ``data = (params, tokens_scaled, self_map,
    weights, optima)`` (:func:`objective_data`; ``optima`` are the ``W_s(r*_s)`` that
    ``cvar_regret`` subtracts). Cached, so one kind is compiled once."""
    if kind not in OBJECTIVE_KINDS:
        raise ValueError(f"unknown objective {kind!r}; use one of {OBJECTIVE_KINDS}")

    def f(shares: Array, data: tuple[Any, ...]) -> Array:
        *law_data, optima = data
        values = draw_weighted_losses(shares, *law_data, form)
        if kind == "mean":
            return jnp.mean(values)
        if kind == "mean_sd":
            return jnp.mean(values) + k * jnp.std(values)
        if kind == "quantile":
            return jnp.quantile(values, level)
        return smooth_cvar(values - optima, level, CVAR_SMOOTHING)

    return f


def objective_data(problem: Problem, params: LawParams, optima: np.ndarray | None = None
                   ) -> tuple[Any, ...]:
    """The ``data`` argument of the objectives, ``(params, tokens_scaled, self_map, weights,
    optima)``, in float64 (call under ``jax.enable_x64``); ``optima`` (``W_s(r*_s)`` of every
    draw, :func:`per_draw_optimal_values`) only matter to ``cvar_regret`` and are 0 if None."""
    draws = np.shape(params.E)[0]
    return (LawParams(*(jnp.asarray(p, jnp.float64) for p in params)),
            jnp.asarray(problem.tokens_scaled, jnp.float64),
            jnp.asarray(problem.self_map, jnp.float64), jnp.asarray(problem.weights, jnp.float64),
            jnp.zeros(draws, jnp.float64) if optima is None else jnp.asarray(optima, jnp.float64))


_solve = jax.jit(minimise_on_simplex, static_argnums=(0,),
                 static_argnames=("tol", "max_iter", "constraint"))


@functools.cache
def floor_constraint(form: str, floor: float) -> Callable[[Array, Any], Array]:
    """``c(r, data)``: per target, ``(1/S) sum_s rt_i(r; theta_s) - floor`` where ``i`` is a
    weighted training language, and 1 (never binding) for the others; ``data`` as for
    :func:`objective`. ``rt`` before the law's own floor
    (:func:`climb_bayes.model.law.unfloored_share`),
    so the constraint has a gradient where the law is flat. Cached: one form and floor
    compile once."""

    def c(shares: Array, data: tuple[Any, ...]) -> Array:
        params, tokens_scaled, self_map, weights, _ = data
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
        solution = _solve(_smallest_margin(problem.form, problem.floor),
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
        solution = _solve(objective(kind, problem.form, k, level),
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


def objective_value(problem: Problem, shares: np.ndarray, params: LawParams | None = None,
                    kind: str = "mean", k: float = 1.0, level: float = 0.9,
                    optima: np.ndarray | None = None) -> float:
    """The objective at ``shares`` in float64 (what :func:`minimise` minimises)."""
    params = problem.params if params is None else params
    with jax.enable_x64(True):
        f = jax.jit(objective(kind, problem.form, k, level))
        return float(f(jnp.asarray(shares, jnp.float64),
                       objective_data(problem, params, optima)))


def point_estimate(params: LawParams) -> LawParams:
    """The posterior mean of every parameter, kept with a draw axis of length 1."""
    return LawParams(*(np.mean(np.asarray(p, np.float64), axis=0, keepdims=True)
                       for p in params))


def without_transfer(params: LawParams) -> LawParams:
    """The same draws with every transfer term (``b``, ``k``) set to zero."""
    return params._replace(a=np.zeros_like(params.a), k=np.zeros_like(params.k))


@functools.partial(jax.jit, static_argnums=(0,), static_argnames=("tol", "max_iter"))
def _solve_each_draw(f: Callable[[Array, Any], Array], data: tuple[Any, ...], lower: Array,
                     upper: Array, tol: float, max_iter: int) -> Solution:
    params, tokens_scaled, self_map, weights, optima = data

    def one(draw: LawParams, optimum: Array) -> Solution:
        single = jax.tree.map(lambda a: a[None], draw)
        return minimise_on_simplex(f, (single, tokens_scaled, self_map, weights, optimum[None]),
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
            return draw_weighted_losses(shares, single, *data[1:4], problem.form)[0]

        return np.asarray(jax.jit(jax.vmap(one))(data[0], jnp.asarray(optima.x, jnp.float64)))


# --- the paper's two-step procedure ------------------------------------------------------------

def weighted_benefit(params: LawParams, tokens_scaled: float, weights: np.ndarray
                     ) -> np.ndarray:
    """``g_i = w_i beta_i B_i (D/D_ref)^(-beta_i)``: the weighted marginal benefit of effective
    share at ``rt_i = 1``; ``params`` is one draw (no draw axis)."""
    beta = np.asarray(params.beta, np.float64)
    return weights * beta * np.asarray(params.B, np.float64) * tokens_scaled ** (-beta)


def equal_benefit_curve(params: LawParams, tokens_scaled: float, weights: np.ndarray,
                        lam: float) -> np.ndarray:
    """Effective shares where every weighted marginal benefit equals ``lam``.

    ``g_i rt_i^(-beta_i - 1) = lam`` (:func:`weighted_benefit`) gives
    ``rt_i(lam) = (g_i / lam)^(1 / (beta_i + 1))``. ``params`` is one draw (no draw axis).
    """
    beta = np.asarray(params.beta, np.float64)
    return (weighted_benefit(params, tokens_scaled, weights) / lam) ** (1.0 / (beta + 1.0))


@functools.cache
def _shortfall(form: str) -> Callable[[Array, Any], Array]:
    """``sum_i max(0, rt_i^target - rt_i(r))^2``: how far ``r`` falls short of the target."""

    def f(shares: Array, data: tuple[Any, ...]) -> Array:
        params, tokens_scaled, self_map, target = data
        rt = effective_share(params, shares[None, :], jnp.reshape(tokens_scaled, (1,)),
                             self_map, form)[0]
        return jnp.sum(jnp.maximum(target - rt, 0.0) ** 2)

    return f


class TwoStep(NamedTuple):
    """The two-step mix and the multiplier ``lam`` of the curve point it reaches."""

    shares: np.ndarray
    lam: float
    target: np.ndarray  # rt(lam), the effective shares aimed at


@functools.cache
def _minus_effective_share(form: str) -> Callable[[Array, Any], Array]:
    """``-rt_j(r)`` for the language picked by the one-hot ``pick``: minimised, the most
    effective share ``j`` can get from a feasible mix."""

    def f(shares: Array, data: tuple[Any, ...]) -> Array:
        params, tokens_scaled, self_map, pick = data
        rt = effective_share(params, shares[None, :], jnp.reshape(tokens_scaled, (1,)),
                             self_map, form)[0]
        return -jnp.sum(pick * rt)

    return f


#: Relative shortfall below which a target counts as reached when probing a cap: the
#: interior-point barrier keeps a share ~1e-8 short of a target that sits close to its cap.
CAP_REACH_TOLERANCE = 1e-6
#: A cap is probed at this factor above the ``lam`` where its language runs out of room.
CAP_PROBE = 1.01


def _reach(problem: Problem, params: LawParams, lam: float, free: np.ndarray,
           settings: Settings, tolerance: float = 1e-8) -> tuple[bool, np.ndarray, np.ndarray]:
    """Is ``rt(lam)`` reachable by a feasible mix on the ``free`` languages, to a relative
    shortfall of ``tolerance``? And the closest mix. The other languages aim at nothing."""
    target = np.where(free, equal_benefit_curve(params, problem.tokens_scaled, problem.weights,
                                                lam), 0.0)
    shares, value = _solve_on_law(_shortfall(problem.form), problem, params, target, settings)
    return value <= tolerance ** 2 * float(np.sum(target ** 2)), shares, target


def _solve_on_law(f: Callable[[Array, Any], Array], problem: Problem, params: LawParams,
                  extra: np.ndarray, settings: Settings) -> tuple[np.ndarray, float]:
    """Minimise ``f(r, (params, tokens_scaled, self_map, extra))`` over the problem's feasible
    mixes; the minimiser and ``f`` there."""
    with jax.enable_x64(True):
        data = (*objective_data(problem, params)[:3], jnp.asarray(extra, jnp.float64))
        solution = _solve(f, data, jnp.asarray(problem.lower, jnp.float64),
                          jnp.asarray(problem.upper, jnp.float64),
                          tol=settings.tol, max_iter=settings.max_iter)
        return np.asarray(solution.x), float(f(solution.x, data))


def _room(problem: Problem, params: LawParams, settings: Settings) -> np.ndarray:
    """``M_j = max_r rt_j(r)`` over feasible mixes, for every language ``j``: the most
    effective share its cap (and the others' bounds) lets it reach."""
    minus = _minus_effective_share(problem.form)
    return np.asarray([-_solve_on_law(minus, problem, params, pick, settings)[1]
                       for pick in np.eye(len(problem.lower))])


def _lowest_reachable(problem: Problem, params: LawParams, free: np.ndarray,
                      settings: Settings, steps: int) -> TwoStep:
    """Step 2 for the ``free`` languages: the smallest ``lam`` whose ``rt(lam)`` a feasible
    mix reaches, by bisection on ``log lam``."""
    benefit = weighted_benefit(params, problem.tokens_scaled, problem.weights)
    high = float(np.max(benefit[free]))
    ok, shares, target = _reach(problem, params, high, free, settings)
    for _ in range(200):
        if ok:
            break
        high *= 4.0
        ok, shares, target = _reach(problem, params, high, free, settings)
    low = high
    for _ in range(200):
        low /= 4.0
        if not _reach(problem, params, low, free, settings)[0]:
            break
    best = TwoStep(shares, high, target)
    for _ in range(steps):
        middle = float(np.sqrt(low * high))
        ok, shares, target = _reach(problem, params, middle, free, settings)
        if ok:
            high, best = middle, TwoStep(shares, middle, target)
        else:
            low = middle
    return best


def two_step_mix(problem: Problem, settings: Settings = DEFAULT_SETTINGS,
                 steps: int = 60) -> TwoStep:
    """CLIMB's two-step solver on the point estimate (posterior means).

    Step 1: the curve :func:`equal_benefit_curve` of effective shares with equal weighted
    marginal benefits. Step 2: the largest point on it (smallest ``lam``) that a feasible
    nominal mix reaches, ``rt_i(r) >= rt_i(lam)`` for all ``i``: bisection on ``log lam``, each
    step inverting the interaction map by a constrained least-squares solve of the shortfall.

    Availability caps by water-filling, as the optimality conditions ask. Language ``j`` runs
    out of room at ``lam_j = g_j / M_j^(beta_j + 1)`` (``g_j`` its weighted benefit, ``M_j``
    the most effective share a feasible mix gives it, :func:`_room`). If the curve is still
    reachable just above the largest ``lam_j``, that cap binds before the sum of the shares
    does: the language is fixed at its cap, leaves the equal-benefit set, and step 2 starts
    again for the others (their ``lam`` falls further). Otherwise the sum binds and the
    bisection ends it. The procedure ignores the cross terms of the interaction map's
    Jacobian, so it approximates the direct plug-in optimum (exactly, without transfer); the
    caller reports the gap.
    """
    params = LawParams(*(p[0] for p in point_estimate(problem.params)))
    benefit = weighted_benefit(params, problem.tokens_scaled, problem.weights)
    free = np.ones(len(problem.lower), dtype=bool)
    while free.sum() > 1:
        out_of_room = np.where(free, benefit / _room(problem, params, settings)
                               ** (params.beta + 1.0), -np.inf)
        capped = int(np.argmax(out_of_room))
        if not _reach(problem, params, CAP_PROBE * out_of_room[capped], free, settings,
                      CAP_REACH_TOLERANCE)[0]:
            break  # the sum of the shares binds first
        free[capped] = False
        problem = problem._replace(lower=np.where(free, problem.lower, problem.upper))
    return _lowest_reachable(problem, params, free, settings, steps)
