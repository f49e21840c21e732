"""The LibreOffice source: the help pages of Debian's ``libreoffice-help-<lang>`` packages.

The packages are fetched with ``apt-get download`` and unpacked with ``dpkg-deb -x`` (no root
needed) into a cache directory. One document per help page; paragraphs left untranslated
(identical to the English paragraph with the same id) are dropped.
"""

import html.parser
import os
import re
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from climb_bayes.errors import InputError
from trainers.sources import Documents, language_code


def libreoffice_package(language: str) -> str:
    """Debian package name of a language's LibreOffice help (``en`` -> ``...-en-us``)."""
    return "libreoffice-help-" + ("en-us" if language == "en" else language.replace("_", "-"))


def version() -> str | None:
    """The version of the English help package that apt would download, if apt knows it."""
    result = subprocess.run(["apt-cache", "policy", libreoffice_package("en")],
                            capture_output=True, text=True, check=False)
    match = re.search(r"Candidate:\s*(\S+)", result.stdout)
    return match.group(1) if match else None


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
