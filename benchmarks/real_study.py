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
* **Held-out runs**: the five mixes of :data:`benchmarks.real.mixes.MIXES`, fixed before any
  fit, each trained with seeds 0, 1 and 2 at 3x and 10x the largest pilot budget (4.5e6 and
  1.5e7 tokens): 30 runs. Since no mix depends on the fit, a new statistical model is scored
  on the same runs.
* **Evaluation** (:func:`benchmarks.real.evaluation.evaluate`): fit the current package's
  posterior on the pilot table (``python -m climb_bayes.fit`` with its defaults), predict every
  held-out mix at its budget with :mod:`climb_bayes.predict`'s functions and score it per budget
  (:func:`benchmarks.real.evaluation.score`), beside the point fit of the same law on the same
  pilot rows (:func:`benchmarks.real.evaluation.point_predictions`), the estimate a
  point-fitting CLIMB would use.

Stages, each skipping finished work, so killing the study and running the same command again
continues where it stopped: the corpus (skipped when it exists), the design, the pilot sweep
(finished runs are skipped, interrupted ones resume from their checkpoint), the held-out mixes
(written once), then for each held-out budget its runs (a ``train.py`` multirun, 2 at a time)
and an evaluation, which fits the posterior first when the current model version
(:func:`benchmarks.real.fit.model_version`) has no fit yet. No training depends on a fit: a
failed fit leaves the runs going and is retried at the next evaluation. ``--evaluate`` runs only
the fit and the evaluation. The plan (runs, tokens, estimated hours) is printed before the first
run.

``--quick`` runs the same stages on the Django corpus (de, en, fr) with the README's tiny
quick-start pilots (6e3, 1.8e4 and 5.4e4 tokens), held-out runs at 3x only, one seed, a small
sampler and a repetition cap of 20 epochs (the corpus has about 14k training tokens per
language, and the 3x runs train on 1.6e5); ``--pilots`` reuses a finished pilot table
instead of running the sweep.

**The record.** The full study mirrors what it cannot make again cheaply into
``benchmarks/results/real_study_runs/`` (:mod:`benchmarks.real.record`), once a minute while it
trains and after every stage: the design, the held-out mixes, the corpus's ``languages.csv`` and
the loss table of every finished run (a few kilobytes each). Committed in parts, the record
carries the study across machines: on a fresh work directory the study restores the record
first, so recorded runs are not trained again. It refuses to restore into a corpus whose
``languages.csv`` differs from the recorded one (the runs would not be comparable).

Outputs in ``--workdir`` (and, without ``--quick``, copied to ``benchmarks/results/``):
``real_study_languages.csv`` (one row per budget, mix, seed and language),
``real_study_mixes.csv`` (one row per budget and mix), ``real_study_summary.csv`` (one row per
budget: the scores and the fit's health) and ``real_study_corpus.csv`` (the corpus's
``languages.csv``).
"""

import argparse
import sys
from pathlib import Path

from benchmarks.real.evaluation import evaluate
from benchmarks.real.fit import ensure_fit
from benchmarks.real.mixes import mix_table
from benchmarks.real.record import RECORD, RecordKeeper, restore_record
from benchmarks.real.stages import (
    FULL,
    QUICK,
    REPO,
    Study,
    make_corpus,
    pilot_plan,
    print_plan,
    run_pilots,
    train_heldout,
)


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
