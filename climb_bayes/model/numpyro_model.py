"""The Bayesian CLIMB model: priors on the law's parameters and a Student-t likelihood.

One numpyro model function, :func:`climb_model`. The law itself is imported from
:mod:`climb_bayes.model.law`. Units: budgets are scaled by ``D_ref`` (``tokens_scaled = D / D_ref``)
and every target's loss by its ``loss_scale`` (its median observed pilot loss), so the default
priors (the fields of :class:`Priors`) suit any corpus and tokenizer.

Priors (each hyper-parameter is a field of :class:`Priors`)::

    E_i     ~ LogNormal(log(E_fraction * loss_scale_i), E_log_sd)        irreducible loss
    B_i     ~ LogNormal(log(B_fraction * loss_scale_i), B_log_sd)        reducible-loss scale
    log beta_i ~ Normal(mu_beta, tau_beta)                               scaling exponents,
        mu_beta ~ Normal(log(beta_median), beta_log_sd),                 partially pooled
        tau_beta ~ Gamma(4, 5 / beta_spread)
    a~_ji   ~ Normal(mu_a, tau_a),  mu_a ~ Normal(a_mean, a_mean_sd),    transfer at D_ref and
        tau_a ~ Gamma(4, 5 / a_spread)                                   a typical share, pooled
    k~_ji   ~ Normal(0, tau_k),  tau_k ~ Gamma(4, 5 / k_spread)          its change with budget
        a_ji = a~_ji / g_i,  k_ji = k~_ji / g_i,  g_i = saturation(eta_i, s0)
        (into an evaluation-only target i, a~_ji - mean_j a~_ji + a_mean replaces a~_ji:
        the pilots measure only how its sources compare, :func:`measured_transfer`)
    eta_i   ~ LogNormal(log(eta_median), eta_log_sd)                     saturation
    tau_i = tau exp(discrepancy_spread w_i),  w_i ~ Normal(0, 1),         the law's error in
        tau ~ LogNormal(log discrepancy_scale, discrepancy_log_sd)       budget, delta_i(u) =
    tau_0 ~ LogNormal(log discrepancy_shared_scale, discrepancy_log_sd)  delta_0(u) + delta~_i(u):
        delta~_i, delta_0 ~ integrated Wiener processes of intensity    integrated random walks,
        tau_i^2, tau_0^2                                                one shared by all
    gamma_i = beta_i (g + exponent_drift_spread s z_i),  z_i ~ N(0, 1), the exponent's drift:
        g ~ Normal(c, s),  s = exponent_drift_scale,                    delta_i += gamma_i u^2/2
        c = exponent_drift_centre
    sigma_i ~ HalfNormal(sigma_fraction * loss_scale_i)                  observation noise at D_ref,
    kappa ~ Normal(0, noise_budget_exponent_sd)                          sigma_i (D / D_ref)^-kappa
                                                                         at budget D
    y_{s,i} ~ StudentT(nu, L_i(r_s, D_s), sigma_i (D_s / D_ref)^-kappa)   nu fixed, or Gamma(2, 0.1)

``L_i`` includes ``exp(delta_i(u_s))`` on its reducible part (:mod:`climb_bayes.model.discrepancy`;
``discrepancy_scale = 0`` leaves it out). When some run has several checkpoints, each run ``s``
adds its own offset ``u_si`` and its own slope in budget to all its checkpoints, both integrated
out: the losses of one run are one Gaussian vector
(:func:`climb_bayes.model.run_effect.run_likelihood`).

``E_i`` and ``A_i = B_i * x0_i ** (-beta_i)``, the reducible loss at the anchor ``x0_i`` (the
typical own tokens of ``i``'s observations, :func:`anchor_tokens`; for an evaluation-only
target, its typical effective tokens, :func:`effective_anchor`), are one site,
``loss_split``, whose prior is the two log-normals above (given ``beta_i``, ``log A_i`` is
``log B_i`` shifted) but which NUTS moves in the loss at the anchor ``E_i + A_i`` and the
reducible fraction ``A_i / (E_i + A_i)``: what the pilots pin down, and what they barely see
(:mod:`climb_bayes.model.loss_split`).

Transfer is sampled where the pilots measure it, for the same reason: ``a~_ji`` (site
``a_pair``) is what a token of ``j`` is worth to ``i`` at the reference budget *and* at the
typical share ``s0`` of a source in the pilots (:func:`typical_share`); the law's ``a_ji``
(the worth of the first tokens) is ``a~_ji / g_i`` with ``g_i`` the saturation factor of the
interaction form at ``s0`` (:class:`climb_bayes.model.law.InteractionForm`, e.g.
``(1 - exp(-eta_i s0)) / (eta_i s0)``). Sampled as ``a_ji`` directly, every transfer into
``i`` slides with ``eta_i`` along a ridge (measured on a 3-language simulated design:
correlations of +-0.95 between ``eta_i`` and the pairs into ``i``, R-hat 1.8); sampled at
``s0`` they are nearly independent of it.

Each pooled site is sampled centred or non-centred (``z ~ Normal(0, 1)``, value
``mu + tau * z``) as configured (``law.centred``). Transfer coefficients exist only for
pairs of different languages (``source != target``); on the diagonal ``a`` and ``k`` are
zero by construction.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.infer.reparam import LocScaleReparam

from climb_bayes.model.discrepancy_prior import discrepancy
from climb_bayes.model.law import INTERACTION_FORMS, LawParams, effective_share, expected_loss
from climb_bayes.model.loss_split import LossSplit
from climb_bayes.model.priors import Priors
from climb_bayes.model.run_effect import run_likelihood

#: Sampled or derived sites that make up :class:`LawParams`, plus the noise.
LAW_SITES = ("E", "B", "beta", "a", "k", "eta")
PARAMETER_SITES = (*LAW_SITES, "sigma")


class ModelData(NamedTuple):
    """Arrays the model conditions on. ``point`` = one checkpoint of one run."""

    shares: jax.Array  # (point, source) nominal mix
    tokens_scaled: jax.Array  # (point,) D / D_ref
    obs_point: jax.Array  # (obs,) index of the observation's checkpoint
    obs_target: jax.Array  # (obs,) index of the evaluated language
    self_map: jax.Array  # (source, target) 1 where source and target are one language
    loss_scale: jax.Array  # (target,) typical observed loss of each target
    anchor: jax.Array  # (target,) typical own tokens of each target's observations, / D_ref
    typical_share: jax.Array  # () typical share of a source in the pilots' mixes
    knots: jax.Array  # (knot,) the pilots' distinct budgets, ln(D / D_ref), sorted
    point_knot: jax.Array  # (point,) index into knots of each checkpoint's budget
    point_run: jax.Array  # (point,) index of each checkpoint's run
    run_count: int  # runs sharing a run effect; 0 when no run has two checkpoints (no effect)
    run_slots: jax.Array  # (run, slot) each run's observations by budget, padded with obs count
    obs_lag: jax.Array  # (obs,) ln(D / D_last), D_last the largest budget of the obs's run


def transfer_pairs(self_map: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Source and target indices of every pair of different languages, in row-major order."""
    return np.nonzero(np.asarray(self_map) == 0)


