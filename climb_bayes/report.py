"""A report a person can read, without Jupyter: ``python -m climb_bayes.report``.

``python -m climb_bayes.report posterior=DIR/posterior.nc mixes=MIXDIR output=OUT`` writes the
figures of :mod:`climb_bayes.inspect.plots` as PNG files in ``OUT`` and one HTML page,
``OUT/report.html``, with every figure embedded (and linked to its PNG) and the tables, so the
page can be shared alone. The page opens with the fit's health verdict
(:mod:`climb_bayes.model.health`): a green line when healthy, an amber box when marginal, a red one
when broken; a broken fit's posterior is refused (exit 2) unless ``allow_broken=true``. A
figure that its input leaves empty (chains that never moved, draws that are not numbers) is
left out, with a note saying why. Sections, each with a sentence on how to read it:

1. sampling health: ``az.summary``, per-chain sampler statistics, rank, trace and energy plots;
2. the scaling laws: pilot losses against the fitted curves with 50/90% bands;
3. cross-lingual transfer: heatmap of the posterior mean of ``alpha_{j->i}`` at a budget, with
   ``P(alpha > 0)``, and a forest plot of the largest coefficients;
4. checks: posterior predictive checks, PSIS-LOO with Pareto k, and ``az.compare`` of the
   interaction forms when ``posterior_<form>.nc`` for another form lies beside the posterior;
5. the decision (only with ``mixes=DIR``, a directory written by ``python -m climb_bayes.solve``):
   each mix's per-language predicted loss with 90% intervals, computed here from the posterior
   (the solver's numbers are shown beside them), the posterior of each language's optimal share
   and ``P(mix beats uniform)``.

A mix directory holds ``<name>.yaml`` mix files (:class:`climb_bayes.decide.mix_file.MixFile`: the
target
budget is read from them when ``tokens`` is not given, and the language weights), and optionally
``comparison.csv``, ``optimal_shares.csv`` and ``optimal_share_draws.csv``. Bad input (no
posterior, no mixes in the directory, a mix naming a language the posterior does not know)
exits with status 2 before anything is written.
"""

import base64
import html
import io
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import arviz as az
import hydra
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from omegaconf import DictConfig

from climb_bayes.cli import (
    check_command_line,
    count,
    flag,
    optional_positive,
    output_directory,
    positive,
)
from climb_bayes.data.pilot_table import SHARE_PREFIX, read_csv
from climb_bayes.decide.compare import gains
from climb_bayes.decide.mix_file import MixFile, NotAMixFile, check_shares
from climb_bayes.errors import InputError, exits_on_input_error
from climb_bayes.inspect import plots
from climb_bayes.io import atomic_path, write_text
from climb_bayes.model.health import BROKEN, HEALTHY, Health
from climb_bayes.model.numpyro_model import PARAMETER_SITES
from climb_bayes.model.posterior import Posterior, read_posterior
from climb_bayes.solve import noise_margin

#: Name of the reference mix every mix is compared with.
UNIFORM = "uniform"
#: Label of the weighted loss over all evaluated languages in the decision figure.
WEIGHTED = "weighted total"
#: Solver outputs read from a mix directory, when present.
SOLVER_TABLES = ("comparison.csv", "optimal_shares.csv", "optimal_share_draws.csv")
LEVELS = (0.05, 0.5, 0.95)
#: What ``tokens`` is, for messages.
BUDGET = "target budget in training tokens"


# --------------------------------------------------------------------------------------------
# Reading the solver's mix directory
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MixDirectory:
    """What ``python -m climb_bayes.solve`` wrote, checked against the posterior's languages."""

    path: Path
    shares: pd.DataFrame  # mix x source, rows on the simplex
    files: dict[str, MixFile]  # mix -> its file
    comparison: pd.DataFrame | None = None
    optimal_shares: pd.DataFrame | None = None  # language x (mean, q05, q50, q95)
    optimal_share_draws: pd.DataFrame | None = None  # draw x language
    notes: tuple[str, ...] = ()


def mix_shares(path: Path, mix: MixFile, sources: list[str]) -> np.ndarray:
    """The shares of one mix file over ``sources`` (0 for a source it leaves out), checked."""
    shares = check_shares(mix.shares, str(path), sources, "the posterior's training languages",
                          "Solve again with this posterior or pass the posterior these mixes "
                          "were solved for.")
    return np.array([shares.get(source, 0.0) for source in sources])


