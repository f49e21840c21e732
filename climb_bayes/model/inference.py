"""Posterior sampling: NUTS started from the posterior's mode.

NUTS from numpyro's default random start does not converge on this model (curved ridges
between ``E``, ``B`` and ``beta``; ``alpha`` and ``eta`` trade off; local optima), see
``docs/model.md``. So the fit first finds the mode from several starts near the prior median,
with the pooled sites non-centred where a mode exists
(:func:`climb_bayes.model.map_search.find_map`). This module chooses each pooled value's
parameterisation from the Laplace approximation there (:func:`centredness`), moves the optima
into the coordinates NUTS samples (:func:`reparameterised`), starts each chain from a good one,
jittered by the Laplace approximation (:func:`chain_starts`), whose covariance is also the
first mass matrix of NUTS (:func:`run_nuts`).
"""

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from numpyro.infer import MCMC, NUTS
from numpyro.infer.util import constrain_fn, potential_energy, unconstrain_fn

from climb_bayes.model.map_search import MapResult, prior_median

#: Per-draw statistics kept from NUTS (ArviZ names them in ``sample_stats``).
SAMPLE_STATS = ("diverging", "num_steps", "energy", "accept_prob", "potential_energy",
                "adapt_state.step_size")


def centredness(optima: MapResult, sites: Iterable[str]) -> dict[str, np.ndarray]:
    """Which values of each non-centred pooled site to sample centred, from the Laplace
    approximation at the best optimum: 1 (centred) where ``Var(z) < 1/2``, else 0, with ``z``
    the value's non-centred coordinate (site ``<site>_decentered``).

    For a value ``x ~ Normal(mu, tau)`` whose likelihood alone would give it variance ``v``,
    ``Var(z) = v / (v + tau^2)``: below 1/2 the pilots pin the value down more tightly than
    its spread, and its non-centred coordinate would form a funnel with ``tau``; above, the
    centred one would (Papaspiliopoulos, Roberts and Skold 2007). Each value is sampled in the
    parameterisation that avoids its funnel. (The centredness ``1 - Var(z)`` itself, which
    is optimal for a Gaussian with ``tau`` known, took 3x the leapfrog steps of this choice on
    a simulated world, measured with ``benchmarks/fit_geometry.py``: ``tau`` is not known.)
    """
    first = jax.tree.map(lambda x: x[0], optima.z)
    flat, unravel = ravel_pytree(first)
    index = unravel(jnp.arange(flat.shape[0], dtype=flat.dtype))
    variance = np.diag(optima.covariance)
    return {site: np.where(variance[np.asarray(index[f"{site}_decentered"], int)] < 0.5,
                           1.0, 0.0)
            for site in sites if f"{site}_decentered" in first}


