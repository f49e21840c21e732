"""Pilot designs: which mixes and budgets to run before fitting.

The paper's design (CLIMB, Section 3) is ``3 x m x 2`` mixed runs: for each of the ``m``
training languages, three mixes that give it a low, medium and high share, each at two
budgets; plus monolingual runs at both budgets for the scaling laws. The rest of a mixed run's
share is spread over the other languages by a Dirichlet draw, so that every language's share
varies across runs and the transfer coefficients are identifiable, with a floor so that no
language gets a vanishing share (a run with 0.01% of a language measures nothing about it but
the law's behaviour at an effective share near zero, where its loss is steep and fitting it
is needlessly hard).

Budgets: the law's curvature in budget (how each language's loss splits into the irreducible
``E`` and the reducible part, and the exponent ``beta``) shows only across a wide range of
budgets. Over a narrow one the pilots see a nearly straight line in log-log, and the forecast
at the target extrapolates it with intervals that are only as honest as the law. So the default
plans three budgets spanning more than two e-folds (a factor ``e^2 = 7.4``), and
:func:`budget_span_note` says when a design spans less.

``python -m climb_bayes.design languages=[en,de,fr,es] budgets=[1e8,3e8,1e9] output=design.csv``
writes one. A design is a table with one row per run: ``run_id``, ``tokens`` (the run's
budget) and one ``share_<lang>`` column per training language. The trainers run it; the
simulator fills it in.

:func:`design_warnings` reads the other way, from a pilot table to what its design cannot pin
down.
"""

from collections.abc import Sequence

import numpy as np
import pandas as pd

from climb_bayes.cli import count, flag, names, number, numbers, positive
from climb_bayes.data.pilot_table import SHARE_PREFIX, PilotTable

#: The least span of the pilot budgets, ``ln(max / min)``, and the least number of budgets,
#: below which :func:`budget_span_note` warns.
MIN_SPAN_EFOLDS = 2.0
MIN_BUDGETS = 3


def budget_span_note(budgets: Sequence[float]) -> tuple[str, bool]:
    """A line on the span ``ln(max / min)`` of the pilot budgets, and whether it is a warning
    (fewer than ``MIN_BUDGETS`` budgets, or a span under ``MIN_SPAN_EFOLDS`` e-folds)."""
    values = sorted(float(b) for b in budgets)
    span = float(np.log(values[-1] / values[0]))
    line = (f"the pilot budgets {[f'{b:.3g}' for b in values]} span {span:.2f} e-folds "
            f"(a factor {values[-1] / values[0]:.3g})")
    if len(values) >= MIN_BUDGETS and span >= MIN_SPAN_EFOLDS:
        return line + ".", False
    return (line + f": fewer than {MIN_BUDGETS} budgets over {MIN_SPAN_EFOLDS:g} e-folds, so "
            "the pilots barely see the loss bend with budget. How each language's loss splits "
            "between E and the reducible part, and beta, are then left largely to the priors, "
            "and the forecast at the target extrapolates a nearly straight line. Plan at least "
            f"{MIN_BUDGETS} budgets spanning {MIN_SPAN_EFOLDS:g} e-folds (a factor 7.4), e.g. "
            f"budgets=[{values[0]:.3g},{values[0] * 3:.3g},{values[0] * 10:.3g}].", True)


def climb_design(languages: Sequence[str], budgets: Sequence[float],
                 focal_shares: Sequence[float] = (0.15, 0.4, 0.7), monolingual: bool = True,
                 concentration: float = 1.0, floor: float = 0.3, seed: int = 0
                 ) -> pd.DataFrame:
    """The ``len(focal_shares) x m x len(budgets)`` design plus monolingual runs.

    For every language ``i``, focal share ``s`` and budget ``D``: a run with ``r_i = s`` and
    the remaining ``1 - s`` split over the other ``m - 1`` languages as
    ``(1 - s) * (floor / (m - 1) + (1 - floor) * Dirichlet(concentration))``, so each gets at
    least ``floor`` times an even split.
    The same mixes are used at every budget, so the budget effect is not confounded with the
    mix. With ``monolingual``, one run per language and budget with ``r = e_i``. Bad
    arguments (named as the keys of :class:`climb_bayes.data.design_config.DesignConfig`)
    raise an InputError.
    """
    languages = names(languages, "languages", "training language", "languages=[en,de,fr,es]",
                      minimum=2)
    budgets = numbers(budgets, "budgets", "pilot budget in tokens", "budgets=[1e7,3e7]",
                      above=0.0)
    focal_shares = numbers(focal_shares, "focal_shares", "share of a mix's focal language",
                           "focal_shares=[0.15,0.4,0.7]", above=0.0, below=1.0)
    concentration = positive(concentration, "concentration", "Dirichlet concentration",
                             "concentration=1.0")
    floor = number(floor, "floor", "floor (fraction of an even split)", "floor=0.3",
                   at_least=0.0, at_most=1.0)
    seed = count(seed, "seed", "seed", "seed=0", minimum=0)
    monolingual = flag(monolingual, "monolingual")
    rng = np.random.default_rng(seed)
    m = len(languages)
    mixes, run_names = [], []
    for i, language in enumerate(languages):
        for share in focal_shares:
            spread = floor / (m - 1) + (1.0 - floor) * rng.dirichlet(np.full(m - 1, concentration))
            rest = spread * (1.0 - share)
            mixes.append(np.insert(rest, i, share))
            run_names.append(f"{language}{round(100 * share):02d}")
    if monolingual:
        mixes.extend(np.eye(m))
        run_names.extend(f"{language}-only" for language in languages)
    rows = [
        {"run_id": f"{name}-{budget:.3g}", "tokens": float(budget),
         **{f"{SHARE_PREFIX}{lang}": float(r) for lang, r in zip(languages, mix, strict=True)}}
        for budget in budgets for name, mix in zip(run_names, mixes, strict=True)
    ]
    return pd.DataFrame(rows)


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
