"""The report (``python -m climb_bayes.report``), its figures, and the inspection notebook.

Figures are checked for what they show (the heatmap's colours are the posterior means of the
transfer coefficients, computed here straight from the InferenceData), and the report for
opening with the fit's verdict, for refusing a broken posterior unless allow_broken=true, and
for refusing bad input with exit status 2 before anything is written. Readability at 16
languages and figures of failed samplers: ``tests/test_report_figures.py``.
"""

import base64
import re
import shutil
from html import escape
from pathlib import Path

import arviz as az
import jax
import matplotlib
import nbformat
import numpy as np
import pandas as pd
import pytest
import yaml
from nbclient import NotebookClient
from numpyro.infer import Predictive, log_likelihood

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from climb_bayes.data.simulated import simulate_pilots  # noqa: E402
from climb_bayes.data.validation import validate_pilots  # noqa: E402
from climb_bayes.decide.loss_differences import LOSS_DIFFERENCES  # noqa: E402
from climb_bayes.decide.mix_directory import read_mix_directory  # noqa: E402
from climb_bayes.decide.mix_file import MixFile  # noqa: E402
from climb_bayes.errors import INPUT_ERROR_STATUS, InputError  # noqa: E402
from climb_bayes.inspect.assemble import make_report, other_forms  # noqa: E402
from climb_bayes.inspect.decision import SolvedDecision, solved_decision  # noqa: E402
from climb_bayes.inspect.html_page import (  # noqa: E402
    STYLE,
    health_banner,
    health_numbers,
    render_html,
)
from climb_bayes.inspect.mix_directory import decision_budget  # noqa: E402
from climb_bayes.inspect.sections import (  # noqa: E402
    Section,
    checks_section,
    decision_section,
    good_k,
    loo_table,
    transfer_section,
)
from climb_bayes.model.fitting import model_data  # noqa: E402
from climb_bayes.model.health import BROKEN, HEALTHY, MARGINAL, Health, assess, store  # noqa: E402
from climb_bayes.model.numpyro_model import POOLED_SITES, climb_model  # noqa: E402
from climb_bayes.model.posterior import (  # noqa: E402
    constant_data,
    dims_and_coords,
    provenance,
    read_posterior,
    save_posterior,
)
from climb_bayes.model.priors import Priors
from climb_bayes.predict import predict  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "inspect_posterior.ipynb"
TARGET_TOKENS = 2e8
#: Figures the report draws for any posterior; the decision ones need a mix directory.
POSTERIOR_FIGURES = {"rank", "trace", "energy", "scaling_laws", "transfer_heatmap",
                     "transfer_forest", "ppc", "khat"}
DECISION_FIGURES = {"mix_losses", "optimal_shares", "p_gain"}


# ----------------------------------------------------------------------------- inputs


@pytest.fixture(scope="module")
def posterior(fitted):
    return read_posterior(fitted.posterior)


@pytest.fixture(scope="module")
def mix_dir(fitted, cli, tmp_path_factory) -> Path:
    """What ``python -m climb_bayes.solve`` writes for the session's posterior."""
    directory = tmp_path_factory.mktemp("mixes") / "mix"
    result = cli("climb_bayes.solve", f"posterior={fitted.posterior}",
                 f"target_tokens={TARGET_TOKENS}", f"output={directory}")
    assert result.returncode == 0, result.stderr[-3000:]
    return directory


def solved_copy(mix_dir: Path, directory: Path) -> Path:
    """A copy of the solver's mix directory to alter."""
    shutil.copytree(mix_dir, directory)
    return directory


@pytest.fixture(scope="module")
def reported(fitted, mix_dir, cli, tmp_path_factory) -> Path:
    """The report command run once on the session's posterior and a mix directory."""
    output = tmp_path_factory.mktemp("report") / "out"
    result = cli("climb_bayes.report", f"posterior={fitted.posterior}", f"mixes={mix_dir}",
                 f"output={output}")
    assert result.returncode == 0, result.stderr[-4000:]
    assert f"wrote {output / 'report.html'}" in result.stdout
    return output


