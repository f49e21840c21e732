"""Real study: pilots on real text, fixed held-out mixes trained far beyond them, and a cheap,
re-runnable evaluation of the current posterior against those runs.

    python -m benchmarks.real_study --workdir DIR             # LibreOffice de/en/ja/ru/zh_cn
    python -m benchmarks.real_study --workdir DIR --evaluate  # refit if the model changed; score
    python -m benchmarks.real_study --workdir DIR --evaluate --refit   # refit in any case
    python -m benchmarks.real_study --quick                   # Django de/en/fr, toy budgets (CI)

Design of the full study (``docs/real_study.md`` says more):

* **Languages**: de, en, ja, ru and zh_cn from the LibreOffice help corpus
  (``python -m trainers.corpus source=libreoffice``), with a shared byte-level BPE tokeniser
  of 1024 tokens. Four scripts (Latin for de and en, Cyrillic, Japanese kana with kanji, Chinese
  Han, which shares characters with Japanese) and 2.3x between the largest and the smallest
  training split (1.96M tokens of de to 0.86M of ja). Hindi, the only much smaller language
  (0.68 MB of text against ja's 2.4 MB), is left out: its monolingual pilot at the largest
  budget would need over 6 epochs of its data, above the repetition cap of 4, and the cap
  would hold it under 7% in every held-out mix, which squeezes the mixes together.
* **Network and tokeniser**: ``gpt_tiny`` with ``model.context=32`` (512 tokens per optimiser
  step, twice the steps per token of its 64-token context) and a 1024-token vocabulary (the
  output layer dominates the cost of so small a network: 1024 trains at 17-20k tokens/s per
  core here, 2048 at 11-12k, 8192 at under 5k). So configured, a uniform run of 1.5e5 tokens
  ends at or below each language's unigram cross-entropy, and one of 1e6 tokens 1.5-2.1 nats
  below it. With 2048 tokens and context 64, a run of 3e5 tokens was still at that level.
* **Pilots**: the paper's ``3 x m x 2`` design plus monolingual runs (``python -m
  climb_bayes.design``) at three budgets 2e5, 5.5e5 and 1.5e6 tokens (2.01 e-folds), run by
  ``python train.py -m experiment=pilots``: 60 runs.
* **Held-out runs**: the five mixes of :data:`MIXES`, fixed before any fit, each trained with
  seeds 0, 1 and 2 at 3x and 10x the largest pilot budget (4.5e6 and 1.5e7 tokens): 30 runs.
  Since no mix depends on the fit, a new statistical model is scored on the same runs.
* **Evaluation** (:func:`evaluate`): fit the current package's posterior on the pilot table
  (``python -m climb_bayes.fit`` with its defaults), predict every held-out mix at its budget
  with :mod:`climb_bayes.predict`'s functions and score it per budget (:func:`score`), beside
  the point fit of the same law on the same pilot rows (:func:`point_predictions`), the
  estimate a point-fitting CLIMB would use.

Stages, each skipping finished work, so killing the study and running the same command again
continues where it stopped: the corpus (skipped when it exists), the design, the pilot sweep
(finished runs are skipped, interrupted ones resume from their checkpoint), the held-out mixes
(written once), then for each held-out budget its runs (a ``train.py`` multirun, 2 at a time)
and an evaluation, which fits the posterior first when the current model version
(:func:`model_version`) has no fit yet. No training depends on a fit: a failed fit leaves the
runs going and is retried at the next evaluation. ``--evaluate`` runs only the fit and the
evaluation. The plan (runs, tokens, estimated hours) is printed before the first run.

``--quick`` runs the same stages on the Django corpus (de, en, fr) with the README's tiny
quick-start pilots (6e3, 1.8e4 and 5.4e4 tokens), held-out runs at 3x only, one seed, a small
sampler and a repetition cap of 20 epochs (the corpus has about 14k training tokens per
language, and the 3x runs train on 1.6e5); ``--pilots`` reuses a finished pilot table
instead of running the sweep.

**The record.** The full study mirrors what it cannot make again cheaply into
``benchmarks/results/real_study_runs/`` (:data:`RECORD`), once a minute while it trains and
after every stage: the design, the held-out mixes, the corpus's ``languages.csv`` and the loss
table of every finished run (a few kilobytes each). Committed in parts, the record carries
the study across machines: on a fresh work directory the study restores the record first, so
recorded runs are not trained again. It refuses to restore into a corpus whose
``languages.csv`` differs from the recorded one (the runs would not be comparable).

Outputs in ``--workdir`` (and, without ``--quick``, copied to ``benchmarks/results/``):
``real_study_languages.csv`` (one row per budget, mix, seed and language),
``real_study_mixes.csv`` (one row per budget and mix), ``real_study_summary.csv`` (one row per
budget: the scores and the fit's health) and ``real_study_corpus.csv`` (the corpus's
``languages.csv``).
"""

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import yaml

