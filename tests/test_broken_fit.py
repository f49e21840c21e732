"""A broken fit never passes as a result: ``fit`` exits 3 and writes nothing (unless told to
keep it), and ``predict`` and ``solve`` refuse it unless told ``allow_broken=true``."""

import arviz as az
import pandas as pd
import pytest

from climb_bayes.errors import INPUT_ERROR_STATUS
from climb_bayes.fit import DIAGNOSTICS_STATUS

#: One chain of 10 warm-up steps: R-hat is undefined and nothing has adapted.
BROKEN = ("sampler.chains=1", "sampler.warmup=10", "sampler.samples=30", "sampler.map_starts=1",
          "sampler.refit=false", "sampler.progress_bar=false")


@pytest.fixture(scope="module")
def broken_fit(fitted, cli, tmp_path_factory) -> dict:
    """The session's pilots fitted badly: once plainly, once with keep_broken=true."""
    root = tmp_path_factory.mktemp("broken")
    plain = cli("climb_bayes.fit", f"pilots={fitted.pilots}", f"output={root / 'plain'}",
                *BROKEN)
    kept = cli("climb_bayes.fit", f"pilots={fitted.pilots}", f"output={root / 'kept'}",
               *BROKEN, "keep_broken=true")
    return {"root": root, "plain": plain, "kept": kept}


def test_a_broken_fit_exits_3_and_writes_nothing(broken_fit) -> None:
    plain = broken_fit["plain"]
    assert plain.returncode == DIAGNOSTICS_STATUS, plain.stderr[-2000:]
    assert "fit health (source_saturating): broken: R-hat is undefined with a single chain" in (
        plain.stdout)
    assert "is not written" in plain.stdout + plain.stderr
    assert not (broken_fit["root"] / "plain").exists()


def test_keep_broken_writes_the_posterior_with_its_verdict(broken_fit) -> None:
    kept = broken_fit["kept"]
    assert kept.returncode == DIAGNOSTICS_STATUS, kept.stderr[-2000:]
    posterior = broken_fit["root"] / "kept" / "posterior.nc"
    assert az.from_netcdf(str(posterior)).posterior.attrs["health"] == "broken"


def test_solve_and_predict_refuse_a_broken_posterior(broken_fit, cli, tmp_path) -> None:
    posterior = broken_fit["root"] / "kept" / "posterior.nc"
    solved = cli("climb_bayes.solve", f"posterior={posterior}", "target_tokens=1e8",
                 f"output={tmp_path / 'mix'}")
    assert solved.returncode == INPUT_ERROR_STATUS
    assert "broken fit" in solved.stderr and "allow_broken=true" in solved.stderr
    assert str(posterior) in solved.stderr
    assert not (tmp_path / "mix").exists()
    mixes = tmp_path / "mixes.csv"
    pd.DataFrame({"share_en": [0.4], "share_de": [0.3], "share_fr": [0.3]}).to_csv(mixes)
    predicted = cli("climb_bayes.predict", f"posterior={posterior}", f"mixes={mixes}",
                    "tokens=1e8", f"output={tmp_path / 'pred.csv'}")
    assert predicted.returncode == INPUT_ERROR_STATUS and "broken fit" in predicted.stderr
    assert not (tmp_path / "pred.csv").exists()
    # told explicitly, solve uses it and says so beside its numbers and in every mix file
    allowed = cli("climb_bayes.solve", f"posterior={posterior}", "target_tokens=1e8",
                  f"output={tmp_path / 'mix'}", "allow_broken=true")
    assert allowed.returncode == 0, allowed.stderr[-2000:]
    assert "WARNING" in allowed.stdout and "broken fit" in allowed.stdout
    assert "fit_health: broken" in (tmp_path / "mix" / "posterior_mean.yaml").read_text()