def other_form_beside(path: Path) -> bool:
    return any(p != path for p in path.parent.glob("posterior_*.nc"))


# ----------------------------------------------------------------------------- the report


def test_every_figure_is_written_and_is_a_non_empty_png(fitted, reported) -> None:
    expected = POSTERIOR_FIGURES | DECISION_FIGURES
    if other_form_beside(fitted.posterior):
        expected.add("compare")
    written = {p.stem for p in reported.glob("*.png")}
    assert written == expected
    for stem in expected:
        image = plt.imread(reported / f"{stem}.png")
        assert image.shape[0] > 200 and image.shape[1] > 200, stem
        assert image[..., :3].std() > 0.01, f"{stem}.png is blank"


def test_html_page_embeds_and_links_every_figure(reported, mix_dir) -> None:
    page = (reported / "report.html").read_text()
    for png in reported.glob("*.png"):
        assert f"href='{png.name}'" in page, png.name
        embedded = re.search(rf"<a href='{re.escape(png.name)}'><img alt='{png.stem}' "
                             r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'>", page)
        assert embedded, png.name
        assert base64.b64decode(embedded.group(1)) == png.read_bytes()
    for title in ("Sampling health", "Scaling laws", "Cross-lingual transfer",
                  "Posterior predictive checks and PSIS-LOO", "The decision"):
        assert f">{title}</h2>" in page
    assert "r_hat" in page and "ess_bulk" in page and "p_gain" in page
    solved = MixFile.read(mix_dir / "posterior_mean.yaml")
    versus = solved.comparison
    # the solver's margin, its warnings and its recommendation, passed on
    assert escape(f"delta = {versus['delta']:.3g} nats ({versus['delta_from']})") in page
    for warning in solved.warnings:
        assert escape(f"solver: {warning}") in page
    assert escape(f"solver recommends {versus['recommended']}: "
                  f"{versus['recommendation']}") in page
    assert "learned error in budget" in page
    assert not list(reported.glob(".*.tmp"))  # no temporary files left behind


def test_compare_section_follows_the_other_form_beside_the_posterior(fitted, tmp_path) -> None:
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(fitted.posterior, alone / "posterior.nc")
    posterior = read_posterior(alone / "posterior.nc")
    assert other_forms(alone / "posterior.nc", posterior.law.form) == {}
    section = checks_section(posterior.idata, {}, posterior.law.form)
    assert "compare" not in section.figures
    assert any("only one interaction form" in note for note in section.notes)
    other = fitted.output / "posterior_self_saturating.nc"
    if other.is_file():
        others = other_forms(fitted.posterior, posterior.law.form)
        assert set(others) == {"self_saturating"}
        section = checks_section(posterior.idata, others, posterior.law.form)
        table = section.tables["az.compare of the interaction forms"]
        fit_table = pd.read_csv(fitted.output / "model_comparison.csv", index_col=0)
        assert set(table.index) == set(fit_table.index)
        np.testing.assert_allclose(table.loc[fit_table.index, "elpd_loo"],
                                   fit_table["elpd_loo"], rtol=1e-6)
    plt.close("all")


def test_heatmap_colours_are_posterior_means_from_the_inference_data(posterior) -> None:
    idata = posterior.idata
    section = transfer_section(idata, TARGET_TOKENS)
    image = section.figures["transfer_heatmap"].axes[0].images[0].get_array()
    post = idata.posterior
    reference = float(post.attrs["reference_tokens"])
    alpha = post["a"] + post["k"] * (reference / TARGET_TOKENS - 1)
    direct = alpha.mean(("chain", "draw")).transpose("source", "target").values
    own = np.array([[s == t for t in posterior.targets] for s in posterior.sources])
    assert image.mask.tolist() == own.tolist()  # a language with itself is blank
    np.testing.assert_allclose(image.data[~own], direct[~own], rtol=1e-5, atol=1e-7)
    # the probability printed in each cell is the share of draws with alpha > 0
    texts = [t.get_text() for t in section.figures["transfer_heatmap"].axes[0].texts]
    positive = (alpha > 0).mean(("chain", "draw")).transpose("source", "target").values
    expected = [f"{direct[i, j]:.2f}\n{positive[i, j]:.0%}"
                for i in range(own.shape[0]) for j in range(own.shape[1]) if not own[i, j]]
    assert texts == expected
    plt.close("all")


def test_solver_losses_match_the_predict_command(posterior, mix_dir) -> None:
    """The predicted losses the report shows (the mix files') are those of ``predict``."""
    mixes = read_mix_directory(mix_dir, posterior.sources, posterior.targets)
    assert decision_budget(mixes, None) == TARGET_TOKENS  # read from the mixes' metadata
    solved = solved_decision(mixes)
    frame = mixes.shares.reset_index().rename(columns={s: f"share_{s}"
                                                       for s in posterior.sources})
    expected = predict(posterior, frame, np.full(len(frame), TARGET_TOKENS))
    merged = solved.losses.merge(expected, on=["mix", "language"], suffixes=("", "_predict"))
    assert len(merged) == len(mixes.shares) * len(posterior.targets)
    for column in ("mean", "q05", "q95"):
        np.testing.assert_allclose(merged[column], merged[f"{column}_predict"], rtol=1e-5)


def figure_points(section: Section, stem: str) -> list[np.ndarray]:
    """The data of the markers (mix_losses) or bars (p_gain) of one of the section's figures."""
    ax = section.figures[stem].axes[0]
    if stem == "p_gain":
        return [np.array([bar.get_width() for bar in ax.patches if isinstance(bar, Rectangle)
                          and bar.get_height() < 1.0])]
    return [np.asarray(line.get_xdata(), float) for line in ax.lines if line.get_marker() == "o"]


def test_report_shows_the_numbers_the_solver_wrote(posterior, mix_dir) -> None:
    """Every number of the decision section is the solver's, as its files hold it: the
    comparison, each mix's predicted loss, its loss minus the reference's (drawn), and
    P(gain > delta) (drawn)."""
    mixes = read_mix_directory(mix_dir, posterior.sources, posterior.targets)
    assert {"posterior_mean", "plugin", "uniform"} <= set(mixes.shares.index)
    section = decision_section(posterior, mixes)
    assert set(section.figures) == DECISION_FIGURES
    reference = MixFile.read(mix_dir / "posterior_mean.yaml").comparison["reference"]
    comparison = pd.read_csv(mix_dir / "comparison.csv")
    shown = section.tables[f"mixes: weighted loss and gain over {reference}"]
    pd.testing.assert_frame_equal(shown.reset_index(drop=True),
                                  comparison[list(shown.columns)], check_exact=True)
    losses = section.tables["predicted loss per mix and language (nats)"]
    for row in losses.itertuples():
        written = MixFile.read(mix_dir / f"{row.mix}.yaml").metadata["predicted_loss"]
        assert (row.mean, row.q05, row.q95) == tuple(written[row.language][k]
                                                     for k in ("mean", "q05", "q95"))
    assert len(losses) == len(mixes.files) * len(posterior.targets)
    differences = pd.read_csv(mix_dir / LOSS_DIFFERENCES)
    drawn = figure_points(section, "mix_losses")
    languages = list(dict.fromkeys(differences["language"]))
    expected = [differences[differences["mix"] == mix].set_index("language").loc[languages,
                                                                                 "mean"]
                for mix in dict.fromkeys(differences["mix"])]
    assert len(drawn) == len(expected)
    for points, values in zip(drawn, expected, strict=True):
        np.testing.assert_array_equal(points, values.to_numpy())
    bars = comparison.set_index("mix")["p_gain"].drop(reference)
    np.testing.assert_array_equal(figure_points(section, "p_gain")[0], bars.to_numpy())
    plt.close("all")


def test_mixes_written_by_hand_carry_no_decision(posterior, mix_dir, tmp_path) -> None:
    """Without the solver's numbers the section shows the shares and says what is lacking;
    nothing is computed in their place."""
    directory = solved_copy(mix_dir, tmp_path / "mixes")
    for file in directory.glob("*.yaml"):
        file.write_text(yaml.safe_dump({"shares": yaml.safe_load(file.read_text())["shares"]}))
    (directory / LOSS_DIFFERENCES).unlink()
    mixes = read_mix_directory(directory, posterior.sources, posterior.targets)
    lacking = solved_decision(mixes)
    assert not isinstance(lacking, SolvedDecision)
    assert LOSS_DIFFERENCES in lacking and "the mixes' metadata.predicted_loss" in lacking
    section = decision_section(posterior, mixes)
    assert set(section.figures) == {"optimal_shares"}
    assert section.text.startswith(f"The mixes in {directory} carry no decision")
    assert list(section.tables) == ["shares of the mixes", "the solver's optimal share per "
                                                           "language"]
    plt.close("all")


def test_without_mixes_the_decision_is_skipped_with_a_note(fitted, tmp_path) -> None:
    output = tmp_path / "report"
    page = make_report(fitted.posterior, None, output)
    written = {p.stem for p in output.glob("*.png")}
    assert POSTERIOR_FIGURES <= written and not written & DECISION_FIGURES
    html = page.read_text()
    assert "No mix directory was given" in html and "skipped" in html
    assert "transfer is shown at the reference budget" in html


# ----------------------------------------------------------------------------- bad input


def bad_case(case: str, tmp: Path, fitted, sources: list[str], mix_dir: Path
             ) -> tuple[list[str], list[str]]:
    """Overrides for one bad input, and what the error message must name."""
    mixes = tmp / "mixes"
    if case == "missing posterior":
        missing = tmp / "nowhere" / "posterior.nc"
        return [f"posterior={missing}"], [str(missing), "climb_bayes.fit"]
    if case == "missing mix directory":
        return [f"posterior={fitted.posterior}", f"mixes={mixes}"], [str(mixes), "solve"]
    if case == "no mixes":
        solved_copy(mix_dir, mixes)
        for file in mixes.glob("*.yaml"):
            file.unlink()
        return [f"posterior={fitted.posterior}", f"mixes={mixes}"], [str(mixes), "shares"]
    if case == "unknown language":
        solved_copy(mix_dir, mixes)
        document = yaml.safe_load((mixes / "uniform.yaml").read_text())
        rest = 1.0 - 0.2 * (len(sources) - 1)
        document["shares"] = {**{s: 0.2 for s in sources[:-1]}, "xx": rest}
        (mixes / "uniform.yaml").write_text(yaml.safe_dump(document))
        return [f"posterior={fitted.posterior}", f"mixes={mixes}"], [
            str(mixes / "uniform.yaml"), "'xx'", str(sources)]
    if case == "shares not summing to 1":
        solved_copy(mix_dir, mixes)
        (mixes / "bad.yaml").write_text(yaml.safe_dump({"shares": {sources[0]: 0.5}}))
        return [f"posterior={fitted.posterior}", f"mixes={mixes}"], [
            str(mixes / "bad.yaml"), "sum to 1"]
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["missing posterior", "no mixes", "unknown language"])
def test_report_command_rejects_bad_input_and_writes_nothing(fitted, posterior, mix_dir, cli,
                                                             tmp_path, case: str) -> None:
    overrides, named = bad_case(case, tmp_path, fitted, posterior.sources, mix_dir)
    output = tmp_path / "out"
    result = cli("climb_bayes.report", *overrides, f"output={output}")
    assert result.returncode == INPUT_ERROR_STATUS, result.stderr[-3000:]
    for text in named:
        assert text in result.stderr, (text, result.stderr[-3000:])
    assert "Traceback" not in result.stderr
    assert not output.exists()


