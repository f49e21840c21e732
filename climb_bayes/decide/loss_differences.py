"""``loss_differences.csv``: each mix's predicted loss minus the reference mix's, draw by draw.

``python -m climb_bayes.solve`` writes it beside the mixes: one row per mix other than the
reference and per evaluated language, and one per mix for the weighted loss (``language`` =
:data:`WEIGHTED`), with the posterior mean and 90% interval of ``L_s(mix) - L_s(reference)``
over the draws ``s`` (negative: the mix is better). The differences are paired (the same
draw on both sides), so their intervals are narrower than those of the two losses; the weighted
row is minus the gain of ``comparison.csv``. The report draws it (``mix_losses.png``).

This module is the one writer (:func:`loss_differences`) and reader
(:func:`read_loss_differences`) of the file.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from climb_bayes.data.table_files import read_csv
from climb_bayes.errors import InputError, listing

#: The file's name in a mix directory.
LOSS_DIFFERENCES = "loss_differences.csv"
#: Its columns.
COLUMNS = ("mix", "language", "mean", "q05", "q95")
#: The ``language`` of the rows of the weighted loss over the evaluated languages.
WEIGHTED = "weighted total"


def loss_differences(losses: np.ndarray, weights: np.ndarray, names: list[str],
                     targets: list[str], reference: str) -> pd.DataFrame:
    """The table of the file from per-draw losses ``(draw, mix, target)`` of the mixes
    ``names`` and the language ``weights``: per mix other than ``reference``, the mean and 5%
    and 95% quantiles of its loss minus the reference's, per language and weighted."""
    ref = names.index(reference)
    per_language = np.concatenate([losses, (losses @ weights)[..., None]], axis=-1)
    difference = np.delete(per_language - per_language[:, ref:ref + 1], ref, axis=1)
    q05, q95 = np.quantile(difference, (0.05, 0.95), axis=0)
    languages = [*targets, WEIGHTED]
    others = [name for name in names if name != reference]
    return pd.DataFrame({"mix": np.repeat(others, len(languages)),
                         "language": np.tile(languages, len(others)),
                         "mean": difference.mean(0).ravel(), "q05": q05.ravel(),
                         "q95": q95.ravel()})


def read_loss_differences(directory: Path, mixes: list[str], targets: list[str]
                          ) -> pd.DataFrame | None:
    """The file in ``directory`` (None when there is none), checked: its columns, and mixes
    and languages among ``mixes`` and ``targets`` (an InputError naming the file otherwise)."""
    path = Path(directory) / LOSS_DIFFERENCES
    if not path.is_file():
        return None
    table = read_csv(path)
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"{path}: missing columns {listing(missing)}; it needs "
                         f"{listing(COLUMNS)}. Solve again to write it.")
    unknown = sorted(set(table["mix"].astype(str)) - set(mixes)) + sorted(
        set(table["language"].astype(str)) - {*targets, WEIGHTED})
    if unknown:
        raise InputError(f"{path}: {listing(unknown)} are not among the mixes of the directory "
                         f"or the posterior's evaluated languages {targets}; solve again with "
                         f"this posterior.")
    return table.astype({"mix": str, "language": str})
