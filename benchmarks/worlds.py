"""Simulated worlds with a known truth for the simulation study
(``benchmarks/simulation_study.py``).

Three kinds of truth share one interface (``predict_loss(shares, tokens)``, the
:class:`climb_bayes.model.loss_model.LossModel` protocol, with one draw; ``sigma``, ``sources``,
``targets``, ``reference``), so :func:`climb_bayes.data.simulated.observe` and
:func:`climb_bayes.data.simulated.heldout_runs` work with all three:

- the CLIMB law itself (:class:`climb_bayes.data.simulated.World`, correctly specified);
- a *misspecified* truth, :class:`DMLWorld`: the Data Mixing Laws form (Ye et al. 2024) with
  a mix effect that shrinks with the budget and a separate budget term::

      L_i(r, D) = c_i + k_i * exp(sum_j t_ji r_j) * x ** (-gamma_i) + B_i * x ** (-beta_i)

  with ``x = D / D_ref``. ``t_ii < 0`` (a language's own data lowers its loss); ``t_ji`` for
  ``j != i`` is transfer (negative helps, positive interferes). Its loss stays finite at
  ``r_i = 0`` and the mix effect is exponential rather than a power of the effective share,
  so the fitted CLIMB law cannot represent it exactly;
- a *bent* truth, :class:`BentWorld`: the CLIMB law whose scaling exponents change at a
  break budget past the largest pilot (a smoothly broken power law, Caballero et al. 2023,
  "Broken Neural Scaling Laws")::

      L_i(r, D) = E_i + (L^law_i(r, D) - E_i) * (1 + (D / D_break_i) ** (1 / s)) ** (-s dbeta_i)

  Below the break the factor is about 1; far beyond it the reducible loss falls with exponent
  ``beta_i + dbeta_i`` instead of ``beta_i``. It is what the model's discrepancy term
  (:mod:`climb_bayes.model.discrepancy`) is for: a bend in budget the pilots cannot see.

- a truth bent as *the model itself* says curves bend, :class:`PriorBentWorld`: the CLIMB law
  times ``exp(delta_i(u))`` with ``delta_i`` (the random walk and the exponent's drift, inside
  the pilots and beyond) drawn from the fit's own priors. Here the model is right, bend
  included, so its 90% intervals should cover 90% of the truth on average over worlds: the
  correct-model check that the bend-free law worlds, at the edge of that prior, cannot give.

The module also gives the truth's weighted loss at the target budget in float64 and its true
optimal mix over ``{sum r = 1, lower <= r <= upper}`` (the package's interior-point solver on
the true objective, polished by SLSQP from several starts; the best is kept).
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize
from numpyro import handlers

from climb_bayes.data.pilot_table import PilotTable
from climb_bayes.data.simulated import World
from climb_bayes.decide.interior import minimise_on_simplex
from climb_bayes.decide.objectives import Problem, objective, objective_data
from climb_bayes.model.discrepancy_prior import discrepancy
from climb_bayes.model.fitting import model_data
from climb_bayes.model.loss_model import Discrepancy, Law
from climb_bayes.model.priors import Priors

Array = jax.Array


class DMLParams(NamedTuple):
    """Parameters of the Data Mixing Laws truth; ``t`` is ``(source, target)``, others
    ``(target,)``."""

    c: Array
    k: Array
    t: Array
    gamma: Array
    B: Array
    beta: Array


def dml_loss(params: DMLParams, shares: Array, tokens_scaled: Array) -> Array:
    """``L_i = c_i + k_i exp(sum_j t_ji r_j) x^(-gamma_i) + B_i x^(-beta_i)``; ``(n, target)``
    for ``shares`` ``(n, source)`` and ``tokens_scaled = x = D / D_ref`` ``(n,)``."""
    log_x = jnp.log(tokens_scaled)[:, None]
    mix = params.k * jnp.exp(shares @ params.t - params.gamma * log_x)
    return params.c + mix + params.B * jnp.exp(-params.beta * log_x)


@dataclass(frozen=True)
class DMLWorld:
    """A misspecified truth (module docstring) with the simulator's interface."""

    params: DMLParams  # numpy float64 arrays
    sigma: np.ndarray  # (target,)
    sources: list[str]
    targets: list[str]
    reference: float
    form: str = "data_mixing_laws"

    def predict_loss(self, shares: np.ndarray, tokens: np.ndarray,
                     rng_key: jax.Array | None = None) -> np.ndarray:
        """True noise-free loss ``(1, mix, target)`` in float64 (a ``LossModel``)."""
        with jax.enable_x64(True):
            params = DMLParams(*(jnp.asarray(p, jnp.float64) for p in self.params))
            law = dml_loss(params, jnp.asarray(shares, jnp.float64),
                           jnp.asarray(np.asarray(tokens, np.float64) / self.reference))
            return np.asarray(law, np.float64)[None]


