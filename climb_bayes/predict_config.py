"""The keys of ``python -m climb_bayes.predict``: their types, defaults and meaning.

:class:`PredictConfig` is the structured config of the command, registered in Hydra's
``ConfigStore`` as ``predict_schema`` (:mod:`climb_bayes.config_store`); ``conf/predict.yaml``
only selects it. This is the one place a default is written: ``--cfg job`` prints them all,
OmegaConf refuses a value of the wrong type naming its key, and :func:`climb_bayes.predict.main`
checks what types cannot (a budget > 0, a seed >= 0, the output path).
"""

from dataclasses import dataclass

from omegaconf import MISSING


@dataclass
class PredictConfig:
    """Every key of ``python -m climb_bayes.predict``."""

    posterior: str = "runs/fit/posterior.nc"  # written by python -m climb_bayes.fit
    # CSV: optional 'mix' and 'tokens' columns, share_<lang> columns (required)
    mixes: str = MISSING
    # budget (total training tokens) for rows without a 'tokens' value
    tokens: float | None = None
    output: str = "predictions.csv"  # the prediction table to write
    seed: int = 0  # for the observation-noise draws of the predictive quantiles
    allow_broken: bool = False  # use a posterior whose fit is broken (its numbers are not results)
