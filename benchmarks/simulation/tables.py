"""The simulation study's summary tables, from its CSVs of scored mixes and worlds."""

import numpy as np
import pandas as pd

from benchmarks.simulation.settings import EXTRAPOLATION_SDS
from climb_bayes.model.law import FLOOR_REGION

MIX_ORDER = ("posterior_mean", "plugin", "climb_two_step", "point_fit", "robust",
             "recommended", "isolated", "uniform", "uniform_capped", "natural", "temperature",
             "unimax")


def summary_table(mixes: pd.DataFrame) -> pd.DataFrame:
    """Per setting and mix: mean, sd, median and max of the true regret (nats); how often the
    mix truly gains more than ``delta`` over the reference and the posterior's mean
    ``P(gain > delta)``; mean optimism; coverage of the true ``W`` by the posterior's 90%
    interval; feasibility; the smallest share, and the smallest posterior-mean effective
    share of a language (below :data:`climb_bayes.model.law.FLOOR_REGION`: on the law's floor)."""
    grouped = mixes.groupby(["setting", "mix"], sort=False)
    table = grouped.agg(worlds=("regret", "size"), regret_mean=("regret", "mean"),
                        regret_sd=("regret", "std"), regret_median=("regret", "median"),
                        regret_max=("regret", "max"),
                        gain_exceeds_delta=("gain_exceeds_delta", "mean"),
                        p_gain=("p_gain", "mean"), optimism=("optimism", "mean"),
                        cover90_W=("cover90", "mean"), feasible=("feasible", "mean"),
                        min_share=("min_share", "min"),
                        min_effective_share=("min_effective_share", "min")).reset_index()
    table["mix"] = pd.Categorical(table["mix"], [m for m in MIX_ORDER if m in set(table["mix"])])
    return table.sort_values(["setting", "mix"]).reset_index(drop=True)


#: Bins of the posterior's ``P(gain > delta)`` in the reliability table.
RELIABILITY_BINS = (0.0, 0.5, 0.8, 0.9, 1.0)


def reliability_table(mixes: pd.DataFrame) -> pd.DataFrame:
    """Is ``P(gain > delta)`` calibrated? Every mix of every world except the reference
    itself, binned by the posterior's ``P(gain > delta)``: how many, their mean stated
    probability, and the fraction whose TRUE gain over the reference exceeds ``delta``."""
    rows = mixes[mixes["mix"] != mixes["reference"]]
    edges = np.asarray(RELIABILITY_BINS)
    index = np.clip(np.digitize(rows["p_gain"], edges[1:-1]), 0, len(edges) - 2)
    label = [f"[{edges[i]:g}, {edges[i + 1]:g}{']' if i == len(edges) - 2 else ')'}"
             for i in index]
    table = rows.groupby(label, sort=True).agg(
        mixes=("p_gain", "size"), stated=("p_gain", "mean"),
        observed=("gain_exceeds_delta", "mean"))
    return table.rename_axis("p_gain").reset_index()


CALIBRATION_COLUMNS = ("pred_cover50_inside", "pred_cover90_inside", "pred_cover50_target",
                       "pred_cover90_target",
                       *(f"pred_cover90_target_sd{sd:g}" for sd in EXTRAPOLATION_SDS),
                       "mean_cover90_target", "rmse_bayes_inside",
                       "rmse_point_inside", "rmse_bayes_target", "rmse_point_target",
                       "uniform_regret", "max_r_hat", "nuts_seconds")


def calibration_table(worlds: pd.DataFrame) -> pd.DataFrame:
    """Per setting: mean of the held-out calibration and error scores and fit diagnostics."""
    columns = [c for c in CALIBRATION_COLUMNS if c in worlds]
    table = worlds.groupby("setting", sort=False)[columns].mean()
    table.insert(0, "worlds", worlds.groupby("setting", sort=False).size())
    return table.reset_index()


DOUBT_LEVELS = (0.0, 0.5, 0.8, 0.9, 0.95, 0.99)


def doubt_table(mixes: pd.DataFrame) -> pd.DataFrame:
    """Mean true regret of the solver's rule under doubt at several thresholds, from the
    scored worlds: ``posterior_mean`` where the posterior's ``P(gain > delta) >= level``,
    else the reference (level 0 is ``posterior_mean`` itself; the solver's default is
    :data:`climb_bayes.decide.compare.DOUBT_THRESHOLD`), beside the reference, ``robust`` and
    ``recommended`` (the rule at the default threshold, as the solver applied it)."""
    wide = mixes.pivot_table(index=["setting", "seed", "fraction"], columns="mix",
                             values=["regret", "p_gain"], aggfunc="first")
    names = mixes.drop_duplicates(["setting", "seed", "fraction"]).set_index(
        ["setting", "seed", "fraction"])["reference"]
    reference = np.array([wide.loc[key, ("regret", names[key])] for key in wide.index])
    p = wide[("p_gain", "posterior_mean")].to_numpy()
    table = pd.DataFrame({f"level_{level:g}": np.where(
        p >= level, wide[("regret", "posterior_mean")], reference) for level in DOUBT_LEVELS},
        index=wide.index)
    table["reference"] = reference
    table["robust"] = wide[("regret", "robust")]
    table["recommended"] = wide[("regret", "recommended")]
    out = table.groupby(level="setting").mean()
    out.insert(0, "worlds", table.groupby(level="setting").size())
    return out.reset_index()


