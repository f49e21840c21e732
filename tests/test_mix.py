"""climb_bayes.decide.mix_file: the mix file (written by the solver, read by the report and the
trainers)
and the one check of a mix's shares."""

import math

import pytest
import yaml

from climb_bayes.decide.mix_file import MixFile, NotAMixFile, check_shares
from climb_bayes.errors import InputError

KNOWN = ["de", "en", "fr"]


def check(shares: object) -> dict[str, float]:
    return check_shares(shares, "mix.yaml", KNOWN, "the corpus", "Fix the names.")


def test_accepts_a_mix_over_some_languages_within_the_tolerance() -> None:
    assert check({"de": 0.25, "en": 0.75 + 5e-7}) == {"de": 0.25, "en": 0.75 + 5e-7}
    assert check({"fr": "1"}) == {"fr": 1.0}  # numbers written as strings are numbers


@pytest.mark.parametrize(("shares", "named"), [
    (None, "'shares' must be a mapping"),
    ({}, "'shares' must be a mapping"),
    ({"de": "half", "en": 0.5}, "the share of 'de' is 'half', not a number"),
    ({"de": 1.5, "en": -0.5}, "outside [0, 1]"),
    ({"de": float("nan"), "en": 1.0}, "outside [0, 1]"),
    ({"de": 0.5, "en": 0.4999}, "sum to 1 (within 1e-06)"),
    ({"de": 0.5, "xx": 0.5}, "languages ['xx'] are not in the corpus ['de', 'en', 'fr']. Fix"),
])
def test_refuses_bad_shares_naming_the_origin(shares: object, named: str) -> None:
    with pytest.raises(InputError) as error:
        check(shares)
    assert str(error.value).startswith("mix.yaml: ")
    assert named in str(error.value)


METADATA = {"predicted_loss": {"de": {"mean": 3.25, "q05": 3.1, "q95": 3.4},
                               "en": {"mean": "lots"}},
            "comparison": {"reference": "uniform", "delta": 0.01},
            "extrapolation_warnings": ["posterior_mean: the share of de is outside", 7],
            "provenance": {"target_tokens": 2e9, "weights": {"de": 1, "en": 3}}}


def test_a_mix_file_reads_back_what_it_wrote(tmp_path) -> None:
    written = MixFile({"de": 0.25, "en": 0.75}, METADATA)
    path = tmp_path / "posterior_mean.yaml"
    path.write_text(written.text("posterior_mean"))
    assert path.read_text().startswith("# mix 'posterior_mean' written by python -m "
                                       "climb_bayes.solve; use it with python train.py "
                                       "+mix=posterior_mean\n")
    read = MixFile.read(path)
    assert read == written
    assert read.target_tokens == 2e9 and read.weights == {"de": 1.0, "en": 3.0}
    assert read.comparison == {"reference": "uniform", "delta": 0.01}
    assert read.warnings == ["posterior_mean: the share of de is outside"]  # strings only
    assert read.predicted_loss["de"] == {"mean": 3.25, "q05": 3.1, "q95": 3.4}
    assert all(math.isnan(v) for v in read.predicted_loss["en"].values())  # not numbers


def test_a_hand_written_mix_file_has_shares_only(tmp_path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("shares: {de: 0.5, en: 0.5}\n")
    mix = MixFile.read(path)
    assert mix.shares == {"de": 0.5, "en": 0.5} and mix.metadata == {}
    assert mix.target_tokens is None and mix.weights is None and mix.comparison == {}
    assert yaml.safe_load(mix.text("mine")) == {"shares": {"de": 0.5, "en": 0.5}}
    # a budget that is not a number, or weights that are not, count as absent
    odd = MixFile({"de": 1.0}, {"provenance": {"target_tokens": "soon", "weights": {"de": "x"}}})
    assert odd.target_tokens is None and odd.weights is None


def test_not_a_mix_file_names_the_file(tmp_path) -> None:
    settings = tmp_path / "settings.yaml"
    settings.write_text("weights: null\n")
    with pytest.raises(NotAMixFile, match=r"settings.yaml: no top-level 'shares' mapping"):
        MixFile.read(settings)
    broken = tmp_path / "broken.yaml"
    broken.write_text("shares: {de: [\n")
    with pytest.raises(InputError, match=r"broken.yaml is not valid YAML"):
        MixFile.read(broken)
