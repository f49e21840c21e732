"""The decision: recommended mixes for a target budget, with their uncertainty.

``python -m climb_bayes.solve posterior=runs/fit/posterior.nc target_tokens=2e9
output=conf/mix`` reads a posterior and writes, in ``output``:

- ``<mix>.yaml`` for every mix (a Hydra ``mix`` group entry: ``python train.py
  +mix=posterior_mean``): top-level ``shares: {lang: share}`` over the posterior's training
  languages, summing to 1, and ``metadata:`` (predicted loss of every evaluated language at
  ``target_tokens``, posterior mean and 90% interval; the weighted loss; its gain over the
  reference mix and ``P(gain > delta)``, ``P(regret < delta)`` and ``P(beats posterior_mean)``
  (:mod:`climb_bayes.decide.compare`); the comparison's settings and the recommendation; solver
  diagnostics; provenance: the posterior's
  SHA-256 and fit health, the settings and the package version). Mixes: ``posterior_mean``
  (minimises the posterior expected weighted loss), ``plugin`` (the same at the posterior-mean
  parameters), ``climb_two_step`` (the paper's procedure on the point estimate; its gap to
  ``plugin`` is reported), ``robust`` (by default the CVaR of the regret against each draw's own
  optimum; or mean + k sd, or an upper quantile, of the weighted loss),
  ``isolated`` (the solver with all transfer removed), and the heuristics ``uniform``,
  ``natural``, ``temperature`` and ``unimax`` (the last three need the available tokens).
- ``comparison.csv``: one row per mix: :data:`COMPARISON_COLUMNS` and ``share_<lang>``.
  Printed too. The reference is ``uniform``, or where the bounds forbid it
  ``uniform_capped`` (the mix closest to uniform within them), added to the mixes.
- ``near_optimal_shares.csv``: per training language the range of shares of the near-optimal
  mixes (``P(regret < delta) >= 0.8``, among the named mixes and 400 per-draw optima).
- ``optimal_shares.csv``: one row per training language: ``language``, ``mean``, ``q05``,
  ``q50``, ``q95`` of the optimal share of each posterior draw solved on its own.
- ``optimal_share_draws.csv``: one row per draw: ``draw``, ``share_<lang>``.

The mathematics is in :mod:`climb_bayes.decide.optimal_mix` and
:mod:`climb_bayes.decide.baselines`; the
constrained Newton solver in :mod:`climb_bayes.decide.interior`. Bad input (unknown languages,
infeasible constraints, a posterior that is not one, a non-positive budget) exits with status
2 before anything is written; every file is written atomically. A posterior from a broken fit
(:mod:`climb_bayes.model.health`) is refused unless ``allow_broken=true``; a marginal or allowed
broken one is named so beside the printed table.
"""

import json
import logging
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from climb_bayes import __version__
from climb_bayes.cli import (
    check_command_line,
    choice,
    count,
    flag,
    number,
    output_directory,
    positive,
    required,
)
from climb_bayes.data.pilot_table import SHARE_PREFIX, read_csv
from climb_bayes.decide.baselines import natural_mix, temperature_mix, uniform_mix, unimax_mix
from climb_bayes.decide.compare import (
    DOUBT_THRESHOLD,
    NEAR_OPTIMAL_LEVEL,
    bounded_uniform,
    gains,
    near_optimal_range,
    recommendation,
    run_noise,
)
from climb_bayes.decide.interior import Solution
from climb_bayes.decide.mix_file import MixFile
from climb_bayes.decide.optimal_mix import (
    MultiStart,
    Problem,
    Settings,
    is_feasible,
    minimise_from,
    objective_value,
    per_draw_optima,
    per_draw_optimal_values,
    point_estimate,
    two_step_mix,
    without_transfer,
)
from climb_bayes.errors import InputError, exits_on_input_error, listing, plain
from climb_bayes.io import write_text
from climb_bayes.model.health import notice
from climb_bayes.model.law import FLOOR_REGION, INTERACTION_FORMS
from climb_bayes.model.loss_model import Law
from climb_bayes.model.posterior import Posterior, file_sha256, read_posterior

log = logging.getLogger(__name__)

QUANTILES = (0.05, 0.5, 0.95)
#: What ``target_tokens`` is, for messages.
TARGET = "total training tokens of the run the mix is for"
#: The optimised mixes, in the order of the comparison table.
OPTIMISED = ("posterior_mean", "plugin", "climb_two_step", "robust", "isolated")
#: Objectives (nats) further apart than this at the ends of two starts are different optima.
START_TOLERANCE = 1e-8
COMPARISON_COLUMNS = ("mix", "weighted_loss_mean", "weighted_loss_q05", "weighted_loss_q95",
                      "gain_mean", "gain_q05", "gain_q95", "p_gain", "p_near_optimal",
                      "p_beats_posterior_mean")
