"""How wrong the law may be in budget: a smooth random departure, growing beyond the pilots.

The law says each language's reducible loss falls as a power of its effective tokens. Real
curves bend away from any one power law (the exponent drifts, a phase ends). The model
multiplies each target's reducible loss by ``exp(delta_i(u))``, ``u = ln(D / D_ref)``::

    ln(L_i - E_i) = ln B_i - beta_i ln(rt_i D / D_ref) + delta_i(u)

``delta_i = delta_0 + delta~_i``: a part ``delta_0`` shared by every language (what bends all
curves alike: a network running short of capacity, a learning-rate schedule) and a part
``delta~_i`` of each language's own. Each is an integrated Wiener process (a cubic-spline
prior) started at the pilots' smallest budget ``u_1``, zero and flat there, less its
least-squares line over the pilots' budgets (:func:`without_trend`: a line is what ``ln B_i``
and ``beta_i`` already describe, so ``delta_i`` holds only the bending they cannot). A process's
slope performs a random walk with intensity ``tau^2`` per e-fold of budget, so beyond the last
knot ``u_K``, ``h`` e-folds out,

    delta_i(u_K + h) = delta_i(u_K) + h delta_i'(u_K) + (tau_0 e_0 + tau_i e_i) sqrt(h^3 / 3),

``e_0, e_i ~ N(0, 1)``, ``tau_0`` the shared part's intensity, ``tau_i`` the language's own:
the uncertainty grows like ``h^(3/2)``, and the shared part does not average away in a mix's
weighted loss. Between knots ``u_k < u_{k+1}`` (``h`` apart) the
state ``(delta, delta')`` moves by the exact transition of the process::

    delta_{k+1}  = delta_k + h delta'_k + tau_i h^(3/2) / sqrt(3) * z1
    delta'_{k+1} = delta'_k + tau_i (sqrt(3) / 2 * h^(1/2) z1 + h^(1/2) / 2 * z2)

(the Cholesky factor of the covariance ``tau^2 [[h^3/3, h^2/2], [h^2/2, h]]``), with
``z ~ N(0, 1)`` sampled non-centred, for each part. The knots are the pilots' distinct budgets,
so pilots at three or more budgets show how far the curves bend and how much of it all
languages share, and ``tau_0`` and ``tau_i`` are learned from that; ``tau_i`` is pooled across
languages around a common scale (:func:`climb_bayes.model.numpyro_model.discrepancy`).

``delta_i`` depends on the budget only, but it scales the reducible loss, which is large for a
language that gets few tokens: different mixes get different uncertainty, and the decision
sees it. Pure functions of JAX arrays.
"""

import jax
import jax.numpy as jnp

Array = jax.Array


def knot_states(sd: Array, innovations: Array, knots: Array) -> tuple[Array, Array]:
    """Processes at the knots: ``(level, slope)``, each ``(..., process, knot)``.

    ``sd`` is each process's intensity (``tau_i`` or ``tau_0``) ``(..., process)``,
    ``innovations`` the standard normal ``z`` ``(..., process, knot - 1, 2)``, ``knots`` the
    sorted ``u_k`` ``(knot,)``; level and slope start at 0.
    """
    steps = jnp.diff(knots)  # (knot - 1,)
    root = jnp.sqrt(steps)
    level_noise = sd[..., None] * steps * root / jnp.sqrt(3.0) * innovations[..., 0]
    slope_noise = sd[..., None] * root * (jnp.sqrt(3.0) / 2.0 * innovations[..., 0]
                                          + innovations[..., 1] / 2.0)
    slope = jnp.cumsum(slope_noise, axis=-1)  # slope after each step
    slope_before = slope - slope_noise  # slope at the start of each step
    level = jnp.cumsum(steps * slope_before + level_noise, axis=-1)
    zero = jnp.zeros_like(sd)[..., None]
    return (jnp.concatenate([zero, level], axis=-1), jnp.concatenate([zero, slope], axis=-1))


def without_trend(level: Array, slope: Array, knots: Array, degree: int = 1
                  ) -> tuple[Array, Array]:
    """The process less its least-squares polynomial of ``degree`` over the knots, ``p(u)``:
    ``(level - p(u), slope - p'(u))``.

    A straight line in ``u`` (``degree=1``) is exactly what the law's own ``ln B_i`` and
    ``beta_i`` already describe, so the discrepancy keeps only what they cannot: the bending.
    Without this, a trend in ``delta_i`` and a change of ``beta_i`` would fit the pilots equally
    well, a ridge NUTS crawls along. With the exponent's drift (:func:`drift`) the parabola is
    the drift's, so the process loses its parabola too (``degree=2``). With ``degree + 1``
    knots or fewer nothing is left at the knots; the process still extrapolates beyond them.
    """
    degree = min(degree, knots.shape[0] - 1)
    centred = knots - knots.mean()
    powers = jnp.arange(degree + 1)
    basis = centred[:, None] ** powers  # (knot, degree + 1)
    derivative = jnp.where(powers > 0, powers * centred[:, None] ** jnp.maximum(powers - 1, 0),
                           0.0)
    coefficients = level @ jnp.linalg.pinv(basis).T  # (..., degree + 1)
    return level - coefficients @ basis.T, slope - coefficients @ derivative.T


