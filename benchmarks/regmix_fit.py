"""Fit health, time and held-out rank accuracy on RegMix's published 1M-parameter runs (issue 14).

    python -m benchmarks.regmix_fit --data regmix/data      # 128 runs, 2 chains x 2000 draws
    python -m benchmarks.regmix_fit --data regmix/data --train-runs 24 --held-out 32 \\
        --chains 1 --warmup 50 --samples 50 --output /tmp/regmix_fit.csv   # smoke test

``--data`` is the ``data/`` folder of a clone of github.com/sail-sg/regmix (docs/regmix.md).
Issue 14's bar: 128 runs fit healthy (max R-hat <= 1.01, min bulk ESS >= 400, no divergences)
in at most 15 minutes on 2 cores, keeping the rank accuracy on held-out runs.

Data (``docs/regmix.md``): each of RegMix's 1M-parameter proxy runs trained on a mix of 17
Pile domains for 1000 steps of 512 sequences of 2048 tokens, ``D = 1.048576e9`` tokens, and was
evaluated on 13 of them. The fit uses the first ``--train-runs`` runs of
``train_mixture_1m.csv``/``train_pile_loss_1m.csv`` (512 runs, numbered in the random order in
which RegMix drew them, so the first N are a random subset, and a smaller N is nested in a
larger one); the held-out runs are the first ``--held-out`` of RegMix's own held-out set,
``test_mixture_1m.csv``/``test_pile_loss_1m.csv`` (256 runs). Both are converted by
:func:`climb_bayes.data.wide_layout.from_wide` (run id column ``index``, weights divided by their
sum,
as RegMix rounds them to 3 decimals).

In this one process: :func:`climb_bayes.model.fitting.fit_posterior` with the default priors; then

- ``seconds``: wall time of that call (MAP starts, compilation, NUTS, and the non-centred
  refit when the chains look stuck);
- ``health`` (the fit's verdict, :mod:`climb_bayes.model.health`), ``max_r_hat``, ``min_ess_bulk``,
  ``min_ess_tail``, ``divergences``: the numbers it was judged on; ``mean_tree_depth``,
  ``max_tree_depth``: ``log2(n_steps + 1)`` per draw; ``healthy``: the verdict is healthy
  (R-hat <= 1.01, bulk and tail ESS >= 400, no divergence, E-BFMI >= 0.3);
  ``centred``: the pooled sites the kept fit sampled centred (fewer after a kept refit);
  ``within_15_min``: ``seconds <= 900``;
- ``rho_climb_<domain>``: Spearman's rank correlation, over the held-out runs ``s``, between
  the posterior mean of the noise-free loss ``E[L_i(r_s, D) | pilots]``
  (:meth:`climb_bayes.model.loss_model.Law.predict_loss`) and the observed loss ``y_si``;
- ``rho_linear_<domain>``: the same for a linear regression on the mix (RegMix's linear variant),
  ``y_si ~ r_s . w_i`` with ``w_i`` least squares over the training runs (no intercept: the
  shares sum to 1, so a constant is already in their span);
- ``rho_*_mean``: the unweighted mean over the evaluated domains. RegMix's target is Pile-CC
  (``rho_*_pile_cc``).

One row per invocation is appended to ``--output``.
"""

import argparse
import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import arviz as az
import numpy as np
import numpyro
import pandas as pd
from scipy.stats import spearmanr

from benchmarks.records import append_row, commit
from climb_bayes.data.pilot_table import PilotTable
from climb_bayes.data.table_files import read_table
from climb_bayes.data.validation import validate_pilots
from climb_bayes.data.wide_layout import from_wide
from climb_bayes.fit import prior_report, sampling_report
from climb_bayes.model.fitting import Sampler, fit_posterior
from climb_bayes.model.health import HEALTHY, stored_health
from climb_bayes.model.law import INTERACTION_FORMS
from climb_bayes.model.posterior import posterior_from_idata
from climb_bayes.model.priors import Priors

