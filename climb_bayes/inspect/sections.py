"""The sections of the report, each a :class:`Section`: how to read it, its figures, tables and
notes. Sampling health, the scaling laws, cross-lingual transfer, the checks (posterior
predictive checks, PSIS-LOO, the comparison of interaction forms) and the decision."""

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from climb_bayes.decide.mix_directory import OPTIMAL_SHARE_DRAWS, OPTIMAL_SHARES, MixDirectory
from climb_bayes.inspect.decision import SolvedDecision, mix_markers, solved_decision
from climb_bayes.inspect.decision_plots import (
    gain_probability_plot,
    mix_loss_plot,
    optimal_share_plot,
)
from climb_bayes.inspect.diagnostic_plots import (
    KHAT_CEILING,
    compare_plot,
    energy_plot,
    health_variables,
    khat_plot,
    off_scale,
    ppc_plot,
    rank_plot,
    sampler_table,
    trace_plot,
)
from climb_bayes.inspect.figure import NoFigure
from climb_bayes.inspect.mix_directory import (
    solved_weights,
    solver_recommendation,
    solver_warnings,
)
from climb_bayes.inspect.scaling_plots import (
    observations,
    scaling_curves,
    scaling_plot,
    thin,
    token_grid,
)
from climb_bayes.inspect.transfer_plots import (
    pairs,
    transfer_draws,
    transfer_forest,
    transfer_heatmap,
    transfer_summary,
)
from climb_bayes.model.numpyro_model import PARAMETER_SITES
from climb_bayes.model.posterior import Posterior


@dataclass
class Section:
    """One part of the report: how to read it, its figures (file stem -> figure) and tables."""

    title: str
    text: str
    figures: dict[str, Figure] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add_figure(self, stem: str, draw: Callable[..., Figure], *args: Any, **kwargs: Any
                   ) -> None:
        """Draw ``draw(*args, **kwargs)`` as figure ``stem``; when its input leaves nothing
        to draw (:class:`climb_bayes.inspect.figure.NoFigure`), its sentence becomes a note
        instead."""
        try:
            self.figures[stem] = draw(*args, **kwargs)
        except NoFigure as absent:
            self.notes.append(str(absent))


def summary_table(idata: az.InferenceData) -> pd.DataFrame:
    """``az.summary`` of the law's parameters (entries fixed at zero by construction left out)."""
    names = [n for n in PARAMETER_SITES if n in idata.posterior]
    with warnings.catch_warnings():  # the zero diagonal of a and k has no spread to divide by
        warnings.simplefilter("ignore", RuntimeWarning)
        summary = az.summary(idata, var_names=names, hdi_prob=0.9)
    return summary[summary["sd"] > 0]


def health_section(idata: az.InferenceData, pairs: int = 4) -> Section:
    """Sampling health: R-hat, ESS, divergences, rank, trace and energy """
    variables = health_variables(idata, pairs)
    section = Section(
        "Sampling health",
        "Trust the rest only if R-hat is below 1.01 and the bulk and tail ESS are above about "
        "400 for every parameter, no transition diverged, the rank histograms are flat and "
        "the two energy distributions overlap (BFMI above 0.3). The rank and trace plots show "
        "every scaling exponent beta and the transfer coefficients a that mix worst (one with "
        "a chain that never moved first, then the lowest bulk ESS; the table below has them "
        "all), one panel per parameter.",
        tables={"sampler statistics per chain": sampler_table(idata),
                "az.summary of the law's parameters": summary_table(idata)})
    section.add_figure("rank", rank_plot, variables)
    section.add_figure("trace", trace_plot, idata, variables)
    section.add_figure("energy", energy_plot, idata)
    return section


def scaling_section(posterior: Posterior, target_tokens: float | None) -> Section:
    """The fitted scaling laws against the pilot losses."""
    observed = observations(posterior.idata)
    curves = scaling_curves(thin(posterior), token_grid(observed, target_tokens))
    section = Section(
        "Scaling laws",
        "Each panel is one evaluated language: its pilot losses over the training budget, with "
        "the fitted law for a monolingual run and for the uniform mix (posterior mean, 50% and "
        "90% bands). Monolingual pilots should sit on the green band; mixed pilots lie between "
        "the curves according to their share of the language. Beyond the dotted line the law "
        "extrapolates, and the bands show how much that is worth. "
        + extrapolation_note(posterior))
    section.add_figure("scaling_laws", scaling_plot, curves, observed, posterior.targets,
                       target_tokens)
    return section


