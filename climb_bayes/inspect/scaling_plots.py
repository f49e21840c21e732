"""Figures of the fitted scaling laws: each evaluated language's pilot losses over the training
budget against the law's predicted loss, with credible bands."""

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from climb_bayes.inspect.figure import BANDS, panel_grid
from climb_bayes.model.posterior import Posterior

#: At most this many posterior draws enter the fitted curves (evenly thinned).
CURVE_DRAWS = 1000


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
    the quantiles of :data:`climb_bayes.inspect.figure.BANDS` (``q05``, ``q25``, ``q75``, ``q95``).
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


def scaling_plot(curves: pd.DataFrame, observed: pd.DataFrame, targets: list[str],
                 target_tokens: float | None = None) -> Figure:
    """Per language: pilot losses over tokens against the fitted curves with 50/90% bands.

    Black squares are monolingual pilots, circles mixed pilots coloured by the run's share of
    the language; the green curve is the monolingual law, the orange one the uniform mix.
    The dotted line marks the largest pilot budget, the dashed one the target budget. A
    panel whose fitted curves are not finite numbers everywhere says so.
    """
    fig, axes = panel_grid(len(targets))
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