def drift(knots: Array) -> tuple[Array, Array]:
    """The exponent's drift at the knots, per unit of ``gamma_i``: ``(level, slope)``,
    each ``(knot,)``.

    A law whose exponent falls by ``gamma_i`` per e-fold of budget, ``-d ln(L_i - E_i) / du =
    beta_i - gamma_i u``, adds ``gamma_i u^2 / 2`` to ``ln(L_i - E_i)``: a bend that keeps
    curving the way the pilots curve, where the random walk's slope only wanders. Less its
    line over the knots, like the process (:func:`without_trend`), so it bends and does not
    tilt.
    """
    parabola = (knots - knots[0]) ** 2 / 2.0
    return without_trend(parabola, knots - knots[0], knots)


def at_knots(level: Array, point_knot: Array) -> Array:
    """``delta_i`` at each point's knot: ``(..., point, target)`` from ``level``
    ``(..., target, knot)`` and the knot index of each point ``(point,)``."""
    return jnp.swapaxes(level[..., point_knot], -1, -2)


def drift_beyond(exponent: Array, curvature: Array, h: Array) -> Array:
    """What the exponent's drift adds to ``delta_i`` ``h`` e-folds beyond the last knot, where
    the local exponent of the reducible loss is ``b = beta_i - delta_i'(u_K)``.

    Inside the pilots the drift is ``gamma_i u^2 / 2``: the exponent changes by ``-gamma_i`` per
    e-fold. A rising exponent (``gamma_i < 0``, the curve steepening) keeps rising so,
    ``gamma_i h^2 / 2``. A falling one (``gamma_i > 0``, the curve flattening) carried on
    unchanged would cross zero ``b / gamma_i`` e-folds out and turn the loss upward, which no
    longer training does; so it decays geometrically at the same initial rate,
    ``b(h) = b exp(-gamma_i h / b)``, and the curve keeps flattening without turning::

        b h (1 - (1 - exp(-x)) / x),   x = gamma_i h / b,

    which is ``gamma_i h^2 / 2`` to first order: the pilots' own curvature at the last knot.
    ``b`` is floored at 1e-3.
    """
    b = jnp.maximum(exponent, 1e-3)
    x = jnp.maximum(curvature, 0.0) * h / b
    small = x < 1e-4
    safe = jnp.where(small, 1.0, x)
    retained = jnp.where(small, 1.0 - x / 2.0 + x ** 2 / 6.0, -jnp.expm1(-safe) / safe)
    return jnp.where(curvature > 0.0, b * h * (1.0 - retained), curvature * h ** 2 / 2.0)


def beyond_knots(level: Array, slope: Array, knots: Array, u: Array, wander: Array,
                 curvature: Array | None = None, exponent: Array | None = None) -> Array:
    """``delta_i(u)`` for budgets ``u`` ``(budget,)`` given the knots' states; ``(..., budget,
    target)``.

    Below the first knot the first knot's level; between knots the level interpolated linearly
    (the pilots' own budgets are knots, so this is where predictions inside the pilots' range
    fall); beyond the last knot the extrapolation above, with ``wander`` ``(..., target)`` the
    draws of ``tau_0 e_0 + tau_i e_i``, shared by every budget (one path per draw: the same
    ``e`` at every ``h``). ``curvature`` ``(..., target)``, the exponent's drift ``gamma_i``
    (:func:`drift`), keeps bending it by :func:`drift_beyond`, which needs the law's
    ``exponent`` ``beta_i`` ``(..., target)``.
    """
    h = jnp.maximum(u - knots[-1], 0.0)[:, None]  # (budget, 1)
    last_level, last_slope = level[..., None, :, -1], slope[..., None, :, -1]
    outside = (last_level + h * last_slope
               + wander[..., None, :] * jnp.sqrt(h ** 3 / 3.0))
    if curvature is not None:
        if exponent is None:
            raise ValueError("the drift beyond the pilots needs the law's exponent beta_i")
        local = exponent - slope[..., -1]  # the reducible loss's exponent at the last knot
        outside = outside + drift_beyond(local[..., None, :], curvature[..., None, :], h)
    if knots.shape[0] > 1:
        right = jnp.clip(jnp.searchsorted(knots, u), 1, knots.shape[0] - 1)
        weight = (u - knots[right - 1]) / (knots[right] - knots[right - 1])
        inside = jnp.swapaxes(level[..., right - 1] * (1.0 - weight)
                              + level[..., right] * weight, -1, -2)
    else:
        inside = jnp.zeros_like(outside)
    delta = jnp.where(u[:, None] > knots[-1], outside, inside)
    return jnp.where(u[:, None] <= knots[0], level[..., None, :, 0], delta)