def reparameterised(optima: MapResult, model: Callable[..., None], found_kwargs: dict[str, Any],
                    sampled_kwargs: dict[str, Any],
                    translate: Callable[[dict[str, Any]], dict[str, Any]] | None = None
                    ) -> MapResult:
    """Optima found with ``model(**found_kwargs)``, moved into the coordinates in which NUTS
    samples ``model(**sampled_kwargs)`` (the same model, other sites centred; ``translate``
    gives the sampled values of sites that keep their name but not their meaning, from all
    the values: :func:`climb_bayes.model.numpyro_model.decentred`).

    A hierarchical model has no mode in centred coordinates: as a spread ``tau`` shrinks to 0
    with every pooled value at the mean, the density of the pooled values grows without bound
    (or, with as many pooled values as the prior's order at 0, stays flat), and an exact
    optimiser walks into that neck (measured on the bundled example: ``log(beta_tau) = -19``,
    Hessian eigenvalues up to 1e17, every NUTS transition divergent). Non-centred, the
    density stays bounded, so :func:`~climb_bayes.model.map_search.find_map` runs there; this
    maps each optimum ``u`` to ``T(u)`` (the values the pooled sites take, re-expressed as the
    sampled sites) and the Laplace covariance to ``J S J^T`` with ``J`` the Jacobian of ``T``
    at the best optimum.
    """
    found_flat, found_unravel = ravel_pytree(jax.tree.map(lambda x: x[0], optima.z))
    # Only the sampled sites' names and shapes: traced, not compiled or run
    shapes = jax.eval_shape(lambda key: prior_median(model, sampled_kwargs, key)[0],
                            jax.random.PRNGKey(0))
    layout = jax.tree.map(lambda shape: jnp.zeros(shape.shape, shape.dtype), shapes)
    potential_fn = partial(potential_energy, model, (), sampled_kwargs)
    names = tuple(layout)
    _, unravel = ravel_pytree(layout)
    with jax.enable_x64(True):
        _, found_unravel64 = ravel_pytree(jax.tree.map(lambda x: jnp.asarray(x, jnp.float64),
                                                       found_unravel(found_flat)))
        _, unravel64 = ravel_pytree(jax.tree.map(lambda x: jnp.asarray(x, jnp.float64),
                                                 layout))

        def move(flat: jax.Array) -> jax.Array:
            values = constrain_fn(model, (), found_kwargs, found_unravel64(flat),
                                  return_deterministic=True)
            if translate is not None:
                values = values | translate(values)
            sampled = unconstrain_fn(model, (), sampled_kwargs,
                                     {name: values[name] for name in names})
            return ravel_pytree(sampled)[0]

        found = np.asarray(jax.vmap(lambda z: ravel_pytree(z)[0])(optima.z), dtype=np.float64)
        # Compiled, not run op by op (see prior_median): every optimum, and the Jacobian
        moved = np.asarray(jax.jit(jax.vmap(move))(jnp.asarray(found)))
        jacobian = np.asarray(jax.jit(jax.jacfwd(move))(jnp.asarray(found[0])))
        potential_of = jax.jit(lambda flat: potential_fn(unravel64(flat)))

        def energy(flat: np.ndarray) -> float:
            with jax.enable_x64(True):
                return float(potential_of(np.asarray(flat, dtype=np.float64)))
    return MapResult(z=jax.vmap(unravel)(jnp.asarray(moved, dtype=float)),
                     potential=optima.potential,
                     covariance=jacobian @ optima.covariance @ jacobian.T, energy=energy)


def chain_starts(optima: MapResult, num_chains: int, tolerance: float,
                 rng: np.random.Generator) -> dict[str, jax.Array]:
    """One start per chain: a good optimum plus a draw from the Laplace approximation.

    Optima within ``tolerance`` nats of the best are used in turn (distinct good optima let
    R-hat reveal multimodality; a poor local optimum is dropped); each start is jittered by
    ``t * N(0, covariance)`` so that the chains are over-dispersed around the posterior's bulk.
    ``t`` starts at 1 and is halved until the start's potential energy is at most ``dim``
    nats above its optimum's, both by ``optima.energy`` (a Gaussian's jitter raises it by
    ``dim / 2`` on average): where the posterior is far from Gaussian a full jitter can land
    thousands of nats up, where NUTS adapts its step size to nothing.
    """
    good = int(np.sum(optima.potential <= optima.potential[0] + tolerance))
    index = np.arange(num_chains) % good
    flat, unravel = ravel_pytree(jax.tree.map(lambda x: x[0], optima.z))
    dim = flat.shape[0]
    centres = np.asarray(jax.vmap(lambda z: ravel_pytree(z)[0])(
        jax.tree.map(lambda x: x[index], optima.z)), dtype=np.float64)
    jitter = rng.multivariate_normal(np.zeros(dim), optima.covariance, num_chains)
    starts = []
    for centre, step in zip(centres, jitter, strict=True):
        ceiling = optima.energy(centre) + dim
        for _ in range(MAX_HALVINGS):
            if optima.energy(centre + step) <= ceiling:
                break
            step = step / 2.0
        starts.append(centre + step)
    return jax.vmap(unravel)(jnp.asarray(np.stack(starts), dtype=float))


#: How often :func:`chain_starts` halves a jitter that lands too far up.
MAX_HALVINGS = 20


def pooled_covariance(draws: np.ndarray, prior_covariance: np.ndarray) -> np.ndarray:
    """Covariance of ``draws`` ``(n, dim)`` shrunk towards ``prior_covariance``.

    ``(n / (n + dim)) * S + (dim / (n + dim)) * prior_covariance``, with ``S`` the sample
    covariance: with fewer draws than dimensions ``S`` is singular, and the shrinkage keeps
    every direction the draws did not explore at its earlier width.
    """
    n, dim = draws.shape
    weight = n / (n + dim)
    return weight * np.cov(draws, rowvar=False) + (1.0 - weight) * prior_covariance


