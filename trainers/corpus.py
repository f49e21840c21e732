"""The multilingual corpus: its on-disk layout and the command that builds it.

Reading a corpus is :mod:`trainers.corpus_reader`'s job; the built-in sources are in
:mod:`trainers.sources`.

Layout
------
A corpus is a directory::

    DIR/
      corpus.json         provenance: source, licence, version, languages, split, tokeniser
      tokenizer.json      the shared byte-level BPE tokeniser (trainers/tokeniser.py)
      languages.csv       per language: train_tokens, valid_tokens, bytes, tokens_per_byte, ...
      <lang>/train/*.jsonl   training documents
      <lang>/valid/*.jsonl   held-out documents, never trained on

``<lang>`` is a lower-case code (``en``, ``de``, ``pt_br``, ``zh_hans``). Shards may be
JSON Lines (``.jsonl``: one object per line with a ``"text"`` field), plain text (``.txt``:
documents separated by a blank line) or Parquet (``.parquet``: a ``text`` column); they are
read in name order. Documents with the same id in several languages are translations of
each other; the split into train and valid is made by id, so a validation document's
translation is never trained on either.

Build one with ``python -m trainers.corpus source=django languages=[en,de,fr,es]`` (Django's
gettext catalogs, from the installed ``django`` package) or ``source=libreoffice`` (the
LibreOffice help from Debian's ``libreoffice-help-<lang>`` packages, fetched with
``apt-get download`` and unpacked with ``dpkg-deb -x``, no root needed). A corpus of your
own in the layout above gets its tokeniser and ``languages.csv`` with
``source=directory input=DIR``. Nothing is downloaded when training.
"""

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import hydra
import pandas as pd
from omegaconf import DictConfig

from climb_bayes.cli import choice, count, flag, names, number, output_directory, required
from climb_bayes.errors import InputError, exits_on_input_error
from climb_bayes.io import write_text
from climb_bayes.overrides import check_command_line
from trainers import tokeniser
from trainers.corpus_reader import TRAIN, VALID, corpus_languages, read_documents
from trainers.sources import Documents, django, libreoffice
from trainers.sources.django import django_documents
from trainers.sources.libreoffice import libreoffice_documents

LANGUAGES_FILE = "languages.csv"
PROVENANCE_FILE = "corpus.json"


@dataclass(frozen=True)
class Source:
    """Where a built-in corpus comes from (recorded in ``corpus.json``)."""

    name: str
    licence: str
    origin: str


SOURCES = {
    "django": Source("django", "BSD-3-Clause",
                     "gettext catalogs (django/**/locale/*/LC_MESSAGES/django*.po) of the "
                     "django package from PyPI"),
    "libreoffice": Source("libreoffice", "MPL-2.0",
                          "LibreOffice help pages from Debian's libreoffice-help-<lang> "
                          "packages (apt-get download; dpkg-deb -x)"),
    "directory": Source("directory", "as given by its owner", "a corpus directory of your own"),
}