@pytest.mark.parametrize("case", ["missing mix directory", "shares not summing to 1"])
def test_make_report_rejects_bad_mixes_before_writing(fitted, posterior, mix_dir, tmp_path,
                                                      case: str) -> None:
    overrides, named = bad_case(case, tmp_path, fitted, posterior.sources, mix_dir)
    output = tmp_path / "out"
    with pytest.raises(InputError) as error:
        make_report(fitted.posterior, overrides[1].split("=", 1)[1], output)
    for text in named:
        assert text in str(error.value)
    assert not output.exists()


def test_mixes_without_a_budget_need_tokens(posterior, mix_dir, tmp_path) -> None:
    directory = solved_copy(mix_dir, tmp_path / "mixes")
    for file in directory.glob("*.yaml"):
        document = yaml.safe_load(file.read_text())
        document.pop("metadata")
        file.write_text(yaml.safe_dump(document))
    mixes = read_mix_directory(directory, posterior.sources, posterior.targets)
    with pytest.raises(InputError, match="tokens=N"):
        decision_budget(mixes, None)
    assert decision_budget(mixes, 5e8) == 5e8


# ----------------------------------------------------------------------------- the verdict


VERDICTS = {
    HEALTHY: Health(HEALTHY, (), 1.004, 812.0, 640.0, 0, 4000, 0.91),
    MARGINAL: Health(MARGINAL, ("max R-hat 1.03 > 1.01 (beta[de])", "3 of 4000 transitions "
                                "divergent"), 1.03, 512.0, 450.0, 3, 4000, 0.8),
    BROKEN: Health(BROKEN, ("R-hat of beta[en] is not a number (a chain did not move)",
                            "E-BFMI is not a number (the chains' energy did not change)"),
                   float("nan"), float("nan"), float("nan"), 0, 4000, float("nan")),
}