#: How many per-draw optima join the named mixes as candidates of the near-optimal set.
NEAR_OPTIMAL_CANDIDATES = 400


# --- inputs ------------------------------------------------------------------------------------

def _names(mapping: Any, key: str) -> dict[str, Any]:
    if mapping is None:
        return {}
    if OmegaConf.is_config(mapping):
        mapping = OmegaConf.to_container(mapping, resolve=True)
    if not isinstance(mapping, dict):
        raise InputError(f"{key} must be a mapping {{language: value}}; got {mapping!r}.")
    return {str(name): value for name, value in mapping.items()}


def target_budget(value: Any) -> float:
    """``target_tokens`` as a positive float."""
    return positive(value, "target_tokens", TARGET, "target_tokens=2e9")


def language_weights(mapping: Any, targets: list[str]) -> np.ndarray:
    """Weights ``w`` over the evaluated languages, normalised to sum to 1 (default equal);
    languages left out of a given mapping get weight 0."""
    given = _names(mapping, "weights")
    if not given:
        return np.full(len(targets), 1.0 / len(targets))
    unknown = sorted(set(given) - set(targets))
    if unknown:
        raise InputError(f"weights name languages {unknown} that the posterior does not "
                         f"evaluate; its evaluated languages are {targets}.")
    weights = np.array([number(given.get(t, 0.0), f"weights.{t}", "language weight",
                               "weights={en: 2, de: 1}", at_least=0.0) for t in targets])
    if weights.sum() <= 0:
        raise InputError(f"weights={plain(given)}: the weights sum to 0; give at least one "
                         f"evaluated language a positive weight, e.g. weights={{{targets[0]}: 1}}.")
    return weights / weights.sum()


def available_tokens(value: Any, sources: list[str]) -> np.ndarray | None:
    """Tokens available per training language, from a mapping or a CSV with columns
    ``language,train_tokens`` (extra languages are ignored); ``None`` when not given."""
    if value is None:
        return None
    if isinstance(value, str):
        path = Path(value)
        if not path.is_file():
            raise InputError(f"available={value}: no such file; give a CSV with columns "
                             f"language,train_tokens or a mapping {{language: tokens}}.")
        table = read_csv(path)
        if not {"language", "train_tokens"} <= set(table.columns):
            raise InputError(f"{path} needs columns language,train_tokens; it has "
                             f"{listing(table.columns)}.")
        given = dict(zip(table["language"].astype(str), table["train_tokens"], strict=True))
        where, key = str(path), f"{path}: train_tokens of "
    else:
        given, where, key = _names(value, "available"), "available", "available."
    missing = [s for s in sources if s not in given]
    if missing:
        raise InputError(f"{where} has no available tokens for training languages {missing}; "
                         f"every one of {sources} needs a value.")
    return np.array([number(given[s], f"{key}{s}", "number of available tokens",
                            "available={en: 1e9, de: 5e8} or a CSV file", at_least=0.0)
                     for s in sources])


def share_bounds(min_share: Any, max_share: Any, sources: list[str]) -> tuple[np.ndarray,
                                                                               np.ndarray]:
    """Per-language ``[min, max]`` share bounds (defaults 0 and 1)."""
    lower, upper = np.zeros(len(sources)), np.ones(len(sources))
    for key, bound in (("min_share", lower), ("max_share", upper)):
        given = _names(min_share if key == "min_share" else max_share, key)
        unknown = sorted(set(given) - set(sources))
        if unknown:
            raise InputError(f"{key} names languages {unknown} that the posterior does not "
                             f"train on; its training languages are {sources}.")
        for name, value in given.items():
            bound[sources.index(name)] = number(value, f"{key}.{name}", "share bound",
                                                f"{key}={{{name}: 0.1}}", at_least=0.0,
                                                at_most=1.0)
    return lower, upper


def _epochs_for(available: np.ndarray, upper: np.ndarray, budget: float) -> float:
    """Smallest epoch cap ``K`` with ``sum_i min(max_i, K A_i / D) >= 1`` (inf if none)."""
    if np.sum(upper[available > 0]) < 1.0:
        return float("inf")
    low, high = 0.0, 1.0
    while np.sum(np.minimum(upper, high * available / budget)) < 1.0:
        high *= 2.0
    for _ in range(100):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if np.sum(np.minimum(upper, mid * available / budget)) < 1.0 \
            else (low, mid)
    return high


