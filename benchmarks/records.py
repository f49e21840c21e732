"""What every benchmark records beside its numbers: the commit, and one appended CSV row."""

import subprocess
from pathlib import Path

import pandas as pd

from climb_bayes.io import atomic_path

REPO = Path(__file__).resolve().parents[1]


def commit() -> str:
    """The checked-out commit (``-dirty`` with uncommitted changes), or ``unknown``."""
    result = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO,
                            capture_output=True, text=True, check=False)
    return result.stdout.strip() or "unknown"


def append_row(row: dict, path: Path) -> pd.DataFrame:
    """Append ``row`` to the CSV at ``path`` (created if absent), atomically; the whole table."""
    table = pd.DataFrame([row])
    if path.is_file():
        table = pd.concat([pd.read_csv(path), table], ignore_index=True)
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
    return table
