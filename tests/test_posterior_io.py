"""The posterior on disk (climb_bayes.model.posterior): groups, dims, coordinates, provenance,
netCDF round trip, read_posterior, and the structural zeros of the transfer matrices."""

import json

import arviz as az
import numpy as np
import pandas as pd
import pytest

from climb_bayes.errors import InputError
from climb_bayes.model.posterior import read_posterior

GROUPS = ("posterior", "sample_stats", "log_likelihood", "posterior_predictive",
          "observed_data", "constant_data", "prior")


@pytest.fixture(scope="module")
def idata(fitted) -> az.InferenceData:
    return az.from_netcdf(str(fitted.posterior))


def languages_of(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Training languages (share columns, in order) and evaluated ones (first appearance)."""
    sources = [c.removeprefix("share_") for c in frame.columns if c.startswith("share_")]
    return sources, list(dict.fromkeys(frame["language"]))


def test_groups(idata, fitted) -> None:
    missing = [group for group in GROUPS if group not in idata.groups()]
    assert missing == []
    assert idata.posterior.sizes["chain"] == fitted.chains
    assert idata.posterior.sizes["draw"] == fitted.draws


def test_dims_and_coordinates(idata, fitted) -> None:
    frame = pd.read_csv(fitted.pilots)
    sources, targets = languages_of(frame)
    assert list(idata.posterior["E"].dims) == ["chain", "draw", "target"]
    assert list(idata.posterior["sigma"].dims) == ["chain", "draw", "target"]
    assert list(idata.posterior["a"].dims) == ["chain", "draw", "source", "target"]
    assert list(idata.posterior["k"].dims) == ["chain", "draw", "source", "target"]
    assert list(idata.posterior.coords["target"].values) == targets
    assert list(idata.posterior.coords["source"].values) == sources
    assert list(idata.observed_data["loss"].dims) == ["obs"]
    assert idata.observed_data.sizes["obs"] == len(frame)
    np.testing.assert_allclose(idata.observed_data["loss"].values, frame["loss"].to_numpy())
    constant = idata.constant_data
    assert list(constant["run_shares"].dims) == ["run", "source"]
    assert list(constant.coords["run"].values) == list(dict.fromkeys(frame["run_id"]))
    assert list(constant.coords["language"].values) == list(dict.fromkeys(sources + targets))
    assert list(constant["trained"].dims) == ["language"]
    # each observation's run, budget and language as in the table, row by row
    assert list(constant["obs_run"].values) == frame["run_id"].tolist()
    assert list(constant["obs_language"].values) == frame["language"].tolist()
    np.testing.assert_allclose(constant["obs_tokens"].values, frame["tokens"].to_numpy())
    runs = frame.drop_duplicates("run_id").set_index("run_id")
    np.testing.assert_allclose(
        constant["run_shares"].values,
        runs.loc[constant.coords["run"].values, [f"share_{s}" for s in sources]].to_numpy())
    for group in ("posterior_predictive", "log_likelihood"):
        assert getattr(idata, group)["loss"].dims[-1] == "obs"


def test_every_posterior_dim_is_named(idata) -> None:
    unnamed = sorted({dim for dim in idata.posterior.dims if "_dim_" in str(dim)})
    assert unnamed == []


def test_provenance_attrs(idata, fitted) -> None:
    frame = pd.read_csv(fitted.pilots)
    sources, targets = languages_of(frame)
    attrs = idata.posterior.attrs
    checkpoints = frame.drop_duplicates(["run_id", "tokens"])["tokens"]
    assert float(attrs["reference_tokens"]) == pytest.approx(float(checkpoints.median()),
                                                             rel=1e-12)
    assert attrs["form"] == "source_saturating"
    assert attrs["extrapolation_sd"] == 0.0
    assert json.loads(attrs["centred"]) == ["log_beta", "a_pair", "k_pair"]  # as FIT_OVERRIDES
    assert json.loads(attrs["sources"]) == sources
    assert json.loads(attrs["targets"]) == targets
    assert attrs["climb_bayes_version"]
    assert attrs["config"] == (fitted.output / "config.yaml").read_text()
    assert "chains: 2" in attrs["config"]


def test_netcdf_round_trip(idata, tmp_path) -> None:
    copy = tmp_path / "copy.nc"
    idata.to_netcdf(str(copy))
    again = az.from_netcdf(str(copy))
    assert set(again.groups()) == set(idata.groups())
    for name, values in idata.posterior.data_vars.items():
        np.testing.assert_array_equal(again.posterior[name].values, values.values)
        assert again.posterior[name].dims == values.dims
    assert again.posterior.attrs["reference_tokens"] == idata.posterior.attrs["reference_tokens"]
    assert again.posterior.attrs["config"] == idata.posterior.attrs["config"]


def test_read_posterior(fitted, idata) -> None:
    posterior = read_posterior(fitted.posterior)
    draws = fitted.draws
    n, s, t = fitted.chains * draws, len(posterior.sources), len(posterior.targets)
    assert (s, t) == (3, 3)
    for name in ("E", "B", "beta", "eta"):
        assert getattr(posterior.law.params, name).shape == (n, t), name
    for name in ("a", "k"):
        assert getattr(posterior.law.params, name).shape == (n, s, t), name
    assert posterior.sigma.shape == (n, t)
    assert posterior.nu.shape == (n,)
    np.testing.assert_array_equal(posterior.nu, np.inf)  # runs with checkpoints: Gaussian
    np.testing.assert_array_equal(posterior.law.self_map, np.eye(3))
    assert posterior.law.reference == float(idata.posterior.attrs["reference_tokens"])
    assert posterior.law.form == "source_saturating"
    # draws are flattened chain-major: sample c * draws + d is (chain c, draw d)
    E = idata.posterior["E"].values
    a = idata.posterior["a"].values
    for chain, draw in ((0, 0), (0, draws - 1), (1, 0), (1, 7)):
        np.testing.assert_array_equal(posterior.law.params.E[chain * draws + draw], E[chain, draw])
        np.testing.assert_array_equal(posterior.law.params.a[chain * draws + draw], a[chain, draw])


def test_transfer_is_zero_exactly_on_the_diagonal(idata) -> None:
    for group in ("posterior", "prior"):
        data = getattr(idata, group)
        for name in ("a", "k"):
            values = data[name]
            sources = list(values.coords["source"].values)
            targets = list(values.coords["target"].values)
            same = np.array([[s == t for t in targets] for s in sources])
            assert same.sum() == 3
            array = values.values  # (chain, draw, source, target)
            assert np.all(array[..., same] == 0.0), (group, name)
            # the other pairs are free parameters: not stuck at zero
            assert np.all(np.std(array[..., ~same], axis=(0, 1)) > 0), (group, name)


@pytest.mark.parametrize("attribute, value, message", [
    ("climb_bayes_version", "9.0.0", "incompatible with this version"),
    ("form", "quadratic", "does not know"),
])
def test_every_reader_refuses_a_posterior_this_version_cannot_use(cli, fitted, tmp_path,
                                                                   attribute, value, message):
    """predict, solve and report read posteriors through one reader, so each refuses the same
    file with the same reason, exit status 2 and nothing written."""
    idata = az.from_netcdf(str(fitted.posterior))
    idata.posterior.attrs[attribute] = value
    path = tmp_path / "other.nc"
    idata.to_netcdf(str(path))
    with pytest.raises(InputError, match=message):
        read_posterior(path)
    mixes = tmp_path / "mixes.csv"
    mixes.write_text("mix,tokens," + ",".join(f"share_{s}" for s in idata.posterior.source.values)
                     + "\nequal,1e8," + ",".join(["1"] * idata.posterior.sizes["source"]) + "\n")
    commands = {"climb_bayes.predict": [f"mixes={mixes}", f"output={tmp_path / 'p.csv'}"],
                "climb_bayes.solve": ["target_tokens=1e8", f"output={tmp_path / 'mix'}"],
                "climb_bayes.report": [f"output={tmp_path / 'report'}"]}
    for command, overrides in commands.items():
        result = cli(command, f"posterior={path}", *overrides)
        assert result.returncode == 2, (command, result.stderr[-2000:])
        assert message in result.stderr, command
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mixes.csv", "other.nc"]