REPO = Path(__file__).resolve().parents[1]
#: Training tokens of every 1M-parameter proxy run: the losses are read at step 1000
#: (regression_fitting/collect_loss_data.py, SELECT_STEP) of 512 sequences
#: (mixture_config/synthesize_mixture.py, global_batch_size) of 2048 tokens
#: (model_training/lit_gpt/config.py, tinyllama_1M block_size).
TOKENS = 1000 * 512 * 2048
#: RegMix's file names under ``--data``: (mixtures, losses) of each split.
FILES = {"train": ("train_mixture_1m.csv", "train_pile_loss_1m.csv"),
         "test": ("test_mixture_1m.csv", "test_pile_loss_1m.csv")}
#: Runs in each split of RegMix's published 1M-parameter data.
RUNS = {"train": 512, "test": 256}
#: Issue 14's bar on the time of the fit (2 cores).
SECONDS = 900.0
#: Prefix of every RegMix domain name, left out of the column names of the results.
DOMAIN_PREFIX = "the_pile_"


def missing_files(data: Path) -> list[str]:
    """RegMix's files that ``data`` lacks."""
    return [name for pair in FILES.values() for name in pair if not (data / name).is_file()]


def regmix_runs(data: Path, split: str, runs: int) -> pd.DataFrame:
    """The first ``runs`` runs of a split as a long pilot frame (not validated)."""
    mixtures_name, losses_name = FILES[split]
    mixtures = read_table(data / mixtures_name).head(runs)
    losses = read_table(data / losses_name)
    losses = losses[losses["index"].isin(mixtures["index"])]
    return from_wide(mixtures, losses, tokens=TOKENS, run_id_column="index", normalise=True,
                     paths=(str(data / mixtures_name), str(data / losses_name)))


def held_out(frame: pd.DataFrame, sources: list[str], targets: list[str]
             ) -> tuple[np.ndarray, np.ndarray]:
    """Shares ``(run, source)`` and observed losses ``(run, target)`` of a long frame."""
    shares = frame.groupby("run_id", sort=False)[[f"share_{source}" for source in sources]].first()
    losses = frame.assign(loss=pd.to_numeric(frame["loss"])).pivot(
        index="run_id", columns="language", values="loss")
    return (shares.to_numpy(np.float64),
            losses.reindex(index=shares.index, columns=targets).to_numpy(np.float64))


def linear_fit(table: PilotTable) -> np.ndarray:
    """Least-squares weights ``(source, target)`` of ``y_si = r_s . w_i`` on the pilot table."""
    arrays = table.arrays()
    observed = np.full((len(arrays.run_ids), len(table.targets)), np.nan)
    observed[arrays.point_run[arrays.obs_point], arrays.obs_target] = arrays.loss
    weights = np.empty((len(table.sources), len(table.targets)))
    for target in range(len(table.targets)):
        seen = np.isfinite(observed[:, target])
        weights[:, target] = np.linalg.lstsq(arrays.run_shares[seen], observed[seen, target],
                                             rcond=None)[0]
    return weights


