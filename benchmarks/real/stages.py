"""The real study's plan and its training stages: what to run (:class:`Study`: :data:`FULL` and
:data:`QUICK`), the corpus, the pilot design and its sweep, the held-out runs of every budget
(``train.py`` multiruns, each skipping finished runs) and the plan printed before them."""

import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from benchmarks.real.mixes import MIXES

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results"
#: ``conf/hydra/launcher/local.yaml``: runs trained at a time.
PARALLEL_RUNS = 2
#: Seconds a run spends outside training (start-up, reading the corpus, validation), for the plan.
RUN_OVERHEAD_S = 25.0


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
