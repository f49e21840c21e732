"""Reading a corpus directory (the layout is in :mod:`trainers.corpus`): its languages, the
shards of a language's split and their documents. Every problem is an :class:`InputError`
that names the file and says how to fix it.
"""

import json
import os
import re
from pathlib import Path

import pandas as pd

from climb_bayes.errors import InputError

TRAIN, VALID = "train", "valid"
SHARD_SUFFIXES = (".jsonl", ".txt", ".parquet")


def corpus_languages(root: str | os.PathLike[str]) -> list[str]:
    """The languages of a corpus: its subdirectories that have a ``train`` folder, sorted."""
    base = Path(root)
    return sorted(p.name for p in base.iterdir() if (p / TRAIN).is_dir()) if base.is_dir() else []


def shard_files(root: str | os.PathLike[str], language: str, split: str) -> list[Path]:
    """The shards of one language's split, in name order (error if there are none)."""
    folder = Path(root) / language / split
    if not folder.is_dir():
        raise InputError(f"{folder}: no such directory. A corpus holds <lang>/{TRAIN}/ and "
                         f"<lang>/{VALID}/ for every language; build one with "
                         f"`python -m trainers.corpus` or fix data.corpus / the language list.")
    shards = sorted(p for p in folder.iterdir() if p.suffix in SHARD_SUFFIXES)
    if not shards:
        raise InputError(f"{folder}: no shards (files ending in {', '.join(SHARD_SUFFIXES)}). "
                         f"Add the {split} documents of '{language}' or drop the language.")
    return shards


def read_shard(path: Path) -> list[str]:
    """The non-empty documents of one shard; a shard that cannot be parsed is an InputError."""
    try:
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
            if "text" not in frame.columns:
                raise InputError(f"{path}: no 'text' column (columns: {list(frame.columns)}). "
                                 f"Put one document per row in a column named 'text'.")
            texts = [str(t) for t in frame["text"].dropna()]
        elif path.suffix == ".txt":
            texts = re.split(r"\n\s*\n", path.read_text(encoding="utf-8"))
        else:
            texts = []
            with path.open(encoding="utf-8") as handle:
                for number, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    try:
                        record = json.loads(line)
                        texts.append(record["text"])
                    except (json.JSONDecodeError, TypeError, KeyError) as error:
                        raise InputError(
                            f"{path}: line {number} is not a JSON object with a \"text\" field "
                            f"({type(error).__name__}: {error}). Each line of a .jsonl shard "
                            f"must be like {{\"text\": \"...\"}}; repair or rebuild the shard."
                        ) from error
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not UTF-8 text ({error}). Re-encode the shard as UTF-8 or "
                         f"rebuild the corpus.") from error
    except (OSError, ValueError) as error:
        if isinstance(error, InputError):
            raise
        raise InputError(f"{path}: cannot be read ({error}). Repair or rebuild the "
                         f"shard.") from error
    return [t.strip() for t in texts if isinstance(t, str) and t.strip()]


def read_documents(root: str | os.PathLike[str], language: str, split: str) -> list[str]:
    """All documents of one language's split; an empty split is an InputError."""
    documents = [doc for shard in shard_files(root, language, split) for doc in read_shard(shard)]
    if not documents:
        raise InputError(f"{Path(root) / language / split}: the shards hold no documents. "
                         f"Add text or drop language '{language}'.")
    return documents
