"""The pilot table: results of the pilot runs, in the one format the rest of the package reads.

Format
------
One file, CSV (``.csv``, comma-separated) or Parquet (``.parquet`` or ``.pq``), with one row per
(run, checkpoint, evaluated language). Columns:

``run_id``
    Text that identifies one training run.
``tokens``
    Total training tokens the run had seen at that checkpoint: a finite number > 0. Several
    checkpoints of one run are rows with different ``tokens``.
``language``
    The evaluated language (text).
``loss``
    Validation loss on that language, in nats: a finite number > 0.
``share_<lang>``
    One column per *training* language: the run's nominal share of ``<lang>``. Each share is
    in [0, 1], the shares of a row sum to 1 (within 1e-6), and they are the same on every row
    of a run.
``seed``, ``model``
    Optional. They are kept but not used.

Any other column is an error, because it is most likely a misspelling; the message suggests
the closest allowed name. The evaluated languages (values of ``language``) and the trained
languages (``share_`` suffixes) need not be the same: a language with a share column that is
never evaluated is *source-only*, an evaluated language with no share column is
*evaluation-only* (its loss comes from transfer alone). The training languages (``sources``)
are taken in the order of the share columns, the evaluated languages (``targets``) in order of
first appearance. Surrounding spaces are removed from ``run_id`` and ``language``. Example::

    run_id,tokens,language,loss,share_en,share_de,share_sw
    r01,2.0e8,en,3.214,0.6,0.3,0.1
    r01,2.0e8,de,3.650,0.6,0.3,0.1
    r01,2.0e8,fr,4.802,0.6,0.3,0.1
    r01,1.0e9,en,2.951,0.6,0.3,0.1
    ...

:func:`climb_bayes.data.table_files.read_pilots` reads and checks a file,
:func:`climb_bayes.data.validation.validate_pilots` checks a data frame (that module says how
problems are reported). :func:`climb_bayes.data.designs.design_warnings` lists what a usable
table cannot pin down (parameters left to their priors) and which pilots would.
:func:`climb_bayes.data.wide_layout.from_wide` converts the wide layout in which RegMix
publishes its runs (one table of mixtures, one of losses).
"""

from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
import pandas as pd

SHARE_PREFIX = "share_"
REQUIRED_COLUMNS = ("run_id", "tokens", "language", "loss")
OPTIONAL_COLUMNS = ("seed", "model")

#: How far the shares of a row may sum from 1.
SHARE_SUM_TOLERANCE = 1e-6
#: How far the shares of one run may differ between its rows.
SAME_MIX_TOLERANCE = 1e-9
#: The ``path`` of a table that was not read from a file.
MEMORY = "<memory>"


class PilotArrays(NamedTuple):
    """The pilot table as index arrays for the statistical model.

    A *point* is one checkpoint: a distinct ``(run_id, tokens)`` pair. An *observation* is one
    row of the table: the loss of one point on one target.
    """

    run_ids: np.ndarray  # (run,) str, in order of first appearance
    run_shares: np.ndarray  # (run, source) float64
    point_run: np.ndarray  # (point,) int: run index of each checkpoint
    point_tokens: np.ndarray  # (point,) float64: tokens of that checkpoint
    obs_point: np.ndarray  # (obs,) int: point index of each row
    obs_target: np.ndarray  # (obs,) int: index into targets of each row
    loss: np.ndarray  # (obs,) float64


@dataclass(frozen=True)
class PilotTable:
    """A validated pilot table.

    ``frame`` holds the rows with normalised types (``run_id`` and ``language`` text, ``tokens``,
    ``loss`` and the shares float), ``sources`` the training languages, ``targets`` the
    evaluated ones, ``path`` where the table came from (``"<memory>"`` for a data frame).
    """

    frame: pd.DataFrame
    sources: list[str]
    targets: list[str]
    path: str

    @property
    def share_columns(self) -> list[str]:
        """The share column of every source, in order."""
        return [SHARE_PREFIX + source for source in self.sources]

    def arrays(self) -> PilotArrays:
        """Index arrays for the model; runs and checkpoints in order of first appearance."""
        frame = self.frame
        run_codes, run_ids = pd.factorize(frame["run_id"])
        point_codes = frame.groupby(["run_id", "tokens"], sort=False).ngroup().to_numpy()
        first_of_run = np.unique(run_codes, return_index=True)[1]
        first_of_point = np.unique(point_codes, return_index=True)[1]
        tokens = frame["tokens"].to_numpy(dtype=np.float64)
        return PilotArrays(
            run_ids=np.asarray(run_ids, dtype=str),
            run_shares=frame[self.share_columns].to_numpy(dtype=np.float64)[first_of_run],
            point_run=run_codes[first_of_point].astype(np.int64),
            point_tokens=tokens[first_of_point],
            obs_point=point_codes.astype(np.int64),
            obs_target=pd.Index(self.targets).get_indexer(frame["language"]).astype(np.int64),
            loss=frame["loss"].to_numpy(dtype=np.float64),
        )

    def final_of_run(self) -> "PilotTable":
        """The table with only each run's last checkpoint (its largest ``tokens``): the losses
        a run of that budget reaches, its learning-rate schedule completed. A mid-run
        checkpoint is taken before the schedule has decayed (``docs/checkpoints.md``)."""
        last = self.frame["tokens"] == self.frame.groupby("run_id")["tokens"].transform("max")
        return replace(self, frame=self.frame[last].reset_index(drop=True))

    def untrained(self) -> np.ndarray:
        """``(row,)`` True where the row's run has a share of 0 of the evaluated language,
        which other runs do train on (a monolingual pilot evaluated on another training
        language): its loss comes from transfer alone. An evaluation-only language (no share
        column, or a share of 0 in every run) is never untrained: all its losses are of that
        kind, and they are all the table says about it."""
        untrained = np.zeros(len(self.frame), dtype=bool)
        for language in self.targets:
            column = SHARE_PREFIX + language
            if column in self.frame and (self.frame[column] > 0).any():
                untrained |= ((self.frame["language"] == language)
                              & (self.frame[column] == 0)).to_numpy()
        return untrained

    def runs(self) -> pd.DataFrame:
        """One row per run: ``run_id``, its largest budget ``max_tokens``, and its shares."""
        grouped = self.frame.groupby("run_id", sort=False)
        runs = grouped[self.share_columns].first()
        runs.insert(0, "max_tokens", grouped["tokens"].max())
        return runs.reset_index()
