"""The report's figures, on synthetic posteriors: readable at 16 languages (no two labels
overlap, every panel shows data), and never empty when a sampler failed (frozen chains, draws
that are not numbers, one chain: a figure shows data or is left out with a sentence saying
why). The report built from a real fit is in ``tests/test_report.py``.
"""


import arviz as az
import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import LineCollection, PathCollection, PolyCollection  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from climb_bayes.inspect.decision_plots import (  # noqa: E402
    gain_probability_plot,
    mix_loss_plot,
    optimal_share_plot,
)
from climb_bayes.inspect.diagnostic_plots import (  # noqa: E402
    KHAT_CEILING,
    energy_plot,
    health_variables,
    khat_plot,
    rank_plot,
    trace_plot,
)
from climb_bayes.inspect.figure import NoFigure  # noqa: E402
from climb_bayes.inspect.scaling_plots import scaling_plot  # noqa: E402
from climb_bayes.inspect.sections import (  # noqa: E402
    checks_section,
    good_k,
    health_section,
    khat_notes,
    loo_table,
    transfer_section,
)
from climb_bayes.inspect.transfer_plots import (  # noqa: E402
    ARROW,
    largest_pairs,
    pairs,
    transfer_draws,
    transfer_forest,
    transfer_heatmap,
    transfer_summary,
)

# ----------------------------------------------------------------------------- 16 languages


def synthetic_idata(languages: int = 16, chains: int = 2, draws: int = 100, seed: int = 0,
                    divergent: float = 0.0) -> az.InferenceData:
    """Posterior draws of the transfer coefficients and exponents for ``languages`` languages,
    with sampler statistics (a share ``divergent`` of the transitions divergent), three
    observed losses per language, their replicates and log-likelihood (no fit)."""
    rng = np.random.default_rng(seed)
    names = [f"l{i:02d}" for i in range(languages)]
    own = np.eye(languages)
    a = (rng.normal(0.05, 0.2, (languages, languages)) + rng.normal(0, 0.05, (chains, draws,
         languages, languages))) * (1 - own)
    k = rng.normal(0, 0.02, (chains, draws, languages, languages)) * (1 - own)
    beta = rng.lognormal(np.log(0.3), 0.05, (chains, draws, languages))
    loss = rng.normal(3.0, 0.1, 3 * languages)
    replicated = loss + rng.normal(0, 0.1, (chains, draws, loss.size))
    idata = az.from_dict(posterior={"a": a, "k": k, "beta": beta},
                         sample_stats={"diverging": rng.uniform(size=(chains, draws)) < divergent,
                                       "energy": rng.normal(size=(chains, draws))},
                         log_likelihood={"loss": -0.5 * ((replicated - loss) / 0.1) ** 2},
                         posterior_predictive={"loss": replicated},
                         observed_data={"loss": loss},
                         constant_data={"self_map": own, "obs_language": np.repeat(names, 3)},
                         coords={"source": names, "target": names},
                         dims={"a": ["source", "target"], "k": ["source", "target"],
                               "beta": ["target"], "self_map": ["source", "target"],
                               "loss": ["obs"], "obs_language": ["obs"]})
    idata.posterior.attrs["reference_tokens"] = 1e8
    return idata


def degenerate(idata: az.InferenceData, kind: str) -> az.InferenceData:
    """``idata`` as a sampler that failed leaves it: ``frozen`` (every chain stuck at its first
    draw, its energy constant), ``not a number`` (every draw NaN) or ``one chain``."""
    if kind == "one chain":
        return idata.isel(chain=[0])
    broken = idata.copy()
    for group in ("posterior", "posterior_predictive", "log_likelihood"):
        data = getattr(broken, group)
        for name, values in data.data_vars.items():
            stuck = (np.broadcast_to(values.isel(draw=[0]).values, values.shape)
                     if kind == "frozen" else np.full(values.shape, np.nan))
            data[name] = values.copy(data=stuck.copy())
    energy = broken.sample_stats["energy"]
    broken.sample_stats["energy"] = energy.copy(data=np.full(energy.shape, 1.0 if kind ==
                                                             "frozen" else np.nan))
    return broken


