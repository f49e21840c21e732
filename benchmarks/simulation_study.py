"""Simulation study: do the fitted mixes beat the heuristics, and are the intervals honest?

    python -m benchmarks.simulation_study --quick          # ~5 min on 2 cores, same tables
    python -m benchmarks.simulation_study                  # full: 20 worlds per setting (hours)
    python -m benchmarks.simulation_study --efficiency     # pilot-efficiency curve (issue 6.3)
    python -m benchmarks.simulation_study --summarise      # tables from the CSVs written so far
    python -m benchmarks.simulation_study --settings dml_m4_10x --first-seed 10 --worlds 5
    python -m benchmarks.simulation_study --merge DIR1 DIR2   # gather split runs, then tables

Every world has a known truth (:mod:`benchmarks.worlds`): the CLIMB law itself
(``truth=law``, correctly specified, drawn by :func:`climb_bayes.simulate.simulate_pilots`),
the law with every language alike so that uniform is the true optimum (``law_symmetric``,
:func:`symmetric_world`: the DESIGN's "risk to watch" at its sharpest), the law with its
exponents bent beyond the largest pilot (``law_bent``, :class:`benchmarks.worlds.BentWorld`:
what the discrepancy term must cover), or the Data Mixing Laws form with a budget term
(``truth=dml``, misspecified). Each setting
fixes the number of languages ``m``, the transfer (positive or negative), how many languages
are scarce (available tokens ``A_i`` with at most ``K = 4`` epochs, so ``r_i <= K A_i / D``),
and the ratio of the target budget to the largest pilot budget (10, 100 or 1000). Pilots: the
paper's ``3 x m x 2`` design plus monolingual runs at 3e6, 1e7 and 3e7 tokens (three
budgets, as ``climb_bayes.design`` plans them), Gaussian noise ``sigma_i ~ U(0.5, 1.5) * 0.02``
nats; each run is simulated at 1/4, 1/2 and all of its budget, and the fit sees each run's
final loss, as ``python -m climb_bayes.fit`` does by default (``checkpoints=final``).

For each world, in one process: fit NUTS (:func:`climb_bayes.fit.fit_posterior`) and the
point estimate (:func:`benchmarks.point_fit.fit_point`); decide as the solver does
(:func:`climb_bayes.solve.decision`: the optimised mixes, the heuristics, the reference and
``P(gain > delta)`` for each), plus ``point_fit`` (the plug-in mix of the Huber point
estimate) and ``recommended`` (the solver's rule under doubt); score each mix by its TRUE
weighted loss
``W(r) = sum_i w_i L_i(r, D_target)`` (equal ``w``) and its regret ``W(r) - min W`` against
the true optimum (:func:`benchmarks.worlds.true_optimum`, the same interior-point solver on
the true objective, polished by SLSQP). Calibration: coverage of the 50% and 90% posterior
predictive intervals of new observed losses on 100 held-out runs inside the pilot budgets
and 100 at the target budget (there also with the error term of ``model.extrapolation_sd``
= 0.02 and 0.05 nats per e-fold added, ``EXTRAPOLATION_SDS``); coverage of the true ``W`` at
every chosen mix by the posterior's 50% / 90% interval of ``W``; and each mix's ``optimism``:
the method's own predicted ``W`` at its mix minus the true ``W`` (negative: it promised less
loss than it got).

Outputs (``benchmarks/results/``, appended world by world, so a killed run resumes):
``simulation_mixes.csv`` (one row per world and mix), ``simulation_worlds.csv`` (one row per
world: fit diagnostics, calibration) and the summary tables ``simulation_summary.csv`` and
``simulation_calibration.csv``, ``simulation_doubt.csv`` (:func:`doubt_table`: the regret
of falling back to the reference below a posterior ``P(gain > delta)``) and
``simulation_reliability.csv`` (:func:`reliability_table`: is ``P(gain > delta)``
calibrated against the true gains?). ``--efficiency``
adds worlds fitted on half and a quarter of their pilot design to the same CSVs (the key of a
world is its setting, seed and pilot fraction; the full-design fits are the main study's);
the main tables use the full designs only, and ``simulation_efficiency.csv`` compares the
fractions over the worlds that have them. ``--figures DIR`` draws PNGs.
"""

