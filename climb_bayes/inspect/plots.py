"""Figures of a posterior and of the mixes chosen from it, shared by the report and the notebook.

Every public function here either computes what a figure shows (a pure function of the
posterior's InferenceData or of the tables of :mod:`climb_bayes.report`) or draws one figure
and returns it; nothing is read from or written to disk. ``python -m climb_bayes.report`` saves
the figures as PNG files; ``notebooks/inspect_posterior.ipynb`` shows the same figures inline.

ArviZ draws the sampling diagnostics (``az.plot_rank``, ``az.plot_trace``, ``az.plot_energy``),
the posterior predictive checks (``az.plot_ppc``), the Pareto k of PSIS-LOO
(``az.plot_khat``), the forest of transfer coefficients (``az.plot_forest``) and the
comparison of interaction forms (``az.plot_compare``); matplotlib draws the rest. Sizes grow
with the number of languages, so the figures stay readable at 16 languages.

No figure is ever empty. A figure function whose input leaves nothing meaningful to draw
(energy that never changed, draws that are not numbers, no mix to compare) raises
:class:`NoFigure` with the sentence to show in its place; what can be drawn only in part is
marked in the figure (Pareto k off the scale, a density of draws that never moved).
"""

import math

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from climb_bayes.decide.compare import DOUBT_THRESHOLD
from climb_bayes.errors import listing
from climb_bayes.model.law import transfer_coefficient
from climb_bayes.model.posterior import Posterior

#: Inner and outer credible bands of the fitted curves and intervals.
BANDS = (0.5, 0.9)
#: Columns of the per-language panel grids.
PANEL_COLUMNS = 4
#: At most this many posterior draws enter the fitted curves (evenly thinned).
CURVE_DRAWS = 1000
ARROW = "\u2192"
#: Pareto k above this, or not a number, are drawn at it (as triangles), so that an infinite
#: k neither empties the plot nor squeezes the range that matters, 0 to 1, into a line.
KHAT_CEILING = 1.5
#: Entries (a density and a trace each) per row of the trace plot.
TRACE_COLUMNS = 2
#: Height of the divergence ticks on a trace, as a share of the panel's height.
DIVERGENCE_TICK = 0.07


class NoFigure(Exception):
    """A figure function's input leaves nothing meaningful to draw. The message is one
    sentence saying why, shown in the figure's place (for example: the chains never moved)."""


class EntryLabeller(az.labels.BaseLabeller):
    """ArviZ labels of one entry per panel on one line: ``beta[en]``, ``a[de→fr]``."""

    def make_label_vert(self, var_name: str, sel: dict, isel: dict) -> str:
        """The flat label (ArviZ stacks the name over the coordinates by default)."""
        return self.make_label_flat(var_name, sel, isel)


def _chains(chains: np.ndarray) -> str:
    """``"chain 2"`` or ``"chains 0, 3"``."""
    return f"chain{'s' if chains.size > 1 else ''} {listing([str(c) for c in chains])}"


def pair_label(source: str, target: str) -> str:
    """``"en→de"``: transfer from ``source`` to ``target``."""
    return f"{source}{ARROW}{target}"


def sample_dims(data: xr.DataArray) -> tuple[str, ...]:
    """The sampling dimensions (``chain``, ``draw``) of a posterior variable."""
    return tuple(d for d in ("chain", "draw") if d in data.dims)


# --------------------------------------------------------------------------------------------
# Transfer coefficients
# --------------------------------------------------------------------------------------------

def transfer_draws(idata: az.InferenceData, tokens: float) -> xr.DataArray:
    """Draws of the transfer coefficient ``alpha_{j->i}(D)`` at ``D = tokens``
    (:func:`climb_bayes.model.law.transfer_coefficient`).

    Dims ``(chain, draw, source, target)``; a language's transfer to itself (fixed at zero by
    the model) is NaN.
    """
    posterior = idata.posterior
    scaled = np.array([float(tokens) / float(posterior.attrs["reference_tokens"])])
    values = transfer_coefficient(posterior["a"].values, posterior["k"].values, scaled)
    alpha = posterior["a"].copy(data=np.asarray(values)[..., 0, :, :])
    own = idata.constant_data["self_map"].astype(bool)
    return alpha.where(~own).rename("alpha")


