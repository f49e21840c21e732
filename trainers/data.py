"""The LightningDataModule: mixture-sampled training sequences and per-language validation.

Token streams (every document's tokens followed by end-of-text) are encoded once per corpus
and cached beside it in ``DIR/.cache`` (keyed by the tokeniser and the shards' sizes and
times, so an edited corpus is re-encoded). Training sequences follow a
:class:`~trainers.mixture.Plan`; validation uses every language's held-out split, cut into
non-overlapping windows, one dataloader per evaluated language.

Resuming: the training dataloader is stateful (:class:`ResumableLoader`). Lightning saves its
state, the batches handed out so far, in every checkpoint and restores it into a resumed run's
loader, which then starts after those batches, so an interrupted run sees exactly the
sequences an uninterrupted one does.
"""

import hashlib
import os
from collections.abc import Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, Sampler, SequentialSampler

from climb_bayes.errors import InputError
from climb_bayes.io import atomic_path
from trainers import tokeniser
from trainers.corpus_reader import TRAIN, VALID, read_documents, shard_files
from trainers.mixture import Plan, plan_sequences
from trainers.model import IGNORE_INDEX

CACHE = ".cache"


def _cache_key(root: Path, language: str, split: str) -> str:
    """A digest of the tokeniser and of the shards (names, sizes, modification times)."""
    digest = hashlib.sha256((root / tokeniser.FILENAME).read_bytes())
    for shard in shard_files(root, language, split):
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
                                        read_documents(base, language, split))
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
    """The plan's sequences, as ``(inputs, targets)`` of length ``context``."""

    def __init__(self, streams: Sequence[np.ndarray], plan: Plan, context: int) -> None:
        self.streams, self.plan, self.context = streams, plan, context

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return _window(self.streams[self.plan.language[index]], int(self.plan.start[index]),
                       int(self.plan.length[index]), self.context)


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


class ResumableBatches(BatchSampler):
    """Batches of indices; the next pass starts ``start`` batches in (then ``start`` is 0)."""

    def __init__(self, sampler: Sampler[int], batch_size: int, drop_last: bool = False) -> None:
        super().__init__(sampler, batch_size, drop_last)
        self.start = 0

    def __iter__(self) -> Iterator[list[int]]:
        start, self.start = self.start, 0
        return islice(super().__iter__(), start, None)


class ResumableLoader(DataLoader):
    """A loader with a :class:`ResumableBatches` that can stop and resume mid-pass.

    Its state (``state_dict``) is the number of batches handed out in the current pass;
    Lightning saves it in every checkpoint and, on resume, loads it into the new loader before
    iterating it. The pass then skips that many batches of indices (no data is read for them).
    Its length stays the whole pass's, as Lightning counts the batches before the checkpoint
    towards the resumed epoch.
    """

    batches_done = 0  # handed out in the current pass

    def __iter__(self) -> Iterator[Any]:
        self.batches_done = self.batch_sampler.start
        for batch in super().__iter__():
            self.batches_done += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"batches_done": self.batches_done}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        self.batch_sampler.start = state_dict["batches_done"]


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
        self.plan: Plan | None = None

    def setup(self, stage: str | None = None) -> None:
        """Load the streams and plan the run (once; later calls do nothing)."""
        if self.plan is not None:
            return
        self.train_streams = [token_stream(self.corpus, lang, TRAIN)
                              for lang in self.languages]
        self.valid_streams = [token_stream(self.corpus, lang, VALID)
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

    def _workers(self) -> dict[str, Any]:
        return {"num_workers": self.num_workers, "persistent_workers": self.num_workers > 0}

    def train_dataloader(self) -> ResumableLoader:
        assert self.plan is not None, "call setup() first"
        dataset = TrainSequences(self.train_streams, self.plan, self.context)
        batches = ResumableBatches(SequentialSampler(dataset), self.batch_size)
        return ResumableLoader(dataset, batch_sampler=batches, **self._workers())

    def val_dataloader(self) -> list[DataLoader]:
        return [DataLoader(ValidSequences(stream, self.context, self.val_tokens),
                           batch_size=self.batch_size, **self._workers())
                for stream in self.valid_streams]
