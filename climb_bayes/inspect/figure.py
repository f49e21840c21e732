"""What every figure of :mod:`climb_bayes.inspect` shares: its bands, its panel grid, readable
text, and :class:`NoFigure` in place of an empty figure.

The figures of a posterior and of the mixes chosen from it, shared by the report and the
notebook, are drawn by :mod:`climb_bayes.inspect.diagnostic_plots` (sampling health, posterior
predictive checks, PSIS-LOO), :mod:`climb_bayes.inspect.scaling_plots` (the fitted scaling
laws), :mod:`climb_bayes.inspect.transfer_plots` (cross-lingual transfer) and
:mod:`climb_bayes.inspect.decision_plots` (the mixes). Every public function there either
computes what a figure shows (a pure function of the posterior's InferenceData or of the tables
of :mod:`climb_bayes.inspect.decision`) or draws one figure and returns it; nothing is read from
or written to disk. ``python -m climb_bayes.report`` saves the figures as PNG files;
``notebooks/inspect_posterior.ipynb`` shows the same figures inline.

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

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.figure import Figure

#: Inner and outer credible bands of the fitted curves and intervals.
BANDS = (0.5, 0.9)
#: Columns of the per-language panel grids.
PANEL_COLUMNS = 4


class NoFigure(Exception):
    """A figure function's input leaves nothing meaningful to draw. The message is one
    sentence saying why, shown in the figure's place (for example: the chains never moved)."""


def sample_dims(data: xr.DataArray) -> tuple[str, ...]:
    """The sampling dimensions (``chain``, ``draw``) of a posterior variable."""
    return tuple(d for d in ("chain", "draw") if d in data.dims)


def finite_entries(values: xr.DataArray, dim: str) -> tuple[xr.DataArray, list[str]]:
    """The entries along ``dim`` whose draws are all finite numbers, and the labels
    (``beta[en]``) of those left out."""
    finite = np.isfinite(values).all(sample_dims(values)).values
    left_out = [f"{values.name}[{label}]" for label in values[dim].values[~finite]]
    return values.isel({dim: finite}), left_out


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


def panel_grid(count: int, width: float = 3.6, height: float = 2.9
               ) -> tuple[Figure, np.ndarray]:
    """A figure of ``count`` panels of ``width`` x ``height`` inches, :data:`PANEL_COLUMNS` a
    row, the spare ones hidden; with its axes, flat."""
    columns = min(PANEL_COLUMNS, count)
    rows = math.ceil(count / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows + 0.8),
                             squeeze=False, layout="constrained")
    for ax in axes.ravel()[count:]:
        ax.set_visible(False)
    return fig, axes.ravel()
