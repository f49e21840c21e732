"""The trainers: mixture sampling, the data module, the GPT, the schedule, train.py."""

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import CORPUS_LANGUAGES as LANGUAGES

from trainers import corpus_reader, tokeniser
from trainers.data import MixtureDataModule
from trainers.mixture import allocate_tokens, epochs_needed, plan_sequences
from trainers.model import GPT, IGNORE_INDEX, GPTConfig
from trainers.module import learning_rate_factor

REPO = Path(__file__).resolve().parents[1]
TINY = ("data=django", "trainer.threads=1", "trainer.progress_bar=false",
        "trainer.loggers=[csv]")



def train(*overrides: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "train.py", *TINY, *overrides], cwd=REPO,
                          capture_output=True, text=True, timeout=600, check=False)


# ----------------------------------------------------------------------------- sampling


@pytest.mark.parametrize("budget", [1, 7, 1000, 123_457])
def test_allocation_is_exact(budget: int) -> None:
    rng = np.random.default_rng(budget)
    for _ in range(20):
        shares = rng.dirichlet(np.ones(5))
        counts = allocate_tokens(shares, budget)
        assert counts.sum() == budget
        assert np.all(np.abs(counts - shares * budget) < 1)


def test_plan_delivers_shares_and_budget() -> None:
    shares, budget, context = [0.5, 0.3, 0.2, 0.0], 100_003, 64
    plan = plan_sequences(shares, budget, [50_000, 40_000, 9_000, 5_000], context, seed=1)
    assert plan.length.sum() == budget
    per_language = np.bincount(plan.language, weights=plan.length, minlength=4)
    assert np.all(np.abs(per_language - np.array(shares) * budget) < 1)
    assert np.all((plan.length == context)[:-3])  # short sequences only at the end
    # a language whose share exceeds its data repeats it, epochs counted
    assert plan.epochs[2] == pytest.approx(20_001 / 8_999, rel=1e-3)
    # within one epoch, windows do not repeat
    starts = plan.start[plan.language == 0]
    assert len(np.unique(starts)) == len(starts)


def test_epochs_needed() -> None:
    assert epochs_needed({"a": 0.5, "b": 0.5}, 1000, {"a": 100, "b": 1000}) == {"a": 5.0,
                                                                                 "b": 0.5}


def test_datamodule_batches_exact_budget_and_shares(corpus: Path) -> None:
    shares, budget = [0.6, 0.3, 0.1], 30_001
    module = MixtureDataModule(corpus, LANGUAGES, shares, LANGUAGES, budget, context=64,
                               batch_size=8, seed=3)
    module.setup("fit")
    targets = torch.cat([y for _, y in module.train_dataloader()])
    assert int((targets != IGNORE_INDEX).sum()) == budget
    plan = module.plan
    tokens = np.bincount(plan.language, weights=plan.length, minlength=3)
    assert np.all(np.abs(tokens / budget - shares) < 1 / budget)
    assert module.tokens_after_steps(module.total_steps()) == budget


def test_validation_data_never_in_training_batches(corpus: Path) -> None:
    tok = tokeniser.load(corpus)
    eot = tok.token_to_id(tokeniser.END_OF_TEXT)
    module = MixtureDataModule(corpus, LANGUAGES, [1 / 3] * 3, LANGUAGES, 60_000, context=64,
                               batch_size=16, seed=0)
    module.setup("fit")
    # every whole document inside a training window (between two end-of-texts), by language
    seen: dict[int, set[str]] = {i: set() for i in range(len(LANGUAGES))}
    windows = (pair for batch in module.train_dataloader() for pair in zip(*batch, strict=True))
    for language, (x, y) in zip(module.plan.language, windows, strict=True):
        ids = torch.cat([x[:1], y[y != IGNORE_INDEX]]).tolist()
        cuts = [i for i, t in enumerate(ids) if t == eot]
        seen[language].update(tok.decode(ids[a + 1:b]) for a, b in zip(cuts, cuts[1:],
                                                                          strict=False))
    for index, lang in enumerate(LANGUAGES):
        seen_here = seen[index]
        valid = corpus_reader.read_documents(corpus, lang, "valid")
        leaked = [d for d in valid if d in seen_here]
        assert not leaked, f"{lang}: validation documents in training batches: {leaked[:3]}"
        # the check finds what it looks for: most training documents are seen
        train = corpus_reader.read_documents(corpus, lang, "train")
        assert sum(d in seen_here for d in train) > len(train) // 2