@pytest.mark.parametrize("verdict", list(VERDICTS))
def test_the_verdict_comes_first_after_the_title(verdict: str) -> None:
    health = VERDICTS[verdict]
    page = render_html([Section("Scaling laws", "text")], {}, "title",
                       "Posterior x.nc", health_banner(health))
    after_title = page.split("<h1>title</h1>", 1)[1]
    assert after_title.startswith(f"<p class='health {verdict}'>" if verdict == HEALTHY
                                  else f"<div class='health {verdict}'>")
    assert after_title.index("Posterior x.nc") > after_title.index(health_numbers(health))
    for reason in health.reasons:
        assert f"<li>{escape(reason)}</li>" in after_title  # "1.03 > 1.01" escaped
    if verdict == HEALTHY:
        assert ("Healthy fit: max R-hat 1.004, min bulk ESS 812, min tail ESS 640, 0 of 4000 "
                "transitions divergent, min E-BFMI 0.91.") in page
    elif verdict == MARGINAL:
        assert "<strong>Marginal fit:</strong>" in page and "Read the numbers with care" in page
    else:
        assert "<strong>Broken fit: these numbers are not results.</strong>" in page
        assert "Fix: fit again" in page and "allow_broken=true" in page
        assert "max R-hat not a number" in page
        assert not re.search(r"\bnan\b", health_banner(health), re.IGNORECASE)
    assert f".{verdict}{{" in STYLE