def _pair_matrix(values: jax.Array, pairs: tuple[np.ndarray, np.ndarray],
                 shape: tuple[int, int]) -> jax.Array:
    """Scatter per-pair values into a ``(source, target)`` matrix that is zero elsewhere."""
    return jnp.zeros(shape).at[pairs].set(values)


def spread(name: str, scale: float) -> jax.Array:
    """A pooled site's spread ``tau ~ Gamma(4, 5 / scale)``.

    Its mean is that of a ``HalfNormal(scale)`` (0.8 ``scale``; 90% interval 0.27-1.55
    ``scale``), but its density vanishes at zero like ``tau ** 3`` (a boundary-avoiding prior,
    Chung et al. 2013), so the posterior has no funnel neck where every pooled value is
    squeezed together. Measured: with half-normal spreads NUTS diverged there at m = 4 (6
    divergences, all at small ``beta_tau``); with ``Gamma(2, 2.5 / scale)``, which puts 2.6%
    of its mass below 0.1 ``scale`` (this prior: 0.2%), the tiny Django pilots still diverged
    at the smallest ``beta_tau`` (3 to 12 of 2000 transitions); with this prior none did.
    """
    return numpyro.sample(name, dist.Gamma(4.0, 5.0 / scale))


#: Hierarchical sites that can be sampled centred or non-centred (``law.centred``).
POOLED_SITES = ("log_beta", "a_pair", "k_pair")
#: The location and spread of each pooled site's prior (``None``: a location of 0).
POOLED_PRIORS = {"log_beta": ("beta_mu", "beta_tau"), "a_pair": ("a_mu", "a_tau"),
                 "k_pair": (None, "k_tau")}


