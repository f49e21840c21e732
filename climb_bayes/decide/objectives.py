"""The problem and its objectives: the weighted loss of a mix over posterior draws.

Notation of ``docs/design.md`` ("The decision"): draws ``theta_1..theta_S``, target
budget ``D`` (``tokens_scaled = D / D_ref``), weights ``w`` over the evaluated languages
(summing to 1), shares ``r`` of the training languages. The weighted loss of one draw is::

    W_s(r) = sum_i w_i L_i(r, D; theta_s)

with ``L`` from :mod:`climb_bayes.model.law` (never written again here). Objectives, all minimised
over ``{r : sum r = 1, lower <= r <= upper}`` (``upper`` folds in the availability cap
``r_i D <= K A_i``) by :func:`climb_bayes.decide.interior.minimise_on_simplex` with exact JAX
derivatives in float64 (:func:`climb_bayes.decide.optimal_mix.minimise`):

- ``mean``:     ``(1/S) sum_s W_s(r)`` (``posterior_mean``; at one draw: ``plugin``)
- ``mean_sd``:  ``mean_s W_s(r) + k * sd_s W_s(r)`` (``robust``)
- ``quantile``: the ``level`` quantile of ``W_s(r)`` over draws (``robust``; piecewise smooth,
  so its optimum is certified only up to the kinks of the empirical quantile)
- ``cvar_regret``: ``CVaR_level`` of the regret ``R_s(r) = W_s(r) - W_s(r*_s)`` against each
  draw's own optimum ``r*_s`` (:func:`climb_bayes.decide.optimal_mix.per_draw_optima`), the
  mean of its worst ``1 - level`` tail (``robust``, the default), smoothed so that Newton's
  method applies (:func:`smooth_cvar`). Uncertainty common to every mix cancels in ``R_s``, so
  it hedges against choosing wrongly, not against noise no mix can avoid.
"""

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from climb_bayes.decide.interior import minimise_on_simplex
from climb_bayes.model.law import FLOOR_REGION, LawParams, expected_loss, share_error_variance
from climb_bayes.model.loss_model import Law
from climb_bayes.model.share_error import MeasuredShares

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
    #: down to which shares the pilots measured each target (None: no error below them) and
    #: the law's error at a share of 0 (:meth:`climb_bayes.model.loss_model.Law.share_error`)
    measured: MeasuredShares | None = None
    share_sd: float = 0.0
    share_sd_growth: float = 0.0  # its growth per e-fold deeper than one

    @classmethod
    def at_budget(cls, law: Law, tokens: float, weights: np.ndarray, lower: np.ndarray,
                  upper: np.ndarray, floor: float = FLOOR_REGION) -> "Problem":
        """The problem of ``law``'s draws at the target budget ``tokens``, its learned error
        in budget folded into ``B`` (:meth:`climb_bayes.model.loss_model.Law.at_budget`, the draws
        :meth:`~climb_bayes.model.loss_model.Law.predict_loss` makes with the default key), with
        the effective-share ``floor``
        (:func:`climb_bayes.decide.optimal_mix.floor_constraint`)."""
        return cls(LawParams(*(np.asarray(p, np.float64) for p in law.at_budget(tokens))),
                   tokens / law.reference, np.asarray(law.self_map, np.float64),
                   np.asarray(weights, np.float64), np.asarray(lower, np.float64),
                   np.asarray(upper, np.float64), law.form, floor, law.measured, law.share_sd,
                   law.share_sd_growth)


class Settings(NamedTuple):
    """Solver settings: KKT tolerance and iteration cap of the interior-point method."""

    tol: float = 1e-10
    max_iter: int = 200


DEFAULT_SETTINGS = Settings()


def draw_weighted_losses(shares: Array, params: LawParams, tokens_scaled: Array,
                         self_map: Array, weights: Array,
                         below: tuple[Array, Array, Array, Array] | None, form: str) -> Array:
    """``W_s(r) = sum_i w_i L_i(r, D; theta_s)`` of every draw: ``(sample,)``; ``r`` is
    ``(source,)``. ``below = (m, mt, s, g)``: the law's error below the shares the pilots
    measured (:meth:`climb_bayes.model.loss_model.Law.share_error`) taken in expectation, a
    factor ``exp(v_i(r) / 2)`` on each reducible loss
    (:func:`climb_bayes.model.law.share_error_variance`); None: no such error, and no second
    effective share per draw."""
    mix, tokens = shares[None, :], jnp.reshape(tokens_scaled, (1,))
    if below is None:
        per_draw = jax.vmap(expected_loss, in_axes=(0, None, None, None, None))
        return per_draw(params, mix, tokens, self_map, form)[:, 0, :] @ weights

    def one(draw: LawParams) -> Array:
        variance = share_error_variance(draw, mix, tokens, self_map, form, *below)
        return expected_loss(draw, mix, tokens, self_map, form, 0.5 * variance)

    return jax.vmap(one)(params)[:, 0, :] @ weights


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
    weights, below, optima)`` (:func:`objective_data`; ``optima`` are the ``W_s(r*_s)`` that
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
    below, optima)``, in float64 (call under ``jax.enable_x64``); ``optima`` (``W_s(r*_s)`` of every
    draw, :func:`climb_bayes.decide.optimal_mix.per_draw_optimal_values`) only matter to
    ``cvar_regret`` and are 0 if None."""
    draws = np.shape(params.E)[0]
    return (LawParams(*(jnp.asarray(p, jnp.float64) for p in params)),
            jnp.asarray(problem.tokens_scaled, jnp.float64),
            jnp.asarray(problem.self_map, jnp.float64), jnp.asarray(problem.weights, jnp.float64),
            below_measured(problem),
            jnp.zeros(draws, jnp.float64) if optima is None else jnp.asarray(optima, jnp.float64))


def below_measured(problem: Problem) -> tuple[Array, Array, Array, Array] | None:
    """``(m, mt, s, g)`` of :func:`draw_weighted_losses` in float64; None where the problem
    has no measured shares or no error below them (``s = g = 0``)."""
    if problem.measured is None or problem.share_sd == problem.share_sd_growth == 0.0:
        return None
    return (jnp.asarray(problem.measured.own, jnp.float64),
            jnp.asarray(problem.measured.effective, jnp.float64),
            jnp.asarray(problem.share_sd, jnp.float64),
            jnp.asarray(problem.share_sd_growth, jnp.float64))


#: The interior-point solver, compiled once per objective and shared by every optimised mix.
solve_on_simplex = jax.jit(minimise_on_simplex, static_argnums=(0,),
                           static_argnames=("tol", "max_iter", "constraint"))


def objective_value(problem: Problem, shares: np.ndarray, params: LawParams | None = None,
                    kind: str = "mean", k: float = 1.0, level: float = 0.9,
                    optima: np.ndarray | None = None) -> float:
    """The objective at ``shares`` in float64 (what
    :func:`climb_bayes.decide.optimal_mix.minimise` minimises)."""
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