def rank_correlations(predicted: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Spearman's rho per target (column), over the runs where the loss was observed."""
    rho = []
    for column in range(observed.shape[1]):
        seen = np.isfinite(observed[:, column])
        rho.append(spearmanr(predicted[seen, column], observed[seen, column]).statistic)
    return np.asarray(rho, dtype=np.float64)


def tree_depths(idata: az.InferenceData) -> np.ndarray:
    """Tree depth of every draw, ``log2(n_steps + 1)``."""
    return np.log2(np.asarray(idata.sample_stats["n_steps"]) + 1)


def bench(data: Path, train_runs: int, heldout_runs: int, form: str, sampler: Sampler) -> dict:
    """Fit, diagnose and score once; the results row."""
    table = validate_pilots(regmix_runs(data, "train", train_runs),
                            path=f"the first {train_runs} runs of {data}")
    shares, observed = held_out(regmix_runs(data, "test", heldout_runs), table.sources,
                                table.targets)
    start = time.perf_counter()
    idata = fit_posterior(table, Priors(), form, sampler)
    seconds = time.perf_counter() - start
    health = stored_health(idata)
    print(sampling_report(idata, health, seconds))
    print(f"fit health: {health.line}")
    print(prior_report(idata) or "the pilots inform every parameter")
    posterior = posterior_from_idata(idata, allow_broken=True)  # scored whatever its health
    climb = posterior.law.predict_loss(shares, np.full(len(shares), TOKENS)).mean(0)
    linear = shares @ linear_fit(table)
    depth = tree_depths(idata)
    row = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "commit": commit(),
        "cores": len(os.sched_getaffinity(0)), "train_runs": train_runs,
        "held_out": heldout_runs, "rows": len(table.frame), "form": form,
        "chains": sampler.chains, "warmup": sampler.warmup, "samples": sampler.samples,
        "seed": sampler.seed, "max_tree_depth_setting": sampler.max_tree_depth,
        "refit": sampler.refit, "centred": idata.posterior.attrs["centred"],
        "seconds": seconds, "health": health.verdict, "max_r_hat": health.max_r_hat,
        "min_ess_bulk": health.min_ess_bulk, "min_ess_tail": health.min_ess_tail,
        "divergences": health.divergences,
        "mean_tree_depth": float(depth.mean()), "max_tree_depth": float(depth.max()),
        "healthy": health.verdict == HEALTHY,
        "within_15_min": seconds <= SECONDS,
    }
    domains = [target.removeprefix(DOMAIN_PREFIX) for target in table.targets]
    for method, predicted in (("climb", climb), ("linear", linear)):
        rho = rank_correlations(predicted, observed)
        row[f"rho_{method}_mean"] = float(rho.mean())
        row.update({f"rho_{method}_{domain}": float(value)
                    for domain, value in zip(domains, rho, strict=True)})
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True,
                        help="the data/ folder of a clone of github.com/sail-sg/regmix")
    parser.add_argument("--train-runs", type=int, default=128,
                        help="fit the first N of RegMix's 512 training runs")
    parser.add_argument("--held-out", type=int, default=RUNS["test"],
                        help="score on the first N of RegMix's 256 held-out runs")
    parser.add_argument("--form", choices=sorted(INTERACTION_FORMS), default="source_saturating")
    parser.add_argument("--chains", type=int, default=2, help="R-hat needs at least 2")
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--samples", type=int, default=2000,
                        help="draws per chain (1000 left the min bulk ESS at 333)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-tree-depth", type=int, default=Sampler.max_tree_depth)
    parser.add_argument("--refit", action=argparse.BooleanOptionalAction, default=True,
                        help="sample a broken fit again with the transfer pairs in the "
                             "other parameterisation (as the fit command does)")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results"
                        / "regmix_fit.csv", help="CSV to append the results row to")
    args = parser.parse_args()
    missing = missing_files(args.data)
    if missing:
        parser.error(f"--data {args.data} lacks {', '.join(missing)}: pass the data/ folder of "
                     f"a clone of https://github.com/sail-sg/regmix (docs/regmix.md)")
    for name, value, split in (("--train-runs", args.train_runs, "train"),
                               ("--held-out", args.held_out, "test")):
        if not 3 <= value <= RUNS[split]:
            parser.error(f"{name} must be between 3 and {RUNS[split]}; got {value}")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sampler = Sampler(chains=args.chains, warmup=args.warmup, samples=args.samples,
                      seed=args.seed, max_tree_depth=args.max_tree_depth, refit=args.refit,
                      progress_bar=False)
    numpyro.set_host_device_count(sampler.chains)  # chains in parallel, as the fit CLI runs them
    row = bench(args.data, args.train_runs, args.held_out, args.form, sampler)
    table = append_row(row, args.output)
    print(table.tail(1).T.to_string(header=False, float_format="{:.4g}".format))
    print(f"appended to {args.output}")


if __name__ == "__main__":
    main()
