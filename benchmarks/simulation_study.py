"""Simulation study: do the fitted mixes beat the heuristics, and are the intervals honest?

    python -m benchmarks.simulation_study --quick          # ~5 min on 2 cores, same tables
    python -m benchmarks.simulation_study                  # full: 20 worlds per setting (hours)
    python -m benchmarks.simulation_study --efficiency     # pilot-efficiency curve (issue 6.3)
    python -m benchmarks.simulation_study --summarise      # tables from the CSVs written so far
    python -m benchmarks.simulation_study --summarise --markdown   # ... as the docs print them
    python -m benchmarks.simulation_study --settings dml_m4_10x --first-seed 10 --worlds 5
    python -m benchmarks.simulation_study --merge DIR1 DIR2   # gather split runs, then tables

Every world has a known truth (:mod:`benchmarks.worlds`): the CLIMB law itself (``truth=law``,
correctly specified, drawn by :func:`climb_bayes.data.simulated.simulate_pilots`), the law with
every language alike so that uniform is the true optimum (``law_symmetric``,
:func:`benchmarks.simulation.settings.symmetric_world`: the DESIGN's "risk to watch" at its
sharpest), the law with its exponents bent beyond the largest pilot (``law_bent``,
:class:`benchmarks.worlds.BentWorld`: what the discrepancy term must cover), the law bent by
one draw of the fit's own prior on its error in budget (``law_prior_bent``,
:class:`benchmarks.worlds.PriorBentWorld`: the model is right, bend included, so its intervals
should cover at their level on average over worlds), or the Data Mixing Laws form with a budget
term (``truth=dml``, misspecified). Each setting
(:mod:`benchmarks.simulation.settings`) fixes the number of languages ``m``, the transfer
(positive or negative), how many languages are scarce (available tokens ``A_i`` with at most
``K = 4`` epochs, so ``r_i <= K A_i / D``), and the ratio of the target budget to the largest
pilot budget (10, 100 or 1000). Pilots: the paper's ``3 x m x 2`` design plus monolingual runs
at 3e6, 1e7 and 3e7 tokens (three budgets, as ``climb_bayes.design`` plans them), Gaussian noise
``sigma_i ~ U(0.5, 1.5) * 0.02`` nats; each run is simulated at 1/4, 1/2 and all of its budget,
and the fit sees each run's final loss, as ``python -m climb_bayes.fit`` does by default
(``checkpoints=final``).

For each world, in one process (:func:`benchmarks.simulation.scoring.run_world`): fit NUTS
(:func:`climb_bayes.model.fitting.fit_posterior`) and the point estimate
(:func:`benchmarks.point_fit.fit_point`); decide as the solver does
(:func:`climb_bayes.decide.decision.decision`: the optimised mixes, the heuristics, the
reference and
``P(gain > delta)`` for each), plus ``point_fit`` (the plug-in mix of the Huber point estimate)
and ``recommended`` (the solver's rule under doubt); score each mix by its TRUE weighted loss
``W(r) = sum_i w_i L_i(r, D_target)`` (equal ``w``) and its regret ``W(r) - min W`` against the
true optimum (:func:`benchmarks.worlds.true_optimum`, the same interior-point solver on the true
objective, polished by SLSQP). Calibration: coverage of the 50% and 90% posterior predictive
intervals of new observed losses on 100 held-out runs inside the pilot budgets and 100 at the
target budget (there also with the error term of ``law.extrapolation_sd`` = 0.02 and 0.05 nats
per e-fold added, ``EXTRAPOLATION_SDS``); coverage of the true ``W`` at every chosen mix by the
posterior's 50% / 90% interval of ``W``; and each mix's ``optimism``: the method's own predicted
``W`` at its mix minus the true ``W`` (negative: it promised less loss than it got).

Outputs (``benchmarks/results/``, appended world by world, so a killed run resumes):
``simulation_mixes.csv`` (one row per world and mix), ``simulation_worlds.csv`` (one row per
world: fit diagnostics, calibration) and the summary tables ``simulation_summary.csv`` and
``simulation_calibration.csv``, ``simulation_doubt.csv``
(:func:`benchmarks.simulation.tables.doubt_table`: the regret of falling back to the reference
below a posterior ``P(gain > delta)``) and ``simulation_reliability.csv``
(:func:`benchmarks.simulation.tables.reliability_table`: is ``P(gain > delta)`` calibrated
against the true gains?) and ``simulation_checks.csv``
(:func:`benchmarks.simulation.tables.decision_checks`: the decision's bars, counted).
``--efficiency`` adds worlds fitted on half and a quarter of their pilot design to the same
CSVs (the key of a world is its setting, seed and pilot fraction; the full-design fits are the
main study's); the main tables use the full designs only, and
``simulation_efficiency.csv`` compares the fractions over the worlds that have them.
``--figures DIR`` draws PNGs (:mod:`benchmarks.simulation.figures`); ``--markdown`` prints the
tables as ``docs/results.md`` and the README hold them (:mod:`benchmarks.simulation.markdown`).
"""

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import jax
import pandas as pd