def is_valid(document_id: str, valid_fraction: float, seed: int) -> bool:
    """Whether a document id belongs to the held-out split (a hash, the same in every
    language, so translations land in the same split)."""
    digest = hashlib.sha256(f"{seed}:{document_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < valid_fraction


def split_documents(documents: Mapping[str, str], valid_fraction: float, seed: int
                    ) -> tuple[list[str], list[str]]:
    """Train and valid texts of one language, each text once.

    A text is held out if any of its ids is (:func:`is_valid`), so a text repeated under
    several ids is never in both splits, and the translation of a held-out document, held out
    by the same id in its own language, is never trained on either.
    """
    held_out: dict[str, bool] = {}
    for key in sorted(documents):
        text = documents[key].strip()
        if not text:
            continue
        held_out[text] = held_out.get(text, False) or is_valid(key, valid_fraction, seed)
    return ([t for t, v in held_out.items() if not v], [t for t, v in held_out.items() if v])


def write_shards(folder: Path, texts: list[str], per_shard: int) -> None:
    """``folder/00000.jsonl, ...``: ``per_shard`` documents each."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, start in enumerate(range(0, len(texts), per_shard)):
        lines = "".join(json.dumps({"text": t}, ensure_ascii=False) + "\n"
                        for t in texts[start:start + per_shard])
        (folder / f"{index:05d}.jsonl").write_text(lines, encoding="utf-8")


def language_table(root: str | os.PathLike[str], languages: list[str],
                   tokenizer: "tokeniser.Tokenizer") -> pd.DataFrame:
    """Per language: documents, bytes and tokens of each split, and tokens per byte."""
    rows = []
    for lang in languages:
        row: dict[str, object] = {"language": lang}
        total_bytes = total_tokens = 0
        for split in (TRAIN, VALID):
            docs = read_documents(root, lang, split)
            size = sum(len(d.encode()) for d in docs)
            tokens = len(tokeniser.encode_documents(tokenizer, docs))
            row[f"{split}_tokens"], row[f"{split}_documents"] = tokens, len(docs)
            total_bytes, total_tokens = total_bytes + size, total_tokens + tokens
        row["bytes"] = total_bytes
        row["tokens_per_byte"] = total_tokens / total_bytes
        rows.append(row)
    table = pd.DataFrame(rows)
    if "en" in languages:
        english = table.loc[table["language"] == "en", "tokens_per_byte"].item()
        table["tokens_per_byte_vs_en"] = table["tokens_per_byte"] / english
    return table[["language", "train_tokens", "valid_tokens", "bytes", "tokens_per_byte",
                  "train_documents", "valid_documents",
                  *(["tokens_per_byte_vs_en"] if "en" in languages else [])]]


def tokenise_corpus(root: Path, languages: list[str], vocab_size: int, sample_bytes: int,
                    seed: int) -> pd.DataFrame:
    """Train the shared tokeniser on a balanced sample of the training split, save it and
    ``languages.csv`` in ``root``, and return the language table."""
    train = {lang: read_documents(root, lang, TRAIN) for lang in languages}
    tokenizer = tokeniser.train_tokeniser(tokeniser.balanced_sample(train, sample_bytes, seed),
                                          vocab_size)
    tokenizer.save(str(root / tokeniser.FILENAME))
    table = language_table(root, languages, tokenizer)
    table.to_csv(root / LANGUAGES_FILE, index=False)
    return table


def build_corpus(documents: Documents, output: str | os.PathLike[str], source: Source,
                 valid_fraction: float = 0.1, vocab_size: int = 1024,
                 sample_bytes: int = 2_000_000, seed: int = 0, per_shard: int = 50_000,
                 overwrite: bool = False) -> pd.DataFrame:
    """Write a corpus directory from documents; atomic: built beside ``output``, then moved.

    Returns the language table (also written to ``languages.csv``).
    """
    final = Path(output)
    if final.exists() and any(final.iterdir()) and not overwrite:
        raise InputError(f"{final}: already exists and is not empty. Choose another output or "
                         f"pass overwrite=true to replace it.")
    empty = [lang for lang, docs in documents.items() if not docs]
    if empty:
        raise InputError(f"source={source.name}: no documents for {', '.join(empty)}. "
                         f"Drop these languages.")
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}."))
    try:
        for lang, docs in documents.items():
            train, valid = split_documents(docs, valid_fraction, seed)
            if not train or not valid:
                raise InputError(f"source={source.name}: language '{lang}' has {len(docs)} "
                                 f"documents, too few for a train and a valid split at "
                                 f"valid_fraction={valid_fraction}. Drop it or change "
                                 f"valid_fraction.")
            write_shards(work / lang / TRAIN, train, per_shard)
            write_shards(work / lang / VALID, valid, per_shard)
        languages = sorted(documents)
        table = tokenise_corpus(work, languages, vocab_size, sample_bytes, seed)
        provenance = {"source": source.name, "licence": source.licence, "origin": source.origin,
                      "version": _source_version(source.name), "languages": languages,
                      "valid_fraction": valid_fraction, "seed": seed, "vocab_size": vocab_size,
                      "tokeniser_sample_bytes": sample_bytes}
        write_text(work / PROVENANCE_FILE, json.dumps(provenance, indent=2) + "\n")
        if final.exists():
            shutil.rmtree(final)
        os.replace(work, final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return table


def _source_version(name: str) -> str | None:
    """The version of the source package the corpus came from, where known."""
    versions = {"django": django.version, "libreoffice": libreoffice.version}
    return versions[name]() if name in versions else None


@hydra.main(config_path="../conf", config_name="corpus", version_base="1.3")
@exits_on_input_error
def main(cfg: DictConfig) -> None:
    """Build (or tokenise) a corpus as configured in ``conf/corpus.yaml``."""
    source = choice(cfg.source, "source", SOURCES)
    languages = None if cfg.languages is None else names(
        cfg.languages, "languages", "language code", "languages=[en,de,fr,es]")
    vocab_size = count(cfg.vocab_size, "vocab_size", "vocabulary size (the 256 bytes, the "
                       "end-of-text token and the merges)", "vocab_size=1024", minimum=257)
    sample_bytes = count(cfg.tokeniser_sample_bytes, "tokeniser_sample_bytes",
                         "number of bytes per language", "tokeniser_sample_bytes=2000000")
    seed = count(cfg.seed, "seed", "seed", "seed=0", minimum=0)
    if source == "directory":
        root = Path(required(cfg, "input", "corpus to tokenise, a directory in the layout of "
                             "trainers/corpus.py", "input=corpora/mine"))
        found = corpus_languages(root)
        if not found:
            raise InputError(f"{root}: no <lang>/{TRAIN}/ folders; see the layout in "
                             f"trainers/corpus.py.")
        table = tokenise_corpus(root, languages or found, vocab_size, sample_bytes, seed)
        output = root
    else:
        output = output_directory(cfg.output, "output", f"corpora/{source}",
                                  "one folder per language, the tokeniser and languages.csv")
        valid_fraction = number(cfg.valid_fraction, "valid_fraction",
                                "share of documents held out", "valid_fraction=0.1",
                                above=0.0, below=1.0)
        shard_documents = count(cfg.shard_documents, "shard_documents",
                                "number of documents per shard", "shard_documents=50000")
        overwrite = flag(cfg.overwrite, "overwrite")
        if source == "django":
            documents = django_documents(languages)
        else:
            documents = libreoffice_documents(languages or ["en", "de", "fr", "es"],
                                              Path(os.path.expanduser(cfg.cache)))
        table = build_corpus(documents, output, SOURCES[source], valid_fraction, vocab_size,
                             sample_bytes, seed, shard_documents, overwrite)
    with pd.option_context("display.width", 120, "display.max_columns", 20):
        print(table.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    print(f"corpus: {output} ({len(table)} languages; tokens per byte above, the byte premium "
          f"relative to English in tokens_per_byte_vs_en)")


if __name__ == "__main__":
    check_command_line("corpus")
    main()
