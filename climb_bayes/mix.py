"""A mix: shares of the training budget over languages, as a mix file or a config writes it.

One check for every reader of ``shares: {language: share}`` (the report's mix directory and
the trainers' ``+mix=...``), so a mix file that one accepts the other accepts too.
"""

import math
from typing import Any

from climb_bayes.errors import InputError
from climb_bayes.pilots import SHARE_SUM_TOLERANCE


def check_shares(shares: Any, origin: str, known: list[str], known_as: str, fix: str
                 ) -> dict[str, float]:
    """``shares`` as ``{language: float}``: a non-empty mapping of numbers in ``[0, 1]`` that
    sum to 1 (within ``SHARE_SUM_TOLERANCE``) over languages in ``known``; otherwise an
    InputError naming ``origin``. An unknown language's message names ``known_as`` (what
    ``known`` lists, e.g. "the corpus") and ends with ``fix``."""
    if not isinstance(shares, dict) or not shares:
        raise InputError(f"{origin}: 'shares' must be a mapping {{language: share}}, got "
                         f"{shares!r}. Write e.g. shares: {{{known[0]}: 1.0}}.")
    values = {}
    for language, share in shares.items():
        try:
            values[str(language)] = float(share)
        except (TypeError, ValueError):
            raise InputError(f"{origin}: the share of '{language}' is {share!r}, not a number. "
                             f"Give every language a share in [0, 1].") from None
    bad = {k: v for k, v in values.items() if not (math.isfinite(v) and 0 <= v <= 1)}
    if bad:
        raise InputError(f"{origin}: shares {bad} are outside [0, 1]. Give every language a "
                         f"share in [0, 1].")
    total = sum(values.values())
    if abs(total - 1) > SHARE_SUM_TOLERANCE:
        raise InputError(f"{origin}: the shares sum to {total:.6g}; they must sum to 1 (within "
                         f"{SHARE_SUM_TOLERANCE:g}). Rescale them.")
    unknown = [language for language in values if language not in known]
    if unknown:
        raise InputError(f"{origin}: languages {unknown} are not in {known_as} {known}. {fix}")
    return values
