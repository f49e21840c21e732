"""The LightningDataModule: mixture-sampled training sequences and per-language validation.

Token streams (every document's tokens followed by end-of-text) are encoded once per corpus
and cached beside it in ``DIR/.cache`` (keyed by the tokeniser and the shards' sizes and
times, so an edited corpus is re-encoded). Training sequences follow a
:class:`~trainers.mixture.Plan`; validation uses every language's held-out split, cut into
non-overlapping windows, one dataloader per evaluated language.

Resuming: the module's state (saved in Lightning checkpoints) is the number of sequences
already trained on; a resumed run's training dataloader starts after them, so an interrupted
run sees exactly the sequences an uninterrupted one does. Its length still counts the whole
epoch (:class:`ResumedLoader`), the way Lightning counts the batches of a resumed epoch.
"""

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from climb_bayes.errors import InputError
from climb_bayes.io import atomic_path
from trainers import corpus as corpus_io
from trainers import tokeniser
from trainers.mixture import Plan, plan_sequences
from trainers.model import IGNORE_INDEX

CACHE = ".cache"


def _cache_key(root: Path, language: str, split: str) -> str:
    """A digest of the tokeniser and of the shards (names, sizes, modification times)."""
    digest = hashlib.sha256((root / tokeniser.FILENAME).read_bytes())
    for shard in corpus_io.shard_files(root, language, split):
        stat = shard.stat()
        digest.update(f"{shard.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def token_stream(root: str | os.PathLike[str], language: str, split: str) -> np.ndarray:
    """One language split's token stream, from the cache or encoded (and cached) now."""
    base = Path(root)
    if not (base / tokeniser.FILENAME).is_file():
        raise InputError(
            f"{base}: no {tokeniser.FILENAME}. Build the corpus with `python -m trainers.corpus` "
            f"(or tokenise your own with `python -m trainers.corpus source=directory "
            f"input={base}`).")
    cached = base / CACHE / f"{language}.{split}.{_cache_key(base, language, split)}.npy"
    if cached.is_file():
        return np.load(cached)
    stream = tokeniser.encode_documents(tokeniser.load(base),
                                        corpus_io.read_documents(base, language, split))
    with atomic_path(cached) as tmp, tmp.open("wb") as handle:
        np.save(handle, stream)
    return stream


def _window(stream: np.ndarray, start: int, length: int, context: int
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and targets (padded to ``context``) of the window at ``start``."""
    tokens = torch.from_numpy(stream[start:start + length + 1].astype(np.int64))
    x = torch.zeros(context, dtype=torch.long)
    y = torch.full((context,), IGNORE_INDEX, dtype=torch.long)
    x[:length], y[:length] = tokens[:-1], tokens[1:]
    return x, y


class TrainSequences(Dataset):
    """The plan's sequences from ``first`` on, as ``(inputs, targets)`` of length ``context``."""

    def __init__(self, streams: Sequence[np.ndarray], plan: Plan, context: int,
                 first: int = 0) -> None:
        self.streams, self.plan, self.context, self.first = streams, plan, context, first

    def __len__(self) -> int:
        return max(0, len(self.plan) - self.first)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        k = self.first + index
        return _window(self.streams[self.plan.language[k]], int(self.plan.start[k]),
                       int(self.plan.length[k]), self.context)


class ValidSequences(Dataset):
    """Non-overlapping windows of a held-out stream, at most ``max_tokens`` targets."""

    def __init__(self, stream: np.ndarray, context: int, max_tokens: int | None = None) -> None:
        self.stream, self.context = stream, context
        starts = np.arange(0, len(stream) - 1, context)
        lengths = np.minimum(context, len(stream) - 1 - starts)
        if max_tokens is not None:
            keep = np.cumsum(lengths) <= max(max_tokens, int(lengths[0]))
            starts, lengths = starts[keep], lengths[keep]
        self.starts, self.lengths = starts, lengths

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return _window(self.stream, int(self.starts[index]), int(self.lengths[index]),
                       self.context)


class ResumedLoader(DataLoader):
    """A training loader that picks an epoch up ``done_batches`` batches in: it yields only
    the batches of ``dataset`` (the rest of the epoch) but its length is the whole epoch's.

    On resume Lightning counts the batches trained before the checkpoint towards the epoch
    (its fetch count starts there), so a length of only the remaining batches would end the
    epoch that many batches early.
    """

    def __init__(self, dataset: Dataset, done_batches: int, **kwargs: Any) -> None:
        self.done_batches = done_batches
        super().__init__(dataset, **kwargs)

    def __len__(self) -> int:
        return super().__len__() + self.done_batches


class MixtureDataModule(L.LightningDataModule):
    """Training sequences in the mix's shares up to ``budget`` tokens; per-language validation.

    ``languages`` and ``shares`` are the training languages and their shares (summing to 1),
    ``eval_languages`` the languages validated on (may include languages not trained on).
    """

    def __init__(self, corpus: str | os.PathLike[str], languages: Sequence[str],
                 shares: Sequence[float], eval_languages: Sequence[str], budget: int,
                 context: int, batch_size: int, seed: int = 0, val_tokens: int | None = None,
                 num_workers: int = 0) -> None:
        super().__init__()
        self.corpus = Path(corpus)
        self.languages, self.shares = list(languages), list(shares)
        self.eval_languages = list(eval_languages)
        self.budget, self.context, self.batch_size = int(budget), context, batch_size
        self.seed, self.val_tokens, self.num_workers = seed, val_tokens, num_workers
        self.first_sequence = 0  # sequences already trained on (restored on resume)
        self.plan: Plan | None = None

    def setup(self, stage: str | None = None) -> None:
        """Load the streams and plan the run (once; later calls do nothing)."""
        if self.plan is not None:
            return
        self.train_streams = [token_stream(self.corpus, lang, corpus_io.TRAIN)
                              for lang in self.languages]
        self.valid_streams = [token_stream(self.corpus, lang, corpus_io.VALID)
                              for lang in self.eval_languages]
        self.plan = plan_sequences(self.shares, self.budget,
                                   [len(s) for s in self.train_streams], self.context, self.seed)

    @property
    def sequences_per_step(self) -> int:
        """Sequences consumed by one optimiser step (all devices, accumulation included)."""
        trainer = self.trainer
        if trainer is None:
            return self.batch_size
        return self.batch_size * trainer.world_size * trainer.accumulate_grad_batches

    def total_steps(self, world_size: int = 1, accumulate: int = 1) -> int:
        """Optimiser steps of the whole run."""
        assert self.plan is not None, "call setup() first"
        return -(-len(self.plan) // (self.batch_size * world_size * accumulate))

    def tokens_after_steps(self, steps: int) -> int:
        """Training tokens seen after ``steps`` optimiser steps."""
        assert self.plan is not None, "call setup() first"
        return self.plan.tokens_after(steps * self.sequences_per_step)

    def _loader(self, dataset: Dataset, done_batches: int = 0) -> DataLoader:
        return ResumedLoader(dataset, done_batches, batch_size=self.batch_size, shuffle=False,
                             num_workers=self.num_workers,
                             persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        assert self.plan is not None, "call setup() first"
        world_size = self.trainer.world_size if self.trainer is not None else 1
        done_batches = self.first_sequence // (self.batch_size * world_size)  # on this device
        return self._loader(TrainSequences(self.train_streams, self.plan, self.context,
                                           self.first_sequence), done_batches)

    def val_dataloader(self) -> list[DataLoader]:
        return [self._loader(ValidSequences(stream, self.context, self.val_tokens))
                for stream in self.valid_streams]

    def state_dict(self) -> dict[str, Any]:
        trainer = self.trainer
        done = trainer.global_step * self.sequences_per_step if trainer is not None else 0
        return {"sequences_done": done}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.first_sequence = int(state_dict.get("sequences_done", 0))
