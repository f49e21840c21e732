"""Validation of a pilot table (format: :mod:`climb_bayes.data.pilot_table`).

Every problem raises :class:`~climb_bayes.errors.InputError` before any fitting starts, with
one paragraph per problem that names the file, the offending rows (data rows counted from 1
below the header, so row ``n`` is line ``n + 1`` of a CSV file), runs or columns, and the fix.
"""

import difflib
from typing import Any

import numpy as np
import pandas as pd

from climb_bayes.data.pilot_table import (
    MEMORY,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    SAME_MIX_TOLERANCE,
    SHARE_PREFIX,
    SHARE_SUM_TOLERANCE,
    PilotTable,
)
from climb_bayes.errors import SHOWN, InputError, listing, rows

_KEY = ["run_id", "tokens", "language"]
_DESIGN_HINT = "`python -m climb_bayes.design` writes such a pilot plan"


def _show(value: Any) -> str:
    """A cell as the user wrote it: ``empty``, a number as written, other text quoted."""
    if is_blank(value):
        return "empty"
    text = str(value).strip()
    try:
        float(text)
    except ValueError:
        return repr(text)
    return text


def is_blank(value: Any) -> bool:
    """Whether a cell is missing: NaN, None, or text that is only spaces."""
    if isinstance(value, str):
        return not value.strip()
    return bool(pd.isna(value))


def text_column(column: pd.Series) -> pd.Series:
    """Text without surrounding spaces; a missing cell becomes ``""``."""
    return column.map(lambda value: "" if is_blank(value) else str(value).strip()).astype(str)


def _raise(problems: list[str]) -> None:
    """Raise one :class:`InputError` with a paragraph per problem, if there are any."""
    if problems:
        raise InputError("\n\n".join(problems))


def _suggestion(name: str, share_columns: list[str]) -> str:
    """`` (did you mean 'x'?)`` for an unknown column, from the allowed names."""
    candidates = [*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS, *share_columns]
    if "_" in name:
        candidates.append(SHARE_PREFIX + name.split("_", 1)[1])
    match = difflib.get_close_matches(name.lower(), candidates, n=1, cutoff=0.6)
    if match:
        return f" (did you mean '{match[0]}'?)"
    return f" (if it holds the share of a training language, name it '{SHARE_PREFIX}{name}')"


def _check_columns(frame: pd.DataFrame, path: str) -> list[str]:
    """Check the column names; return the share columns."""
    columns = [str(column) for column in frame.columns]
    shares = [name for name in columns
              if name.startswith(SHARE_PREFIX) and len(name) > len(SHARE_PREFIX)]
    allowed = {*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS, *shares}
    problems = []
    repeated = sorted({name for name in columns if columns.count(name) > 1})
    if repeated:
        problems.append(f"column(s) {listing(repeated)} appear more than once")
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        problems.append(f"required column(s) {listing(missing)} missing")
    unknown = [name for name in columns if name not in allowed]
    if unknown:
        named = [f"'{name}'{_suggestion(name, shares)}" for name in unknown]
        problems.append(f"unknown column(s) {'; '.join(named)}")
    if not shares:
        problems.append(f"no '{SHARE_PREFIX}<language>' column, so the mix of the runs is "
                        f"unknown")
    if problems:
        raise InputError(
            f"{path}: {'; '.join(problems)}. The allowed columns are "
            f"{', '.join(REQUIRED_COLUMNS)}, one '{SHARE_PREFIX}<language>' per training "
            f"language, and optionally {', '.join(OPTIONAL_COLUMNS)}; found "
            f"{', '.join(columns)}. Rename or remove the columns."
        )
    return shares


def _normalised(frame: pd.DataFrame, shares: list[str]) -> pd.DataFrame:
    """The frame with text ``run_id``/``language`` and float ``tokens``/``loss``/shares."""
    clean = frame.reset_index(drop=True).copy()
    for name in ("run_id", "language"):
        clean[name] = text_column(clean[name])
    for name in ("tokens", "loss", *shares):
        clean[name] = pd.to_numeric(clean[name], errors="coerce").astype(np.float64)
    return clean