def prior_posterior(path: Path, frozen: bool, chains: int = 2, draws: int = 100) -> Path:
    """A posterior file in the fit's format, its draws from the prior of a simulated
    3-language design (no fit), its health verdict stored; ``frozen``: every chain stuck at
    its first draw and its energy constant, as a sampler that never moved leaves it."""
    table = validate_pilots(simulate_pilots(languages=3, seed=0)[0])
    data, loss, reference = model_data(table)
    kwargs = {"data": data, "priors": Priors(), "form": "source_saturating",
              "centred": POOLED_SITES}
    samples = Predictive(climb_model, num_samples=chains * draws)(jax.random.PRNGKey(0),
                                                                  **kwargs)
    values = {name: np.asarray(v) for name, v in samples.items() if name != "loss"}
    groups = {"posterior": values, "posterior_predictive": {"loss": samples["loss"]},
              "log_likelihood": log_likelihood(climb_model, values, loss=loss, **kwargs)}

    def shaped(v: np.ndarray) -> np.ndarray:
        v = np.asarray(v).reshape(chains, draws, *np.shape(v)[1:])
        return np.broadcast_to(v[:, :1], v.shape).copy() if frozen else v

    rng = np.random.default_rng(0)
    dims, coords = dims_and_coords(table, np.nonzero(np.asarray(data.self_map) == 0))
    idata = az.from_dict(
        **{group: {name: shaped(v) for name, v in d.items()} for group, d in groups.items()},
        sample_stats={"diverging": np.zeros((chains, draws), bool), "n_steps": np.full(
            (chains, draws), 15), "energy": np.ones((chains, draws)) if frozen
                      else rng.normal(size=(chains, draws))},
        observed_data={"loss": np.asarray(loss)}, constant_data=constant_data(table, data),
        dims=dims, coords=coords)
    idata.posterior.attrs.update(provenance(table, reference, "source_saturating", 4.0, "",
                                            0.0, POOLED_SITES))
    store(idata, assess(idata))
    save_posterior(idata, path)
    return path


