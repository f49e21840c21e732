"""The law's error in budget as sampled sites: the priors of :mod:`climb_bayes.model.discrepancy`.

:func:`discrepancy` is the sub-model :func:`climb_bayes.model.numpyro_model.climb_model` calls
for ``delta_i(u)`` at every checkpoint: the integrated random walks (:func:`random_walks`, one
per language around a pooled intensity, plus one shared by all) and the exponent's drift
(:func:`exponent_drift`). The walks' arithmetic, pure functions of arrays, is in
:mod:`climb_bayes.model.discrepancy`.
"""

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

from climb_bayes.model.discrepancy import at_knots, drift, knot_states, without_trend
from climb_bayes.model.priors import Priors

if TYPE_CHECKING:  # the model module calls this one
    from climb_bayes.model.numpyro_model import ModelData


def discrepancy(data: "ModelData", priors: Priors, beta: jax.Array) -> jax.Array:
    """The law's error in budget at every checkpoint, ``delta_i(u)``: ``(point, target)``.

    ``delta_i = delta_0 + delta~_i`` (:mod:`climb_bayes.model.discrepancy`): the shared part's
    intensity ``tau_0 ~ LogNormal(log discrepancy_shared_scale, discrepancy_log_sd)`` (site
    ``discrepancy_shared_sd``); each language's own ``tau_i = tau * exp(discrepancy_spread *
    w_i)``, ``w_i ~ Normal(0, 1)``, around the common ``tau ~ LogNormal(log discrepancy_scale,
    discrepancy_log_sd)`` (site ``discrepancy_scale``). Both processes at the pilots' budgets
    come from their non-centred innovations; ``discrepancy`` and ``discrepancy_slope``
    ``(target, budget_knot)`` record their sum for predictions beyond the pilots.
    ``discrepancy_shared_scale = 0`` leaves the shared part out. With
    ``exponent_drift_scale > 0`` each language's bend also has the exponent's drift
    (:func:`exponent_drift`, a fraction of its exponent ``beta`` ``(target,)``), and the
    processes lose their parabola over the knots instead of their line.
    """
    n_target = data.self_map.shape[1]
    drifting = priors.exponent_drift_scale > 0
    level = slope = jnp.zeros((n_target, data.knots.shape[0]))
    if priors.discrepancy_scale > 0:
        level, slope = random_walks(data, priors, degree=2 if drifting else 1)
    if drifting:
        gamma = exponent_drift(n_target, priors, beta)
        drift_level, drift_slope = drift(jnp.asarray(data.knots))
        level = level + gamma[:, None] * drift_level
        slope = slope + gamma[:, None] * drift_slope
    numpyro.deterministic("discrepancy", level)
    numpyro.deterministic("discrepancy_slope", slope)
    return at_knots(level, data.point_knot)


def random_walks(data: "ModelData", priors: Priors, degree: int) -> tuple[jax.Array, jax.Array]:
    """The integrated random walks at the knots, less their least-squares polynomial of
    ``degree`` there: ``(level, slope)``, each ``(target, budget_knot)``.

    Each language's own walk has intensity ``tau_i`` (site ``discrepancy_sd``); with
    ``discrepancy_shared_scale > 0`` the walk shared by every language (``tau_0``, site
    ``discrepancy_shared_sd``) is added to each.
    """
    n_target, n_knot = data.self_map.shape[1], data.knots.shape[0]
    scale = numpyro.sample("discrepancy_scale", dist.LogNormal(
        jnp.log(priors.discrepancy_scale), priors.discrepancy_log_sd))
    with numpyro.plate("target", n_target):
        offset = numpyro.sample("discrepancy_sd_offset", dist.Normal(0.0, 1.0))
    sd = numpyro.deterministic("discrepancy_sd",
                               scale * jnp.exp(priors.discrepancy_spread * offset))
    if n_knot == 1:
        return jnp.zeros((n_target, 1)), jnp.zeros((n_target, 1))
    innovations = numpyro.sample("discrepancy_innovation", dist.Normal(0.0, 1.0).expand(
        [n_target, n_knot - 1, 2]).to_event(3))
    shared = priors.discrepancy_shared_scale > 0
    if shared:
        shared_sd = numpyro.sample("discrepancy_shared_sd", dist.LogNormal(
            jnp.log(priors.discrepancy_shared_scale), priors.discrepancy_log_sd))
        shared_innovations = numpyro.sample("discrepancy_shared_innovation", dist.Normal(
            0.0, 1.0).expand([1, n_knot - 1, 2]).to_event(3))
        sd = jnp.append(sd, shared_sd)
        innovations = jnp.concatenate([innovations, shared_innovations])
    level, slope = without_trend(*knot_states(sd, innovations, data.knots), data.knots, degree)
    if shared:  # the languages' own parts plus the shared one
        return level[:-1] + level[-1], slope[:-1] + slope[-1]
    return level, slope


def exponent_drift(n_target: int, priors: Priors, beta: jax.Array) -> jax.Array:
    """``gamma_i`` ``(target,)``, how fast each language's exponent falls per e-fold of budget
    (:func:`climb_bayes.model.discrepancy.drift`), as a fraction of the exponent ``beta_i``:
    ``gamma_i = beta_i g_i``, ``g_i = g + exponent_drift_spread * s * z_i``, ``z_i ~
    Normal(0, 1)``, ``g ~ Normal(exponent_drift_centre, s)`` (site ``exponent_drift_mean``),
    ``s = exponent_drift_scale``; site ``exponent_drift`` is ``gamma_i``.

    Relative, because how fast curves bend scales with how fast they fall: on our real study's
    tiny pilots (``beta`` about 0.4) the exponent falls by 0.13-0.16 per e-fold, on Data Mixing
    Laws' 70M-410M runs (``beta`` about 0.13) by about a tenth of that; ``g`` is 0.24-0.40 and
    about 0.03-0.18 (``Priors``). At the prior's median exponent (``beta_median`` 0.3) the
    pooled drift is ``gamma ~ Normal(0.045, 0.045)``."""
    scale = priors.exponent_drift_scale
    mean = numpyro.sample("exponent_drift_mean", dist.Normal(priors.exponent_drift_centre,
                                                            scale))
    with numpyro.plate("target", n_target):
        offset = numpyro.sample("exponent_drift_offset", dist.Normal(0.0, 1.0))
    return numpyro.deterministic("exponent_drift",
                                 beta * (mean + priors.exponent_drift_spread * scale * offset))