import argparse
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpyro  # noqa: I001  (host devices must be set before JAX starts)

numpyro.set_host_device_count(2)

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from benchmarks.point_fit import PointFit, fit_point  # noqa: E402
from benchmarks.worlds import (  # noqa: E402
    DMLWorld,
    draw_availability,
    draw_bent_world,
    draw_dml_world,
    true_optimum,
    true_weighted_loss,
)
from climb_bayes.data.pilot_table import PilotTable, validate_pilots  # noqa: E402
from climb_bayes.decide.compare import DOUBT_THRESHOLD, gains  # noqa: E402
from climb_bayes.decide.optimal_mix import Problem, minimise, point_estimate  # noqa: E402
from climb_bayes.design import climb_design  # noqa: E402
from climb_bayes.errors import InputError  # noqa: E402
from climb_bayes.fit import Sampler, fit_posterior, pilot_rows  # noqa: E402
from climb_bayes.model.health import stored_health  # noqa: E402
from climb_bayes.model.law import self_map  # noqa: E402
from climb_bayes.model.numpyro_model import Priors, reference_tokens  # noqa: E402
from climb_bayes.model.posterior import Posterior, posterior_from_idata  # noqa: E402
from climb_bayes.predict import predictive_losses  # noqa: E402
from climb_bayes.simulate import (  # noqa: E402
    World,
    checkpoint_table,
    draw_world,
    heldout_runs,
    language_names,
    observe,
    simulate_pilots,
)
from climb_bayes.solve import (  # noqa: E402
    Decision,
    Options,
    _clean,
    decision,
    feasible_bounds,
    mean_effective_shares,
    weighted_loss_draws,
)

RESULTS = Path(__file__).resolve().parent / "results"
PILOT_BUDGETS = (3e6, 1e7, 3e7)  # three budgets, 2.3 e-folds: the law's bend is visible
CHECKPOINTS = (0.25, 0.5, 1.0)
MAX_EPOCHS = 4.0
NOISE = 0.02
HELDOUT = 100
#: ``model.extrapolation_sd`` values (nats per e-fold) whose coverage at the target is scored.
EXTRAPOLATION_SDS = (0.02, 0.05)
BAYES_MIXES = ("posterior_mean", "robust", "isolated", "recommended")
POINT_MIXES = ("plugin", "climb_two_step")


@dataclass(frozen=True)
class Setting:
    """One cell of the study's grid."""

    name: str
    truth: str  # "law", "law_symmetric" (uniform is optimal), "law_bent" (the law bent
    #             beyond the pilots) or "dml" (misspecified)
    languages: int
    transfer_mean: float  # law: mean of b; dml: mean of t_ji (negative helps)
    transfer_sd: float
    ratio: float  # target budget / largest pilot budget
    scarce: int = 0  # languages with little data (binding epoch caps)


SETTINGS = {s.name: s for s in (
    Setting("law_m4_pos_10x", "law", 4, 0.15, 0.10, 10),
    Setting("law_m4_neg_10x", "law", 4, -0.08, 0.08, 10),
    Setting("law_m4_pos_100x", "law", 4, 0.15, 0.10, 100),
    Setting("law_m4_pos_1000x", "law", 4, 0.15, 0.10, 1000),
    Setting("law_m4_scarce_100x", "law", 4, 0.10, 0.15, 100, scarce=1),
    Setting("law_m8_pos_10x", "law", 8, 0.10, 0.10, 10, scarce=2),
    Setting("law_m4_uniform_opt_10x", "law_symmetric", 4, 0.10, 0.0, 10),
    Setting("law_m4_uniform_opt_100x", "law_symmetric", 4, 0.10, 0.0, 100),
    Setting("bent_m4_10x", "law_bent", 4, 0.15, 0.10, 10),
    Setting("bent_m4_100x", "law_bent", 4, 0.15, 0.10, 100),
    Setting("dml_m4_10x", "dml", 4, -0.3, 0.5, 10),
    Setting("dml_m4_scarce_100x", "dml", 4, -0.3, 0.5, 100, scarce=1),
)}
QUICK_SETTINGS = ("law_m4_pos_10x", "law_m4_neg_10x", "dml_m4_10x")
EFFICIENCY_SETTINGS = ("law_m4_pos_10x", "dml_m4_10x")