from benchmarks.point_fit import fit_point
from climb_bayes.data.pilot_table import SHARE_PREFIX, read_pilots
from climb_bayes.decide.baselines import temperature_mix
from climb_bayes.fit import pilot_rows
from climb_bayes.model.loss_model import Law
from climb_bayes.model.posterior import Posterior, read_posterior
from climb_bayes.predict import predictive_losses, summarise

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
#: ``conf/hydra/launcher/local.yaml``: runs trained at a time.
PARALLEL_RUNS = 2
#: Seconds a run spends outside training (start-up, reading the corpus, validation), for the plan.
RUN_OVERHEAD_S = 25.0
#: The held-out mixes: name -> exponent ``e`` of ``r_i ∝ A_i^e`` (see :func:`heldout_mixes`).
MIXES = {"skew_large": 3.0, "natural": 1.0, "temperature": 0.3, "uniform": 0.0,
         "skew_small": -1.0}
#: Caps are lowered by this fraction, so that a capped share is not refused by the trainer's
#: epoch check for a rounding error.
CAP_MARGIN = 1e-9
#: Where the full study keeps its record of finished runs (see the module docstring).
RECORD = RESULTS / "real_study_runs"
#: Seconds between two updates of the record while a stage trains.
RECORD_INTERVAL_S = 60.0
#: Fit status with ``keep_broken=true`` when the fit is broken: posterior.nc is still written.
FIT_BROKEN_STATUS = 3
#: What the fit's result depends on in this repository (hashed into the model version).
MODEL_FILES = ("climb_bayes/**/*.py", "conf/fit.yaml", "conf/model/*saturating*.yaml")


@dataclass(frozen=True)
class Study:
    """What to run: corpus, network, pilot budgets, held-out budgets, seeds, sampler."""

    source: str
    languages: tuple[str, ...]
    vocab_size: int
    network: tuple[str, ...]  # train.py overrides of the network
    pilot_budgets: tuple[float, ...]
    multiples: tuple[float, ...]  # held-out budgets, in units of the largest pilot budget
    max_epochs: int  # repetition cap of every run (data.max_epochs)
    seeds: tuple[int, ...]  # of every held-out mix
    sampler: tuple[str, ...]  # climb_bayes.fit overrides
    tokens_per_second: float  # one run's measured training speed, for the plan


FULL = Study(source="libreoffice", languages=("de", "en", "ja", "ru", "zh_cn"), vocab_size=1024,
             network=("model=gpt_tiny", "model.context=32"),
             pilot_budgets=(2e5, 5.5e5, 1.5e6), multiples=(3.0, 10.0), max_epochs=4,
             seeds=(0, 1, 2), sampler=("sampler.progress_bar=false",), tokens_per_second=18e3)
