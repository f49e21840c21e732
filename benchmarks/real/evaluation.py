"""The real study's evaluation: the posterior's and the point fit's predictions of every
finished held-out run beside its measured losses, scored per budget and written as the study's
tables."""

import json
import shutil
from pathlib import Path

import jax
import numpy as np
import pandas as pd
from scipy.stats import norm

from benchmarks.point_fit import fit_point
from benchmarks.real.mixes import MIXES
from benchmarks.real.stages import RESULTS, Study, heldout_dir
from climb_bayes.data.pilot_table import SHARE_PREFIX
from climb_bayes.data.table_files import read_pilots
from climb_bayes.model.fitting import pilot_rows
from climb_bayes.model.loss_model import Law
from climb_bayes.model.posterior import Posterior, read_posterior
from climb_bayes.predict import predictive_losses, summarise

#: The standard normal 95% quantile: a 90% interval spans 2 x 1.645 standard deviations.
NORMAL_Q95 = float(norm.ppf(0.95))


def measured_losses(workdir: Path, budgets: dict[str, float], seeds: tuple[int, ...]
                    ) -> pd.DataFrame:
    """Validation loss at the end of every finished held-out run: one row per budget, mix,
    seed and language (``budget`` is the label, e.g. ``3x``)."""
    rows = []
    for label, tokens in budgets.items():
        for seed in seeds:
            for mix in MIXES:
                path = heldout_dir(workdir, tokens) / f"seed{seed}" / mix / "pilots.csv"
                if not path.is_file():
                    continue
                table = pd.read_csv(path)
                final = table[table["tokens"] == table["tokens"].max()]
                rows += [{"budget": label, "tokens": tokens, "mix": mix, "seed": seed,
                          "language": language, "measured": loss}
                         for language, loss in zip(final["language"], final["loss"],
                                                   strict=True)]
    columns = ["budget", "tokens", "mix", "seed", "language", "measured"]
    return pd.DataFrame(rows, columns=columns)


