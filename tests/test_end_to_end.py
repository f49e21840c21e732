"""The real study on the Django corpus: pilots -> held-out mixes at 3x -> fit -> score.

It runs ``python -m benchmarks.real_study --quick`` on the corpus and pilots of the README's tiny
quick start (``tests/test_quick_start.py``), which trains the study's fixed held-out mixes
(``train.py -m +mix=...``) and fits the posterior (``climb_bayes.fit``), then checks what each
stage left behind, that the study's tables report exactly what the runs measured, and that the
evaluation alone (``--evaluate``) can be run again on the same runs.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from climb_bayes.data.table_files import read_pilots
from climb_bayes.model.health import VERDICTS

REPO = Path(__file__).resolve().parents[1]
MIXES = {"skew_large", "natural", "temperature", "uniform", "skew_small"}
BUDGETS = {"3x": 162_000}  # 3 times the largest pilot budget, 5.4e4 (the quick study's one)
MAX_EPOCHS = 20  # the quick study's repetition cap
LANGUAGES = {"de", "en", "fr"}


def study(*arguments: str) -> subprocess.CompletedProcess[str]:
    """``python -m benchmarks.real_study --quick ARGS``, checked to succeed."""
    result = subprocess.run([sys.executable, "-m", "benchmarks.real_study", "--quick", *arguments],
                            cwd=REPO, capture_output=True, text=True, timeout=2400, check=False)
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-4000:])
    return result


@pytest.mark.slow
@pytest.mark.study
def test_pilots_heldout_fit_score(tmp_path: Path, quick_start) -> None:
    """The study on the pilots and corpus of the README's tiny quick start (its sweep is the
    study's own: same corpus, design and trainer)."""
    work = tmp_path / "study"
    tiny = quick_start.root
    corpus = tiny / "corpora" / "django"
    study(f"--workdir={work}", f"--corpus={corpus}",
          f"--pilots={tiny / 'runs' / 'tiny' / 'pilots' / 'pilots.csv'}")

    table = read_pilots(work / "pilots" / "pilots.csv")
    assert table.sources == sorted(LANGUAGES) and table.frame["run_id"].nunique() == 36
    fits = list((work / "fit").glob("*/posterior.nc"))
    assert len(fits) == 1  # one fit of the current model version, reused by both evaluations

    # the held-out mixes: fixed rules, shares summing to 1, within the repetition cap
    mixes = pd.read_csv(work / "heldout" / "mixes.csv").set_index("mix")
    assert set(mixes.index) == MIXES
    shares = mixes[[f"share_{language}" for language in sorted(LANGUAGES)]]
    assert np.allclose(shares.sum(axis=1), 1.0)
    available = pd.read_csv(corpus / "languages.csv").set_index("language")["train_tokens"]
    epochs = shares.to_numpy() * max(BUDGETS.values()) / available[sorted(LANGUAGES)].to_numpy()
    assert (epochs <= MAX_EPOCHS).all()
    assert np.allclose(shares.loc["uniform"], 1 / 3)

    languages = pd.read_csv(work / "real_study_languages.csv")
    per_mix = pd.read_csv(work / "real_study_mixes.csv")
    summary = pd.read_csv(work / "real_study_summary.csv").set_index("budget")
    assert set(languages["language"]) == LANGUAGES and set(per_mix["mix"]) == MIXES
    for label, tokens in BUDGETS.items():
        for mix in MIXES:  # every mix trained at every budget ...
            run = pd.read_csv(work / "heldout" / str(tokens) / "seed0" / mix / "pilots.csv")
            config = yaml.safe_load((work / "heldout" / "conf" / "mix" / f"{mix}.yaml")
                                    .read_text())
            for language, share in config["shares"].items():  # ... on the mix's shares ...
                assert run[f"share_{language}"].iloc[0] == pytest.approx(share)
                assert mixes.loc[mix, f"share_{language}"] == pytest.approx(share)
            final = run[run["tokens"] == tokens].set_index("language")["loss"]
            rows = languages[(languages["budget"] == label) & (languages["mix"] == mix)]
            assert rows.set_index("language")["measured"].to_dict() == pytest.approx(
                final.to_dict())  # ... and is reported
            w = per_mix[(per_mix["budget"] == label) & (per_mix["mix"] == mix)].iloc[0]
            assert w["measured_W"] == pytest.approx(final.mean())
            # W is the equally weighted loss: its prediction is the languages' mean prediction
            assert w["predicted_W"] == pytest.approx(rows["predicted"].mean(), rel=1e-6)
        at = languages[languages["budget"] == label]
        assert (at["pred_q05"] < at["predicted"]).all() and (at["predicted"] < at["pred_q95"]).all()
        inside = at["measured"].between(at["pred_q05"], at["pred_q95"])
        row = summary.loc[label]
        assert row["runs"] == row["runs_planned"] == len(MIXES)
        assert row["coverage_90"] == pytest.approx(inside.mean())
        assert row["mae"] == pytest.approx((at["predicted"] - at["measured"]).abs().mean())
        assert row["bias"] == pytest.approx((at["predicted"] - at["measured"]).mean())
        z = (at["measured"] - at["predicted"]) / ((at["pred_q95"] - at["pred_q05"]) / 3.29)
        assert row["scaled_error_rms"] == pytest.approx(np.sqrt((z ** 2).mean()), rel=1e-3)
        point_error = at["point_predicted"] - at["measured"]  # the point fit's, beside it
        assert row["point_mae"] == pytest.approx(point_error.abs().mean())
        assert row["point_bias"] == pytest.approx(point_error.mean())
        assert (at["point_predicted"] - at["predicted"]).abs().max() < 1.0
        measured_w = per_mix.loc[per_mix["budget"] == label, "measured_W"]
        assert np.isfinite(row["rank_correlation"]) or measured_w.nunique() == 1
        assert row["health"] in VERDICTS

    # the evaluation alone, again: same runs, same fit (same model version), same scores
    study(f"--workdir={work}", f"--corpus={corpus}", "--evaluate")
    assert list((work / "fit").glob("*/posterior.nc")) == fits
    again = pd.read_csv(work / "real_study_summary.csv").set_index("budget")
    pd.testing.assert_frame_equal(again, summary)
