"""The pilot sweep: one training run per row of a design table, results in one pilot table.

``python train.py -m experiment=pilots experiment.design=design.csv`` runs every row of the
design (``python -m climb_bayes.design`` writes one) through Hydra's multirun: the
``${pilot_rows:...}`` resolver turns the design into the sweep ``experiment.row=range(0, N)``,
the joblib launcher runs the jobs in parallel (``hydra/launcher=slurm`` submits them to a
SLURM cluster instead), and :class:`CollectPilots`, a Hydra callback, checks the whole sweep
before any job starts and collects the runs' rows into ``<experiment.output>/pilots.csv``
when they end. ``python -m trainers.sweep design=... output=...`` collects by hand (its keys,
types, defaults and meaning: :class:`trainers.sweep_config.SweepConfig`).

Resumable and idempotent: each run owns ``<experiment.output>/<run_id>/``; a finished run
(its ``pilots.csv`` exists) is skipped, an interrupted one resumes from its last checkpoint,
and the collected table is rebuilt from the per-run files, one per run, so rerunning a sweep
never duplicates or loses a row.
"""

import sys
from pathlib import Path
from typing import Any

import hydra
import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

import trainers.sweep_config  # noqa: F401  (registers sweep_schema before Hydra starts)
from climb_bayes.cli import output_directory, schema_keys
from climb_bayes.data.table_files import read_table, write_pilots
from climb_bayes.data.validation import validate_pilots
from climb_bayes.errors import INPUT_ERROR_STATUS, InputError, exits_on_input_error
from climb_bayes.overrides import check_command_line

PILOTS_FILE = "pilots.csv"


def pilot_rows(design: str) -> str:
    """Hydra resolver: the sweep over a design's rows, ``range(0,N)``."""
    from trainers.runs import read_design

    try:
        return f"range(0,{len(read_design(design))})"
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(INPUT_ERROR_STATUS)


if not OmegaConf.has_resolver("pilot_rows"):
    OmegaConf.register_new_resolver("pilot_rows", pilot_rows)


def collect(design: str | Path, output: str | Path) -> tuple[pd.DataFrame, list[str]]:
    """Gather the finished runs of a design into ``output/pilots.csv`` (in design order).

    Returns the table and the ids of the runs not finished yet. Each run contributes its own
    ``output/<run_id>/pilots.csv`` once, so collecting again gives the same table. A complete
    sweep's table is validated as :func:`climb_bayes.fit` will read it.
    """
    from trainers.runs import read_design

    runs = read_design(design)["run_id"].tolist()
    frames, missing = [], []
    for run_id in runs:
        file = Path(output) / run_id / PILOTS_FILE
        if file.is_file():
            frames.append(read_table(file))
        else:
            missing.append(run_id)
    if not frames:
        raise InputError(f"{output}: none of the {len(runs)} runs of {design} has finished; "
                         f"run the sweep first (python train.py -m experiment=pilots).")
    table = pd.concat(frames, ignore_index=True)
    if not missing:  # a partial sweep may not yet be a usable design
        validate_pilots(table, str(Path(output) / PILOTS_FILE))
    write_pilots(table, Path(output) / PILOTS_FILE)
    return table, missing


def check_sweep(config: DictConfig) -> None:
    """Resolve and check every run of the sweep against the corpus (InputError if any fails)."""
    from trainers.runs import check_corpus, read_design, resolve_run
    from trainers.training import check_options, make_datamodule

    check_options(config)
    languages = check_corpus(config.data.corpus)
    design = read_design(config.experiment.design)
    for row in range(len(design)):
        run = OmegaConf.merge(config, {"experiment": {"row": row}})
        make_datamodule(run, resolve_run(run, languages))


class CollectPilots(Callback):
    """Hydra callback of ``experiment=pilots``: check the sweep first, collect it at the end."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            check_sweep(config)
        except InputError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(INPUT_ERROR_STATUS)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        table, missing = collect(config.experiment.design, config.experiment.output)
        where = Path(config.experiment.output) / PILOTS_FILE
        print(f"collected {table['run_id'].nunique()} runs ({len(table)} rows) into {where}")
        if missing:
            print(f"not finished: {', '.join(missing)}; rerun the sweep to complete them",
                  file=sys.stderr)


@hydra.main(config_path="../conf", config_name="sweep", version_base="1.3")
@exits_on_input_error
def main(cfg: DictConfig) -> None:
    """Collect a sweep's finished runs into ``cfg.output/pilots.csv`` (``cfg`` typed by
    :class:`~trainers.sweep_config.SweepConfig`)."""
    schema_keys(cfg)
    output = output_directory(cfg.output, "output", "runs/pilots",
                              "pilots.csv, beside the runs' directories")
    table, missing = collect(cfg.design, output)
    print(f"collected {table['run_id'].nunique()} runs ({len(table)} rows) into "
          f"{output / PILOTS_FILE}")
    if missing:
        print(f"not finished: {', '.join(missing)}", file=sys.stderr)


if __name__ == "__main__":
    check_command_line("sweep")
    main()
