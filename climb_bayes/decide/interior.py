"""Minimise a smooth function of a mix over the box-constrained simplex (exact Newton steps).

The problem, for ``x`` in R^m (the nominal shares of the training languages)::

    minimise f(x)   subject to   sum_i x_i = 1,   lower_i <= x_i <= upper_i,   c(x) >= 0

is solved by a primal-dual interior-point method (the monotone barrier strategy of IPOPT,
Wächter & Biegler 2006) with JAX's exact gradient and Hessian of ``f``. For a barrier
parameter ``mu`` the perturbed KKT conditions are, with slacks ``s_l = x - lower`` and
``s_u = upper - x`` and multipliers ``z_l, z_u >= 0`` and ``nu``::

    grad f(x) - z_l + z_u + nu * 1 = 0,    s_l * z_l = mu,    s_u * z_u = mu,    1'x = 1

Each iteration solves their Newton system reduced to ``x`` and ``nu``::

    [ H + Sigma   1 ] [ dx  ]   [ -(grad f + nu 1) + mu / s_l - mu / s_u ]
    [ 1'          0 ] [ dnu ] = [ 1 - 1'x                                ]

with ``Sigma = diag(z_l / s_l + z_u / s_u)`` and ``H`` the Hessian of ``f`` with its negative
eigenvalues clipped to zero (so the step is a descent direction of the barrier function
``phi_mu = f - mu * sum(log s_l + log s_u)`` even where ``f`` is not convex; where ``f`` is
convex the step is the exact Newton step and convergence is quadratic). Steps stay inside the
box by the fraction-to-boundary rule, and an Armijo backtracking search on ``phi_mu`` makes
every step decrease it. ``mu`` shrinks (``mu <- min(0.2 mu, mu^1.5)``) once the barrier
problem is solved to ``10 mu``. The solver stops when the unperturbed KKT error (stationarity
and complementarity, max-norm) is below ``tol``. Variables whose bounds coincide are fixed.

Optional smooth constraints ``c(x) >= 0`` (a few, e.g. a floor on each language's effective
share) are treated like the bounds, with multipliers ``z_c`` and ``c * z_c = mu``: stationarity
reads ``grad f - J' z_c - z_l + z_u + nu 1 = 0`` (``J`` the Jacobian of ``c``), ``H`` is the
Hessian of the Lagrangian ``f - z_c' c`` and ``J' diag(z_c / c) J`` joins ``Sigma``, the
right-hand side gains ``J' mu / c``, and ``phi_mu`` gains ``-mu * sum log c``. ``c`` is not
linear, so no fraction-to-boundary rule applies to it: the line search rejects every step
where some ``c_k <= 0`` (``phi_mu = inf``). The start must satisfy ``c > 0``.

Everything is a pure function of arrays: ``jax.jit`` and ``jax.vmap`` (one problem per
posterior draw) apply. Use float64 (``jax.enable_x64``) to reach ``tol`` below ~1e-6.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array

#: How far a given start is pulled towards the box centre, so that it is strictly interior.
START_PULL = 1e-3
#: Bounds closer than this fix the variable.
FIXED_WIDTH = 1e-12
MU_INITIAL = 0.1
ARMIJO = 1e-4
BACKTRACKS = 40


class Solution(NamedTuple):
    """The minimiser and its certificate: KKT multipliers, error, iterations."""

    x: Array  # (m,) the minimiser
    nu: Array  # multiplier of sum(x) = 1 (the common marginal value)
    z_lower: Array  # (m,) multipliers of x >= lower
    z_upper: Array  # (m,) multipliers of x <= upper
    kkt_error: Array  # max-norm of the unperturbed KKT residuals at x
    iterations: Array
    converged: Array  # kkt_error <= tol
    z_constraint: Array  # (k,) multipliers of c(x) >= 0 (empty without constraints)


class _State(NamedTuple):
    x: Array
    z_lower: Array
    z_upper: Array
    z_constraint: Array
    nu: Array
    mu: Array
    iteration: Array
    error: Array


def feasible_start(lower: Array, upper: Array) -> tuple[Array, Array]:
    """The interior point ``lower + t (upper - lower)`` with ``t`` making it sum to 1, and the
    mask of free variables (all fixed when the feasible set is a single point)."""
    width = upper - lower
    t = (1.0 - jnp.sum(lower)) / jnp.maximum(jnp.sum(width), FIXED_WIDTH)
    interior = (t > FIXED_WIDTH) & (t < 1.0 - FIXED_WIDTH)
    free = (width > FIXED_WIDTH) & interior
    return lower + jnp.clip(t, 0.0, 1.0) * width, free


def no_constraint(x: Array, data: Any) -> Array:
    """No constraint ``c``: an empty vector."""
    return jnp.zeros((0,), x.dtype)


def _slacks(x: Array, lower: Array, upper: Array, free: Array) -> tuple[Array, Array]:
    return jnp.where(free, x - lower, 1.0), jnp.where(free, upper - x, 1.0)


def kkt_residuals(grad_lagrangian: Array, c: Array, state: _State, lower: Array, upper: Array,
                  free: Array, mu: Array) -> Array:
    """Max-norm of the ``mu``-perturbed KKT residuals (``mu = 0``: the true KKT error);
    ``grad_lagrangian = grad f - J_c' z_c`` and ``c = c(x)``."""
    s_l, s_u = _slacks(state.x, lower, upper, free)
    stationarity = jnp.where(free, grad_lagrangian - state.z_lower + state.z_upper + state.nu,
                             0.0)
    complementarity = jnp.where(free, jnp.maximum(jnp.abs(s_l * state.z_lower - mu),
                                                  jnp.abs(s_u * state.z_upper - mu)), 0.0)
    feasibility = jnp.abs(jnp.sum(state.x) - 1.0)
    return jnp.max(jnp.abs(jnp.concatenate([stationarity, complementarity, feasibility[None],
                                            c * state.z_constraint - mu])))