def _missing_text(clean: pd.DataFrame, path: str) -> list[str]:
    """Rows without a run id or a language."""
    problems = []
    for name, fix in (("run_id", "give every row the id of its training run"),
                      ("language", "give every row the language its loss was measured on")):
        empty = np.flatnonzero(clean[name].to_numpy() == "")
        if empty.size:
            problems.append(f"{path}: column '{name}' is empty in {rows(empty)}; {fix}, or "
                            f"delete these rows.")
    return problems


def _unmeasured_targets(clean: pd.DataFrame, path: str) -> tuple[list[str], list[str]]:
    """Evaluated languages none of whose losses is given; returns (problems, those languages)."""
    measured = clean[clean["language"] != ""].groupby("language", sort=False)["loss"]
    empty = [name for name, losses in measured if losses.isna().all()]
    problems = []
    for name in empty:
        positions = np.flatnonzero(clean["language"].to_numpy() == name)
        problems.append(f"{path}: language '{name}' has no loss in any of its rows "
                        f"({rows(positions)}); fill in its losses or delete its rows.")
    return problems, empty


def _bad_positive(raw: pd.DataFrame, clean: pd.DataFrame, name: str, skip: np.ndarray,
                  path: str, meaning: str) -> list[str]:
    """Cells of ``name`` that are not finite numbers > 0 (rows in ``skip`` are not checked)."""
    values = clean[name].to_numpy()
    bad = ~(np.isfinite(values) & (values > 0)) & ~skip
    if not bad.any():
        return []
    positions = np.flatnonzero(bad)
    shown = ", ".join(_show(raw[name].iloc[p]) for p in positions[:SHOWN])
    return [f"{path}: column '{name}' ({meaning}) must hold finite numbers > 0, but "
            f"{rows(positions)} hold {shown}. Correct these values or delete the rows."]


def _bad_shares(raw: pd.DataFrame, clean: pd.DataFrame, shares: list[str],
                path: str) -> list[str]:
    """Shares that are missing, not numbers, or outside [0, 1]."""
    parts = []
    for name in shares:
        values = clean[name].to_numpy()
        positions = np.flatnonzero(~((values >= 0) & (values <= 1)))
        if positions.size:
            shown = ", ".join(_show(raw[name].iloc[p]) for p in positions[:SHOWN])
            parts.append(f"'{name}' in {rows(positions)}: {shown}")
    if not parts:
        return []
    return [f"{path}: every share must be a number in [0, 1], but these are not: "
            f"{'; '.join(parts)}. Write each run's mix as fractions of its training tokens."]


def _bad_sums(clean: pd.DataFrame, shares: list[str], path: str) -> list[str]:
    """Runs whose shares do not sum to 1 (only rows whose shares are all valid are checked)."""
    values = clean[shares].to_numpy()
    valid = ((values >= 0) & (values <= 1)).all(axis=1)
    sums = values.sum(axis=1)
    off = valid & (np.abs(sums - 1.0) > SHARE_SUM_TOLERANCE)
    if not off.any():
        return []
    offending = clean.loc[off, "run_id"]
    described = []
    for run in pd.unique(offending):
        positions = np.flatnonzero(off & (clean["run_id"].to_numpy() == run))
        described.append(f"'{run}' (sum {sums[positions[0]]:.6g}, {rows(positions)})")
    return [f"{path}: the shares of a run must sum to 1 (within {SHARE_SUM_TOLERANCE:g}), but "
            f"they do not for run(s) {listing(described)}. Correct the mix of these runs; if "
            f"the shares were rounded when written (RegMix's published mixtures keep 3 "
            f"decimals), divide each by its row's sum, which `python -m climb_bayes.convert "
            f"... normalise=true` does for a wide table."]


