"""Simulated pilots from known parameters: the oracle for tests and the bundled example.

:func:`simulate_pilots` draws a world (the law's parameters) and runs the paper's pilot design
in it (:func:`climb_bayes.data.designs.climb_design`, several checkpoints per run);
``python -m climb_bayes.simulate languages=4 output=DIR`` writes its ``DIR/pilots.csv`` with
the true parameters beside it in ``DIR/truth.json``.

A world (:func:`draw_world`)::

    E_i ~ Uniform(2.0, 3.2)            B_i ~ Uniform(0.8, 1.6)
    beta_i ~ LogNormal(log 0.3, 0.2)   eta_i ~ LogNormal(log 1.5, 0.4)
    a_ji ~ Normal(transfer_mean, transfer_sd)  (negative: interference)
    k_ji ~ Normal(0, 0.03)             sigma_i ~ Uniform(0.5, 1.5) * noise

and an observed loss is ``L_i(r, D) + sigma_i * StudentT(noise_df)`` (Gaussian when
``noise_df`` is None), with ``D_ref`` the median checkpoint budget as in the fit.

A trained language is evaluated on the runs that train on it (``r_i > 0``); an
evaluation-only language on every run, and its incoming transfer is positive (``|a|``,
``|k|``): a language that is never trained on can only be predicted from what helps it.
The law's floor on the effective share (:func:`climb_bayes.model.law.positive_floor`) is a
numerical guard, not a regime real losses live in, so the simulator keeps away from it: a
language's incoming transfer (``a_ji, k_ji`` over sources ``j``) is redrawn until, at every
pilot checkpoint, interference leaves it at least half of its own share (``rt_i >= r_i / 2``).
"""

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import jax
import numpy as np
import pandas as pd

from climb_bayes.data.designs import climb_design
from climb_bayes.data.pilot_table import SHARE_PREFIX
from climb_bayes.errors import InputError
from climb_bayes.model.law import LawParams, self_map
from climb_bayes.model.loss_model import Law
from climb_bayes.model.numpyro_model import reference_tokens

#: Names for simulated languages (ISO 639-1), then ``x17``, ``x18``, ...
LANGUAGE_NAMES = ("en", "de", "fr", "es", "it", "pl", "ru", "ja",
                  "zh", "ar", "hi", "pt", "nl", "sv", "tr", "ko")


def language_names(count: int) -> list[str]:
    """``count`` language codes: real ones first."""
    return [LANGUAGE_NAMES[i] if i < len(LANGUAGE_NAMES) else f"x{i + 1}" for i in range(count)]


@dataclass(frozen=True)
class World:
    """The truth of a simulation: the law's parameters, the noise and the reference budget."""

    params: LawParams  # numpy arrays
    sigma: np.ndarray  # (target,)
    sources: list[str]
    targets: list[str]
    reference: float  # D_ref
    form: str = "source_saturating"

    @property
    def law(self) -> Law:
        """The true law, a law of one draw in float64."""
        return Law.single(LawParams(*(np.asarray(p, np.float64) for p in self.params)),
                          self.reference, self.sources, self.targets, self.form)

    def predict_loss(self, shares: np.ndarray, tokens: np.ndarray,
                     rng_key: jax.Array | None = None) -> np.ndarray:
        """The true noise-free loss ``(1, mix, target)`` (a ``LossModel``)."""
        return self.law.predict_loss(shares, tokens, rng_key)

    def to_json(self) -> str:
        """The world as JSON (arrays as nested lists, names alongside)."""
        record = {"sources": self.sources, "targets": self.targets, "reference": self.reference,
                  "form": self.form, "sigma": self.sigma.tolist(),
                  **{name: np.asarray(v).tolist() for name, v in self.params._asdict().items()}}
        return json.dumps(record, indent=1)

    @classmethod
    def from_json(cls, text: str) -> "World":
        """Inverse of :meth:`to_json`."""
        record = json.loads(text)
        params = LawParams(**{name: np.asarray(record[name]) for name in LawParams._fields})
        return cls(params=params, sigma=np.asarray(record["sigma"]), sources=record["sources"],
                   targets=record["targets"], reference=record["reference"],
                   form=record["form"])


def draw_world(rng: np.random.Generator, sources: Sequence[str], targets: Sequence[str],
               reference: float, transfer_mean: float = 0.1, transfer_sd: float = 0.15,
               noise: float = 0.02, form: str = "source_saturating") -> World:
    """Draw the law's parameters (see the module docstring for the distributions)."""
    sources, targets = list(sources), list(targets)
    n_t = len(targets)
    cross = 1.0 - self_map(sources, targets)
    params = LawParams(
        E=rng.uniform(2.0, 3.2, n_t),
        B=rng.uniform(0.8, 1.6, n_t),
        beta=np.exp(rng.normal(np.log(0.3), 0.2, n_t)),
        a=cross * rng.normal(transfer_mean, transfer_sd, cross.shape),
        k=cross * rng.normal(0.0, 0.03, cross.shape),
        eta=np.exp(rng.normal(np.log(1.5), 0.4, n_t)),
    )
    evaluation_only = np.array([t not in sources for t in targets])
    params = params._replace(a=np.where(evaluation_only, np.abs(params.a), params.a),
                             k=np.where(evaluation_only, np.abs(params.k), params.k))
    sigma = noise * rng.uniform(0.5, 1.5, n_t)
    return World(params, sigma, sources, targets, reference, form)


