"""The corpus: Django and LibreOffice sources, the layout, the split, the tokeniser."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from climb_bayes.errors import InputError
from trainers import corpus as corpus_io
from trainers import corpus_reader, tokeniser
from trainers.sources import django, libreoffice

REPO = Path(__file__).resolve().parents[1]
LANGUAGES = ["de", "en", "fr"]


@pytest.fixture(scope="module")
def django_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Django corpus of three languages, built by the real command."""
    output = tmp_path_factory.mktemp("corpus") / "django"
    result = subprocess.run([sys.executable, "-m", "trainers.corpus", "source=django",
                             f"languages=[{','.join(LANGUAGES)}]", f"output={output}"],
                            cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return output


def test_layout_and_language_table(django_corpus: Path) -> None:
    assert corpus_reader.corpus_languages(django_corpus) == LANGUAGES
    table = pd.read_csv(django_corpus / "languages.csv")
    assert {"language", "train_tokens", "valid_tokens", "bytes",
            "tokens_per_byte"} <= set(table.columns)
    assert list(table["language"]) == LANGUAGES
    tok = tokeniser.load(django_corpus)
    for row in table.itertuples():
        train = corpus_reader.read_documents(django_corpus, row.language, "train")
        # train_tokens is the length of the training stream in the shared tokeniser's tokens
        assert row.train_tokens == len(tokeniser.encode_documents(tok, train))
        assert 0.1 < row.tokens_per_byte < 1
    provenance = json.loads((django_corpus / "corpus.json").read_text())
    assert provenance["licence"] == "BSD-3-Clause" and provenance["languages"] == LANGUAGES


def test_validation_texts_never_in_training(django_corpus: Path) -> None:
    for lang in LANGUAGES:
        train = set(corpus_reader.read_documents(django_corpus, lang, "train"))
        valid = corpus_reader.read_documents(django_corpus, lang, "valid")
        assert valid and not train & set(valid)


def test_split_is_by_id_so_translations_stay_held_out() -> None:
    documents = django.django_documents(["en", "de"])
    german_valid = {key for key in documents["de"] if corpus_io.is_valid(key, 0.1, 0)}
    english_train, _ = corpus_io.split_documents(documents["en"], 0.1, 0)
    for key in german_valid:
        if key in documents["en"]:  # the English source of a held-out German message
            assert documents["en"][key] not in english_train


def test_django_drops_untranslated_and_fuzzy() -> None:
    documents = django.django_documents(["en", "de"])
    english, german = documents["en"], documents["de"]
    assert len(english) > 700 and len(german) > 600
    assert not any(german[key] == english.get(key) for key in german)


def test_parse_po() -> None:
    text = r'''
msgid ""
msgstr "Content-Type: text/plain\n"

#: a.py:1
msgid "Hello"
msgstr "Hallo"

#, fuzzy
msgid "Stale"
msgstr "Alt"

msgctxt "month"
msgid "May"
msgstr ""
"Mai \"kurz\""

msgid "one file"
msgid_plural "%d files"
msgstr[0] "eine Datei"
msgstr[1] "%d Dateien"

#~ msgid "Obsolete"
#~ msgstr "Veraltet"
'''
    entries = django.parse_po(text)
    assert [e["msgid"] for e in entries] == ["", "Hello", "Stale", "May", "one file"]
    assert entries[2]["fuzzy"] == "1" and "fuzzy" not in entries[1]
    assert entries[3] == {"msgctxt": "month", "msgid": "May", "msgstr": 'Mai "kurz"'}
    assert entries[4]["msgstr[1]"] == "%d Dateien"


HELP_PAGE = """<html><head><title>T</title><script>var x = 1;</script></head><body>
<header><p>LibreOffice 7.4 Help</p></header>
<div id="DisplayArea">
<h1 id="hd_id1" dir="auto">Query Design Bar</h1>
<p id="par_id2" class="paragraph">Use the <span class="emph">Query Design</span> Bar.</p>
<p id="par_id3">Shared text &amp; more</p>
<table><tr><td><p id="par_id4">Cell</p></td></tr></table>
</div></body></html>"""


def test_libreoffice_help_parsing_and_untranslated_dropped() -> None:
    english = libreoffice.help_paragraphs(HELP_PAGE)
    assert english == {"hd_id1": "Query Design Bar", "par_id2": "Use the Query Design Bar.",
                       "par_id3": "Shared text & more", "par_id4": "Cell"}
    german_page = (HELP_PAGE.replace("Query Design Bar</h1>", "Symbolleiste</h1>")
                   .replace("Cell", "Zelle"))
    german = libreoffice.help_documents(
        {"p.html": libreoffice.help_paragraphs(german_page)}, {"p.html": english})
    assert german == {"p.html": "Symbolleiste\nZelle"}
    assert libreoffice.libreoffice_package("pt_br") == "libreoffice-help-pt-br"
    assert libreoffice.libreoffice_package("en") == "libreoffice-help-en-us"


def test_shard_formats_and_corrupt_shard(tmp_path: Path) -> None:
    folder = tmp_path / "xx" / "train"
    folder.mkdir(parents=True)
    (folder / "a.txt").write_text("first doc\nstill first\n\nsecond doc\n")
    pd.DataFrame({"text": ["third"]}).to_parquet(folder / "b.parquet")
    (folder / "c.jsonl").write_text('{"text": "fourth"}\n')
    assert corpus_reader.read_documents(tmp_path, "xx", "train") == [
        "first doc\nstill first", "second doc", "third", "fourth"]
    (folder / "d.jsonl").write_text('{"text": "ok"}\n{"text": "cut off\n')
    with pytest.raises(InputError, match=r"d\.jsonl: line 2"):
        corpus_reader.read_documents(tmp_path, "xx", "train")
    with pytest.raises(InputError, match="no such directory"):
        corpus_reader.read_documents(tmp_path, "xx", "valid")


def test_own_directory_gets_tokeniser_and_table(django_corpus: Path, tmp_path: Path) -> None:
    own = tmp_path / "own"
    for lang in ("de", "en"):
        shutil.copytree(django_corpus / lang, own / lang)
    result = subprocess.run([sys.executable, "-m", "trainers.corpus", "source=directory",
                             f"input={own}", "languages=null", "vocab_size=300"], cwd=REPO,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert tokeniser.load(own).get_vocab_size() == 300
    assert list(pd.read_csv(own / "languages.csv")["language"]) == ["de", "en"]


def test_existing_output_is_not_overwritten(django_corpus: Path) -> None:
    before = (django_corpus / "tokenizer.json").read_bytes()
    result = subprocess.run([sys.executable, "-m", "trainers.corpus", "source=django",
                             "languages=[de,en]", f"output={django_corpus}"], cwd=REPO,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 2 and "overwrite=true" in result.stderr
    assert (django_corpus / "tokenizer.json").read_bytes() == before


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None,
                    reason="needs apt-get and dpkg-deb (Debian/Ubuntu)")
def test_libreoffice_corpus_from_debian_packages(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "trainers.corpus", "source=libreoffice",
                             "languages=[en,de]", f"output={tmp_path / 'lo'}",
                             f"cache={tmp_path / 'debs'}", "vocab_size=2048"], cwd=REPO,
                            capture_output=True, text=True, timeout=900, check=False)
    if result.returncode == 2 and "apt-get download" in result.stderr:
        pytest.skip("the libreoffice-help packages are not reachable from here")
    assert result.returncode == 0, result.stderr[-2000:]
    table = pd.read_csv(tmp_path / "lo" / "languages.csv").set_index("language")
    assert table.loc["de", "train_tokens"] > 200_000 and table.loc["en", "bytes"] > 1_000_000