def decentred(values: dict[str, Any], centring: dict[str, Any],
              priors: dict[str, tuple[str | None, str]] = POOLED_PRIORS) -> dict[str, Any]:
    """The sampled values ``<site>_decentered`` of pooled sites sampled with centredness ``c``
    (``numpyro.infer.reparam.LocScaleReparam``): a value ``x ~ Normal(mu, tau)`` is sampled as
    ``x' = c mu + (x - mu) / tau^(1 - c)``, from ``Normal(c mu, tau^c)``; ``c = 0`` is the
    non-centred ``z``, ``c = 1`` the value itself. ``values`` holds every site's value,
    ``priors`` names each site's ``mu`` and ``tau`` sites."""
    moved = {}
    for site, c in centring.items():
        location, spread = priors[site]
        mu = 0.0 if location is None else values[location]
        moved[f"{site}_decentered"] = c * mu + (values[site] - mu) / values[spread] ** (1.0 - c)
    return moved


#: The default of ``law.centred``: every pooled site non-centred. Centred transfer pairs
#: diverged in the joint tail of small spread and small transfer (bundled example, tiny Django
#: pilots); with the exponent's drift, centred exponents left 4 of 8000 transitions divergent
#: on the real study's pilots and 1 on the bundled example, non-centred none (docs/model.md).
CENTRED: tuple[str, ...] = ()


def climb_model(data: ModelData, priors: Priors, form: str = "source_saturating",
                loss: jax.Array | None = None, centred: tuple[str, ...] = CENTRED,
                centring: dict[str, Any] | None = None) -> None:
    """Priors on the law's parameters and a Student-t likelihood of the observed losses.

    The pooled sites in ``POOLED_SITES`` but not in ``centred`` are sampled non-centred
    (``numpyro.infer.reparam.LocScaleReparam``), or partially centred where ``centring``
    gives a site its centredness ``c`` in ``[0, 1]`` (one per value, :func:`decentred`).
    Centred is right when the pilots pin the pooled values down more tightly than their
    spread; non-centred is right for values the data barely inform, e.g. ``k_pair`` when all
    pilots share one budget (see ``CENTRED``).
    """
    n_source, n_target = data.self_map.shape
    pairs = transfer_pairs(data.self_map)
    centring = centring or {}
    reparam = {site: LocScaleReparam(centered=jnp.asarray(centring[site], jnp.result_type(float))
                                     if site in centring else 0.0)
               for site in POOLED_SITES if site not in centred}

    with numpyro.handlers.reparam(config=reparam):
        beta_mu = numpyro.sample("beta_mu", dist.Normal(jnp.log(priors.beta_median),
                                                        priors.beta_log_sd))
        beta_tau = spread("beta_tau", priors.beta_spread)
        with numpyro.plate("target", n_target):
            eta = numpyro.sample("eta", dist.LogNormal(jnp.log(priors.eta_median),
                                                       priors.eta_log_sd))
            sigma = numpyro.sample("sigma", dist.HalfNormal(priors.sigma_fraction
                                                            * data.loss_scale))
            log_beta = numpyro.sample("log_beta", dist.Normal(beta_mu, beta_tau))
            beta = numpyro.deterministic("beta", jnp.exp(log_beta))

        a_mu = numpyro.sample("a_mu", dist.Normal(priors.a_mean, priors.a_mean_sd))
        a_tau = spread("a_tau", priors.a_spread)
        k_tau = spread("k_tau", priors.k_spread)
        with numpyro.plate("pair", len(pairs[0])):
            a_pair = numpyro.sample("a_pair", dist.Normal(a_mu, a_tau))
            k_pair = numpyro.sample("k_pair", dist.Normal(0.0, k_tau))

    saturation = INTERACTION_FORMS[form].saturation(eta, data.typical_share)[pairs[1]]
    shape = (n_source, n_target)
    transfer = measured_transfer(a_pair, pairs, data.self_map, priors.a_mean)
    a = numpyro.deterministic("a", _pair_matrix(transfer / saturation, pairs, shape))
    k = numpyro.deterministic("k", _pair_matrix(k_pair / saturation, pairs, shape))
    anchor = effective_anchor(data, a, k, eta, form)
    with numpyro.plate("target", n_target):
        split = numpyro.sample("loss_split", LossSplit(
            jnp.log(priors.E_fraction * data.loss_scale), priors.E_log_sd,
            jnp.log(priors.B_fraction * data.loss_scale) - beta * jnp.log(anchor),
            priors.B_log_sd))
    E = numpyro.deterministic("E", split[..., 0])
    B = numpyro.deterministic("B", split[..., 1] * anchor ** beta)
    params = LawParams(E=E, B=B, beta=beta, a=a, k=k, eta=eta)
    bend = (None if priors.discrepancy_scale == 0 and priors.exponent_drift_scale == 0
            else discrepancy(data, priors, beta))
    mean = expected_loss(params, data.shares, data.tokens_scaled, data.self_map, form, bend)
    mean = mean[data.obs_point, data.obs_target]
    scale = sigma[data.obs_target]
    if priors.noise_budget_exponent_sd > 0:
        exponent = numpyro.sample("noise_budget_exponent",
                                  dist.Normal(0.0, priors.noise_budget_exponent_sd))
        scale = scale * data.tokens_scaled[data.obs_point] ** -exponent
    if data.run_count:
        run_likelihood(data, priors, mean, scale, loss)
        return
    nu = priors.nu if priors.nu is not None else numpyro.sample("nu", dist.Gamma(2.0, 0.1))
    with numpyro.plate("obs", data.obs_point.shape[0]):
        numpyro.sample("loss", dist.StudentT(nu, mean, scale), obs=loss)


