"""The mix directory ``python -m climb_bayes.solve`` writes: its files, their names and columns.

- ``<mix>.yaml``: one mix file per mix (:class:`climb_bayes.decide.mix_file.MixFile`).
- :data:`COMPARISON` (``comparison.csv``): one row per mix: :data:`COMPARISON_COLUMNS` (the
  weighted loss's posterior mean and 90% interval, the gain over the reference mix and its
  probabilities) and ``share_<lang>`` (the mix's shares).
- :data:`OPTIMAL_SHARES` (``optimal_shares.csv``): one row per training language:
  ``language``, ``mean``, ``q05``, ``q50``, ``q95`` of the optimal share of each posterior draw
  solved on its own.
- :data:`OPTIMAL_SHARE_DRAWS` (``optimal_share_draws.csv``): one row per draw: ``draw``,
  ``share_<lang>`` (that draw's optimal shares).
- :data:`NEAR_OPTIMAL_SHARES` (``near_optimal_shares.csv``): one row per training language:
  ``language``, ``min``, ``max`` of the shares of the near-optimal mixes,
  ``near_optimal_mixes``, ``candidates`` (:func:`climb_bayes.decide.compare.near_optimal_range`).
- ``loss_differences.csv``: each mix's loss minus the reference's
  (:mod:`climb_bayes.decide.loss_differences`, which owns its columns).

This module is the one writer (:func:`mix_directory_files`) and reader
(:func:`read_mix_directory`) of the directory; the solver computes the tables
(:mod:`climb_bayes.decide.tables`) and the report reads them through here.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from climb_bayes.data.pilot_table import SHARE_PREFIX
from climb_bayes.data.table_files import read_csv
from climb_bayes.decide.loss_differences import LOSS_DIFFERENCES, read_loss_differences
from climb_bayes.decide.mix_file import MixFile, NotAMixFile, check_shares
from climb_bayes.errors import InputError, listing

#: The file names of the solver's tables in a mix directory.
COMPARISON = "comparison.csv"
OPTIMAL_SHARES = "optimal_shares.csv"
OPTIMAL_SHARE_DRAWS = "optimal_share_draws.csv"
NEAR_OPTIMAL_SHARES = "near_optimal_shares.csv"
#: The columns of :data:`COMPARISON` before the mix's ``share_<lang>``.
COMPARISON_COLUMNS = ("mix", "weighted_loss_mean", "weighted_loss_q05", "weighted_loss_q95",
                      "gain_mean", "gain_q05", "gain_q95", "p_gain", "p_near_optimal",
                      "p_beats_posterior_mean")


@dataclass(frozen=True)
class SolverTables:
    """The solver's tables, as it computed them (:mod:`climb_bayes.decide.tables`)."""

    comparison: pd.DataFrame  # COMPARISON_COLUMNS and share_<lang>, one row per mix
    optimal_shares: pd.DataFrame  # language, mean, q05, q50, q95 of the per-draw optimal share
    optimal_share_draws: pd.DataFrame  # draw, share_<lang>: each draw's optimal shares
    near_optimal_shares: pd.DataFrame  # language, min, max, near_optimal_mixes, candidates
    loss_differences: pd.DataFrame  # climb_bayes.decide.loss_differences.COLUMNS


def mix_directory_files(mixes: dict[str, MixFile], tables: SolverTables) -> dict[str, str]:
    """Everything of a mix directory as ``{file name: text}``, nothing written yet: the mix
    file ``<name>.yaml`` of each of ``mixes`` (by name), then the solver's ``tables``."""
    files = {f"{name}.yaml": mix.text(name) for name, mix in mixes.items()}
    for name, table in ((COMPARISON, tables.comparison),
                        (OPTIMAL_SHARES, tables.optimal_shares),
                        (OPTIMAL_SHARE_DRAWS, tables.optimal_share_draws),
                        (NEAR_OPTIMAL_SHARES, tables.near_optimal_shares),
                        (LOSS_DIFFERENCES, tables.loss_differences)):
        files[name] = table.to_csv(index=False)
    return files


@dataclass(frozen=True)
class MixDirectory:
    """What ``python -m climb_bayes.solve`` wrote, checked against the posterior's languages;
    a table the directory lacks (mixes written by hand) is None."""

    path: Path
    shares: pd.DataFrame  # mix x source, rows on the simplex
    files: dict[str, MixFile]  # mix -> its file
    comparison: pd.DataFrame | None = None  # COMPARISON_COLUMNS and share_<lang>, per mix
    optimal_shares: pd.DataFrame | None = None  # language x (mean, q05, q50, q95)
    optimal_share_draws: pd.DataFrame | None = None  # draw x language
    loss_differences: pd.DataFrame | None = None  # climb_bayes.decide.loss_differences
    notes: tuple[str, ...] = ()


