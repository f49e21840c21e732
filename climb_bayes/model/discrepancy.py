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
knot ``u_K``, ``h`` e-folds out, to first order

    delta_i(u_K + h) = delta_i(u_K) + h delta_i'(u_K) + (tau_0 e_0 + tau_i e_i) sqrt(h^3 / 3),

``e_0, e_i ~ N(0, 1)``, ``tau_0`` the shared part's intensity, ``tau_i`` the language's own:
the uncertainty grows like ``h^(3/2)``, and the shared part does not average away in a mix's
weighted loss. Beyond the pilots the wander moves the logarithm of the loss's local exponent
(:func:`exponent_beyond`), so that no draw has a loss that rises with more training.

Between knots ``u_k < u_{k+1}`` (``h`` apart) the state ``(delta, delta')`` moves by the exact
transition of the process::

    delta_{k+1}  = delta_k + h delta'_k + tau_i h^(3/2) / sqrt(3) * z1
    delta'_{k+1} = delta'_k + tau_i (sqrt(3) / 2 * h^(1/2) z1 + h^(1/2) / 2 * z2)

(the Cholesky factor of the covariance ``tau^2 [[h^3/3, h^2/2], [h^2/2, h]]``), with
``z ~ N(0, 1)`` sampled non-centred, for each part. The knots are the pilots' distinct budgets,
so pilots at three or more budgets show how far the curves bend and how much of it all
languages share, and ``tau_0`` and ``tau_i`` are learned from that; ``tau_i`` is pooled across
languages around a common scale (:func:`climb_bayes.model.discrepancy_prior.discrepancy`).

``delta_i`` depends on the budget only, but it scales the reducible loss, which is large for a
language that gets few tokens: different mixes get different uncertainty, and the decision
sees it. Pure functions of JAX arrays.
"""

import jax
import jax.numpy as jnp
import numpy as np

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


# Gauss-Legendre nodes and weights on [0, 1] for the fall beyond the knots
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(32)
_NODES, _WEIGHTS = (_NODES + 1.0) / 2.0, _WEIGHTS / 2.0


def exponent_beyond(exponent: Array, curvature: Array | None, wander: Array,
                    wander_sd: Array, h: Array) -> Array:
    """The local exponent of the reducible loss, ``b(h) = -d ln(L_i - E_i) / du``, ``h``
    e-folds beyond the last knot, where it is ``b = beta_i - delta_i'(u_K)`` (floored at 1e-3).

    The exponent's drift (``curvature`` ``gamma_i``, or none) moves it as the pilots show: a
    falling exponent (``gamma_i > 0``, the curve flattening) decays geometrically at the
    pilots' rate, ``b exp(-gamma_i h / b)``, so it never crosses zero; a rising one keeps
    rising, ``b - gamma_i h``. The random walk's wander ``w = sigma e`` (``e ~ N(0, 1)``,
    ``sigma = wander_sd``) moves its logarithm::

        b(h) = drifted(h) * exp(-a e - a^2 / 2),   a = sqrt(3) / 2 * sigma / b * sqrt(h),

    a lognormal factor of mean 1. To first order in ``a`` the exponent falls by
    ``sqrt(3) / 2 * w sqrt(h)``, the walk's slope on ``delta_i`` (whose level then wanders by
    ``w sqrt(h^3 / 3)``), and the mean exponent is the drift's; but it stays positive, so no
    draw predicts a loss that rises with more training.
    """
    b = jnp.maximum(exponent, 1e-3)
    if curvature is None:
        drifted = b
    else:
        drifted = jnp.where(curvature > 0.0, b * jnp.exp(-jnp.maximum(curvature, 0.0) * h / b),
                            b - curvature * h)
    a = jnp.sqrt(3.0) / 2.0 * jnp.sqrt(h) / b
    return drifted * jnp.exp(-a * wander - (a * wander_sd) ** 2 / 2.0)


def fall_beyond(exponent: Array, curvature: Array | None, wander: Array, wander_sd: Array,
                h: Array) -> Array:
    """How far ``ln(L_i - E_i)`` falls from the last knot to ``h`` e-folds beyond it:
    ``int_0^h b(s) ds`` with ``b`` of :func:`exponent_beyond` (32-point Gauss-Legendre in
    ``t``, ``s = h t^2``, which makes the integrand smooth at ``s = 0``). Its mean over the
    wander is that of the drift alone; without the drift and the wander it is ``b h``."""
    t = jnp.asarray(_NODES, h.dtype)
    s = h[..., None] * t ** 2
    b = exponent_beyond(exponent[..., None], None if curvature is None else curvature[..., None],
                        wander[..., None], wander_sd[..., None], s)
    return jnp.sum(b * 2.0 * h[..., None] * t * jnp.asarray(_WEIGHTS, h.dtype), axis=-1)


def beyond_knots(level: Array, slope: Array, knots: Array, u: Array, exponent: Array,
                 wander: Array, wander_sd: Array, curvature: Array | None = None) -> Array:
    """``delta_i(u)`` for budgets ``u`` ``(budget,)`` given the knots' states; ``(..., budget,
    target)``.

    Below the first knot the first knot's level; between knots the level interpolated linearly
    (the pilots' own budgets are knots, so this is where predictions inside the pilots' range
    fall). Beyond the last knot ``u_K``, ``h`` e-folds out, the reducible loss keeps falling at
    the local exponent of :func:`exponent_beyond`::

        delta_i(u_K + h) = delta_i(u_K) + beta_i h - int_0^h b(s) ds

    (:func:`fall_beyond`), with the law's ``exponent`` ``beta_i``, ``wander`` the draws of
    ``tau_0 e_0 + tau_i e_i`` and ``wander_sd`` their sd ``sqrt(tau_0^2 + tau_i^2)`` (all
    ``(..., target)``; one path per draw, the same ``e`` at every ``h``) and ``curvature`` the
    exponent's drift ``gamma_i`` (:func:`drift`) or none. Without wander and drift this is the
    last knot's line, ``delta_i(u_K) + h delta_i'(u_K)``; the wander adds
    ``w sqrt(h^3 / 3)`` to first order, the integrated random walk's own continuation, and
    the drift ``gamma_i h^2 / 2``, the pilots' curvature.
    """
    h = jnp.maximum(u - knots[-1], 0.0)[:, None]  # (budget, 1)
    local = exponent - slope[..., -1]  # the reducible loss's exponent at the last knot
    fall = fall_beyond(local[..., None, :], None if curvature is None else curvature[..., None, :],
                       wander[..., None, :], wander_sd[..., None, :], h)
    outside = level[..., None, :, -1] + exponent[..., None, :] * h - fall
    if knots.shape[0] > 1:
        right = jnp.clip(jnp.searchsorted(knots, u), 1, knots.shape[0] - 1)
        weight = (u - knots[right - 1]) / (knots[right] - knots[right - 1])
        inside = jnp.swapaxes(level[..., right - 1] * (1.0 - weight)
                              + level[..., right] * weight, -1, -2)
    else:
        inside = jnp.zeros_like(outside)
    delta = jnp.where(u[:, None] > knots[-1], outside, inside)
    return jnp.where(u[:, None] <= knots[0], level[..., None, :, 0], delta)
