"""Fit speed and quality: NUTS against a point-estimate fit of the same law, side by side.

    python -m benchmarks.fit_speed            # m = 4, 8, 16; the fit's defaults
    python -m benchmarks.fit_speed --quick    # m = 3 and 4; 2 chains x 300 draws (minutes)
    python -m benchmarks.fit_speed --languages 4 8 --chains 4 --samples 1000

For each ``m`` it simulates the paper's ``3 x m x 2`` design plus monolingual runs at three
budgets (3e6, 1e7, 3e7 tokens) from known parameters and keeps each run's final loss (what
``python -m climb_bayes.fit`` fits by default), then, in this one process:

- ``nuts``: :func:`climb_bayes.model.fitting.fit_posterior` (MAP starts, then NUTS); wall time
  including compilation, max R-hat, min bulk and tail ESS, divergences;
- ``point``: :func:`benchmarks.point_fit.fit_point` (Huber loss, L-BFGS from many starts, as
  Chinchilla and Data Mixing Laws fit their laws).

Both are scored on 200 held-out runs of the same world: RMSE of the predicted noise-free loss
(the posterior mean for NUTS) against the truth, at the pilot budgets and at 10x the largest
pilot budget; and, for NUTS, the coverage of 90% predictive intervals of new observations.
The last column is each method's time relative to the point fit.
"""

import argparse
import os
import tempfile
import time

import jax
import numpy as np
import numpyro
import pandas as pd

from benchmarks.point_fit import PointFit, fit_point
from climb_bayes.data.simulated import World, heldout_runs, simulate_pilots
from climb_bayes.data.validation import validate_pilots
from climb_bayes.model.fitting import Sampler, fit_posterior, pilot_rows
from climb_bayes.model.health import stored_health
from climb_bayes.model.posterior import Posterior, read_posterior, save_posterior
from climb_bayes.model.priors import Priors
from climb_bayes.predict import predictive_losses

PILOT_BUDGETS = (3e6, 1e7, 3e7)  # three budgets, as climb_bayes.design plans them
INSIDE = PILOT_BUDGETS
EXTRAPOLATED = (3e8,)  # 10x the largest pilot budget
HELDOUT = 200


def rmse(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Root mean squared error over all runs and targets."""
    return float(np.sqrt(np.mean((predicted - truth) ** 2)))


def score_nuts(posterior: Posterior, world: World, rng: np.random.Generator) -> dict[str, float]:
    """Held-out RMSE of the posterior mean inside and beyond the pilots; 90% coverage."""
    scores = {}
    for name, budgets in (("rmse_inside", INSIDE), ("rmse_10x", EXTRAPOLATED)):
        shares, tokens, truth, observed = heldout_runs(world, HELDOUT, budgets, rng)
        mean = posterior.law.predict_loss(shares, tokens)
        scores[name] = rmse(np.asarray(mean).mean(0), truth)
        draws = np.asarray(predictive_losses(posterior, mean, tokens, jax.random.PRNGKey(0)))
        low, high = np.quantile(draws, [0.05, 0.95], axis=0)
        scores[name.replace("rmse", "cover90")] = float(np.mean((observed >= low)
                                                                & (observed <= high)))
    return scores


def score_point(fit: PointFit, world: World, rng: np.random.Generator) -> dict[str, float]:
    """Held-out RMSE of the point estimate inside and beyond the pilots."""
    scores = {}
    for name, budgets in (("rmse_inside", INSIDE), ("rmse_10x", EXTRAPOLATED)):
        shares, tokens, truth, _ = heldout_runs(world, HELDOUT, budgets, rng)
        scores[name] = rmse(fit.law.predict_loss(shares, tokens)[0], truth)
    return scores


def bench(languages: int, sampler: Sampler, seed: int, workdir: str, point_starts: int = 64
          ) -> list[dict]:
    """Both fits of one simulated world; one row each."""
    frame, world = simulate_pilots(languages=languages, budgets=PILOT_BUDGETS, seed=seed)
    table = pilot_rows(validate_pilots(frame), "final")  # as climb_bayes.fit does by default
    start = time.perf_counter()
    point = fit_point(table, num_starts=point_starts, seed=seed)
    point_seconds = time.perf_counter() - start
    start = time.perf_counter()
    idata = fit_posterior(table, Priors(), "source_saturating", sampler)
    nuts_seconds = time.perf_counter() - start
    health = stored_health(idata)
    path = os.path.join(workdir, f"posterior_m{languages}.nc")
    save_posterior(idata, path)
    common = {"m": languages, "runs": table.frame["run_id"].nunique(), "rows": len(table.frame)}
    nuts = {**common, "method": "nuts", "seconds": nuts_seconds,
            "health": health.verdict, "max_r_hat": health.max_r_hat,
            "min_ess_bulk": health.min_ess_bulk, "min_ess_tail": health.min_ess_tail,
            "divergences": health.divergences,
            **score_nuts(read_posterior(path, allow_broken=True), world,
                         np.random.default_rng(seed + 1))}
    point_row = {**common, "method": "point", "seconds": point_seconds,
                 **score_point(point, world, np.random.default_rng(seed + 1))}
    for row in (nuts, point_row):
        row["time_vs_point"] = row["seconds"] / point_seconds
    return [nuts, point_row]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="m = 3, 4; 2 chains x 300 draws")
    parser.add_argument("--languages", type=int, nargs="+", default=None)
    parser.add_argument("--chains", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--samples", type=int, default=None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--point-starts", type=int, default=64,
                        help="starting points of the point fit's L-BFGS")
    parser.add_argument("--output", default="benchmarks/results/fit_speed.csv")
    args = parser.parse_args()
    defaults = Sampler()  # what python -m climb_bayes.fit samples: 4 chains x 2000 draws
    chains, warmup, samples, languages = ((2, 300, 300, [3, 4]) if args.quick else (
        defaults.chains, defaults.warmup, defaults.samples, [4, 8, 16]))
    sampler = Sampler(chains=args.chains or chains, warmup=args.warmup or warmup,
                      samples=args.samples or samples, seed=args.seed, progress_bar=False)
    numpyro.set_host_device_count(sampler.chains)  # chains in parallel, as the fit CLI runs them
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    rows = []
    for m in args.languages or languages:
        with tempfile.TemporaryDirectory() as workdir:  # the posterior file, read back as users do
            rows += bench(m, sampler, args.seed, workdir, args.point_starts)
        table = pd.DataFrame(rows)
        table.to_csv(args.output, index=False)
        print(table.to_string(index=False, float_format="{:.3g}".format), flush=True)
    print(f"\n{sampler.chains} chains x {sampler.samples} draws ({sampler.warmup} warmup), "
          f"{os.cpu_count()} CPU cores; table saved to {args.output}")


if __name__ == "__main__":
    main()
