"""The pilot design: the paper's 3 x m x 2 runs plus monolingual ones, as a table."""

import numpy as np
import pandas as pd
import pytest

from climb_bayes.data.designs import budget_span_note, climb_design
from climb_bayes.data.pilot_table import SHARE_PREFIX
from climb_bayes.errors import INPUT_ERROR_STATUS

LANGUAGES = ["en", "de", "fr", "es", "it"]
BUDGETS = [1e7, 3e7]


@pytest.fixture(scope="module")
def design() -> pd.DataFrame:
    return climb_design(LANGUAGES, BUDGETS, seed=3)


def shares(design: pd.DataFrame) -> np.ndarray:
    return design[[f"{SHARE_PREFIX}{lang}" for lang in LANGUAGES]].to_numpy()


def test_size_and_columns(design) -> None:
    m = len(LANGUAGES)
    assert len(design) == (3 * m + m) * len(BUDGETS)
    assert list(design.columns) == ["run_id", "tokens"] + [f"share_{x}" for x in LANGUAGES]
    assert design["run_id"].is_unique
    assert sorted(design["tokens"].unique()) == BUDGETS


def test_mixes_are_on_the_simplex_and_repeat_across_budgets(design) -> None:
    r = shares(design)
    np.testing.assert_allclose(r.sum(axis=1), 1.0, atol=1e-12)
    assert (r >= 0).all()
    low, high = (shares(design[design["tokens"] == b]) for b in BUDGETS)
    np.testing.assert_array_equal(low, high)


def test_each_language_gets_the_focal_shares_and_monolingual_runs(design) -> None:
    r = shares(design[design["tokens"] == BUDGETS[0]])
    m = len(LANGUAGES)
    for i in range(m):
        np.testing.assert_allclose(r[3 * i:3 * i + 3, i], [0.15, 0.4, 0.7])
    np.testing.assert_array_equal(r[3 * m:], np.eye(m))


def test_no_vanishing_share_in_mixed_runs(design) -> None:
    r = shares(design[design["tokens"] == BUDGETS[0]])[:3 * len(LANGUAGES)]
    focal = np.repeat(np.eye(len(LANGUAGES), dtype=bool), 3, axis=0)
    even = (1 - r[focal])[:, None] / (len(LANGUAGES) - 1)
    assert (r[~focal].reshape(len(r), -1) >= 0.3 * even - 1e-12).all()


def test_seed_determines_the_design() -> None:
    pd.testing.assert_frame_equal(climb_design(LANGUAGES, BUDGETS, seed=1),
                                  climb_design(LANGUAGES, BUDGETS, seed=1))
    assert not climb_design(LANGUAGES, BUDGETS, seed=1).equals(
        climb_design(LANGUAGES, BUDGETS, seed=2))


def test_cli_writes_the_table_and_refuses_one_language(cli, tmp_path) -> None:
    output = tmp_path / "design.csv"
    ok = cli("climb_bayes.design", "languages=[en,de,fr]", "budgets=[1e6,4e6]",
             f"output={output}")
    assert ok.returncode == 0, ok.stderr
    assert len(pd.read_csv(output)) == (9 + 3) * 2
    bad = tmp_path / "bad.csv"
    refused = cli("climb_bayes.design", "languages=[en]", f"output={bad}")
    assert refused.returncode == INPUT_ERROR_STATUS
    assert "languages=[en]" in refused.stderr and "at least 2" in refused.stderr
    assert not bad.exists()


@pytest.mark.parametrize(("budgets", "warns"), [([1e7, 3e7, 1e8], False),
                                                ([1e7, 3e7], True),       # two budgets
                                                ([1e7, 2e7, 5e7], True),  # 1.6 e-folds
                                                ([5e7, 1e7, 1e8, 3e7], False)])
def test_budget_span_note_warns_below_three_budgets_over_two_e_folds(budgets, warns) -> None:
    note, warning = budget_span_note(budgets)
    assert warning == warns
    span = np.log(max(budgets) / min(budgets))
    assert f"span {span:.2f} e-folds" in note
    if warns:
        assert "budgets=[1e+07,3e+07,1e+08]" in note


def test_cli_default_plans_three_budgets_and_says_the_span(cli, tmp_path) -> None:
    output = tmp_path / "design.csv"
    default = cli("climb_bayes.design", f"output={output}")
    assert default.returncode == 0, default.stderr
    assert sorted(pd.read_csv(output)["tokens"].unique()) == [1e7, 3e7, 1e8]
    assert "span 2.30 e-folds" in default.stdout and "warning" not in default.stdout
    narrow = cli("climb_bayes.design", "budgets=[1e6,3e6]", f"output={output}")
    assert narrow.returncode == 0, narrow.stderr
    assert "warning: " in narrow.stdout and "span 1.10 e-folds" in narrow.stdout
