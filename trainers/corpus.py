"""The multilingual corpus: its on-disk layout, how it is read, and the command that builds it.

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
import html.parser
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import hydra
import pandas as pd
from omegaconf import DictConfig

from climb_bayes.cli import (
    check_command_line,
    choice,
    count,
    flag,
    names,
    number,
    output_directory,
    required,
)
from climb_bayes.errors import InputError, exits_on_input_error
from climb_bayes.io import write_text
from trainers import tokeniser

TRAIN, VALID = "train", "valid"
SHARD_SUFFIXES = (".jsonl", ".txt", ".parquet")
LANGUAGES_FILE = "languages.csv"
PROVENANCE_FILE = "corpus.json"

#: Documents: language -> document id -> text.
Documents = dict[str, dict[str, str]]


def language_code(name: str) -> str:
    """Our code for a locale name: lower case, ``_`` for ``-``; ``en-US`` and ``en_US`` are en."""
    code = name.strip().lower().replace("-", "_")
    return "en" if code == "en_us" else code


# ----------------------------------------------------------------------------- reading


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


# ----------------------------------------------------------------------------- Django


def _po_unescape(text: str) -> str:
    """The value of a gettext string literal's body."""
    escapes = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "r": "\r"}
    return re.sub(r"\\(.)", lambda m: escapes.get(m.group(1), m.group(1)), text)


def parse_po(text: str) -> list[dict[str, str]]:
    """The entries of a gettext catalog: dicts with ``msgctxt``, ``msgid``, ``msgid_plural``,
    ``msgstr`` or ``msgstr[n]`` keys and ``fuzzy`` ("1" when flagged). Obsolete entries
    (``#~``) are skipped."""
    entries: list[dict[str, str]] = []
    entry: dict[str, str] = {}
    key = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#~"):
            continue
        if line.startswith("#"):
            if entry.get("msgid") is not None and key and key.startswith("msgstr"):
                entries.append(entry)
                entry, key = {}, None
            if line.startswith("#,") and "fuzzy" in line:
                entry["fuzzy"] = "1"
            continue
        match = re.match(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?)\s+"(.*)"$', line)
        if match:
            if match.group(1) in ("msgctxt", "msgid") and key and key.startswith("msgstr"):
                entries.append(entry)
                entry = {}
            key = match.group(1)
            entry[key] = _po_unescape(match.group(2))
        elif line.startswith('"') and line.endswith('"') and key:
            entry[key] += _po_unescape(line[1:-1])
    if entry.get("msgid") is not None:
        entries.append(entry)
    return entries


def django_root() -> Path:
    """The installed ``django`` package (an InputError saying how to install it if absent)."""
    try:
        import django
    except ImportError as error:
        raise InputError("source=django needs the django package: `pip install django` (it is "
                         "in this project's dev extra: pip install -e '.[dev]').") from error
    return Path(django.__file__).parent


def _django_catalogs(root: Path) -> dict[str, list[Path]]:
    """Language code -> its catalogs (``django.po`` and ``djangojs.po``, core and contrib)."""
    catalogs: dict[str, list[Path]] = {}
    for path in sorted(root.glob("**/locale/*/LC_MESSAGES/django*.po")):
        catalogs.setdefault(language_code(path.parents[1].name), []).append(path)
    return catalogs


def django_documents(languages: Iterable[str] | None) -> Documents:
    """One document per translated message of Django's gettext catalogs.

    English is the source text (``msgid``); other languages keep messages that are
    translated, not fuzzy and not identical to the English. A document's id is the catalog,
    context, message and plural form, so translations share ids.
    """
    root = django_root()
    catalogs = _django_catalogs(root)
    wanted = sorted(catalogs) if languages is None else [language_code(x) for x in languages]
    unknown = [lang for lang in wanted if lang not in catalogs]
    if unknown:
        raise InputError(f"source=django: no catalogs for {', '.join(unknown)} in {root}. "
                         f"Available: {', '.join(sorted(catalogs))}.")
    documents: Documents = {}
    for lang in wanted:
        docs: dict[str, str] = {}
        for path in catalogs[lang]:
            catalog = f"{path.relative_to(root).parts[0]}/{path.parents[3].name}/{path.stem}"
            for entry in parse_po(path.read_text(encoding="utf-8")):
                msgid = entry.get("msgid", "")
                if not msgid or entry.get("fuzzy"):
                    continue
                english = [msgid, entry.get("msgid_plural", msgid)]
                forms = sorted(k for k in entry if k.startswith("msgstr"))
                for form, name in enumerate(forms):
                    source = english[min(form, 1)]
                    text = source if lang == "en" else entry[name]
                    if not text.strip() or (lang != "en" and text == source):
                        continue
                    key = f"{catalog}|{entry.get('msgctxt', '')}|{msgid}|{form}"
                    docs[key] = text
        documents[lang] = docs
    return documents


