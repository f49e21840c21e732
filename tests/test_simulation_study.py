"""The simulation study's core on small worlds (both kinds of truth), and its invariants.

Slow (NUTS fits): ``pytest -m slow tests/test_simulation_study.py`` (about 3 minutes on 2 cores).
"""

import numpy as np
import pandas as pd
import pytest

from benchmarks.simulation import scoring, settings, tables
from benchmarks.simulation_study import report
from benchmarks.worlds import DMLWorld, true_optimum, true_weighted_loss
from climb_bayes.decide.compare import DOUBT_THRESHOLD
from climb_bayes.decide.inputs import feasible_bounds
from climb_bayes.model.fitting import Sampler
from climb_bayes.model.law import FLOOR_REGION

pytestmark = [pytest.mark.slow, pytest.mark.study]


SAMPLER = Sampler(chains=2, warmup=150, samples=150, seed=0, map_starts=2, progress_bar=False)


SETTINGS = ("law_m4_pos_10x", "law_m4_pos_100x", "dml_m4_scarce_100x")
FITS: dict[str, tuple] = {}


@pytest.fixture(scope="module")
def results() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both kinds of truth, through the study's own ``run_world``: one world each, and the
    law's pilots again for a target 100x beyond them (sharing their fit)."""
    mixes, worlds = [], []
    for name in SETTINGS:
        rows, world = scoring.run_world(settings.SETTINGS[name], 0, SAMPLER, point_starts=2,
                                        fits=FITS)
        mixes += rows
        worlds.append(world)
    return pd.DataFrame(mixes), pd.DataFrame(worlds)


def test_settings_with_the_same_pilots_share_one_fit(results):
    _, worlds = results  # law_m4_pos_{10,100}x drew the same pilots for seed 0
    law = worlds.set_index("setting").loc[["law_m4_pos_10x", "law_m4_pos_100x"]]
    assert law["nuts_seconds"].nunique() == 1 and law["rmse_bayes_inside"].nunique() == 1
    assert law["target_tokens"].nunique() == 2


def test_every_mix_is_scored_once_per_world(results):
    mixes, worlds = results
    assert len(worlds) == len(SETTINGS)
    for _, group in mixes.groupby("setting"):
        reference = group["reference"].iloc[0]
        expected = {*tables.MIX_ORDER} - ({"uniform_capped"} if reference == "uniform" else set())
        assert sorted(group["mix"]) == sorted(expected)
    assert np.isfinite(mixes[["true_loss", "regret", "predicted", "optimism"]].to_numpy()).all()
    shares = mixes.filter(like="share_").to_numpy()
    assert np.allclose(np.nansum(shares, axis=1), 1.0, atol=1e-6)
    assert (np.nan_to_num(shares) >= 0).all()


def test_the_true_optimum_is_no_worse_than_any_feasible_mix(results):
    mixes, worlds = results
    feasible = mixes[mixes["feasible"]]
    assert (feasible["regret"] >= -1e-7).all(), feasible[["setting", "mix", "regret"]]
    optimum = mixes["setting"].map(worlds.set_index("setting")["optimum_loss"])
    assert (feasible["true_loss"] >= optimum[feasible.index] - 1e-7).all()
    # the solver's mixes respect the epoch caps by construction
    solved = mixes[mixes["mix"].isin(["posterior_mean", "plugin", "robust", "isolated",
                                      "point_fit", "unimax"])]
    assert solved["feasible"].all()


def test_intervals_inside_the_pilots_are_calibrated_where_the_law_is_true(results):
    mixes, worlds = results
    law = worlds[worlds["setting"].str.startswith("law_")]
    # 400 new observations inside the pilots' budgets per world: a 90% interval covers about
    # 90% of them (binomial sd 1.5%), a 50% one about half
    assert law["pred_cover90_inside"].between(0.8, 0.98).all(), law["pred_cover90_inside"]
    assert law["pred_cover50_inside"].between(0.35, 0.65).all(), law["pred_cover50_inside"]
    # the law's error term only widens the intervals at the target (10x and 100x here)
    widest = f"pred_cover90_target_sd{max(settings.EXTRAPOLATION_SDS):g}"
    assert (worlds[widest] >= worlds["pred_cover90_target"]).all()
    summary = tables.summary_table(mixes)
    assert set(tables.calibration_table(worlds)["setting"]) == set(worlds["setting"])
    assert len(summary) == len(mixes.groupby(["setting", "mix"]))