def _convexified(hessian: Array, free: Array) -> Array:
    """The Hessian on the free variables with negative eigenvalues clipped to zero."""
    mask = free[:, None] & free[None, :]
    values, vectors = jnp.linalg.eigh(jnp.where(mask, 0.5 * (hessian + hessian.T), 0.0))
    return (vectors * jnp.maximum(values, 0.0)) @ vectors.T


def _newton_direction(grad: Array, hessian: Array, c: Array, jacobian: Array, state: _State,
                      lower: Array, upper: Array, free: Array
                      ) -> tuple[Array, Array, Array, Array, Array]:
    """``dx, dnu, dz_lower, dz_upper, dz_constraint`` from the reduced primal-dual Newton
    system; ``grad`` is that of ``phi_mu``'s smooth part, ``grad f - J_c' mu / c``, and
    ``hessian`` that of the Lagrangian ``f - z_c' c``."""
    m = grad.shape[0]
    s_l, s_u = _slacks(state.x, lower, upper, free)
    mu = state.mu
    ones = free.astype(grad.dtype)
    sigma = jnp.where(free, state.z_lower / s_l + state.z_upper / s_u, 1.0)
    jacobian = jnp.where(free[None, :], jacobian, 0.0)
    constraints = jacobian.T @ ((state.z_constraint / c)[:, None] * jacobian)
    top = jnp.concatenate([_convexified(hessian, free) + constraints + jnp.diag(sigma),
                           ones[:, None]], 1)
    corner = jnp.where(jnp.any(free), 0.0, 1.0)
    bottom = jnp.concatenate([ones, corner[None]])[None, :]
    rhs_x = jnp.where(free, -(grad + state.nu) + mu / s_l - mu / s_u, 0.0)
    rhs = jnp.concatenate([rhs_x, (1.0 - jnp.sum(state.x))[None]])
    step = jnp.linalg.solve(jnp.concatenate([top, bottom], 0), rhs)
    dx, dnu = step[:m], step[m]
    dz_l = jnp.where(free, mu / s_l - state.z_lower - state.z_lower / s_l * dx, 0.0)
    dz_u = jnp.where(free, mu / s_u - state.z_upper + state.z_upper / s_u * dx, 0.0)
    dz_c = mu / c - state.z_constraint - state.z_constraint / c * (jacobian @ dx)
    return dx, dnu, dz_l, dz_u, dz_c


