"""Figures of the decision: each mix's predicted loss against the reference mix's, the posterior
of each language's optimal share, and ``P(gain > delta)`` per mix."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from climb_bayes.decide.compare import DOUBT_THRESHOLD
from climb_bayes.inspect.figure import NoFigure


def mix_loss_plot(differences: pd.DataFrame, reference: str) -> Figure:
    """Per language, each mix's predicted loss minus that of ``reference`` with 90% intervals.

    ``differences`` is the long table of :func:`climb_bayes.inspect.decision.loss_differences`
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