def extrapolation_note(posterior: Posterior) -> str:
    """What the intervals beyond the largest pilot budget carry: the law's learned error in
    budget (:mod:`climb_bayes.model.discrepancy`) and ``law.extrapolation_sd``, when set."""
    where = f"Beyond the largest pilot budget ({posterior.law.pilot_tokens:.3g} tokens)"
    bend = posterior.law.bend
    if bend is None:
        carried = ("the intervals carry the uncertainty of the law's parameters only: they "
                   "trust the law itself (law.priors.discrepancy_scale = 0 and "
                   "law.priors.exponent_drift_scale = 0)")
    else:
        def medians(draws: np.ndarray) -> str:
            return ", ".join(f"{t} {v:.3g}" for t, v in zip(posterior.targets,
                                                             np.median(draws, axis=0),
                                                             strict=True))

        parts = []
        if bend.curvature is not None:
            parts.append("an exponent that falls by gamma per e-fold of budget, so each "
                         "language's curve keeps bending the way the pilots' curves bend "
                         f"(posterior median gamma: {medians(bend.curvature)})")
        if np.any(bend.sd > 0):
            parts.append("a random walk whose slope wanders by tau per e-fold (posterior "
                         f"median tau: {medians(bend.sd)})")
        carried = ("the intervals carry the law's learned error in budget: each language's "
                   "reducible loss bends away from the power law by " + ", and by ".join(parts))
    fixed = ("" if posterior.law.extrapolation_sd == 0.0 else
             f", and a fixed error of {posterior.law.extrapolation_sd:g} nats per e-fold of "
             f"extrapolation (law.extrapolation_sd)")
    return f"{where} {carried}{fixed}. {share_note(posterior)}"


def share_note(posterior: Posterior) -> str:
    """What predictions carry below the smallest share the pilots measured each language at
    (:mod:`climb_bayes.model.share_error`)."""
    law = posterior.law
    if not law.has_share_error:
        return ("Below the smallest share the pilots measured a language at, the intervals "
                "trust the law (law.share_sd = law.share_sd_growth = 0).")
    smallest = ", ".join(f"{t} {m:.3g}" for t, m in zip(law.targets, law.measured.own,
                                                         strict=True) if m > 0)
    origin = posterior.idata.posterior.attrs.get("share_sd_from", "law.share_sd")
    return (f"Below the smallest share the pilots measured each language at ({smallest}), "
            f"and below the smallest effective share, the intervals carry the law's error "
            f"there, growing to {law.share_sd:.3g} on the log of the reducible loss at a share "
            f"of 0 or an e-fold of effective share below, and by {law.share_sd_growth:.3g} per "
            f"e-fold deeper ({origin}); the solver pays for it in expectation.")


def transfer_section(idata: az.InferenceData, tokens: float, forest_pairs: int = 20
                     ) -> Section:
    """Cross-lingual transfer at ``tokens``: heatmap of means with P(>0), forest of the largest."""
    alpha = transfer_draws(idata, tokens)
    mean, positive = transfer_summary(alpha)
    text = (f"alpha(j->i) at D = {tokens:.3g} tokens is how many tokens of target i one token "
            f"of source j is worth (before saturation): positive helps, negative interferes. "
            f"Each cell gives the posterior mean and the probability that the coefficient is "
            f"positive; a probability near 50% means the pilots do not tell the sign. The "
            f"forest plot shows the largest coefficients with 50% and 90% intervals.")
    section = Section("Cross-lingual transfer", text,
                      tables={"posterior mean of alpha (rows: source, columns: target)": mean,
                              "P(alpha > 0)": positive})
    if pairs(alpha).sizes["pair"]:
        section.add_figure("transfer_heatmap", transfer_heatmap, mean, positive, tokens)
        section.add_figure("transfer_forest", transfer_forest, alpha, forest_pairs)
    else:
        section.notes.append("no transfer coefficients: a single language.")
    return section


