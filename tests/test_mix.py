"""climb_bayes.mix.check_shares: the one check of a mix's shares that the report and the
trainers share."""

import pytest

from climb_bayes.errors import InputError
from climb_bayes.mix import check_shares

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