def _cell_problems(raw: pd.DataFrame, clean: pd.DataFrame, shares: list[str],
                   path: str) -> list[str]:
    """Problems with single cells: missing text, bad numbers, bad mixes."""
    target_problems, unmeasured = _unmeasured_targets(clean, path)
    skip_loss = clean["language"].isin(unmeasured).to_numpy()
    nothing = np.zeros(len(clean), dtype=bool)
    return [
        *_missing_text(clean, path),
        *target_problems,
        *_bad_positive(raw, clean, "loss", skip_loss, path, "validation loss in nats"),
        *_bad_positive(raw, clean, "tokens", nothing, path, "training tokens at the checkpoint"),
        *_bad_shares(raw, clean, shares, path),
        *_bad_sums(clean, shares, path),
    ]


def _duplicates(clean: pd.DataFrame, path: str) -> list[str]:
    """Repeated rows, and repeated (run_id, tokens, language) keys with different losses."""
    problems = []
    repeated = clean[clean.duplicated(keep=False)]
    if len(repeated):
        groups = [rows(list(group.index)) for _, group in
                  repeated.groupby(list(clean.columns), sort=False, dropna=False)]
        problems.append(f"{path}: identical rows: {listing(groups, '; ')}. Delete the repeated "
                        f"rows.")
    distinct = clean.drop_duplicates()
    clashes = distinct[distinct.duplicated(_KEY, keep=False)]
    if len(clashes):
        described = [
            f"run '{run}' at {tokens:g} tokens on '{language}' ({rows(list(group.index))}: "
            f"losses {', '.join(f'{loss:g}' for loss in group['loss'])})"
            for (run, tokens, language), group in clashes.groupby(_KEY, sort=False)
        ]
        problems.append(
            f"{path}: more than one loss for the same run, budget and language: "
            f"{listing(described)}. Keep one row per (run_id, tokens, language); if these are "
            f"runs with different seeds, give them different run_id values."
        )
    return problems


def _mixed_mixes(clean: pd.DataFrame, shares: list[str], path: str) -> list[str]:
    """Runs whose mix is not the same on all their rows."""
    grouped = clean.groupby("run_id", sort=False)[shares]
    spread = grouped.max() - grouped.min()
    described = []
    for run, row in spread.iterrows():
        differing = [name for name in shares if row[name] > SAME_MIX_TOLERANCE]
        if differing:
            positions = np.flatnonzero(clean["run_id"].to_numpy() == run)
            described.append(f"'{run}' ({listing(differing)} differ; {rows(positions)})")
    if not described:
        return []
    return [f"{path}: a run has one mix, but these runs have different shares on different "
            f"rows: {listing(described)}. Correct the shares, or give runs with different "
            f"mixes different run_id values."]


def _too_few_runs(clean: pd.DataFrame, sources: list[str], path: str) -> list[str]:
    """Fewer runs than training languages: the transfer terms cannot be estimated."""
    runs, languages = clean["run_id"].nunique(), len(sources)
    if runs >= languages:
        return []
    return [f"{path}: {runs} run(s) for {languages} training languages ({listing(sources)}): "
            f"the transfer between languages cannot be estimated from fewer runs with "
            f"different mixes than training languages. Train at least {languages} pilot runs "
            f"with different mixes; the paper's design is 3 mixes per language at 2 budgets, "
            f"{6 * languages} runs here, and {_DESIGN_HINT}."]


def validate_pilots(frame: pd.DataFrame, path: str = MEMORY) -> PilotTable:
    """Check a pilot-table frame (format in :mod:`climb_bayes.data.pilot_table`); return it as
    a table.

    Raises :class:`InputError` with one paragraph per problem found. Problems with single cells
    are reported together first; duplicates, inconsistent mixes and too few runs after.
    """
    shares = _check_columns(frame, path)
    if frame.empty:
        raise InputError(f"{path}: the pilot table has no data rows. Add one row per run, "
                         f"checkpoint and evaluated language.")
    raw = frame.reset_index(drop=True)
    clean = _normalised(raw, shares)
    _raise(_cell_problems(raw, clean, shares, path))
    sources = [name[len(SHARE_PREFIX):] for name in shares]
    _raise([*_duplicates(clean, path), *_mixed_mixes(clean, shares, path),
            *_too_few_runs(clean, sources, path)])
    targets = [str(name) for name in pd.unique(clean["language"])]
    return PilotTable(frame=clean, sources=sources, targets=targets, path=str(path))
