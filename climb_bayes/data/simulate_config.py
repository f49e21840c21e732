"""The keys of ``python -m climb_bayes.simulate``: their types, defaults and meaning.

:class:`SimulateConfig` is the structured config of the command, registered in Hydra's
``ConfigStore`` as ``simulate_schema`` (:mod:`climb_bayes.config_store`);
``conf/simulate.yaml`` only selects it. This is the one place a default of the command is
written: ``--cfg job`` prints them all, OmegaConf refuses a value of the wrong type naming its
key, and :func:`climb_bayes.simulate.settings` checks what types cannot (ranges, choices)
before :func:`climb_bayes.data.simulated.simulate_pilots` draws the pilots.
"""

from dataclasses import dataclass, field


@dataclass
class SimulateConfig:
    """Every key of ``python -m climb_bayes.simulate``: the world drawn and the pilots run in
    it (:mod:`climb_bayes.data.simulated`)."""

    languages: int = 4  # m trained (and evaluated) languages
    evaluation_only: int = 0  # extra languages evaluated but never trained on
    # the two pilot budgets of the 3 x m x 2 design (tokens)
    budgets: list[float] = field(default_factory=lambda: [1.0e7, 3.0e7])
    # fractions of each run's budget at which losses are recorded
    checkpoints: list[float] = field(default_factory=lambda: [0.25, 0.5, 1.0])
    transfer_mean: float = 0.1  # mean of the true b_ji (about a quarter of pairs are negative)
    transfer_sd: float = 0.15  # sd of the true b_ji
    noise: float = 0.02  # typical sd of observation noise (nats)
    noise_df: float | None = None  # Student-t degrees of freedom of the noise; null = Gaussian
    # interaction form of the true law (climb_bayes.model.law.INTERACTION_FORMS)
    form: str = "source_saturating"
    seed: int = 0  # for the design's mixes, the world and the noise
    output: str = "simulated"  # directory for pilots.csv and truth.json
