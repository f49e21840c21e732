"""The pilot table: results of the pilot runs, in the one format the rest of the package reads.

Format
------
One file, CSV (``.csv``, comma-separated) or Parquet (``.parquet`` or ``.pq``), with one row per
(run, checkpoint, evaluated language). Columns:

``run_id``
    Text that identifies one training run.
``tokens``
    Total training tokens the run had seen at that checkpoint: a finite number > 0. Several
    checkpoints of one run are rows with different ``tokens``.
``language``
    The evaluated language (text).
``loss``
    Validation loss on that language, in nats: a finite number > 0.
``share_<lang>``
    One column per *training* language: the run's nominal share of ``<lang>``. Each share is
    in [0, 1], the shares of a row sum to 1 (within 1e-6), and they are the same on every row
    of a run.
``seed``, ``model``
    Optional. They are kept but not used.

Any other column is an error, because it is most likely a misspelling; the message suggests
the closest allowed name. The evaluated languages (values of ``language``) and the trained
languages (``share_`` suffixes) need not be the same: a language with a share column that is
never evaluated is *source-only*, an evaluated language with no share column is
*evaluation-only* (its loss comes from transfer alone). The training languages (``sources``)
are taken in the order of the share columns, the evaluated languages (``targets``) in order of
first appearance. Surrounding spaces are removed from ``run_id`` and ``language``. Example::

    run_id,tokens,language,loss,share_en,share_de,share_sw
    r01,2.0e8,en,3.214,0.6,0.3,0.1
    r01,2.0e8,de,3.650,0.6,0.3,0.1
    r01,2.0e8,fr,4.802,0.6,0.3,0.1
    r01,1.0e9,en,2.951,0.6,0.3,0.1
    ...

:func:`read_pilots` reads and checks a file, :func:`validate_pilots` checks a data frame.
Every problem raises :class:`~climb_bayes.errors.InputError` before any fitting starts, with
one paragraph per problem that names the file, the offending rows (data rows counted from 1
below the header, so row ``n`` is line ``n + 1`` of a CSV file), runs or columns, and the fix.
:func:`design_warnings` lists what a usable table cannot pin down (parameters left to their
priors) and which pilots would. :func:`from_wide` converts the wide layout in which RegMix
publishes its runs (one table of mixtures, one of losses).
"""

import csv
import difflib
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from climb_bayes.errors import SHOWN, InputError, listing, rows
from climb_bayes.io import atomic_path

SHARE_PREFIX = "share_"
REQUIRED_COLUMNS = ("run_id", "tokens", "language", "loss")
OPTIONAL_COLUMNS = ("seed", "model")

#: How far the shares of a row may sum from 1.
SHARE_SUM_TOLERANCE = 1e-6
#: How far the shares of one run may differ between its rows.
SAME_MIX_TOLERANCE = 1e-9
#: The ``path`` of a table that was not read from a file.
MEMORY = "<memory>"

CSV_SUFFIXES = (".csv",)
PARQUET_SUFFIXES = (".parquet", ".pq")
#: Separators of other CSV dialects that a one-column header gives away.
OTHER_SEPARATORS = {"semicolon": ";", "tab": "\t"}

#: Prefixes stripped from the language columns of a wide mixture table (ours and RegMix's).
MIXTURE_PREFIXES = (SHARE_PREFIX, "train_")
#: Prefixes and suffixes stripped from the language columns of a wide loss table (RegMix's).
LOSS_PREFIXES = ("metric/",)
LOSS_SUFFIXES = ("_val_loss",)

_KEY = ["run_id", "tokens", "language"]
_DESIGN_HINT = "`python -m climb_bayes.design` writes such a pilot plan"


class PilotArrays(NamedTuple):
    """The pilot table as index arrays for the statistical model.

    A *point* is one checkpoint: a distinct ``(run_id, tokens)`` pair. An *observation* is one
    row of the table: the loss of one point on one target.
    """

    run_ids: np.ndarray  # (run,) str, in order of first appearance
    run_shares: np.ndarray  # (run, source) float64
    point_run: np.ndarray  # (point,) int: run index of each checkpoint
    point_tokens: np.ndarray  # (point,) float64: tokens of that checkpoint
    obs_point: np.ndarray  # (obs,) int: point index of each row
    obs_target: np.ndarray  # (obs,) int: index into targets of each row
    loss: np.ndarray  # (obs,) float64