def _read_csv(path: Path) -> pd.DataFrame | None:
    return read_csv(path) if path.is_file() else None


def _optimal_share_draws(frame: pd.DataFrame | None, path: Path, sources: list[str]
                         ) -> pd.DataFrame | None:
    if frame is None:
        return None
    columns = [c for c in frame.columns if c.startswith(SHARE_PREFIX)]
    unknown = [c for c in columns if c.removeprefix(SHARE_PREFIX) not in sources]
    if unknown or not columns:
        raise InputError(f"{path}: columns {unknown or '(no share_<lang> columns)'} do not "
                         f"match the posterior's training languages {sources}.")
    draws = frame[columns].apply(pd.to_numeric, errors="coerce")
    draws.columns = [c.removeprefix(SHARE_PREFIX) for c in columns]
    return draws


def _optimal_shares(frame: pd.DataFrame | None, path: Path, sources: list[str]
                    ) -> pd.DataFrame | None:
    if frame is None:
        return None
    key = "language" if "language" in frame.columns else frame.columns[0]
    table = frame.set_index(key)
    table.index = [str(i).removeprefix(SHARE_PREFIX) for i in table.index]
    missing = [c for c in ("q05", "q50", "q95") if c not in table.columns]
    unknown = [i for i in table.index if i not in sources]
    if missing or unknown:
        raise InputError(f"{path}: needs one row per training language of {sources} with "
                         f"columns mean, q05, q50, q95; missing columns {missing}, unknown "
                         f"languages {unknown}.")
    return table.apply(pd.to_numeric, errors="coerce")


def read_mix_directory(path: str | Path, sources: list[str]) -> MixDirectory:
    """Read the solver's mix directory; InputError naming the file and the fix when it is bad."""
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"mix directory {path} does not exist; write one with "
                         f"`python -m climb_bayes.solve posterior=... output={path}`, or leave "
                         f"`mixes` out to skip the decision section.")
    rows, files, notes = {}, {}, []
    for file in sorted(path.glob("*.yaml")):
        try:
            files[file.stem] = MixFile.read(file)
        except NotAMixFile:
            notes.append(f"{file.name} has no top-level 'shares' and was skipped.")
            continue
        rows[file.stem] = mix_shares(file, files[file.stem], sources)
    if not rows:
        raise InputError(f"mix directory {path} holds no mix: expected <name>.yaml files with "
                         f"a top-level 'shares: {{<lang>: share}}' as written by "
                         f"`python -m climb_bayes.solve`.")
    tables = {name: _read_csv(path / name) for name in SOLVER_TABLES}
    return MixDirectory(
        path=path, shares=pd.DataFrame(rows, index=sources).T.rename_axis("mix"),
        files=files, comparison=tables["comparison.csv"],
        optimal_shares=_optimal_shares(tables["optimal_shares.csv"],
                                       path / "optimal_shares.csv", sources),
        optimal_share_draws=_optimal_share_draws(tables["optimal_share_draws.csv"],
                                                 path / "optimal_share_draws.csv", sources),
        notes=tuple(notes))


def decision_budget(mixes: MixDirectory, tokens: float | None) -> float:
    """The budget of the decision: ``tokens`` if given, else the mixes' ``target_tokens``."""
    if tokens is None:
        values = sorted({mix.target_tokens for mix in mixes.files.values()} - {None})
        if not values:
            raise InputError(f"no target budget in the metadata of the mixes in {mixes.path}; "
                             f"pass tokens=N (total training tokens of the full run).")
        if len(values) > 1:
            raise InputError(f"the mixes in {mixes.path} were solved for different budgets "
                             f"{values}; pass tokens=N to choose one.")
        return positive(values[0], f"{mixes.path}: metadata.provenance.target_tokens", BUDGET,
                        "tokens=2e9 to override it")
    return positive(tokens, "tokens", BUDGET, "tokens=2e9")


def _is_number(value: Any) -> bool:
    try:
        return bool(np.isfinite(float(value)))
    except (TypeError, ValueError):
        return False


