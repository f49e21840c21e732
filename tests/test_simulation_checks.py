"""The simulation study's check of the decision's bars (benchmarks.simulation.tables), on
scored worlds built by hand so that every count is known."""

import numpy as np
import pandas as pd

from benchmarks.simulation.tables import decision_checks

KEY = {"fraction": 1.0}


def world(setting: str, seed: int, truth: str, scarce: int, gap: float,
          regrets: dict[str, float], p_gain: dict[str, float], effective: dict[str, float],
          delta: float = 0.01) -> tuple[list[dict], dict]:
    """One world's rows: ``uniform`` the reference, every other mix's regret, ``P(gain >
    delta)`` and smallest posterior-mean effective share as given."""
    reference = regrets["uniform"]
    mixes = [{"setting": setting, "seed": seed, **KEY, "mix": mix, "regret": regret,
              "reference": "uniform", "delta": delta, "p_gain": p_gain.get(mix, 0.0),
              "gain_exceeds_delta": reference - regret > delta,
              "min_effective_share": effective.get(mix, 0.1)}
             for mix, regret in regrets.items()]
    return mixes, {"setting": setting, "seed": seed, **KEY, "truth": truth, "scarce": scarce,
                   "reference_regret": reference, "two_step_gap_to_plugin": gap}


def test_every_bar_is_counted_from_the_scored_worlds() -> None:
    worlds = [
        # the law, no cap: robust loses to uniform by more than delta; a right claim
        world("law_a", 0, "law", 0, 5e-4,
              {"uniform": 0.02, "posterior_mean": 0.001, "plugin": 0.001, "robust": 0.05,
               "recommended": 0.001},
              {"posterior_mean": 0.95, "plugin": 0.95}, {}),
        # misspecified, a cap: a wrong claim; plugin on the floor where uniform is not;
        # the two-step far from plugin
        world("dml_a", 0, "dml", 1, 5e-3,
              {"uniform": 0.005, "posterior_mean": 0.004, "plugin": 0.003, "robust": 0.002,
               "recommended": 0.005},
              {"posterior_mean": 0.92}, {"plugin": 1e-4}),
        # misspecified, a cap: every mix on the floor, the reference too (no mix could do
        # better); recommended loses by more than delta
        world("dml_a", 1, "law_bent", 1, 2e-4,
              {"uniform": 0.0, "posterior_mean": 0.03, "plugin": 0.03, "robust": 0.006,
               "recommended": 0.03},
              {}, {"uniform": 1e-4, "posterior_mean": 1e-4, "plugin": 1e-4, "robust": 1e-4}),
    ]
    mixes = pd.DataFrame([row for rows, _ in worlds for row in rows])
    checks = decision_checks(mixes, pd.DataFrame([w for _, w in worlds])).set_index("check")
    assert (checks.loc["floor", "value"], checks.loc["floor", "of"]) == (1, 9)
    assert checks.loc["robust_loses", "value"] == 1
    assert checks.loc["recommended_loses", "value"] == 1
    assert (checks.loc["claims_0.9", "value"], checks.loc["claims_0.9", "of"]) == (2, 3)
    assert (checks.loc["two_step_uncapped", "value"], checks.loc["two_step_uncapped", "of"]) \
        == (1, 1)
    assert (checks.loc["two_step_capped", "value"], checks.loc["two_step_capped", "of"]) == (1, 2)
    np.testing.assert_allclose(checks.loc["misspecified_regret", ["value", "of"]].astype(float),
                               [(0.002 + 0.006) / 2, (0.004 + 0.03) / 2])
    assert checks["met"].to_dict() == {
        "floor": False, "robust_loses": False, "recommended_loses": False,
        "claims_0.9": False, "two_step_uncapped": True, "two_step_capped": False,
        "misspecified_regret": True}