def _max_step(value: Array, change: Array, tau: Array) -> Array:
    """Largest ``a <= 1`` with ``value + a * change >= (1 - tau) * value`` (value > 0)."""
    limits = jnp.where(change < 0, -tau * value / jnp.where(change < 0, change, -1.0), 1.0)
    return jnp.minimum(1.0, jnp.min(limits, initial=1.0))


def _barrier(objective: Callable[..., Array], constraint: Callable[..., Array], x: Array,
             data: Any, lower: Array, upper: Array, free: Array, mu: Array) -> Array:
    """``phi_mu(x) = f(x) - mu * (sum_free(log(x - lower) + log(upper - x)) + sum_k log
    c_k(x))``, ``+inf`` where some ``c_k <= 0``."""
    s_l, s_u = _slacks(x, lower, upper, free)
    c = constraint(x, data)
    inside = c > 0
    logs = jnp.sum(jnp.where(inside, jnp.log(jnp.where(inside, c, 1.0)), -jnp.inf))
    return objective(x, data) - mu * (jnp.sum(jnp.where(free, jnp.log(s_l) + jnp.log(s_u), 0.0))
                                      + logs)


def _line_search(objective: Callable[..., Array], constraint: Callable[..., Array],
                 state: _State, dx: Array, alpha: Array, grad: Array, data: Any, lower: Array,
                 upper: Array, free: Array) -> Array:
    """Armijo backtracking on the barrier function from ``alpha`` (halving)."""
    s_l, s_u = _slacks(state.x, lower, upper, free)
    slope = jnp.sum(jnp.where(free, grad - state.mu / s_l + state.mu / s_u, 0.0) * dx)
    phi0 = _barrier(objective, constraint, state.x, data, lower, upper, free, state.mu)
    slack = 10 * jnp.finfo(phi0.dtype).eps * (1.0 + jnp.abs(phi0))  # rounding of phi itself

    def rejected(carry: tuple[Array, Array]) -> Array:
        step, count = carry
        phi = _barrier(objective, constraint, state.x + step * dx, data, lower, upper, free,
                       state.mu)
        good = phi <= phi0 + ARMIJO * step * jnp.minimum(slope, 0.0) + slack
        return ~good & (count < BACKTRACKS)

    step, _ = jax.lax.while_loop(rejected, lambda c: (0.5 * c[0], c[1] + 1), (alpha, 0))
    return step


def _derivatives(objective: Callable[..., Array], constraint: Callable[..., Array], x: Array,
                 data: Any) -> tuple[Array, Array, Array]:
    """``grad f``, ``c`` and its Jacobian ``J_c`` at ``x``."""
    return (jax.grad(objective)(x, data), constraint(x, data),
            jax.jacfwd(constraint)(x, data))


