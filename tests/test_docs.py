"""The README and docs/ state what is true now: every link inside the repository leads to a
file, no link leaves it but to the web, every file they name exists, every dotted name of
``climb_bayes``, ``benchmarks`` or ``trainers`` they mention exists, and the README stays
short."""

import importlib
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: A dotted name of this project's code, e.g. ``climb_bayes.model.law.effective_share``.
DOTTED = re.compile(r"\b((?:climb_bayes|benchmarks|trainers)(?:\.[A-Za-z_]\w*)+)")
#: A file of the repository named in the text, e.g. ``conf/model/gpt_tiny.yaml``.
FILE = re.compile(r"(?<![\w/.])((?:climb_bayes|benchmarks|trainers|conf|tests|notebooks)/[\w/.-]+"
                  r"\.(?:py|yaml|ipynb|md))\b")
#: A Markdown link's target: ``[text](target)``.
LINK = re.compile(r"\]\(([^)\s]+)\)")


def resolves(dotted: str) -> bool:
    """Whether ``dotted`` names a module, or an attribute (of an attribute) of one. A module is
    found without importing it, so one that needs an optional extra (``optax``) still counts."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            if importlib.util.find_spec(".".join(parts[:cut])) is None:
                continue
        except ModuleNotFoundError:  # a parent is a module, not a package
            continue
        target = importlib.import_module(".".join(parts[:cut])) if cut < len(parts) else None
        for name in parts[cut:]:
            if not hasattr(target, name):
                return False
            target = getattr(target, name)
        return True
    return False


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_code_name_a_page_mentions_exists(page: Path) -> None:
    names = sorted({m.rstrip(".") for m in DOTTED.findall(page.read_text())})
    names = [n for n in names if not n.endswith(("_py", ".py"))]
    assert [n for n in names if not resolves(n)] == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_file_a_page_names_exists(page: Path) -> None:
    named = sorted(set(FILE.findall(page.read_text())))
    assert [name for name in named if not (ROOT / name).exists()] == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_link_stays_inside_the_repository_and_leads_to_a_file(page: Path) -> None:
    broken = []
    for target in LINK.findall(page.read_text()):
        if target.startswith(("http://", "https://", "#", "mailto:")):
            continue
        path = (page.parent / target.split("#")[0]).resolve()
        if not path.is_relative_to(ROOT) or not path.exists():
            broken.append(target)
    assert broken == []


def test_the_readme_is_read_in_five_minutes() -> None:
    assert len((ROOT / "README.md").read_text().splitlines()) < 200


def test_the_simulation_tables_are_the_committed_results() -> None:
    """Every table of the simulation study that the docs print is the one its committed CSVs
    give (``python -m benchmarks.simulation_study --summarise --markdown``)."""
    from benchmarks.simulation.markdown import markdown_tables

    tables = markdown_tables(ROOT / "benchmarks" / "results" / "simulation")
    assert len(tables) == 6
    pages = (ROOT / "docs" / "results.md").read_text() + (ROOT / "README.md").read_text()
    assert [name for name, table in tables.items() if table not in pages] == []
