"""The corpus's one shared tokeniser: byte-level BPE (Hugging Face ``tokenizers``).

It is trained on a language-balanced sample (the same number of bytes from every language,
so no language's script dominates the merges) and saved as ``tokenizer.json`` in the corpus
directory. Every token budget in the package is counted in its tokens. The end-of-text token
(id 0) separates documents in the token streams and pads short sequences.
"""

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

END_OF_TEXT = "<|endoftext|>"
#: File name of the tokeniser inside a corpus directory.
FILENAME = "tokenizer.json"

__all__ = ["END_OF_TEXT", "FILENAME", "balanced_sample", "encode_documents", "load",
           "train_tokeniser"]


def balanced_sample(documents: Mapping[str, Sequence[str]], bytes_per_language: int,
                    seed: int = 0) -> list[str]:
    """Up to ``bytes_per_language`` UTF-8 bytes of documents from every language.

    The budget is the smaller of ``bytes_per_language`` and the smallest language's size, so
    every language contributes equally; documents are drawn in a seeded random order.
    """
    sizes = {lang: sum(len(d.encode()) for d in docs) for lang, docs in documents.items()}
    budget = min(bytes_per_language, *sizes.values()) if sizes else 0
    rng = np.random.default_rng(seed)
    sample = []
    for lang in sorted(documents):
        docs = documents[lang]
        taken = 0
        for index in rng.permutation(len(docs)):
            if taken >= budget:
                break
            sample.append(docs[index])
            taken += len(docs[index].encode())
    return sample


def train_tokeniser(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    """A byte-level BPE tokeniser with ``vocab_size`` tokens (``END_OF_TEXT`` is id 0)."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[END_OF_TEXT],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def load(path: str | os.PathLike[str]) -> Tokenizer:
    """Load ``tokenizer.json`` (a file or the corpus directory holding it)."""
    file = Path(path)
    if file.is_dir():
        file = file / FILENAME
    return Tokenizer.from_file(str(file))


def encode_documents(tokenizer: Tokenizer, documents: Sequence[str]) -> np.ndarray:
    """One token stream: every document's tokens followed by the end-of-text id."""
    eot = tokenizer.token_to_id(END_OF_TEXT)
    dtype = np.uint16 if tokenizer.get_vocab_size() <= 2**16 else np.uint32
    pieces = []
    for encoding in tokenizer.encode_batch(list(documents), add_special_tokens=False):
        pieces.append(np.asarray(encoding.ids, dtype=dtype))
        pieces.append(np.asarray([eot], dtype=dtype))
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=dtype)
