"""One world of the simulation study: simulate it, fit NUTS and the point fit, decide as the
solver does, and score every mix against the truth (regret, gains, optimism) and the
posterior's predictive intervals against held-out runs (calibration)."""

import time
from collections.abc import Sequence
from dataclasses import asdict, replace

import jax
import numpy as np

from benchmarks.point_fit import PointFit, fit_point
from benchmarks.simulation.settings import (
    CHECKPOINTS,
    EXTRAPOLATION_SDS,
    HELDOUT,
    MAX_EPOCHS,
    PILOT_BUDGETS,
    POINT_MIXES,
    Setting,
    make_world,
    subsample_runs,
)
from benchmarks.worlds import DMLWorld, true_optimum, true_weighted_loss
from climb_bayes.data.pilot_table import PilotTable
from climb_bayes.data.simulated import heldout_runs
from climb_bayes.data.validation import validate_pilots
from climb_bayes.decide.compare import gains
from climb_bayes.decide.decision import Decision, decision
from climb_bayes.decide.extrapolation import mean_effective_shares
from climb_bayes.decide.inputs import Options, feasible_bounds
from climb_bayes.decide.mixes import clean_shares
from climb_bayes.decide.objectives import Problem, point_estimate
from climb_bayes.decide.optimal_mix import minimise
from climb_bayes.decide.tables import weighted_loss_draws
from climb_bayes.model.fitting import Sampler, fit_posterior, pilot_rows
from climb_bayes.model.health import stored_health
from climb_bayes.model.posterior import Posterior, posterior_from_idata
from climb_bayes.model.priors import Priors
from climb_bayes.model.share_error import zero_share_rows
from climb_bayes.predict import predictive_losses


def fit_both(table: PilotTable, sampler: Sampler, point_starts: int,
             zero_share: PilotTable | None = None
             ) -> tuple[Posterior, PointFit, dict[str, float]]:
    """NUTS posterior (the law's error below the pilots' shares measured on ``zero_share``,
    as ``python -m climb_bayes.fit`` does) and the point fit."""
    start = time.perf_counter()
    idata = fit_posterior(table, Priors(), "source_saturating", sampler, zero_share=zero_share)
    nuts_seconds = time.perf_counter() - start
    health = stored_health(idata)
    posterior = posterior_from_idata(idata, allow_broken=True)
    start = time.perf_counter()
    point = fit_point(table, num_starts=point_starts, seed=sampler.seed)
    info = {"nuts_seconds": nuts_seconds, "point_seconds": time.perf_counter() - start,
            "health": health.verdict, "max_r_hat": health.max_r_hat,
            "min_ess_bulk": health.min_ess_bulk, "divergences": health.divergences,
            "share_sd": float(idata.posterior.attrs["share_sd"]),
            "share_sd_growth": float(idata.posterior.attrs["share_sd_growth"])}
    return posterior, point, info


def decide(posterior: Posterior, point: PointFit, target: float, available: np.ndarray,
           weights: np.ndarray) -> tuple[dict[str, np.ndarray], Problem, Decision]:
    """Every mix of the solver (:func:`climb_bayes.decide.decision.decision`: the optimised
    mixes, the
    heuristics and the reference), ``point_fit``, and ``recommended``: the mix the solver's
    rule under doubt recommends (``posterior_mean``, or the reference where
    ``P(gain > delta)`` is below the threshold)."""
    m = len(posterior.sources)
    lower, upper = feasible_bounds(np.zeros(m), np.ones(m), available, MAX_EPOCHS, target,
                                   posterior.sources)
    problem = Problem.at_budget(posterior.law, target, weights, lower, upper)
    chosen = decision(posterior, problem, Options(target, available, MAX_EPOCHS), weights)
    mixes = dict(zip(chosen.names, chosen.shares, strict=True))
    mixes["point_fit"] = clean_shares(minimise(Problem.at_budget(point.law, target, weights, lower,
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
    """Held-out runs: :func:`climb_bayes.data.simulated.heldout_runs` for a law world; for a DML
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
    at the target also the 90% coverage had the fit set ``law.extrapolation_sd`` to each
    of ``EXTRAPOLATION_SDS`` (:meth:`climb_bayes.model.loss_model.Law.extrapolation_error`)."""
    rng = np.random.default_rng(20_000 + seed)
    inside = tuple(b * c for b in PILOT_BUDGETS for c in CHECKPOINTS)
    scores = {}
    for where, budgets in (("inside", inside), ("target", (target,))):
        shares, tokens, truth, observed = heldout(world, HELDOUT, budgets, rng)
        mean = posterior.law.predict_loss(shares, tokens)
        predictive = np.asarray(predictive_losses(posterior, mean, tokens,
                                                       jax.random.PRNGKey(seed)))
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


def run_world(setting: Setting, seed: int, sampler: Sampler, point_starts: int,
              fraction: float = 1.0, fits: dict[str, tuple] | None = None
              ) -> tuple[list[dict], dict]:
    """Simulate, fit, decide and score one world; ``fraction < 1`` subsamples the pilots.

    ``fits`` caches :func:`fit_both` by the pilot table's content: settings that differ only
    in the target budget (``law_m4_pos_{10,100,1000}x``, for one) draw the same pilots for a
    seed, and the fit depends on nothing else."""
    frame, world, available, target = make_world(setting, seed)
    pilots = validate_pilots(frame) if fraction >= 1.0 else subsample_runs(frame, fraction, seed)
    table = pilot_rows(pilots, "final")  # fit's default
    weights = np.full(len(table.targets), 1.0 / len(table.targets))
    fits = {} if fits is None else fits
    key = table.frame.to_csv(index=False)
    if key not in fits:
        fits[key] = fit_both(table, sampler, point_starts, zero_share_rows(pilots))
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
