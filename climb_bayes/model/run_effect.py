"""Runs with several checkpoints: each run's own offset and slope in budget, integrated out.

Ten checkpoints of one run are one run's evidence about the law, not ten. :func:`run_likelihood`
makes each run's losses one Gaussian vector over its targets x checkpoints (the offset shared
by its checkpoints and correlated across targets, the slope its own), so nothing per run is
sampled; :func:`run_slots` lays each run's observations out by budget. The Cholesky factor and
the triangular solve are written in elementwise JAX operations (:func:`small_cholesky`).
"""

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from climb_bayes.model.priors import Priors

if TYPE_CHECKING:  # the model module calls this one
    from climb_bayes.model.numpyro_model import ModelData


def run_likelihood(data: "ModelData", priors: Priors, mean: jax.Array, scale: jax.Array,
                   loss: jax.Array | None) -> None:
    """The losses of runs with several checkpoints, each run's own offset and slope integrated
    out: ``mean`` and ``scale`` ``(obs,)`` are the law's loss and the noise of each observation.

    Run ``s``'s observation of target ``i`` at budget ``D`` is ``L_i + u_si + v_si l + e``,
    ``l = ln(D / D_last)`` (0 at the run's last checkpoint), ``e ~ Normal(0, scale)``, with

        u_s ~ MultivariateNormal(0, diag(rho) Omega diag(rho))    the run's luck, shared by its
        rho_i ~ HalfNormal(run_sd_fraction * loss_scale_i)         checkpoints and correlated
        Omega ~ LKJ(run_correlation)                               across languages
        v_si ~ Normal(0, psi_i)                                    its own slope in budget
        psi_i ~ HalfNormal(run_slope_fraction * loss_scale_i)

    so the run's observations are one Gaussian vector with covariance ``C_ab = Sigma_ab +
    l_a l_b psi_i^2 [i_a = i_b] + scale_a^2 [a = b]`` (``Sigma = diag(rho) Omega diag(rho)``
    between their targets): ten checkpoints of one run weigh as one run's evidence about the
    law. Sites ``run_sd``, ``run_slope_sd``, ``run_correlation`` (Omega's Cholesky factor).

    The site ``loss`` keeps one value per observation: with ``C = L L^T`` over a run's
    observations ordered by budget, each is ``Normal(mean_a + sum_{b<a} L_ab z_b, L_aa)``,
    ``z = L^-1 (y - mean)``, its law given the run's earlier observations; their product is
    the run's Gaussian density. Without ``loss`` (predictive draws) the losses are drawn
    whole, ``mean + L z`` with ``z ~ Normal(0, I)`` (site ``run_noise``).
    """
    n_target, n_obs = data.self_map.shape[1], data.obs_point.shape[0]
    with numpyro.plate("target", n_target):
        rho = numpyro.sample("run_sd", dist.HalfNormal(priors.run_sd_fraction
                                                       * data.loss_scale))
        psi = numpyro.sample("run_slope_sd", dist.HalfNormal(priors.run_slope_fraction
                                                             * data.loss_scale))
    omega = numpyro.sample("run_correlation", dist.LKJCholesky(n_target,
                                                               priors.run_correlation))
    real = data.run_slots < n_obs  # (run, slot); padding sits after each run's observations
    slot = jnp.minimum(data.run_slots, n_obs - 1)
    target, lag = data.obs_target[slot], jnp.where(real, data.obs_lag[slot], 0.0)
    shared = rho[:, None] * omega
    covariance = ((shared @ shared.T)[target[..., :, None], target[..., None, :]]
                  + lag[..., :, None] * lag[..., None, :]
                  * jnp.where(target[..., :, None] == target[..., None, :],
                              psi[target][..., None] ** 2, 0.0))
    pair = real[..., :, None] & real[..., None, :]
    eye = jnp.eye(slot.shape[1], dtype=covariance.dtype)
    covariance = jnp.where(pair, covariance, eye) + eye * jnp.where(real, scale[slot], 0.0)[
        ..., None] ** 2
    factor = small_cholesky(covariance)
    if loss is None:
        z = numpyro.sample("run_noise", dist.Normal(0.0, 1.0).expand(list(slot.shape))
                           .to_event(2))
        drawn = mean[slot] + jnp.einsum("rab,rb->ra", factor, z)
        numpyro.deterministic("loss", jnp.zeros(n_obs).at[data.run_slots].set(drawn,
                                                                            mode="drop"))
        return
    residual = jnp.where(real, loss[slot] - mean[slot], 0.0)
    z = forward_substitution(factor, residual)
    given_earlier = mean[slot] + jnp.einsum("rab,rb->ra", jnp.tril(factor, -1), z)
    loc = jnp.zeros(n_obs).at[data.run_slots].set(given_earlier, mode="drop")
    conditional_sd = jnp.ones(n_obs).at[data.run_slots].set(
        jnp.diagonal(factor, axis1=-2, axis2=-1), mode="drop")
    with numpyro.plate("obs", n_obs):
        numpyro.sample("loss", dist.Normal(loc, conditional_sd), obs=loss)


