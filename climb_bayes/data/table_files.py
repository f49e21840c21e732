"""Table files: CSV or Parquet by suffix, read with errors that name the file, written
atomically.

:func:`read_pilots` reads the pilot table (format: :mod:`climb_bayes.data.pilot_table`) and
validates it, :func:`write_pilots` writes one; :func:`read_csv` reads every other CSV table.
"""

import csv
import os
from pathlib import Path
from typing import Any

import pandas as pd

from climb_bayes.data.pilot_table import PilotTable
from climb_bayes.data.validation import validate_pilots
from climb_bayes.errors import InputError, listing
from climb_bayes.io import atomic_path

CSV_SUFFIXES = (".csv",)
PARQUET_SUFFIXES = (".parquet", ".pq")
#: Separators of other CSV dialects that a one-column header gives away.
OTHER_SEPARATORS = {"semicolon": ";", "tab": "\t"}


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
    """Read a pilot table from CSV or Parquet and validate it
    (:func:`climb_bayes.data.validation.validate_pilots`)."""
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

