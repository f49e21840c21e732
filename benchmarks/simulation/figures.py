"""The simulation study's figures: regret per setting and mix, and the pilot-efficiency
curve."""

from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.simulation.settings import BAYES_MIXES, POINT_MIXES
from benchmarks.simulation.tables import MIX_ORDER


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