def language_weights(mixes: MixDirectory, targets: list[str]) -> tuple[np.ndarray, str]:
    """Weights of the evaluated languages the mixes were solved with (normalised to sum to 1),
    else equal; with a sentence saying which."""
    for name, mix in mixes.files.items():
        weights = mix.weights
        if weights is not None and set(weights) <= set(targets):
            values = np.array([weights.get(t, 0.0) for t in targets])
            if (values >= 0).all() and values.sum() > 0:
                return values / values.sum(), f"language weights from {name}.yaml's metadata"
    return np.full(len(targets), 1.0 / len(targets)), "equal language weights"


# --------------------------------------------------------------------------------------------
# The decision, computed from the posterior
# --------------------------------------------------------------------------------------------

def with_uniform(shares: pd.DataFrame) -> pd.DataFrame:
    """The mixes with a ``uniform`` row (equal shares) added when there is none."""
    if UNIFORM in shares.index:
        return shares
    uniform = pd.DataFrame([np.full(shares.shape[1], 1.0 / shares.shape[1])],
                           index=pd.Index([UNIFORM], name=shares.index.name),
                           columns=shares.columns)
    return pd.concat([shares, uniform])


def mix_losses(posterior: Posterior, shares: pd.DataFrame, tokens: float) -> np.ndarray:
    """Noise-free loss of every draw, mix and target at ``tokens``: ``(sample, mix, target)``."""
    budgets = np.full(len(shares), float(tokens))
    return posterior.law.predict_loss(shares[posterior.sources].to_numpy(), budgets)


def _quantile_columns(draws: np.ndarray) -> dict[str, np.ndarray]:
    quantiles = np.quantile(draws, LEVELS, axis=0)
    return {"mean": draws.mean(0),
            **{f"q{round(100 * p):02d}": q for p, q in zip(LEVELS, quantiles, strict=True)}}


def loss_table(losses: np.ndarray, mixes: list[str], targets: list[str],
               files: Mapping[str, MixFile] | None = None) -> pd.DataFrame:
    """One row per (mix, language): posterior mean and 5/50/95% quantiles of the loss.

    ``solver_mean`` is the solver's own predicted mean from the mix's file (for a cross-check),
    else NaN.
    """
    columns = {k: v.ravel() for k, v in _quantile_columns(losses).items()}
    table = pd.DataFrame({"mix": np.repeat(mixes, len(targets)),
                          "language": np.tile(targets, len(mixes)), **columns})
    files = files or {}
    table["solver_mean"] = [files[m].predicted_mean(t) if m in files else np.nan
                            for m, t in zip(table["mix"], table["language"], strict=True)]
    return table


def loss_differences(losses: np.ndarray, mixes: list[str], targets: list[str],
                     reference: str = UNIFORM) -> pd.DataFrame:
    """Per draw, each mix's loss minus the ``reference`` mix's; quantiles per (mix, language)."""
    ref = mixes.index(reference)
    keep = [m for m, name in enumerate(mixes) if name != reference]
    difference = losses[:, keep, :] - losses[:, ref:ref + 1, :]
    return loss_table(difference, [mixes[m] for m in keep], targets).drop(
        columns="solver_mean")


def decision_table(losses: np.ndarray, mixes: list[str], weights: np.ndarray,
                   reference: str, delta: float, comparison: pd.DataFrame | None = None
                   ) -> pd.DataFrame:
    """Per mix: posterior of the weighted loss and of its gain over ``reference`` (draw by
    draw), and ``P(gain > delta)`` (:func:`climb_bayes.decide.compare.gains`), computed here; NaN
    where the weighted losses are not numbers, and for the reference itself.

    Columns of the solver's ``comparison.csv`` are appended with a ``solver_`` prefix.
    """
    weighted = losses @ weights  # (sample, mix)
    versus = gains(weighted, mixes.index(reference), delta)
    versus.loc[~np.isfinite(weighted).all(0), "p_gain"] = np.nan
    table = pd.concat([
        pd.DataFrame({"mix": mixes, **{f"weighted_loss_{k}": v
                                       for k, v in _quantile_columns(weighted).items()}}),
        versus], axis=1)
    table.loc[table["mix"] == reference, "p_gain"] = np.nan
    if comparison is not None and "mix" in comparison.columns:
        solver = comparison.drop_duplicates("mix").set_index("mix").add_prefix("solver_")
        table = table.join(solver, on="mix")
    return table


