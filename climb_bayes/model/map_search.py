"""The posterior's mode: where NUTS starts, and the Laplace approximation around it.

:func:`find_map` minimises numpyro's potential energy (the negative log joint density in the
unconstrained space) from the prior median (:func:`prior_median`) and jittered copies of it,
then polishes each optimum: trust-region Newton steps on small models, L-BFGS in
Hessian-whitened coordinates on large ones (:func:`whitened_descent`). The inverse Hessian at
the best optimum, its eigenvalues' magnitudes floored (:func:`laplace_covariance`), is the
Laplace covariance that :mod:`climb_bayes.model.inference` jitters the chains' starts by and
takes as NUTS's first mass matrix.
"""

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize
from jax.flatten_util import ravel_pytree
from numpyro import handlers
from numpyro.infer import init_to_median
from numpyro.infer.util import potential_energy, unconstrain_fn


class MapResult(NamedTuple):
    """Optima of the potential energy from several starts, best first."""

    z: dict[str, jax.Array]  # unconstrained values, leading axis = start
    potential: np.ndarray  # (start,) potential energy at each optimum, where it was found
    covariance: np.ndarray  # Laplace covariance (inverse Hessian) at the best optimum
    energy: Callable[[np.ndarray], float]  # potential energy of a flat vector of ``z``


def prior_median(model: Callable[..., None], model_kwargs: dict[str, Any], rng_key: jax.Array
                 ) -> tuple[dict[str, jax.Array], Callable[[dict[str, jax.Array]], jax.Array]]:
    """numpyro's ``init_to_median`` start in the unconstrained space (each latent site at the
    median of 15 prior draws, given the values above it), and the potential energy (numpyro's
    ``potential_energy``: the negative log joint density there) as a function of it.

    The start is one compiled program of the model's forward pass. numpyro's
    ``initialize_model`` would run the model eagerly, compiling every operation on its own, and
    compile its gradient besides: 11 s a call at m = 4 languages, where this takes about 1 s
    (measured with ``benchmarks/fit_speed.py``).
    """
    def start(key: jax.Array) -> dict[str, jax.Array]:
        median = handlers.substitute(handlers.seed(model, key), substitute_fn=init_to_median)
        latent = {name: site["value"]
                  for name, site in handlers.trace(median).get_trace(**model_kwargs).items()
                  if site["type"] == "sample" and not site["is_observed"]}
        return unconstrain_fn(model, (), model_kwargs, latent)

    return jax.jit(start)(rng_key), partial(potential_energy, model, (), model_kwargs)


#: Up to this many parameters :func:`find_map` polishes by trust-region Newton steps, above
#: it by :func:`whitened_descent`. The Newton polish stops short of the exact optimum, which
#: is a milder place to start NUTS from on small fits: from the exact optimum of the test
#: suite's 3-language fit (0.6 nats lower), 300 warm-up draws ended at tree depth 10.
NEWTON_MAX_DIM = 200
NEWTON_STEPS = 100


