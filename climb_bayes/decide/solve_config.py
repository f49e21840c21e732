"""The keys of ``python -m climb_bayes.solve``: their types, defaults and meaning.

:class:`SolveConfig` is the structured config of the command, registered in Hydra's
``ConfigStore`` as ``solve_schema`` (:mod:`climb_bayes.config_store`); ``conf/solve.yaml``
only selects it. This is the one place a default is written: ``--cfg job`` prints them all,
OmegaConf refuses a value of the wrong type naming its key, and
:func:`climb_bayes.decide.inputs.solve_options` checks what types cannot (ranges, choices)
and turns them into :class:`climb_bayes.decide.inputs.Options`.
"""

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from climb_bayes.decide.compare import DOUBT_THRESHOLD
from climb_bayes.decide.objectives import DEFAULT_SETTINGS


@dataclass
class RobustConfig:
    """``robust``: the objective of the ``robust`` mix."""

    # cvar_regret: the mean of the worst (1 - level) of the regrets W_s(r) - W_s(r*_s) over
    # draws (r*_s each draw's own optimum); mean_sd: mean + k * sd of the weighted loss;
    # quantile: its `level` quantile
    kind: str = "cvar_regret"
    k: float = 1.0
    level: float = 0.9


@dataclass
class DecisionConfig:
    """``decision``: when a gain over the reference counts (:mod:`climb_bayes.decide.compare`).

    A gain over the reference (uniform, or the mix closest to it within the bounds) counts when
    it exceeds ``delta`` nats. Below ``threshold`` for P(gain > delta), solve recommends the
    reference."""

    # null = the run-to-run noise of the weighted loss the fit shows (its run effect's scale,
    # else its observation noise)
    delta: float | None = None
    threshold: float = DOUBT_THRESHOLD


@dataclass
class SolverConfig:
    """``solver``: the interior-point method (:mod:`climb_bayes.decide.interior`)."""

    tol: float = DEFAULT_SETTINGS.tol  # KKT error (max-norm) at which it stops
    max_iter: int = DEFAULT_SETTINGS.max_iter


@dataclass
class GuardConfig:
    """``guard``: the extrapolation warning."""

    # warn when target_tokens > budget_factor x the largest pilot budget
    budget_factor: float = 10.0


@dataclass
class SolveConfig:
    """Every key of ``python -m climb_bayes.solve``."""

    posterior: str = "runs/fit/posterior.nc"  # written by python -m climb_bayes.fit
    # total training tokens of the run the mix is for, e.g. target_tokens=2e9 (required)
    target_tokens: float = MISSING
    # one <mix>.yaml per mix (python train.py +mix=posterior_mean) and the solver's CSV tables
    output: str = "runs/mix"
    allow_broken: bool = False  # use a posterior whose fit is broken (its numbers are not results)
    # The mappings below are typed Any: OmegaConf 2.3 cannot merge a mapping given on the
    # command line into a typed mapping whose default is null. solve_options and the functions
    # of climb_bayes.decide.inputs check them against the posterior's languages.
    # {lang: weight} over evaluated languages (normalised); null = equal
    weights: Any = None
    # tokens per training language: {lang: tokens} or a CSV with columns
    # language,train_tokens (languages.csv); null = no availability cap
    available: Any = None
    max_epochs: float = 4.0  # repetition cap: share * target_tokens <= max_epochs * available
    min_share: Any = None  # {lang: lower bound on the share}, e.g. 'min_share={fr: 0.05}'
    max_share: Any = None  # {lang: upper bound on the share}
    temperature: float = 0.3  # exponent e of temperature sampling, share ~ available^e
    robust: RobustConfig = field(default_factory=RobustConfig)
    decision: DecisionConfig = field(default_factory=DecisionConfig)
    solver: SolverConfig = field(default_factory=SolverConfig)
    guard: GuardConfig = field(default_factory=GuardConfig)
