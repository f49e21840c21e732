"""Write a pilot design and say how wide its budgets span.

``python -m climb_bayes.design languages=[en,de,fr,es] budgets=[1e8,3e8,1e9] output=design.csv``
writes the paper's design (:func:`climb_bayes.data.designs.climb_design`); the keys, their
types, defaults and meaning are those of :class:`climb_bayes.data.design_config.DesignConfig`.
"""

import hydra
from omegaconf import DictConfig

import climb_bayes.config_store  # noqa: F401  (registers design_schema before Hydra starts)
from climb_bayes.cli import output_file, schema_keys
from climb_bayes.data.designs import budget_span_note, climb_design
from climb_bayes.errors import exits_on_input_error
from climb_bayes.io import atomic_path
from climb_bayes.overrides import check_command_line


@hydra.main(config_path="../conf", config_name="design", version_base="1.3")
@exits_on_input_error
def main(cfg: DictConfig) -> None:
    """Write the design table to ``cfg.output`` (``climb_design`` checks the other keys)."""
    schema_keys(cfg)
    output = output_file(cfg.output, "output", "design.csv")
    design = climb_design(cfg.languages, cfg.budgets, cfg.focal_shares, cfg.monolingual,
                          cfg.concentration, cfg.floor, cfg.seed)
    with atomic_path(output) as tmp:
        design.to_csv(tmp, index=False)
    note, warning = budget_span_note(design["tokens"].unique())
    print(f"{'warning: ' if warning else ''}{note}")
    print(f"wrote {len(design)} runs to {output}")


if __name__ == "__main__":
    check_command_line("design")
    main()
