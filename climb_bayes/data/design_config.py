"""The keys of ``python -m climb_bayes.design``: their types, defaults and meaning.

:class:`DesignConfig` is the structured config of the command, registered in Hydra's
``ConfigStore`` as ``design_schema`` (:mod:`climb_bayes.config_store`); ``conf/design.yaml``
only selects it. This is the one place a default of the command is written: ``--cfg job``
prints them all, OmegaConf refuses a value of the wrong type naming its key, and
:func:`climb_bayes.data.designs.climb_design` checks what types cannot (ranges, repeats).
"""

from dataclasses import dataclass, field


@dataclass
class DesignConfig:
    """Every key of ``python -m climb_bayes.design``: the paper's pilot plan
    (:mod:`climb_bayes.data.designs`)."""

    languages: list[str] = field(default_factory=lambda: ["en", "de", "fr", "es"])  # trained
    # pilot budgets in tokens: 3, spanning 2.3 e-folds, so the pilots see the loss bend (the
    # paper uses two, 3-10x apart; design warns below 3 budgets or 2 e-folds,
    # climb_bayes.data.designs.budget_span_note)
    budgets: list[float] = field(default_factory=lambda: [1.0e7, 3.0e7, 1.0e8])
    # the shares each language gets in its three mixed runs
    focal_shares: list[float] = field(default_factory=lambda: [0.15, 0.4, 0.7])
    monolingual: bool = True  # add one monolingual run per language and budget
    concentration: float = 1.0  # Dirichlet concentration spreading the rest of each mix
    floor: float = 0.3  # each other language gets at least this fraction of an even split
    seed: int = 0  # for the Dirichlet draws
    output: str = "design.csv"  # the design table to write