QUICK = Study(source="django", languages=("de", "en", "fr"), vocab_size=512,
              network=("model=gpt_tiny",), pilot_budgets=(6e3, 1.8e4, 5.4e4),
              multiples=(3.0,), max_epochs=20, seeds=(0,),
              sampler=("sampler.chains=2", "sampler.warmup=500", "sampler.samples=500",
                       "sampler.map_starts=4", "sampler.progress_bar=false"),
              tokens_per_second=20e3)
#: Trainer overrides of every training stage: one core per run, two runs at a time.
TRAINER = ("trainer.threads=1", "trainer.progress_bar=false", "trainer.loggers=[csv]")


# ----------------------------------------------------------------------------- running stages


def run(*arguments: str) -> int:
    """Run ``python ARGS`` in the repository and return its exit status."""
    start = time.perf_counter()
    print("$ python " + " ".join(arguments), flush=True)
    status = subprocess.run([sys.executable, *arguments], cwd=REPO, check=False).returncode
    print(f"  ({time.perf_counter() - start:.0f} s, exit status {status})", flush=True)
    return status


def run_or_stop(*arguments: str) -> None:
    """Run one stage; stop the study if it fails."""
    if status := run(*arguments):
        sys.exit(f"stage failed with exit status {status}: python " + " ".join(arguments))


def hydra_list(values: tuple[str, ...] | list[str]) -> str:
    """``[de,en,fr]``."""
    return "[" + ",".join(values) + "]"


def make_corpus(study: Study, corpus: Path) -> None:
    """Build the corpus unless ``corpus`` already holds one."""
    if not (corpus / "corpus.json").is_file():
        run_or_stop("-m", "trainers.corpus", f"source={study.source}",
                    f"languages={hydra_list(study.languages)}", f"output={corpus}",
                    f"vocab_size={study.vocab_size}")


def pilot_plan(study: Study, workdir: Path, given: Path | None) -> pd.DataFrame:
    """The pilot runs (``run_id``, ``tokens``): the design, written now if missing, or the
    final checkpoints of a given pilot table, which is copied to ``pilots/pilots.csv``."""
    pilots = workdir / "pilots"
    pilots.mkdir(parents=True, exist_ok=True)
    if given is not None:
        if given.resolve() != (pilots / "pilots.csv").resolve():
            shutil.copyfile(given, pilots / "pilots.csv")
        return pd.read_csv(given).groupby("run_id", as_index=False)["tokens"].max()
    if not (pilots / "design.csv").is_file():
        budgets = "[" + ",".join(f"{b:g}" for b in study.pilot_budgets) + "]"
        run_or_stop("-m", "climb_bayes.design", f"languages={hydra_list(study.languages)}",
                    f"budgets={budgets}", f"output={pilots / 'design.csv'}")
    return pd.read_csv(pilots / "design.csv")[["run_id", "tokens"]]


def run_pilots(study: Study, corpus: Path, workdir: Path) -> None:
    """The pilot sweep over the design; collected into ``pilots/pilots.csv``."""
    pilots = workdir / "pilots"
    run_or_stop("train.py", "-m", "experiment=pilots", *study.network, *TRAINER,
                f"data={study.source}", f"data.corpus={corpus}",
                f"data.max_epochs={study.max_epochs}",
                f"experiment.design={pilots / 'design.csv'}", f"experiment.output={pilots}",
                f"hydra.sweep.dir={workdir / 'hydra' / 'pilots'}")


# ----------------------------------------------------------------------------- held-out mixes