def feasible_bounds(lower: np.ndarray, upper_share: np.ndarray, available: np.ndarray | None,
                    max_epochs: float, budget: float, sources: list[str]
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Bounds with the availability cap folded in, ``upper_i = min(max_i, K A_i / D)``; an
    InputError naming the binding constraint and the smallest fix when they are infeasible."""
    cap = np.ones_like(upper_share) if available is None else np.minimum(
        1.0, max_epochs * available / budget)
    upper = np.minimum(upper_share, cap)
    crossed = [i for i in range(len(sources)) if lower[i] > upper[i] + 1e-12]
    if crossed:
        i = crossed[0]
        binding = ("its max_share" if upper_share[i] <= cap[i] else
                   f"max_epochs x available tokens / target_tokens = {max_epochs:g} x "
                   f"{available[i]:.4g} / {budget:.4g}")
        raise InputError(f"min_share.{sources[i]} = {lower[i]:g} exceeds the largest share "
                         f"{upper[i]:.6g} allowed by {binding}; lower min_share.{sources[i]} "
                         f"to {upper[i]:.6g} or relax that cap.")
    if lower.sum() > 1.0 + 1e-12:
        raise InputError(f"the min_share values sum to {lower.sum():.6g} > 1; lower them by a "
                         f"total of {lower.sum() - 1.0:.6g}.")
    if upper.sum() < 1.0 - 1e-12:
        deficit = 1.0 - upper.sum()
        if available is not None and np.sum(np.minimum(1.0, cap)) < 1.0:
            total = max_epochs * available.sum()
            epochs = _epochs_for(available, upper_share, budget)
            raise InputError(
                f"the available tokens x max_epochs ({available.sum():.4g} x {max_epochs:g} = "
                f"{total:.4g}) cannot cover target_tokens = {budget:.4g}: the availability cap "
                f"is binding. Smallest changes: "
                + (f"max_epochs={epochs:.4g}, or " if np.isfinite(epochs) else "")
                + f"target_tokens={total:.4g}, or {budget / max_epochs - available.sum():.4g} "
                f"more available tokens.")
        capped = [s for s, u, c in zip(sources, upper_share, cap, strict=True) if u < c]
        raise InputError(f"the largest allowed shares sum to {upper.sum():.6g} < 1 (max_share "
                         f"is binding for {capped}); raise max_share of those languages by a "
                         f"total of {deficit:.6g}.")
    return lower, upper


def check_posterior(posterior: Posterior, path: str) -> None:
    """InputError if the posterior lacks what the solver needs or is from another version."""
    data = getattr(posterior.idata, "constant_data", {})
    missing = [name for name in ("obs_tokens", "run_shares") if name not in data]
    version = posterior.idata.posterior.attrs.get("climb_bayes_version")
    if version is None:
        missing.append("posterior.attrs.climb_bayes_version")
    if missing:
        raise InputError(f"{path} lacks {missing}, which the solver needs; re-run "
                         f"`python -m climb_bayes.fit` to write a complete posterior.")
    if posterior.law.form not in INTERACTION_FORMS:
        raise InputError(f"{path} uses the interaction form {posterior.law.form!r}, which this "
                         f"version ({__version__}) does not know; known: "
                         f"{sorted(INTERACTION_FORMS)}. Refit with this version.")
    if not _compatible(str(version), __version__):
        raise InputError(f"{path} was written by climb_bayes {version}, incompatible with "
                         f"this version {__version__}; refit it with this version.")
    shape = (len(posterior.sources), len(posterior.targets))
    if np.shape(posterior.law.params.a)[1:] != shape:
        raise InputError(f"{path}: the transfer matrices do not match its {shape[0]} training "
                         f"and {shape[1]} evaluated languages; the file is corrupt, refit.")


def _compatible(theirs: str, ours: str) -> bool:
    """Same major version (and the same minor while the major is 0); unknown builds pass."""
    def release(text: str) -> tuple[int, ...] | None:
        found = re.match(r"(\d+)\.(\d+)", text)
        return None if found is None else (int(found[1]), int(found[2]))

    mine, other = release(ours), release(theirs)
    if mine is None:
        return True
    if other is None:
        return False
    return mine[0] == other[0] and (mine[0] != 0 or mine[1] == other[1])


# --- the mixes ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Options:
    """The decision's settings besides the posterior and the bounds."""

    target_tokens: float
    available: np.ndarray | None
    max_epochs: float = 4.0
    temperature: float = 0.3
    robust_kind: str = "cvar_regret"
    robust_k: float = 1.0
    robust_level: float = 0.9
    settings: Settings = Settings()
    budget_factor: float = 10.0
    delta: float | None = None  # margin of P(gain > delta); None: the run-to-run noise
    doubt_threshold: float = DOUBT_THRESHOLD


def solve_options(cfg: DictConfig) -> Options:
    """The settings of ``cfg`` that do not depend on the posterior, each checked (an InputError
    naming its key); ``available`` is read later, against the posterior's languages."""
    target_tokens = required(cfg, "target_tokens", TARGET, "target_tokens=2e9")
    return Options(
        target_tokens=target_budget(target_tokens), available=None,
        max_epochs=positive(cfg.max_epochs, "max_epochs", "repetition cap in epochs",
                            "max_epochs=4"),
        temperature=number(cfg.temperature, "temperature", "temperature-sampling exponent",
                           "temperature=0.3", at_least=0.0),
        robust_kind=choice(cfg.robust.kind, "robust.kind", ("cvar_regret", "mean_sd",
                                                             "quantile")),
        robust_k=number(cfg.robust.k, "robust.k", "number of standard deviations",
                        "robust.k=1.0", at_least=0.0),
        robust_level=number(cfg.robust.level, "robust.level", "tail or quantile level",
                            "robust.level=0.9", above=0.0, below=1.0),
        settings=Settings(positive(cfg.solver.tol, "solver.tol", "KKT tolerance",
                                   "solver.tol=1e-10"),
                          count(cfg.solver.max_iter, "solver.max_iter",
                                "number of Newton iterations", "solver.max_iter=200")),
        budget_factor=positive(cfg.guard.budget_factor, "guard.budget_factor",
                               "extrapolation guard factor", "guard.budget_factor=10"),
        delta=None if cfg.decision.delta is None else number(
            cfg.decision.delta, "decision.delta", "margin of a meaningful gain, in nats",
            "decision.delta=0.01", at_least=0.0),
        doubt_threshold=number(cfg.decision.threshold, "decision.threshold",
                               "probability of a meaningful gain", "decision.threshold=0.8",
                               above=0.0, below=1.0))


def _clean(shares: np.ndarray) -> np.ndarray:
    """Shares clipped at 0 (rounding of the solver) and renormalised to sum to 1."""
    shares = np.clip(np.asarray(shares, np.float64), 0.0, None)
    return shares / shares.sum()


def _diagnostics(result: MultiStart, kind: str) -> dict[str, Any]:
    solution = result.best
    disagree = result.disagreement > START_TOLERANCE
    if disagree:
        log.warning("the solver's starts ended at different optima (objective %s by %.3g "
                    "nats); the best, from %s, is kept", kind, result.disagreement, result.start)
    return {"objective": kind, "converged": bool(solution.converged),
            "kkt_error": float(solution.kkt_error), "iterations": int(solution.iterations),
            "effective_share_floor": result.floor,
            "start": result.start, "starts": result.values,
            "start_disagreement": result.disagreement, "starts_disagree": disagree}


def optimised_mixes(problem: Problem, options: Options,
                    optimum_values: np.ndarray | None = None
                    ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
    """``posterior_mean``, ``plugin``, ``climb_two_step``, ``robust``, ``isolated``, with each
    one's solver diagnostics.

    Each optimised mix is solved from several starts (:func:`minimise_from`): the box centre,
    every feasible heuristic of :func:`baseline_mixes`, and the mixes optimised before it
    (``plugin``, then ``posterior_mean``); the best end is kept, and the metadata says where
    each start ended and whether they disagree by more than :data:`START_TOLERANCE`.
    ``optimum_values`` (each draw's ``W_s(r*_s)``, :func:`per_draw_optimal_values`) are
    computed when ``robust`` needs them (``cvar_regret``) and not given.
    """
    settings = options.settings
    robust_args = {"k": options.robust_k, "level": options.robust_level}
    point = point_estimate(problem.params)
    heuristics = baseline_mixes(len(problem.lower), options)
    plugin = minimise_from(problem, heuristics, point, settings=settings)
    starts = heuristics | {"plugin": plugin.best.x}
    mean = minimise_from(problem, starts, settings=settings)
    if options.robust_kind == "cvar_regret":
        robust_args["optima"] = (per_draw_optimal_values(problem, per_draw_optima(problem,
                                                                                  settings))
                                 if optimum_values is None else optimum_values)
    robust = minimise_from(problem, starts | {"posterior_mean": mean.best.x},
                           kind=options.robust_kind, settings=settings, **robust_args)
    isolated = minimise_from(problem, heuristics, without_transfer(problem.params),
                             settings=settings)
    solutions = {"posterior_mean": (mean, "mean"),
                 "plugin": (plugin, "mean at the posterior means"),
                 "robust": (robust, options.robust_kind),
                 "isolated": (isolated, "mean with b = k = 0")}
    mixes = {name: _clean(result.best.x) for name, (result, _) in solutions.items()}
    info = {name: _diagnostics(result, kind) for name, (result, kind) in solutions.items()}
    info["robust"].update(k=options.robust_k, level=options.robust_level)
    two_step = two_step_mix(problem, settings)
    mixes["climb_two_step"] = _clean(two_step.shares)
    plugin_value = objective_value(problem, mixes["plugin"], point)
    two_step_value = objective_value(problem, mixes["climb_two_step"], point)
    info["climb_two_step"] = {
        "objective": "equal weighted marginal benefit of effective share, largest reachable",
        "lambda": two_step.lam, "plugin_objective": plugin_value,
        "two_step_objective": two_step_value, "gap_to_plugin": two_step_value - plugin_value,
        "l1_distance_to_plugin": float(np.abs(mixes["climb_two_step"] - mixes["plugin"]).sum()),
    }
    return {name: mixes[name] for name in OPTIMISED}, info


def baseline_mixes(count: int, options: Options) -> dict[str, np.ndarray]:
    """``uniform``, and with available tokens ``natural``, ``temperature`` and ``unimax``."""
    mixes = {"uniform": uniform_mix(count)}
    if options.available is not None:
        mixes["natural"] = natural_mix(options.available)
        mixes["temperature"] = temperature_mix(options.available, options.temperature)
        mixes["unimax"] = unimax_mix(options.available, options.target_tokens,
                                     options.max_epochs)
    return mixes


# --- evaluating the mixes ----------------------------------------------------------------------

def weighted_loss_draws(posterior: Posterior, shares: np.ndarray, target_tokens: float,
                        weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-draw losses ``(sample, mix, target)`` and weighted losses ``(sample, mix)``."""
    losses = np.asarray(posterior.law.predict_loss(shares, np.full(len(shares), target_tokens)),
                        dtype=np.float64)
    return losses, losses @ weights


def comparison_table(names: list[str], shares: np.ndarray, weighted: np.ndarray,
                     sources: list[str], reference: str, optima: np.ndarray, delta: float
                     ) -> pd.DataFrame:
    """One row per mix: the weighted loss's posterior mean and 90% interval; the gain over
    ``reference`` and ``P(gain > delta)``, and ``P(regret < delta)`` against each draw's own
    optimum ``optima`` (:func:`climb_bayes.decide.compare.gains`); ``P(W(mix) <
    W(posterior_mean))``."""
    q = np.quantile(weighted, (0.05, 0.95), axis=0)
    best = weighted[:, names.index("posterior_mean")][:, None]
    table = pd.concat([
        pd.DataFrame({"mix": names, "weighted_loss_mean": weighted.mean(0),
                      "weighted_loss_q05": q[0], "weighted_loss_q95": q[1]}),
        gains(weighted, names.index(reference), delta, optima),
        pd.DataFrame({"p_beats_posterior_mean": (weighted < best).mean(0)})], axis=1)
    for j, source in enumerate(sources):
        table[f"{SHARE_PREFIX}{source}"] = shares[:, j]
    return table


def near_optimal_table(posterior: Posterior, named: np.ndarray, optima: Solution,
                       optimum_values: np.ndarray, target_tokens: float, weights: np.ndarray,
                       delta: float) -> pd.DataFrame:
    """:func:`climb_bayes.decide.compare.near_optimal_range` over the named mixes and up to
    :data:`NEAR_OPTIMAL_CANDIDATES` per-draw optima (evenly spaced draws)."""
    keep = np.unique(np.linspace(0, len(optima.x) - 1, NEAR_OPTIMAL_CANDIDATES).astype(int))
    candidates = np.vstack([named, np.stack([_clean(x) for x in optima.x[keep]])])
    _, weighted = weighted_loss_draws(posterior, candidates, target_tokens, weights)
    return near_optimal_range(candidates, weighted, optimum_values, delta, posterior.sources)


def optimal_share_tables(optima: np.ndarray, sources: list[str]
                         ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Summary (one row per language: mean, q05, q50, q95) and the draws of the optimal share."""
    q = np.quantile(optima, QUANTILES, axis=0)
    summary = pd.DataFrame({"language": sources, "mean": optima.mean(0), "q05": q[0],
                            "q50": q[1], "q95": q[2]})
    draws = pd.DataFrame(optima, columns=[f"{SHARE_PREFIX}{s}" for s in sources])
    draws.insert(0, "draw", np.arange(len(optima)))
    return summary, draws


def extrapolation_warnings(sources: list[str], pilot_shares: np.ndarray, pilot_tokens: float,
                           target_tokens: float, mixes: dict[str, np.ndarray],
                           budget_factor: float) -> list[str]:
    """Where a decision extrapolates, in words: a target budget beyond ``budget_factor`` times
    the largest pilot budget ``pilot_tokens``, and every optimised mix's share of a language
    outside the range of shares the *mixed* pilots gave it. ``pilot_shares`` is ``(run,
    source)``. Monolingual pilots (one share of 1) do not count: they give every language the
    shares 0 and 1, which would hide any extrapolation in the mix.
    """
    messages = []
    if target_tokens > budget_factor * pilot_tokens:
        messages.append(f"target_tokens = {target_tokens:.3g} is "
                        f"{target_tokens / pilot_tokens:.1f}x the largest pilot budget "
                        f"({pilot_tokens:.3g}), beyond the guard factor {budget_factor:g}: the "
                        f"law is extrapolating in D; check its calibration there (pilots at "
                        f"larger budgets pin it down).")
    mixed = pilot_shares[pilot_shares.max(axis=1) < 1.0 - 1e-9]
    if not len(mixed):
        return [*messages, "no pilot mixes more than one language: every optimised mix "
                "extrapolates in the mix; add mixed pilots (python -m climb_bayes.design)."]
    low, high = mixed.min(axis=0), mixed.max(axis=0)
    for name, shares in mixes.items():
        for j, source in enumerate(sources):
            outside = max(low[j] - shares[j], shares[j] - high[j])
            if outside > 1e-9:
                side = "below" if shares[j] < low[j] else "above"
                messages.append(f"{name}: the share of {source} ({shares[j]:.3f}) is "
                                f"{outside:.3f} {side} the range the mixed pilots gave it "
                                f"[{low[j]:.3f}, {high[j]:.3f}]: the law is extrapolating in "
                                f"the mix.")
    return messages


def mean_effective_shares(law: Law, shares: np.ndarray, target_tokens: float) -> np.ndarray:
    """Posterior mean of every target's effective share ``rt_i`` at each mix ``(mix,
    source)``, at the target budget: ``(mix, target)``."""
    return np.mean(law.effective_share(shares, np.full(len(shares), target_tokens)), axis=0)


def floor_warnings(law: Law, weights: np.ndarray, target_tokens: float,
                   mixes: dict[str, np.ndarray]) -> list[str]:
    """Every mix of ``mixes`` that leaves a weighted language's effective share ``rt_i``
    (posterior mean) below :data:`climb_bayes.model.law.FLOOR_REGION`, where the law rests on its
    floor rather than on anything the pilots measured, in words. The mixes optimised on the
    posterior keep above it (:func:`climb_bayes.decide.optimal_mix.floor_constraint`) unless the
    bounds
    forbid it; ``climb_two_step`` and ``isolated`` (optimised on a law without transfer) may
    not."""
    names = list(mixes)
    mean = mean_effective_shares(law, np.stack([mixes[n] for n in names]), target_tokens)
    return [f"{name}: the effective share of {target} (tokens of its own plus what transfer "
            f"gives it) is {mean[m, i]:.2g} (posterior mean), below {FLOOR_REGION:g}, on the "
            f"law's floor where no pilot measures it; raise min_share.{target}."
            for m, name in enumerate(names) for i, target in enumerate(law.targets)
            if weights[i] > 0 and mean[m, i] < FLOOR_REGION * (1 - 1e-6)]


def _per_target(losses: np.ndarray, targets: list[str]) -> dict[str, dict[str, float]]:
    q = np.quantile(losses, (0.05, 0.95), axis=0)
    return {t: {"mean": float(losses[:, i].mean()), "q05": float(q[0, i]),
                "q95": float(q[1, i])} for i, t in enumerate(targets)}


def mix_file(shares: np.ndarray, losses: np.ndarray, row: pd.Series, sources: list[str],
             targets: list[str], extra: dict[str, Any]) -> MixFile:
    """One mix file (:class:`climb_bayes.decide.mix_file.MixFile`): ``shares`` and ``metadata``."""
    return MixFile(
        shares={s: float(v) for s, v in zip(sources, shares, strict=True)},
        metadata={
            "predicted_loss": _per_target(losses, targets),
            "weighted_loss": {key: float(row[f"weighted_loss_{key}"])
                              for key in ("mean", "q05", "q95")},
            "gain": {key: float(row[f"gain_{key}"]) for key in ("mean", "q05", "q95")},
            "p_gain": float(row["p_gain"]),
            "p_near_optimal": float(row["p_near_optimal"]),
            "p_beats_posterior_mean": float(row["p_beats_posterior_mean"]),
            **extra,
        })


# --- the command -------------------------------------------------------------------------------

def _problem(cfg: DictConfig, posterior: Posterior, options: Options
             ) -> tuple[Problem, Options, np.ndarray]:
    """The problem, the options with the available tokens and the language weights: the
    settings of ``cfg`` that name the posterior's languages, checked against them."""
    weights = language_weights(cfg.weights, posterior.targets)
    available = available_tokens(cfg.available, posterior.sources)
    lower, upper = share_bounds(cfg.min_share, cfg.max_share, posterior.sources)
    lower, upper = feasible_bounds(lower, upper, available, options.max_epochs,
                                   options.target_tokens, posterior.sources)
    problem = Problem.at_budget(posterior.law, options.target_tokens, weights, lower, upper)
    return problem, replace(options, available=available), weights


def noise_margin(posterior: Posterior, weights: np.ndarray) -> tuple[float, str]:
    """The default ``delta`` and where it comes from: the run-to-run noise of the weighted
    loss (:func:`climb_bayes.decide.compare.run_noise`) from the run effect's scale where the fit
    has
    one, else from the observation noise."""
    if posterior.run_sd is not None:
        return run_noise(posterior.run_sd, weights), "the run effect's scale (run_sd)"
    return run_noise(posterior.sigma, weights), "the observation noise (sigma)"


@dataclass(frozen=True)
class Decision:
    """Every mix and what the posterior says of it (:func:`decision`)."""

    names: list[str]  # optimised mixes, heuristics, then the reference if it is added
    shares: np.ndarray  # (mix, source)
    losses: np.ndarray  # (draw, mix, target) at the target budget
    table: pd.DataFrame  # :func:`comparison_table`, one row per mix in ``names``' order
    info: dict[str, dict[str, Any]]  # each optimised mix's solver diagnostics
    optima: Solution  # each draw's own optimal mix
    optimum_values: np.ndarray  # (draw,) W_s(r*_s)
    versus: dict[str, Any]  # reference, delta and where it came from, the recommendation

    @property
    def recommended(self) -> np.ndarray:
        """The shares of the mix :func:`climb_bayes.decide.compare.recommendation` chose."""
        return self.shares[self.names.index(self.versus["recommended"])]


def decision(posterior: Posterior, problem: Problem, options: Options, weights: np.ndarray
             ) -> Decision:
    """Solve every mix and compare them under the posterior, in memory.

    The reference is ``uniform`` where it respects the bounds, else ``uniform_capped``
    (:func:`climb_bayes.decide.compare.bounded_uniform`); ``delta`` is ``decision.delta`` or else
    the
    run-to-run noise the fit learned (the run effect's scale where it has one, else the
    observation noise: :func:`climb_bayes.decide.compare.run_noise`).
    """
    optima = per_draw_optima(problem, options.settings)
    optimum_values = per_draw_optimal_values(problem, optima)
    mixes, info = optimised_mixes(problem, options, optimum_values)
    mixes.update(baseline_mixes(len(posterior.sources), options))
    reference = "uniform"
    if not is_feasible(problem, mixes["uniform"]):
        reference = "uniform_capped"
        mixes[reference] = bounded_uniform(problem.lower, problem.upper)
    names = list(mixes)
    shares = np.stack([mixes[n] for n in names])
    losses, weighted = weighted_loss_draws(posterior, shares, options.target_tokens, weights)
    delta, delta_from = ((options.delta, "decision.delta") if options.delta is not None
                         else noise_margin(posterior, weights))
    table = comparison_table(names, shares, weighted, posterior.sources, reference,
                             optimum_values, delta)
    recommended, reason = recommendation(
        float(table.set_index("mix").loc["posterior_mean", "p_gain"]), "posterior_mean",
        reference, delta, options.doubt_threshold)
    versus = {"reference": reference, "delta": delta, "delta_from": delta_from,
              "threshold": options.doubt_threshold, "recommended": recommended,
              "recommendation": reason}
    return Decision(names, shares, losses, table, info, optima, optimum_values, versus)


def decide(cfg: DictConfig, options: Options) -> dict[str, str]:
    """Everything the command writes, as ``{file name: text}`` (nothing written yet), with
    the settings ``options`` from :func:`solve_options`."""
    posterior = read_posterior(cfg.posterior, allow_broken=flag(cfg.allow_broken,
                                                                 "allow_broken"))
    check_posterior(posterior, str(cfg.posterior))
    problem, options, weights = _problem(cfg, posterior, options)
    sources, targets = posterior.sources, posterior.targets
    chosen = decision(posterior, problem, options, weights)
    names, shares, losses, table = chosen.names, chosen.shares, chosen.losses, chosen.table
    info, optima, versus = chosen.info, chosen.optima, chosen.versus
    optimised = {name: shares[names.index(name)] for name in OPTIMISED}
    delta = versus["delta"]
    near = near_optimal_table(posterior, shares, optima, chosen.optimum_values,
                              options.target_tokens, weights, delta)
    summary, draws = optimal_share_tables(np.stack([_clean(x) for x in optima.x]), sources)
    warnings = extrapolation_warnings(
        sources, np.asarray(posterior.idata.constant_data["run_shares"].values, np.float64),
        posterior.law.pilot_tokens, options.target_tokens, optimised, options.budget_factor
    ) + floor_warnings(posterior.law, weights, options.target_tokens, optimised)
    provenance = {
        "posterior": str(cfg.posterior), "posterior_sha256": file_sha256(cfg.posterior),
        "posterior_climb_bayes_version": str(posterior.idata.posterior.attrs.get(
            "climb_bayes_version")),
        "climb_bayes_version": __version__, "form": posterior.law.form,
        "fit_health": posterior.health.verdict,
        "fit_health_reasons": list(posterior.health.reasons),
        "target_tokens": options.target_tokens, "reference_tokens": posterior.law.reference,
        "draws": int(losses.shape[0]),
        "weights": dict(zip(targets, weights.tolist(), strict=True)),
        "lower": dict(zip(sources, problem.lower.tolist(), strict=True)),
        "upper": dict(zip(sources, problem.upper.tolist(), strict=True)),
        "settings": OmegaConf.to_container(cfg, resolve=True),
        "solver": "primal-dual interior point, exact JAX gradient and Hessian, float64",
    }
    files = {}
    for index, name in enumerate(names):
        extra = {"comparison": versus, "solver": info.get(name, {"objective": "heuristic"}),
                 "per_draw_optima_converged": float(np.mean(optima.converged)),
                 "extrapolation_warnings": warnings, "provenance": provenance}
        if options.available is not None:
            extra["epochs"] = dict(zip(sources, (shares[index] * options.target_tokens
                                                 / np.maximum(options.available, 1e-300)
                                                 ).tolist(), strict=True))
        files[f"{name}.yaml"] = mix_file(shares[index], losses[:, index], table.iloc[index],
                                         sources, targets, extra).text(name)
    files["comparison.csv"] = table.to_csv(index=False)
    files["optimal_shares.csv"] = summary.to_csv(index=False)
    files["optimal_share_draws.csv"] = draws.to_csv(index=False)
    files["near_optimal_shares.csv"] = near.to_csv(index=False)
    for message in warnings:
        log.warning(message)
    gap = info["climb_two_step"]
    print(table.to_string(index=False, float_format="%.4f"))
    print(f"climb_two_step vs plugin (point estimate): objective gap {gap['gap_to_plugin']:.3g} "
          f"nats, L1 distance of the shares {gap['l1_distance_to_plugin']:.3g}")
    print(f"per-draw optimal shares (90% interval over {len(optima.x)} draws):")
    print(summary.to_string(index=False, float_format="%.4f"))
    print(f"near-optimal mixes (P(regret < {delta:.3g}) >= {NEAR_OPTIMAL_LEVEL:g}; delta from "
          f"{versus['delta_from']}): {int(near['near_optimal_mixes'].iloc[0])} of "
          f"{int(near['candidates'].iloc[0])} candidates; the shares they span:")
    print(near[["language", "min", "max"]].to_string(index=False, float_format="%.4f"))
    print(f"recommended: {versus['recommended']}. {versus['recommendation']}")
    if (message := notice(posterior.health, str(cfg.posterior))) is not None:
        print(message)
    unconverged = int(np.sum(~optima.converged))
    if unconverged:
        log.warning("%d of %d per-draw optima did not reach the KKT tolerance", unconverged,
                    len(optima.x))
    return files


@hydra.main(config_path="../conf", config_name="solve", version_base="1.3")
@exits_on_input_error
def main(cfg: DictConfig) -> None:
    """Solve for the mixes and write them (all checks before the first file is written)."""
    options = solve_options(cfg)
    output = output_directory(cfg.output, "output", "conf/mix",
                              "<mix>.yaml files and the solver's CSV tables")
    files = decide(cfg, options)
    for name, text in files.items():
        write_text(output / name, text)
    print(f"wrote {len(files)} files to {output}: {json.dumps(sorted(files))}")


if __name__ == "__main__":
    check_command_line("solve")
    main()
