"""The command lines: ``python -m climb_bayes.fit`` and ``python -m climb_bayes.predict``, their
outputs, and how they refuse bad input (exit status 2, nothing written)."""

import re
from pathlib import Path

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from climb_bayes.data.pilot_table import PilotTable
from climb_bayes.data.table_files import read_pilots
from climb_bayes.errors import INPUT_ERROR_STATUS
from climb_bayes.fit import bundled_example
from climb_bayes.model.law import LawParams, expected_loss
from climb_bayes.model.posterior import read_posterior
from climb_bayes.model.priors import Priors

#: Mixes to predict; ``tokens`` is empty on two rows, so those take the ``tokens=`` argument.
MIXES = pd.DataFrame({
    "mix": ["balanced", "en_heavy", "fr_only", "de_fr"],
    "tokens": [np.nan, 3e8, np.nan, 5e6],
    "share_en": [0.4, 0.8, 0.0, 0.0],
    "share_de": [0.3, 0.1, 0.0, 0.25],
    "share_fr": [0.3, 0.1, 1.0, 0.75],
})
TOKENS = 1e8


# ----------------------------------------------------------------------------- fit outputs


def test_fit_writes_summary_config_and_reports_nuts(fitted) -> None:
    assert fitted.posterior.is_file()
    summary = pd.read_csv(fitted.output / "summary.csv", index_col=0)
    assert {"mean", "sd", "r_hat", "ess_bulk", "ess_tail"} <= set(summary.columns)
    assert "E[en]" in summary.index and "a[de, fr]" in summary.index
    assert "a[en, en]" not in summary.index  # fixed at zero, so left out of the summary
    config = OmegaConf.load(fitted.output / "config.yaml")
    assert config.pilots == str(fitted.pilots)
    assert config.sampler.chains == fitted.chains
    assert config.sampler.samples == fitted.draws
    assert config.law.form == "source_saturating"
    assert config.law.priors.discrepancy_scale == Priors().discrepancy_scale  # the schema's
    report = re.search(
        rf"NUTS: {fitted.chains} chains x {fitted.draws} draws in \d+ s .*; \d+ divergences; "
        r"max R-hat [\d.]+; min bulk ESS \d+; min tail ESS \d+; min E-BFMI [\d.]+; "
        r"mean tree depth [\d.]+ \(max \d+\)\.", fitted.stdout)
    assert report, fitted.stdout[-3000:]
    verdict = re.search(r"fit health \(source_saturating\): (healthy|marginal)", fitted.stdout)
    assert verdict, fitted.stdout[-3000:]
    stored = az.from_netcdf(str(fitted.posterior)).posterior.attrs["health"]
    assert stored == verdict.group(1)
    assert f"wrote {fitted.posterior} ({stored})" in fitted.stdout


def test_fit_compares_the_interaction_forms_by_loo(fitted) -> None:
    comparison = pd.read_csv(fitted.output / "model_comparison.csv", index_col=0)
    assert set(comparison.index) == {"source_saturating", "self_saturating"}
    assert {"rank", "elpd_loo", "p_loo", "elpd_diff", "weight"} <= set(comparison.columns)
    assert sorted(comparison["rank"]) == [0, 1]
    assert comparison["weight"].sum() == pytest.approx(1.0)
    best = comparison.index[comparison["rank"] == 0][0]
    assert comparison.loc[best, "elpd_diff"] == 0.0
    other = az.from_netcdf(str(fitted.output / "posterior_self_saturating.nc"))
    assert other.posterior.attrs["form"] == "self_saturating"
    assert "loss" in other.log_likelihood


# ----------------------------------------------------------------------------- predict


def draws_from_netcdf(path: Path) -> tuple[LawParams, np.ndarray, float, list[str], np.ndarray]:
    """The law's parameters per draw straight from the netCDF (chain and draw flattened)."""
    idata = az.from_netcdf(str(path))
    posterior = idata.posterior

    def flat(name: str) -> jnp.ndarray:
        values = posterior[name].values
        return jnp.asarray(values.reshape(-1, *values.shape[2:]), dtype=jnp.float32)

    params = LawParams(**{name: flat(name) for name in LawParams._fields})
    sources = list(posterior.coords["source"].values)
    targets = list(posterior.coords["target"].values)
    self_map = np.array([[float(s == t) for t in targets] for s in sources], dtype=np.float32)
    return (params, self_map, float(posterior.attrs["reference_tokens"]), targets,
            np.asarray(flat("sigma")))


