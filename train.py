"""Train a GPT on a language mix: ``python train.py [+mix=NAME] [key=value ...]``.

Pilot sweep: ``python train.py -m experiment=pilots experiment.design=design.csv``.
Configuration: ``conf/config.yaml`` and the groups model, data, mix, trainer, experiment;
the work is done by :func:`trainers.training.train`.
"""

from pathlib import Path

import hydra
from omegaconf import DictConfig

from climb_bayes.errors import exits_on_input_error
from climb_bayes.overrides import check_command_line
from trainers import sweep  # noqa: F401  (registers the ${pilot_rows:...} resolver)
from trainers.training import train


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
@exits_on_input_error
def main(cfg: DictConfig) -> None:
    """Run the configured training."""
    train(cfg)


if __name__ == "__main__":
    check_command_line("config", config_dir=Path(__file__).resolve().parent / "conf")
    main()