# --- worlds ------------------------------------------------------------------------------------

def make_world(setting: Setting, seed: int) -> tuple[pd.DataFrame, object, np.ndarray, float]:
    """Pilot table, truth, available tokens and target budget of world ``seed``.

    ``D_target = ratio * max(pilot budgets)``; availability from
    :func:`benchmarks.worlds.draw_availability`.
    """
    target = setting.ratio * max(PILOT_BUDGETS)
    rng = np.random.default_rng(10_000 + seed)
    available = draw_availability(rng, setting.languages, target, setting.scarce, MAX_EPOCHS)
    if setting.truth == "law_symmetric":
        return (*symmetric_world(setting, seed, rng), available, target)
    if setting.truth in ("law", "law_bent"):
        frame, world = simulate_pilots(languages=setting.languages, budgets=PILOT_BUDGETS,
                                       checkpoints=CHECKPOINTS,
                                       transfer_mean=setting.transfer_mean,
                                       transfer_sd=setting.transfer_sd, noise=NOISE, seed=seed)
        if setting.truth == "law":
            return frame, world, available, target
        bent = draw_bent_world(rng, world, max(PILOT_BUDGETS), target)  # the same law, bent
        points = checkpoint_table(climb_design(world.sources, PILOT_BUDGETS, seed=seed),
                                  CHECKPOINTS)
        return observe(bent, points, rng), bent, available, target
    names = language_names(setting.languages)
    points = checkpoint_table(climb_design(names, PILOT_BUDGETS, seed=seed), CHECKPOINTS)
    world = draw_dml_world(rng, names, reference_tokens(points["tokens"]),
                           setting.transfer_mean, setting.transfer_sd, NOISE)
    return observe(world, points, rng), world, available, target


def symmetric_world(setting: Setting, seed: int, rng: np.random.Generator
                    ) -> tuple[pd.DataFrame, World]:
    """A correctly specified world in which uniform is the optimal mix: a world from
    :func:`climb_bayes.simulate.draw_world` with every language's ``E, B, beta, eta`` replaced
    by their mean over languages and every transfer pair ``b = transfer_mean``, ``k = 0``; the
    law is then symmetric under permuting languages, so (with equal weights and no binding
    caps) its optimum is ``1 / m`` each. This is the world of the DESIGN's "risk to watch": a
    fitted mix can only lose to uniform there, by as much as the pilots mislead it."""
    names = language_names(setting.languages)
    points = checkpoint_table(climb_design(names, PILOT_BUDGETS, seed=seed), CHECKPOINTS)
    drawn = draw_world(rng, names, names, reference_tokens(points["tokens"]), noise=NOISE)
    cross = 1.0 - self_map(names, names)
    params = drawn.params._replace(
        **{name: np.full_like(getattr(drawn.params, name), getattr(drawn.params, name).mean())
           for name in ("E", "B", "beta", "eta")},
        a=cross * setting.transfer_mean, k=np.zeros_like(cross))
    world = replace(drawn, params=params, sigma=np.full_like(drawn.sigma, drawn.sigma.mean()))
    return observe(world, points, rng), world


def subsample_runs(frame: pd.DataFrame, fraction: float, seed: int) -> PilotTable:
    """Keep ``fraction`` of the design's mixes (each at both budgets, all checkpoints).

    Mixes are drawn at random; a draw the validator rejects (a language left without
    observations) is redrawn.
    """
    mix = frame["run_id"].str.rsplit("-", n=1).str[0]
    names = np.array(sorted(mix.unique()))
    keep = max(2, round(fraction * len(names)))
    rng = np.random.default_rng(seed)
    for _ in range(50):
        chosen = rng.choice(names, keep, replace=False)
        try:
            return validate_pilots(frame[mix.isin(chosen)].reset_index(drop=True))
        except InputError:
            continue
    raise RuntimeError(f"no valid subsample of {keep} mixes")


