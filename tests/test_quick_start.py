"""The README's tiny quick start, run as written (see the ``quick_start`` fixture): corpus ->
pilots -> fit -> solve -> training with ``+mix=posterior_mean``, on the Django corpus."""

import arviz as az
import pandas as pd
import pytest
import yaml


@pytest.mark.slow
def test_the_tiny_quick_start_fits_and_trains_the_chosen_mix(quick_start) -> None:
    root = quick_start.root
    pilots = pd.read_csv(root / "runs" / "tiny" / "pilots" / "pilots.csv")
    assert pilots["run_id"].nunique() == 36 and set(pilots["language"]) == {"de", "en", "fr"}
    fit_output = quick_start.outputs[3].stdout
    assert "fit health (source_saturating): broken" not in fit_output, fit_output[-3000:]
    posterior = az.from_netcdf(str(root / "runs" / "tiny" / "fit" / "posterior.nc"))
    attrs = posterior.posterior.attrs
    # Measured with the fit's defaults (each run's final loss, the losses of a language on the
    # others' monolingual pilots left out: docs/model.md): healthy, R-hat 1.003, min bulk /
    # tail ESS 933 / 1201, no divergence. The bar is R-hat <= 1.01 and ESS >= 400.
    assert attrs["health"] in ("healthy", "marginal")
    assert attrs["divergences"] == 0 and attrs["max_r_hat"] <= 1.01
    assert min(attrs["min_ess_bulk"], attrs["min_ess_tail"]) >= 400
    mix = yaml.safe_load((root / "runs" / "mix" / "posterior_mean.yaml").read_text())
    assert mix["metadata"]["provenance"]["fit_health"] == attrs["health"]
    trained = pd.read_csv(root / "runs" / "tiny" / "train" / "posterior_mean-1.6e+05"
                          / "pilots.csv")
    for language, share in mix["shares"].items():
        assert trained[f"share_{language}"].iloc[0] == pytest.approx(share, abs=1e-6)
    assert trained["tokens"].max() == 160_000