@pytest.fixture(scope="module")
def predicted(fitted, cli, tmp_path_factory) -> tuple[pd.DataFrame, str]:
    root = tmp_path_factory.mktemp("predict")
    mixes = root / "mixes.csv"
    MIXES.to_csv(mixes, index=False)
    output = root / "pred.csv"
    result = cli("climb_bayes.predict", f"posterior={fitted.posterior}", f"mixes={mixes}",
                 f"tokens={TOKENS}", f"output={output}")
    assert result.returncode == 0, result.stderr[-3000:]
    return pd.read_csv(output), result.stdout


def test_predict_matches_direct_evaluation_of_the_law(fitted, predicted) -> None:
    table, stdout = predicted
    params, self_map, reference, targets, _ = draws_from_netcdf(fitted.posterior)
    budgets = MIXES["tokens"].fillna(TOKENS).to_numpy()
    shares = MIXES[["share_en", "share_de", "share_fr"]].to_numpy(dtype=np.float32)
    posterior = read_posterior(fitted.posterior)
    # the learned error in budget at each mix's budget, folded into B, and the law's error
    # below the pilots' shares (the same draws predict uses with its default seed)
    below = np.asarray(posterior.law.share_error(shares, budgets, jax.random.fold_in(
        jax.random.PRNGKey(0), 2)))
    per_draw = np.stack([np.asarray(jax.vmap(
        lambda p, e, i=i: expected_loss(p, jnp.asarray(shares[i:i + 1]),
                                        jnp.asarray([budgets[i] / reference], dtype=jnp.float32),
                                        jnp.asarray(self_map), "source_saturating", e))(
        LawParams(*map(jnp.asarray, posterior.law.at_budget(budgets[i]))),
        jnp.asarray(below[:, i:i + 1])))[:, 0]
        for i in range(len(budgets))], axis=1)  # (draw, mix, target)
    assert per_draw.shape == (fitted.chains * fitted.draws, len(MIXES), len(targets))

    assert len(table) == len(MIXES) * len(targets)
    assert table["mix"].tolist() == np.repeat(MIXES["mix"], len(targets)).tolist()
    assert table["language"].tolist() == targets * len(MIXES)
    np.testing.assert_allclose(table["tokens"], np.repeat(budgets, len(targets)))
    expected = {
        "mean": per_draw.mean(axis=0),
        "q05": np.quantile(per_draw, 0.05, axis=0),
        "q50": np.quantile(per_draw, 0.5, axis=0),
        "q95": np.quantile(per_draw, 0.95, axis=0),
    }
    for column, values in expected.items():
        np.testing.assert_allclose(table[column].to_numpy(), values.ravel(), rtol=1e-4,
                                   err_msg=column)
    assert "wrote" in stdout


def test_predictive_quantiles_are_wider_than_the_posterior_ones(fitted, predicted) -> None:
    table, _ = predicted
    width = (table["q95"] - table["q05"]).to_numpy()
    pred_width = (table["pred_q95"] - table["pred_q05"]).to_numpy()
    assert np.all(table["pred_q05"] < table["q50"]) and np.all(table["pred_q95"] > table["q50"])
    # the widening is the observation noise: the predictive 90% interval of a Student-t(4)
    # with scale sigma alone is 2 x 2.132 sigma; it cannot be narrower than a fraction of it
    _, _, _, targets, sigma = draws_from_netcdf(fitted.posterior)
    noise_width = np.tile(2 * 2.132 * np.median(sigma, axis=0), len(MIXES))
    assert np.all(pred_width > 0.5 * noise_width)
    # never narrower than the posterior's interval beyond Monte Carlo error (300 draws: where
    # the posterior's spread is several nats, as for fr_only on en beyond the pilots, its 5%
    # and 95% sample quantiles move by more than the added noise), and clearly wider where
    # the noise is not swamped by the posterior's own spread
    assert np.all(pred_width > width - 0.5 * noise_width)
    noisy = width < noise_width  # beyond the pilots the learned error in budget widens both
    assert noisy.sum() >= 3  # at least the languages de_fr trains, inside the pilots' budgets
    assert np.all(pred_width[noisy] > width[noisy] + 0.25 * noise_width[noisy])