from benchmarks.simulation.figures import efficiency_figure, regret_figure
from benchmarks.simulation.markdown import markdown_tables
from benchmarks.simulation.scoring import run_world
from benchmarks.simulation.settings import EFFICIENCY_SETTINGS, QUICK_SETTINGS, SETTINGS
from benchmarks.simulation.tables import (
    calibration_table,
    decision_checks,
    doubt_table,
    efficiency_table,
    reliability_table,
    show,
    summary_table,
)
from climb_bayes.decide.compare import DOUBT_THRESHOLD
from climb_bayes.model.fitting import Sampler

RESULTS = Path(__file__).resolve().parent / "results"


def append_rows(path: Path, rows: Sequence[dict]) -> None:
    """Append rows to a CSV (header on first write)."""
    frame = pd.DataFrame(rows)
    if path.is_file():
        frame = pd.concat([pd.read_csv(path), frame], ignore_index=True)
    tmp = path.with_suffix(".csv.tmp")
    frame.to_csv(tmp, index=False)
    tmp.replace(path)


def done_keys(path: Path) -> set[tuple[str, int, float]]:
    """``(setting, seed, fraction)`` of the worlds already in ``path``."""
    if not path.is_file():
        return set()
    frame = pd.read_csv(path)
    return set(zip(frame["setting"], frame["seed"], frame["fraction"], strict=True))


#: Worlds between clearing JAX's in-memory compilation caches. A world reuses much of what the
#: one before compiled (at m = 4 a world takes 70 s compiling afresh, 40 s reusing), but the
#: caches grow by about 0.4 GB a world: kept for a whole study they filled a 24 GB machine.
#: After a clear, the compilation cache on disk (:data:`COMPILATION_CACHE`) serves what it can.
CLEAR_EVERY = 8
#: JAX's persistent compilation cache for the study, kept between runs of it.
COMPILATION_CACHE = Path(tempfile.gettempdir()) / "climb-bayes-simulation-jax-cache"


def run(settings: Sequence[str], seeds: Sequence[int], fractions: Sequence[float],
        sampler: Sampler, point_starts: int, prefix: str, output: Path) -> None:
    """Run every (setting, seed, fraction) not yet in the CSVs; append as each finishes."""
    output.mkdir(parents=True, exist_ok=True)
    mix_path, world_path = output / f"{prefix}_mixes.csv", output / f"{prefix}_worlds.csv"
    done, finished = done_keys(world_path), 0
    for seed in seeds:  # worlds outer, settings inner: every setting gets worlds early
        fits: dict[str, tuple] = {}  # this seed's fits, shared by settings with equal pilots
        for name in settings:
            for fraction in fractions:
                if (name, seed, fraction) in done:
                    continue
                start = time.perf_counter()
                rows, world_row = run_world(SETTINGS[name], seed, sampler, point_starts,
                                            fraction, fits)
                append_rows(mix_path, rows)
                append_rows(world_path, [world_row])
                finished += 1
                if finished % CLEAR_EVERY == 0:
                    jax.clear_caches()
                print(f"{name} seed {seed} fraction {fraction}: "
                      f"{time.perf_counter() - start:.0f} s, posterior_mean regret "
                      f"{rows[0]['regret']:.4g}, uniform regret {world_row['uniform_regret']:.4g}",
                      flush=True)


def merge(prefix: str, sources: Sequence[Path], output: Path) -> None:
    """Gather ``{prefix}_mixes.csv`` / ``{prefix}_worlds.csv`` from every folder under
    ``sources`` (runs split across processes or machines) into ``output``; a world present
    twice (same setting, seed and pilot fraction) is kept once."""
    key = ["setting", "seed", "fraction"]
    for kind, subset in (("worlds", key), ("mixes", [*key, "mix"])):
        frames = [pd.read_csv(path) for source in sources
                  for path in sorted(Path(source).rglob(f"{prefix}_{kind}.csv"))]
        frame = pd.concat(frames, ignore_index=True).drop_duplicates(subset, keep="first")
        frame.sort_values(key).to_csv(output / f"{prefix}_{kind}.csv", index=False)


