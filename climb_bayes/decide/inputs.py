"""The decision's inputs, each checked: the target budget, the language weights, the available
tokens, the share bounds and the feasible bounds they make (availability cap folded in), and
the other settings (:class:`Options`). Their types and defaults are those of
:class:`climb_bayes.decide.solve_config.SolveConfig`; here are the checks types cannot make
(ranges, choices, languages). Bad input raises an InputError that names it and says how to fix
it.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from climb_bayes.cli import (
    BUDGET,
    budget,
    choice,
    count,
    number,
    positive,
    required,
    schema_keys,
)
from climb_bayes.data.table_files import read_csv
from climb_bayes.decide.objectives import DEFAULT_SETTINGS, Settings
from climb_bayes.decide.solve_config import (
    DecisionConfig,
    GuardConfig,
    RobustConfig,
    SolveConfig,
)
from climb_bayes.errors import InputError, listing, plain


def _names(mapping: Any, key: str) -> dict[str, Any]:
    if mapping is None:
        return {}
    if OmegaConf.is_config(mapping):
        mapping = OmegaConf.to_container(mapping, resolve=True)
    if not isinstance(mapping, dict):
        raise InputError(f"{key} must be a mapping {{language: value}}; got {mapping!r}.")
    return {str(name): value for name, value in mapping.items()}


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


@dataclass(frozen=True)
class Options:
    """The decision's settings besides the posterior and the bounds, checked; each default is
    that of its key in :class:`~climb_bayes.decide.solve_config.SolveConfig` (where its meaning
    is explained)."""

    target_tokens: float
    available: np.ndarray | None  # tokens per training language; None: no availability cap
    max_epochs: float = SolveConfig.max_epochs
    temperature: float = SolveConfig.temperature
    robust_kind: str = RobustConfig.kind
    robust_k: float = RobustConfig.k
    robust_level: float = RobustConfig.level
    settings: Settings = DEFAULT_SETTINGS  # solver.tol and solver.max_iter
    budget_factor: float = GuardConfig.budget_factor
    delta: float | None = DecisionConfig.delta  # margin of P(gain > delta); None: run noise
    doubt_threshold: float = DecisionConfig.threshold


def solve_options(cfg: DictConfig) -> Options:
    """The settings of ``cfg`` (typed by :class:`~climb_bayes.decide.solve_config.SolveConfig`)
    that do not depend on the posterior, each checked (an InputError naming its key);
    ``available`` is read later, against the posterior's languages."""
    schema_keys(cfg)
    target_tokens = required(cfg, "target_tokens", BUDGET, "target_tokens=2e9")
    return Options(
        target_tokens=budget(target_tokens, "target_tokens", "target_tokens=2e9"), available=None,
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
