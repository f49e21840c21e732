"""Real end-to-end study: pilots on real text, fit, solve, then train every mix at the target.

    python benchmarks/real_study.py            # LibreOffice de/en/es/fr, gpt_tiny (about 1 h)
    python benchmarks/real_study.py --quick    # Django de/en/fr, toy budgets (minutes; CI runs it)
    python benchmarks/real_study.py --pilots climb_bayes/data/example/pilots.csv
                                               # reuse a finished sweep (the bundled example
                                               # is this study's own LibreOffice sweep)

Each stage is the command a user runs, in a subprocess, in this order:

1. ``python -m trainers.corpus``: the corpus (skipped when ``--corpus`` already holds one);
2. ``python -m climb_bayes.design`` and ``python train.py -m experiment=pilots``: the paper's
   ``3 x m x 2`` pilot sweep plus monolingual runs (skipped with ``--pilots``);
3. ``python -m climb_bayes.fit``: the posterior;
4. ``python -m climb_bayes.solve``: every mix (``posterior_mean``, ``plugin``, ``climb_two_step``,
   ``robust``, ``isolated`` and the baselines ``uniform``, ``natural``, ``temperature``,
   ``unimax``) for the target budget, with the corpus's availability;
5. ``python train.py -m +mix=A,B,... experiment.seed=...``: the full-size training of every
   distinct mix (mixes that coincide to within ``1e-3`` in every share are trained once).

Then, in this process, each trained run's per-language validation loss at the target budget is
set beside the posterior's prediction for that mix and budget (:mod:`climb_bayes.predict`):
the posterior mean, and the 90% interval of a new observed loss (with the fitted observation
noise). Per mix, the equally weighted objective ``W = mean_i L_i`` measured (mean over seeds)
and predicted. Every stage skips work already done (the trainers resume and skip finished
runs; fit and solve are skipped when their outputs exist), so a killed study resumes.

Outputs in ``--workdir`` (and, without ``--quick``, copied to ``benchmarks/results/``):
``real_study_languages.csv`` (one row per mix, seed and language), ``real_study_mixes.csv``
(one row per mix) and ``real_study_summary.csv``.
"""

import argparse
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import jax
import numpy as np
import pandas as pd

from climb_bayes.pilots import SHARE_PREFIX
from climb_bayes.posterior import read_posterior
from climb_bayes.predict import posterior_losses, predictive_losses, summarise

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
#: Mixes whose shares differ by less than this everywhere are trained once.
SAME_MIX = 1e-3


@dataclass(frozen=True)
class Study:
    """What to run: corpus, pilot budgets, the target budget and the sampler size."""

    source: str
    languages: tuple[str, ...]
    vocab_size: int
    model: str
    pilot_budgets: tuple[float, float]
    target_tokens: float
    max_epochs: int
    seeds: tuple[int, ...]
    sampler: tuple[str, ...]


FULL = Study(source="libreoffice", languages=("de", "en", "es", "fr"), vocab_size=8192,
             model="gpt_tiny", pilot_budgets=(1e5, 3e5), target_tokens=1e6, max_epochs=4,
             seeds=(0,), sampler=("sampler.progress_bar=false",))
QUICK = Study(source="django", languages=("de", "en", "fr"), vocab_size=512, model="gpt_tiny",
              pilot_budgets=(6e3, 1.8e4), target_tokens=4e4, max_epochs=10, seeds=(0,),
              sampler=("sampler.chains=2", "sampler.warmup=500", "sampler.samples=500",
                       "sampler.map_starts=4", "sampler.progress_bar=false"))
#: Trainer overrides of every training stage: one core per run, two runs at a time.
TRAINER = ("trainer.threads=1", "trainer.progress_bar=false", "trainer.loggers=[csv]")


def run(*arguments: str) -> None:
    """Run one stage (``python ARGS`` in the repository); stop the study if it fails."""
    start = time.perf_counter()
    print("$ python " + " ".join(arguments), flush=True)
    result = subprocess.run([sys.executable, *arguments], cwd=REPO, check=False)
    if result.returncode:
        sys.exit(f"stage failed with exit status {result.returncode}: python "
                 + " ".join(arguments))
    print(f"  ({time.perf_counter() - start:.0f} s)", flush=True)


def languages_list(study: Study) -> str:
    """The study's languages as a Hydra list, ``[de,en,fr]``."""
    return "[" + ",".join(study.languages) + "]"


