"""The real study's record of finished runs (:data:`RECORD`): what the full study cannot make
again cheaply, mirrored from the work directory into the repository every
:data:`RECORD_INTERVAL_S` seconds while it trains and once at the end (:class:`RecordKeeper`):
the corpus's ``languages.csv``, the design, the held-out mixes and the loss table of every
finished run (a few kilobytes each). On a fresh work directory the study restores the record
first (:func:`restore_record`), so recorded runs are not trained again; it refuses to restore
into a corpus whose ``languages.csv`` differs from the recorded one (the runs would not be
comparable)."""

import shutil
import sys
import threading
from pathlib import Path

import pandas as pd

from benchmarks.real.stages import RESULTS

#: Where the full study keeps its record of finished runs (see the module docstring).
RECORD = RESULTS / "real_study_runs"
#: Seconds between two updates of the record while a stage trains.
RECORD_INTERVAL_S = 60.0


def record_pairs(workdir: Path, corpus: Path, record: Path) -> list[tuple[Path, Path]]:
    """(file in the work directory, its copy in the record) for everything the record keeps:
    the corpus's ``languages.csv``, the design, the held-out mixes and the loss table of every
    run, finished or not (:func:`update_record` copies only the files that exist)."""
    pairs = [(corpus / "languages.csv", record / "languages.csv"),
             (workdir / "pilots" / "design.csv", record / "design.csv"),
             (workdir / "heldout" / "mixes.csv", record / "mixes.csv")]
    for run in sorted((workdir / "pilots").glob("*/pilots.csv")):
        pairs.append((run, record / "pilots" / f"{run.parent.name}.csv"))
    for run in sorted((record / "pilots").glob("*.csv")):
        pairs.append((workdir / "pilots" / run.stem / "pilots.csv", run))
    for run in sorted((workdir / "heldout").glob("*/seed*/*/pilots.csv")):
        pairs.append((run, record / run.parent.relative_to(workdir).with_suffix(".csv")))
    for run in sorted((record / "heldout").glob("*/seed*/*.csv")):
        pairs.append((workdir / run.relative_to(record).with_suffix("") / "pilots.csv", run))
    return list(dict.fromkeys(pairs))


def update_record(workdir: Path, corpus: Path, record: Path) -> None:
    """Copy every finished file of the work directory missing from the record into it
    (through a temporary name, so a killed study never leaves half a file)."""
    for source, copy in record_pairs(workdir, corpus, record):
        if source.is_file() and not copy.is_file():
            copy.parent.mkdir(parents=True, exist_ok=True)
            partial = copy.with_suffix(".partial")
            shutil.copyfile(source, partial)
            partial.replace(copy)


def restore_record(workdir: Path, corpus: Path, record: Path) -> None:
    """Copy the record's files missing from the work directory back into it, so recorded runs
    count as finished. Stops if the corpus is not the one the record was made on."""
    recorded = record / "languages.csv"
    if not recorded.is_file():
        return
    if not pd.read_csv(recorded).equals(pd.read_csv(corpus / "languages.csv")):
        sys.exit(f"{corpus / 'languages.csv'} differs from {recorded}: the recorded runs were "
                 f"trained on another corpus. Rebuild the corpus the record was made on, or "
                 f"move {record} away to start the study afresh.")
    restored = 0
    for source, copy in record_pairs(workdir, corpus, record):
        if copy.is_file() and not source.is_file():
            source.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(copy, source)
            restored += 1
    print(f"restored {restored} files from {record}", flush=True)


class RecordKeeper:
    """Updates the record every :data:`RECORD_INTERVAL_S` seconds in a background thread
    while the study trains (``with RecordKeeper(...):``), and once more at the end."""

    def __init__(self, workdir: Path, corpus: Path, record: Path | None) -> None:
        self.arguments = (workdir, corpus, record)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self) -> None:
        while not self.stop.wait(RECORD_INTERVAL_S):
            self.update()

    def update(self) -> None:
        workdir, corpus, record = self.arguments
        if record is not None:
            update_record(workdir, corpus, record)

    def __enter__(self) -> "RecordKeeper":
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self.thread.join()
        self.update()