def test_same_seed_same_batches(corpus: Path) -> None:
    def batches(seed: int) -> torch.Tensor:
        module = MixtureDataModule(corpus, LANGUAGES, [0.2, 0.5, 0.3], LANGUAGES, 5_000,
                                   context=32, batch_size=4, seed=seed)
        module.setup("fit")
        return torch.cat([x for x, _ in module.train_dataloader()])

    assert torch.equal(batches(7), batches(7))
    assert not torch.equal(batches(7), batches(8))


def test_training_loader_resumes_after_the_batches_it_handed_out(corpus: Path) -> None:
    module = MixtureDataModule(corpus, LANGUAGES, [0.2, 0.5, 0.3], LANGUAGES, 5_000,
                               context=32, batch_size=4, seed=1)
    module.setup("fit")
    whole = [x for x, _ in module.train_dataloader()]
    loader = module.train_dataloader()
    batches = iter(loader)
    first = [next(batches)[0] for _ in range(3)]
    resumed = module.train_dataloader()
    resumed.load_state_dict(loader.state_dict())
    rest = [x for x, _ in resumed]
    assert len(resumed) == len(whole)  # the whole pass, as Lightning counts a resumed epoch
    assert len(first) + len(rest) == len(whole)
    assert all(torch.equal(a, b) for a, b in zip(first + rest, whole, strict=True))
    assert len(list(resumed)) == len(whole)  # its next pass is whole again


# ----------------------------------------------------------------------------- model


def test_gpt_is_causal_and_ignores_padding() -> None:
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=50, context=16, n_layer=2, n_head=2, n_embd=32)).eval()
    x = torch.randint(0, 50, (2, 16))
    changed = x.clone()
    changed[:, 10:] = (changed[:, 10:] + 1) % 50
    with torch.no_grad():
        a, _ = model(x)
        b, _ = model(changed)
    assert torch.allclose(a[:, :10], b[:, :10], atol=1e-6)
    assert not torch.allclose(a[:, 10:], b[:, 10:])
    y = torch.randint(0, 50, (2, 16))
    padded = y.clone()
    padded[:, 8:] = IGNORE_INDEX
    with torch.no_grad():
        _, loss = model(x, padded)
        total, count = model.token_losses(x, padded)
        logits, _ = model(x)
    reference = torch.nn.functional.cross_entropy(logits[:, :8].reshape(-1, 50),
                                                  y[:, :8].reshape(-1))
    assert count == 16 and torch.isclose(loss, reference) and torch.isclose(total / 16, loss)


def test_schedules() -> None:
    total, warmup = 100, 10
    cosine = [learning_rate_factor(s, total, warmup, "cosine", min_ratio=0.1)
              for s in range(total)]
    assert cosine[0] == pytest.approx(0.1) and cosine[9] == pytest.approx(1.0)
    assert cosine[-1] == pytest.approx(0.1) and all(np.diff(cosine[9:]) <= 1e-12)
    wsd = [learning_rate_factor(s, total, warmup, "wsd", decay_fraction=0.2, min_ratio=0.0)
           for s in range(total)]
    assert wsd[10:80] == [1.0] * 70 and wsd[-1] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="unknown schedule"):
        learning_rate_factor(0, 10, 1, "linear")


# ----------------------------------------------------------------------------- train.py


def test_train_writes_pilot_rows_and_is_reproducible(corpus: Path, tmp_path: Path) -> None:
    common = (f"data.corpus={corpus}", "experiment.tokens=12000", "experiment.evaluations=3")
    first = train(*common, f"experiment.output={tmp_path / 'a'}")
    assert first.returncode == 0, first.stderr[-3000:]
    second = train(*common, f"experiment.output={tmp_path / 'b'}")
    assert second.returncode == 0, second.stderr[-3000:]
    a = pd.read_csv(tmp_path / "a" / "uniform-1.2e+04" / "pilots.csv")
    b = pd.read_csv(tmp_path / "b" / "uniform-1.2e+04" / "pilots.csv")
    pd.testing.assert_frame_equal(a, b)  # same seed: identical losses
    assert sorted(a["tokens"].unique())[-1] == 12000 and a["tokens"].nunique() == 3
    assert set(a["language"]) == set(LANGUAGES)
    assert np.allclose(a[[f"share_{x}" for x in LANGUAGES]], 1 / 3)
    # losses fall as training goes on, and are plausible for a 512-token vocabulary
    by_tokens = a.groupby("tokens")["loss"].mean()
    assert by_tokens.iloc[-1] < by_tokens.iloc[0] < np.log(512) + 0.5
    # logs and the checkpoint are there; a rerun skips the finished run
    run = tmp_path / "a" / "uniform-1.2e+04"
    assert (run / "checkpoints" / "last.ckpt").is_file() and (run / "logs").is_dir()
    again = train(*common, f"experiment.output={tmp_path / 'a'}")
    assert again.returncode == 0 and "skipped" in again.stdout


