"""The keys of ``python -m trainers.sweep``: their types, defaults and meaning.

:class:`SweepConfig` is the structured config of the command; :func:`register` stores it in
Hydra's ``ConfigStore`` as ``sweep_schema`` (on import of this module, which
:mod:`trainers.sweep` imports before Hydra starts; ``climb_bayes`` never imports
``trainers``, so it is registered here rather than in :mod:`climb_bayes.config_store`).
``conf/sweep.yaml`` only selects it. This is the one place a default is written: ``--cfg job``
prints them all, OmegaConf refuses a value of the wrong type naming its key, and
:func:`trainers.sweep.main` checks the output path.
"""

from dataclasses import dataclass

from hydra.core.config_store import ConfigStore

#: The name of the schema node in the ConfigStore (first in ``conf/sweep.yaml``'s defaults).
SWEEP_SCHEMA = "sweep_schema"


@dataclass
class SweepConfig:
    """Every key of ``python -m trainers.sweep``."""

    design: str = "runs/pilots/design.csv"  # the design table the sweep ran
    output: str = "runs/pilots"  # the sweep's experiment.output


def register() -> None:
    """Store ``sweep_schema`` in Hydra's ConfigStore; idempotent."""
    ConfigStore.instance().store(name=SWEEP_SCHEMA, node=SweepConfig)


register()