# --- fitting and deciding ----------------------------------------------------------------------

def fit_both(table: PilotTable, sampler: Sampler, point_starts: int
             ) -> tuple[Posterior, PointFit, dict[str, float]]:
    """NUTS posterior and the point fit."""
    start = time.perf_counter()
    idata = fit_posterior(table, Priors(), "source_saturating", sampler)
    nuts_seconds = time.perf_counter() - start
    health = stored_health(idata)
    posterior = posterior_from_idata(idata, allow_broken=True)
    start = time.perf_counter()
    point = fit_point(table, num_starts=point_starts, seed=sampler.seed)
    info = {"nuts_seconds": nuts_seconds, "point_seconds": time.perf_counter() - start,
            "health": health.verdict, "max_r_hat": health.max_r_hat,
            "min_ess_bulk": health.min_ess_bulk, "divergences": health.divergences}
    return posterior, point, info


def decide(posterior: Posterior, point: PointFit, target: float, available: np.ndarray,
           weights: np.ndarray) -> tuple[dict[str, np.ndarray], Problem, Decision]:
    """Every mix of the solver (:func:`climb_bayes.solve.decision`: the optimised mixes, the
    heuristics and the reference), ``point_fit``, and ``recommended``: the mix the solver's
    rule under doubt recommends (``posterior_mean``, or the reference where
    ``P(gain > delta)`` is below the threshold)."""
    m = len(posterior.sources)
    lower, upper = feasible_bounds(np.zeros(m), np.ones(m), available, MAX_EPOCHS, target,
                                   posterior.sources)
    problem = Problem.at_budget(posterior.law, target, weights, lower, upper)
    chosen = decision(posterior, problem, Options(target, available, MAX_EPOCHS), weights)
    mixes = dict(zip(chosen.names, chosen.shares, strict=True))
    mixes["point_fit"] = _clean(minimise(Problem.at_budget(point.law, target, weights, lower,
                                                           upper)).x)
    mixes["recommended"] = chosen.recommended
    return mixes, problem, chosen


def own_prediction(name: str, posterior_w: np.ndarray, problem: Problem, point: PointFit,
                   shares: np.ndarray, target: float, weights: np.ndarray) -> float:
    """What the method that chose a mix predicts its ``W`` to be: the plug-in value at the
    posterior means for ``plugin`` and ``climb_two_step``, the point fit for ``point_fit``,
    the posterior mean of ``W`` for the rest (the heuristics predict nothing themselves; the
    posterior's prediction for them measures its calibration there)."""
    if name in POINT_MIXES:
        plugin = replace(point.law, params=point_estimate(problem.params), form=problem.form)
        return float(plugin.predict_loss(shares[None], np.array([target]))[0, 0] @ weights)
    if name == "point_fit":
        return float(point.law.predict_loss(shares[None], np.array([target]))[0, 0] @ weights)
    return float(posterior_w.mean())