def text_boxes(fig: plt.Figure, texts: list[Text]) -> list:
    renderer = fig.canvas.get_renderer()
    return [t.get_window_extent(renderer) for t in texts if t.get_visible() and t.get_text()]


def overlapping(boxes: list) -> list[tuple[int, int]]:
    """Pairs of boxes that overlap by more than a pixel in both directions."""
    pairs = []
    for i, a in enumerate(boxes):
        for j in range(i + 1, len(boxes)):
            b = boxes[j]
            if min(a.x1, b.x1) - max(a.x0, b.x0) > 1 and min(a.y1, b.y1) - max(a.y0, b.y0) > 1:
                pairs.append((i, j))
    return pairs


def shows_data(ax: plt.Axes) -> bool:
    """Whether ``ax`` shows a finite data point inside its limits: a line's vertex, a marker,
    a filled area's vertex, a bar or an image (reference lines drawn by ``hlines`` and
    ``vlines`` do not count)."""
    (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())
    points = [line.get_xydata() for line in ax.lines if line.get_visible()]
    points += [c.get_offsets() for c in ax.collections if isinstance(c, PathCollection)]
    points += [path.vertices for c in ax.collections if isinstance(c, PolyCollection)
               for path in c.get_paths()]
    points += [np.array([[b.get_x() + b.get_width() / 2, b.get_y() + b.get_height() / 2]])
               for b in ax.patches if isinstance(b, Rectangle) and b.get_height() * b.get_width()]
    if any(np.ma.count(image.get_array()) for image in ax.images):
        return True
    return any(((xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)
                & np.isfinite(xy).all(1)).any()
               for xy in (np.ma.filled(np.asarray(p, dtype=float), np.nan).reshape(-1, 2)
                          for p in points))


def assert_no_empty_panel(fig: plt.Figure) -> None:
    """Every visible panel (colour bars aside) shows data, or a text saying why it has none."""
    fig.canvas.draw()
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
    assert panels
    for ax in panels:
        explained = any(t.get_visible() and t.get_text().strip() for t in ax.texts)
        assert shows_data(ax) or explained, f"empty panel {ax.get_title()!r}"


def assert_readable(fig: plt.Figure) -> None:
    """No two tick labels of an axis overlap, nor the annotations in one axes."""
    fig.canvas.draw()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            labels = axis.get_ticklabels()
            assert not overlapping(text_boxes(fig, labels)), (ax.get_title(), axis)
        assert not overlapping(text_boxes(fig, ax.texts)), ax.get_title()


def test_transfer_figures_are_readable_at_16_languages() -> None:
    idata = synthetic_idata(16)
    alpha = transfer_draws(idata, 1e9)
    mean, positive = transfer_summary(alpha)
    heatmap = transfer_heatmap(mean, positive, 1e9)
    image = heatmap.axes[0].images[0].get_array()
    alpha_direct = idata.posterior["a"] + idata.posterior["k"] * (1e8 / 1e9 - 1)
    direct = alpha_direct.mean(("chain", "draw")).values
    off = ~np.eye(16, dtype=bool)
    np.testing.assert_allclose(image.data[off], direct[off], rtol=1e-6)
    assert len(heatmap.axes[0].texts) == 16 * 15
    assert heatmap.get_size_inches()[0] >= 10
    assert_readable(heatmap)
    forest = transfer_forest(alpha, count=20)
    labels = [t.get_text() for t in forest.axes[0].get_yticklabels()]
    assert len(labels) == 20
    top = largest_pairs(alpha, 20)
    assert all(any(pair in label for label in labels) for pair in top)
    assert_readable(forest)
    plt.close("all")


