"""Are the intervals beyond the pilots right on the pilots themselves? Leave the largest budget out.

    python -m benchmarks.leave_largest_out --pilots WORKDIR/pilots/pilots.csv
    python -m benchmarks.leave_largest_out                # the bundled example

The fit sees the pilots below their largest budget (each run's final loss, the losses of a
language on runs with none of it left out, as ``python -m climb_bayes.fit`` does by default)
and predicts the final losses of the runs at the largest budget, one step of extrapolation
(``D_max / D_next``, e.g. 2.7x). Over those held-out losses ``y`` with 90% predictive interval
``[q05, q95]`` (:func:`benchmarks.external_extrapolation.posterior_predictions`, a new run's
observed loss) it reports:

- ``coverage_90``: the share with ``q05 <= y <= q95``; ``mae`` and ``bias`` (predicted minus
  observed) of the posterior mean;
- ``conformal_factor``: split-conformal calibration from these residuals, the factor ``c`` by
  which every interval, scaled about its centre, covers ``ceil(0.9 (n + 1))`` of the ``n``
  held-out losses: ``c = that order statistic of |y - (q05 + q95) / 2| / ((q95 - q05) / 2)``.
  ``c < 1`` says the intervals are wider than the pilots' own extrapolation needs; ``c > 1``
  narrower (Conformalized Scaling Laws scale it with the extrapolation distance).

One row per call is appended to ``--output`` (default
``benchmarks/results/leave_largest_out.csv``).
"""

import argparse
import math
from pathlib import Path

import numpy as np
import numpyro
import pandas as pd

from benchmarks.external_extrapolation import posterior_predictions
from benchmarks.records import REPO, append_row, commit
from climb_bayes.data.table_files import read_pilots
from climb_bayes.data.validation import validate_pilots
from climb_bayes.fit import bundled_example
from climb_bayes.model.fitting import Sampler, fit_posterior, pilot_rows
from climb_bayes.model.health import stored_health
from climb_bayes.model.priors import Priors


def split_largest(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows of runs below the largest budget (fitted) and those at it (predicted)."""
    largest = rows["tokens"] == rows["tokens"].max()
    return rows[~largest].reset_index(drop=True), rows[largest].reset_index(drop=True)


def conformal_factor(scored: pd.DataFrame, level: float = 0.9) -> float:
    """The split-conformal scale of the intervals (module docstring)."""
    centre, half = (scored["q05"] + scored["q95"]) / 2, (scored["q95"] - scored["q05"]) / 2
    ratio = np.sort((scored["loss"] - centre).abs() / half)
    rank = min(math.ceil(level * (len(ratio) + 1)), len(ratio))
    return float(ratio[rank - 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pilots", type=Path, default=None,
                        help="pilot table (default: the bundled example)")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--output", type=Path,
                        default=REPO / "benchmarks" / "results" / "leave_largest_out.csv")
    args = parser.parse_args()
    numpyro.set_host_device_count(args.chains)  # chains in parallel, as the fit CLI runs them
    pilots = args.pilots or bundled_example()
    rows = pilot_rows(read_pilots(pilots)).frame
    fitted, held_out = split_largest(rows)
    table = validate_pilots(fitted)
    idata = fit_posterior(table, Priors(), "source_saturating",
                          Sampler(chains=args.chains, progress_bar=False))
    health = stored_health(idata)
    scored = posterior_predictions(idata, held_out, table.sources, table.targets)
    error = scored["predicted"] - scored["loss"]
    budgets = np.sort(rows["tokens"].unique())
    row = {"pilots": str(pilots), "fitted_budgets": " ".join(f"{b:g}" for b in budgets[:-1]),
           "held_out_budget": budgets[-1], "ratio": budgets[-1] / budgets[-2],
           "held_out_losses": len(scored),
           "coverage_90": scored["loss"].between(scored["q05"], scored["q95"]).mean(),
           "mae": error.abs().mean(), "bias": error.mean(),
           "median_width_90": (scored["q95"] - scored["q05"]).median(),
           "conformal_factor": conformal_factor(scored), "health": health.verdict,
           "max_r_hat": health.max_r_hat, "commit": commit()}
    append_row(row, args.output)
    print(pd.Series(row).to_string())


if __name__ == "__main__":
    main()
