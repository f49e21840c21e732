"""One object that predicts losses: :class:`Law`, the CLIMB law at its parameter draws.

Every caller that wants a loss (predict, solve, report, plots, the benchmarks, the
simulated truths) asks one object::

    model.predict_loss(shares, tokens) -> (draw, mix, target)

for mixes ``shares`` ``(mix, source)`` at budgets ``tokens`` ``(mix,)`` in tokens. That is
the :class:`LossModel` protocol. :class:`Law` implements it for the law of
:mod:`climb_bayes.model.law`: it owns the parameters (one or many draws), the reference budget
``D_ref`` the law's budgets are scaled by, the interaction form, the languages, and the law's
learned error in budget (:class:`Discrepancy`). The posterior (``Posterior.law``), the point
fit (``PointFit.law``) and the simulated truth (``World.law``) each hold one; the Data Mixing
Laws truth of the simulation study implements the protocol with its own formula.

A law whose parameters are float64 computes in float64 (point fits and simulated truths);
float32 draws (the posterior) compute in float32.
"""

import contextlib
import math
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from climb_bayes.model.discrepancy import beyond_knots
from climb_bayes.model.law import (
    LawParams,
    effective_share,
    expected_loss,
    self_map,
    share_error_variance,
)
from climb_bayes.model.share_error import MeasuredShares


class LossModel(Protocol):
    """Anything that predicts the noise-free loss of mixes at budgets."""

    sources: list[str]  # training languages, the columns of ``shares``
    targets: list[str]  # evaluated languages, the last axis of the prediction

    def predict_loss(self, shares: np.ndarray, tokens: np.ndarray,
                     rng_key: jax.Array | None = None) -> np.ndarray:
        """Loss ``(draw, mix, target)`` of ``shares`` ``(mix, source)`` at ``tokens``
        ``(mix,)``; ``rng_key`` draws whatever the prediction leaves random."""
        ...


class Discrepancy(NamedTuple):
    """Posterior draws of the law's error in budget (:mod:`climb_bayes.model.discrepancy`)."""

    level: np.ndarray  # (draw, target, knot) delta_i at the pilots' budgets
    slope: np.ndarray  # (draw, target, knot) its slope there
    sd: np.ndarray  # (draw, target) tau_i, each language's own part
    shared_sd: np.ndarray  # (draw,) tau_0, the part shared by every language
    knots: np.ndarray  # (knot,) ln(D / D_ref) of the pilots' distinct budgets
    curvature: np.ndarray | None = None  # (draw, target) the exponent's drift gamma_i, if fitted

    def at(self, log_budget: jax.Array, rng_key: jax.Array, exponent: np.ndarray) -> jax.Array:
        """Draws of ``delta_i`` at budgets ``ln(D / D_ref)`` ``(mix,)``: ``(draw, mix,
        target)``. Zero up to the pilots' smallest budget, interpolated between their budgets,
        and beyond the largest one a fresh path of the integrated random walk, one per draw
        (its shared part one per draw, its own part one per draw and language), shared by every
        mix, still bending by the exponent's drift where the fit has one; the law's
        ``exponent`` ``beta_i`` ``(draw, target)`` sets how fast the loss falls there
        (:func:`climb_bayes.model.discrepancy.beyond_knots`)."""
        own_key, shared_key = jax.random.split(rng_key)
        sd, shared_sd = jnp.asarray(self.sd), jnp.asarray(self.shared_sd)[:, None]
        # float32 draws under float64 precision too: one path whatever the precision
        wander = (sd * jax.random.normal(own_key, self.sd.shape, jnp.float32)
                  + shared_sd * jax.random.normal(shared_key, self.shared_sd.shape,
                                                  jnp.float32)[:, None])
        curvature = None if self.curvature is None else jnp.asarray(self.curvature)
        budgets, where = np.unique(np.asarray(log_budget), return_inverse=True)
        delta = beyond_knots(jnp.asarray(self.level), jnp.asarray(self.slope),
                             jnp.asarray(self.knots, dtype=jnp.float32),
                             jnp.asarray(budgets, jnp.asarray(log_budget).dtype),
                             jnp.asarray(exponent), wander, jnp.sqrt(sd ** 2 + shared_sd ** 2),
                             curvature)
        return delta[:, where.reshape(-1)]