def transfer_summary(alpha: xr.DataArray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Posterior mean and ``P(alpha > 0)`` of every coefficient, as source x target tables."""
    dims = sample_dims(alpha)
    mean = alpha.mean(dims).transpose("source", "target")
    positive = (alpha > 0).mean(dims).where(alpha.notnull().all(dims)).transpose(
        "source", "target")
    frame = {"index": pd.Index(mean["source"].values, name="source"),
             "columns": pd.Index(mean["target"].values, name="target")}
    return pd.DataFrame(mean.values, **frame), pd.DataFrame(positive.values, **frame)


def pairs(alpha: xr.DataArray) -> xr.DataArray:
    """The coefficients of different languages on one ``pair`` dim labelled ``"en→de"``."""
    stacked = alpha.stack(pair=("source", "target"))
    keep = stacked["source"].values != stacked["target"].values
    labels = [pair_label(s, t) for s, t in stacked["pair"].values[keep]]
    values = stacked.values[..., keep]
    return xr.DataArray(values, dims=(*sample_dims(alpha), "pair"),
                        coords={**{d: alpha[d].values for d in sample_dims(alpha)},
                                "pair": labels}, name=alpha.name)


def largest_pairs(alpha: xr.DataArray, count: int) -> list[str]:
    """Labels of the ``count`` coefficients with the largest absolute posterior mean, among
    those whose draws are all finite numbers."""
    stacked, _ = finite_entries(pairs(alpha), "pair")
    size = np.abs(stacked.mean(sample_dims(stacked)).values)
    order = np.argsort(-size, kind="stable")[:count]
    return [str(stacked["pair"].values[i]) for i in order]


def finite_entries(values: xr.DataArray, dim: str) -> tuple[xr.DataArray, list[str]]:
    """The entries along ``dim`` whose draws are all finite numbers, and the labels
    (``beta[en]``) of those left out."""
    finite = np.isfinite(values).all(sample_dims(values)).values
    left_out = [f"{values.name}[{label}]" for label in values[dim].values[~finite]]
    return values.isel({dim: finite}), left_out


def _diverging_limit(values: np.ndarray) -> float:
    finite = np.abs(values[np.isfinite(values)])
    return float(finite.max()) if finite.size and finite.max() > 0 else 1.0


def transfer_heatmap(mean: pd.DataFrame, positive: pd.DataFrame, tokens: float) -> Figure:
    """Source x target heatmap of the posterior mean of ``alpha`` at ``tokens``.

    Each cell is annotated with its mean and ``P(alpha > 0)``; cells of a language with itself
    are blank, those whose draws are not numbers say so. The colour scale is symmetric around
    zero (blue helps, red interferes). NoFigure when no mean is a finite number.
    """
    if not np.isfinite(mean.to_numpy(dtype=float)).any():
        raise NoFigure("No transfer heatmap: no transfer coefficient has a finite posterior "
                       "mean (their draws are not numbers).")
    n_source, n_target = mean.shape
    cell = 0.75
    fig, ax = plt.subplots(figsize=(max(5.0, cell * n_target + 2.5),
                                    max(4.0, cell * n_source + 1.8)), layout="constrained")
    values = np.ma.masked_invalid(mean.to_numpy(dtype=float))
    limit = _diverging_limit(mean.to_numpy(dtype=float))
    image = ax.imshow(values, cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
    fontsize = float(np.clip(110.0 / max(n_source, n_target), 5.5, 10.0))
    for (row, col), value in np.ndenumerate(mean.to_numpy(dtype=float)):
        if np.isfinite(value):
            shade = "white" if abs(value) > 0.6 * limit else "black"
            ax.text(col, row, f"{value:.2f}\n{positive.iat[row, col]:.0%}", ha="center",
                    va="center", fontsize=fontsize, color=shade, linespacing=1.1)
        elif mean.index[row] != mean.columns[col]:
            ax.text(col, row, "not a\nnumber", ha="center", va="center", fontsize=fontsize,
                    color="C3", linespacing=1.1)
    ax.set_xticks(range(n_target), list(mean.columns), rotation=90 if n_target > 12 else 0)
    ax.set_yticks(range(n_source), list(mean.index))
    ax.set_xlabel("target language i (evaluated)")
    ax.set_ylabel("source language j (trained on)")
    ax.set_title(f"transfer alpha(j{ARROW}i) at D = {tokens:.3g} tokens: "
                 f"posterior mean and P(alpha > 0)")
    fig.colorbar(image, ax=ax, label="posterior mean of alpha (target tokens per source token)")
    return fig


def transfer_forest(alpha: xr.DataArray, count: int = 20, hdi_prob: float = BANDS[1]
                    ) -> Figure:
    """``az.plot_forest`` of the ``count`` coefficients with the largest absolute mean (among
    those whose draws are finite numbers; NoFigure when there is none)."""
    chosen = largest_pairs(alpha, count)
    if not chosen:
        raise NoFigure("No forest plot of the transfer coefficients: none has draws that are "
                       "all finite numbers.")
    data = pairs(alpha).sel(pair=chosen).to_dataset(name="alpha")
    height = max(3.0, 0.32 * len(chosen) + 1.5)
    axes = az.plot_forest(data, combined=True, hdi_prob=hdi_prob, figsize=(7.5, height),
                          textsize=9, labeller=az.labels.NoVarLabeller())
    ax = axes.ravel()[0]
    ax.axvline(0.0, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("alpha (target tokens per source token)")
    ax.set_ylabel(f"source{ARROW}target")
    ax.set_title(f"largest transfer coefficients: mean, 50% and {hdi_prob:.0%} HDI")
    return tidy(ax.figure)


# --------------------------------------------------------------------------------------------
# Sampling health
# --------------------------------------------------------------------------------------------

def health_variables(idata: az.InferenceData, count: int = 4) -> xr.Dataset:
    """The scaling exponents ``beta`` and the ``count`` transfer coefficients ``a`` that mix
    worst, on a ``pair`` dim: those with a chain that never moved first (ArviZ gives such a
    coefficient a high ESS when every chain sits on one value), then the lowest bulk ESS.

    Entries whose draws are not all finite numbers cannot be drawn and are left out; ``attrs``
    record their labels (``not_finite``) and how many transfer coefficients there are
    (``pairs``), for the figures' titles.
    """
    beta, beta_out = finite_entries(idata.posterior["beta"], "target")
    every_pair = pairs(idata.posterior["a"])
    a, a_out = finite_entries(every_pair, "pair")
    if a.sizes["pair"]:
        ess = az.ess(a.to_dataset(name="a"))["a"].values
        stuck = (a.std("draw") == 0).any("chain").values
        a = a.isel(pair=np.lexsort((ess, ~stuck))[:count])
    chosen = {name: values for name, values in (("beta", beta), ("a", a)) if values.size}
    return xr.Dataset(chosen, attrs={"pairs": every_pair.sizes["pair"],
                                     "not_finite": beta_out + a_out})


def _selection_title(variables: xr.Dataset) -> str:
    """What :func:`health_variables` chose, and what it left out, for a figure's title."""
    shown = variables["a"].sizes["pair"] if "a" in variables else 0
    parts = ["beta" if "beta" in variables else ""]
    if shown:
        parts.append(f"the {shown} of {variables.attrs['pairs']} transfer coefficients a that "
                     f"mix worst")
    title = " and ".join(p for p in parts if p)
    if variables.attrs["not_finite"]:
        title += (f"; left out, draws not finite numbers: "
                  f"{listing(variables.attrs['not_finite'])}")
    return title


def _require_entries(variables: xr.Dataset, figure: str) -> int:
    """The number of panels (one per entry); NoFigure when there is none to draw."""
    count = sum(int(np.prod([v.sizes[d] for d in v.dims if d not in ("chain", "draw")]))
                for v in variables.data_vars.values())
    if not count:
        raise NoFigure(f"No {figure}: no draw of beta or a is a finite number "
                       f"({listing(variables.attrs['not_finite'])}), so there is nothing to "
                       f"plot.")
    return count


def tidy(fig: Figure, title: str | None = None, fontsize: float = 9.0) -> Figure:
    """Readable text on an ArviZ figure: moderate font sizes and a constrained layout."""
    for ax in fig.axes:
        ax.title.set_fontsize(fontsize + 1)
        ax.xaxis.label.set_fontsize(fontsize)
        ax.yaxis.label.set_fontsize(fontsize)
        ax.tick_params(labelsize=fontsize - 1)
    if title:
        fig.suptitle(title, fontsize=fontsize + 2)
    fig.set_layout_engine("constrained")
    return fig


def rank_plot(variables: xr.Dataset) -> Figure:
    """``az.plot_rank`` of ``variables`` (:func:`health_variables`), one panel per entry
    labelled like ``a[de→fr]``: flat, overlapping histograms mean the chains agree."""
    count = _require_entries(variables, "rank plot")
    fig, axes = _panel_grid(count, width=3.0, height=2.3)
    az.plot_rank(variables, kind="bars", ax=axes[:count], labeller=EntryLabeller())
    for ax in axes:
        ax.set_xlabel("rank (all chains)")
        ax.set_ylabel("chain")
    return tidy(fig, f"rank plots of {_selection_title(variables)}: each chain's ranks should "
                     f"be uniform")


def trace_plot(idata: az.InferenceData, variables: xr.Dataset) -> Figure:
    """``az.plot_trace`` of ``variables`` (:func:`health_variables`): per entry, labelled like
    ``beta[en]``, the density of each chain beside its trace, :data:`TRACE_COLUMNS` entries a
    row. Divergent transitions are thin red ticks at the bottom of each trace; a density
    panel of draws that never moved says so."""
    count = _require_entries(variables, "trace plot")
    columns = min(TRACE_COLUMNS, count)
    rows = math.ceil(count / columns)
    fig, grid = plt.subplots(rows, 2 * columns, figsize=(7.0 * columns, 1.9 * rows + 0.9),
                             squeeze=False, gridspec_kw={"width_ratios": [1, 2] * columns})
    axes = grid.reshape(-1, 2)
    for ax in axes[count:].ravel():
        ax.set_visible(False)
    axes = axes[:count]
    az.plot_trace(variables, compact=False, combined=False, divergences=None, axes=axes,
                  labeller=EntryLabeller(), legend=False)
    stats = idata.sample_stats
    draws = (stats["draw"].values[stats["diverging"].any("chain").values]
             if "diverging" in stats else np.zeros(0))
    for density, trace in axes:
        if not any(np.isfinite(line.get_ydata()).any() for line in density.lines):
            density.set_xticks([])
            density.text(0.5, 0.5, "no density:\nthe draws never changed", ha="center",
                         va="center", transform=density.transAxes, color="C3")
        density.set_yticks([])
        trace.vlines(draws, 0.0, DIVERGENCE_TICK, transform=trace.get_xaxis_transform(),
                     colors="C3", linewidth=0.6, alpha=0.6)
    for density, trace in axes[-columns:]:
        density.set_xlabel("value")
        trace.set_xlabel("draw")
    divergent = (f"red ticks at the bottom: the {draws.size} draws with a divergent transition"
                 if draws.size else "no divergent transition")
    return tidy(fig, f"traces of {_selection_title(variables)}\n(left: density per chain; "
                     f"right: value per draw, one colour per chain; {divergent})")


def energy_plot(idata: az.InferenceData) -> Figure:
    """``az.plot_energy``: similar marginal and transition energy mean NUTS explores well.

    NoFigure when there is no energy, or a chain's energy is not a number or never changed
    (E-BFMI is undefined then: the sampler did not move)."""
    if "energy" not in idata.sample_stats:
        raise NoFigure("No energy plot: the sampler recorded no energy (sample_stats.energy).")
    energy = idata.sample_stats["energy"]
    chains = energy["chain"].values
    not_finite = chains[~np.isfinite(energy).all("draw").values]
    if not_finite.size:
        raise NoFigure(f"No energy plot: the energy of {_chains(not_finite)} is not a finite "
                       f"number (E-BFMI undefined); the fit is broken.")
    frozen = chains[(energy.std("draw") == 0).values]
    if frozen.size:
        whose = ("the chains' energy" if frozen.size == chains.size else
                 f"the energy of {_chains(frozen)}")
        raise NoFigure(f"No energy plot: {whose} never changed (E-BFMI undefined), so the "
                       f"sampler did not move; the fit is broken.")
    ax = az.plot_energy(idata, figsize=(6.5, 4))
    ax.set_xlabel("energy minus its mean")
    ax.set_title(f"energy (BFMI per chain: "
                 f"{', '.join(f'{v:.2f}' for v in az.bfmi(idata))})")
    return ax.figure


def sampler_table(idata: az.InferenceData) -> pd.DataFrame:
    """Per chain: draws, divergent transitions, mean and max tree depth, and BFMI."""
    stats = idata.sample_stats
    if "tree_depth" in stats:
        depth = stats["tree_depth"]
    elif "n_steps" in stats:
        depth = np.log2(stats["n_steps"] + 1)
    else:
        depth = xr.full_like(stats["diverging"], np.nan, dtype=float)
    return pd.DataFrame({
        "chain": stats["chain"].values,
        "draws": stats.sizes["draw"],
        "divergences": stats["diverging"].sum("draw").values.astype(int),
        "mean_tree_depth": depth.mean("draw").values,
        "max_tree_depth": depth.max("draw").values,
        "bfmi": az.bfmi(idata),
    })


# --------------------------------------------------------------------------------------------
# Scaling laws
# --------------------------------------------------------------------------------------------

def thin(posterior: Posterior, draws: int = CURVE_DRAWS) -> Posterior:
    """The posterior with at most ``draws`` draws, evenly spaced (for curves and bands)."""
    total = len(posterior.nu)
    return posterior.thinned(np.linspace(0, total - 1, min(draws, total)).round().astype(int))


def observations(idata: az.InferenceData) -> pd.DataFrame:
    """The pilot losses the posterior was fitted to, with each run's share of the language.

    Columns: ``run``, ``tokens``, ``language``, ``loss``, ``own_share`` (the run's share of the
    evaluated language; 0 for an evaluation-only language) and ``monolingual``.
    """
    const = idata.constant_data
    shares = const["run_shares"].to_pandas()
    frame = pd.DataFrame({"run": const["obs_run"].values.astype(str),
                          "tokens": const["obs_tokens"].values.astype(float),
                          "language": const["obs_language"].values.astype(str),
                          "loss": idata.observed_data["loss"].values.astype(float)})
    shares.index = shares.index.astype(str)
    own = [float(shares.at[run, lang]) if lang in shares.columns else 0.0
           for run, lang in zip(frame["run"], frame["language"], strict=True)]
    return frame.assign(own_share=own, monolingual=np.isclose(own, 1.0, atol=1e-6))


def token_grid(observed: pd.DataFrame, extra: float | None = None, points: int = 40
               ) -> np.ndarray:
    """Log-spaced budgets from half the smallest pilot to twice the largest (or ``extra``)."""
    high = max(observed["tokens"].max() * 2.0, extra or 0.0)
    return np.geomspace(observed["tokens"].min() / 2.0, high, points)


def scaling_curves(posterior: Posterior, tokens: np.ndarray) -> pd.DataFrame:
    """Fitted loss of every target over ``tokens``: monolingual (trained languages) and uniform.

    Long table: ``language``, ``mix`` (``monolingual`` or ``uniform``), ``tokens``, ``mean`` and
    the quantiles of :data:`BANDS` (``q05``, ``q25``, ``q75``, ``q95``).
    """
    sources, targets = posterior.sources, posterior.targets
    mixes = {"uniform": np.full(len(sources), 1.0 / len(sources))}
    mixes.update({f"mono:{s}": np.eye(len(sources))[j] for j, s in enumerate(sources)
                  if s in targets})
    names = list(mixes)
    shares = np.repeat(np.stack([mixes[n] for n in names]), len(tokens), axis=0)
    losses = posterior.law.predict_loss(shares, np.tile(tokens, len(names)))
    losses = losses.reshape(losses.shape[0], len(names), len(tokens), len(targets))
    levels = sorted({p for b in BANDS for p in ((1 - b) / 2, (1 + b) / 2)})
    rows = []
    for m, name in enumerate(names):
        kind, _, language = name.partition(":")
        for t, target in enumerate(targets):
            if language and language != target:
                continue
            draws = losses[:, m, :, t]
            quantiles = np.quantile(draws, levels, axis=0)
            rows.append(pd.DataFrame({
                "language": target, "mix": "monolingual" if language else kind,
                "tokens": tokens, "mean": draws.mean(0),
                **{f"q{round(100 * p):02d}": q for p, q in zip(levels, quantiles, strict=True)},
            }))
    return pd.concat(rows, ignore_index=True)


def _panel_grid(count: int, width: float = 3.6, height: float = 2.9
                ) -> tuple[Figure, np.ndarray]:
    columns = min(PANEL_COLUMNS, count)
    rows = math.ceil(count / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows + 0.8),
                             squeeze=False, layout="constrained")
    for ax in axes.ravel()[count:]:
        ax.set_visible(False)
    return fig, axes.ravel()