def test_killed_run_resumes_where_it_stopped(corpus: Path, tmp_path: Path) -> None:
    """Killed after a mid-run checkpoint, the same command trains only the rest of the run
    (Lightning restores the training loader's position from the checkpoint) and writes
    exactly what an uninterrupted run writes."""
    common = (f"data.corpus={corpus}", "experiment.tokens=100000", "experiment.evaluations=3",
              "trainer.checkpoint_every_steps=2")
    reference = train(*common, f"experiment.output={tmp_path / 'ref'}")
    assert reference.returncode == 0, reference.stderr[-3000:]

    killed = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "train.py", *TINY, *common,
                                f"experiment.output={killed}"], cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    checkpoint = killed / "uniform-1e+05" / "checkpoints" / "last.ckpt"
    try:
        while not checkpoint.is_file():
            assert process.poll() is None, "the run ended before it could be killed"
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert not (checkpoint.parents[1] / "pilots.csv").exists(), "killed too late"
    step = torch.load(checkpoint, map_location="cpu", weights_only=False)["global_step"]
    assert step > 0

    resumed = train(*common, f"experiment.output={killed}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming" in resumed.stdout
    assert "not resumable" not in resumed.stderr  # Lightning sees the loader's state
    trained_now = int(re.search(r"\((\d+) tokens trained now", resumed.stdout).group(1))
    assert 0 < trained_now < 100000  # only the rest of the run, not the run again
    assert len(list((checkpoint.parents[1] / "logs").glob("version_*"))) == 2  # logs kept
    pd.testing.assert_frame_equal(pd.read_csv(checkpoint.parents[1] / "pilots.csv"),
                                  pd.read_csv(tmp_path / "ref" / "uniform-1e+05" / "pilots.csv"))


def test_train_with_a_mix_from_a_searchpath(corpus: Path, tmp_path: Path) -> None:
    (tmp_path / "mixes" / "mix").mkdir(parents=True)
    (tmp_path / "mixes" / "mix" / "posterior_mean.yaml").write_text(
        "shares: {de: 0.7, en: 0.2, fr: 0.1}\nmetadata:\n  note: ignored\n")
    result = train(f"data.corpus={corpus}", "experiment.tokens=4000", "+mix=posterior_mean",
                   f"hydra.searchpath=[file://{tmp_path / 'mixes'}]",
                   f"experiment.output={tmp_path / 'out'}", "data.eval_languages=[de,en,fr]")
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_csv(tmp_path / "out" / "posterior_mean-4e+03" / "pilots.csv")
    assert [c for c in table.columns if c.startswith("share_")] == [
        "share_de", "share_en", "share_fr"]
    assert table["share_de"].eq(0.7).all() and set(table["language"]) == set(LANGUAGES)


def test_a_solved_mix_trains_for_its_own_budget_unless_told_otherwise(corpus: Path,
                                                                      tmp_path: Path) -> None:
    (tmp_path / "mixes" / "mix").mkdir(parents=True)
    (tmp_path / "mixes" / "mix" / "solved.yaml").write_text(
        "shares: {de: 0.5, en: 0.3, fr: 0.2}\n"
        "metadata:\n  provenance:\n    target_tokens: 3000.0\n")
    common = ("+mix=solved", f"data.corpus={corpus}", f"experiment.output={tmp_path / 'out'}",
              f"hydra.searchpath=[file://{tmp_path / 'mixes'}]")
    own = train(*common)  # no experiment.tokens: the mix file's target_tokens
    assert own.returncode == 0, own.stderr[-3000:]
    assert pd.read_csv(tmp_path / "out" / "solved-3e+03" / "pilots.csv")["tokens"].max() == 3000
    assert "trains it for another budget" not in own.stderr

    other = train(*common, "experiment.tokens=2000")  # given: it wins, with a warning
    assert other.returncode == 0, other.stderr[-3000:]
    assert pd.read_csv(tmp_path / "out" / "solved-2e+03" / "pilots.csv")["tokens"].max() == 2000
    assert "solved for target_tokens=3000, but experiment.tokens=2000" in other.stderr