@dataclass(frozen=True)
class PilotTable:
    """A validated pilot table.

    ``frame`` holds the rows with normalised types (``run_id`` and ``language`` text, ``tokens``,
    ``loss`` and the shares float), ``sources`` the training languages, ``targets`` the
    evaluated ones, ``path`` where the table came from (``"<memory>"`` for a data frame).
    """

    frame: pd.DataFrame
    sources: list[str]
    targets: list[str]
    path: str

    @property
    def share_columns(self) -> list[str]:
        """The share column of every source, in order."""
        return [SHARE_PREFIX + source for source in self.sources]

    def arrays(self) -> PilotArrays:
        """Index arrays for the model; runs and checkpoints in order of first appearance."""
        frame = self.frame
        run_codes, run_ids = pd.factorize(frame["run_id"])
        point_codes = frame.groupby(["run_id", "tokens"], sort=False).ngroup().to_numpy()
        first_of_run = np.unique(run_codes, return_index=True)[1]
        first_of_point = np.unique(point_codes, return_index=True)[1]
        tokens = frame["tokens"].to_numpy(dtype=np.float64)
        return PilotArrays(
            run_ids=np.asarray(run_ids, dtype=str),
            run_shares=frame[self.share_columns].to_numpy(dtype=np.float64)[first_of_run],
            point_run=run_codes[first_of_point].astype(np.int64),
            point_tokens=tokens[first_of_point],
            obs_point=point_codes.astype(np.int64),
            obs_target=pd.Index(self.targets).get_indexer(frame["language"]).astype(np.int64),
            loss=frame["loss"].to_numpy(dtype=np.float64),
        )

    def final_of_run(self) -> "PilotTable":
        """The table with only each run's last checkpoint (its largest ``tokens``): the losses
        a run of that budget reaches, its learning-rate schedule completed. A mid-run
        checkpoint is taken before the schedule has decayed (``docs/checkpoints.md``)."""
        last = self.frame["tokens"] == self.frame.groupby("run_id")["tokens"].transform("max")
        return replace(self, frame=self.frame[last].reset_index(drop=True))

    def runs(self) -> pd.DataFrame:
        """One row per run: ``run_id``, its largest budget ``max_tokens``, and its shares."""
        grouped = self.frame.groupby("run_id", sort=False)
        runs = grouped[self.share_columns].first()
        runs.insert(0, "max_tokens", grouped["tokens"].max())
        return runs.reset_index()


# ----------------------------------------------------------------------------- messages


def _show(value: Any) -> str:
    """A cell as the user wrote it: ``empty``, a number as written, other text quoted."""
    if _is_blank(value):
        return "empty"
    text = str(value).strip()
    try:
        float(text)
    except ValueError:
        return repr(text)
    return text


def _is_blank(value: Any) -> bool:
    """Whether a cell is missing: NaN, None, or text that is only spaces."""
    if isinstance(value, str):
        return not value.strip()
    return bool(pd.isna(value))


def _raise(problems: list[str]) -> None:
    """Raise one :class:`InputError` with a paragraph per problem, if there are any."""
    if problems:
        raise InputError("\n\n".join(problems))


# ----------------------------------------------------------------------------- reading


def table_kind(path: Path) -> str:
    """``"csv"`` or ``"parquet"`` from the file's suffix; an unknown suffix is an error."""
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    raise InputError(
        f"{path}: unknown table type {suffix or '(no suffix)'!r}; a table must be a CSV file "
        f"(.csv) or a Parquet file (.parquet or .pq). Rename or convert the file."
    )


def _csv_header(path: Path) -> list[str]:
    """The first line of a CSV file, split into column names; an InputError when it is one
    column holding semicolons or tabs, the separators of other CSV dialects."""
    with path.open(newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle), [])
    if len(header) == 1:
        name, separator = max(OTHER_SEPARATORS.items(),
                              key=lambda item: header[0].count(item[1]))
        if separator in header[0]:
            written = separator.encode("unicode_escape").decode()
            raise InputError(
                f"{path}: the header is one column, {header[0]!r}, so the file looks "
                f"{name}-separated; climb_bayes reads comma-separated CSV: convert it, e.g. "
                f"python -c \"import pandas as pd; pd.read_csv('{path}', sep='{written}')"
                f".to_csv('{path}', index=False)\" (add decimal=',' to read_csv if its numbers "
                f"have decimal commas).")
    return header