def predictions(posterior: Posterior, mixes: pd.DataFrame, tokens: float, seed: int = 0
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The posterior's prediction of every mix at ``tokens``, as ``climb_bayes.predict`` makes
    it: per (mix, language) the posterior mean of the loss and the 90% interval of a new run's
    observed loss (with the fitted noise); per mix the same for ``W = mean_i L_i``."""
    shares = mixes[[f"{SHARE_PREFIX}{s}" for s in posterior.sources]].to_numpy()
    budgets = np.full(len(shares), tokens)
    law_key, noise_key = jax.random.split(jax.random.PRNGKey(seed))
    mean = posterior.law.predict_loss(shares, budgets, law_key)
    observed = np.asarray(predictive_losses(posterior, mean, budgets, noise_key))
    mean = np.asarray(mean)
    per_language = summarise(mean, observed, mixes, budgets, posterior.targets)[
        ["mix", "language", "mean", "pred_q05", "pred_q95"]].rename(columns={"mean": "predicted"})
    weighted = observed.mean(axis=2)  # a new run's equally weighted loss, per draw
    per_mix = pd.DataFrame({
        "mix": mixes["mix"], "predicted_W": mean.mean(axis=2).mean(0),
        "pred_W_q05": np.quantile(weighted, 0.05, axis=0),
        "pred_W_q95": np.quantile(weighted, 0.95, axis=0)})
    return per_language, per_mix


def point_law(pilots: Path) -> Law:
    """The point fit of the law (:func:`benchmarks.point_fit.fit_point`, its defaults) on the
    rows the posterior's fit uses (each run's final loss)."""
    return fit_point(pilot_rows(read_pilots(pilots), "final")).law


def point_predictions(law: Law, mixes: pd.DataFrame, tokens: float) -> pd.DataFrame:
    """The point fit's prediction of every mix at ``tokens``: per (mix, language)
    ``point_predicted``."""
    shares = mixes[[f"{SHARE_PREFIX}{s}" for s in law.sources]].to_numpy()
    loss = law.predict_loss(shares, np.full(len(shares), tokens))[0]
    return pd.DataFrame([{"mix": mix, "language": language, "point_predicted": float(value)}
                         for mix, row in zip(mixes["mix"], loss, strict=True)
                         for language, value in zip(law.targets, row, strict=True)])


def score(measured: pd.DataFrame, per_language: pd.DataFrame, per_mix: pd.DataFrame
          ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, float | str]]:
    """One budget's runs beside their predictions: per (mix, seed, language), per mix, and the
    scores.

    Over the per-(mix, seed, language) losses ``y`` with posterior mean ``m`` and 90%
    predictive interval ``[q05, q95]``: ``coverage_90 = mean(q05 <= y <= q95)``,
    ``mae = mean|m - y|`` and ``bias = mean(m - y)`` (positive: the posterior predicts higher
    losses than measured), and ``scaled_error_rms = sqrt(mean(z^2))`` with
    ``z = (y - m) / ((q95 - q05) / 3.29)``, each error in units of the standard deviation its
    interval implies: 1 when the intervals are as wide as the errors (Gaussian), whatever the
    errors' shape, which coverage alone mixes up with the width. Across mixes:
    ``rank_correlation``, Spearman's correlation of the measured ``W`` (mean over seeds of the
    mean over languages) with its posterior mean. The same three for the point fit's
    prediction ``point_predicted`` (a column of ``per_language``) as ``point_mae``,
    ``point_bias`` and ``point_rank_correlation``.
    """
    languages = measured.merge(per_language, on=["mix", "language"], validate="many_to_one")
    languages["error"] = languages["predicted"] - languages["measured"]
    languages["point_error"] = languages["point_predicted"] - languages["measured"]
    languages["inside_90"] = languages["measured"].between(languages["pred_q05"],
                                                           languages["pred_q95"])
    implied_sd = (languages["pred_q95"] - languages["pred_q05"]) / (2 * NORMAL_Q95)
    languages["scaled_error"] = -languages["error"] / implied_sd
    run_w = languages.groupby(["mix", "seed"])["measured"].mean().rename("measured_W")
    point_w = languages.groupby("mix")["point_predicted"].mean().rename("point_W")
    mixes = (run_w.groupby("mix").agg(seeds="size", measured_W="mean", measured_W_sd="std")
             .reset_index().merge(per_mix, on="mix").merge(point_w, on="mix"))
    mixes["inside_90"] = mixes["measured_W"].between(mixes["pred_W_q05"], mixes["pred_W_q95"])
    mixes["measured_rank"] = mixes["measured_W"].rank(method="min").astype(int)
    mixes["predicted_rank"] = mixes["predicted_W"].rank(method="min").astype(int)
    mixes = mixes.sort_values("measured_W").reset_index(drop=True)
    scores = {
        "coverage_90": languages["inside_90"].mean(),
        "mae": languages["error"].abs().mean(), "bias": languages["error"].mean(),
        "scaled_error_rms": float(np.sqrt((languages["scaled_error"] ** 2).mean())),
        "rank_correlation": mixes["measured_W"].corr(mixes["predicted_W"], method="spearman"),
        "best_measured": mixes["mix"].iloc[0],
        "best_predicted": mixes.loc[mixes["predicted_W"].idxmin(), "mix"],
        "point_mae": languages["point_error"].abs().mean(),
        "point_bias": languages["point_error"].mean(),
        "point_rank_correlation": mixes["measured_W"].corr(mixes["point_W"], method="spearman"),
        "best_point": mixes.loc[mixes["point_W"].idxmin(), "mix"]}
    return languages, mixes, scores


def evaluate(study: Study, workdir: Path, corpus: Path, posterior_path: Path,
             copy_results: bool) -> pd.DataFrame:
    """Score the posterior at ``posterior_path`` on every finished held-out run; write the
    tables to ``workdir`` (and ``benchmarks/results/`` when ``copy_results``); return the
    summary (one row per held-out budget)."""
    posterior = read_posterior(posterior_path, allow_broken=True)
    version = json.loads((posterior_path.parent / "version.json").read_text())
    health = posterior.health
    mixes = pd.read_csv(workdir / "heldout" / "mixes.csv")
    largest = pd.read_csv(workdir / "pilots" / "pilots.csv")["tokens"].max()
    budgets = {f"{m:g}x": m * largest for m in study.multiples}
    measured = measured_losses(workdir, budgets, study.seeds)
    point = point_law(workdir / "pilots" / "pilots.csv") if len(measured) else None
    language_tables, mix_tables, summary = [], [], []
    for label, tokens in budgets.items():
        runs = measured[measured["budget"] == label]
        row: dict[str, object] = {"budget": label, "tokens": tokens,
                                  "runs": len(runs.groupby(["mix", "seed"])),
                                  "runs_planned": len(MIXES) * len(study.seeds)}
        if point is not None and len(runs):
            per_language, per_mix = predictions(posterior, mixes, tokens)
            per_language = per_language.merge(point_predictions(point, mixes, tokens),
                on=["mix", "language"], validate="one_to_one")
            languages, mix_scores, scores = score(runs, per_language, per_mix)
            language_tables.append(languages)
            mix_tables.append(mix_scores.assign(budget=label, tokens=tokens))
            row |= scores
        summary.append(row | {
            "health": health.verdict, "health_reasons": "; ".join(health.reasons),
            "max_r_hat": health.max_r_hat, "min_ess_bulk": health.min_ess_bulk,
            "min_ess_tail": health.min_ess_tail, "divergences": health.divergences,
            "transitions": health.transitions, "min_bfmi": health.min_bfmi,
            "model_version": version["model_version"], "commit": version["commit"],
            "fit_seconds": version["fit_seconds"]})
    mix_columns = ["budget", "tokens", "mix", "seeds", "measured_W", "measured_W_sd",
                   "predicted_W", "pred_W_q05", "pred_W_q95", "inside_90", "measured_rank",
                   "predicted_rank", "point_W"]
    outputs = {
        "real_study_languages.csv": pd.concat(language_tables) if language_tables else measured,
        "real_study_mixes.csv": (pd.concat(mix_tables)[mix_columns].merge(mixes, on="mix")
                                 if mix_tables else mixes),
        "real_study_summary.csv": pd.DataFrame(summary),
        "real_study_corpus.csv": pd.read_csv(corpus / "languages.csv")}
    for name, table in outputs.items():
        table.to_csv(workdir / name, index=False)
        if copy_results:
            RESULTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(workdir / name, RESULTS / name)
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        fmt = "{:.4g}".format
        if mix_tables:
            print(outputs["real_study_mixes.csv"][mix_columns].to_string(index=False,
                                                                         float_format=fmt))
        print(outputs["real_study_summary.csv"].T.to_string(header=False, float_format=fmt))
    print(f"tables in {workdir}", flush=True)
    return outputs["real_study_summary.csv"]