def measured_transfer(a_pair: jax.Array, pairs: tuple[np.ndarray, np.ndarray],
                      self_map: jax.Array, unit: float) -> jax.Array:
    """The transfer at the typical share that the law uses, ``(pair,)``: ``a_pair``, except
    into an evaluation-only target ``i``, where it is ``a_pair_ji - mean_j(a_pair_ji) + unit``
    (``unit = a_mean``): only the differences between its sources reach the law.

    An evaluation-only target learns from transfer alone, so scaling every transfer into it
    by ``c`` (and ``B_i`` by ``c ** beta_i``) leaves every loss unchanged
    (:func:`effective_anchor`): the pilots measure how its sources compare, not the scale.
    Sampled freely, that scale wandered with the pooled mean and spread of all pairs (on the
    Data Mixing Laws RedPajama runs, five evaluation-only targets: a 7-fold range within a
    chain, R-hat 1.3 and bulk ESS 5 for each target's mean transfer, while the ratios between
    sources mixed, R-hat <= 1.03). Fixing the mean into each such target at ``unit`` leaves
    the pairs' mean over its sources to their pooled prior alone, a Gaussian direction the
    likelihood does not touch.
    """
    untrained = np.asarray(self_map).sum(axis=0) == 0  # (target,)
    into = pairs[1]
    if not untrained[into].any():
        return a_pair
    n_target = untrained.shape[0]
    total = jax.ops.segment_sum(a_pair, jnp.asarray(into), n_target)
    mean = total / np.maximum(np.bincount(into, minlength=n_target), 1)
    return jnp.where(untrained[into], a_pair - mean[into] + unit, a_pair)