def _read(file: Path, kind: str, **options: Any) -> pd.DataFrame:
    """Read a ``kind`` ("csv" or "parquet") file with pandas; InputError for a missing or
    unreadable file, a CSV file in another dialect or repeated column names."""
    if not file.is_file():
        raise InputError(f"{file}: no such file. Check the path (relative paths start at "
                         f"{Path.cwd()}).")
    try:
        if kind == "parquet":
            frame = pd.read_parquet(file, **options)
            header = [str(column) for column in frame.columns]
        else:
            header = _csv_header(file)
            frame = pd.read_csv(file, **options)
    except InputError:
        raise
    except (OSError, ValueError) as error:
        raise InputError(f"{file}: cannot be read as a {kind} table ({error}). Check that it is "
                         f"a complete {kind} file with one header row.") from error
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise InputError(f"{file}: column(s) {listing(repeated)} appear more than once in the "
                         f"header. Keep one column of each name.")
    return frame


def read_csv(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a comma-separated file with pandas' types (any suffix): the reader of every CSV
    table besides the pilot table (mixes, designs, available tokens, solver tables), with the
    checks of :func:`read_table`."""
    return _read(Path(path), "csv")


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a CSV or Parquet file as it is; CSV cells are kept as text.

    Numbers are parsed by the validators, so a cell that is not a number is reported with its
    row. A missing file, an unknown suffix, an unreadable file, a semicolon- or tab-separated
    CSV file or repeated column names raise :class:`InputError`.
    """
    file = Path(path)
    kind = table_kind(file)
    return _read(file, kind, **({"dtype": str, "keep_default_na": False} if kind == "csv"
                                else {}))


def read_pilots(path: str | os.PathLike[str]) -> PilotTable:
    """Read a pilot table from CSV or Parquet and validate it (:func:`validate_pilots`)."""
    return validate_pilots(read_table(path), str(path))


def write_pilots(frame: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write a pilot-table frame atomically, as CSV or Parquet by the suffix of ``path``."""
    file = Path(path)
    kind = table_kind(file)
    with atomic_path(file) as tmp:
        if kind == "parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)


# ----------------------------------------------------------------------------- validation


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


def _text(column: pd.Series) -> pd.Series:
    """Text without surrounding spaces; a missing cell becomes ``""``."""
    return column.map(lambda value: "" if _is_blank(value) else str(value).strip()).astype(str)


def _normalised(frame: pd.DataFrame, shares: list[str]) -> pd.DataFrame:
    """The frame with text ``run_id``/``language`` and float ``tokens``/``loss``/shares."""
    clean = frame.reset_index(drop=True).copy()
    for name in ("run_id", "language"):
        clean[name] = _text(clean[name])
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
    """Check a pilot-table frame (format in the module docstring); return it as a table.

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


# ----------------------------------------------------------------------------- design


def design_warnings(table: PilotTable) -> list[str]:
    """Warnings for a usable but weakly identified design; empty when none apply.

    Each names the parameters the pilots leave to their priors and the pilots that would pin
    them down: a single budget overall, a training language whose share never varies, and a
    language evaluated at a single budget.
    """
    frame, path = table.frame, table.path
    budgets = frame["tokens"].unique()
    warnings = []
    if len(budgets) == 1:
        warnings.append(
            f"{path}: every row is at one budget ({budgets[0]:.3g} tokens), so the budget "
            f"dependence of transfer (the `k` terms in alpha = b + k * D_ref / D) and the split "
            f"of each language's loss between `E`, `B` and `beta` are set by the priors, not "
            f"the data. Runs or checkpoints at a second budget pin them down; the paper uses "
            f"two budgets about 3-10x apart."
        )
    runs = table.runs()
    for source, column in zip(table.sources, table.share_columns, strict=True):
        values = runs[column].unique()
        if len(values) < 2:
            warnings.append(
                f"{path}: training language '{source}' has the same share ({values[0]:.3g}) in "
                f"every run, so its transfer coefficients to the other languages (`b` and `k` "
                f"from '{source}') are confounded with those languages' own scaling terms and "
                f"are left to their priors. Pilots that vary its share pin them down; the "
                f"paper gives each language three different shares."
            )
    if len(budgets) > 1:
        per_target = frame.groupby("language", sort=False)["tokens"].unique()
        for target, tokens in per_target.items():
            if len(tokens) == 1:
                warnings.append(
                    f"{path}: language '{target}' is evaluated at one budget only "
                    f"({tokens[0]:.3g} tokens), so its `E`, `B` and `beta` and the `k` terms of "
                    f"transfer into it are set mostly by the priors. Evaluate it at a second "
                    f"budget (another checkpoint or run)."
                )
    return warnings


# ----------------------------------------------------------------------------- wide layout


def _strip(name: str, prefixes: Sequence[str], suffixes: Sequence[str] = ()) -> str:
    """``name`` without the first matching prefix and suffix (kept when nothing would remain)."""
    for prefix in prefixes:
        if name.startswith(prefix) and len(name) > len(prefix):
            name = name[len(prefix):]
            break
    for suffix in suffixes:
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[:-len(suffix)]
            break
    return name


def _wide_ids(frame: pd.DataFrame, column: str | None, count: int, path: str) -> pd.Series:
    """Run ids of a wide table: a column, or 1-based row numbers when ``column`` is None."""
    if column is None:
        if len(frame) != count:
            raise InputError(f"{path}: {len(frame)} rows, but the other table has {count}; "
                             f"matching runs by row order needs the same number of rows. Give "
                             f"both tables a run id column and name it with run_id_column.")
        return pd.Series([str(i + 1) for i in range(len(frame))], index=frame.index)
    if column not in frame.columns:
        hint = (" RegMix's tables name it 'index': pass run_id_column=index."
                if "index" in frame.columns else "")
        raise InputError(f"{path}: no run id column '{column}' (columns: "
                         f"{listing([str(c) for c in frame.columns])}).{hint} Name the column "
                         f"that matches runs between the two tables with run_id_column, or "
                         f"pass run_id_column=null to match them by row order.")
    ids = _text(frame[column])
    blank = np.flatnonzero(ids.to_numpy() == "")
    if blank.size:
        raise InputError(f"{path}: the run id column '{column}' is empty in {rows(blank)}. "
                         f"Give every run an id.")
    repeated = [str(run) for run in pd.unique(ids[ids.duplicated()])]
    if repeated:
        raise InputError(f"{path}: run id(s) {listing(repeated)} appear on more than one row "
                         f"of column '{column}'. Give every run one row with its own id.")
    return ids


def _language_columns(columns: Sequence[Any], excluded: set[str], prefixes: Sequence[str],
                      suffixes: Sequence[str], path: str) -> dict[str, str]:
    """Map each language column to its language name (prefixes and suffixes stripped)."""
    names = {str(c): _strip(str(c), prefixes, suffixes) for c in columns if str(c) not in excluded}
    if not names:
        raise InputError(f"{path}: no language columns besides {listing(sorted(excluded))}. "
                         f"Give one column per language.")
    languages = list(names.values())
    clashing = sorted({name for name in languages if languages.count(name) > 1})
    if clashing:
        raise InputError(f"{path}: several columns name the language(s) {listing(clashing)} "
                         f"once their prefixes are removed. Keep one column per language.")
    return names


def _run_tokens(mixtures: pd.DataFrame, tokens: float | None, path: str) -> pd.Series | float:
    """Budget of each run: the mixture table's ``tokens`` column or the ``tokens`` argument."""
    if "tokens" in mixtures.columns:
        if tokens is not None:
            raise InputError(f"{path}: has a 'tokens' column and a budget tokens={tokens} was "
                             f"given as well. Give one or the other.")
        return mixtures["tokens"]
    if tokens is None:
        raise InputError(f"{path}: no 'tokens' column, so give the training budget of the runs "
                         f"(tokens=...). RegMix's file names give the model size, not the "
                         f"budget: its 1M-parameter proxies each saw about 1e9 tokens.")
    return tokens


def _numeric(frame: pd.DataFrame) -> pd.DataFrame:
    """Every column as float; cells that are not numbers become NaN."""
    return frame.apply(pd.to_numeric, errors="coerce").astype(np.float64)


def from_wide(mixtures: pd.DataFrame, losses: pd.DataFrame, tokens: float | None = None,
              run_id_column: str | None = "run_id", *, normalise: bool = False,
              paths: tuple[str, str] = ("<mixtures>", "<losses>")) -> pd.DataFrame:
    """Convert the wide layout (one table of mixtures, one of losses) to a long pilot frame.

    ``mixtures`` has a run id column, one column per training language holding its weight, and
    optionally a ``tokens`` column (the run's budget; otherwise pass ``tokens``). ``losses`` has
    the run id column and one column per evaluated language holding its loss. Language columns
    may carry the prefixes ``share_`` or ``train_`` (mixtures) and ``metric/`` with the suffix
    ``_val_loss`` (losses), as in RegMix's published ``data/train_mixture_1m.csv`` and
    ``data/train_pile_loss_1m.csv`` (github.com/sail-sg/regmix), where
    ``train_the_pile_arxiv`` and ``metric/the_pile_arxiv_val_loss`` both become
    ``the_pile_arxiv``. RegMix's run id column is called ``index``; pass
    ``run_id_column="index"``, or ``None`` to match the tables by row order (the ids are then
    the 1-based row numbers, and every column but ``tokens`` is a language). RegMix's files do
    not record the budget: its 1M-parameter proxy runs each saw about 1e9 tokens.

    Weights are kept as given unless ``normalise`` is set, which divides each run's weights by
    their sum (RegMix rounds its published weights to 3 decimals, so their sums are off by up
    to a few thousandths). Empty loss cells (a language not evaluated in a run) give no row.
    Runs of ``mixtures`` without losses give no rows; runs of ``losses`` without a mixture are
    an error. ``paths`` names the two tables in error messages. The result is not validated:
    pass it to :func:`validate_pilots`.
    """
    mixtures_path, losses_path = paths
    mixtures, losses = mixtures.reset_index(drop=True), losses.reset_index(drop=True)
    mix_ids = _wide_ids(mixtures, run_id_column, len(losses), mixtures_path)
    loss_ids = _wide_ids(losses, run_id_column, len(mixtures), losses_path)
    excluded = {run_id_column} if run_id_column is not None else set()
    if "tokens" in losses.columns:
        raise InputError(f"{losses_path}: has a 'tokens' column; give the budget in the "
                         f"mixture table or with tokens=... instead.")
    share_names = _language_columns(mixtures.columns, excluded | {"tokens"}, MIXTURE_PREFIXES,
                                    (), mixtures_path)
    loss_names = _language_columns(losses.columns, excluded, LOSS_PREFIXES, LOSS_SUFFIXES,
                                   losses_path)
    unknown = sorted(set(loss_ids) - set(mix_ids))
    if unknown:
        raise InputError(f"{losses_path}: run(s) {listing(unknown)} have losses but no row in "
                         f"{mixtures_path}, so their mix is unknown. Add their mixtures or "
                         f"delete their losses.")
    shares = mixtures[list(share_names)].rename(columns=share_names)
    if normalise:
        shares = _numeric(shares)
        shares = shares.div(shares.sum(axis=1), axis=0)
    runs = pd.DataFrame({"run_id": mix_ids.to_numpy(),
                         "tokens": _run_tokens(mixtures, tokens, mixtures_path)})
    runs = pd.concat([runs, shares.add_prefix(SHARE_PREFIX)], axis=1)
    measured = losses[list(loss_names)].rename(columns=loss_names)
    measured.insert(0, "run_id", loss_ids.to_numpy())
    long = measured.melt(id_vars="run_id", var_name="language", value_name="loss",
                         ignore_index=False)
    long = long[~long["loss"].map(_is_blank)].sort_index(kind="stable").reset_index(drop=True)
    long = long.merge(runs, on="run_id", how="left", validate="many_to_one")
    return long[[*REQUIRED_COLUMNS, *(SHARE_PREFIX + name for name in share_names.values())]]