def draw_dml_world(rng: np.random.Generator, languages: Sequence[str], reference: float,
                   transfer_mean: float = -0.3, transfer_sd: float = 0.5,
                   noise: float = 0.02) -> DMLWorld:
    """Draw a DML world (every language is trained and evaluated)::

        c_i ~ U(2.0, 3.0)     k_i ~ U(0.6, 1.2)       t_ii ~ -U(2, 4)
        t_ji ~ N(transfer_mean, transfer_sd)  (j != i; negative helps)
        gamma_i ~ LogNormal(log 0.15, 0.2)    B_i ~ U(0.3, 0.8)
        beta_i ~ LogNormal(log 0.3, 0.2)      sigma_i ~ U(0.5, 1.5) * noise
    """
    names = list(languages)
    m = len(names)
    eye = np.eye(m)
    t = (1 - eye) * rng.normal(transfer_mean, transfer_sd, (m, m)) - eye * rng.uniform(2, 4, m)
    params = DMLParams(c=rng.uniform(2.0, 3.0, m), k=rng.uniform(0.6, 1.2, m), t=t,
                       gamma=np.exp(rng.normal(np.log(0.15), 0.2, m)),
                       B=rng.uniform(0.3, 0.8, m), beta=np.exp(rng.normal(np.log(0.3), 0.2, m)))
    return DMLWorld(params, noise * rng.uniform(0.5, 1.5, m), names, names, reference)


class OnLawWorld:
    """The noise, languages and ``D_ref`` of a truth built on the law world ``base``."""

    base: World

    @property
    def sigma(self) -> np.ndarray:
        return self.base.sigma

    @property
    def sources(self) -> list[str]:
        return self.base.sources

    @property
    def targets(self) -> list[str]:
        return self.base.targets

    @property
    def reference(self) -> float:
        return self.base.reference


@dataclass(frozen=True)
class BentWorld(OnLawWorld):
    """A law world bent beyond a break budget (module docstring), with the simulator's
    interface. ``law`` is the unbent law (its effective shares are the truth's: the bend
    scales only the reducible loss)."""

    base: World
    break_tokens: np.ndarray  # (target,) D_break_i
    exponent_change: np.ndarray  # (target,) dbeta_i
    smoothness: float = 0.5  # s: how many e-folds the change of slope takes
    form: str = "bent_law"

    @property
    def law(self) -> Law:
        return self.base.law

    def bend(self, tokens: np.ndarray) -> np.ndarray:
        """The factor on the reducible loss, ``(n, target)`` for ``tokens`` ``(n,)``."""
        ratio = np.asarray(tokens, np.float64)[:, None] / self.break_tokens
        s = self.smoothness
        return (1.0 + ratio ** (1.0 / s)) ** (-s * self.exponent_change)

    def predict_loss(self, shares: np.ndarray, tokens: np.ndarray,
                     rng_key: jax.Array | None = None) -> np.ndarray:
        """True noise-free loss ``(1, mix, target)`` in float64 (a ``LossModel``)."""
        law = np.asarray(self.base.predict_loss(shares, tokens), np.float64)
        irreducible = np.asarray(self.base.params.E, np.float64)
        return irreducible + (law - irreducible) * self.bend(np.atleast_1d(tokens))[None]

    def at_budget(self, tokens: float) -> World:
        """The law world that equals this one at budget ``tokens``: the bend there is a
        constant factor on each target's reducible loss, i.e. on ``B_i``."""
        factor = self.bend(np.array([tokens]))[0]
        params = self.base.params._replace(B=np.asarray(self.base.params.B) * factor)
        return replace(self.base, params=params)