def small_cholesky(covariance: jax.Array) -> jax.Array:
    """The lower Cholesky factor ``L`` of each matrix in ``covariance`` ``(..., k, k)``, column
    by column (``L_jj = sqrt(C_jj - sum_m L_jm^2)``, ``L_ij = (C_ij - sum_m L_im L_jm) /
    L_jj``), in elementwise JAX operations. The same as ``jnp.linalg.cholesky``, which on CPU
    calls LAPACK's batched kernel: inside the model's Hessian on 2 cores that kernel waits for
    the XLA thread pool it runs on, and the program deadlocks (jaxlib 0.10, seen with gdb)."""
    k = covariance.shape[-1]
    rows = jnp.arange(k)

    def column(factor: jax.Array, j: jax.Array) -> tuple[jax.Array, None]:
        own = jnp.take(factor, j, axis=-2)  # row j: its entries before column j are final
        rest = jnp.take(covariance, j, axis=-1) - jnp.sum(factor * own[..., None, :], axis=-1)
        pivot = jnp.sqrt(jnp.take(rest, j, axis=-1))[..., None]
        value = jnp.where(rows > j, rest / pivot, jnp.where(rows == j, pivot, 0.0))
        return factor.at[..., :, j].set(value), None

    return jax.lax.scan(column, jnp.zeros_like(covariance), rows)[0]


def forward_substitution(factor: jax.Array, residual: jax.Array) -> jax.Array:
    """``z = L^-1 r`` for lower-triangular ``L`` ``(..., k, k)`` and ``r`` ``(..., k)``, row by
    row (``z_a = (r_a - sum_{b<a} L_ab z_b) / L_aa``; see :func:`small_cholesky` for why not
    ``solve_triangular``)."""

    def row(z: jax.Array, a: jax.Array) -> tuple[jax.Array, None]:
        own = jnp.take(factor, a, axis=-2)
        value = (jnp.take(residual, a, axis=-1) - jnp.sum(own * z, axis=-1)) / jnp.take(own, a,
                                                                                     axis=-1)
        return z.at[..., a].set(value), None

    return jax.lax.scan(row, jnp.zeros_like(residual), jnp.arange(residual.shape[-1]))[0]


def run_slots(obs_run: np.ndarray, obs_tokens: np.ndarray, obs_target: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """Each run's observations ordered by budget, then target, padded with the number of
    observations: ``(run, slot)``; and each observation's ``ln(D / D_last)``, ``D_last`` the
    largest budget of its run (:func:`run_likelihood`)."""
    n_obs, n_run = len(obs_run), int(obs_run.max()) + 1 if len(obs_run) else 0
    order = np.lexsort((obs_target, obs_tokens, obs_run))
    counts = np.bincount(obs_run, minlength=n_run)
    slots = np.full((n_run, counts.max(initial=0)), n_obs)
    position = np.arange(n_obs) - np.repeat(np.cumsum(counts) - counts, counts)
    slots[obs_run[order], position] = order
    last = np.zeros(n_run)
    np.maximum.at(last, obs_run, obs_tokens)
    return slots, np.log(obs_tokens / last[obs_run])
