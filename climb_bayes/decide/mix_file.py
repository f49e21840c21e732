"""The mix file: one mix's shares of the training budget, and what the solver says of it.

``<name>.yaml`` holds ``shares: {language: share}`` (on the simplex) and, when
``python -m climb_bayes.solve`` wrote it, ``metadata``: the predicted loss of every evaluated
language (``predicted_loss: {language: {mean, q05, q95}}``), the weighted loss, the gain over
the reference and its probability, the comparison's settings and recommendation
(``comparison``), solver diagnostics, ``extrapolation_warnings``, and ``provenance`` (among it
the ``target_tokens`` the mix was solved for and the language ``weights``). A file written by
hand needs only ``shares``.

:class:`MixFile` is the one reader and writer of the format: the solver writes through it
(:func:`mix_file`), the report and the trainers (``python train.py +mix=NAME``) read through
it.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from climb_bayes.data.pilot_table import SHARE_SUM_TOLERANCE
from climb_bayes.errors import InputError


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


#: What ``metadata.predicted_loss`` gives of each language's loss: posterior mean, 90% interval.
PREDICTED_LOSS_KEYS = ("mean", "q05", "q95")


class NotAMixFile(InputError):
    """A YAML document without a top-level ``shares`` mapping."""


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


@dataclass(frozen=True)
class MixFile:
    """One mix file: ``shares`` (as written, unchecked against any language list: see
    :func:`check_shares`) and the solver's ``metadata`` (empty for a hand-written file)."""

    shares: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def target_tokens(self) -> float | None:
        """The budget the mix was solved for (``metadata.provenance.target_tokens``)."""
        return _number(_mapping(self.metadata.get("provenance")).get("target_tokens"))

    @property
    def weights(self) -> dict[str, float] | None:
        """The language weights it was solved with (``metadata.provenance.weights``)."""
        weights = _mapping(_mapping(self.metadata.get("provenance")).get("weights"))
        values = {str(k): _number(v) for k, v in weights.items()}
        return values if values and None not in values.values() else None

    @property
    def comparison(self) -> dict[str, Any]:
        """Reference, ``delta`` and the recommendation (``metadata.comparison``)."""
        return _mapping(self.metadata.get("comparison"))

    @property
    def warnings(self) -> list[str]:
        """The solver's ``extrapolation_warnings``."""
        found = self.metadata.get("extrapolation_warnings")
        return [w for w in found if isinstance(w, str)] if isinstance(found, list) else []

    @property
    def predicted_loss(self) -> dict[str, dict[str, float]]:
        """The solver's predicted loss of each evaluated language (``metadata.predicted_loss``):
        ``{language: {mean, q05, q95}}``, NaN for a value that is not a number; empty for a
        hand-written file."""
        def value(entry: Any, key: str) -> float:
            number = _number(_mapping(entry).get(key))
            return math.nan if number is None else number

        return {str(language): {key: value(entry, key) for key in PREDICTED_LOSS_KEYS}
                for language, entry in _mapping(self.metadata.get("predicted_loss")).items()}

    def text(self, name: str) -> str:
        """The YAML text of the file ``<name>.yaml``, with a header saying how to train on it."""
        header = (f"# mix '{name}' written by python -m climb_bayes.solve; use it with "
                  f"python train.py +mix={name}\n")
        document = {"shares": self.shares, **({"metadata": self.metadata}
                                               if self.metadata else {})}
        return header + yaml.safe_dump(document, sort_keys=False)

    @classmethod
    def parse(cls, document: Any, origin: str) -> "MixFile":
        """The mix file of a loaded YAML document; :class:`NotAMixFile` naming ``origin``
        without a top-level ``shares`` mapping."""
        if not isinstance(document, Mapping) or not isinstance(document.get("shares"), Mapping):
            raise NotAMixFile(f"{origin}: no top-level 'shares' mapping. A mix file has "
                              f"shares: {{lang: share}} (and optional metadata).")
        return cls(dict(document["shares"]), _mapping(document.get("metadata")))

    @classmethod
    def read(cls, path: Path) -> "MixFile":
        """Read ``path``; InputError naming it when it is not YAML or not a mix file."""
        try:
            document = yaml.safe_load(Path(path).read_text())
        except yaml.YAMLError as error:
            raise InputError(f"{path} is not valid YAML ({error}); fix it or remove it from the "
                             f"mix directory.") from error
        return cls.parse(document, str(path))


def _per_target(losses: np.ndarray, targets: list[str]) -> dict[str, dict[str, float]]:
    q = np.quantile(losses, (0.05, 0.95), axis=0)
    return {t: {"mean": float(losses[:, i].mean()), "q05": float(q[0, i]),
                "q95": float(q[1, i])} for i, t in enumerate(targets)}


def mix_file(shares: np.ndarray, losses: np.ndarray, row: pd.Series, sources: list[str],
             targets: list[str], extra: dict[str, Any]) -> MixFile:
    """One mix file (:class:`MixFile`): ``shares`` and ``metadata``."""
    return MixFile(
        shares={s: float(v) for s, v in zip(sources, shares, strict=True)},
        metadata={
            "predicted_loss": _per_target(losses, targets),
            "weighted_loss": {key: float(row[f"weighted_loss_{key}"])
                              for key in ("mean", "q05", "q95")},
            "gain": {key: float(row[f"gain_{key}"]) for key in ("mean", "q05", "q95")},
            "p_gain": float(row["p_gain"]),
            "p_near_optimal": float(row["p_near_optimal"]),
            "p_beats_posterior_mean": float(row["p_beats_posterior_mean"]),
            **extra,
        })