def test_trace_and_rank_plots_are_readable_and_labelled_at_16_languages() -> None:
    """One panel per parameter, labelled with its coordinate: every beta and the 4 pairs with
    the lowest bulk ESS; divergences are thin short ticks that leave the traces visible."""
    idata = synthetic_idata(16, divergent=0.05)
    variables = health_variables(idata, 4)
    a = pairs(idata.posterior["a"])
    ess = az.ess(a.to_dataset(name="a"))["a"]
    worst = [str(p) for p in ess.sortby(ess)["pair"].values[:4]]
    expected = [f"beta[l{i:02d}]" for i in range(16)] + [f"a[{pair}]" for pair in worst]
    assert all("\u2192" in pair for pair in worst)  # labelled "l03→l07"
    divergent = int(idata.sample_stats["diverging"].any("chain").sum())
    assert divergent > 0

    rank = rank_plot(variables)
    trace = trace_plot(idata, variables)
    for fig, panels_per_entry in ((rank, 1), (trace, 2)):
        visible = [ax for ax in fig.axes if ax.get_visible()]
        titles = [ax.get_title() for ax in visible]
        assert titles == [t for t in expected for _ in range(panels_per_entry)]
        assert "4 of 240 transfer coefficients" in fig.get_suptitle()
        assert_readable(fig)
        assert_no_empty_panel(fig)
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        assert not overlapping([ax.title.get_window_extent(renderer) for ax in visible])
    traces = [ax for ax in trace.axes if ax.get_visible()][1::2]
    for ax in traces:
        ticks = [c for c in ax.collections if isinstance(c, LineCollection)]
        assert len(ticks) == 1 and len(ticks[0].get_segments()) == divergent
        assert max(ticks[0].get_linewidths()) <= 1.0 and ticks[0].get_alpha() <= 0.6
        heights = [seg[:, 1].max() for seg in ticks[0].get_segments()]
        assert max(heights) <= 0.1  # axes coordinates: the bottom tenth of the panel
        assert len(ax.lines) == 2  # one trace per chain
    plt.close("all")


@pytest.mark.parametrize("stuck_chains", [[0, 1], [1]])
def test_a_pair_that_never_moved_counts_as_mixing_worst(stuck_chains: list[int]) -> None:
    """ArviZ gives a coefficient stuck on one value in every chain the full ESS, and one with
    a single stuck chain a fair one; either must be shown among the worst."""
    idata = synthetic_idata(6, chains=2)
    a = idata.posterior["a"]
    a.loc[{"source": "l03", "target": "l01", "chain": stuck_chains}] = 0.25
    variables = health_variables(idata, 2)
    assert list(variables["a"]["pair"].values)[0] == f"l03{ARROW}l01"


def test_decision_figures_are_readable_at_16_languages() -> None:
    idata = synthetic_idata(16)
    languages = list(idata.posterior["target"].values)
    rng = np.random.default_rng(1)
    mixes = ["posterior_mean", "plugin", "robust", "natural", "unimax"]
    differences = pd.DataFrame({"mix": np.repeat(mixes, 16),
                                "language": np.tile(languages, len(mixes)),
                                "mean": rng.normal(0, 0.02, 16 * len(mixes))})
    differences["q05"] = differences["mean"] - 0.01
    differences["q95"] = differences["mean"] + 0.01
    assert_readable(mix_loss_plot(differences, "uniform"))
    draws = pd.DataFrame(rng.dirichlet(np.ones(16), 300), columns=languages)
    assert_readable(optimal_share_plot(draws, None, {"uniform": dict.fromkeys(
        languages, 1 / 16)}))
    assert_readable(gain_probability_plot(pd.Series(rng.uniform(size=8), index=[
        f"mix_{i}" for i in range(8)]), "uniform", 0.01))
    plt.close("all")


# ----------------------------------------------------------------------------- degenerate input

