"""The simulation study's tables as the docs print them (Markdown), from the summary CSVs that
``python -m benchmarks.simulation_study --summarise`` writes; ``--markdown`` prints them, and
``tests/test_docs.py`` checks that ``docs/results.md`` and the README hold them as they are."""

from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from benchmarks.simulation.settings import SETTINGS

#: How the docs name each kind of truth, in the order their rows appear.
TRUTHS = {"law_prior_bent": "bent by the model's own prior", "law": "the law",
          "law_symmetric": "the law, uniform optimal", "law_bent": "bends beyond the pilots",
          "dml": "Data Mixing Laws"}
#: The mixes of the regret table, in its column order.
REGRET_MIXES = ("posterior_mean", "plugin", "robust", "climb_two_step", "point_fit", "isolated",
                "uniform", "unimax", "temperature", "natural", "recommended")
#: The efficiency table's columns, in order.
EFFICIENCY_COLUMNS = ("rmse_bayes_inside", "rmse_point_inside", "rmse_bayes_target",
                      "rmse_point_target", "pred_cover90_target", "regret_posterior_mean",
                      "regret_plugin", "regret_point_fit", "regret_uniform")


def ordered(table: pd.DataFrame) -> pd.DataFrame:
    """Rows by kind of truth (:data:`TRUTHS`), then in the grid's order."""
    truths, names = list(TRUTHS), list(SETTINGS)
    rank = [(truths.index(SETTINGS[s].truth), names.index(s)) for s in table["setting"]]
    return table.iloc[sorted(range(len(table)), key=rank.__getitem__)]


def grid(header: Sequence[str], align: Sequence[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    return "\n".join([*lines, *("| " + " | ".join(row) + " |" for row in rows)])


def calibration_markdown(calibration: pd.DataFrame) -> str:
    """Coverage inside the pilots' budgets and at the target, and the RMSE at the target."""
    rows = [[f"`{r.setting}`", TRUTHS[SETTINGS[r.setting].truth], f"{r.worlds:d}",
             f"{r.pred_cover90_inside:.2f}",
             f"{r.pred_cover50_target:.2f} / {r.pred_cover90_target:.2f}",
             f"{r.rmse_bayes_target:.3f} / {r.rmse_point_target:.3f}"]
            for r in ordered(calibration).itertuples()]
    return grid(["setting", "truth", "worlds", "90% inside", "50% / 90% at target",
                 "RMSE at target, posterior mean / point fit"],
                ["---", "---", "---:", "---:", "---", "---"], rows)


def regret_markdown(summary: pd.DataFrame) -> str:
    """Mean true regret per setting and mix."""
    wide = summary.pivot_table(index="setting", columns="mix", values="regret_mean",
                               observed=True).reset_index()
    rows = [[f"`{r['setting']}`", *(f"{r[m]:.2g}" for m in REGRET_MIXES)]
            for _, r in ordered(wide).iterrows()]
    return grid(["setting", *(f"`{m}`" for m in REGRET_MIXES)],
                ["---", *("---:" for _ in REGRET_MIXES)], rows)


def doubt_markdown(doubt: pd.DataFrame) -> str:
    """Mean true regret of the rule under doubt at several thresholds."""
    columns = ("level_0", "level_0.5", "recommended", "level_0.9", "reference", "robust")
    rows = [[f"`{r['setting']}`", *(f"{r[c]:.2g}" for c in columns)]
            for _, r in ordered(doubt).iterrows()]
    return grid(["setting", "`posterior_mean`", "rule at 0.5", "0.8 (default, `recommended`)",
                 "0.9", "reference", "`robust`"], ["---", *("---:" for _ in columns)], rows)


def reliability_markdown(reliability: pd.DataFrame) -> str:
    """Stated against observed ``P(gain > delta)``, a row per bin."""
    rows = [[r.p_gain, f"{r.mixes:d}", f"{r.stated:.2f}", f"{r.observed:.2f}"]
            for r in reliability.itertuples()]
    return grid(["stated `P(gain > delta)`", "mixes", "mean stated", "observed"],
                ["---", "---:", "---:", "---:"], rows)


def reliability_readme_markdown(reliability: pd.DataFrame) -> str:
    """The reliability table turned on its side, as the README shows it."""
    names = {"[0, 0.5)": "below 0.5", "[0.5, 0.8)": "0.5-0.8", "[0.8, 0.9)": "0.8-0.9",
             "[0.9, 1]": "0.9 and above"}
    rows = [["mixes", *(f"{n:d}" for n in reliability["mixes"])],
            ["mean stated / observed", *(f"{s:.2f} / {o:.2f}" for s, o in
                                         zip(reliability["stated"], reliability["observed"],
                                             strict=True))]]
    return grid(["stated `P(gain > delta)`", *(names[b] for b in reliability["p_gain"])],
                ["---", *("---:" for _ in reliability["p_gain"])], rows)


def efficiency_markdown(efficiency: pd.DataFrame) -> str:
    """Held-out error and regret per setting and pilot fraction."""
    rows = [[f"`{r['setting']}`", f"{r['fraction']:g}", f"{r['worlds']:.0f}", f"{r['runs']:.0f}",
             *(f"{r[c]:.3g}" for c in EFFICIENCY_COLUMNS)] for _, r in efficiency.iterrows()]
    return grid(["setting", "fraction", "worlds", "runs", *EFFICIENCY_COLUMNS],
                ["---"] * (4 + len(EFFICIENCY_COLUMNS)), rows)


#: Each table: the summary CSV it is made from, and how.
TABLES: dict[str, tuple[str, Callable[[pd.DataFrame], str]]] = {
    "calibration": ("calibration", calibration_markdown),
    "regret": ("summary", regret_markdown),
    "doubt": ("doubt", doubt_markdown),
    "reliability": ("reliability", reliability_markdown),
    "reliability (README)": ("reliability", reliability_readme_markdown),
    "efficiency": ("efficiency", efficiency_markdown),
}


def markdown_tables(output: Path, prefix: str = "simulation") -> dict[str, str]:
    """Every table of :data:`TABLES` whose summary CSV is in ``output``."""
    tables = {}
    for name, (csv, render) in TABLES.items():
        path = output / f"{prefix}_{csv}.csv"
        if path.is_file():
            tables[name] = render(pd.read_csv(path))
    return tables
