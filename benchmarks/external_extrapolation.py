"""Extrapolation in budget on runs made elsewhere: Data Mixing Laws' RedPajama runs (issue 15).

    python -m benchmarks.external_extrapolation --log mixinglaws/data/RedPajama/70M.txt
    python -m benchmarks.external_extrapolation --log .../70M.txt --fit-until 14000
    python -m benchmarks.external_extrapolation --log .../70M.txt --diagnose --map-starts 4
    python -m benchmarks.external_extrapolation --log .../70M.txt --chains 1 --warmup 50 \\
        --samples 50 --targets Github ArXiv --output /tmp/external.csv     # smoke test

``--log`` is a loss file of github.com/yegcjs/mixinglaws (``data/RedPajama/<size>.txt``; read
from where it is, never copied into this repository). Only the RedPajama runs are for
development: the repository's Pile runs (``data/5Mix``) are held out for a final check.

Data (:mod:`climb_bayes.data.checkpoint_log`): 70M-parameter models trained on 42 mixtures of the 7
RedPajama domains, each one run evaluated on 22 Pile validation domains at checkpoints of
10k to 30k steps of 1048576 tokens. The benchmark keeps ``--targets`` (default: five domains
of different kinds, web, code, science, books and law) and:

1. fits the posterior (:func:`climb_bayes.model.fitting.fit_posterior`, default priors, every
   checkpoint up to ``--fit-until`` steps, as ``checkpoints=all`` does) to all 42 runs; with
   ``--discrepancy-scale 0 --exponent-drift-scale 0`` the law alone, without its learned
   error in budget (:mod:`climb_bayes.model.discrepancy`) (method ``posterior``);
2. predicts each run's loss on each target at every later checkpoint, the held-out budgets
   ``D > D_fit``, and scores, per held-out budget ratio ``D / D_fit``:

   - ``coverage_90``: the share of held-out losses inside the 90% predictive interval of a new
     observed loss (:func:`climb_bayes.predict.predictive_losses`);
   - ``scaled_error_rms``: the root mean square of each error in units of the sd its 90%
     interval implies, ``(predicted - observed) / ((q95 - q05) / 3.29)``: 1 when the
     intervals are as wide as the errors are large, below 1 when too wide;
   - ``mae`` and ``bias``: mean absolute and mean signed error (predicted minus observed) of
     the posterior mean of the noise-free loss;
   - ``rank_correlation``: Spearman's rho across the 42 mixes between the predicted and the
     observed mean loss over the targets.

3. scores the same way a **per-run point fit**, the baseline that ignores the mixes: each
   run's own curve on each target, ``log L = c - b log D``, by least squares over its fit
   checkpoints (two parameters: the fit range holds as few as two checkpoints), extrapolated.

The fit's health verdict is recorded beside its scores: numbers from a broken fit are shown
but marked. One row per (method, budget ratio) is appended to ``--output``.
"""

import argparse
import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import jax
import numpy as np
import numpyro
import pandas as pd
from scipy.stats import spearmanr

from benchmarks.real.evaluation import NORMAL_Q95
from benchmarks.records import append_row, commit
from climb_bayes.data.checkpoint_log import TOKENS_PER_STEP, read_checkpoint_log
from climb_bayes.data.pilot_table import SHARE_PREFIX, PilotTable
from climb_bayes.data.validation import validate_pilots
from climb_bayes.fit import sampling_report
from climb_bayes.model.fitting import Sampler, fit_posterior, model_data
from climb_bayes.model.health import stored_health
from climb_bayes.model.map_search import find_map
from climb_bayes.model.numpyro_model import climb_model
from climb_bayes.model.posterior import posterior_from_idata, save_posterior
from climb_bayes.model.priors import Priors
from climb_bayes.predict import predictive_losses

REPO = Path(__file__).resolve().parents[1]
#: Default evaluated domains: web, code, science, books, law.
TARGETS = ("Pile-CC", "Github", "ArXiv", "Books3", "FreeLaw")


