"""The decision as the report shows it: the numbers ``python -m climb_bayes.solve`` wrote,
read from its mix directory (:mod:`climb_bayes.decide.mix_directory`) and arranged for the
page; nothing here is computed from the posterior again.

:func:`solved_decision` gathers them: the budget, the reference mix and ``delta`` the solver
compared against, its comparison of the mixes (``comparison.csv``), each mix's predicted loss
per language (the mix files' ``metadata.predicted_loss``) and each mix's loss minus the
reference's, draw by draw (``loss_differences.csv``). A directory that lacks any of them (mixes
written by hand) gives the list of what it lacks instead.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from climb_bayes.decide.loss_differences import LOSS_DIFFERENCES
from climb_bayes.decide.mix_directory import COMPARISON, COMPARISON_COLUMNS, MixDirectory
from climb_bayes.decide.mix_file import PREDICTED_LOSS_KEYS
from climb_bayes.inspect.mix_directory import solved_budget, solver_comparison

#: Mixes marked on the optimal-share figure, where the directory has them.
MARKED = ("posterior_mean", "uniform")


@dataclass(frozen=True)
class SolvedDecision:
    """What the solver decided, as it wrote it."""

    budget: float  # the target budget the mixes were solved for
    reference: str  # the mix every gain is measured against
    delta: float  # the margin of a meaningful gain, in nats
    delta_from: str  # where delta came from
    comparison: pd.DataFrame  # COMPARISON_COLUMNS, one row per mix
    losses: pd.DataFrame  # mix, language, mean, q05, q95: each mix's predicted loss
    differences: pd.DataFrame  # loss_differences.csv: mix, language, mean, q05, q95

    @property
    def p_gain(self) -> pd.Series:
        """``P(gain > delta)`` of every mix but the reference, by mix."""
        return self.comparison.set_index("mix")["p_gain"].drop(self.reference)


def loss_table(mixes: MixDirectory) -> pd.DataFrame:
    """One row per (mix, language) of every mix file with ``metadata.predicted_loss``: the
    solver's posterior mean and 90% interval of the loss."""
    rows = [{"mix": name, "language": language, **values}
            for name, mix in mixes.files.items()
            for language, values in mix.predicted_loss.items()]
    return pd.DataFrame(rows, columns=["mix", "language", *PREDICTED_LOSS_KEYS])


def solved_decision(mixes: MixDirectory) -> SolvedDecision | list[str]:
    """The solver's decision from the mix directory, or what the directory lacks of it."""
    versus = solver_comparison(mixes)
    budget = solved_budget(mixes)
    losses = loss_table(mixes)
    delta = versus.get("delta")
    lacking = [what for what, absent in [
        (COMPARISON, mixes.comparison is None),
        (LOSS_DIFFERENCES, mixes.loss_differences is None),
        ("the mixes' metadata.provenance.target_tokens", budget is None),
        ("the mixes' metadata.comparison (reference and delta)",
         versus.get("reference") not in mixes.files
         or not isinstance(delta, int | float) or not np.isfinite(delta)),
        ("the mixes' metadata.predicted_loss", losses.empty)] if absent]
    if lacking:
        return lacking
    return SolvedDecision(budget=budget, reference=versus["reference"], delta=float(delta),
                          delta_from=str(versus.get("delta_from", "the solver")),
                          comparison=mixes.comparison[list(COMPARISON_COLUMNS)], losses=losses,
                          differences=mixes.loss_differences)


def mix_markers(shares: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Shares of the mixes worth marking on the optimal-share figure."""
    return {n: shares.loc[n].to_dict() for n in MARKED if n in shares.index}
