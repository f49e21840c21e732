"""A point estimate of the CLIMB law, fitted as Chinchilla and Data Mixing Laws fit theirs.

The law is the one in :mod:`climb_bayes.model.law` (imported, not rewritten). Its parameters are
found by minimising a Huber loss of the residuals over all pilot observations::

    J(theta) = sum_o Huber_delta(y_o - L_{i_o}(r_{s_o}, D_{s_o}; theta))

    Huber_delta(x) = x**2 / 2             if |x| <= delta
                     delta * (|x| - delta / 2)  otherwise

where ``y_o`` is the observed loss of checkpoint ``s_o`` on target ``i_o`` and ``delta``
defaults to ``1e-3`` (Chinchilla's choice). Positive quantities are optimised in log space
(``theta = (log E, log B, log beta, log eta, b, k)``, with ``b`` and ``k`` only for pairs of
different languages); ``J / delta`` (same minimiser, better scaled) is minimised by SciPy's
L-BFGS-B with a jitted JAX value and gradient in float64, from ``num_starts`` starting points
(the first at the Bayesian model's prior medians, the rest random around it); the best optimum
is kept. Loose box bounds keep ``exp`` finite; they are far from any plausible value.

The rows are put in one order first (by run, tokens and language), so the fit is a function of
the table, not of how its rows happen to be ordered. That matters because the optimum is
nearly flat along directions the pilots do not pin down: on the real study's 240 losses, four
row orders gave objectives within 0.3% of each other and predictions at ten times the largest
pilot budget up to 0.19 nats apart (``docs/real_study.md``).

This is the baseline the posterior is compared with (``benchmarks/fit_speed.py``): it is what
a point-estimate CLIMB would fit, and it is much faster than NUTS.
"""

from dataclasses import dataclass, replace

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize

from climb_bayes.data.pilot_table import PilotTable
from climb_bayes.errors import InputError
from climb_bayes.model.fitting import model_data
from climb_bayes.model.law import INTERACTION_FORMS, LawParams, expected_loss
from climb_bayes.model.loss_model import Law
from climb_bayes.model.numpyro_model import transfer_pairs


@dataclass(frozen=True)
class PointFit:
    """The law at the best optimum of the Huber objective: a law of one draw (float64)."""

    law: Law
    objective: float  # J(theta) at the optimum (sum of Huber losses, in nats)


def _huber(x: jax.Array, delta: float) -> jax.Array:
    """Huber loss, quadratic within ``delta`` of zero and linear outside."""
    absolute = jnp.abs(x)
    return jnp.where(absolute <= delta, 0.5 * x**2, delta * (absolute - 0.5 * delta))


def _starts(rng: np.random.Generator, num_starts: int, loss_scale: np.ndarray,
            n_pairs: int) -> np.ndarray:
    """Starting points in the optimiser's coordinates, one row each; the first is central."""
    n_t = len(loss_scale)
    log_scale = np.log(loss_scale)
    central = np.concatenate([log_scale + np.log(0.5), log_scale + np.log(0.5),
                              np.full(n_t, np.log(0.3)), np.zeros(n_t),
                              np.full(n_pairs, 0.1), np.zeros(n_pairs)])
    size = (num_starts - 1, n_t)
    random = np.concatenate([
        log_scale + np.log(rng.uniform(0.2, 0.9, size)),  # E: a fraction of the loss
        log_scale + rng.uniform(np.log(0.1), np.log(2.0), size),  # B
        rng.uniform(np.log(0.05), np.log(1.0), size),  # beta
        rng.uniform(np.log(0.1), np.log(10.0), size),  # eta
        rng.normal(0.1, 0.2, (num_starts - 1, n_pairs)),  # b
        rng.normal(0.0, 0.05, (num_starts - 1, n_pairs)),  # k
    ], axis=1)
    return np.vstack([central, random])


def fit_point(table: PilotTable, form: str = "source_saturating", num_starts: int = 64,
              huber_delta: float = 1e-3, seed: int = 0, max_iter: int = 3000) -> PointFit:
    """Minimise the Huber objective (module docstring) from ``num_starts`` points; keep the best."""
    if form not in INTERACTION_FORMS:
        raise InputError(f"unknown interaction form {form!r}; choose one of "
                         f"{sorted(INTERACTION_FORMS)}.")
    if num_starts < 1 or huber_delta <= 0:
        raise ValueError(f"need num_starts >= 1 and huber_delta > 0, got {num_starts}, "
                         f"{huber_delta}")
    canonical = table.frame.sort_values(["run_id", "tokens", "language"], kind="stable")
    data, observed, reference = model_data(replace(table, frame=canonical.reset_index(drop=True)))
    sm = np.asarray(data.self_map, dtype=np.float64)
    n_source, n_target = sm.shape
    pairs = transfer_pairs(sm)
    n_pairs = len(pairs[0])
    loss_scale = np.asarray(data.loss_scale, dtype=np.float64)
    sizes = np.cumsum([n_target] * 4 + [n_pairs])

    with jax.enable_x64(True):
        shares = jnp.asarray(data.shares, dtype=jnp.float64)
        tokens_scaled = jnp.asarray(data.tokens_scaled, dtype=jnp.float64)
        y = jnp.asarray(observed, dtype=jnp.float64)
        sm_jax = jnp.asarray(sm)

        def unpack(theta: jax.Array) -> LawParams:
            log_e, log_b, log_beta, log_eta, a, k = jnp.split(theta, sizes)
            zeros = jnp.zeros((n_source, n_target), dtype=theta.dtype)
            return LawParams(E=jnp.exp(log_e), B=jnp.exp(log_b), beta=jnp.exp(log_beta),
                             a=zeros.at[pairs].set(a), k=zeros.at[pairs].set(k),
                             eta=jnp.exp(log_eta))

        def objective(theta: jax.Array) -> jax.Array:
            mean = expected_loss(unpack(theta), shares, tokens_scaled, sm_jax, form)
            residual = y - mean[data.obs_point, data.obs_target]
            return jnp.sum(_huber(residual, huber_delta)) / huber_delta

        value_and_grad = jax.jit(jax.value_and_grad(objective))

        def scipy_objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
            value, grad = value_and_grad(jnp.asarray(theta))
            if not np.isfinite(value):
                return np.inf, np.zeros_like(theta)
            return float(value), np.asarray(grad)

        log_high = np.log(2.0 * loss_scale.max())
        bounds = ([(np.log(1e-3), log_high)] * n_target + [(-10.0, 10.0)] * n_target
                  + [(np.log(1e-3), np.log(5.0))] * n_target + [(-7.0, 7.0)] * n_target
                  + [(-5.0, 5.0)] * (2 * n_pairs))
        best = None
        for start in _starts(np.random.default_rng(seed), num_starts, loss_scale, n_pairs):
            start = np.clip(start, *np.array(bounds).T)
            result = scipy.optimize.minimize(
                scipy_objective, start, jac=True, method="L-BFGS-B", bounds=bounds,
                options={"maxiter": max_iter, "ftol": 1e-12, "gtol": 1e-8})
            if best is None or result.fun < best.fun:
                best = result
        params = LawParams(*(np.asarray(p, dtype=np.float64)
                             for p in unpack(jnp.asarray(best.x))))
    return PointFit(law=Law.single(params, reference, table.sources, table.targets, form),
                    objective=float(best.fun) * huber_delta)
