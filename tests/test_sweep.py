"""The pilot sweep (Hydra multirun over a design table), resume, and bad input (exit 2)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import CORPUS_LANGUAGES as LANGUAGES

from climb_bayes.data.designs import climb_design
from climb_bayes.data.table_files import read_pilots

REPO = Path(__file__).resolve().parents[1]
TINY = ("data=django", "trainer.threads=1", "trainer.progress_bar=false",
        "trainer.loggers=[csv]")



def command(*overrides: str, multirun: bool = False) -> list[str]:
    return [sys.executable, "train.py", *(["-m"] if multirun else []), *TINY, *overrides]


def run(*overrides: str, multirun: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command(*overrides, multirun=multirun), cwd=REPO,
                          capture_output=True, text=True, timeout=900, check=False)


# ----------------------------------------------------------------------------- bad input


def mix_dir(root: Path, name: str, text: str) -> str:
    (root / "mix").mkdir(parents=True, exist_ok=True)
    (root / "mix" / f"{name}.yaml").write_text(text)
    return f"hydra.searchpath=[file://{root}]"


def assert_refused(result: subprocess.CompletedProcess[str], *phrases: str,
                   output: Path) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    for phrase in phrases:
        assert phrase in result.stderr, (phrase, result.stderr[-3000:])
    assert "Traceback" not in result.stderr
    assert not output.exists() or not any(output.iterdir()), "nothing may be written"


def test_missing_corpus(tmp_path: Path) -> None:
    result = run(f"data.corpus={tmp_path / 'nowhere'}", f"experiment.output={tmp_path / 'o'}")
    assert_refused(result, "no such directory", "python -m trainers.corpus",
                   output=tmp_path / "o")


def test_empty_language_directory(corpus: Path, tmp_path: Path) -> None:
    copy = tmp_path / "corpus"
    subprocess.run(["cp", "-r", str(corpus), str(copy)], check=True)
    for shard in (copy / "fr" / "train").iterdir():
        shard.unlink()
    result = run(f"data.corpus={copy}", f"experiment.output={tmp_path / 'o'}")
    assert_refused(result, str(copy / "fr" / "train"), "no shards", output=tmp_path / "o")


def test_corrupt_shard(corpus: Path, tmp_path: Path) -> None:
    copy = tmp_path / "corpus"
    subprocess.run(["cp", "-r", str(corpus), str(copy)], check=True)
    shard = copy / "de" / "train" / "00000.jsonl"
    shard.write_text(shard.read_text() + '{"text": "truncat\n')
    result = run(f"data.corpus={copy}", f"experiment.output={tmp_path / 'o'}")
    assert_refused(result, "00000.jsonl: line", "repair or rebuild", output=tmp_path / "o")


def test_mix_with_unknown_language(corpus: Path, tmp_path: Path) -> None:
    path = mix_dir(tmp_path / "mixes", "bad", "shares: {de: 0.5, xx: 0.5}\n")
    result = run(f"data.corpus={corpus}", "+mix=bad", path, f"experiment.output={tmp_path / 'o'}")
    assert_refused(result, "mix 'bad'", "xx", "not in the corpus", output=tmp_path / "o")


def test_mix_not_summing_to_one(corpus: Path, tmp_path: Path) -> None:
    path = mix_dir(tmp_path / "mixes", "bad", "shares: {de: 0.5, en: 0.4}\n")
    result = run(f"data.corpus={corpus}", "+mix=bad", path, f"experiment.output={tmp_path / 'o'}")
    assert_refused(result, "mix 'bad'", "sum to 0.9", output=tmp_path / "o")


def test_budget_needing_too_many_epochs(corpus: Path, tmp_path: Path) -> None:
    result = run(f"data.corpus={corpus}", "experiment.tokens=1e6", "data.max_epochs=3",
                 f"experiment.output={tmp_path / 'o'}")
    assert_refused(result, "epochs", "data.max_epochs=3", output=tmp_path / "o")


def test_bad_design_row_is_refused_before_any_run(corpus: Path, tmp_path: Path) -> None:
    design = climb_design(LANGUAGES, [5000], focal_shares=[0.6], monolingual=False)
    design.loc[1, "share_de"] += 0.2
    design.to_csv(tmp_path / "design.csv", index=False)
    result = run("experiment=pilots", f"data.corpus={corpus}",
                 f"experiment.design={tmp_path / 'design.csv'}",
                 f"experiment.output={tmp_path / 'o'}", f"hydra.sweep.dir={tmp_path / 'h'}",
                 multirun=True)
    assert_refused(result, "row 1", "sum to", output=tmp_path / "o")


# ----------------------------------------------------------------------------- the sweep


def sweep_overrides(corpus: Path, design: Path, output: Path) -> tuple[str, ...]:
    return ("experiment=pilots", f"data.corpus={corpus}", f"experiment.design={design}",
            f"experiment.output={output}", f"hydra.sweep.dir={output / 'hydra'}",
            "trainer.checkpoint_every_steps=5")


@pytest.mark.slow
def test_sweep_collects_and_survives_a_kill(corpus: Path, tmp_path: Path) -> None:
    design = climb_design(LANGUAGES, [6000, 24000], focal_shares=[0.6], monolingual=False)
    design.to_csv(tmp_path / "design.csv", index=False)

    reference = run(*sweep_overrides(corpus, tmp_path / "design.csv", tmp_path / "ref"),
                    multirun=True)
    assert reference.returncode == 0, reference.stderr[-3000:]
    table = read_pilots(tmp_path / "ref" / "pilots.csv")  # what climb_bayes.fit reads
    assert list(table.frame["run_id"].unique()) == list(design["run_id"])
    assert len(table.frame) == len(design) * 3 * len(LANGUAGES)  # 3 checkpoints, 3 languages

    # the same sweep, killed once a run has finished and another has a checkpoint
    output = tmp_path / "killed"
    process = subprocess.Popen(command(*sweep_overrides(corpus, tmp_path / "design.csv",
                                                        output), multirun=True),
                               cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline:
            finished = list(output.glob("*/pilots.csv"))
            checkpoints = {p.parents[1] for p in output.glob("*/checkpoints/last.ckpt")}
            if finished and checkpoints - {p.parent for p in finished}:
                break
            assert process.poll() is None, "the sweep ended before it could be killed"
            time.sleep(0.05)
        else:
            pytest.fail("no run finished within the time limit")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert not (output / "pilots.csv").exists()

    resumed = run(*sweep_overrides(corpus, tmp_path / "design.csv", output), multirun=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "skipped" in resumed.stdout and "resuming" in resumed.stdout
    again = pd.read_csv(output / "pilots.csv")
    assert not again.duplicated(["run_id", "tokens", "language"]).any()
    pd.testing.assert_frame_equal(again, pd.read_csv(tmp_path / "ref" / "pilots.csv"))