def _recorded(function: Any, *args: Any, **kwargs: Any) -> tuple[Any, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = function(*args, **kwargs)
    messages = list(dict.fromkeys(str(w.message).strip() for w in caught
                                  if not issubclass(w.category, FutureWarning)))
    return result, messages


def good_k(loo: az.ELPDData) -> float:
    """The Pareto k below which PSIS-LOO is reliable for this number of draws (at most 0.7)."""
    value = loo.get("good_k") if hasattr(loo, "get") else None
    try:
        return float(value) if np.isfinite(float(value)) else 0.7
    except (TypeError, ValueError):
        return 0.7


def loo_table(loo: az.ELPDData) -> pd.DataFrame:
    """elpd_loo, its standard error, p_loo and how many Pareto k are good, bad, very bad."""
    k, threshold = np.asarray(loo.pareto_k), good_k(loo)
    return pd.DataFrame({"elpd_loo": [loo.elpd_loo], "se": [loo.se], "p_loo": [loo.p_loo],
                         f"k <= {threshold:.2f} (good)": [(k <= threshold).sum()],
                         f"{threshold:.2f} < k <= 1 (bad)": [((k > threshold) & (k <= 1)).sum()],
                         "k > 1 (very bad)": [(k > 1).sum()]})


def khat_notes(k: np.ndarray) -> list[str]:
    """A sentence on the Pareto k drawn at
    :data:`climb_bayes.inspect.diagnostic_plots.KHAT_CEILING`, if any."""
    beyond = int(off_scale(k).sum())
    if not beyond:
        return []
    infinite = (" An infinite k means that the observation's largest importance ratios are "
                "all equal, as when the chains did not move." if np.isinf(k).any() else "")
    return [f"{beyond} of {k.size} observations have a Pareto k above {KHAT_CEILING} or "
            f"one that is not a number; the Pareto k plot draws them at {KHAT_CEILING} "
            f"as red triangles.{infinite}"]


def checks_section(idata: az.InferenceData, others: Mapping[str, az.InferenceData],
                   form: str, ppc_draws: int = 50, seed: int = 0) -> Section:
    """Posterior predictive checks, PSIS-LOO and the comparison of interaction forms."""
    loo, notes = _recorded(az.loo, idata, pointwise=True)
    section = Section(
        "Posterior predictive checks and PSIS-LOO",
        "The replicated loss densities (blue) should cover the observed one (black) for every "
        "language. A Pareto k above the dashed line (0.7, lower with few draws) marks a pilot "
        "loss that PSIS-LOO cannot approximate "
        "(an influential or badly fitted run). When another interaction form was fitted "
        "(compare_forms=true), az.compare ranks the forms by expected log predictive density.",
        tables={"PSIS-LOO": loo_table(loo)}, notes=[f"az.loo: {n}" for n in notes])
    section.add_figure("ppc", ppc_plot, idata, ppc_draws, seed)
    section.add_figure("khat", khat_plot, loo, good_k(loo))
    section.notes += khat_notes(np.asarray(loo.pareto_k, dtype=float))
    if others:
        comparison, notes = _recorded(az.compare, {form: idata, **others}, ic="loo")
        section.add_figure("compare", compare_plot, comparison)
        section.tables["az.compare of the interaction forms"] = comparison
        section.notes += [f"az.compare: {n}" for n in notes]
    else:
        section.notes.append("only one interaction form was fitted; fit with "
                             "compare_forms=true to compare the forms by PSIS-LOO.")
    return section


def decision_text(posterior: Posterior, mixes: MixDirectory,
                  solved: SolvedDecision | list[str]) -> str:
    """How to read the decision section; for a directory without the solver's decision, what
    it lacks (:func:`climb_bayes.inspect.decision.solved_decision`)."""
    if isinstance(solved, list):
        return (f"The mixes in {mixes.path} carry no decision: the directory lacks "
                f"{'; '.join(solved)}, which python -m climb_bayes.solve writes. Solve for "
                f"them, or get their predicted losses with python -m climb_bayes.predict.")
    weights = solved_weights(mixes)
    weighting = ("language weights " + ", ".join(f"{k} {v:.3g}" for k, v in weights.items())
                 if weights else "the solver's language weights")
    reference = solved.reference
    return (f"The decision python -m climb_bayes.solve made for a target budget of D = "
            f"{solved.budget:.3g} tokens, as it wrote it in {mixes.path}. The first figure "
            f"shows each mix's predicted loss minus the {reference} mix's, per language, with "
            f"90% intervals over the posterior draws (left of zero is better); the last row is "
            f"the weighted total. The gain of a mix is the {reference} mix's weighted loss "
            f"({weighting}) minus its own, draw by draw; P(gain > delta) is the share of "
            f"posterior draws in which the gain exceeds delta = {solved.delta:.3g} nats "
            f"({solved.delta_from}): a smaller gain could not be seen in one training run. "
            f"{extrapolation_note(posterior)}")


def decision_section(posterior: Posterior, mixes: MixDirectory) -> Section:
    """The solver's decision as it wrote it (:func:`climb_bayes.inspect.decision.solved_decision`):
    each mix's predicted losses and its loss minus the reference's, the optimal shares'
    posterior and ``P(gain > delta)`` over the reference."""
    solved = solved_decision(mixes)
    tables = {} if isinstance(solved, list) else {
        f"mixes: weighted loss and gain over {solved.reference}": solved.comparison,
        "predicted loss per mix and language (nats)": solved.losses}
    section = Section("The decision", decision_text(posterior, mixes, solved),
                      tables={**tables, "shares of the mixes": mixes.shares.reset_index()},
                      notes=[*solver_recommendation(mixes), *mixes.notes,
                             *solver_warnings(mixes)])
    if not isinstance(solved, list):
        section.add_figure("mix_losses", mix_loss_plot, solved.differences, solved.reference)
    if mixes.optimal_share_draws is not None or mixes.optimal_shares is not None:
        section.add_figure("optimal_shares", optimal_share_plot, mixes.optimal_share_draws,
                           mixes.optimal_shares, mix_markers(mixes.shares))
        if mixes.optimal_shares is not None:
            section.tables["the solver's optimal share per language"] = (
                mixes.optimal_shares.rename_axis("language").reset_index())
    else:
        section.notes.append(f"{mixes.path} has neither {OPTIMAL_SHARE_DRAWS} nor "
                             f"{OPTIMAL_SHARES}: no posterior of the optimal shares.")
    if not isinstance(solved, list):
        section.add_figure("p_gain", gain_probability_plot, solved.p_gain, solved.reference,
                           solved.delta)
    return section
