"""Checkpoint logs as Data Mixing Laws publishes them, converted to a pilot table.

Data Mixing Laws (Ye et al., ICLR 2025; github.com/yegcjs/mixinglaws) publishes the
validation losses of its runs in ``data/<corpus>/<model size>.txt``: tab-separated lines of

    <checkpoint directory>\\t<validation file>\\t<loss>

for example (one line, shortened)::

    .../RedPajama//70M_RP_14-0.125-0.125-0.140625-0.25-0.09375-0.125-0.140625/27000
        .../pythia-pile.valid.Github.bin    2.4161

* The checkpoint directory ends in ``<run>/<step>``. The run's name is ``<tag>-<w1>-...-<wK>``:
  its mixture weights over the ``K`` training domains, in a fixed order that the repository
  does not name (pass ``sources``; the default names are ``domain1`` ... ``domainK``).
* The validation file is ``<...>.<domain>.bin``: the evaluated domain is the text between the
  last two dots (``Github``).
* ``step`` counts optimiser steps; their runs take ``4096 x 256 = 1048576`` tokens a step
  (``BSZ`` in their ``pipeline/utils.py``), so ``tokens = step * tokens_per_step``.

Every checkpoint of a run is one long schedule's mid-run state: fit such a table with
``checkpoints=all`` (``climb_bayes.fit``). Lines repeated with the same loss are kept once;
the same (run, step, domain) with two different losses is an error. Weights that do not sum
to 1 (some published names sum to 1.02) are divided by their sum with ``normalise``.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from climb_bayes.data.pilot_table import REQUIRED_COLUMNS, SHARE_PREFIX
from climb_bayes.errors import InputError, listing

#: Tokens per optimiser step of the published Data Mixing Laws runs (4096 x 256).
TOKENS_PER_STEP = 4096 * 256


def _fields(line: str, number: int, path: str) -> tuple[str, str, str, float, str]:
    """``(run, step, domain, loss, weights)`` of one line; InputError naming the line."""
    parts = line.rstrip("\n").split("\t")
    checkpoint = parts[0].rstrip("/").split("/") if parts else []
    if len(parts) != 3 or len(checkpoint) < 2 or "-" not in checkpoint[-2]:
        raise InputError(f"{path}, line {number}: expected '<run>/<step>\\t<validation "
                         f"file>\\t<loss>' with a run named '<tag>-<w1>-...-<wK>', got "
                         f"{line.strip()[:120]!r}. Is this a Data Mixing Laws data/<corpus>/"
                         f"<size>.txt file?")
    run, step = checkpoint[-2], checkpoint[-1]
    name = Path(parts[1]).name
    domain = name.split(".")[-2] if name.count(".") >= 2 else ""
    try:
        loss = float(parts[2])
        steps = int(step)
    except ValueError:
        loss, steps = float("nan"), -1
    if not domain or steps <= 0 or not np.isfinite(loss) or loss <= 0:
        raise InputError(f"{path}, line {number}: the step ({step!r}), the domain of "
                         f"{name!r} or the loss ({parts[2]!r}) is not readable; the step must "
                         f"be a whole number > 0, the file '<...>.<domain>.bin', the loss a "
                         f"number > 0. Fix or delete the line.")
    return run, step, domain, loss, run.split("-", 1)[1]


def read_checkpoint_log(path: str | Path, sources: list[str] | None = None,
                        tokens_per_step: float = TOKENS_PER_STEP, normalise: bool = False,
                        model: str | None = None) -> pd.DataFrame:
    """A pilot frame (``run_id, tokens, language, loss, share_<source>..., model``) from a
    Data Mixing Laws loss file; pass it to :func:`climb_bayes.data.validation.validate_pilots`.

    ``sources`` names the training domains in the order of the weights in the run names
    (default ``domain1`` ... ``domainK``); ``model`` fills the ``model`` column (default: the
    file's stem, e.g. ``70M``). InputError naming the file and line on a malformed line,
    inconsistent weights or conflicting duplicates.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint log {path} does not exist; give a Data Mixing Laws loss "
                         f"file such as data/RedPajama/70M.txt from github.com/yegcjs/mixinglaws.")
    with path.open(encoding="utf-8") as lines:
        records = [_fields(line, number, str(path))
                   for number, line in enumerate(lines, start=1) if line.strip()]
    if not records:
        raise InputError(f"{path} holds no lines; give a Data Mixing Laws loss file.")
    frame = pd.DataFrame(records, columns=["run_id", "step", "language", "loss", "weights"])
    weights = {text: text.split("-") for text in frame["weights"].unique()}
    counts = {len(values) for values in weights.values()}
    if sources is None:
        width = max(counts)
        sources = [f"domain{k + 1}" for k in range(width)]
    wrong = [text for text, values in weights.items() if len(values) != len(sources)]
    if wrong:
        raise InputError(f"{path}: the run names carry {sorted(counts)} weights, but "
                         f"{len(sources)} source names were given ({listing(sources)}); runs "
                         f"with other counts: {listing(wrong)}. Give one name per weight.")
    try:
        table = {text: [float(v) for v in values] for text, values in weights.items()}
    except ValueError as error:
        raise InputError(f"{path}: a run name's weights are not numbers ({error}); the run "
                         f"names must be '<tag>-<w1>-...-<wK>'.") from error
    shares = np.array([table[text] for text in frame["weights"]])
    if normalise:
        shares = shares / shares.sum(axis=1, keepdims=True)
    key = ["run_id", "step", "language"]
    repeated = frame.drop_duplicates([*key, "loss"])
    conflicting = repeated[repeated.duplicated(key, keep=False)]
    if len(conflicting):
        first = conflicting.iloc[0]
        raise InputError(f"{path}: run {first['run_id']} at step {first['step']} on "
                         f"{first['language']} has {len(conflicting)} different losses; keep "
                         f"one line per (run, step, domain).")
    keep = repeated.index
    pilots = pd.DataFrame({
        "run_id": frame.loc[keep, "run_id"].to_numpy(),
        "tokens": frame.loc[keep, "step"].astype(np.int64).to_numpy() * float(tokens_per_step),
        "language": frame.loc[keep, "language"].to_numpy(),
        "loss": frame.loc[keep, "loss"].to_numpy(),
    })
    for k, source in enumerate(sources):
        pilots[SHARE_PREFIX + source] = shares[keep, k]
    pilots["model"] = model if model is not None else path.stem
    order = np.lexsort((pilots["language"], pilots["tokens"], pilots["run_id"]))
    return pilots.iloc[order].reset_index(drop=True)[
        [*REQUIRED_COLUMNS, *(SHARE_PREFIX + s for s in sources), "model"]]