#: The mass-matrix windows of NUTS's warmup, as fractions of it (see :func:`run_nuts`).
MASS_WINDOWS = (0.25, 0.5)
#: Share of each window spent adapting the step size to its new mass matrix before keeping draws.
SETTLE = 0.2


def run_nuts(model: Callable[..., None], model_kwargs: dict[str, Any], init_z: dict[str, Any],
             rng_key: jax.Array, *, num_warmup: int, num_samples: int, num_chains: int,
             inverse_mass_matrix: np.ndarray, target_accept: float = 0.95,
             dense_mass: bool = True, max_tree_depth: int = 10, progress_bar: bool = True
             ) -> MCMC:
    """NUTS with one chain per start in ``init_z`` (unconstrained, leading chain axis).

    The mass matrix is fixed within each stage of the warmup, and only the step size adapts.
    It starts as ``inverse_mass_matrix`` (the Laplace covariance at the MAP). Each window of
    ``MASS_WINDOWS`` (a quarter, then half of the warmup) adapts the step size, keeps the
    draws of every chain, and replaces the mass matrix by their covariance, pooled over the
    chains and shrunk towards the previous matrix (:func:`pooled_covariance`). The last
    quarter adapts the step size to the final matrix; then ``num_samples`` draws are kept,
    and the returned ``MCMC`` holds these.

    numpyro's own windowed adaptation estimates a dense matrix from the 25-500 draws of one
    chain's window. With many parameters that estimate is singular: at m = 16 languages (565
    parameters) the step size collapsed to 0.001 at the maximum tree depth (measured), while
    the pooled estimates kept it at about 0.07 and the tree depth at about 6.

    Chains run in parallel when JAX has one device per chain (see
    ``numpyro.set_host_device_count``), otherwise one after the other.
    """
    keys = jax.random.split(rng_key, len(MASS_WINDOWS) + 1)
    z = jax.tree.map(lambda x: x[0], init_z) if num_chains == 1 else init_z  # as MCMC.run wants
    covariance, used = inverse_mass_matrix, 0
    for key, fraction in zip(keys, MASS_WINDOWS, strict=False):
        size = int(fraction * num_warmup)
        settle = int(SETTLE * size)
        if size - settle < 2:  # too short a warmup to estimate anything: keep the matrix
            continue
        window = _fixed_mass_nuts(model, covariance, settle, size - settle, num_chains,
                                  target_accept, dense_mass, max_tree_depth, progress_bar,
                                  unconstrained=True)
        window.run(key, init_params=z, **model_kwargs)
        draws = jax.vmap(lambda flat: ravel_pytree(flat)[0])(window.get_samples())
        covariance = pooled_covariance(np.asarray(draws, dtype=np.float64), covariance)
        z, used = window.last_state.z, used + size
    mcmc = _fixed_mass_nuts(model, covariance, num_warmup - used, num_samples, num_chains,
                            target_accept, dense_mass, max_tree_depth, progress_bar)
    mcmc.run(keys[-1], init_params=z, extra_fields=SAMPLE_STATS, **model_kwargs)
    return mcmc


def _fixed_mass_nuts(model: Callable[..., None], inverse_mass_matrix: np.ndarray,
                     num_warmup: int, num_samples: int, num_chains: int, target_accept: float,
                     dense_mass: bool, max_tree_depth: int, progress_bar: bool,
                     unconstrained: bool = False) -> MCMC:
    """An ``MCMC`` of NUTS whose warmup adapts only the step size.

    ``unconstrained=True`` keeps the draws in numpyro's unconstrained space.
    """
    matrix = inverse_mass_matrix if dense_mass else np.diag(inverse_mass_matrix)
    kernel = NUTS(model, dense_mass=dense_mass, target_accept_prob=target_accept,
                  max_tree_depth=max_tree_depth, adapt_mass_matrix=False,
                  inverse_mass_matrix=jnp.asarray(matrix, dtype=float))
    parallel = jax.local_device_count() >= num_chains
    return MCMC(kernel, num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
                chain_method="parallel" if parallel else "sequential",
                progress_bar=progress_bar, postprocess_fn=(lambda z: z) if unconstrained else None)