#: Per kind of failed sampler: the figures that must be left out, each with the start of the
#: sentence that takes its place.
ABSENT = {
    "frozen": {"energy": "No energy plot: the chains' energy never changed (E-BFMI undefined), "
                         "so the sampler did not move; the fit is broken."},
    "not a number": {"rank": "No rank plot: no draw of beta or a is a finite number",
                     "trace": "No trace plot: no draw of beta or a is a finite number",
                     "energy": "No energy plot: the energy of chains 0, 1 is not a finite",
                     "transfer_heatmap": "No transfer heatmap: no transfer coefficient has",
                     "transfer_forest": "No forest plot of the transfer coefficients",
                     "ppc": "No posterior predictive check: 9600 of 9600 replicated losses"},
    "one chain": {},
}


@pytest.mark.parametrize("kind", list(ABSENT))
def test_a_failed_sampler_gives_no_empty_figure_but_a_sentence(kind: str) -> None:
    """Every figure a section draws shows something; each one that cannot is left out and a
    note says why (the energy plot of frozen chains and the Pareto k plot of k = inf used to
    come out empty)."""
    idata = degenerate(synthetic_idata(16, chains=2, draws=100), kind)
    sections = [health_section(idata), transfer_section(idata, 1e9),
                checks_section(idata, {}, "source_saturating")]
    figures = {stem: fig for section in sections for stem, fig in section.figures.items()}
    notes = [note for section in sections for note in section.notes]
    drawn = {"rank", "trace", "energy", "transfer_heatmap", "transfer_forest", "ppc", "khat"}
    assert set(figures) == drawn - set(ABSENT[kind])
    for stem, sentence in ABSENT[kind].items():
        assert any(note.startswith(sentence) for note in notes), (stem, notes)
    for fig in figures.values():
        assert_no_empty_panel(fig)
    plt.close("all")


def test_pareto_k_beyond_the_scale_are_drawn_at_the_ceiling_with_a_note() -> None:
    """Frozen chains give k = inf for every observation: matplotlib cannot place an infinite
    k, so the plot used to be empty while the table counted every k > 1."""
    loo = az.loo(degenerate(synthetic_idata(4), "frozen"), pointwise=True)
    k = np.asarray(loo.pareto_k)
    assert np.isinf(k).all()
    ax = khat_plot(loo, good_k(loo)).axes[0]
    y_low, y_high = ax.get_ylim()
    marked = [c for c in ax.collections if isinstance(c, PathCollection)
              and np.allclose(c.get_offsets()[:, 1], KHAT_CEILING)]
    assert marked and sum(len(c.get_offsets()) for c in marked) >= k.size
    assert y_low < KHAT_CEILING < y_high and y_high < 2.0
    assert_no_empty_panel(ax.figure)
    table = loo_table(loo)
    assert table["k > 1 (very bad)"].iloc[0] == k.size
    [note] = khat_notes(k)
    assert note.startswith(f"{k.size} of {k.size} observations have a Pareto k above 1.5")
    assert "infinite k" in note and "chains did not move" in note
    finite = np.array([0.1, 0.8, 3.0, np.nan])  # one beyond the ceiling, one not a number
    assert khat_notes(finite)[0].startswith("2 of 4 observations")
    assert "infinite" not in khat_notes(finite)[0]
    assert khat_notes(np.array([0.1, 0.5])) == []
    plt.close("all")


def test_energy_plot_names_the_chain_whose_energy_never_changed() -> None:
    idata = synthetic_idata(3, chains=3)
    idata.sample_stats["energy"][1] = 2.0
    with pytest.raises(NoFigure, match=r"^No energy plot: the energy of chain 1 never "
                                       r"changed \(E-BFMI undefined\)"):
        energy_plot(idata)
    del idata.sample_stats["energy"]
    with pytest.raises(NoFigure, match="recorded no energy"):
        energy_plot(idata)


