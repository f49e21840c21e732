"""Is a mid-run checkpoint the loss a run of that budget would reach? Measured on pilot tables.

    python -m benchmarks.checkpoint_bias --pilots climb_bayes/data/example/pilots.csv
    python -m benchmarks.checkpoint_bias --pilots runs/tiny/pilots/pilots.csv

The trainers decay the learning rate over each run (cosine to ``min_lr_ratio``,
``trainers/module.py``), so a checkpoint at a third of a long run is taken at a high learning
rate, while a short run of that budget has annealed. The 3 x m x 2 design runs the same mixes
at every budget, so a table with checkpoints holds, for each mix and evaluated language, a
checkpoint of the longer run within ``--tolerance`` (relative) of the shorter run's budget and
the shorter run's final loss. This script pairs them and reports the difference
``checkpoint - final`` in nats: its mean, sd, median, the share of pairs where the checkpoint
is higher, and the mean relative difference; and, for scale, the median within-run step of
the loss between consecutive checkpoints. The law treats both as ``L(r, D)``; a systematic
difference is a bias the fit absorbs into its parameters. One row per table is appended to
``--output``.
"""

import argparse
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from climb_bayes.data.pilot_table import SHARE_PREFIX
from climb_bayes.data.table_files import read_pilots
from climb_bayes.io import atomic_path

REPO = Path(__file__).resolve().parents[1]


def paired_losses(frame: pd.DataFrame, tolerance: float) -> pd.DataFrame:
    """For each mix and language: a checkpoint of a longer run within ``tolerance`` of a
    shorter run's final budget, beside that final loss."""
    shares = [c for c in frame.columns if c.startswith(SHARE_PREFIX)]
    frame = frame.assign(mix=frame[shares].round(9).astype(str).agg("|".join, axis=1),
                         budget=frame.groupby("run_id")["tokens"].transform("max"))
    final = frame[frame["tokens"] == frame["budget"]]
    checkpoints = frame[frame["tokens"] < frame["budget"]]
    pairs = checkpoints.merge(final[["mix", "language", "tokens", "loss"]],
                              on=["mix", "language"], suffixes=("_checkpoint", "_final"))
    close = (pairs["tokens_checkpoint"] / pairs["tokens_final"] - 1.0).abs() <= tolerance
    return pairs[close]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pilots", type=Path, required=True, help="a pilot table with checkpoints")
    parser.add_argument("--tolerance", type=float, default=0.05,
                        help="largest relative gap between a checkpoint and a budget it stands for")
    parser.add_argument("--output", type=Path,
                        default=REPO / "benchmarks" / "results" / "checkpoint_bias.csv")
    args = parser.parse_args()
    frame = read_pilots(args.pilots).frame
    pairs = paired_losses(frame, args.tolerance)
    if pairs.empty:
        parser.error(f"--pilots {args.pilots}: no checkpoint of a longer run lies within "
                     f"{args.tolerance:.0%} of a shorter run's budget for the same mix; this "
                     "needs a design that repeats its mixes across budgets, with checkpoints")
    difference = pairs["loss_checkpoint"] - pairs["loss_final"]
    steps = (frame.sort_values("tokens").groupby(["run_id", "language"])["loss"]
             .diff().abs().dropna())
    row = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "pilots": str(args.pilots),
        "pairs": len(pairs),
        "tokens": ";".join(sorted({f"{c:.4g}~{f:.4g}" for c, f in
                                   zip(pairs["tokens_checkpoint"], pairs["tokens_final"],
                                       strict=True)})),
        "mean_nats": difference.mean(), "sd_nats": difference.std(),
        "median_nats": difference.median(), "share_checkpoint_higher": (difference > 0).mean(),
        "mean_relative": (difference / pairs["loss_final"]).mean(),
        "median_checkpoint_step_nats": float(np.median(steps)),
    }
    print(pd.Series(row).to_string())
    table = pd.DataFrame([row])
    if args.output.exists():
        table = pd.concat([pd.read_csv(args.output), table], ignore_index=True)
    with atomic_path(args.output) as tmp:
        table.to_csv(tmp, index=False)
    print(f"appended to {args.output}")


if __name__ == "__main__":
    main()