def draw_bent_world(rng: np.random.Generator, world: World, largest_pilot: float,
                    target_tokens: float, change_sd: float = 0.1) -> BentWorld:
    """Bend ``world`` beyond its pilots::

        D_break_i ~ LogUniform(largest_pilot, target_tokens)
        dbeta_i ~ Normal(0, change_sd), clipped so that beta_i + dbeta_i >= 0.05

    ``change_sd = 0.1``: the exponents of published multi-scale fits drift by about that much
    between compute decades (Chinchilla's 0.28 against Kaplan et al.'s 0.095 for the data term,
    measured on different budget ranges; Caballero et al. fit breaks of this size).
    """
    m = len(world.targets)
    breaks = np.exp(rng.uniform(np.log(largest_pilot), np.log(target_tokens), m))
    beta = np.asarray(world.params.beta, np.float64)
    change = np.maximum(rng.normal(0.0, change_sd, m), 0.05 - beta)
    return BentWorld(world, breaks, change)


@dataclass(frozen=True)
class PriorBentWorld(OnLawWorld):
    """A law world whose reducible losses bend by one draw of the model's own error in budget
    (module docstring), with the simulator's interface; ``law`` is the bent law."""

    base: World
    law: Law  # base.law with one drawn Discrepancy

    def predict_loss(self, shares: np.ndarray, tokens: np.ndarray,
                     rng_key: jax.Array | None = None) -> np.ndarray:
        """True noise-free loss ``(1, mix, target)`` in float64: the bent law along its one
        path (the same at every call)."""
        return np.asarray(self.law.predict_loss(shares, np.atleast_1d(tokens)), np.float64)

    def at_budget(self, tokens: float) -> World:
        """The law world that equals this one at budget ``tokens`` (``B_i exp(delta_i)``)."""
        params = self.law.at_budget(tokens)  # one draw
        return replace(self.base, params=type(params)(*(np.asarray(p)[0] for p in params)))


def draw_prior_bent_world(seed: int, world: World, pilots: PilotTable,
                          priors: Priors | None = None) -> PriorBentWorld:
    """Bend ``world`` by one draw of :func:`climb_bayes.model.discrepancy_prior.discrepancy` under
    ``priors`` (the fit's defaults), at the knots the fit of ``pilots`` has (give the rows it
    fits: each run's final loss by default): the walks and the drift inside the pilots, and
    beyond them the model's own continuation
    (:class:`climb_bayes.model.loss_model.Discrepancy`). The knots are moved to the world's
    ``D_ref``; the bend depends only on their spacing."""
    priors = priors or Priors()
    data, _, reference = model_data(pilots)
    trace = handlers.trace(handlers.seed(discrepancy, seed)).get_trace(
        data, priors, jnp.asarray(world.params.beta, jnp.float32))  # the drift is relative
    value = {name: np.asarray(site["value"], np.float32)[None] for name, site in trace.items()}
    drawn = Discrepancy(
        level=value["discrepancy"], slope=value["discrepancy_slope"],
        sd=value.get("discrepancy_sd", np.zeros((1, len(world.targets)), np.float32)),
        shared_sd=value.get("discrepancy_shared_sd", np.zeros((1, 1), np.float32))[:, 0],
        knots=np.asarray(np.asarray(data.knots) + np.log(reference / world.reference), np.float32),
        curvature=value.get("exponent_drift"))
    return PriorBentWorld(world, replace(world.law, bend=drawn))


#: Any simulated truth.
Truth = World | DMLWorld | BentWorld | PriorBentWorld


def draw_availability(rng: np.random.Generator, m: int, target_tokens: float, scarce: int,
                      max_epochs: float) -> np.ndarray:
    """Available tokens ``A_i`` per language. Plentiful ones: ``A_i = D * LogU(0.3, 3)``, so the
    cap ``K A_i / D >= 1`` never binds but ``natural`` and ``temperature`` differ from uniform;
    the first ``scarce`` languages get ``A_i = D * LogU(0.005, 0.05)`` (cap ``K A_i / D`` of 2%
    to 20% of the budget at ``K = 4``)."""
    plenty = np.exp(rng.uniform(np.log(0.3), np.log(3.0), m))
    little = np.exp(rng.uniform(np.log(0.005), np.log(0.05), m))
    fraction = np.where(np.arange(m) < scarce, little, plenty)
    if np.sum(np.minimum(1.0, max_epochs * fraction)) < 1.0:
        raise ValueError("availability infeasible: reduce the scarce languages")
    return fraction * target_tokens