@pytest.fixture(scope="module")
def broken_posterior(tmp_path_factory) -> Path:
    return prior_posterior(tmp_path_factory.mktemp("broken") / "posterior.nc", frozen=True)


def test_a_broken_posterior_is_refused_unless_allowed(broken_posterior, cli, tmp_path) -> None:
    """make_report refuses it before writing anything; the command with allow_broken=true
    draws the report with the red box first, and the frozen chains' empty figures left out."""
    assert read_posterior(broken_posterior, allow_broken=True).health.verdict == BROKEN
    with pytest.raises(InputError, match="allow_broken=true"):
        make_report(broken_posterior, None, tmp_path / "refused")
    assert not (tmp_path / "refused").exists()
    output = tmp_path / "allowed"
    result = cli("climb_bayes.report", f"posterior={broken_posterior}", f"output={output}",
                 "allow_broken=true")
    assert result.returncode == 0, result.stderr[-3000:]
    page = (output / "report.html").read_text()
    assert page.split("</h1>", 1)[1].startswith("<div class='health broken'><strong>Broken "
                                                 "fit: these numbers are not results.")
    assert "No energy plot: the chains&#x27; energy never changed" in page
    assert "observations have a Pareto k above 1.5" in page
    written = {p.stem for p in output.glob("*.png")}
    assert "energy" not in written and {"rank", "trace", "khat", "ppc"} <= written
    for png in output.glob("*.png"):
        assert plt.imread(png)[..., :3].std() > 0.01, f"{png.name} is blank"


# ----------------------------------------------------------------------------- the notebook


