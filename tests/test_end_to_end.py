"""The real study on the Django corpus: fit -> solve -> train every mix -> score.

It runs ``benchmarks/real_study.py --quick`` on the corpus and pilots of the README's tiny
quick start (``tests/test_quick_start.py``), which calls the user's commands in order
(``climb_bayes.fit``, ``climb_bayes.solve``, ``train.py -m +mix=...``), then checks what each
stage left behind and that the study's tables report exactly what the runs measured.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from climb_bayes.pilots import read_pilots

REPO = Path(__file__).resolve().parents[1]
MIXES = {"posterior_mean", "plugin", "climb_two_step", "robust", "isolated", "uniform",
         "natural", "temperature", "unimax"}


@pytest.mark.slow
def test_pilots_fit_solve_train(tmp_path: Path, quick_start) -> None:
    """The study on the pilots and corpus of the README's tiny quick start (its sweep is the
    study's own: same corpus, design and trainer)."""
    work = tmp_path / "study"
    tiny = quick_start.root
    result = subprocess.run(
        [sys.executable, "benchmarks/real_study.py", "--quick", f"--workdir={work}",
         f"--corpus={tiny / 'corpora' / 'django'}",
         f"--pilots={tiny / 'runs' / 'tiny' / 'pilots' / 'pilots.csv'}"],
        cwd=REPO, capture_output=True, text=True, timeout=2400, check=False)
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-4000:])

    table = read_pilots(tiny / "runs" / "tiny" / "pilots" / "pilots.csv")
    assert table.sources == ["de", "en", "fr"] and table.frame["run_id"].nunique() == 24
    assert (work / "fit" / "posterior.nc").is_file()

    languages = pd.read_csv(work / "real_study_languages.csv")
    mixes = pd.read_csv(work / "real_study_mixes.csv")
    assert set(mixes["mix"]) == MIXES and set(languages["language"]) == {"de", "en", "fr"}
    for mix in MIXES:  # every mix trained (or shares a run with an identical mix) ...
        trained = languages.loc[languages["mix"] == mix, "trained_as"].iloc[0]
        run = pd.read_csv(work / "full" / "40000" / "seed0" / trained / "pilots.csv")
        shares = yaml.safe_load((work / "conf" / "mix" / f"{mix}.yaml").read_text())["shares"]
        for language, share in shares.items():  # ... on the solve's shares ...
            assert run[f"share_{language}"].iloc[0] == pytest.approx(share, abs=1e-3)
        final = run[run["tokens"] == 40_000].set_index("language")["loss"]
        reported = languages[languages["mix"] == mix].set_index("language")["measured"]
        assert reported.to_dict() == pytest.approx(final.to_dict())  # ... and is reported
        w = mixes.set_index("mix").loc[mix]
        assert w["measured_W"] == pytest.approx(final.mean())
        assert w["pred_W_q05"] < w["predicted_W"] < w["pred_W_q95"]
    assert (languages["pred_q05"] < languages["predicted"]).all()
    assert (languages["predicted"] < languages["pred_q95"]).all()
    inside = languages["measured"].between(languages["pred_q05"], languages["pred_q95"])
    summary = pd.read_csv(work / "real_study_summary.csv").iloc[0]
    assert summary["coverage_90_language"] == pytest.approx(inside.mean())
    assert np.isfinite(summary["rank_correlation"]) or mixes["measured_W"].nunique() == 1