def effective_anchor(data: ModelData, a: jax.Array, k: jax.Array, eta: jax.Array,
                     form: str) -> jax.Array:
    """``x0_i``, where target ``i``'s reducible loss is sampled: ``data.anchor`` (its typical own
    tokens) for a trained target; for an evaluation-only one, the geometric mean over its
    observations of its effective tokens ``rt_i * D / D_ref``, which move with the transfer.

    An evaluation-only target learns from transfer alone, so the pilots measure only the
    product of the transfer into it and ``B_i``: scaling every ``alpha_{j->i}`` by ``c`` and
    ``B_i`` by ``c ** beta_i`` leaves every loss unchanged. Anchored at fixed tokens, that ridge
    is curved in the sampled coordinates (``log B`` moves with ``log c``, the transfer with
    ``c``); anchored at the effective tokens, the reducible loss there stays put and the ridge
    is a straight line in the transfer. The prior is the same (``log A`` is ``log B`` shifted).
    """
    trained = np.asarray(data.self_map).sum(axis=0) > 0
    if trained.all():
        return data.anchor
    transfer_only = LawParams(E=jnp.zeros_like(eta), B=jnp.ones_like(eta), beta=jnp.ones_like(eta),
                              a=a, k=k, eta=eta)  # the effective share reads a, k, eta only
    share = effective_share(transfer_only, data.shares, data.tokens_scaled, data.self_map, form)
    log_tokens = (jnp.log(share) + jnp.log(data.tokens_scaled)[:, None])[data.obs_point,
                                                                          data.obs_target]
    n_target = data.self_map.shape[1]
    total = jax.ops.segment_sum(log_tokens, data.obs_target, n_target)
    count = jax.ops.segment_sum(jnp.ones_like(log_tokens), data.obs_target, n_target)
    return jnp.where(trained, data.anchor, jnp.exp(total / jnp.maximum(count, 1.0)))


def budget_knots(tokens_scaled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The discrepancy's knots, the distinct ``ln(D / D_ref)`` of the checkpoints (budgets
    within 0.1% of each other are one knot), and each checkpoint's knot index."""
    u = np.log(np.asarray(tokens_scaled, dtype=np.float64))
    knots = np.unique(np.round(u, 3))
    return knots, np.abs(u[:, None] - knots[None, :]).argmin(axis=1)


def reference_tokens(point_tokens: np.ndarray) -> float:
    """``D_ref``: the median budget over the distinct checkpoints of the pilot runs. (The
    harmonic mean, which centres ``D_ref / D - 1``, left every chain frozen on the tiny Django
    pilots, measured; the median does not.)"""
    return float(np.median(np.asarray(point_tokens, dtype=np.float64)))


def anchor_tokens(shares: np.ndarray, tokens_scaled: np.ndarray, obs_point: np.ndarray,
                  obs_target: np.ndarray, self_map: np.ndarray) -> np.ndarray:
    """Where each target's reducible-loss scale is anchored: ``x0_i``, in units of ``D_ref``.

    The geometric mean, over the observations of target ``i``, of its own tokens
    ``r_i * D / D_ref`` (1 for a target that is never trained on). The model samples the
    reducible loss at ``x0_i``, ``A_i = B_i * x0_i ** (-beta_i)``, which the pilots pin down
    whatever ``beta_i`` is; ``B_i`` at ``x0 = 1`` extrapolates beyond the pilots, so it and
    ``beta_i`` are tied along a curved ridge that slows NUTS.
    """
    own = (np.asarray(shares) @ np.asarray(self_map))[obs_point, obs_target]
    log_tokens = np.log(np.where(own > 0, own, 1.0) * np.asarray(tokens_scaled)[obs_point])
    n_target = np.asarray(self_map).shape[1]
    trained = np.bincount(obs_target, weights=own > 0, minlength=n_target)
    total = np.bincount(obs_target, weights=np.where(own > 0, log_tokens, 0.0),
                        minlength=n_target)
    return np.exp(np.divide(total, trained, out=np.zeros(n_target), where=trained > 0))


def typical_share(run_shares: np.ndarray) -> float:
    """``s0``: the geometric mean of the non-zero shares in the pilots' mixes (runs with a
    single language excluded), where the model samples the transfer coefficients."""
    shares = np.asarray(run_shares, dtype=np.float64)
    mixed = shares[(shares > 0).sum(axis=1) > 1]
    values = mixed[mixed > 0]
    return float(np.exp(np.mean(np.log(values)))) if values.size else 0.5


def law_params(samples: dict[str, Any]) -> LawParams:
    """The law's parameters from a dict of samples (any leading draw axes)."""
    return LawParams(**{name: jnp.asarray(samples[name]) for name in LAW_SITES})
