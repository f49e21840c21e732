"""The real study's held-out mixes: fixed rules over the corpus's training tokens, capped at
the repetition limit, written once so that every model version is scored on the same runs."""

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from climb_bayes.data.pilot_table import SHARE_PREFIX
from climb_bayes.decide.baselines import temperature_mix

#: The held-out mixes: name -> exponent ``e`` of ``r_i ∝ A_i^e`` (see :func:`heldout_mixes`).
MIXES = {"skew_large": 3.0, "natural": 1.0, "temperature": 0.3, "uniform": 0.0,
         "skew_small": -1.0}
#: Caps are lowered by this fraction, so that a capped share is not refused by the trainer's
#: epoch check for a rounding error.
CAP_MARGIN = 1e-9


def capped_shares(shares: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """The mix closest in proportion to ``shares`` that respects the caps (water-filling):
    ``r_i = min(c_i, lambda * s_i)`` with ``lambda`` such that ``sum_i r_i = 1``.

    Capped languages are held at their cap and the rest is spread over the others in
    proportion to ``shares``, again and again until no share exceeds its cap. Needs
    ``sum_i c_i >= 1``. Uniform ``shares`` give UniMax (Chung et al. 2023).
    """
    if caps.sum() < 1.0:
        raise ValueError(f"the caps {caps} sum to less than 1: no mix fits them")
    result = np.zeros_like(shares, dtype=np.float64)
    free = np.ones(len(shares), dtype=bool)
    while True:
        result[free] = (1.0 - result[~free].sum()) * shares[free] / shares[free].sum()
        over = free & (result > caps)
        if not over.any():
            return result
        result[over] = caps[over]
        free &= ~over


def heldout_mixes(available: pd.Series, budget: float, max_epochs: float) -> pd.DataFrame:
    """The held-out mixes: for each ``(name, e)`` of :data:`MIXES` the temperature mix
    ``r_i = A_i^e / sum_j A_j^e`` over the training tokens ``A_i`` of each language, capped at
    ``c_i = max_epochs * A_i / budget`` (less :data:`CAP_MARGIN`) by :func:`capped_shares`.

    ``e = 1`` is the natural mix (proportional to the data), ``e = 0.3`` mT5's temperature
    sampling, ``e = 0`` uniform (UniMax where a cap binds), ``e = 3`` skewed towards the largest
    corpora and ``e = -1`` towards the smallest. ``budget`` is the largest held-out budget, so
    every mix respects the caps at every held-out budget; each mix is trained unchanged at all
    of them.
    """
    values = available.to_numpy(dtype=np.float64)
    caps = max_epochs * values / budget * (1 - CAP_MARGIN)
    rows = [{"mix": name, "exponent": exponent,
             **{f"{SHARE_PREFIX}{language}": share for language, share in
                zip(available.index, capped_shares(temperature_mix(values, exponent), caps),
                    strict=True)}}
            for name, exponent in MIXES.items()]
    return pd.DataFrame(rows)


def mix_table(corpus: Path, workdir: Path, budget: float, max_epochs: float) -> pd.DataFrame:
    """``heldout/mixes.csv``, written once and read back afterwards, so the mixes never change;
    with one ``heldout/conf/mix/<mix>.yaml`` per mix for ``train.py +mix=<mix>``."""
    path = workdir / "heldout" / "mixes.csv"
    if not path.is_file():
        languages = pd.read_csv(corpus / "languages.csv").set_index("language")
        path.parent.mkdir(parents=True, exist_ok=True)
        heldout_mixes(languages["train_tokens"], budget, max_epochs).to_csv(path, index=False)
    mixes = pd.read_csv(path)
    configs = workdir / "heldout" / "conf" / "mix"
    configs.mkdir(parents=True, exist_ok=True)
    for _, row in mixes.iterrows():
        shares = {c.removeprefix(SHARE_PREFIX): float(row[c]) for c in mixes
                  if c.startswith(SHARE_PREFIX)}
        (configs / f"{row['mix']}.yaml").write_text(yaml.safe_dump(
            {"shares": shares, "rule": f"share ~ train_tokens^{row['exponent']:g}, capped "
             f"at {max_epochs:g} epochs of {budget:g} tokens"}, sort_keys=False))
    return mixes