def score_mixes(mixes: dict[str, np.ndarray], world: object, posterior: Posterior,
                problem: Problem, point: PointFit, chosen: Decision, target: float,
                weights: np.ndarray, available: np.ndarray) -> tuple[list[dict], dict]:
    """One row per mix: true ``W``, regret, posterior interval of ``W`` and its coverage,
    the posterior's gain over the solver's reference and ``P(gain > delta)``
    (:func:`climb_bayes.decide.compare.gains`) beside the true gain, optimism, feasibility, the
    smallest share and the smallest posterior-mean effective share."""
    names = list(mixes)
    shares = np.stack([mixes[n] for n in names])
    optimum = true_optimum(world, target, weights, problem.lower, problem.upper,
                           starts=[shares[i] for i in range(len(names))])
    truth = true_weighted_loss(world, shares, target, weights)
    _, draws = weighted_loss_draws(posterior, shares, target, weights)
    q = np.quantile(draws, (0.05, 0.25, 0.75, 0.95), axis=0)
    reference, delta = chosen.versus["reference"], chosen.versus["delta"]
    ref = names.index(reference)
    posterior_gains = gains(draws, ref, delta, chosen.optimum_values)
    effective = mean_effective_shares(posterior.law, shares, target)[:, weights > 0]
    rows = []
    for i, name in enumerate(names):
        feasible = bool(np.all(shares[i] * target <= MAX_EPOCHS * available * (1 + 1e-6)))
        predicted = own_prediction(name, draws[:, i], problem, point, shares[i], target,
                                   weights)
        rows.append({
            "mix": name, "true_loss": truth[i], "regret": truth[i] - optimum.value,
            "feasible": feasible, "predicted": predicted, "optimism": predicted - truth[i],
            "post_mean": draws[:, i].mean(), "post_q05": q[0, i], "post_q95": q[3, i],
            "cover50": bool(q[1, i] <= truth[i] <= q[2, i]),
            "cover90": bool(q[0, i] <= truth[i] <= q[3, i]),
            "reference": reference, "delta": delta,
            **posterior_gains.iloc[i].to_dict(),
            "true_gain": truth[ref] - truth[i], "gain_exceeds_delta": bool(
                truth[ref] - truth[i] > delta),
            "true_near_optimal": bool(truth[i] - optimum.value < delta),
            "min_share": float(shares[i].min()),
            "min_effective_share": float(effective[i].min()),
            "l1_to_optimum": float(np.abs(shares[i] - optimum.shares).sum()),
            **{f"share_{j}": float(v) for j, v in enumerate(shares[i])},
        })
    return rows, {"optimum_loss": optimum.value, "polish_gain": optimum.polish_gain,
                  "uniform_regret": truth[names.index("uniform")] - optimum.value,
                  "reference": reference, "reference_regret": truth[ref] - optimum.value,
                  "delta": delta, "recommended": chosen.versus["recommended"]}


def interval_coverage(draws: np.ndarray, values: np.ndarray) -> tuple[float, float]:
    """Fraction of ``values`` inside the central 50% and 90% intervals of ``draws``
    (``(sample, ...)``)."""
    q = np.quantile(draws, (0.05, 0.25, 0.75, 0.95), axis=0)
    return (float(np.mean((values >= q[1]) & (values <= q[2]))),
            float(np.mean((values >= q[0]) & (values <= q[3]))))