def execute_notebook(parameters: str, cwd: Path) -> nbformat.NotebookNode:
    """Run the notebook with ``parameters`` injected after its parameters cell (as papermill
    does); any cell error raises ``CellExecutionError``."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    index = next(i for i, cell in enumerate(notebook.cells)
                 if "parameters" in cell.metadata.get("tags", []))
    notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(parameters, id="injected"))
    NotebookClient(notebook, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(cwd)}}).execute()
    return notebook


def images(notebook: nbformat.NotebookNode) -> int:
    return sum("image/png" in output.get("data", {}) for cell in notebook.cells
               if cell.cell_type == "code" for output in cell.outputs)


def test_notebook_is_stored_without_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.outputs == [] and cell.execution_count is None for cell in code)
    tagged = [cell for cell in code if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1 and "POSTERIOR = None" in tagged[0].source


def test_notebook_runs_on_a_posterior_and_its_mixes(fitted, mix_dir, tmp_path) -> None:
    notebook = execute_notebook(f"POSTERIOR = {str(fitted.posterior)!r}\n"
                                f"MIXES = {str(mix_dir)!r}", tmp_path)
    expected = len(POSTERIOR_FIGURES | DECISION_FIGURES) + other_form_beside(fitted.posterior)
    assert images(notebook) == expected


@pytest.mark.slow
def test_notebook_fits_and_inspects_the_bundled_example(cli, tmp_path) -> None:
    """The notebook's default: fit the bundled example (small settings), inspect it, and the
    decision on a mix directory for its languages. One form and no refit, to keep it short:
    the comparison of forms is drawn on the session's posterior (the test above)."""
    fit = ["sampler.chains=2", "sampler.warmup=100", "sampler.samples=100",
           "sampler.map_starts=2", "sampler.max_tree_depth=5", "sampler.refit=false"]
    example = f"EXAMPLE_DIR = {str(tmp_path / 'example')!r}\nEXAMPLE_FIT = {fit!r}\n"
    notebook = execute_notebook(example, tmp_path)
    assert (tmp_path / "example" / "posterior.nc").is_file()
    assert images(notebook) == len(POSTERIOR_FIGURES)
    mixes = tmp_path / "mixes"  # then the decision, on the fit the notebook made and reuses
    solved = cli("climb_bayes.solve", f"posterior={tmp_path / 'example' / 'posterior.nc'}",
                 "target_tokens=2e9", f"output={mixes}", "allow_broken=true")
    assert solved.returncode == 0, solved.stderr[-3000:]
    notebook = execute_notebook(example + f"MIXES = {str(mixes)!r}", tmp_path)
    assert images(notebook) == len(POSTERIOR_FIGURES | DECISION_FIGURES)
    printed = "".join(output.get("text", "") for cell in notebook.cells
                      if cell.cell_type == "code" for output in cell.outputs)
    assert "fit health:" in printed and "Only one interaction form was fitted" in printed


def test_mix_directory_skips_files_without_shares_and_reads_solver_tables(posterior, mix_dir,
                                                                           tmp_path) -> None:
    path = solved_copy(mix_dir, tmp_path / "mixes")
    (path / "settings.yaml").write_text(yaml.safe_dump({"weights": None}))
    directory = read_mix_directory(path, posterior.sources, posterior.targets)
    mixes = {file.stem: yaml.safe_load(file.read_text())["shares"]
             for file in mix_dir.glob("*.yaml")}
    assert set(directory.shares.index) == set(mixes)
    for name, shares in mixes.items():
        np.testing.assert_array_equal(directory.shares.loc[name, list(shares)],
                                      list(shares.values()))
    assert any("settings.yaml" in note for note in directory.notes)
    assert list(directory.optimal_share_draws.columns) == posterior.sources
    assert list(directory.optimal_shares.index) == posterior.sources
    assert list(directory.comparison["mix"]) == list(pd.read_csv(mix_dir / "comparison.csv")
                                                     ["mix"])
    assert set(directory.loss_differences["mix"]) == set(mixes) - {"uniform"}
    (path / LOSS_DIFFERENCES).write_text("mix,language,mean\nplugin,en,0.1\n")
    with pytest.raises(InputError, match=f"{LOSS_DIFFERENCES}: missing columns q05, q95"):
        read_mix_directory(path, posterior.sources, posterior.targets)


def test_loo_table_counts_every_observation_once(posterior) -> None:
    loo = az.loo(posterior.idata, pointwise=True)
    table = loo_table(loo)
    counts = table.filter(like="k ").iloc[0]
    assert counts.sum() == posterior.idata.observed_data.sizes["obs"]
    assert 0.0 < good_k(loo) <= 0.7
