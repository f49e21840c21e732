"""Shared fixtures: one tiny posterior fitted once per session through the real CLI, and the
README's tiny quick start run once."""

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import jax
import pandas as pd
import pytest

import climb_bayes.config_store  # noqa: F401  (registers fit_schema, as climb_bayes.fit does)
from climb_bayes.data.simulated import simulate_pilots
from climb_bayes.data.table_files import write_pilots
from trainers import corpus as corpus_io

REPO = Path(__file__).resolve().parents[1]

#: One JAX compilation cache on disk for the whole session, this process and every command the
#: tests run (they inherit the environment): the same model compiled again, in another test
#: module (after ``_fresh_jax_caches``) or another process, is read back instead. Measured:
#: ``tests/test_prior.py`` takes 81 s with a cold cache and 31 s with a warm one.
JAX_CACHE = tempfile.mkdtemp(prefix="climb-bayes-tests-jax-cache-")
os.environ["JAX_COMPILATION_CACHE_DIR"] = JAX_CACHE
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0.2"
jax.config.update("jax_compilation_cache_dir", JAX_CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
#: Languages of the tiny Django corpus the trainer tests share.
CORPUS_LANGUAGES = ["de", "en", "fr"]

#: Sampler settings of the session's fit: small enough for a 2-core CPU, big enough to have
#: two chains and a few hundred draws to compare predictions against, and to mix (the fit
#: must not be broken, or the command exits 3 and writes nothing; it is marginal: too few
#: draws for an ESS of 400). ``sampler.refit=false``: no second fit.
#: ``compare_forms=true`` also fits the self-saturating form and compares the two by PSIS-LOO.
#: Every pooled site centred: the simulated pilots are far less noisy than real ones and pin
#: each transfer pair down, where centred pairs mix well and non-centred ones did not
#: (measured on this world at these settings: R-hat 1.16, min bulk ESS 11; the default suits
#: real pilots, see climb_bayes.config_store.LawConfig).
#: 1000 warm-up draws: with the run effect integrated out the fit is fast (about 2.5 min a form),
#: and after 300 this world's source-saturating fit was still broken (R-hat 1.1 on eta[fr]).
CHAINS, DRAWS = 2, 400
#: ``checkpoints=all``: a simulated checkpoint is the law's loss at that budget (the simulator
#: has no learning-rate schedule), so every row is evidence; the run effect is then fitted.
FIT_OVERRIDES = (f"sampler.chains={CHAINS}", "sampler.warmup=1000", f"sampler.samples={DRAWS}",
                 "sampler.map_starts=2", "sampler.progress_bar=false", "sampler.refit=false",
                 "compare_forms=true", "law.centred=[log_beta,a_pair,k_pair]",
                 "checkpoints=all")


def run_module(module: str, *overrides: str, timeout: float = 600
               ) -> subprocess.CompletedProcess[str]:
    """``python -m module overrides...`` from the repository root; output captured as text."""
    return subprocess.run([sys.executable, "-m", module, *overrides], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="session")
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``python -m <module> <overrides>`` from the repository root."""
    return run_module


@dataclass(frozen=True)
class FittedPosterior:
    """The session's fit: its inputs, its outputs and what the command printed."""

    pilots: Path  # the simulated pilot table (CSV)
    frame: pd.DataFrame  # that table as simulated
    output: Path  # the fit's output directory
    posterior: Path  # output / "posterior.nc"
    stdout: str
    stderr: str
    chains: int = CHAINS
    draws: int = DRAWS


@pytest.fixture(scope="session")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> FittedPosterior:
    """Simulate 3 languages, write their pilot table, fit it once with the fit command."""
    root = tmp_path_factory.mktemp("fit")
    frame, _ = simulate_pilots(languages=3, seed=0)
    pilots = root / "pilots.csv"
    write_pilots(frame, pilots)
    output = root / "out"
    result = run_module("climb_bayes.fit", f"pilots={pilots}", f"output={output}",
                        *FIT_OVERRIDES, timeout=1200)  # two forms, ~10 min on 2 cores
    assert result.returncode == 0, (
        f"fit exited with {result.returncode}\nstdout:\n{result.stdout[-4000:]}\n"
        f"stderr:\n{result.stderr[-4000:]}")
    return FittedPosterior(pilots=pilots, frame=frame, output=output,
                           posterior=output / "posterior.nc", stdout=result.stdout,
                           stderr=result.stderr)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Django corpus (gettext catalogs of the installed wheel) for ``CORPUS_LANGUAGES``,
    with a 512-token BPE tokeniser; built once per session."""
    output = tmp_path_factory.mktemp("corpus") / "django"
    corpus_io.build_corpus(corpus_io.django_documents(CORPUS_LANGUAGES), output,
                           corpus_io.SOURCES["django"], vocab_size=512)
    return output


#: The marker of the README's tiny quick start block.
QUICK_START_MARKER = "<!-- tiny-quick-start -->"


def quick_start_commands() -> list[str]:
    """The command lines of the README's tiny quick start, in order (the block after
    ``QUICK_START_MARKER``)."""
    text = (REPO / "README.md").read_text()
    block = text.split(QUICK_START_MARKER, 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


@dataclass(frozen=True)
class QuickStart:
    """The tiny quick start, run once: where it ran and what each command printed."""

    root: Path
    outputs: list[subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def quick_start(tmp_path_factory: pytest.TempPathFactory) -> QuickStart:
    """Run the README's tiny quick start as written, in a fresh directory holding a copy of
    ``train.py`` and ``conf/`` (so ``runs/`` and its mixes are written there, not in the
    repository). The first line creates the environment, which the test session already is:
    it is skipped, and ``python`` is this interpreter."""
    root = tmp_path_factory.mktemp("quick_start")
    shutil.copy(REPO / "train.py", root / "train.py")
    shutil.copytree(REPO / "conf", root / "conf", ignore=shutil.ignore_patterns("mix"))
    commands = quick_start_commands()
    assert commands[0].startswith("python -m venv .venv"), commands[0]
    outputs = []
    for command in commands[1:]:
        assert command.startswith("python "), command
        result = subprocess.run(
            [sys.executable, *shlex.split(command)[1:]], cwd=root, capture_output=True,
            text=True, timeout=1200, check=False)
        assert result.returncode == 0, (command, result.stdout[-3000:], result.stderr[-3000:])
        outputs.append(result)
    return QuickStart(root=root, outputs=outputs)


@pytest.fixture(autouse=True, scope="module")
def _fresh_jax_caches() -> Iterator[None]:
    """Drop JAX's compiled functions after each test module. Each compiled executable holds
    about three memory mappings (measured: 300 small jits took a process from 425 to 1390,
    and ``jax.clear_caches`` back to 504); one fit leaves about 11,000. A whole suite in one
    process passes Linux's limit of 65,530 mappings (``vm.max_map_count``), and XLA's compiler
    then crashes with a segmentation fault, as CI did 57 minutes in."""
    yield
    jax.clear_caches()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remove the session's JAX compilation cache."""
    shutil.rmtree(JAX_CACHE, ignore_errors=True)
