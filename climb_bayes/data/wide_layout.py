"""The wide layout in which RegMix publishes its runs (one table of mixtures, one of losses),
converted to a long pilot frame (format: :mod:`climb_bayes.data.pilot_table`)."""

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from climb_bayes.data.pilot_table import REQUIRED_COLUMNS, SHARE_PREFIX
from climb_bayes.data.validation import is_blank, text_column
from climb_bayes.errors import InputError, listing, rows

#: Prefixes stripped from the language columns of a wide mixture table (ours and RegMix's).
MIXTURE_PREFIXES = (SHARE_PREFIX, "train_")
#: Prefixes and suffixes stripped from the language columns of a wide loss table (RegMix's).
LOSS_PREFIXES = ("metric/",)
LOSS_SUFFIXES = ("_val_loss",)


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
    ids = text_column(frame[column])
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
    pass it to :func:`climb_bayes.data.validation.validate_pilots`.
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
    long = long[~long["loss"].map(is_blank)].sort_index(kind="stable").reset_index(drop=True)
    long = long.merge(runs, on="run_id", how="left", validate="many_to_one")
    return long[[*REQUIRED_COLUMNS, *(SHARE_PREFIX + name for name in share_names.values())]]
