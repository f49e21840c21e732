"""What the mix files of a mix directory say, for the report: the budget and the language
weights the mixes were solved for, and the solver's comparison, recommendation and warnings. The
directory itself is read by :func:`climb_bayes.decide.mix_directory.read_mix_directory`."""

from typing import Any

from climb_bayes.cli import budget
from climb_bayes.decide.mix_directory import MixDirectory
from climb_bayes.errors import InputError


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