def _iterate(objective: Callable[..., Array], constraint: Callable[..., Array], data: Any,
             lower: Array, upper: Array, free: Array, tol: float, state: _State) -> _State:
    """One interior-point iteration: update ``mu`` if the barrier problem is solved, step."""
    grad, c, jacobian = _derivatives(objective, constraint, state.x, data)
    barrier_error = kkt_residuals(grad - jacobian.T @ state.z_constraint, c, state, lower,
                                  upper, free, state.mu)
    mu = jnp.where(barrier_error <= 10 * state.mu,
                   jnp.maximum(0.1 * tol, jnp.minimum(0.2 * state.mu, state.mu ** 1.5)),
                   state.mu)
    state = state._replace(mu=mu)

    def lagrangian(x: Array) -> Array:
        return objective(x, data) - state.z_constraint @ constraint(x, data)

    barrier_grad = grad - jacobian.T @ (mu / c)
    dx, dnu, dz_l, dz_u, dz_c = _newton_direction(barrier_grad, jax.hessian(lagrangian)(state.x),
                                                  c, jacobian, state, lower, upper, free)
    tau = jnp.maximum(0.99, 1.0 - mu)
    s_l, s_u = _slacks(state.x, lower, upper, free)
    primal = jnp.minimum(_max_step(s_l, jnp.where(free, dx, 0.0), tau),
                         _max_step(s_u, jnp.where(free, -dx, 0.0), tau))
    dual = jnp.minimum(jnp.minimum(_max_step(jnp.where(free, state.z_lower, 1.0), dz_l, tau),
                                   _max_step(jnp.where(free, state.z_upper, 1.0), dz_u, tau)),
                       _max_step(state.z_constraint, dz_c, tau))
    alpha = _line_search(objective, constraint, state, dx, primal, barrier_grad, data, lower,
                         upper, free)
    x = jnp.where(free, state.x + alpha * dx, state.x)
    s_l, s_u = _slacks(x, lower, upper, free)
    grad, c, jacobian = _derivatives(objective, constraint, x, data)
    # keep each multiplier within a factor 1e10 of mu / slack (IPOPT's safeguard)
    z_l = jnp.clip(state.z_lower + dual * dz_l, mu / (1e10 * s_l), 1e10 * mu / s_l)
    z_u = jnp.clip(state.z_upper + dual * dz_u, mu / (1e10 * s_u), 1e10 * mu / s_u)
    z_c = jnp.clip(state.z_constraint + dual * dz_c, mu / (1e10 * c), 1e10 * mu / c)
    new = _State(x, jnp.where(free, z_l, 0.0), jnp.where(free, z_u, 0.0), z_c,
                 state.nu + alpha * dnu, mu, state.iteration + 1, state.error)
    error = kkt_residuals(grad - jacobian.T @ z_c, c, new, lower, upper, free, 0.0)
    return new._replace(error=error)


def minimise_on_simplex(objective: Callable[..., Array], data: Any, lower: Array, upper: Array,
                        tol: float = 1e-10, max_iter: int = 200,
                        start: Array | None = None,
                        constraint: Callable[..., Array] = no_constraint) -> Solution:
    """Minimise ``objective(x, data)`` subject to ``sum(x) = 1``, ``lower <= x <= upper`` and
    ``constraint(x, data) >= 0``.

    ``objective`` and ``constraint`` must be twice differentiable in ``x``; ``data`` is any
    pytree of arrays they read (posterior draws, weights). The bounds must admit a feasible
    point (``sum(lower) <= 1 <= sum(upper)``, ``lower <= upper``); check that before calling.
    The iterations start at the box centre of :func:`feasible_start`, or near a feasible
    ``start``: ``x0 = (1 - START_PULL) * start + START_PULL * centre``, strictly inside the box;
    ``constraint`` must be strictly positive there (else the result is not converged).
    """
    x0, free = feasible_start(lower, upper)
    if start is not None:
        x0 = jnp.where(free, (1.0 - START_PULL) * start + START_PULL * x0, x0)
    s_l, s_u = _slacks(x0, lower, upper, free)
    mu = jnp.asarray(MU_INITIAL, x0.dtype)
    z_l, z_u = jnp.where(free, mu / s_l, 0.0), jnp.where(free, mu / s_u, 0.0)
    grad, c, jacobian = _derivatives(objective, constraint, x0, data)
    z_c = mu / c
    lagrangian_grad = grad - jacobian.T @ z_c
    nu = -jnp.sum(jnp.where(free, lagrangian_grad - z_l + z_u, 0.0)) / jnp.maximum(jnp.sum(free), 1)
    state = _State(x0, z_l, z_u, z_c, nu, mu, jnp.asarray(0), jnp.asarray(jnp.inf, x0.dtype))
    state = state._replace(error=kkt_residuals(lagrangian_grad, c, state, lower, upper, free,
                                               0.0))
    final = jax.lax.while_loop(
        lambda s: (s.error > tol) & (s.iteration < max_iter),
        lambda s: _iterate(objective, constraint, data, lower, upper, free, tol, s), state)
    return Solution(final.x, final.nu, final.z_lower, final.z_upper, final.error,
                    final.iteration, final.error <= tol, final.z_constraint)