def scaling_plot(curves: pd.DataFrame, observed: pd.DataFrame, targets: list[str],
                 target_tokens: float | None = None) -> Figure:
    """Per language: pilot losses over tokens against the fitted curves with 50/90% bands.

    Black squares are monolingual pilots, circles mixed pilots coloured by the run's share of
    the language; the green curve is the monolingual law, the orange one the uniform mix.
    The dotted line marks the largest pilot budget, the dashed one the target budget. A
    panel whose fitted curves are not finite numbers everywhere says so.
    """
    fig, axes = _panel_grid(len(targets))
    colours = {"monolingual": "tab:green", "uniform": "tab:orange"}
    norm = plt.Normalize(0.0, 1.0)
    for ax, language in zip(axes, targets, strict=False):
        fitted = curves[curves["language"] == language].drop(columns=["language", "mix"])
        if not np.isfinite(fitted.to_numpy(dtype=float)).all():
            ax.text(0.5, 0.97, "fitted law not finite everywhere\n(draws not numbers)",
                    ha="center", va="top", transform=ax.transAxes, fontsize=8, color="C3")
        for mix, colour in colours.items():
            curve = curves[(curves["language"] == language) & (curves["mix"] == mix)]
            if curve.empty:
                continue
            ax.fill_between(curve["tokens"], curve["q05"], curve["q95"], color=colour,
                            alpha=0.15, linewidth=0)
            ax.fill_between(curve["tokens"], curve["q25"], curve["q75"], color=colour,
                            alpha=0.3, linewidth=0)
            ax.plot(curve["tokens"], curve["mean"], color=colour, linewidth=1.5)
        points = observed[observed["language"] == language]
        mixed = points[~points["monolingual"]]
        ax.scatter(mixed["tokens"], mixed["loss"], c=mixed["own_share"], cmap="viridis",
                   norm=norm, s=14, edgecolors="none", zorder=3)
        mono = points[points["monolingual"]]
        ax.scatter(mono["tokens"], mono["loss"], marker="s", color="black", s=16, zorder=4)
        ax.axvline(observed["tokens"].max(), color="grey", linestyle=":", linewidth=1)
        if target_tokens:
            ax.axvline(target_tokens, color="grey", linestyle="--", linewidth=1)
        ax.set_xscale("log")
        ax.set_title(language)
        ax.set_xlabel("training tokens D")
        ax.set_ylabel("validation loss (nats)")
    handles = [
        Line2D([], [], color="tab:green", label="fit, monolingual (mean, 50%, 90%)"),
        Line2D([], [], color="tab:orange", label="fit, uniform mix (mean, 50%, 90%)"),
        Line2D([], [], marker="s", color="black", linestyle="", label="monolingual pilot"),
        Line2D([], [], marker="o", color="tab:cyan", linestyle="",
               label="mixed pilot (colour: its share of the language)"),
        Line2D([], [], color="grey", linestyle=":", label="largest pilot budget"),
    ] + ([Line2D([], [], color="grey", linestyle="--", label="target budget")]
         if target_tokens else [])
    fig.legend(handles=handles, loc="outside upper center", ncols=3, fontsize=9)
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap="viridis"), ax=list(axes[:len(targets)]),
                 label="mixed pilot's share of the language", shrink=0.6)
    return fig