def heldout(world: object, count: int, budgets: Sequence[float], rng: np.random.Generator
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Held-out runs: :func:`climb_bayes.simulate.heldout_runs` for a law world; for a DML
    world (which has no interference regime to avoid) the same draw without that filter:
    mixes ``0.3 / m + 0.7 * Dirichlet(1)``, budgets drawn from ``budgets``."""
    if not isinstance(world, DMLWorld):
        return heldout_runs(world, count, budgets, rng)
    m = len(world.sources)
    shares = 0.3 / m + 0.7 * rng.dirichlet(np.ones(m), count)
    tokens = rng.choice(np.asarray(budgets, dtype=float), count)
    truth = world.predict_loss(shares, tokens)[0]
    return shares, tokens, truth, truth + world.sigma * rng.standard_normal(truth.shape)


def calibration(posterior: Posterior, point: PointFit, world: object, target: float,
                seed: int) -> dict[str, float]:
    """Held-out runs inside the pilot budgets and at the target: coverage of 50% / 90%
    predictive intervals of new observations and RMSE of the posterior mean and point fit;
    at the target also the 90% coverage had the fit set ``model.extrapolation_sd`` to each
    of ``EXTRAPOLATION_SDS`` (:meth:`climb_bayes.model.loss_model.Law.extrapolation_error`)."""
    rng = np.random.default_rng(20_000 + seed)
    inside = tuple(b * c for b in PILOT_BUDGETS for c in CHECKPOINTS)
    scores = {}
    for where, budgets in (("inside", inside), ("target", (target,))):
        shares, tokens, truth, observed = heldout(world, HELDOUT, budgets, rng)
        mean = posterior.law.predict_loss(shares, tokens)
        predictive = np.asarray(predictive_losses(posterior, mean, jax.random.PRNGKey(seed)))
        if where == "target":
            for sd in EXTRAPOLATION_SDS:
                error = replace(posterior.law, extrapolation_sd=sd).extrapolation_error(
                    tokens, jax.random.PRNGKey(seed + 1))
                scores[f"pred_cover90_target_sd{sd:g}"] = interval_coverage(
                    predictive + np.asarray(error), observed)[1]
        mean = np.asarray(mean, np.float64)
        c50, c90 = interval_coverage(predictive, observed)
        m50, m90 = interval_coverage(mean, truth)
        scores |= {f"pred_cover50_{where}": c50, f"pred_cover90_{where}": c90,
                   f"mean_cover50_{where}": m50, f"mean_cover90_{where}": m90,
                   f"rmse_bayes_{where}": float(np.sqrt(np.mean((mean.mean(0) - truth) ** 2))),
                   f"rmse_point_{where}": float(np.sqrt(np.mean(
                       (point.law.predict_loss(shares, tokens)[0] - truth) ** 2)))}
    return scores


# --- one world ---------------------------------------------------------------------------------

def run_world(setting: Setting, seed: int, sampler: Sampler, point_starts: int,
              fraction: float = 1.0, fits: dict[str, tuple] | None = None
              ) -> tuple[list[dict], dict]:
    """Simulate, fit, decide and score one world; ``fraction < 1`` subsamples the pilots.

    ``fits`` caches :func:`fit_both` by the pilot table's content: settings that differ only
    in the target budget (``law_m4_pos_{10,100,1000}x``, for one) draw the same pilots for a
    seed, and the fit depends on nothing else."""
    frame, world, available, target = make_world(setting, seed)
    table = pilot_rows(validate_pilots(frame) if fraction >= 1.0
                       else subsample_runs(frame, fraction, seed), "final")  # fit's default
    weights = np.full(len(table.targets), 1.0 / len(table.targets))
    fits = {} if fits is None else fits
    key = table.frame.to_csv(index=False)
    if key not in fits:
        fits[key] = fit_both(table, sampler, point_starts)
    posterior, point, info = fits[key]
    mixes, problem, chosen = decide(posterior, point, target, available, weights)
    rows, truth = score_mixes(mixes, world, posterior, problem, point, chosen, target, weights,
                              available)
    scores = calibration(posterior, point, world, target, seed)
    key = {"setting": setting.name, "seed": seed, "fraction": fraction}
    world_row = {**key, **asdict(setting), "runs": table.frame["run_id"].nunique(),
                 "target_tokens": target, **info, **truth, **scores,
                 "two_step_gap_to_plugin": chosen.info["climb_two_step"]["gap_to_plugin"]}
    return [{**key, **row} for row in rows], world_row


# --- tables ------------------------------------------------------------------------------------

MIX_ORDER = ("posterior_mean", "plugin", "climb_two_step", "point_fit", "robust",
             "recommended", "isolated", "uniform", "uniform_capped", "natural", "temperature",
             "unimax")


def summary_table(mixes: pd.DataFrame) -> pd.DataFrame:
    """Per setting and mix: mean, sd, median and max of the true regret (nats); how often the
    mix truly gains more than ``delta`` over the reference and the posterior's mean
    ``P(gain > delta)``; mean optimism; coverage of the true ``W`` by the posterior's 90%
    interval; feasibility; the smallest share, and the smallest posterior-mean effective
    share of a language (below :data:`climb_bayes.model.law.FLOOR_REGION`: on the law's floor)."""
    grouped = mixes.groupby(["setting", "mix"], sort=False)
    table = grouped.agg(worlds=("regret", "size"), regret_mean=("regret", "mean"),
                        regret_sd=("regret", "std"), regret_median=("regret", "median"),
                        regret_max=("regret", "max"),
                        gain_exceeds_delta=("gain_exceeds_delta", "mean"),
                        p_gain=("p_gain", "mean"), optimism=("optimism", "mean"),
                        cover90_W=("cover90", "mean"), feasible=("feasible", "mean"),
                        min_share=("min_share", "min"),
                        min_effective_share=("min_effective_share", "min")).reset_index()
    table["mix"] = pd.Categorical(table["mix"], [m for m in MIX_ORDER if m in set(table["mix"])])
    return table.sort_values(["setting", "mix"]).reset_index(drop=True)


#: Bins of the posterior's ``P(gain > delta)`` in the reliability table.
RELIABILITY_BINS = (0.0, 0.5, 0.8, 0.9, 1.0)


def reliability_table(mixes: pd.DataFrame) -> pd.DataFrame:
    """Is ``P(gain > delta)`` calibrated? Every mix of every world except the reference
    itself, binned by the posterior's ``P(gain > delta)``: how many, their mean stated
    probability, and the fraction whose TRUE gain over the reference exceeds ``delta``."""
    rows = mixes[mixes["mix"] != mixes["reference"]]
    edges = np.asarray(RELIABILITY_BINS)
    index = np.clip(np.digitize(rows["p_gain"], edges[1:-1]), 0, len(edges) - 2)
    label = [f"[{edges[i]:g}, {edges[i + 1]:g}{']' if i == len(edges) - 2 else ')'}"
             for i in index]
    table = rows.groupby(label, sort=True).agg(
        mixes=("p_gain", "size"), stated=("p_gain", "mean"),
        observed=("gain_exceeds_delta", "mean"))
    return table.rename_axis("p_gain").reset_index()


CALIBRATION_COLUMNS = ("pred_cover50_inside", "pred_cover90_inside", "pred_cover50_target",
                       "pred_cover90_target",
                       *(f"pred_cover90_target_sd{sd:g}" for sd in EXTRAPOLATION_SDS),
                       "mean_cover90_target", "rmse_bayes_inside",
                       "rmse_point_inside", "rmse_bayes_target", "rmse_point_target",
                       "uniform_regret", "max_r_hat", "nuts_seconds")


def calibration_table(worlds: pd.DataFrame) -> pd.DataFrame:
    """Per setting: mean of the held-out calibration and error scores and fit diagnostics."""
    columns = [c for c in CALIBRATION_COLUMNS if c in worlds]
    table = worlds.groupby("setting", sort=False)[columns].mean()
    table.insert(0, "worlds", worlds.groupby("setting", sort=False).size())
    return table.reset_index()


DOUBT_LEVELS = (0.0, 0.5, 0.8, 0.9, 0.95, 0.99)


def doubt_table(mixes: pd.DataFrame) -> pd.DataFrame:
    """Mean true regret of the solver's rule under doubt at several thresholds, from the
    scored worlds: ``posterior_mean`` where the posterior's ``P(gain > delta) >= level``,
    else the reference (level 0 is ``posterior_mean`` itself; the solver's default is
    :data:`climb_bayes.decide.compare.DOUBT_THRESHOLD`), beside the reference, ``robust`` and
    ``recommended`` (the rule at the default threshold, as the solver applied it)."""
    wide = mixes.pivot_table(index=["setting", "seed", "fraction"], columns="mix",
                             values=["regret", "p_gain"], aggfunc="first")
    worlds = mixes.drop_duplicates(["setting", "seed", "fraction"]).set_index(
        ["setting", "seed", "fraction"])["reference"]
    reference = np.array([wide.loc[key, ("regret", name)] for key, name in worlds.items()])
    p = wide[("p_gain", "posterior_mean")].to_numpy()
    table = pd.DataFrame({f"level_{level:g}": np.where(
        p >= level, wide[("regret", "posterior_mean")], reference) for level in DOUBT_LEVELS},
        index=wide.index)
    table["reference"] = reference
    table["robust"] = wide[("regret", "robust")]
    table["recommended"] = wide[("regret", "recommended")]
    out = table.groupby(level="setting").mean()
    out.insert(0, "worlds", table.groupby(level="setting").size())
    return out.reset_index()


def efficiency_table(mixes: pd.DataFrame, worlds: pd.DataFrame) -> pd.DataFrame:
    """Per setting and pilot fraction: held-out RMSE (Bayes vs point) and the regret of
    ``posterior_mean``, ``plugin`` and ``point_fit``."""
    regret = mixes[mixes["mix"].isin(["posterior_mean", "plugin", "point_fit", "uniform"])]
    regret = regret.pivot_table(index=["setting", "fraction"], columns="mix", values="regret",
                                aggfunc="mean").add_prefix("regret_")
    error = worlds.groupby(["setting", "fraction"])[
        ["runs", "rmse_bayes_inside", "rmse_point_inside", "rmse_bayes_target",
         "rmse_point_target", "pred_cover90_target"]].mean()
    error.insert(0, "worlds", worlds.groupby(["setting", "fraction"]).size())
    return error.join(regret).reset_index().sort_values(["setting", "fraction"],
                                                        ascending=[True, False])


def show(title: str, table: pd.DataFrame) -> None:
    """Print a table with 4 significant digits."""
    print(f"\n== {title}")
    with pd.option_context("display.width", 250, "display.max_columns", 40):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))