def find_map(model: Callable[..., None], model_kwargs: dict[str, Any], rng_key: jax.Array,
             num_starts: int = 8, max_iter: int = 2000, jitter: float = 0.5) -> MapResult:
    """Minimise the potential energy from ``num_starts`` points near the prior: L-BFGS in
    float64, then a polish with the exact Hessian, which lands on the optimum where plain
    L-BFGS stalls short of it: up to ``NEWTON_MAX_DIM`` parameters, ``NEWTON_STEPS`` steps of a
    trust-region Newton method (``trust-exact``, one Hessian per step); above, where each
    Hessian costs seconds, L-BFGS in Hessian-whitened coordinates (:func:`whitened_descent`,
    one Hessian per round).

    The first start is the prior median (numpyro's ``init_to_median``); the others add
    ``Normal(0, jitter)`` noise to it in the unconstrained space. Starting where the priors
    put the law (losses of the right size, small transfer) finds far better optima than
    numpyro's default uniform start in ``(-2, 2)``. Returns all optima sorted by potential.
    """
    keys = jax.random.split(rng_key, 2)
    median, potential_fn = prior_median(model, model_kwargs, keys[0])
    centre, unravel = ravel_pytree(median)
    noise = jitter * jax.random.normal(keys[1], (num_starts, centre.shape[0]))
    starts = np.asarray(centre + noise.at[0].set(0.0), dtype=np.float64)
    optima, potentials = [], []
    with jax.enable_x64(True):  # in float32, L-BFGS stalls short of the optimum of precise data
        _, unravel64 = ravel_pytree(jax.tree.map(lambda x: jnp.asarray(x, jnp.float64),
                                                 median))

        def potential(flat: jax.Array) -> jax.Array:
            return potential_fn(unravel64(flat))

        potential_of = jax.jit(potential)
        value_and_grad = jax.jit(jax.value_and_grad(potential))

        def objective(flat: np.ndarray) -> tuple[float, np.ndarray]:
            value, grad = value_and_grad(flat)
            if not np.isfinite(value):
                return np.inf, np.zeros_like(flat)
            return float(value), np.asarray(grad, dtype=np.float64)

        hessian_of = jax.jit(jax.hessian(potential))

        def hessian(flat: np.ndarray) -> np.ndarray:
            return np.asarray(hessian_of(flat), dtype=np.float64)

        for start in starts:
            result = scipy.optimize.minimize(objective, start, jac=True, method="L-BFGS-B",
                                             options={"maxiter": max_iter})
            if start.shape[0] > NEWTON_MAX_DIM:
                optimum, value = whitened_descent(objective, hessian, result.x, result.fun)
            else:
                polished = scipy.optimize.minimize(objective, result.x, jac=True, hess=hessian,
                                                   method="trust-exact",
                                                   options={"maxiter": NEWTON_STEPS})
                optimum, value = min((result.x, result.fun), (polished.x, polished.fun),
                                     key=lambda pair: pair[1])
            optima.append(optimum)
            potentials.append(value)
        order = np.argsort(potentials)
        hessian_at_best = hessian(optima[order[0]])
    z = jax.vmap(unravel)(jnp.asarray(np.stack(optima)[order], dtype=float))

    def energy(flat: np.ndarray) -> float:
        with jax.enable_x64(True):
            return float(potential_of(np.asarray(flat, dtype=np.float64)))

    return MapResult(z=z, potential=np.asarray(potentials)[order],
                     covariance=laplace_covariance(hessian_at_best), energy=energy)


def whitened_descent(objective: Callable[[np.ndarray], tuple[float, np.ndarray]],
                     hessian: Callable[[np.ndarray], np.ndarray], x: np.ndarray, value: float,
                     rounds: int = 6, max_iter: int = 1000, tolerance: float = 1e-3
                     ) -> tuple[np.ndarray, float]:
    """Finish a minimisation by L-BFGS in whitened coordinates, round by round.

    Each round takes the Hessian ``H = V diag(lambda) V^T`` at ``x`` and minimises
    ``f(x + T y)`` over ``y`` from 0, with ``T = V diag(max(|lambda|, 1e-2))^(-1/2)``: near an
    optimum ``f`` is close to ``|y|^2 / 2`` there, so L-BFGS no longer crawls along the
    potential's stiff ridges (at m = 16 languages, 664 parameters: condition numbers near
    1e6). It stops after ``rounds`` rounds or once a round gains under ``tolerance`` nats.
    Returns the point and its objective. One Hessian per round; a trust-region Newton method
    (``trust-exact``) needs one per step, and at m = 16 took 130 s a start to stop 2 nats
    short of where this stops in 23 s (``docs/results.md``, "The fit").
    """
    def whitened(y: np.ndarray, origin: np.ndarray, whiten: np.ndarray
                 ) -> tuple[float, np.ndarray]:
        f, gradient = objective(origin + whiten @ y)
        return f, whiten.T @ gradient

    for _ in range(rounds):
        curvature = hessian(x)
        if not np.all(np.isfinite(curvature)):
            break
        eigenvalues, vectors = np.linalg.eigh(curvature)
        whiten = vectors / np.sqrt(np.maximum(np.abs(eigenvalues), 1e-2))
        result = scipy.optimize.minimize(whitened, np.zeros_like(x), args=(x, whiten),
                                         jac=True, method="L-BFGS-B",
                                         options={"maxiter": max_iter})
        if not result.fun < value:
            break
        x, gain, value = x + whiten @ result.x, value - result.fun, float(result.fun)
        if gain < tolerance:
            break
    return x, value


def laplace_covariance(hessian: np.ndarray, min_eigenvalue: float = 1.0) -> np.ndarray:
    """Inverse of the Hessian with the magnitudes of its eigenvalues floored: a valid covariance.

    At a poorly determined optimum the Hessian can have tiny or negative eigenvalues. A
    negative one still measures how fast the potential bends in its direction, so its
    magnitude sets the scale there (as in saddle-free Newton methods); flooring the
    magnitudes at 1 keeps the covariance positive definite with no direction wider than the
    unit scale of the priors in numpyro's unconstrained space.
    """
    eigenvalues, vectors = np.linalg.eigh(0.5 * (hessian + hessian.T))
    return (vectors / np.maximum(np.abs(eigenvalues), min_eigenvalue)) @ vectors.T