@dataclass(frozen=True)
class Law:
    """The law of :mod:`climb_bayes.model.law` at ``draws`` parameter draws: a :class:`LossModel`.

    ``bend`` (the learned error in budget) and ``extrapolation_sd`` (a fixed error beyond
    ``pilot_tokens``, nats per e-fold: :meth:`extrapolation_error`) are optional.
    """

    params: LawParams  # each with a leading draw axis
    reference: float  # D_ref: the law sees budgets as D / D_ref
    sources: list[str]
    targets: list[str]
    form: str = "source_saturating"
    bend: Discrepancy | None = None
    extrapolation_sd: float = 0.0
    pilot_tokens: float = math.inf  # the largest budget the pilots observed
    measured: MeasuredShares | None = None  # down to which shares the pilots measured
    share_sd: float = 0.0  # the law's error at a share of 0, in the log of the reducible loss
    share_sd_growth: float = 0.0  # its growth per e-fold deeper than one below the measured

    @classmethod
    def single(cls, params: LawParams, reference: float, sources: list[str],
               targets: list[str], form: str = "source_saturating") -> "Law":
        """One parameter set (no draw axis) as a law of one draw."""
        return cls(LawParams(*(np.asarray(p)[None] for p in params)), reference,
                   list(sources), list(targets), form)

    @property
    def self_map(self) -> np.ndarray:
        """``(source, target)``: 1 where source and target are one language."""
        return self_map(self.sources, self.targets)

    @property
    def draws(self) -> int:
        """Number of parameter draws."""
        return int(np.shape(self.params.E)[0])

    def thinned(self, keep: np.ndarray) -> "Law":
        """The law at the draws ``keep`` only."""
        bend = (None if self.bend is None
                else self.bend._replace(**{name: np.asarray(getattr(self.bend, name))[keep]
                                           for name in ("level", "slope", "sd", "shared_sd",
                                                        "curvature")
                                           if getattr(self.bend, name) is not None}))
        return Law(LawParams(*(np.asarray(p)[keep] for p in self.params)), self.reference,
                   self.sources, self.targets, self.form, bend, self.extrapolation_sd,
                   self.pilot_tokens, self.measured, self.share_sd, self.share_sd_growth)

    def _precision(self) -> contextlib.AbstractContextManager:
        precise = np.asarray(self.params.E).dtype == np.float64
        return jax.enable_x64(True) if precise else contextlib.nullcontext()

    def _dtype(self) -> jnp.dtype:
        return jnp.float64 if np.asarray(self.params.E).dtype == np.float64 else jnp.float32

    def predict_loss(self, shares: np.ndarray, tokens: np.ndarray,
                     rng_key: jax.Array | None = None) -> np.ndarray:
        """``L_i(r, D)`` of every draw: ``(draw, mix, target)`` (:func:`expected_loss`), with
        the learned error in budget when the law has one (drawn with ``rng_key``; the default
        key 0 is the one ``solve`` and ``report`` use) and the fixed error beyond the pilots
        when ``extrapolation_sd > 0``."""
        key = jax.random.PRNGKey(0) if rng_key is None else rng_key
        bend_key, extrapolation_key = jax.random.split(key)
        tokens = np.asarray(tokens, dtype=np.float64)
        with self._precision():
            dtype = self._dtype()
            scaled = jnp.asarray(tokens / self.reference, dtype=dtype)
            bend = (None if self.bend is None
                    else self.bend.at(jnp.log(scaled), bend_key, self.params.beta))
            if self.has_share_error:
                error = self.share_error(shares, tokens, jax.random.fold_in(key, 2))
                bend = error if bend is None else bend + error
            per_draw = jax.vmap(expected_loss, in_axes=(0, None, None, None, None, 0))
            losses = per_draw(LawParams(*(jnp.asarray(p, dtype) for p in self.params)),
                              jnp.asarray(shares, dtype), scaled,
                              jnp.asarray(self.self_map, dtype), self.form, bend)
            if self.extrapolation_sd > 0.0:
                losses = losses + self.extrapolation_error(tokens, extrapolation_key)
            return np.asarray(losses)

    def at_budget(self, tokens: float, rng_key: jax.Array | None = None) -> LawParams:
        """The parameters of every draw with the learned error in budget at ``tokens`` folded
        in: ``B_i exp(delta_i(D))``. At one budget ``delta_i`` is a per-draw constant factor on
        the reducible loss, so a solver that optimises the law at ``tokens`` sees the draws of
        :meth:`predict_loss` with the same key."""
        if self.bend is None:
            return self.params
        key = jax.random.PRNGKey(0) if rng_key is None else rng_key
        bend_key, _ = jax.random.split(key)
        log_budget = jnp.log(jnp.asarray([tokens / self.reference], dtype=jnp.float32))
        delta = np.asarray(self.bend.at(log_budget, bend_key, self.params.beta))[:, 0, :]
        return self.params._replace(B=np.asarray(self.params.B) * np.exp(delta))

    @property
    def has_share_error(self) -> bool:
        """Whether predictions carry an error below the shares the pilots measured."""
        return self.measured is not None and (self.share_sd > 0 or self.share_sd_growth > 0)

    def share_error(self, shares: np.ndarray, tokens: np.ndarray, rng_key: jax.Array
                    ) -> jax.Array:
        """Draws ``(draw, mix, target)`` of the law's error below the shares the pilots
        measured, on the log of the reducible loss (:mod:`climb_bayes.model.share_error`)::

            e_i(r) = z_i * sqrt(v_i(r)),        z_i ~ Normal(0, 1)

        ``v_i`` from :func:`climb_bayes.model.law.share_error_variance` at ``measured``, with
        the error at a share of 0 ``share_sd`` and its growth per e-fold ``share_sd_growth``.
        One ``z_i`` per draw and language, shared by every mix: it is the law's error for that
        language, and a mix feels it as far as it takes the language below what the pilots
        measured."""
        tokens = np.asarray(tokens, dtype=np.float64)
        with self._precision():
            dtype = self._dtype()
            per_draw = jax.vmap(share_error_variance,
                                in_axes=(0, None, None, None, None, None, None, None, None))
            variance = per_draw(LawParams(*(jnp.asarray(p, dtype) for p in self.params)),
                                jnp.asarray(shares, dtype),
                                jnp.asarray(tokens / self.reference, dtype),
                                jnp.asarray(self.self_map, dtype), self.form,
                                jnp.asarray(self.measured.own, dtype),
                                jnp.asarray(self.measured.effective, dtype),
                                jnp.asarray(self.share_sd, dtype),
                                jnp.asarray(self.share_sd_growth, dtype))
            z = jax.random.normal(rng_key, (self.draws, 1, len(self.targets)), dtype)
            return jnp.sqrt(variance) * z

    def effective_share(self, shares: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """``rt_i(r, D)`` of every draw: ``(draw, mix, target)``."""
        tokens = np.asarray(tokens, dtype=np.float64)
        with self._precision():
            dtype = self._dtype()
            per_draw = jax.vmap(effective_share, in_axes=(0, None, None, None, None))
            return np.asarray(per_draw(LawParams(*(jnp.asarray(p, dtype) for p in self.params)),
                                       jnp.asarray(shares, dtype),
                                       jnp.asarray(tokens / self.reference, dtype),
                                       jnp.asarray(self.self_map, dtype), self.form))

    def extrapolation_error(self, tokens: np.ndarray, rng_key: jax.Array) -> jax.Array:
        """Draws ``(draw, mix, target)`` of a fixed error beyond the pilots (the explicit
        override ``law.extrapolation_sd``), for budgets ``tokens`` ``(mix,)``::

            e_i(D) = eps_i * max(0, ln(D / D_pilot)),    eps_i ~ Normal(0, sd^2)

        ``D_pilot`` is ``pilot_tokens`` and ``sd`` is ``extrapolation_sd``. One ``eps_i`` per
        draw and language, shared by every mix and budget: it moves every mix's loss together,
        so it widens the intervals but leaves the differences between mixes unchanged (the
        learned :class:`Discrepancy` does not). Inside the pilot range it is zero.
        """
        beyond = jnp.log(jnp.maximum(jnp.asarray(tokens) / self.pilot_tokens, 1.0))
        slope = self.extrapolation_sd * jax.random.normal(
            rng_key, (self.draws, 1, len(self.targets)))
        return slope * beyond[None, :, None]
