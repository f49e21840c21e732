"""The built-in sources of a corpus, one module each: :mod:`~trainers.sources.django` (the
tiny test corpus) and :mod:`~trainers.sources.libreoffice` (the demo corpus).

A source gives :data:`Documents`: language -> document id -> text. Documents with the same id
in several languages are translations of each other, which the split into train and valid
(:func:`trainers.corpus.split_documents`) relies on.
"""

#: Documents: language -> document id -> text.
Documents = dict[str, dict[str, str]]


def language_code(name: str) -> str:
    """Our code for a locale name: lower case, ``_`` for ``-``; ``en-US`` and ``en_US`` are en."""
    code = name.strip().lower().replace("-", "_")
    return "en" if code == "en_us" else code