def mix_shares(path: Path, mix: MixFile, sources: list[str]) -> np.ndarray:
    """The shares of one mix file over ``sources`` (0 for a source it leaves out), checked."""
    shares = check_shares(mix.shares, str(path), sources, "the posterior's training languages",
                          "Solve again with this posterior or pass the posterior these mixes "
                          "were solved for.")
    return np.array([shares.get(source, 0.0) for source in sources])


def _table(path: Path) -> pd.DataFrame | None:
    """The CSV table at ``path``; None when there is none."""
    return read_csv(path) if path.is_file() else None


def _comparison(path: Path) -> pd.DataFrame | None:
    """:data:`COMPARISON` at ``path``, checked for :data:`COMPARISON_COLUMNS`."""
    frame = _table(path)
    if frame is None:
        return None
    missing = [c for c in COMPARISON_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: missing columns {listing(missing)} of the solver's "
                         f"comparison; solve again to write it.")
    return frame.astype({"mix": str})


def _optimal_share_draws(path: Path, sources: list[str]) -> pd.DataFrame | None:
    """:data:`OPTIMAL_SHARE_DRAWS` at ``path`` as draw x language, its languages among
    ``sources``."""
    frame = _table(path)
    if frame is None:
        return None
    columns = [c for c in frame.columns if c.startswith(SHARE_PREFIX)]
    unknown = [c for c in columns if c.removeprefix(SHARE_PREFIX) not in sources]
    if unknown or not columns:
        raise InputError(f"{path}: columns {unknown or '(no share_<lang> columns)'} do not "
                         f"match the posterior's training languages {sources}.")
    draws = frame[columns].apply(pd.to_numeric, errors="coerce")
    draws.columns = [c.removeprefix(SHARE_PREFIX) for c in columns]
    return draws


def _optimal_shares(path: Path, sources: list[str]) -> pd.DataFrame | None:
    """:data:`OPTIMAL_SHARES` at ``path`` as language x (mean, q05, q50, q95), its languages
    among ``sources``."""
    frame = _table(path)
    if frame is None:
        return None
    key = "language" if "language" in frame.columns else frame.columns[0]
    table = frame.set_index(key)
    table.index = [str(i).removeprefix(SHARE_PREFIX) for i in table.index]
    missing = [c for c in ("q05", "q50", "q95") if c not in table.columns]
    unknown = [i for i in table.index if i not in sources]
    if missing or unknown:
        raise InputError(f"{path}: needs one row per training language of {sources} with "
                         f"columns mean, q05, q50, q95; missing columns {missing}, unknown "
                         f"languages {unknown}.")
    return table.apply(pd.to_numeric, errors="coerce")


def read_mix_directory(path: str | Path, sources: list[str], targets: list[str]
                       ) -> MixDirectory:
    """Read the solver's mix directory for a posterior with training languages ``sources`` and
    evaluated languages ``targets``; InputError naming the file and the fix when it is bad."""
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"mix directory {path} does not exist; write one with "
                         f"`python -m climb_bayes.solve posterior=... output={path}`, or leave "
                         f"`mixes` out to skip the decision section.")
    rows, files, notes = {}, {}, []
    for file in sorted(path.glob("*.yaml")):
        try:
            files[file.stem] = MixFile.read(file)
        except NotAMixFile:
            notes.append(f"{file.name} has no top-level 'shares' and was skipped.")
            continue
        rows[file.stem] = mix_shares(file, files[file.stem], sources)
    if not rows:
        raise InputError(f"mix directory {path} holds no mix: expected <name>.yaml files with "
                         f"a top-level 'shares: {{<lang>: share}}' as written by "
                         f"`python -m climb_bayes.solve`.")
    return MixDirectory(
        path=path, shares=pd.DataFrame(rows, index=sources).T.rename_axis("mix"),
        files=files, comparison=_comparison(path / COMPARISON),
        optimal_shares=_optimal_shares(path / OPTIMAL_SHARES, sources),
        optimal_share_draws=_optimal_share_draws(path / OPTIMAL_SHARE_DRAWS, sources),
        loss_differences=read_loss_differences(path, list(files), targets),
        notes=tuple(notes))