def capped_shares(shares: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """The mix closest in proportion to ``shares`` that respects the caps (water-filling):
    ``r_i = min(c_i, lambda * s_i)`` with ``lambda`` such that ``sum_i r_i = 1``.

    Capped languages are held at their cap and the rest is spread over the others in
    proportion to ``shares``, again and again until no share exceeds its cap. Needs
    ``sum_i c_i >= 1``. Uniform ``shares`` give UniMax (Chung et al. 2023).
    """
    if caps.sum() < 1.0:
        raise ValueError(f"the caps {caps} sum to less than 1: no mix fits them")
    result = np.zeros_like(shares, dtype=np.float64)
    free = np.ones(len(shares), dtype=bool)
    while True:
        result[free] = (1.0 - result[~free].sum()) * shares[free] / shares[free].sum()
        over = free & (result > caps)
        if not over.any():
            return result
        result[over] = caps[over]
        free &= ~over


def heldout_mixes(available: pd.Series, budget: float, max_epochs: float) -> pd.DataFrame:
    """The held-out mixes: for each ``(name, e)`` of :data:`MIXES` the temperature mix
    ``r_i = A_i^e / sum_j A_j^e`` over the training tokens ``A_i`` of each language, capped at
    ``c_i = max_epochs * A_i / budget`` (less :data:`CAP_MARGIN`) by :func:`capped_shares`.

    ``e = 1`` is the natural mix (proportional to the data), ``e = 0.3`` mT5's temperature
    sampling, ``e = 0`` uniform (UniMax where a cap binds), ``e = 3`` skewed towards the largest
    corpora and ``e = -1`` towards the smallest. ``budget`` is the largest held-out budget, so
    every mix respects the caps at every held-out budget; each mix is trained unchanged at all
    of them.
    """
    values = available.to_numpy(dtype=np.float64)
    caps = max_epochs * values / budget * (1 - CAP_MARGIN)
    rows = [{"mix": name, "exponent": exponent,
             **{f"{SHARE_PREFIX}{language}": share for language, share in
                zip(available.index, capped_shares(temperature_mix(values, exponent), caps),
                    strict=True)}}
            for name, exponent in MIXES.items()]
    return pd.DataFrame(rows)


def mix_table(corpus: Path, workdir: Path, budget: float, max_epochs: float) -> pd.DataFrame:
    """``heldout/mixes.csv``, written once and read back afterwards, so the mixes never change;
    with one ``heldout/conf/mix/<mix>.yaml`` per mix for ``train.py +mix=<mix>``."""
    path = workdir / "heldout" / "mixes.csv"
    if not path.is_file():
        languages = pd.read_csv(corpus / "languages.csv").set_index("language")
        path.parent.mkdir(parents=True, exist_ok=True)
        heldout_mixes(languages["train_tokens"], budget, max_epochs).to_csv(path, index=False)
    mixes = pd.read_csv(path)
    configs = workdir / "heldout" / "conf" / "mix"
    configs.mkdir(parents=True, exist_ok=True)
    for _, row in mixes.iterrows():
        shares = {c.removeprefix(SHARE_PREFIX): float(row[c]) for c in mixes
                  if c.startswith(SHARE_PREFIX)}
        (configs / f"{row['mix']}.yaml").write_text(yaml.safe_dump(
            {"shares": shares, "rule": f"share ~ train_tokens^{row['exponent']:g}, capped "
             f"at {max_epochs:g} epochs of {budget:g} tokens"}, sort_keys=False))
    return mixes


def heldout_dir(workdir: Path, tokens: float) -> Path:
    """Where the held-out runs of one budget go: ``heldout/<tokens>/seed<s>/<mix>/``."""
    return workdir / "heldout" / f"{tokens:.0f}"


def train_heldout(study: Study, corpus: Path, workdir: Path, mixes: list[str],
                  tokens: float) -> None:
    """Every mix with every seed at ``tokens`` (one Hydra multirun, two runs at a time)."""
    shadowing = [m for m in mixes if (REPO / "conf" / "mix" / f"{m}.yaml").is_file()]
    if shadowing:  # Hydra reads conf/ before hydra.searchpath: these would replace our mixes
        sys.exit(f"conf/mix/ holds {', '.join(shadowing)} (written by climb_bayes.solve), which "
                 f"would be trained instead of the study's mixes of the same names; move them "
                 f"away first")
    run_or_stop("train.py", "-m", *study.network, *TRAINER, "hydra/launcher=local",
                f"data={study.source}", f"data.corpus={corpus}",
                f"data.max_epochs={study.max_epochs}",
                f"hydra.searchpath=[file://{workdir / 'heldout' / 'conf'}]",
                "+mix=" + ",".join(mixes), f"experiment.seed={','.join(map(str, study.seeds))}",
                f"experiment.tokens={tokens:.0f}",
                f"experiment.output={heldout_dir(workdir, tokens)}/seed${{experiment.seed}}",
                "experiment.run_id=${hydra:runtime.choices.mix}",
                f"hydra.sweep.dir={workdir / 'hydra' / f'heldout_{tokens:.0f}'}")


def print_plan(study: Study, pilots: pd.DataFrame, budgets: list[float], workdir: Path,
               run_sweep: bool) -> None:
    """Runs and tokens of each stage, how many are finished, and the estimated hours."""
    stages = []
    if run_sweep:
        done = sum((workdir / "pilots" / r / "pilots.csv").is_file() for r in pilots["run_id"])
        stages.append(("pilots", len(pilots), done, float(pilots["tokens"].sum())))
    for tokens in budgets:
        runs = [heldout_dir(workdir, tokens) / f"seed{s}" / m / "pilots.csv"
                for s in study.seeds for m in MIXES]
        stages.append((f"held-out {tokens:g}", len(runs), sum(p.is_file() for p in runs),
                       tokens * len(runs)))
    print(f"plan ({PARALLEL_RUNS} runs at a time, {study.tokens_per_second:,.0f} tokens/s per "
          f"run, {RUN_OVERHEAD_S:.0f} s of start-up and validation per run):")
    left = 0.0
    for name, runs, done, tokens in stages:
        hours = (tokens / study.tokens_per_second + runs * RUN_OVERHEAD_S) / PARALLEL_RUNS / 3600
        left += hours * (runs - done) / runs
        print(f"  {name:>18}: {runs:3d} runs ({done} finished), {tokens:.3g} tokens, "
              f"about {hours:.2f} h")
    total = sum(s[3] for s in stages)
    print(f"  {'total':>18}: {sum(s[1] for s in stages)} runs, {total:.3g} tokens; about "
          f"{left:.2f} h left, plus the fit", flush=True)


# ----------------------------------------------------------------------------- the record


def record_pairs(workdir: Path, corpus: Path, record: Path) -> list[tuple[Path, Path]]:
    """(file in the work directory, its copy in the record) for everything the record keeps:
    the corpus's ``languages.csv``, the design, the held-out mixes and the loss table of every
    run, finished or not (:func:`update_record` copies only the files that exist)."""
    pairs = [(corpus / "languages.csv", record / "languages.csv"),
             (workdir / "pilots" / "design.csv", record / "design.csv"),
             (workdir / "heldout" / "mixes.csv", record / "mixes.csv")]
    for run in sorted((workdir / "pilots").glob("*/pilots.csv")):
        pairs.append((run, record / "pilots" / f"{run.parent.name}.csv"))
    for run in sorted((record / "pilots").glob("*.csv")):
        pairs.append((workdir / "pilots" / run.stem / "pilots.csv", run))
    for run in sorted((workdir / "heldout").glob("*/seed*/*/pilots.csv")):
        pairs.append((run, record / run.parent.relative_to(workdir).with_suffix(".csv")))
    for run in sorted((record / "heldout").glob("*/seed*/*.csv")):
        pairs.append((workdir / run.relative_to(record).with_suffix("") / "pilots.csv", run))
    return list(dict.fromkeys(pairs))


def update_record(workdir: Path, corpus: Path, record: Path) -> None:
    """Copy every finished file of the work directory missing from the record into it
    (through a temporary name, so a killed study never leaves half a file)."""
    for source, copy in record_pairs(workdir, corpus, record):
        if source.is_file() and not copy.is_file():
            copy.parent.mkdir(parents=True, exist_ok=True)
            partial = copy.with_suffix(".partial")
            shutil.copyfile(source, partial)
            partial.replace(copy)


def restore_record(workdir: Path, corpus: Path, record: Path) -> None:
    """Copy the record's files missing from the work directory back into it, so recorded runs
    count as finished. Stops if the corpus is not the one the record was made on."""
    recorded = record / "languages.csv"
    if not recorded.is_file():
        return
    if not pd.read_csv(recorded).equals(pd.read_csv(corpus / "languages.csv")):
        sys.exit(f"{corpus / 'languages.csv'} differs from {recorded}: the recorded runs were "
                 f"trained on another corpus. Rebuild the corpus the record was made on, or "
                 f"move {record} away to start the study afresh.")
    restored = 0
    for source, copy in record_pairs(workdir, corpus, record):
        if copy.is_file() and not source.is_file():
            source.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(copy, source)
            restored += 1
    print(f"restored {restored} files from {record}", flush=True)


class RecordKeeper:
    """Updates the record every :data:`RECORD_INTERVAL_S` seconds in a background thread
    while the study trains (``with RecordKeeper(...):``), and once more at the end."""

    def __init__(self, workdir: Path, corpus: Path, record: Path | None) -> None:
        self.arguments = (workdir, corpus, record)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self) -> None:
        while not self.stop.wait(RECORD_INTERVAL_S):
            self.update()

    def update(self) -> None:
        workdir, corpus, record = self.arguments
        if record is not None:
            update_record(workdir, corpus, record)

    def __enter__(self) -> "RecordKeeper":
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self.thread.join()
        self.update()