# --------------------------------------------------------------------------------------------
# Posterior predictive checks and PSIS-LOO
# --------------------------------------------------------------------------------------------

def ppc_plot(idata: az.InferenceData, draws: int = 50, seed: int = 0) -> Figure:
    """Per language, ``az.plot_ppc``: the observed loss density against replicated ones.

    NoFigure when a replicated loss is not a finite number (draws that are not numbers)."""
    replicated = idata.posterior_predictive["loss"].values
    bad = int((~np.isfinite(replicated)).sum())
    if bad:
        raise NoFigure(f"No posterior predictive check: {bad} of {replicated.size} replicated "
                       f"losses are not finite numbers.")
    languages = list(dict.fromkeys(idata.constant_data["obs_language"].values.astype(str)))
    fig, axes = _panel_grid(len(languages), height=2.6)
    language_of = idata.constant_data["obs_language"].values.astype(str)
    for ax, language in zip(axes, languages, strict=False):
        subset = idata.isel(obs=np.flatnonzero(language_of == language))
        az.plot_ppc(subset, data_pairs={"loss": "loss"}, num_pp_samples=draws, ax=ax,
                    random_seed=seed, legend=ax is axes[0], textsize=9)
        ax.set_title(language)
        ax.set_xlabel("validation loss (nats)")
    fig.suptitle("posterior predictive check: observed pilot losses (black) against "
                 "replicated data sets (blue)")
    return fig