def checkpoint_table(design: pd.DataFrame, checkpoints: Sequence[float]) -> pd.DataFrame:
    """One row per (run, checkpoint): the design's runs at fractions of their budgets."""
    rows = [design.assign(tokens=design["tokens"] * fraction) for fraction in checkpoints]
    return pd.concat(rows, ignore_index=True)


def observe(world: World, points: pd.DataFrame, rng: np.random.Generator,
            noise_df: float | None = None, untrained: bool = False) -> pd.DataFrame:
    """Noisy losses at every (run, checkpoint) row: the long pilot table.

    Target ``i`` is observed where ``r_i > 0``, and everywhere if it is evaluation-only; with
    ``untrained``, everywhere (a training language on a run with none of it too, as a trainer
    that evaluates every language reports it). The noise is drawn for every row either way,
    so the rows of the first kind are the same with and without.
    """
    shares = points[[f"{SHARE_PREFIX}{s}" for s in world.sources]].to_numpy()
    mean = world.predict_loss(shares, points["tokens"].to_numpy())[0]
    draws = rng.standard_t(noise_df, mean.shape) if noise_df else rng.standard_normal(mean.shape)
    loss = mean + world.sigma * draws
    observed = (shares @ self_map(world.sources, world.targets) > 0) | ~np.isin(
        world.targets, world.sources) | untrained
    point, target = np.nonzero(observed)
    long = points.iloc[point].reset_index(drop=True)
    long.insert(2, "language", np.asarray(world.targets)[target])
    long.insert(3, "loss", loss[point, target])
    return long


def simulate_pilots(languages: int = 4, evaluation_only: int = 0, budgets: Sequence[float] = (
        1e7, 3e7), checkpoints: Sequence[float] = (0.25, 0.5, 1.0), transfer_mean: float = 0.1,
        transfer_sd: float = 0.15, noise: float = 0.02, noise_df: float | None = None,
        form: str = "source_saturating", seed: int = 0, untrained: bool = False
        ) -> tuple[pd.DataFrame, World]:
    """Draw a world and its pilot table for the ``3 x m x 2`` design plus monolingual runs.

    ``evaluation_only`` extra languages are evaluated but never trained on; ``untrained``
    as for :func:`observe`.
    """
    rng = np.random.default_rng(seed)
    names = language_names(languages + evaluation_only)
    sources, targets = names[:languages], names
    points = checkpoint_table(climb_design(sources, budgets, seed=seed), checkpoints)
    shares = points[[f"{SHARE_PREFIX}{s}" for s in sources]].to_numpy()
    def draw() -> World:
        return draw_world(rng, sources, targets, reference_tokens(points["tokens"]),
                          transfer_mean, transfer_sd, noise, form)

    world = bound_interference(draw(), draw, shares, points["tokens"].to_numpy())
    return observe(world, points, rng, noise_df, untrained), world


def interference_is_bounded(world: World, shares: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """Whether ``rt_i >= r_i / 2``, per mix and target; ``(n, target)`` booleans."""
    own = shares @ self_map(world.sources, world.targets)
    return world.law.effective_share(shares, tokens)[0] >= 0.5 * own


def bound_interference(world: World, draw: Callable[[], World], shares: np.ndarray,
                       tokens: np.ndarray, max_draws: int = 10_000) -> World:
    """``world`` with each target's incoming transfer (its columns of ``b`` and ``k``) drawn
    again, from fresh worlds of ``draw``, until interference is bounded at every mix.

    Redrawing per target, not the whole world, keeps this quick with many languages: at
    m = 16 with the default transfer almost no whole world passes, while a column passes
    about one time in eight.
    """
    for _ in range(max_draws):
        bad = ~interference_is_bounded(world, shares, tokens).all(axis=0)
        if not bad.any():
            return world
        fresh = draw().params
        params = world.params._replace(a=np.where(bad, fresh.a, world.params.a),
                                       k=np.where(bad, fresh.k, world.params.k))
        world = replace(world, params=params)
    raise InputError(f"no world with bounded interference in {max_draws} draws: the transfer "
                     f"is too negative for these mixes; raise transfer_mean or lower "
                     f"transfer_sd.")


def heldout_runs(world: World, count: int, budgets: Sequence[float], rng: np.random.Generator,
                 floor: float = 0.3) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``count`` new runs to score predictions on, in the regime the pilots cover.

    Mixes are ``floor / S + (1 - floor) * Dirichlet(1, ..., 1)`` (every language gets at least
    ``floor`` times an even split, as in :func:`climb_bayes.data.designs.climb_design`), budgets are
    drawn from ``budgets``, and, as for the pilots, a run where interference leaves a trained
    language less than half its own share is drawn again. Returns ``(shares (count, source),
    tokens (count,), true_loss, observed_loss)``, losses ``(count, target)``; the observed loss
    adds the world's noise.
    """
    n_sources = len(world.sources)
    shares = np.empty((0, n_sources))
    tokens = np.empty(0)
    while len(tokens) < count:
        new = floor / n_sources + (1.0 - floor) * rng.dirichlet(np.ones(n_sources), count)
        new_tokens = rng.choice(np.asarray(budgets, dtype=float), count)
        keep = interference_is_bounded(world, new, new_tokens).all(axis=1)
        shares = np.vstack([shares, new[keep]])[:count]
        tokens = np.concatenate([tokens, new_tokens[keep]])[:count]
    truth = world.predict_loss(shares, tokens)[0]
    return shares, tokens, truth, truth + world.sigma * rng.standard_normal(truth.shape)
