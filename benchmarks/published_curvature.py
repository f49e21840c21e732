"""How much published loss curves bend in budget: the source of the exponent's drift prior.

    python -m benchmarks.published_curvature --logs mixinglaws/data/RedPajama

Reads Data Mixing Laws' RedPajama loss files of the 160M, 305M and 410M models (github
yegcjs/mixinglaws; the 70M runs are left out: ``benchmarks/external_extrapolation.py`` scores
them) with :func:`climb_bayes.data.checkpoint_log.read_checkpoint_log`. For every curve (run
and evaluated domain) with checkpoints spanning ``--first`` to ``--last`` steps it fits

    ln L = c0 + c1 u + c2 u^2 / 2,    u = ln(D / D_mid)

by least squares and reports, per model size, the mean and sd across curves of the curvature
``c2`` (how fast the exponent of ``L`` against ``D`` falls per e-fold; positive: the curve
flattens), of the slope ``c1``, and of the residual sd. The reducible part ``L - E`` bends
about twice as fast as ``ln L`` where ``E`` is about half the loss, which is where
``law.priors.exponent_drift_scale`` (0.1) comes from. One row per size is appended to
``--output`` (default ``benchmarks/results/published_curvature.csv``).
"""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.records import REPO, append_row, commit
from climb_bayes.data.checkpoint_log import TOKENS_PER_STEP, read_checkpoint_log

SIZES = ("160M", "305M", "410M")


def curve_fits(log: pd.DataFrame, first: int, last: int) -> pd.DataFrame:
    """One row per curve (run, domain) spanning ``first`` to ``last`` steps, with at least 8
    checkpoints: its quadratic fit's ``curvature``, ``slope`` and ``residual_sd``."""
    steps = log["tokens"] / TOKENS_PER_STEP
    window = log[(steps >= first) & (steps <= last)]
    middle = np.sqrt(first * last) * TOKENS_PER_STEP
    rows = []
    for (run, domain), curve in window.groupby(["run_id", "language"]):
        span = curve["tokens"] / TOKENS_PER_STEP
        if len(curve) < 8 or span.min() > 1.1 * first or span.max() < last / 1.1:
            continue
        u = np.log(curve["tokens"].to_numpy() / middle)
        y = np.log(curve["loss"].to_numpy())
        half_curvature, slope, intercept = np.polyfit(u, y, 2)
        residual = y - (intercept + slope * u + half_curvature * u**2)
        rows.append({"run": run, "domain": domain, "curvature": 2 * half_curvature,
                     "slope": slope, "residual_sd": residual.std()})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logs", type=Path, required=True,
                        help="Data Mixing Laws' data/RedPajama directory")
    parser.add_argument("--first", type=int, default=10_000, help="first step of the window")
    parser.add_argument("--last", type=int, default=30_000, help="last step of the window")
    parser.add_argument("--output", type=Path,
                        default=REPO / "benchmarks" / "results" / "published_curvature.csv")
    args = parser.parse_args()
    for size in SIZES:
        fits = curve_fits(read_checkpoint_log(args.logs / f"{size}.txt", normalise=True),
                          args.first, args.last)
        row = {"commit": commit(), "model": size, "first_step": args.first,
               "last_step": args.last, "curves": len(fits),
               **{f"{column}_{stat}": getattr(fits[column], stat)()
                  for column in ("curvature", "slope", "residual_sd")
                  for stat in ("mean", "std")}}
        append_row(row, args.output)
        print(", ".join(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}"
                        for key, value in row.items()), flush=True)


if __name__ == "__main__":
    main()