# ----------------------------------------------------------------------------- the fit


def model_version(study: Study, pilots: Path) -> str:
    """12 hex digits of the SHA-256 of everything the fit's result depends on: the package's
    sources and the fit's configs (:data:`MODEL_FILES`), the fit overrides and the pilot table.
    A new model version gets a new fit; the same version reuses it."""
    digest = hashlib.sha256()
    files = sorted({p for pattern in MODEL_FILES for p in REPO.glob(pattern)})
    for path in [*files, pilots]:
        digest.update(str(path.relative_to(REPO) if path.is_relative_to(REPO) else "pilots")
                      .encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(" ".join(study.sampler).encode())
    return digest.hexdigest()[:12]


def git_commit() -> str:
    """The repository's commit, with ``+dirty`` when the package or configs differ from it."""
    def git(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *arguments], cwd=REPO, capture_output=True, text=True,
                              check=False)

    commit = git("rev-parse", "--short", "HEAD").stdout.strip() or "unknown"
    dirty = git("status", "--porcelain", "--", "climb_bayes", "conf").stdout.strip()
    return commit + ("+dirty" if dirty else "")


def ensure_fit(study: Study, pilots: Path, workdir: Path, refit: bool) -> Path | None:
    """The posterior of the current model version (``fit/<version>/posterior.nc``), fitted now
    if missing or if ``refit``; None if the fit wrote none. A broken fit is kept
    (``keep_broken=true``): the evaluation reports its verdict beside its scores."""
    version = model_version(study, pilots)
    directory = workdir / "fit" / version
    posterior = directory / "posterior.nc"
    if posterior.is_file() and not refit:
        return posterior
    shutil.rmtree(directory, ignore_errors=True)
    start = time.perf_counter()
    status = run("-m", "climb_bayes.fit", f"pilots={pilots}", f"output={directory}",
                 "keep_broken=true", *study.sampler)
    if status not in (0, FIT_BROKEN_STATUS) or not posterior.is_file():
        print(f"the fit failed (exit status {status}); no evaluation", flush=True)
        return None
    (directory / "version.json").write_text(json.dumps(
        {"model_version": version, "commit": git_commit(), "pilots": str(pilots),
         "fit_seconds": round(time.perf_counter() - start, 1)}, indent=2) + "\n")
    return posterior


