"""The keys of ``python -m climb_bayes.report``: their types, defaults and meaning.

:class:`ReportConfig` is the structured config of the command, registered in Hydra's
``ConfigStore`` as ``report_schema`` (:mod:`climb_bayes.config_store`); ``conf/report.yaml``
only selects it. This is the one place a default is written: ``--cfg job`` prints them all,
OmegaConf refuses a value of the wrong type naming its key, and
:meth:`climb_bayes.inspect.assemble.ReportSettings.from_config` checks what types cannot.
"""

from dataclasses import dataclass


@dataclass
class ReportConfig:
    """Every key of ``python -m climb_bayes.report``."""

    posterior: str = "runs/fit/posterior.nc"  # written by python -m climb_bayes.fit
    # mix directory written by python -m climb_bayes.solve; null skips the decision
    mixes: str | None = None
    output: str = "runs/report"  # directory for the PNG files and report.html
    # budget of the transfer heatmap and the scaling plot's marker; null = the mixes'
    # target_tokens, else D_ref. The decision is always solve's, at the budget it solved for.
    tokens: float | None = None
    forest_pairs: int = 20  # transfer coefficients in the forest plot (largest absolute mean)
    health_pairs: int = 4  # transfer coefficients in the rank and trace plots (lowest bulk ESS)
    ppc_draws: int = 50  # replicated data sets per language in the posterior predictive check
    seed: int = 0  # for the choice of replicated data sets
    # report a posterior whose fit is broken (its numbers are not results; the page says so in
    # red)
    allow_broken: bool = False
