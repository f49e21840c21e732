"""Figures that say whether to trust a fit: sampling health (rank, trace and energy plots and
the sampler's statistics per chain), posterior predictive checks, the Pareto k of PSIS-LOO and
the comparison of interaction forms."""

import math

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from climb_bayes.errors import listing
from climb_bayes.inspect.figure import NoFigure, finite_entries, panel_grid, tidy
from climb_bayes.inspect.transfer_plots import pairs

#: Pareto k above this, or not a number, are drawn at it (as triangles), so that an infinite
#: k neither empties the plot nor squeezes the range that matters, 0 to 1, into a line.
KHAT_CEILING = 1.5
#: Entries (a density and a trace each) per row of the trace plot.
TRACE_COLUMNS = 2
#: Height of the divergence ticks on a trace, as a share of the panel's height.
DIVERGENCE_TICK = 0.07


class EntryLabeller(az.labels.BaseLabeller):
    """ArviZ labels of one entry per panel on one line: ``beta[en]``, ``a[de→fr]``."""

    def make_label_vert(self, var_name: str, sel: dict, isel: dict) -> str:
        """The flat label (ArviZ stacks the name over the coordinates by default)."""
        return self.make_label_flat(var_name, sel, isel)


def _chains(chains: np.ndarray) -> str:
    """``"chain 2"`` or ``"chains 0, 3"``."""
    return f"chain{'s' if chains.size > 1 else ''} {listing([str(c) for c in chains])}"


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


def rank_plot(variables: xr.Dataset) -> Figure:
    """``az.plot_rank`` of ``variables`` (:func:`health_variables`), one panel per entry
    labelled like ``a[de→fr]``: flat, overlapping histograms mean the chains agree."""
    count = _require_entries(variables, "rank plot")
    fig, axes = panel_grid(count, width=3.0, height=2.3)
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
    fig, axes = panel_grid(len(languages), height=2.6)
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