# ----------------------------------------------------------------------------- evaluation


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
    observed = np.asarray(predictive_losses(posterior, mean, noise_key))
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
    losses than measured). Across mixes: ``rank_correlation``, Spearman's correlation of the
    measured ``W`` (mean over seeds of the mean over languages) with its posterior mean. The
    same three for the point fit's prediction ``point_predicted`` (a column of
    ``per_language``) as ``point_mae``, ``point_bias`` and ``point_rank_correlation``.
    """
    languages = measured.merge(per_language, on=["mix", "language"], validate="many_to_one")
    languages["error"] = languages["predicted"] - languages["measured"]
    languages["point_error"] = languages["point_predicted"] - languages["measured"]
    languages["inside_90"] = languages["measured"].between(languages["pred_q05"],
                                                           languages["pred_q95"])
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


# ----------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Django corpus, toy budgets")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the study's runs go (default runs/real_study[_quick])")
    parser.add_argument("--corpus", type=Path, default=None,
                        help="corpus directory (built when missing; default WORKDIR/corpus)")
    parser.add_argument("--pilots", type=Path, default=None,
                        help="a finished pilot table to use instead of running the sweep")
    parser.add_argument("--evaluate", action="store_true",
                        help="only fit (when the model version has no fit yet) and evaluate")
    parser.add_argument("--refit", action="store_true",
                        help="fit again even if this model version has a fit")
    args = parser.parse_args()
    study = QUICK if args.quick else FULL
    workdir = (args.workdir or REPO / "runs" / f"real_study{'_quick' if args.quick else ''}"
               ).resolve()
    corpus = (args.corpus or workdir / "corpus").resolve()
    pilots = workdir / "pilots" / "pilots.csv"
    copy_results = not args.quick

    if args.evaluate:
        missing = [p for p in (pilots, workdir / "heldout" / "mixes.csv") if not p.is_file()]
        if missing:
            sys.exit(f"nothing to evaluate yet: {', '.join(map(str, missing))} missing; run the "
                     f"study first")
        posterior = ensure_fit(study, pilots, workdir, args.refit)
        if posterior is None:
            sys.exit("the fit failed: see its output above")
        evaluate(study, workdir, corpus, posterior, copy_results)
        return

    make_corpus(study, corpus)
    record = None if args.quick else RECORD
    if record is not None:
        restore_record(workdir, corpus, record)
    with RecordKeeper(workdir, corpus, record):
        posterior = run_study(study, args, workdir, corpus, pilots, copy_results)
    if posterior is None:
        sys.exit("the runs are finished but the fit failed; fix it and run this command with "
                 "--evaluate")


def run_study(study: Study, args: argparse.Namespace, workdir: Path, corpus: Path,
              pilots: Path, copy_results: bool) -> Path | None:
    """The stages after the corpus; returns the last posterior (None if its fit failed)."""
    plan = pilot_plan(study, workdir, args.pilots.resolve() if args.pilots else None)
    budgets = [m * plan["tokens"].max() for m in study.multiples]
    mixes = mix_table(corpus, workdir, max(budgets), study.max_epochs)
    print(mixes.to_string(index=False, float_format="{:.3f}".format))
    print_plan(study, plan, budgets, workdir, run_sweep=args.pilots is None)
    if args.pilots is None:
        run_pilots(study, corpus, workdir)
    posterior, refit = None, args.refit
    for tokens in budgets:
        train_heldout(study, corpus, workdir, mixes["mix"].tolist(), tokens)
        posterior = ensure_fit(study, pilots, workdir, refit)
        refit = False  # one forced refit at most; later ones only for a new model version
        if posterior is not None:
            evaluate(study, workdir, corpus, posterior, copy_results)
    return posterior


if __name__ == "__main__":
    main()