# --- the truth's objective and optimum -----------------------------------------------------------

def _dml_objective(shares: Array, data: tuple[Any, ...]) -> Array:
    params, tokens_scaled, weights = data
    return dml_loss(params, shares[None, :], jnp.reshape(tokens_scaled, (1,)))[0] @ weights


def truth_problem(world: Truth, target_tokens: float,
                  weights: np.ndarray) -> tuple[Any, tuple[Any, ...]]:
    """``(f, data)``: the true weighted loss ``W(r) = sum_i w_i L_i(r, D_target)`` as a JAX
    function of the shares and its data (float64; call under ``jax.enable_x64``)."""
    w = jnp.asarray(weights, jnp.float64)
    if isinstance(world, DMLWorld):
        params = DMLParams(*(jnp.asarray(p, jnp.float64) for p in world.params))
        scaled = jnp.asarray(target_tokens / world.reference, jnp.float64)
        return _dml_objective, (params, scaled, w)
    if isinstance(world, BentWorld | PriorBentWorld):
        world = world.at_budget(target_tokens)
    problem = Problem.at_budget(world.law, target_tokens, weights, np.zeros(1), np.ones(1))
    return objective("mean", problem.form), objective_data(problem, problem.params)


def true_weighted_loss(world: Truth, shares: np.ndarray, target_tokens: float,
                       weights: np.ndarray) -> np.ndarray:
    """True ``W(r)`` at the target budget of every mix ``(n, source)``; ``(n,)``, float64."""
    shares = np.atleast_2d(np.asarray(shares, np.float64))
    return world.predict_loss(shares, np.full(len(shares), target_tokens))[0] @ weights


_ipm = jax.jit(minimise_on_simplex, static_argnums=(0,), static_argnames=("tol", "max_iter"))


class Optimum(NamedTuple):
    """The true optimal mix, its true weighted loss, and how much polishing improved the
    interior-point answer (``polish_gain >= 0``; large means the true objective is not convex
    and the solver found a local optimum)."""

    shares: np.ndarray
    value: float
    polish_gain: float


def true_optimum(world: Truth, target_tokens: float, weights: np.ndarray,
                 lower: np.ndarray, upper: np.ndarray,
                 starts: Sequence[np.ndarray] = ()) -> Optimum:
    """``argmin W(r)`` over ``{sum r = 1, lower <= r <= upper}``: the interior-point solver
    (exact Newton, as for the posterior) on the true objective, then SLSQP with exact JAX
    gradients from its answer and from each of ``starts`` (clipped into the box); the best."""
    with jax.enable_x64(True):
        f, data = truth_problem(world, target_tokens, weights)
        solution = _ipm(f, data, jnp.asarray(lower, jnp.float64),
                        jnp.asarray(upper, jnp.float64), tol=1e-10, max_iter=200)
        x_ipm = np.clip(np.asarray(solution.x, np.float64), lower, upper)
        value_and_grad = jax.jit(jax.value_and_grad(lambda r: f(r, data)))

        def fun(r: np.ndarray) -> tuple[float, np.ndarray]:
            value, grad = value_and_grad(jnp.asarray(r, jnp.float64))
            return float(value), np.asarray(grad, np.float64)

        ipm_value = fun(x_ipm)[0]
        best_x, best_value = x_ipm, ipm_value
        for start in (x_ipm, *starts):
            x0 = np.clip(np.asarray(start, np.float64), lower, upper)
            result = scipy.optimize.minimize(
                fun, x0, jac=True, method="SLSQP", bounds=list(zip(lower, upper, strict=True)),
                constraints=[{"type": "eq", "fun": lambda r: np.sum(r) - 1.0,
                              "jac": lambda r: np.ones_like(r)}],
                options={"ftol": 1e-14, "maxiter": 500})
            x = np.clip(result.x, lower, upper)
            x = x / x.sum()
            value = fun(x)[0]
            if np.all(x <= upper + 1e-9) and value < best_value:
                best_x, best_value = x, value
    return Optimum(best_x, float(best_value), float(ipm_value - best_value))