def test_gains_are_against_the_solvers_reference_and_the_rule_under_doubt_is_applied(results):
    mixes, worlds = results
    for setting, group in mixes.groupby("setting"):
        rows = group.set_index("mix")
        reference = rows["reference"].iloc[0]
        # uniform where it respects the caps, else uniform within them
        assert (reference == "uniform") == rows.loc["uniform", "feasible"]
        assert rows.loc[reference, "feasible"]
        assert rows.loc[reference, "true_gain"] == 0.0
        assert rows.loc[reference, "gain_mean"] == 0.0 and rows.loc[reference, "p_gain"] == 0.0
        # true gain = true loss of the reference minus the mix's
        np.testing.assert_allclose(rows["true_gain"],
                                   rows.loc[reference, "true_loss"] - rows["true_loss"])
        # ``recommended`` is posterior_mean when P(gain > delta) clears the threshold
        chosen = ("posterior_mean" if rows.loc["posterior_mean", "p_gain"]
                  >= DOUBT_THRESHOLD else reference)
        assert worlds.set_index("setting").loc[setting, "recommended"] == chosen
        assert rows.loc["recommended", "true_loss"] == rows.loc[chosen, "true_loss"]
    doubt = tables.doubt_table(mixes).set_index("setting")
    posterior_mean = mixes[mixes["mix"] == "posterior_mean"].set_index("setting")["regret"]
    np.testing.assert_allclose(doubt["level_0"], posterior_mean[doubt.index])
    own_reference = mixes[mixes["mix"] == mixes["reference"]].groupby("setting")["regret"].mean()
    np.testing.assert_allclose(doubt["reference"], own_reference[doubt.index])
    # rows in any order give the same table
    shuffled = tables.doubt_table(mixes.sample(frac=1.0, random_state=0)).set_index("setting")
    np.testing.assert_allclose(shuffled.loc[doubt.index].to_numpy(float), doubt.to_numpy(float))
    # no optimised mix leaves a language on the law's floor
    optimised = mixes[mixes["mix"].isin(["posterior_mean", "plugin", "robust"])]
    assert (optimised["min_effective_share"] >= FLOOR_REGION * (1 - 1e-6)).all()
    reliability = tables.reliability_table(mixes)
    assert reliability["mixes"].sum() == int((mixes["mix"] != mixes["reference"]).sum())


def test_true_optimum_beats_random_feasible_mixes():
    """The polished optimum of a (non-convex) DML truth against 500 random feasible mixes."""
    setting = settings.SETTINGS["dml_m4_scarce_100x"]
    _, world, available, target = settings.make_world(setting, 3)
    assert isinstance(world, DMLWorld)
    m = setting.languages
    weights = np.full(m, 1.0 / m)
    lower, upper = feasible_bounds(np.zeros(m), np.ones(m), available, settings.MAX_EPOCHS,
                                   target, world.sources)
    optimum = true_optimum(world, target, weights, lower, upper)
    rng = np.random.default_rng(0)
    candidates = rng.dirichlet(np.ones(m), 5000)
    candidates = candidates[(candidates <= upper).all(1)][:500]
    assert len(candidates) > 50
    assert optimum.value <= true_weighted_loss(world, candidates, target, weights).min() + 1e-9
    assert np.all(optimum.shares <= upper + 1e-9) and abs(optimum.shares.sum() - 1) < 1e-9


def test_dml_truth_behaves_like_a_loss():
    """More tokens lower every loss; more of a language's own share lowers its loss."""
    _, world, _, _ = settings.make_world(settings.SETTINGS["dml_m4_10x"], 1)
    mix = np.full((1, 4), 0.25)
    small, large = (world.predict_loss(mix, np.array([d]))[0, 0] for d in (1e7, 1e9))
    assert (large < small).all()
    more_en = np.array([[0.4, 0.2, 0.2, 0.2]])
    at = np.array([1e8])
    assert world.predict_loss(more_en, at)[0, 0, 0] < world.predict_loss(mix, at)[0, 0, 0]


def test_subsampled_pilots_keep_whole_runs():
    frame, *_ = settings.make_world(settings.SETTINGS["law_m4_pos_10x"], 0)
    table = settings.subsample_runs(frame, 0.25, 0)
    kept = table.frame["run_id"].nunique()
    assert 0.2 * frame["run_id"].nunique() <= kept <= 0.3 * frame["run_id"].nunique()
    per_run = table.frame.groupby("run_id")["tokens"].nunique()
    assert (per_run == len(settings.CHECKPOINTS)).all()


def test_report_keeps_part_designs_out_of_the_main_tables(results, tmp_path):
    """Worlds refitted on part of their design (``--efficiency``) share the CSVs; the main
    tables count full designs only, the efficiency table every fraction of those worlds;
    figures are named by the study's prefix, so ``--quick`` never overwrites the full study's."""
    mixes, worlds = results
    law = mixes["setting"] == "law_m4_pos_10x"
    half_mixes = mixes[law].assign(fraction=0.5, regret=mixes.loc[law, "regret"] + 1.0)
    half_worlds = worlds[worlds["setting"] == "law_m4_pos_10x"].assign(fraction=0.5)
    pd.concat([mixes, half_mixes]).to_csv(tmp_path / "simulation_quick_mixes.csv", index=False)
    pd.concat([worlds, half_worlds]).to_csv(tmp_path / "simulation_quick_worlds.csv",
                                            index=False)
    report("simulation_quick", tmp_path, figures=tmp_path / "figures")
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == [
        "simulation_quick_efficiency.png", "simulation_quick_regret.png"]
    summary = pd.read_csv(tmp_path / "simulation_quick_summary.csv")
    assert (summary["worlds"] == 1).all()
    assert summary["regret_mean"].max() < 1.0  # the shifted part-design regrets stay out
    efficiency = pd.read_csv(tmp_path / "simulation_quick_efficiency.csv")
    assert set(efficiency["setting"]) == {"law_m4_pos_10x"}
    assert list(efficiency["fraction"]) == [1.0, 0.5]
    assert np.diff(efficiency["regret_posterior_mean"].to_numpy())[0] == pytest.approx(1.0)