# --- figures -----------------------------------------------------------------------------------

def regret_figure(mixes: pd.DataFrame, path: Path) -> None:
    """Regret of every mix in every world (dots) and its mean (bar), one panel per setting,
    on a symmetric-log axis (infeasible heuristics can have negative regret)."""
    import matplotlib  # noqa: PLC0415  (only for figures)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    settings = list(dict.fromkeys(mixes["setting"]))
    order = [m for m in MIX_ORDER if m in set(mixes["mix"])]
    cols = min(4, len(settings))
    rows = -(-len(settings) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.6 * rows), squeeze=False,
                             sharey=True)
    for ax, setting in zip(axes.flat, settings, strict=False):
        group = mixes[mixes["setting"] == setting]
        for x, mix in enumerate(order):
            values = group.loc[group["mix"] == mix, "regret"].to_numpy()
            ax.bar(x, values.mean(), color="C0" if mix in BAYES_MIXES else
                   "C1" if mix in (*POINT_MIXES, "point_fit") else "C7", alpha=0.6)
            ax.plot(np.full(len(values), x), values, "k.", ms=3)
        ax.set_yscale("symlog", linthresh=1e-4)
        ax.set_xticks(range(len(order)), order, rotation=70, fontsize=8)
        ax.set_title(f"{setting} ({group['seed'].nunique()} worlds)", fontsize=9)
        ax.axhline(0, color="k", lw=0.5)
    for ax in axes.flat[len(settings):]:
        ax.set_visible(False)
    axes[0, 0].set_ylabel("true regret at the target (nats)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def efficiency_figure(table: pd.DataFrame, path: Path) -> None:
    """Held-out RMSE at the target and regret against the fraction of pilots kept."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    settings = list(dict.fromkeys(table["setting"]))
    fig, axes = plt.subplots(2, len(settings), figsize=(4.5 * len(settings), 6.5),
                             squeeze=False)
    for j, setting in enumerate(settings):
        group = table[table["setting"] == setting].sort_values("fraction")
        for column, label in (("rmse_bayes_target", "Bayes (posterior mean)"),
                              ("rmse_point_target", "point fit")):
            axes[0, j].plot(group["fraction"], group[column], "o-", label=label)
        for column, label in (("regret_posterior_mean", "posterior_mean"),
                              ("regret_point_fit", "point_fit"), ("regret_uniform", "uniform")):
            axes[1, j].plot(group["fraction"], group[column], "o-", label=label)
        axes[0, j].set_title(setting, fontsize=9)
        axes[0, j].set_ylabel("held-out RMSE at the target")
        axes[1, j].set_ylabel("mean true regret (nats)")
        for ax in axes[:, j]:
            ax.set_xscale("log", base=2)
            ax.set_xlabel("fraction of the pilot design kept")
            ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- the command -------------------------------------------------------------------------------

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


def run(settings: Sequence[str], seeds: Sequence[int], fractions: Sequence[float],
        sampler: Sampler, point_starts: int, prefix: str, output: Path) -> None:
    """Run every (setting, seed, fraction) not yet in the CSVs; append as each finishes."""
    output.mkdir(parents=True, exist_ok=True)
    mix_path, world_path = output / f"{prefix}_mixes.csv", output / f"{prefix}_worlds.csv"
    done = done_keys(world_path)
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
                jax.clear_caches()  # each world compiles anew; kept, they filled 24 GB
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
    parser.add_argument("--merge", nargs="+", default=None,
                        help="gather the CSVs found under these folders into --output first")
    args = parser.parse_args()
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


if __name__ == "__main__":
    sys.exit(main())