def report(prefix: str, output: Path, figures: Path | None = None) -> None:
    """Print and save the summary tables (and figures, into ``figures``) from the CSVs: the
    main tables from the full pilot designs, the pilot-efficiency table from the worlds that
    were also fitted on part of their design."""
    mixes = pd.read_csv(output / f"{prefix}_mixes.csv")
    worlds = pd.read_csv(output / f"{prefix}_worlds.csv")
    full_mixes, full_worlds = mixes[mixes["fraction"] == 1.0], worlds[worlds["fraction"] == 1.0]
    summary, calib = summary_table(full_mixes), calibration_table(full_worlds)
    show("true regret at the target budget, per setting and mix (nats)", summary)
    show("calibration and held-out error, per setting (means over worlds)", calib)
    doubt = doubt_table(full_mixes)
    show(f"rule under doubt: mean regret when falling back to the reference below "
         f"P(gain > delta) (the solver's threshold: {DOUBT_THRESHOLD:g})", doubt)
    doubt.to_csv(output / f"{prefix}_doubt.csv", index=False)
    reliability = reliability_table(full_mixes)
    show("reliability of P(gain > delta): stated vs observed", reliability)
    reliability.to_csv(output / f"{prefix}_reliability.csv", index=False)
    checks = decision_checks(full_mixes, full_worlds)
    show("the decision's bars (value of how many; met?)", checks)
    checks.to_csv(output / f"{prefix}_checks.csv", index=False)
    summary.to_csv(output / f"{prefix}_summary.csv", index=False)
    calib.to_csv(output / f"{prefix}_calibration.csv", index=False)
    if figures is not None:
        regret_figure(full_mixes, figures / f"{prefix}_regret.png")
    part = worlds.loc[worlds["fraction"] < 1.0, ["setting", "seed"]].drop_duplicates()
    if part.empty:
        return
    table = efficiency_table(mixes.merge(part), worlds.merge(part))
    show("pilot efficiency (means over worlds)", table)
    table.to_csv(output / f"{prefix}_efficiency.csv", index=False)
    if figures is not None:
        efficiency_figure(table, figures / f"{prefix}_efficiency.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="3 settings x 2 worlds, 2 chains x 200 draws (~5 min)")
    parser.add_argument("--efficiency", action="store_true",
                        help="pilot-efficiency curve: 2 settings x 6 worlds, each fitted on "
                             "the full design, half and a quarter of it (the full-design "
                             "worlds are the main study's, reused where already run)")
    parser.add_argument("--summarise", action="store_true", help="only print the tables")
    parser.add_argument("--settings", nargs="+", default=None, choices=sorted(SETTINGS))
    parser.add_argument("--worlds", type=int, default=None)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--draws", type=int, default=None)
    parser.add_argument("--output", default=str(RESULTS))
    parser.add_argument("--figures", default=None, help="folder for PNG figures")
    parser.add_argument("--markdown", action="store_true",
                        help="then print the tables as docs/results.md and the README hold them")
    parser.add_argument("--merge", nargs="+", default=None,
                        help="gather the CSVs found under these folders into --output first")
    args = parser.parse_args()
    jax.config.update("jax_compilation_cache_dir", str(COMPILATION_CACHE))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
    quick = args.quick
    default_settings = (QUICK_SETTINGS if quick else
                        EFFICIENCY_SETTINGS if args.efficiency else tuple(SETTINGS))
    worlds = args.worlds or (2 if quick else 6 if args.efficiency else 20)
    draws = args.draws or (200 if quick else 500)
    fractions = (1.0, 0.5, 0.25) if args.efficiency else (1.0,)
    prefix = "simulation_quick" if quick else "simulation"
    output = Path(args.output)
    sampler = Sampler(chains=2, warmup=draws, samples=draws, seed=0, map_starts=4,
                      progress_bar=False)
    if args.merge:
        output.mkdir(parents=True, exist_ok=True)
        merge(prefix, [Path(p) for p in args.merge], output)
    elif not args.summarise:
        print(f"settings {list(args.settings or default_settings)}, {worlds} worlds each, "
              f"2 chains x {draws} draws, {os.cpu_count()} CPU cores", flush=True)
        run(args.settings or default_settings,
            range(args.first_seed, args.first_seed + worlds), fractions, sampler,
            4, prefix, output)
    report(prefix, output, Path(args.figures) if args.figures else None)
    if args.markdown:
        for name, table in markdown_tables(output, prefix).items():
            print(f"\n== {name}\n{table}")


if __name__ == "__main__":
    sys.exit(main())