@pytest.mark.parametrize("case", ["unknown_language", "shares_do_not_sum", "bad_tokens"])
def test_predict_rejects_bad_input(fitted, cli, tmp_path, case: str) -> None:
    mixes = MIXES.drop(columns="tokens")
    tokens = TOKENS
    if case == "unknown_language":
        mixes = mixes.assign(share_xx=0.0)
    elif case == "shares_do_not_sum":
        mixes.loc[1, "share_en"] = 0.7  # sums to 0.9
    else:
        tokens = 0
    path = tmp_path / f"{case}.csv"
    mixes.to_csv(path, index=False)
    output = tmp_path / "pred.csv"
    result = cli("climb_bayes.predict", f"posterior={fitted.posterior}", f"mixes={path}",
                 f"tokens={tokens}", f"output={output}")
    assert result.returncode == INPUT_ERROR_STATUS, result.stderr[-3000:]
    assert not output.exists()
    assert list(tmp_path.glob(".pred.csv*")) == []  # no temporary file left either
    assert ("tokens=0.0: the budget" if case == "bad_tokens" else str(path)) in result.stderr
    assert "Traceback" not in result.stderr


# ----------------------------------------------------------------------------- fit input


def test_fit_rejects_a_share_out_of_range(fitted, cli, tmp_path) -> None:
    frame = pd.read_csv(fitted.pilots)
    frame.loc[frame["run_id"] == frame["run_id"].iloc[0], "share_en"] = 1.5
    pilots = tmp_path / "bad.csv"
    frame.to_csv(pilots, index=False)
    output = tmp_path / "out"
    result = cli("climb_bayes.fit", f"pilots={pilots}", f"output={output}",
                 "sampler.progress_bar=false")
    assert result.returncode == INPUT_ERROR_STATUS, result.stderr[-3000:]
    assert not output.exists() or list(output.iterdir()) == []
    assert str(pilots) in result.stderr
    assert "share_en" in result.stderr and "1.5" in result.stderr


def test_fit_rejects_a_missing_pilots_file(cli, tmp_path) -> None:
    pilots = tmp_path / "nowhere.csv"
    output = tmp_path / "out"
    result = cli("climb_bayes.fit", f"pilots={pilots}", f"output={output}")
    assert result.returncode == INPUT_ERROR_STATUS, result.stderr[-3000:]
    assert not output.exists() or list(output.iterdir()) == []
    assert str(pilots) in result.stderr


def test_fit_defaults_to_the_bundled_example() -> None:
    """Fitting the bundled example is too slow here; check that the default points at it
    and that it is a valid pilot table."""
    assert OmegaConf.load(Path(__file__).resolve().parents[1] / "conf" / "fit.yaml").pilots \
        is None
    example = bundled_example()
    assert example.is_file()
    table = read_pilots(example)
    assert isinstance(table, PilotTable)
    assert len(table.sources) >= 2 and len(table.targets) >= 2
    assert table.frame["tokens"].nunique() >= 2  # several budgets: the scaling law is pinned


# ----------------------------------------------------------------------------- --help


@pytest.mark.parametrize("module, key, header", [
    ("climb_bayes.solve", "target_tokens: ???", "recommended mixes for a target budget"),
    ("climb_bayes.fit", "map_starts:", "law=self_saturating picks the"),
])
def test_help_shows_what_the_command_does_and_its_own_keys(cli, module: str, key: str,
                                                          header: str) -> None:
    """``--help`` opens with the command's purpose and lists its keys with their defaults,
    not the trainers' config groups it never reads."""
    result = cli(module, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"python -m {module}:") and header in result.stdout
    assert key in result.stdout
    assert "gpt_tiny" not in result.stdout and "trainer:" not in result.stdout