# ----------------------------------------------------------------------------- LibreOffice


def libreoffice_package(language: str) -> str:
    """Debian package name of a language's LibreOffice help (``en`` -> ``...-en-us``)."""
    return "libreoffice-help-" + ("en-us" if language == "en" else language.replace("_", "-"))


class _HelpPage(html.parser.HTMLParser):
    """The text of every element with an ``id`` in a LibreOffice help page (innermost wins)."""

    TAGS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "td", "li", "pre"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, str | None]] = []
        self.paragraphs: dict[str, list[str]] = {}
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "header", "aside"):
            self.skip += 1
        if tag in self.TAGS:
            ident = dict(attrs).get("id")
            self.stack.append((tag, ident))
            if ident:
                self.paragraphs.setdefault(ident, [])

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "header", "aside"):
            self.skip = max(0, self.skip - 1)
        if tag in self.TAGS:
            while self.stack:
                if self.stack.pop()[0] == tag:
                    break

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        for _, ident in reversed(self.stack):
            if ident:
                self.paragraphs[ident].append(data)
                return


def help_paragraphs(page: str) -> dict[str, str]:
    """Paragraph id -> whitespace-normalised text, in page order, of one help page."""
    parser = _HelpPage()
    parser.feed(page)
    texts = {key: " ".join("".join(parts).split()) for key, parts in parser.paragraphs.items()}
    return {key: text for key, text in texts.items() if text}


def help_documents(pages: Mapping[str, Mapping[str, str]],
                   english: Mapping[str, Mapping[str, str]] | None) -> dict[str, str]:
    """One document per help page (its paragraphs, one a line); with ``english`` given,
    paragraphs identical to the English one of the same id (left untranslated) are dropped."""
    documents = {}
    for name, paragraphs in pages.items():
        reference = (english or {}).get(name, {})
        kept = [text for key, text in paragraphs.items() if reference.get(key) != text]
        if kept:
            documents[name] = "\n".join(kept)
    return documents


def _help_pages(root: Path) -> dict[str, dict[str, str]]:
    """Page path (relative to the language folder) -> its paragraphs."""
    return {str(path.relative_to(root)): help_paragraphs(path.read_text(encoding="utf-8"))
            for path in sorted(root.glob("text/**/*.html"))}


def _fetch_help(language: str, cache: Path) -> Path:
    """Download (once) and unpack a language's help package; return its help folder."""
    package = libreoffice_package(language)
    unpacked = cache / package
    if not unpacked.is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as work:
            result = subprocess.run(["apt-get", "download", package], cwd=work,
                                    capture_output=True, text=True, check=False)
            if result.returncode:
                raise InputError(
                    f"source=libreoffice: `apt-get download {package}` failed for language "
                    f"'{language}': {result.stderr.strip()[-500:]}. It needs a Debian or "
                    f"Ubuntu system whose apt sources list the package; "
                    f"`apt-cache search libreoffice-help` lists the languages.")
            deb = next(Path(work).glob("*.deb"))
            subprocess.run(["dpkg-deb", "-x", str(deb), str(Path(work) / "x")], check=True)
            os.replace(Path(work) / "x", unpacked)
    helps = [p for p in (unpacked / "usr/share/libreoffice/help").iterdir()
             if p.is_dir() and language_code(p.name) == language]
    if not helps:
        raise InputError(f"{unpacked}: the package holds no help folder for '{language}'.")
    return helps[0]


def libreoffice_documents(languages: Iterable[str], cache: Path) -> Documents:
    """One document per help page per language, untranslated paragraphs dropped."""
    wanted = [language_code(x) for x in languages]
    english = _help_pages(_fetch_help("en", cache))
    documents: Documents = {}
    for lang in wanted:
        pages = english if lang == "en" else _help_pages(_fetch_help(lang, cache))
        documents[lang] = help_documents(pages, None if lang == "en" else english)
    return documents


# ----------------------------------------------------------------------------- building


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
    if name == "django":
        import django

        return django.get_version()
    if name == "libreoffice":
        result = subprocess.run(["apt-cache", "policy", libreoffice_package("en")],
                                capture_output=True, text=True, check=False)
        match = re.search(r"Candidate:\s*(\S+)", result.stdout)
        return match.group(1) if match else None
    return None


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
