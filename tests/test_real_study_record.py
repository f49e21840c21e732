"""The real study's record: finished runs survive a lost work directory, nothing else does."""

from pathlib import Path

import pandas as pd
import pytest

from benchmarks.real.record import restore_record, update_record


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def make_workdir(root: Path) -> tuple[Path, Path]:
    workdir, corpus = root / "work", root / "work" / "corpus"
    write(corpus / "languages.csv", "language,train_tokens\nde,10\nen,20\n")
    write(workdir / "pilots" / "design.csv", "run_id,tokens\nr0,100\nr1,100\n")
    write(workdir / "pilots" / "r0" / "pilots.csv", "run_id,loss\nr0,3.0\n")
    (workdir / "pilots" / "r1").mkdir()  # r1 is still training: no pilots.csv yet
    write(workdir / "pilots" / "r1" / "last.ckpt", "checkpoint")
    write(workdir / "heldout" / "mixes.csv", "mix,share_de,share_en\nuniform,0.5,0.5\n")
    write(workdir / "heldout" / "300" / "seed1" / "uniform" / "pilots.csv", "run_id,loss\nu,2.5\n")
    return workdir, corpus


def test_record_restores_finished_runs_only(tmp_path: Path) -> None:
    workdir, corpus = make_workdir(tmp_path)
    record = tmp_path / "record"
    update_record(workdir, corpus, record)
    kept = sorted(str(p.relative_to(record)) for p in record.rglob("*") if p.is_file())
    assert kept == ["design.csv", "heldout/300/seed1/uniform.csv", "languages.csv",
                    "mixes.csv", "pilots/r0.csv"]

    fresh = tmp_path / "fresh"
    write(fresh / "corpus" / "languages.csv", (corpus / "languages.csv").read_text())
    restore_record(fresh, fresh / "corpus", record)
    for name in ("pilots/design.csv", "pilots/r0/pilots.csv", "heldout/mixes.csv",
                 "heldout/300/seed1/uniform/pilots.csv"):
        assert (fresh / name).read_text() == (workdir / name).read_text(), name
    assert not (fresh / "pilots" / "r1").exists()

    # a run finished later is added; a recorded file is never rewritten
    write(fresh / "pilots" / "r1" / "pilots.csv", "run_id,loss\nr1,2.9\n")
    write(fresh / "pilots" / "r0" / "pilots.csv", "run_id,loss\nr0,9.9\n")
    update_record(fresh, fresh / "corpus", record)
    assert pd.read_csv(record / "pilots" / "r1.csv")["loss"].item() == 2.9
    assert pd.read_csv(record / "pilots" / "r0.csv")["loss"].item() == 3.0
    assert not list(record.rglob("*.partial"))


def test_record_refuses_another_corpus(tmp_path: Path) -> None:
    workdir, corpus = make_workdir(tmp_path)
    record = tmp_path / "record"
    update_record(workdir, corpus, record)
    other = tmp_path / "other"
    write(other / "corpus" / "languages.csv", "language,train_tokens\nde,11\nen,20\n")
    with pytest.raises(SystemExit, match="another corpus"):
        restore_record(other, other / "corpus", record)
    assert not (other / "pilots").exists()
