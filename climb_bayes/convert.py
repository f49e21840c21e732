"""Convert pilot results from the wide layout into a pilot table.

``python -m climb_bayes.convert mixtures=A.csv losses=B.csv tokens=1e9 output=pilots.csv``

The options are in ``conf/convert.yaml``; the conversion is :func:`climb_bayes.pilots.from_wide`.
The table is validated before it is written, and written atomically. On bad input the command
prints why and exits with status 2, writing nothing.
"""

import sys

import hydra
from omegaconf import DictConfig

from climb_bayes.cli import check_command_line
from climb_bayes.errors import InputError, exits_on_input_error
from climb_bayes.pilots import (
    design_warnings,
    from_wide,
    read_table,
    validate_pilots,
    write_pilots,
)


def _required(cfg: DictConfig, key: str) -> str:
    """A path option that must be given."""
    value = cfg.get(key)
    if value is None:
        raise InputError(f"no {key}=PATH given. Usage: python -m climb_bayes.convert "
                         f"mixtures=A.csv losses=B.csv tokens=1e9 output=pilots.csv")
    return str(value)


def _budget(value: object) -> float | None:
    """The ``tokens`` option as a number, or None."""
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError) as error:
        raise InputError(f"tokens={value!r} is not a number; give the training budget of the "
                         f"runs, e.g. tokens=1e9.") from error


@hydra.main(config_path="../conf", config_name="convert", version_base="1.3")
@exits_on_input_error
def main(cfg: DictConfig) -> None:
    """Read the two wide tables, convert, validate, write the pilot table, print design warnings."""
    mixtures, losses, output = (_required(cfg, key) for key in ("mixtures", "losses", "output"))
    frame = from_wide(read_table(mixtures), read_table(losses), tokens=_budget(cfg.tokens),
                      run_id_column=cfg.run_id_column, normalise=bool(cfg.normalise),
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
