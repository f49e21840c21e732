"""Figures of cross-lingual transfer: the coefficients ``alpha_{j->i}(D)`` at a budget, as a
heatmap of their posterior means and a forest of the largest."""

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from climb_bayes.inspect.figure import BANDS, NoFigure, finite_entries, sample_dims, tidy
from climb_bayes.model.law import transfer_coefficient

ARROW = "\u2192"


def pair_label(source: str, target: str) -> str:
    """``"en→de"``: transfer from ``source`` to ``target``."""
    return f"{source}{ARROW}{target}"


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
