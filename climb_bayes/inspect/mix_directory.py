"""Reading what ``python -m climb_bayes.solve`` wrote: a directory of mix files
(:class:`climb_bayes.decide.mix_file.MixFile`) and the solver's tables (``comparison.csv``,
``optimal_shares.csv``, ``optimal_share_draws.csv`` and
:mod:`~climb_bayes.decide.loss_differences`), checked against the posterior's languages, and
what the mix files say (the target budget, the language weights, the solver's comparison,
recommendation and warnings)."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from climb_bayes.cli import budget
from climb_bayes.data.pilot_table import SHARE_PREFIX
from climb_bayes.data.table_files import read_csv
from climb_bayes.decide.loss_differences import read_loss_differences
from climb_bayes.decide.mix_file import MixFile, NotAMixFile, check_shares
from climb_bayes.decide.tables import COMPARISON_COLUMNS
from climb_bayes.errors import InputError, listing

#: Solver outputs read from a mix directory, when present.
SOLVER_TABLES = ("comparison.csv", "optimal_shares.csv", "optimal_share_draws.csv")


@dataclass(frozen=True)
class MixDirectory:
    """What ``python -m climb_bayes.solve`` wrote, checked against the posterior's languages."""

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


def _read_csv(path: Path) -> pd.DataFrame | None:
    return read_csv(path) if path.is_file() else None


def _comparison(frame: pd.DataFrame | None, path: Path) -> pd.DataFrame | None:
    if frame is None:
        return None
    missing = [c for c in COMPARISON_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: missing columns {listing(missing)} of the solver's "
                         f"comparison; solve again to write it.")
    return frame.astype({"mix": str})


def _optimal_share_draws(frame: pd.DataFrame | None, path: Path, sources: list[str]
                         ) -> pd.DataFrame | None:
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


def _optimal_shares(frame: pd.DataFrame | None, path: Path, sources: list[str]
                    ) -> pd.DataFrame | None:
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
    tables = {name: _read_csv(path / name) for name in SOLVER_TABLES}
    return MixDirectory(
        path=path, shares=pd.DataFrame(rows, index=sources).T.rename_axis("mix"),
        files=files, comparison=_comparison(tables["comparison.csv"], path / "comparison.csv"),
        optimal_shares=_optimal_shares(tables["optimal_shares.csv"],
                                       path / "optimal_shares.csv", sources),
        optimal_share_draws=_optimal_share_draws(tables["optimal_share_draws.csv"],
                                                 path / "optimal_share_draws.csv", sources),
        loss_differences=read_loss_differences(path, list(files), targets),
        notes=tuple(notes))


def solved_budget(mixes: MixDirectory) -> float | None:
    """The budget the mixes were solved for (their ``target_tokens``); None when their metadata
    does not say, and an InputError when they disagree."""
    values = sorted({mix.target_tokens for mix in mixes.files.values()} - {None})
    if len(values) > 1:
        raise InputError(f"the mixes in {mixes.path} were solved for different budgets "
                         f"{values}; solve them again into one directory.")
    return (budget(values[0], f"{mixes.path}: metadata.provenance.target_tokens",
                   "target_tokens=2e9 when solving") if values else None)


def decision_budget(mixes: MixDirectory, tokens: float | None) -> float:
    """The budget of the transfer heatmap with mixes: ``tokens`` if given, else the mixes'
    ``target_tokens``."""
    if tokens is not None:
        return budget(tokens)
    solved = solved_budget(mixes)
    if solved is None:
        raise InputError(f"no target budget in the metadata of the mixes in {mixes.path}; "
                         f"pass tokens=N (total training tokens of the full run).")
    return solved


def solved_weights(mixes: MixDirectory) -> dict[str, float] | None:
    """The language weights the mixes were solved with (``metadata.provenance.weights``), if
    their metadata says."""
    return next((mix.weights for mix in mixes.files.values() if mix.weights), None)


def solver_warnings(mixes: MixDirectory) -> list[str]:
    """The solver's extrapolation warnings from the mixes' metadata, each once."""
    return list(dict.fromkeys(f"solver: {w}" for mix in mixes.files.values()
                              for w in mix.warnings))


def solver_comparison(mixes: MixDirectory) -> dict[str, Any]:
    """The solver's ``metadata.comparison`` (reference, ``delta``, the recommendation:
    :func:`climb_bayes.decide.decision.decision`) from its mix files; empty from older files."""
    return next((mix.comparison for mix in mixes.files.values() if mix.comparison), {})


def solver_recommendation(mixes: MixDirectory) -> list[str]:
    """The solver's recommendation under doubt (:func:`climb_bayes.decide.compare.recommendation`),
    once; none from older files."""
    comparison = solver_comparison(mixes)
    if isinstance(comparison.get("recommendation"), str):
        return [f"solver recommends {comparison.get('recommended')}: "
                f"{comparison['recommendation']}"]
    return []