def off_scale(k: np.ndarray) -> np.ndarray:
    """Which Pareto k lie above :data:`KHAT_CEILING` or are not numbers (drawn at it)."""
    return ~(np.asarray(k, dtype=float) <= KHAT_CEILING)


def khat_plot(loo: az.ELPDData, good_k: float = 0.7) -> Figure:
    """``az.plot_khat`` of PSIS-LOO: a Pareto k above ``good_k`` marks an observation whose
    leave-one-out estimate cannot be trusted (lines at 0, ``good_k`` and 1).

    A k above :data:`KHAT_CEILING`, or one that is not a number (infinite when an
    observation's largest importance ratios are all equal, as when the chains never moved),
    is drawn at the ceiling as a red triangle: matplotlib cannot place an infinite k, and a
    plot of nothing but such k used to come out empty."""
    k = loo.pareto_k
    beyond = off_scale(k.values)
    ax = az.plot_khat(k.where(~beyond, KHAT_CEILING), figsize=(8, 3.6), show_hlines=True,
                      hlines_kwargs={"hlines": [0, good_k, 1]}, textsize=9)
    ax.set_xlabel("observation (pilot loss) index")
    ax.set_ylabel("Pareto shape k")
    ax.set_title(f"PSIS-LOO Pareto k per observation: reliable below {good_k:.2f}")
    fig = tidy(ax.figure)
    if beyond.any():
        ax.scatter(np.flatnonzero(beyond), np.full(int(beyond.sum()), KHAT_CEILING), marker="^",
                   s=36, color="C3", zorder=3,
                   label=f"k above {KHAT_CEILING} or not a number ({int(beyond.sum())} of "
                         f"{beyond.size}), drawn at {KHAT_CEILING}")
        ax.set_ylim(top=KHAT_CEILING + 0.15)
        fig.legend(loc="outside lower center", fontsize=8)
    return fig


