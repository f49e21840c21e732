"""The CLIMB loss law: each language's validation loss as a function of the mix and the budget.

This is the only place the law is written down; fitting, prediction, the solver and the
benchmarks all import it from here. Everything is a pure function of JAX arrays.

Notation (``docs/design.md``, "The law"): ``S`` training languages (sources), ``T``
evaluated languages (targets). A language may be both; a source-only language is trained on
but not evaluated, an evaluation-only language is never trained on (its loss comes from
transfer alone). ``D`` is the total number of training tokens, scaled by a reference budget:
``tokens_scaled = D / D_ref``.

1. Transfer from source ``j`` to target ``i``, changing with scale::

       alpha_{j->i}(D) = a_{ji} + k_{ji} * (D_ref / D - 1)

   ``a_ji`` is the transfer at the reference budget ``D_ref``, where the pilots sit, and
   ``k_ji`` how much more of it there is at smaller budgets (``a - k`` at an infinite one).
   Written this way, pilots at a single budget ``D = D_ref`` pin ``a`` down and leave ``k`` to
   its prior; written as ``b + k * D_ref / D`` they would pin only the sum ``b + k``, a ridge
   along which NUTS cannot move.

2. Effective (interaction-aware) share of target ``i``; ``r_i`` is its own nominal share
   (zero for an evaluation-only language). The default, source-saturating form::

       rt_i = r_i + sum_{j != i} alpha_{j->i}(D) * (1 - exp(-eta_i * r_j)) / eta_i

   and the self-saturating alternative::

       rt_i = r_i + exp(-eta_i * r_i) * sum_{j != i} alpha_{j->i}(D) * r_j

   ``rt_i`` is floored smoothly above zero (:func:`positive_floor`).

3. Loss (a Chinchilla law in the effective tokens ``rt_i * D``)::

       L_i(r, D) = E_i + B_i * (rt_i * D / D_ref) ** (-beta_i) * exp(delta_i(D))

   ``delta_i``, the law's own error in budget, is 0 unless given
   (:mod:`climb_bayes.model.discrepancy`).
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array

#: Scale of the smooth floor on the effective share (in units of the mix, which sums to 1).
SHARE_FLOOR = 1e-3
#: Effective shares below this are on the floor, where no pilot measures the law: the solver
#: says so when a mix puts a weighted language there.
FLOOR_REGION = 1e-2
#: Cap on the log of the reducible loss ``B (rt D / D_ref)^(-beta)``: a loss of e^60 nats is
#: absurd but finite in float32, so a sampler that strays into a steep corner (a large
#: ``beta`` at a share on the floor) gets a finite, hopeless likelihood rather than NaN.
MAX_LOG_REDUCIBLE = 60.0


class LawParams(NamedTuple):
    """Parameters of the law for one posterior draw (or a batch, with leading draw axes).

    Shapes: ``E, B, beta, eta`` are ``(target,)``; ``a, k`` are ``(source, target)``.
    """

    E: Array  # irreducible loss of each target
    B: Array  # scale of the reducible loss
    beta: Array  # data-scaling exponent
    a: Array  # transfer coefficient at the reference budget D_ref
    k: Array  # change of the transfer with budget, multiplied by D_ref / D - 1
    eta: Array  # saturation of the transferred share


def self_map(sources: list[str], targets: list[str]) -> np.ndarray:
    """``(source, target)`` matrix with 1 where the source and the target are the same language."""
    return np.array([[float(s == t) for t in targets] for s in sources], dtype=np.float32)


def transfer_coefficient(a: Array, k: Array, tokens_scaled: Array) -> Array:
    """``alpha_{j->i}(D) = a_ji + k_ji * (D_ref / D - 1)`` for ``tokens_scaled = D / D_ref``
    ``(n,)`` and ``a, k`` ``(..., source, target)``; returns ``(..., n, source, target)``."""
    return a[..., None, :, :] + k[..., None, :, :] * (1.0 / tokens_scaled[:, None, None] - 1.0)


def source_saturating(shares: Array, own_share: Array, alpha: Array, eta: Array,
                      cross: Array) -> Array:
    """Transferred share ``sum_{j != i} alpha_ji * (1 - exp(-eta_i r_j)) / eta_i``; ``(n, target)``.

    The help of source ``j`` grows like ``alpha_ji * r_j`` for small shares and saturates at
    ``alpha_ji / eta_i``.
    """
    saturated = -jnp.expm1(-shares[:, :, None] * eta) / eta
    return jnp.sum(cross * alpha * saturated, axis=1)


def self_saturating(shares: Array, own_share: Array, alpha: Array, eta: Array,
                    cross: Array) -> Array:
    """Transferred share ``exp(-eta_i r_i) * sum_{j != i} alpha_ji * r_j``; ``(n, target)``.

    Transfer is linear in the sources' shares and fades as the target's own share grows.
    """
    linear = jnp.sum(cross * alpha * shares[:, :, None], axis=1)
    return jnp.exp(-eta * own_share) * linear


def source_saturation(eta: Array, share: Array) -> Array:
    """``(1 - exp(-eta_i s)) / (eta_i s)``: what one token of a source at share ``s`` is worth,
    relative to its first tokens, under :func:`source_saturating`."""
    return -jnp.expm1(-eta * share) / (eta * share)


def self_saturation(eta: Array, share: Array) -> Array:
    """1: under :func:`self_saturating` the worth of a transferred token depends on the
    target's own share, not the source's, so the model samples ``a`` as it is. (Sampled at a
    typical own share instead, ``a = a~ * exp(eta_i s0)``, the prior put 5% of its predicted
    losses above 5 x the largest observed one: strong interference at large ``eta_i``.)"""
    return jnp.ones_like(eta * share)


class InteractionForm(NamedTuple):
    """One member of the family of interaction forms (``docs/design.md``, "The law")."""

    #: ``(shares, own_share, alpha, eta, cross)`` -> transferred share of every target.
    transferred: Callable[..., Array]
    #: ``(eta, share)`` -> the factor in ``(0, 1]`` by which saturation scales the transfer
    #: at a typical share (the model samples transfer there; see
    #: ``climb_bayes.model.numpyro_model``).
    saturation: Callable[[Array, Array], Array]


#: The interaction forms, by the name used in ``law.form`` (``conf/law/*.yaml``).
INTERACTION_FORMS: dict[str, InteractionForm] = {
    "source_saturating": InteractionForm(source_saturating, source_saturation),
    "self_saturating": InteractionForm(self_saturating, self_saturation),
}


def positive_floor(x: Array, floor: float = SHARE_FLOOR) -> Array:
    """Smooth floor ``m + floor * softplus((x - m) / floor)`` with ``m = 0.1 * floor``.

    Equal to ``x`` (to float precision) for ``x >~ 30 * floor``, never below ``m`` (so a
    language that gets no useful tokens has a large but finite loss), with a finite gradient
    ``sigmoid((x - m) / floor)`` everywhere, so a strongly negative transfer never gives NaN.
    """
    minimum = 0.1 * floor
    return minimum + floor * jax.nn.softplus((x - minimum) / floor)


def unfloored_share(params: LawParams, shares: Array, tokens_scaled: Array, self_map: Array,
                    form: str = "source_saturating") -> Array:
    """``r_i + transferred_i``, the effective share before the floor (negative where
    interference outweighs the language's own tokens); ``(n, target)``.

    ``shares`` is ``(n, source)`` (rows on the simplex); ``tokens_scaled`` is ``(n,)``,
    ``D / D_ref``.
    """
    own_share = shares @ self_map
    alpha = transfer_coefficient(params.a, params.k, tokens_scaled)
    transferred = INTERACTION_FORMS[form].transferred(shares, own_share, alpha, params.eta,
                                                     1.0 - self_map)
    return own_share + transferred


def effective_share(params: LawParams, shares: Array, tokens_scaled: Array, self_map: Array,
                    form: str = "source_saturating") -> Array:
    """Interaction-aware share ``rt_i(r, D)`` of every target, :func:`unfloored_share` under
    :func:`positive_floor`; ``(n, target)``."""
    return positive_floor(unfloored_share(params, shares, tokens_scaled, self_map, form))


def share_error_variance(params: LawParams, shares: Array, tokens_scaled: Array,
                         self_map: Array, form: str, smallest_own: Array,
                         smallest_effective: Array, sd: Array, growth: Array) -> Array:
    """``(n, target)``: the variance of the law's error below the shares at which the pilots
    measured each target's loss, on the log of its reducible loss
    (:mod:`climb_bayes.model.share_error`)::

        v_i = s^2 u_i (2 - u_i) + g^2 max(0, b_i - 1)^2,     u_i = min(1, a_i^2 + b_i^2)

    with ``s`` the error at a share of 0 (``sd``), ``g`` its growth per e-fold deeper than one
    (``growth``), and

    - ``a_i = max(0, 1 - r_i / m_i)``: its own share ``r_i`` below the smallest own share
      ``m_i`` of its measured losses (the split of its effective share between its own tokens
      and transfer is unmeasured there), 1 at a share of 0; 0 where ``m_i = 0``;
    - ``b_i = max(0, ln(mt_i / rt_i))``: the e-folds by which its effective share ``rt_i`` lies
      below the smallest ``mt_i`` of its measured losses (the power law in effective tokens is
      extrapolated there, as far as the floor); 0 where ``mt_i = 0``.

    The first part reaches ``s^2`` at an own share of 0 or an e-fold below the measured
    effective shares and stays there; the second takes over beyond that e-fold, where the
    losses at a share of 0 show the law's error still growing. Both have a continuous gradient
    everywhere (the square root of ``v`` has none at 0, which is why the solver pays ``v``)."""
    own = jnp.where(smallest_own > 0, jnp.maximum(
        0.0, 1.0 - (shares @ self_map) / jnp.where(smallest_own > 0, smallest_own, 1.0)), 0.0)
    rt = effective_share(params, shares, tokens_scaled, self_map, form)
    folds = jnp.where(smallest_effective > 0, jnp.maximum(
        0.0, jnp.log(jnp.where(smallest_effective > 0, smallest_effective, 1.0) / rt)), 0.0)
    below = jnp.minimum(own ** 2 + folds ** 2, 1.0)
    return sd ** 2 * below * (2.0 - below) + growth ** 2 * jnp.maximum(0.0, folds - 1.0) ** 2


def expected_loss(params: LawParams, shares: Array, tokens_scaled: Array, self_map: Array,
                  form: str = "source_saturating", discrepancy: Array | None = None) -> Array:
    """Noise-free loss ``L_i(r, D) = E_i + B_i * (rt_i * D / D_ref) ** (-beta_i) *
    exp(delta_i)``; ``(n, target)``.

    ``discrepancy`` ``(n, target)`` is ``delta_i`` at each row's budget, the law's own error in
    budget on the log of the reducible loss (:mod:`climb_bayes.model.discrepancy`); None is 0. With
    a
    monolingual mix ``r = e_i`` and no transfer this is the Chinchilla law of ``i``. For many
    posterior draws, ``jax.vmap`` over ``params``.
    """
    rt = effective_share(params, shares, tokens_scaled, self_map, form)
    log_tokens = jnp.log(rt) + jnp.log(tokens_scaled)[:, None]
    log_reducible = jnp.log(params.B) - params.beta * log_tokens
    if discrepancy is not None:
        log_reducible = log_reducible + discrepancy
    return params.E + jnp.exp(jnp.minimum(log_reducible, MAX_LOG_REDUCIBLE))
