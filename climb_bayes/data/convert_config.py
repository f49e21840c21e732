"""The keys of ``python -m climb_bayes.convert``: their types, defaults and meaning.

:class:`ConvertConfig` is the structured config of the command, registered in Hydra's
``ConfigStore`` as ``convert_schema`` (:mod:`climb_bayes.config_store`); ``conf/convert.yaml``
only selects it. This is the one place a default is written: ``--cfg job`` prints them all,
OmegaConf refuses a value of the wrong type naming its key, and :func:`climb_bayes.convert.main`
checks what types cannot (which keys go together, a budget > 0, the output path).

The command reads one of two layouts: the wide one (``mixtures`` and ``losses``, as RegMix
publishes them; :mod:`climb_bayes.data.wide_layout`) or a checkpoint log (``log``, as Data
Mixing Laws publishes them; :mod:`climb_bayes.data.checkpoint_log`).
"""

from dataclasses import dataclass


@dataclass
class ConvertConfig:
    """Every key of ``python -m climb_bayes.convert``."""

    # wide layout: CSV/Parquet with a run id column and one weight column per training language
    mixtures: str | None = None
    # wide layout: CSV/Parquet with the run id column and one loss column per evaluated language
    losses: str | None = None
    output: str | None = None  # the pilot table to write (.csv, .parquet or .pq; required)
    # wide layout: budget of every run, when the mixture table has no `tokens` column
    tokens: float | None = None
    # wide layout: the column matching runs between the tables (RegMix: index); null matches
    # them by row order
    run_id_column: str | None = "run_id"
    normalise: bool = False  # divide each run's weights by their sum (for rounded weights)
    # a Data Mixing Laws checkpoint log (tab-separated checkpoint, file, loss)
    log: str | None = None
    # log: names of the training domains in the order of the run names' weights (null:
    # domain1, domain2, ...)
    sources: list[str] | None = None
    tokens_per_step: float = 1048576  # log: tokens per optimiser step (their runs: 4096 x 256)