def compare_plot(comparison: pd.DataFrame) -> Figure:
    """``az.plot_compare`` of the interaction forms' expected log predictive density.

    NoFigure when a form's elpd or its standard error is not a finite number."""
    bad = comparison.index[~np.isfinite(comparison[["elpd_loo", "se"]].to_numpy(float)).all(1)]
    if len(bad):
        raise NoFigure(f"No comparison plot: PSIS-LOO gave no finite elpd for "
                       f"{listing(list(map(str, bad)))}, so the forms cannot be compared; the "
                       f"table shows what it computed.")
    ax = az.plot_compare(comparison, figsize=(7, 1.0 + 0.7 * len(comparison)), textsize=9)
    ax.set_title("interaction forms by PSIS-LOO (higher elpd is better)")
    return ax.figure


# --------------------------------------------------------------------------------------------
# The decision
# --------------------------------------------------------------------------------------------

def mix_loss_plot(differences: pd.DataFrame, reference: str) -> Figure:
    """Per language, each mix's predicted loss minus that of ``reference`` with 90% intervals.

    ``differences`` is the long table of :func:`climb_bayes.report.loss_differences`
    (``mix``, ``language``, ``mean``, ``q05``, ``q95``). Left of zero: the mix beats the
    reference on that language. The mean of a skewed posterior may lie outside its interval.
    NoFigure when there is no other mix, or no difference is a finite number.
    """
    if differences.empty:
        raise NoFigure(f"No figure of the mixes' losses: there is no mix besides {reference} "
                       f"to compare with it.")
    if not np.isfinite(differences["mean"].to_numpy(dtype=float)).any():
        raise NoFigure("No figure of the mixes' losses: the predicted losses are not finite "
                       "numbers (the posterior's draws are not numbers).")
    languages = list(dict.fromkeys(differences["language"]))
    mixes = list(dict.fromkeys(differences["mix"]))
    height = min(24.0, max(3.5, len(languages) * (0.13 * max(len(mixes), 3) + 0.15) + 1.5))
    fig, ax = plt.subplots(figsize=(8.5, height), layout="constrained")
    colours = plt.cm.tab10(np.arange(len(mixes)) % 10)
    step = 0.8 / max(len(mixes), 1)
    for m, (mix, colour) in enumerate(zip(mixes, colours, strict=True)):
        rows = differences[differences["mix"] == mix].set_index("language").loc[languages]
        y = np.arange(len(languages)) - 0.4 + step * (m + 0.5)
        ax.hlines(y, rows["q05"], rows["q95"], color=colour, linewidth=1.2)
        ax.plot(rows["mean"], y, "o", color=colour, markersize=4, label=mix)
    ax.axvline(0.0, color="grey", linestyle="--", linewidth=1)
    for boundary in np.arange(len(languages) - 1) + 0.5:
        ax.axhline(boundary, color="lightgrey", linewidth=0.8)
    ax.set_yticks(range(len(languages)), languages)
    ax.set_ylim(len(languages) - 0.5, -0.5)
    ax.set_ylabel("evaluated language")
    ax.set_xlabel(f"predicted loss minus the {reference} mix's (nats; left is better)")
    ax.set_title("predicted loss at the target budget: posterior mean and 90% interval")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, title="mix")
    return fig