def test_decision_figures_with_degenerate_input() -> None:
    """A skewed posterior's mean outside its interval still draws; losses that are not numbers
    give NaN probabilities, not 0%, and no figure but a sentence; so does a lone uniform mix."""
    skewed = pd.DataFrame({"mix": ["robust"] * 2, "language": ["en", "de"],
                           "mean": [0.5, -0.1], "q05": [-0.1, -0.2], "q95": [0.2, 0.3]})
    assert_no_empty_panel(mix_loss_plot(skewed, "uniform"))
    with pytest.raises(NoFigure, match="no mix besides uniform"):
        mix_loss_plot(skewed.iloc[:0], "uniform")
    with pytest.raises(NoFigure, match="not finite numbers"):
        mix_loss_plot(skewed.assign(mean=np.nan), "uniform")
    beats = pd.Series([np.nan, np.nan], index=["robust", "natural"])
    with pytest.raises(NoFigure, match="not finite numbers"):
        gain_probability_plot(beats, "uniform", 0.01)
    with pytest.raises(NoFigure, match="no mix besides uniform"):
        gain_probability_plot(beats.iloc[:0], "uniform", 0.01)
    partial = gain_probability_plot(pd.Series([0.7, np.nan], index=["robust", "natural"]),
                                    "uniform", 0.01)
    assert "not a number" in [t.get_text() for t in partial.axes[0].texts]
    with pytest.raises(NoFigure, match="optimal shares are not finite"):
        optimal_share_plot(pd.DataFrame({"en": [np.nan] * 3}), None, {})
    plt.close("all")


def scaling_inputs(languages: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fitted curves and pilot losses in the tables of ``scaling_curves`` and
    ``observations`` (:mod:`climb_bayes.inspect.scaling_plots`), for ``languages``."""
    tokens = np.geomspace(1e6, 1e9, 30)
    curves = pd.concat([pd.DataFrame({"language": lang, "mix": mix, "tokens": tokens,
                                      "mean": 2.5 + scale * (tokens / 1e7) ** -0.3})
                        for lang in languages for mix, scale in (("monolingual", 1.0),
                                                                 ("uniform", 1.4))])
    for column, shift in (("q05", -0.1), ("q25", -0.05), ("q75", 0.05), ("q95", 0.1)):
        curves[column] = curves["mean"] + shift
    rng = np.random.default_rng(0)
    observed = pd.DataFrame({"language": np.repeat(languages, 12),
                             "tokens": np.tile(np.geomspace(2e6, 3e7, 12), len(languages)),
                             "own_share": rng.uniform(size=len(languages) * 12)})
    observed["monolingual"] = observed["own_share"] > 0.9
    observed["loss"] = 2.5 + 1.2 * (observed["tokens"] / 1e7) ** -0.3
    return curves, observed


def test_scaling_figure_is_readable_at_16_languages() -> None:
    languages = [f"l{i:02d}" for i in range(16)]
    curves, observed = scaling_inputs(languages)
    fig = scaling_plot(curves, observed, languages, target_tokens=1e9)
    visible = [ax for ax in fig.axes if ax.get_visible() and ax.get_title() in languages]
    assert [ax.get_title() for ax in visible] == languages
    assert all(ax.get_xlabel() and ax.get_ylabel() for ax in visible)
    assert_readable(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    titles = [ax.title.get_window_extent(renderer) for ax in visible]
    assert not overlapping(titles)
    plt.close("all")


def test_scaling_panel_whose_fit_is_not_a_number_says_so() -> None:
    languages = ["en", "de", "fr"]
    curves, observed = scaling_inputs(languages)
    curves.loc[curves["language"] == "de", ["mean", "q05", "q25", "q75", "q95"]] = np.nan
    fig = scaling_plot(curves, observed, languages)
    notes = {ax.get_title(): [t.get_text() for t in ax.texts] for ax in fig.axes
             if ax.get_title() in languages}
    assert notes == {"en": [], "de": ["fitted law not finite everywhere\n(draws not numbers)"],
                     "fr": []}
    assert_no_empty_panel(fig)
    plt.close("all")
