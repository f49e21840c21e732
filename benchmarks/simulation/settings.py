"""The simulation study's grid: its constants, its settings, and the pilots, truth, available
tokens and target budget of each world (a setting and a seed)."""

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from benchmarks.worlds import (
    draw_availability,
    draw_bent_world,
    draw_dml_world,
    draw_prior_bent_world,
)
from climb_bayes.data.designs import climb_design
from climb_bayes.data.pilot_table import PilotTable
from climb_bayes.data.simulated import (
    World,
    checkpoint_table,
    draw_world,
    language_names,
    observe,
    simulate_pilots,
)
from climb_bayes.data.validation import validate_pilots
from climb_bayes.errors import InputError
from climb_bayes.model.fitting import pilot_rows
from climb_bayes.model.law import self_map
from climb_bayes.model.numpyro_model import reference_tokens

PILOT_BUDGETS = (3e6, 1e7, 3e7)  # three budgets, 2.3 e-folds: the law's bend is visible
CHECKPOINTS = (0.25, 0.5, 1.0)
MAX_EPOCHS = 4.0
NOISE = 0.02
HELDOUT = 100
#: ``law.extrapolation_sd`` values (nats per e-fold) whose coverage at the target is scored.
EXTRAPOLATION_SDS = (0.02, 0.05)
BAYES_MIXES = ("posterior_mean", "robust", "isolated", "recommended")
POINT_MIXES = ("plugin", "climb_two_step")


@dataclass(frozen=True)
class Setting:
    """One cell of the study's grid."""

    name: str
    truth: str  # "law", "law_symmetric" (uniform is optimal), "law_bent" (the law bent
    #             beyond the pilots), "law_prior_bent" (bent as the model's priors say) or
    #             "dml" (misspecified)
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
    Setting("prior_bent_m4_10x", "law_prior_bent", 4, 0.15, 0.10, 10),
    Setting("prior_bent_m4_100x", "law_prior_bent", 4, 0.15, 0.10, 100),
    Setting("dml_m4_10x", "dml", 4, -0.3, 0.5, 10),
    Setting("dml_m4_scarce_100x", "dml", 4, -0.3, 0.5, 100, scarce=1),
)}
QUICK_SETTINGS = ("law_m4_pos_10x", "law_m4_neg_10x", "dml_m4_10x")
EFFICIENCY_SETTINGS = ("law_m4_pos_10x", "dml_m4_10x")


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
    if setting.truth in ("law", "law_bent", "law_prior_bent"):
        frame, world = simulate_pilots(languages=setting.languages, budgets=PILOT_BUDGETS,
                                       checkpoints=CHECKPOINTS,
                                       transfer_mean=setting.transfer_mean,
                                       transfer_sd=setting.transfer_sd, noise=NOISE, seed=seed,
                                       untrained=True)
        if setting.truth == "law":
            return frame, world, available, target
        if setting.truth == "law_bent":  # the same law, bent
            bent = draw_bent_world(rng, world, max(PILOT_BUDGETS), target)
        else:  # at the knots of the rows the fit sees
            bent = draw_prior_bent_world(seed, world, pilot_rows(validate_pilots(frame), "final"))
        points = checkpoint_table(climb_design(world.sources, PILOT_BUDGETS, seed=seed),
                                  CHECKPOINTS)
        return observe(bent, points, rng, untrained=True), bent, available, target
    names = language_names(setting.languages)
    points = checkpoint_table(climb_design(names, PILOT_BUDGETS, seed=seed), CHECKPOINTS)
    world = draw_dml_world(rng, names, reference_tokens(points["tokens"]),
                           setting.transfer_mean, setting.transfer_sd, NOISE)
    return observe(world, points, rng, untrained=True), world, available, target


def symmetric_world(setting: Setting, seed: int, rng: np.random.Generator
                    ) -> tuple[pd.DataFrame, World]:
    """A correctly specified world in which uniform is the optimal mix: a world from
    :func:`climb_bayes.data.simulated.draw_world` with every language's ``E, B, beta, eta`` replaced
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
    return observe(world, points, rng, untrained=True), world


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