def optimal_share_plot(draws: pd.DataFrame | None, quantiles: pd.DataFrame | None,
                       markers: dict[str, dict[str, float]]) -> Figure:
    """Posterior of each language's optimal share (one optimum per posterior draw).

    Violins when per-draw optima (``draws``, one column per language) are given, else the
    solver's 5/50/95% quantiles (``quantiles``, indexed by language). ``markers`` overlays
    the shares of named mixes (for example ``posterior_mean`` and ``uniform``). NoFigure when
    no optimal share is a finite number.
    """
    given = draws if draws is not None else quantiles[["q05", "q50", "q95"]]
    if not np.isfinite(given.to_numpy(dtype=float)).any():
        raise NoFigure("No figure of the optimal shares: the solver's optimal shares are not "
                       "finite numbers.")
    languages = list(draws.columns if draws is not None else quantiles.index)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(languages) + 2.5), 4.5),
                           layout="constrained")
    x = np.arange(len(languages))
    if draws is not None:
        ax.violinplot([draws[c].dropna().to_numpy() for c in languages], positions=x,
                      showextrema=False, widths=0.8)
        low, mid, high = (draws[languages].quantile(q).to_numpy() for q in (0.05, 0.5, 0.95))
    else:
        low, mid, high = (quantiles.loc[languages, c].to_numpy() for c in ("q05", "q50", "q95"))
    ax.vlines(x, low, high, color="black", linewidth=2, label="90% interval")
    ax.scatter(x, mid, color="white", edgecolors="black", zorder=3, s=22, label="median")
    styles = ["D", "^", "v", "P", "X", "*"]
    for (name, shares), marker in zip(markers.items(), styles, strict=False):
        ax.scatter(x, [shares.get(lang, 0.0) for lang in languages], marker=marker, s=30,
                   zorder=4, label=f"{name} mix")
    ax.set_xticks(x, languages, rotation=90 if len(languages) > 12 else 0)
    ax.set_xlabel("training language")
    ax.set_ylabel("share of the training budget")
    ax.set_ylim(bottom=0.0)
    ax.set_title("posterior of each language's optimal share (optimum of each draw)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9)
    return fig


def gain_probability_plot(probabilities: pd.Series, reference: str, delta: float) -> Figure:
    """Bar chart of ``P(gain > delta)``: the probability that a mix's weighted loss is more than
    ``delta`` below the ``reference`` mix's, one bar per mix other than the reference, with the
    solver's threshold under doubt (:data:`climb_bayes.decide.compare.DOUBT_THRESHOLD`) marked; a
    probability that is not a number says so. NoFigure when there is no such mix or no
    probability is a number."""
    if probabilities.empty:
        raise NoFigure(f"No figure of P(gain > delta): there is no mix besides {reference}.")
    if not np.isfinite(probabilities.to_numpy(dtype=float)).any():
        raise NoFigure("No figure of P(gain > delta): the mixes' weighted losses are not "
                       "finite numbers (the posterior's draws are not numbers).")
    fig, ax = plt.subplots(figsize=(7.5, max(2.5, 0.35 * len(probabilities) + 1.2)),
                           layout="constrained")
    y = np.arange(len(probabilities))
    ax.barh(y, probabilities.to_numpy(), color="tab:blue")
    for row, value in enumerate(probabilities.to_numpy(dtype=float)):
        finite = np.isfinite(value)
        ax.text(min(value + 0.01, 0.93) if finite else 0.01, row,
                f"{value:.0%}" if finite else "not a number", va="center", fontsize=9)
    ax.axvline(DOUBT_THRESHOLD, color="grey", linestyle="--", linewidth=1,
               label=f"threshold under doubt ({DOUBT_THRESHOLD:g})")
    ax.set_yticks(y, list(probabilities.index))
    ax.invert_yaxis()
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel(f"P(weighted loss more than {delta:.3g} nats below {reference}'s) over "
                  f"posterior draws")
    ax.set_ylabel("mix")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"probability that each mix gains more than delta over {reference}")
    return fig
