"""The Django source: Django's gettext catalogs, read from the installed ``django`` package.

One document per translated message (core and contrib, ``django.po`` and ``djangojs.po``).
English is the source text (``msgid``); fuzzy, empty and untranslated messages are dropped.
"""

import re
from collections.abc import Iterable
from pathlib import Path

from climb_bayes.errors import InputError
from trainers.sources import Documents, language_code


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


def version() -> str:
    """The version of the installed ``django`` package."""
    import django

    return django.get_version()


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
