"""The whole loop on the Django corpus: corpus -> pilots -> fit -> solve -> train the mix."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from climb_bayes.pilots import read_pilots

REPO = Path(__file__).resolve().parents[1]
LANGUAGES = "[de,en,fr]"
TINY = ("data=django", "trainer.threads=1", "trainer.progress_bar=false",
        "trainer.loggers=[csv]")
FIT = ("sampler.chains=2", "sampler.warmup=150", "sampler.samples=150", "sampler.map_starts=2",
       "sampler.progress_bar=false", "sampler.max_tree_depth=6")


def step(*arguments: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, *arguments], cwd=REPO, capture_output=True,
                            text=True, timeout=1200, check=False)
    assert result.returncode == 0, (arguments, result.stdout[-2000:], result.stderr[-4000:])
    return result


@pytest.mark.slow
def test_pilots_fit_solve_train(tmp_path: Path) -> None:
    corpus, pilots, fit, mixes = (tmp_path / name for name in ("django", "pilots", "fit",
                                                               "mixes"))
    step("-m", "trainers.corpus", "source=django", f"languages={LANGUAGES}",
         f"output={corpus}", "vocab_size=512")
    step("-m", "climb_bayes.design", f"languages={LANGUAGES}", "budgets=[6e3,1.8e4]",
         f"output={pilots / 'design.csv'}")
    step("train.py", "-m", "experiment=pilots", *TINY, f"data.corpus={corpus}",
         f"experiment.design={pilots / 'design.csv'}", f"experiment.output={pilots}",
         f"hydra.sweep.dir={tmp_path / 'hydra'}")
    table = read_pilots(pilots / "pilots.csv")
    assert table.sources == ["de", "en", "fr"] and table.frame["run_id"].nunique() == 24
    step("-m", "climb_bayes.fit", f"pilots={pilots / 'pilots.csv'}", f"output={fit}", *FIT)
    step("-m", "climb_bayes.solve", f"posterior={fit / 'posterior.nc'}", "target_tokens=4e4",
         f"available={corpus / 'languages.csv'}", "max_epochs=10", f"output={mixes / 'mix'}")
    shares = yaml.safe_load((mixes / "mix" / "posterior_mean.yaml").read_text())["shares"]
    step("train.py", *TINY, f"data.corpus={corpus}", "+mix=posterior_mean",
         f"hydra.searchpath=[file://{mixes}]", "experiment.tokens=4e4",
         f"experiment.output={tmp_path / 'full'}", "data.max_epochs=10")
    result = pd.read_csv(tmp_path / "full" / "posterior_mean-4e+04" / "pilots.csv")
    for language, share in shares.items():
        assert result[f"share_{language}"].iloc[0] == pytest.approx(share)
    assert result["tokens"].max() == 40_000 and set(result["language"]) == {"de", "en", "fr"}