#: The mixes the solver optimises (the others are heuristics or the point fit's).
OPTIMISED = ("posterior_mean", "plugin", "robust")
#: The truths the fitted law cannot represent.
MISSPECIFIED = ("law_bent", "dml")
#: How close ``climb_two_step`` must come to ``plugin`` (objective gap, nats).
TWO_STEP_TOLERANCE = 1e-3


def decision_checks(mixes: pd.DataFrame, worlds: pd.DataFrame) -> pd.DataFrame:
    """The decision's bars, checked on the scored worlds: one row per check with the count
    (``value``), out of how many (``of``), and whether the bar is met.

    - ``floor``: optimised mixes (:data:`OPTIMISED`) that leave a language a posterior-mean
      effective share below ``FLOOR_REGION``, in worlds where the reference does not (bar 0);
    - ``robust_loses``, ``recommended_loses``: worlds where the mix's true regret exceeds the
      reference's by more than ``delta`` (bar 0);
    - ``claims_0.9``: mixes with ``P(gain > delta) >= 0.9`` whose true gain exceeds ``delta``
      (bar: at least 85%);
    - ``two_step_uncapped``, ``two_step_capped``: worlds where ``climb_two_step``'s objective gap
      to ``plugin`` is within :data:`TWO_STEP_TOLERANCE`, without and with scarce languages
      (bar: all);
    - ``misspecified_regret``: the mean regret of ``robust`` and, as ``of``, of
      ``posterior_mean`` over the :data:`MISSPECIFIED` worlds (bar: lower)."""
    key = ["setting", "seed", "fraction"]
    table = mixes.merge(worlds[[*key, "truth", "scarce", "reference_regret"]], on=key)
    reference = table[table["mix"] == table["reference"]].set_index(key)
    optimised = table[table["mix"].isin(OPTIMISED)]
    below = optimised["min_effective_share"] < FLOOR_REGION
    floor_reference = reference["min_effective_share"].reindex(
        optimised.set_index(key).index).to_numpy() < FLOOR_REGION
    claims = table[(table["mix"] != table["reference"]) & (table["p_gain"] >= 0.9)]
    capped = worlds["scarce"] > 0
    within = worlds["two_step_gap_to_plugin"] <= TWO_STEP_TOLERANCE
    wrong = table[table["truth"].isin(MISSPECIFIED)].groupby("mix")["regret"].mean()

    def loses(mix: str) -> int:
        rows = table[table["mix"] == mix]
        return int(np.sum(rows["regret"] - rows["reference_regret"] > rows["delta"]))

    rows = [("floor", int(np.sum(below & ~floor_reference)), len(optimised), "0"),
            *((f"{mix}_loses", loses(mix), len(worlds), "0")
              for mix in ("robust", "recommended")),
            ("claims_0.9", int(claims["gain_exceeds_delta"].sum()), len(claims), ">= 85%"),
            ("two_step_uncapped", int(within[~capped].sum()), int((~capped).sum()), "all"),
            ("two_step_capped", int(within[capped].sum()), int(capped.sum()), "all"),
            ("misspecified_regret", wrong.get("robust", np.nan),
             wrong.get("posterior_mean", np.nan), "lower")]
    out = pd.DataFrame(rows, columns=["check", "value", "of", "bar"])
    met = {"0": out["value"] == 0, ">= 85%": out["value"] >= 0.85 * out["of"],
           "all": out["value"] == out["of"], "lower": out["value"] < out["of"]}
    out["met"] = [bool(met[bar][i]) for i, bar in enumerate(out["bar"])]
    return out


def efficiency_table(mixes: pd.DataFrame, worlds: pd.DataFrame) -> pd.DataFrame:
    """Per setting and pilot fraction: held-out RMSE (Bayes vs point) and the regret of
    ``posterior_mean``, ``plugin`` and ``point_fit``."""
    regret = mixes[mixes["mix"].isin(["posterior_mean", "plugin", "point_fit", "uniform"])]
    regret = regret.pivot_table(index=["setting", "fraction"], columns="mix", values="regret",
                                aggfunc="mean").add_prefix("regret_")
    error = worlds.groupby(["setting", "fraction"])[
        ["runs", "rmse_bayes_inside", "rmse_point_inside", "rmse_bayes_target",
         "rmse_point_target", "pred_cover90_target"]].mean()
    error.insert(0, "worlds", worlds.groupby(["setting", "fraction"]).size())
    return error.join(regret).reset_index().sort_values(["setting", "fraction"],
                                                        ascending=[True, False])


def show(title: str, table: pd.DataFrame) -> None:
    """Print a table with 4 significant digits."""
    print(f"\n== {title}")
    with pd.option_context("display.width", 250, "display.max_columns", 40):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