def make_corpus(study: Study, corpus: Path) -> None:
    """Build the corpus unless ``corpus`` already holds one."""
    if not (corpus / "corpus.json").is_file():
        run("-m", "trainers.corpus", f"source={study.source}",
            f"languages={languages_list(study)}", f"output={corpus}",
            f"vocab_size={study.vocab_size}")


def run_pilots(study: Study, corpus: Path, workdir: Path) -> Path:
    """The pilot design and sweep; returns the collected pilot table."""
    pilots = workdir / "pilots"
    budgets = "[" + ",".join(f"{b:g}" for b in study.pilot_budgets) + "]"
    if not (pilots / "design.csv").is_file():
        run("-m", "climb_bayes.design", f"languages={languages_list(study)}",
            f"budgets={budgets}", f"output={pilots / 'design.csv'}")
    run("train.py", "-m", "experiment=pilots", f"model={study.model}", *TRAINER,
        f"data={study.source}", f"data.corpus={corpus}",
        f"experiment.design={pilots / 'design.csv'}", f"experiment.output={pilots}",
        f"hydra.sweep.dir={workdir / 'hydra' / 'pilots'}")
    return pilots / "pilots.csv"


def fit_and_solve(study: Study, pilots: Path, corpus: Path, workdir: Path) -> Path:
    """The posterior and the mixes; returns the solve's output directory (``.../conf/mix``)."""
    fit, mixes = workdir / "fit", workdir / "conf" / "mix"
    if not (fit / "posterior.nc").is_file():
        run("-m", "climb_bayes.fit", f"pilots={pilots}", f"output={fit}", *study.sampler)
    if not (mixes / "comparison.csv").is_file():
        run("-m", "climb_bayes.solve", f"posterior={fit / 'posterior.nc'}",
            f"target_tokens={study.target_tokens:g}", f"available={corpus / 'languages.csv'}",
            f"max_epochs={study.max_epochs}", f"output={mixes}")
    return mixes


def distinct_mixes(comparison: pd.DataFrame) -> dict[str, str]:
    """Each mix's representative: the first mix (in the solve's order) with the same shares."""
    shares = comparison.filter(like=SHARE_PREFIX).to_numpy()
    names = comparison["mix"].tolist()
    representative = {}
    for i, name in enumerate(names):
        same = [j for j in range(i + 1) if np.abs(shares[j] - shares[i]).max() < SAME_MIX]
        representative[name] = names[same[0]]
    return representative


def train_mixes(study: Study, corpus: Path, workdir: Path, mixes: list[str]) -> Path:
    """Full-size training of ``mixes`` for every seed (a Hydra multirun); returns its output."""
    full = workdir / "full" / f"{study.target_tokens:g}"
    run("train.py", "-m", f"model={study.model}", *TRAINER, "hydra/launcher=local",
        f"data={study.source}", f"data.corpus={corpus}",
        f"hydra.searchpath=[file://{workdir / 'conf'}]",
        "+mix=" + ",".join(mixes), f"experiment.seed={','.join(map(str, study.seeds))}",
        f"experiment.tokens={study.target_tokens:g}", f"data.max_epochs={study.max_epochs}",
        f"experiment.output={full}/seed${{experiment.seed}}",
        "experiment.run_id=${hydra:runtime.choices.mix}",
        f"hydra.sweep.dir={workdir / 'hydra' / 'full'}")
    return full


def measured_losses(full: Path, study: Study, representative: dict[str, str]) -> pd.DataFrame:
    """Validation loss at the target budget of every mix, seed and language."""
    rows = []
    for mix, trained in representative.items():
        for seed in study.seeds:
            table = pd.read_csv(full / f"seed{seed}" / trained / "pilots.csv")
            final = table[table["tokens"] == table["tokens"].max()]
            for language, loss in zip(final["language"], final["loss"], strict=True):
                rows.append({"mix": mix, "trained_as": trained, "seed": seed,
                             "language": language, "measured": loss})
    return pd.DataFrame(rows)


