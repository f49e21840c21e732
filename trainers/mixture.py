"""Mixture sampling: which training sequences a run sees, in exactly the mix's shares.

Pure functions on numbers and arrays (no torch). A run with budget ``D`` tokens and mix ``r``
trains on ``t_i`` target tokens of language ``i``, where ``t`` is ``r * D`` rounded by the
largest-remainder method, so ``sum(t) == D`` exactly and ``|t_i - r_i D| < 1``. Language
``i``'s tokens come as ``t_i // T`` full sequences of ``T`` targets (the context length) and,
if ``t_i % T > 0``, one shorter sequence. A sequence is a window of ``length + 1`` consecutive
tokens of the language's training stream (inputs and the targets shifted by one).

Windows are drawn *without replacement within an epoch*: each epoch of a language takes a
random offset in ``[0, T)``, cuts the stream into non-overlapping windows from there and
shuffles them; when a language runs out, its next epoch starts. Epochs are counted
(``t_i / A_i`` for ``A_i`` available tokens) and a run needing more than the allowed maximum
is refused before training. Full sequences of all languages are shuffled together; the few
short ones come last. Everything is determined by the seed.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


def allocate_tokens(shares: Sequence[float], budget: int) -> np.ndarray:
    """Integer token counts summing to ``budget``, each within 1 of ``share * budget``."""
    exact = np.asarray(shares, dtype=np.float64) * budget
    counts = np.floor(exact).astype(np.int64)
    remainder = int(budget - counts.sum())
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[:remainder]] += 1
    return counts


def epochs_needed(shares: Mapping[str, float], budget: float,
                  available: Mapping[str, int]) -> dict[str, float]:
    """Passes over each language's training tokens that the run needs: ``r_i D / A_i``."""
    return {lang: share * budget / available[lang] if available[lang] else math.inf
            for lang, share in shares.items()}


@dataclass(frozen=True)
class Plan:
    """The training sequences of a run, in order.

    ``language[k]`` indexes the run's languages, ``start[k]`` is where sequence ``k``'s window
    begins in that language's stream and ``length[k]`` its number of target tokens (``T``
    except for the short sequences at the end). ``epochs[i]`` is how many passes over
    language ``i``'s data the run makes.
    """

    language: np.ndarray
    start: np.ndarray
    length: np.ndarray
    epochs: np.ndarray

    def __len__(self) -> int:
        return len(self.length)

    def tokens_after(self, sequences: int) -> int:
        """Target tokens in the first ``sequences`` sequences."""
        return int(self.length[:max(0, min(sequences, len(self)))].sum())


def _windows(stream_length: int, context: int, count: int, rng: np.random.Generator
             ) -> np.ndarray:
    """Start positions of ``count`` windows of ``context + 1`` tokens, epoch by epoch."""
    starts: list[np.ndarray] = []
    needed = count
    while needed > 0:
        offset = int(rng.integers(0, min(context, stream_length - context - 1) + 1))
        epoch = offset + context * np.arange((stream_length - 1 - offset) // context)
        epoch = rng.permutation(epoch)[:needed]
        starts.append(epoch)
        needed -= len(epoch)
    return np.concatenate(starts) if starts else np.zeros(0, dtype=np.int64)


def plan_sequences(shares: Sequence[float], budget: int, stream_lengths: Sequence[int],
                   context: int, seed: int) -> Plan:
    """The run's sequences: exactly ``budget`` target tokens in the shares' proportions.

    ``stream_lengths[i]`` is the length of language ``i``'s training token stream; every
    language with a positive share needs at least ``context + 1`` tokens.
    """
    if budget <= 0:
        raise ValueError(f"budget must be a positive number of tokens, got {budget}")
    counts = allocate_tokens(shares, budget)
    rng = np.random.default_rng(seed)
    language_rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(
        len(counts))]
    full_lang, full_start, short_lang, short_start, short_length = [], [], [], [], []
    epochs = np.zeros(len(counts))
    for i, (tokens, length) in enumerate(zip(counts, stream_lengths, strict=True)):
        if tokens == 0:
            continue
        if length < context + 1:
            raise ValueError(f"language {i} has {length} training tokens, fewer than one "
                             f"sequence of {context + 1}")
        n_full, rest = divmod(int(tokens), context)
        starts = _windows(length, context, n_full + (rest > 0), language_rngs[i])
        full_lang.append(np.full(n_full, i))
        full_start.append(starts[:n_full])
        if rest:
            short_lang.append(i)
            short_start.append(starts[n_full])
            short_length.append(rest)
        epochs[i] = tokens / (length - 1)
    full_lang_a = np.concatenate(full_lang) if full_lang else np.zeros(0, np.int64)
    full_start_a = np.concatenate(full_start) if full_start else np.zeros(0, np.int64)
    order = rng.permutation(len(full_lang_a))
    language = np.concatenate([full_lang_a[order], short_lang]).astype(np.int64)
    start = np.concatenate([full_start_a[order], short_start]).astype(np.int64)
    length_a = np.concatenate([np.full(len(order), context), short_length]).astype(np.int64)
    return Plan(language=language, start=start, length=length_a, epochs=epochs)