def with_weighted(losses: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The losses with the weighted loss appended as one more target: ``(sample, mix, t + 1)``."""
    return np.concatenate([losses, (losses @ weights)[..., None]], axis=-1)


def solver_warnings(mixes: MixDirectory) -> list[str]:
    """The solver's extrapolation warnings from the mixes' metadata, each once."""
    return list(dict.fromkeys(f"solver: {w}" for mix in mixes.files.values()
                              for w in mix.warnings))


def solver_comparison(mixes: MixDirectory) -> dict[str, Any]:
    """The solver's ``metadata.comparison`` (reference, ``delta``, the recommendation:
    :func:`climb_bayes.solve.decision`) from its mix files; empty from older files."""
    return next((mix.comparison for mix in mixes.files.values() if mix.comparison), {})


def solver_recommendation(mixes: MixDirectory) -> list[str]:
    """The solver's recommendation under doubt (:func:`climb_bayes.decide.compare.recommendation`),
    once; none from older files."""
    comparison = solver_comparison(mixes)
    if isinstance(comparison.get("recommendation"), str):
        return [f"solver recommends {comparison.get('recommended')}: "
                f"{comparison['recommendation']}"]
    return []


def reference_and_margin(mixes: MixDirectory, names: list[str], posterior: Posterior,
                         weights: np.ndarray) -> tuple[str, float, str]:
    """The reference mix and ``delta`` the solver compared against, where its files say and
    the reference is among ``names``; else ``uniform`` and the run-to-run noise of the
    posterior (:func:`climb_bayes.solve.noise_margin`). Also where ``delta`` came from."""
    comparison = solver_comparison(mixes)
    reference = comparison.get("reference")
    reference = reference if reference in names else UNIFORM
    if _is_number(comparison.get("delta")):
        return reference, float(comparison["delta"]), "the solver's delta"
    delta, source = noise_margin(posterior, weights)
    return reference, delta, source


def mix_markers(shares: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Shares of the mixes worth marking on the optimal-share figure."""
    names = [n for n in ("posterior_mean", UNIFORM) if n in shares.index]
    return {n: shares.loc[n].to_dict() for n in names}


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------

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
        to draw (:class:`climb_bayes.inspect.plots.NoFigure`), its sentence becomes a note
        instead."""
        try:
            self.figures[stem] = draw(*args, **kwargs)
        except plots.NoFigure as absent:
            self.notes.append(str(absent))


def summary_table(idata: az.InferenceData) -> pd.DataFrame:
    """``az.summary`` of the law's parameters (entries fixed at zero by construction left out)."""
    names = [n for n in PARAMETER_SITES if n in idata.posterior]
    with warnings.catch_warnings():  # the zero diagonal of a and k has no spread to divide by
        warnings.simplefilter("ignore", RuntimeWarning)
        summary = az.summary(idata, var_names=names, hdi_prob=0.9)
    return summary[summary["sd"] > 0]


def health_section(idata: az.InferenceData, pairs: int = 4) -> Section:
    """Sampling health: R-hat, ESS, divergences, rank, trace and energy plots."""
    variables = plots.health_variables(idata, pairs)
    section = Section(
        "Sampling health",
        "Trust the rest only if R-hat is below 1.01 and the bulk and tail ESS are above about "
        "400 for every parameter, no transition diverged, the rank histograms are flat and "
        "the two energy distributions overlap (BFMI above 0.3). The rank and trace plots show "
        "every scaling exponent beta and the transfer coefficients a that mix worst (one with "
        "a chain that never moved first, then the lowest bulk ESS; the table below has them "
        "all), one panel per parameter.",
        tables={"sampler statistics per chain": plots.sampler_table(idata),
                "az.summary of the law's parameters": summary_table(idata)})
    section.add_figure("rank", plots.rank_plot, variables)
    section.add_figure("trace", plots.trace_plot, idata, variables)
    section.add_figure("energy", plots.energy_plot, idata)
    return section


def scaling_section(posterior: Posterior, target_tokens: float | None) -> Section:
    """The fitted scaling laws against the pilot losses."""
    observed = plots.observations(posterior.idata)
    curves = plots.scaling_curves(plots.thin(posterior),
                                  plots.token_grid(observed, target_tokens))
    section = Section(
        "Scaling laws",
        "Each panel is one evaluated language: its pilot losses over the training budget, with "
        "the fitted law for a monolingual run and for the uniform mix (posterior mean, 50% and "
        "90% bands). Monolingual pilots should sit on the green band; mixed pilots lie between "
        "the curves according to their share of the language. Beyond the dotted line the law "
        "extrapolates, and the bands show how much that is worth. "
        + extrapolation_note(posterior))
    section.add_figure("scaling_laws", plots.scaling_plot, curves, observed, posterior.targets,
                       target_tokens)
    return section