def predictions(posterior_path: Path, comparison: pd.DataFrame, target_tokens: float,
                seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per (mix, language), as ``python -m climb_bayes.predict`` reports it, and per mix: the
    posterior mean and the 90% predictive interval of a new run's loss."""
    posterior = read_posterior(posterior_path)
    shares = comparison[[f"{SHARE_PREFIX}{s}" for s in posterior.sources]].to_numpy()
    budgets = np.full(len(shares), target_tokens)
    mean = posterior_losses(posterior, shares, budgets)
    observed = np.asarray(predictive_losses(posterior, mean, jax.random.PRNGKey(seed)))
    mean = np.asarray(mean)
    per_language = summarise(mean, observed, comparison, budgets, posterior.targets)[
        ["mix", "language", "mean", "pred_q05", "pred_q95"]].rename(columns={"mean": "predicted"})
    weighted = observed.mean(axis=2)  # a new run's equally weighted loss, per draw
    per_mix = pd.DataFrame({
        "mix": comparison["mix"], "predicted_W": mean.mean(axis=2).mean(0),
        "pred_W_q05": np.quantile(weighted, 0.05, axis=0),
        "pred_W_q95": np.quantile(weighted, 0.95, axis=0)})
    return per_language, per_mix


def tables(measured: pd.DataFrame, per_language: pd.DataFrame, per_mix: pd.DataFrame
           ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Measured beside predicted: per language, per mix, and a one-row summary."""
    languages = measured.merge(per_language, on=["mix", "language"], validate="many_to_one")
    languages["inside_90"] = languages["measured"].between(languages["pred_q05"],
                                                           languages["pred_q95"])
    run_w = languages.groupby(["mix", "seed"])["measured"].mean().rename("measured_W")
    mixes = (run_w.groupby("mix").agg(measured_W="mean", measured_W_sd="std").reset_index()
             .merge(per_mix, on="mix"))
    mixes["inside_90"] = mixes["measured_W"].between(mixes["pred_W_q05"], mixes["pred_W_q95"])
    mixes["measured_rank"] = mixes["measured_W"].rank(method="min").astype(int)
    mixes["predicted_rank"] = mixes["predicted_W"].rank(method="min").astype(int)
    mixes["regret_vs_best_measured"] = mixes["measured_W"] - mixes["measured_W"].min()
    mixes = mixes.sort_values("measured_W").reset_index(drop=True)
    best = mixes.set_index("mix")["measured_W"]
    summary = pd.DataFrame([{
        "mixes": len(mixes), "distinct_trained": languages["trained_as"].nunique(),
        "seeds": languages["seed"].nunique(),
        "coverage_90_language": languages["inside_90"].mean(),
        "coverage_90_W": mixes["inside_90"].mean(),
        "rank_correlation": mixes["measured_W"].corr(mixes["predicted_W"], method="spearman"),
        "mean_abs_error_W": (mixes["measured_W"] - mixes["predicted_W"]).abs().mean(),
        "posterior_mean_minus_uniform": best["posterior_mean"] - best["uniform"],
        "posterior_mean_minus_temperature": best["posterior_mean"] - best["temperature"],
        "best_measured": mixes["mix"].iloc[0]}])
    return languages, mixes, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Django corpus, toy budgets")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the study's runs go (default runs/real_study[_quick])")
    parser.add_argument("--corpus", type=Path, default=None,
                        help="corpus directory (built when missing; default corpora/<source>)")
    parser.add_argument("--pilots", type=Path, default=None,
                        help="a finished pilot table to use instead of running the sweep")
    parser.add_argument("--target-tokens", type=float, default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    args = parser.parse_args()
    study = QUICK if args.quick else FULL
    study = replace(study, target_tokens=args.target_tokens or study.target_tokens,
                    seeds=tuple(args.seeds) if args.seeds else study.seeds)
    workdir = (args.workdir or REPO / "runs" / f"real_study{'_quick' if args.quick else ''}"
               ).resolve()
    corpus = (args.corpus or REPO / "corpora" / study.source).resolve()
    make_corpus(study, corpus)
    pilots = args.pilots.resolve() if args.pilots else run_pilots(study, corpus, workdir)
    mix_dir = fit_and_solve(study, pilots, corpus, workdir)
    comparison = pd.read_csv(mix_dir / "comparison.csv")
    representative = distinct_mixes(comparison)
    full = train_mixes(study, corpus, workdir, sorted(set(representative.values())))
    per_language, per_mix = predictions(workdir / "fit" / "posterior.nc", comparison,
                                        study.target_tokens)
    languages, mixes, summary = tables(measured_losses(full, study, representative),
                                       per_language, per_mix)
    outputs = {"real_study_languages.csv": languages, "real_study_mixes.csv": mixes,
               "real_study_summary.csv": summary}
    for name, table in outputs.items():
        table.to_csv(workdir / name, index=False)
        if not args.quick:
            RESULTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(workdir / name, RESULTS / name)
    fmt = "{:.4g}".format
    print(mixes.to_string(index=False, float_format=fmt))
    print(summary.T.to_string(header=False, float_format=fmt))
    print(f"\npilots {pilots}; target {study.target_tokens:g} tokens, {len(study.seeds)} "
          f"seed(s); tables in {workdir}")


if __name__ == "__main__":
    main()