def split(frame: pd.DataFrame, fit_until: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The checkpoints the fit sees (``tokens <= fit_until``) and the later ones it predicts."""
    early = frame["tokens"] <= fit_until
    return frame[early].reset_index(drop=True), frame[~early].reset_index(drop=True)


def posterior_predictions(idata, held_out: pd.DataFrame, sources: list[str],
                          targets: list[str], seed: int = 0) -> pd.DataFrame:
    """``held_out`` with the posterior mean (``predicted``) and the 90% predictive interval
    (``q05``, ``q95``) of every row's loss."""
    posterior = posterior_from_idata(idata, allow_broken=True)  # scored whatever its health
    points = held_out.drop_duplicates(["run_id", "tokens"]).reset_index(drop=True)
    shares = points[[SHARE_PREFIX + s for s in sources]].to_numpy()
    mean = posterior.law.predict_loss(shares, points["tokens"].to_numpy())
    draws = np.asarray(predictive_losses(posterior, mean, points["tokens"].to_numpy(),
                                         jax.random.PRNGKey(seed)))
    point = points[["run_id", "tokens"]].reset_index(drop=True)
    table = pd.concat([point.assign(language=t, predicted=np.asarray(mean)[:, :, k].mean(0),
                                    q05=np.quantile(draws[:, :, k], 0.05, axis=0),
                                    q95=np.quantile(draws[:, :, k], 0.95, axis=0))
                       for k, t in enumerate(targets)], ignore_index=True)
    return held_out.merge(table, on=["run_id", "tokens", "language"], validate="one_to_one")


def point_fit_predictions(early: pd.DataFrame, held_out: pd.DataFrame) -> pd.DataFrame:
    """``held_out`` with each (run, target) curve's own extrapolation, ``log L = c - b log D``
    fitted by least squares to its early checkpoints (curves with fewer than two are left
    out)."""
    def coefficients(group: pd.DataFrame) -> pd.Series:
        slope, intercept = np.polyfit(np.log(group["tokens"] / first), np.log(group["loss"]), 1)
        return pd.Series({"slope": slope, "intercept": intercept})

    first = early["tokens"].min()  # log D measured from the first checkpoint: a well-posed fit
    seen = early.groupby(["run_id", "language"])["tokens"].transform("nunique") >= 2
    fits = early[seen].groupby(["run_id", "language"])[["tokens", "loss"]].apply(coefficients)
    table = held_out.merge(fits.reset_index(), on=["run_id", "language"], validate="many_to_one")
    table["predicted"] = np.exp(table["intercept"]
                                + table["slope"] * np.log(table["tokens"] / first))
    return table


def scores(table: pd.DataFrame, fit_until: float) -> list[dict]:
    """Coverage (when the table has intervals), MAE, bias and rank correlation per budget."""
    rows = []
    for tokens, at in table.groupby("tokens"):
        error = at["predicted"] - at["loss"]
        per_mix = at.groupby("run_id")[["predicted", "loss"]].mean()
        intervals = "q05" in at
        row = {"budget_ratio": tokens / fit_until, "tokens": tokens, "held_out_losses": len(at),
               "coverage_90": at["loss"].between(at["q05"], at["q95"]).mean()
               if intervals else np.nan,
               "scaled_error_rms": float(np.sqrt(np.mean(
                   (error / ((at["q95"] - at["q05"]) / (2 * NORMAL_Q95))) ** 2)))
               if intervals else np.nan,
               "mae": float(error.abs().mean()), "bias": float(error.mean()),
               "rank_correlation": (float(spearmanr(per_mix["predicted"],
                                                    per_mix["loss"]).statistic)
                                    if len(per_mix) >= 3 else np.nan)}
        rows.append(row)
    return rows


def fit_table(log: Path, fit_until_steps: int, targets: list[str]
              ) -> tuple[PilotTable, pd.DataFrame, pd.DataFrame]:
    """The pilot table the fit sees, and the early and held-out rows of ``targets``."""
    frame = read_checkpoint_log(log, normalise=True)
    unknown = sorted(set(targets) - set(frame["language"]))
    if unknown:
        raise SystemExit(f"--targets {unknown} are not in {log}; it has "
                         f"{sorted(frame['language'].unique())}")
    frame = frame[frame["language"].isin(targets)].reset_index(drop=True)
    early, held_out = split(frame, fit_until_steps * TOKENS_PER_STEP)
    table = validate_pilots(early, path=f"{log} up to step {fit_until_steps}")
    return table, early, held_out


def diagnose(table: PilotTable, priors: Priors, sampler: Sampler, directions: int = 5) -> None:
    """Print the sampling geometry of the fit: the optimum of every MAP start (non-centred,
    as ``fit`` finds them), the spectrum of the Laplace covariance at the best, and its
    ``directions`` stiffest directions with their largest components."""
    data, loss, _ = model_data(table, priors.run_sd_fraction > 0)
    optima = find_map(climb_model, {"data": data, "priors": priors, "loss": loss,
                                    "centred": ()},
                      jax.random.PRNGKey(sampler.seed), sampler.map_starts, sampler.map_max_iter)
    print("potential at each start's optimum:", np.array2string(optima.potential, precision=1))
    names = [f"{site}[{i}]" for site in sorted(optima.z)
             for i in range(int(np.prod(optima.z[site].shape[1:])))]
    variance, vectors = np.linalg.eigh(optima.covariance)
    print(f"Laplace covariance: {len(names)} directions, variances {variance[0]:.1e} to "
          f"{variance[-1]:.1e}; {int(np.sum(variance > 0.999))} at the floor of 1 (flat or "
          "negatively curved)")
    for k in range(directions):
        top = np.argsort(-np.abs(vectors[:, k]))[:4]
        print(f"  sd {np.sqrt(variance[k]):.1e}: "
              + ", ".join(f"{names[t]} {vectors[t, k]:+.2f}" for t in top))


def bench(log: Path, fit_until_steps: int, targets: list[str], sampler: Sampler,
          priors: Priors, posterior_path: Path | None) -> list[dict]:
    """Fit, predict and score; one row per (method, held-out budget). The fit's InferenceData
    is written to ``posterior_path`` when given."""
    fit_until = fit_until_steps * TOKENS_PER_STEP
    table, early, held_out = fit_table(log, fit_until_steps, targets)
    start = time.perf_counter()
    idata = fit_posterior(table, priors, "source_saturating", sampler)
    seconds = time.perf_counter() - start
    if posterior_path is not None:
        save_posterior(idata, posterior_path)
    health = stored_health(idata)
    print(sampling_report(idata, health, seconds))
    print(f"fit health: {health.line}")
    common = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "commit": commit(),
              "cores": len(os.sched_getaffinity(0)), "data": log.name,
              "fit_until_steps": fit_until_steps, "targets": " ".join(table.targets),
              "runs": table.frame["run_id"].nunique(), "fit_rows": len(table.frame)}
    posterior = posterior_predictions(idata, held_out, table.sources, table.targets)
    drift = (f"{priors.exponent_drift_centre:g}+-{priors.exponent_drift_scale:g}"
             f"x{priors.exponent_drift_spread:g}" if priors.exponent_drift_scale > 0 else "0")
    method = (f"posterior(discrepancy={priors.discrepancy_scale:g},"
              f"drift={drift},run_sd={priors.run_sd_fraction:g})")
    rows = [{**common, "method": method, "health": health.verdict, "seconds": seconds,
             "chains": sampler.chains, "samples": sampler.samples, **score}
            for score in scores(posterior, fit_until)]
    rows += [{**common, "method": "per_run_point_fit", **score}
             for score in scores(point_fit_predictions(early, held_out), fit_until)]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", type=Path, required=True,
                        help="data/RedPajama/<size>.txt of github.com/yegcjs/mixinglaws")
    parser.add_argument("--fit-until", type=int, default=12000,
                        help="fit the checkpoints up to this step; predict the later ones")
    parser.add_argument("--targets", nargs="+", default=list(TARGETS))
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--map-starts", type=int, default=Sampler.map_starts)
    parser.add_argument("--discrepancy-scale", type=float, default=Priors.discrepancy_scale,
                        help="prior median of the random walk in budget (0: none)")
    parser.add_argument("--exponent-drift-scale", type=float,
                        default=Priors.exponent_drift_scale,
                        help="prior scale of the exponent's drift (0: none; both 0: the law "
                             "alone)")
    parser.add_argument("--exponent-drift-centre", type=float,
                        default=Priors.exponent_drift_centre,
                        help="prior centre of the exponent's drift")
    parser.add_argument("--exponent-drift-spread", type=float,
                        default=Priors.exponent_drift_spread,
                        help="spread of the languages' drifts, / the drift's scale")
    parser.add_argument("--run-sd-fraction", type=float, default=Priors.run_sd_fraction,
                        help="prior scale of each run's offset, / the loss scale (0: none)")
    parser.add_argument("--save-posterior", type=Path, default=None,
                        help="also write the fit's posterior.nc here")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results"
                        / "external_extrapolation.csv", help="CSV to append the rows to")
    parser.add_argument("--diagnose", action="store_true",
                        help="only print the MAP optima and the Laplace covariance's spectrum")
    args = parser.parse_args()
    if "5Mix" in args.log.parts:
        parser.error("data/5Mix is held out for the final check; develop on data/RedPajama")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sampler = Sampler(chains=args.chains, warmup=args.warmup, samples=args.samples,
                      seed=args.seed, map_starts=args.map_starts, progress_bar=False)
    numpyro.set_host_device_count(sampler.chains)
    priors = Priors(discrepancy_scale=args.discrepancy_scale,
                    exponent_drift_scale=args.exponent_drift_scale,
                    exponent_drift_centre=args.exponent_drift_centre,
                    exponent_drift_spread=args.exponent_drift_spread,
                    run_sd_fraction=args.run_sd_fraction)
    if args.diagnose:
        diagnose(fit_table(args.log, args.fit_until, args.targets)[0], priors, sampler)
        return
    for row in bench(args.log, args.fit_until, args.targets, sampler, priors,
                     args.save_posterior):
        table = append_row(row, args.output)
    shown = table.tail(len(table) if len(table) < 40 else 40)
    columns = ["method", "fit_until_steps", "budget_ratio", "coverage_90", "scaled_error_rms",
               "mae", "bias", "rank_correlation"]
    print(shown[columns].to_string(index=False, float_format="{:.3f}".format))
    print(f"appended to {args.output}")


if __name__ == "__main__":
    main()