def extrapolation_note(posterior: Posterior) -> str:
    """What the intervals beyond the largest pilot budget carry: the law's learned error in
    budget (:mod:`climb_bayes.model.discrepancy`) and ``model.extrapolation_sd``, when set."""
    where = f"Beyond the largest pilot budget ({posterior.law.pilot_tokens:.3g} tokens)"
    if posterior.law.bend is None:
        carried = ("the intervals carry the uncertainty of the law's parameters only: they "
                   "trust the law itself (model.priors.discrepancy_scale = 0)")
    else:
        tau = np.median(posterior.law.bend.sd, axis=0)
        carried = ("the intervals carry the law's learned error in budget: each language's "
                   "reducible loss bends away from the power law by a random walk whose "
                   "slope wanders by tau per e-fold (posterior median tau: "
                   + ", ".join(f"{t} {v:.3g}" for t, v in zip(posterior.targets, tau,
                                                             strict=True)) + ")")
    if posterior.law.extrapolation_sd == 0.0:
        return f"{where} {carried}."
    return (f"{where} {carried}, and a fixed error of {posterior.law.extrapolation_sd:g} nats per "
            f"e-fold of extrapolation (model.extrapolation_sd).")


def transfer_section(idata: az.InferenceData, tokens: float, forest_pairs: int = 20
                     ) -> Section:
    """Cross-lingual transfer at ``tokens``: heatmap of means with P(>0), forest of the largest."""
    alpha = plots.transfer_draws(idata, tokens)
    mean, positive = plots.transfer_summary(alpha)
    text = (f"alpha(j->i) at D = {tokens:.3g} tokens is how many tokens of target i one token "
            f"of source j is worth (before saturation): positive helps, negative interferes. "
            f"Each cell gives the posterior mean and the probability that the coefficient is "
            f"positive; a probability near 50% means the pilots do not tell the sign. The "
            f"forest plot shows the largest coefficients with 50% and 90% intervals.")
    section = Section("Cross-lingual transfer", text,
                      tables={"posterior mean of alpha (rows: source, columns: target)": mean,
                              "P(alpha > 0)": positive})
    if plots.pairs(alpha).sizes["pair"]:
        section.add_figure("transfer_heatmap", plots.transfer_heatmap, mean, positive, tokens)
        section.add_figure("transfer_forest", plots.transfer_forest, alpha, forest_pairs)
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
    return float(value) if _is_number(value) else 0.7


def loo_table(loo: az.ELPDData) -> pd.DataFrame:
    """elpd_loo, its standard error, p_loo and how many Pareto k are good, bad, very bad."""
    k, threshold = np.asarray(loo.pareto_k), good_k(loo)
    return pd.DataFrame({"elpd_loo": [loo.elpd_loo], "se": [loo.se], "p_loo": [loo.p_loo],
                         f"k <= {threshold:.2f} (good)": [(k <= threshold).sum()],
                         f"{threshold:.2f} < k <= 1 (bad)": [((k > threshold) & (k <= 1)).sum()],
                         "k > 1 (very bad)": [(k > 1).sum()]})


