"""Convert pilot results from the wide layout into a pilot table.

``python -m climb_bayes.convert mixtures=A.csv losses=B.csv tokens=1e9 output=pilots.csv``

The options are in ``conf/convert.yaml``; the conversion is :func:`climb_bayes.pilots.from_wide`.
The table is validated before it is written, and written atomically. On bad input the command
prints why and exits with status 2, writing nothing.
"""

import sys

import hydra
from omegaconf import DictConfig

from climb_bayes.cli import (
    check_command_line,
    flag,
    optional_positive,
    output_file,
    required,
)
from climb_bayes.errors import exits_on_input_error
from climb_bayes.pilots import (
    design_warnings,
    from_wide,
    read_table,
    table_kind,
    validate_pilots,
    write_pilots,
)

#: The command line, for messages.
USAGE = ("python -m climb_bayes.convert mixtures=A.csv losses=B.csv tokens=1e9 "
         "output=pilots.csv")


@hydra.main(config_path="../conf", config_name="convert", version_base="1.3")
@exits_on_input_error
def main(cfg: DictConfig) -> None:
    """Read the two wide tables, convert, validate, write the pilot table, print design warnings."""
    mixtures, losses = (str(required(cfg, key, f"{key} table (CSV or Parquet)", USAGE))
                        for key in ("mixtures", "losses"))
    output = output_file(required(cfg, "output", "pilot table to write", USAGE), "output",
                         "pilots.csv")
    table_kind(output)
    tokens = optional_positive(cfg.tokens, "tokens", "training budget of every run",
                               "tokens=1e9")
    normalise = flag(cfg.normalise, "normalise")
    frame = from_wide(read_table(mixtures), read_table(losses), tokens=tokens,
                      run_id_column=cfg.run_id_column, normalise=normalise,
                      paths=(mixtures, losses))
    table = validate_pilots(frame, path=f"the table converted from {mixtures} and {losses}")
    write_pilots(table.frame, output)
    for warning in design_warnings(table):
        print(f"warning: {warning}", file=sys.stderr)
    print(f"wrote {output}: {len(table.frame)} rows, {table.frame['run_id'].nunique()} runs, "
          f"{len(table.sources)} training and {len(table.targets)} evaluated languages")


if __name__ == "__main__":
    check_command_line("convert")
    main()
