"""Write simulated pilots and the parameters they were drawn from.

``python -m climb_bayes.simulate languages=4 output=DIR`` draws a world and its pilot table
(:func:`climb_bayes.data.simulated.simulate_pilots`) and writes ``DIR/pilots.csv`` with the
true parameters beside it in ``DIR/truth.json``. The keys, their types, defaults and meaning
are those of :class:`climb_bayes.data.simulate_config.SimulateConfig`.
"""

from typing import Any

import hydra
from omegaconf import DictConfig

import climb_bayes.config_store  # noqa: F401  (registers simulate_schema before Hydra starts)
from climb_bayes.cli import (
    choice,
    count,
    number,
    numbers,
    optional_positive,
    output_directory,
    schema_keys,
)
from climb_bayes.data.simulated import simulate_pilots
from climb_bayes.data.table_files import write_pilots
from climb_bayes.errors import exits_on_input_error
from climb_bayes.io import write_text
from climb_bayes.model.law import INTERACTION_FORMS
from climb_bayes.overrides import check_command_line


def settings(cfg: DictConfig) -> dict[str, Any]:
    """The arguments of :func:`climb_bayes.data.simulated.simulate_pilots` from ``cfg`` (typed
    by :class:`~climb_bayes.data.simulate_config.SimulateConfig`), each checked (the budgets
    by :func:`climb_bayes.data.designs.climb_design`)."""
    schema_keys(cfg)
    return {
        "languages": count(cfg.languages, "languages", "number of trained languages",
                           "languages=4", minimum=2),
        "evaluation_only": count(cfg.evaluation_only, "evaluation_only",
                                 "number of evaluation-only languages", "evaluation_only=0",
                                 minimum=0),
        "budgets": cfg.budgets,
        "checkpoints": numbers(cfg.checkpoints, "checkpoints",
                               "checkpoint (a fraction of the run's budget)",
                               "checkpoints=[0.25,0.5,1.0]", above=0.0, at_most=1.0),
        "transfer_mean": number(cfg.transfer_mean, "transfer_mean", "mean transfer coefficient",
                                "transfer_mean=0.1"),
        "transfer_sd": number(cfg.transfer_sd, "transfer_sd", "spread of the transfer",
                              "transfer_sd=0.15", at_least=0.0),
        "noise": number(cfg.noise, "noise", "noise sd in nats", "noise=0.02", at_least=0.0),
        "noise_df": optional_positive(cfg.noise_df, "noise_df", "Student-t degrees of freedom",
                                      "noise_df=4"),
        "form": choice(cfg.form, "form", INTERACTION_FORMS),
        "seed": count(cfg.seed, "seed", "seed", "seed=0", minimum=0),
    }


@hydra.main(config_path="../conf", config_name="simulate", version_base="1.3")
@exits_on_input_error
def main(cfg: DictConfig) -> None:
    """Write ``output/pilots.csv`` and ``output/truth.json``."""
    output = output_directory(cfg.output, "output", "simulated", "pilots.csv and truth.json")
    table, world = simulate_pilots(**settings(cfg))
    write_pilots(table, output / "pilots.csv")
    write_text(output / "truth.json", world.to_json())
    print(f"wrote {len(table)} rows ({table['run_id'].nunique()} runs) to {output / 'pilots.csv'}"
          f" and the true parameters to {output / 'truth.json'}")


if __name__ == "__main__":
    check_command_line("simulate")
    main()