def khat_notes(k: np.ndarray) -> list[str]:
    """A sentence on the Pareto k drawn at :data:`climb_bayes.inspect.plots.KHAT_CEILING`, if
    any."""
    beyond = int(plots.off_scale(k).sum())
    if not beyond:
        return []
    infinite = (" An infinite k means that the observation's largest importance ratios are "
                "all equal, as when the chains did not move." if np.isinf(k).any() else "")
    return [f"{beyond} of {k.size} observations have a Pareto k above {plots.KHAT_CEILING} or "
            f"one that is not a number; the Pareto k plot draws them at {plots.KHAT_CEILING} "
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
    section.add_figure("ppc", plots.ppc_plot, idata, ppc_draws, seed)
    section.add_figure("khat", plots.khat_plot, loo, good_k(loo))
    section.notes += khat_notes(np.asarray(loo.pareto_k, dtype=float))
    if others:
        comparison, notes = _recorded(az.compare, {form: idata, **others}, ic="loo")
        section.add_figure("compare", plots.compare_plot, comparison)
        section.tables["az.compare of the interaction forms"] = comparison
        section.notes += [f"az.compare: {n}" for n in notes]
    else:
        section.notes.append("only one interaction form was fitted; fit with "
                             "compare_forms=true to compare the forms by PSIS-LOO.")
    return section


def decision_section(posterior: Posterior, mixes: MixDirectory, tokens: float) -> Section:
    """Each mix's predicted losses, the optimal shares' posterior and ``P(gain > delta)``
    over the solver's reference."""
    shares = with_uniform(mixes.shares)
    names = list(shares.index)
    losses = mix_losses(posterior, shares, tokens)
    weights, weight_note = language_weights(mixes, posterior.targets)
    reference, delta, delta_from = reference_and_margin(mixes, names, posterior, weights)
    decision = decision_table(losses, names, weights, reference, delta, mixes.comparison)
    section = Section(
        "The decision",
        f"Predicted losses at the target budget D = {tokens:.3g} tokens for every mix in "
        f"{mixes.path}, computed here from the posterior (solver_ columns: the solver's own "
        f"numbers, for a cross-check). The first figure shows each mix's loss minus the "
        f"{reference} mix's, per language, with 90% intervals over the posterior (left of zero "
        f"is better); the last row is the weighted total. The gain of a mix is the "
        f"{reference} mix's weighted loss ({weight_note}) minus its own, draw by draw; "
        f"P(gain > delta) is the share of posterior draws in which the gain exceeds delta = "
        f"{delta:.3g} nats ({delta_from}): a smaller gain could not be seen in one training "
        f"run. {extrapolation_note(posterior)}",
        tables={f"mixes: weighted loss and gain over {reference}": decision,
                "predicted loss per mix and language (nats)":
                    loss_table(losses, names, posterior.targets, mixes.files),
                "shares of the mixes": shares.reset_index()},
        notes=[*solver_recommendation(mixes), *mixes.notes, *solver_warnings(mixes)])
    section.add_figure("mix_losses", plots.mix_loss_plot, loss_differences(
        with_weighted(losses, weights), names, [*posterior.targets, WEIGHTED], reference),
        reference)
    if mixes.optimal_share_draws is not None or mixes.optimal_shares is not None:
        section.add_figure("optimal_shares", plots.optimal_share_plot,
                           mixes.optimal_share_draws, mixes.optimal_shares, mix_markers(shares))
        if mixes.optimal_shares is not None:
            section.tables["the solver's optimal share per language"] = (
                mixes.optimal_shares.rename_axis("language").reset_index())
    else:
        section.notes.append(f"{mixes.path} has neither optimal_share_draws.csv nor "
                             f"optimal_shares.csv: no posterior of the optimal shares.")
    section.add_figure("p_gain", plots.gain_probability_plot,
                       decision.set_index("mix")["p_gain"].drop(reference), reference, delta)
    return section


def other_forms(path: str | Path, form: str, allow_broken: bool = False
                ) -> dict[str, az.InferenceData]:
    """Posteriors of the other interaction forms beside ``path`` (``posterior_<form>.nc``);
    one from a broken fit is refused unless ``allow_broken``."""
    path = Path(path)
    found = {}
    for file in sorted(path.parent.glob("posterior_*.nc")):
        if file.resolve() == path.resolve():
            continue
        other = read_posterior(file, allow_broken=allow_broken)
        if other.law.form != form:
            found[other.law.form] = other.idata
    return found


@dataclass(frozen=True)
class ReportSettings:
    """Keys of ``conf/report.yaml`` besides the paths."""

    tokens: float | None = None
    forest_pairs: int = 20
    health_pairs: int = 4
    ppc_draws: int = 50
    seed: int = 0

    @classmethod
    def from_config(cls, cfg: DictConfig) -> "ReportSettings":
        """The settings of ``cfg``, each checked (an InputError naming its key)."""
        return cls(
            tokens=optional_positive(cfg.tokens, "tokens", BUDGET, "tokens=2e9"),
            forest_pairs=count(cfg.forest_pairs, "forest_pairs",
                               "number of coefficients in the forest plot", "forest_pairs=20"),
            health_pairs=count(cfg.health_pairs, "health_pairs",
                               "number of coefficients in the trace plots", "health_pairs=4",
                               minimum=0),
            ppc_draws=count(cfg.ppc_draws, "ppc_draws", "number of replicated data sets",
                            "ppc_draws=50"),
            seed=count(cfg.seed, "seed", "seed", "seed=0", minimum=0))


def build_sections(posterior: Posterior, others: Mapping[str, az.InferenceData],
                   mixes: MixDirectory | None, settings: ReportSettings = ReportSettings()
                   ) -> list[Section]:
    """Every section of the report, figures drawn in memory (nothing is written)."""
    target = decision_budget(mixes, settings.tokens) if mixes is not None else settings.tokens
    tokens = target or posterior.law.reference
    sections = [
        health_section(posterior.idata, settings.health_pairs),
        scaling_section(posterior, target),
        transfer_section(posterior.idata, tokens, settings.forest_pairs),
        checks_section(posterior.idata, others, posterior.law.form, settings.ppc_draws,
                       settings.seed),
    ]
    if mixes is None:
        sections.append(Section("The decision", "No mix directory was given (mixes=DIR, "
                                "written by `python -m climb_bayes.solve`): this section is "
                                "skipped."))
    else:
        sections.append(decision_section(posterior, mixes, tokens))
    if target is None:
        sections[2].notes.append(f"no target budget given (tokens=N): transfer is shown at "
                                 f"the reference budget D_ref = {tokens:.3g} tokens.")
    return sections


# --------------------------------------------------------------------------------------------
# Rendering and writing
# --------------------------------------------------------------------------------------------

def png_bytes(figure: Figure, dpi: int = 110) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def render_figures(sections: list[Section]) -> dict[str, bytes]:
    """``<stem>.png`` -> PNG bytes for every figure; the figures are closed."""
    rendered = {}
    for section in sections:
        for stem, figure in section.figures.items():
            rendered[f"{stem}.png"] = png_bytes(figure)
            plt.close(figure)
    return rendered


def _table_html(table: pd.DataFrame) -> str:
    index = not isinstance(table.index, pd.RangeIndex)
    return table.to_html(index=index, float_format=lambda v: f"{v:.6g}", na_rep="",
                         border=0, classes="table")


STYLE = """body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em;color:#222}
img{max-width:100%;border:1px solid #ddd}table.table{border-collapse:collapse;font-size:12px;
margin:0.5em 0 1.5em}table.table td,table.table th{padding:2px 6px;border-bottom:1px solid #eee;
text-align:right}.note{color:#8a5300}.read{background:#f4f7fb;padding:0.6em;border-radius:4px}
.scroll{overflow-x:auto}.health{padding:0.6em 1em;border-radius:4px;margin:0.5em 0 1em}
.healthy{color:#1a7f37;font-size:13px;padding:0}.marginal{background:#fff4d6;
border:2px solid #d49a00}.broken{background:#ffe3e3;border:2px solid #c62828;color:#6d0000}"""


def _number(value: float, spec: str) -> str:
    return format(value, spec) if np.isfinite(value) else "not a number"


def health_numbers(health: Health) -> str:
    """The numbers a verdict was judged on, in one line."""
    return (f"max R-hat {_number(health.max_r_hat, '.3f')}, min bulk ESS "
            f"{_number(health.min_ess_bulk, '.0f')}, min tail ESS "
            f"{_number(health.min_ess_tail, '.0f')}, {health.divergences} of "
            f"{health.transitions} transitions divergent, min E-BFMI "
            f"{_number(health.min_bfmi, '.2f')}")


def health_banner(health: Health) -> str:
    """The fit's verdict (:mod:`climb_bayes.model.health`) as HTML for the top of the page: a small
    green line when healthy, an amber box with the reasons when marginal, a red one with the
    reasons and the fix when broken."""
    numbers = html.escape(health_numbers(health))
    if health.verdict == HEALTHY:
        return f"<p class='health healthy'>Healthy fit: {numbers}.</p>"
    reasons = "<ul>" + "".join(f"<li>{html.escape(r)}</li>" for r in health.reasons) + "</ul>"
    if health.verdict == BROKEN:
        return ("<div class='health broken'><strong>Broken fit: these numbers are not "
                f"results.</strong> The sampler's diagnostics fail:{reasons}<p>{numbers}.</p>"
                "<p>Fix: fit again with more warmup (sampler.warmup), a higher "
                "sampler.target_accept, or pilots that pin down the flagged parameters. This "
                "report was drawn only because allow_broken=true was given.</p></div>")
    return ("<div class='health marginal'><strong>Marginal fit:</strong> some diagnostics "
            f"fall short:{reasons}<p>{numbers}.</p><p>Read the numbers with care: the chains "
            "may not have explored the whole posterior, so intervals and probabilities can be "
            "off. More draws (sampler.samples) or warmup (sampler.warmup) usually help.</p>"
            "</div>")


def render_html(sections: list[Section], figures: Mapping[str, bytes], title: str,
                header: str, banner: str) -> str:
    """One self-contained HTML page: figures embedded as data URIs, each linking to its PNG.
    ``banner`` (HTML, :func:`health_banner`) comes first after the title."""
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
             f"</title><style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
             f"{banner}<p>{html.escape(header)}</p><ul>"]
    parts += [f"<li><a href='#s{i}'>{html.escape(s.title)}</a></li>"
              for i, s in enumerate(sections)]
    parts.append("</ul>")
    for i, section in enumerate(sections):
        parts.append(f"<h2 id='s{i}'>{html.escape(section.title)}</h2>"
                     f"<p class='read'>{html.escape(section.text)}</p>")
        parts += [f"<p class='note'>Note: {html.escape(n)}</p>" for n in section.notes]
        for stem in section.figures:
            name = f"{stem}.png"
            data = base64.b64encode(figures[name]).decode("ascii")
            parts.append(f"<p><a href='{name}'><img alt='{stem}' "
                         f"src='data:image/png;base64,{data}'></a><br>"
                         f"<a href='{name}'>{name}</a></p>")
        for caption, table in section.tables.items():
            parts.append(f"<h3>{html.escape(caption)}</h3><div class='scroll'>"
                         f"{_table_html(table)}</div>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(output: str | Path, figures: Mapping[str, bytes], page: str) -> Path:
    """Write the PNG files and ``report.html`` into ``output`` (each atomically)."""
    output = Path(output)
    for name, data in figures.items():
        with atomic_path(output / name) as tmp:
            tmp.write_bytes(data)
    write_text(output / "report.html", page)
    return output / "report.html"


def make_report(posterior_path: str | Path, mixes_path: str | Path | None,
                output: str | Path, settings: ReportSettings = ReportSettings(),
                allow_broken: bool = False) -> Path:
    """Read the inputs (all checks first), draw every section, write the files. A posterior
    (or another form's beside it) from a broken fit is refused unless ``allow_broken``; the
    page opens with the fit's verdict (:func:`health_banner`)."""
    posterior = read_posterior(posterior_path, allow_broken=allow_broken)
    mixes = read_mix_directory(mixes_path, posterior.sources) if mixes_path else None
    others = other_forms(posterior_path, posterior.law.form, allow_broken)
    sections = build_sections(posterior, others, mixes, settings)
    figures = render_figures(sections)
    header = (f"Posterior {posterior_path} ({posterior.law.form} form; {len(posterior.nu)} draws; "
              f"training languages {', '.join(posterior.sources)}; evaluated languages "
              f"{', '.join(posterior.targets)}; D_ref = {posterior.law.reference:.3g} tokens)"
              + (f"; mixes from {mixes_path}." if mixes_path else "."))
    page = render_html(sections, figures, "climb_bayes posterior report", header,
                       health_banner(posterior.health))
    return write_report(output, figures, page)


@hydra.main(config_path="../conf", config_name="report", version_base="1.3")
@exits_on_input_error
def main(cfg: DictConfig) -> None:
    """Write the report of ``cfg.posterior`` (and ``cfg.mixes``) into ``cfg.output``."""
    settings = ReportSettings.from_config(cfg)
    output = output_directory(cfg.output, "output", "runs/report", "PNG files and report.html")
    matplotlib.use("Agg")
    page = make_report(cfg.posterior, cfg.mixes, output, settings,
                       allow_broken=flag(cfg.allow_broken, "allow_broken"))
    print(f"wrote {page}")


if __name__ == "__main__":
    check_command_line("report")
    main()
