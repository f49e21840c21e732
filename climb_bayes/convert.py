"""Convert published pilot results into a pilot table.

``python -m climb_bayes.convert mixtures=A.csv losses=B.csv tokens=1e9 output=pilots.csv``
converts the wide layout (RegMix; :func:`climb_bayes.data.wide_layout.from_wide`), and
``python -m climb_bayes.convert log=data/RedPajama/70M.txt output=pilots.csv`` a checkpoint
log of Data Mixing Laws (:mod:`climb_bayes.data.checkpoint_log`). The keys, their types,
defaults and meaning are those of :class:`climb_bayes.data.convert_config.ConvertConfig`.
The table is validated before it is written, and written atomically. On bad input the command
prints why and exits with status 2, writing nothing.
"""

import sys

import hydra
from omegaconf import DictConfig

import climb_bayes.config_store  # noqa: F401  (registers convert_schema before Hydra starts)
from climb_bayes.cli import budget, names, output_file, positive, required, schema_keys
from climb_bayes.data.checkpoint_log import read_checkpoint_log
from climb_bayes.data.designs import design_warnings
from climb_bayes.data.table_files import read_table, table_kind, write_pilots
from climb_bayes.data.validation import validate_pilots
from climb_bayes.data.wide_layout import from_wide
from climb_bayes.errors import InputError, exits_on_input_error
from climb_bayes.overrides import check_command_line

#: The command line, for messages.
USAGE = ("python -m climb_bayes.convert mixtures=A.csv losses=B.csv tokens=1e9 "
         "output=pilots.csv (or log=70M.txt output=pilots.csv)")


@hydra.main(config_path="../conf", config_name="convert", version_base="1.3")
@exits_on_input_error
def main(cfg: DictConfig) -> None:
    """Read the published results, convert, validate, write the pilot table, print design
    warnings (``cfg`` typed by :class:`~climb_bayes.data.convert_config.ConvertConfig`)."""
    schema_keys(cfg)
    output = output_file(required(cfg, "output", "pilot table to write", USAGE), "output",
                         "pilots.csv")
    table_kind(output)
    if cfg.log is not None:
        if cfg.mixtures is not None or cfg.losses is not None:
            raise InputError("give either log=... (a checkpoint log) or mixtures=... and "
                             "losses=... (the wide layout), not both.")
        sources = (None if cfg.sources is None else
                   names(cfg.sources, "sources", "training domain", "sources=[arxiv,book]"))
        tokens_per_step = positive(cfg.tokens_per_step, "tokens_per_step",
                                   "tokens per optimiser step", "tokens_per_step=1048576")
        frame = read_checkpoint_log(cfg.log, sources, tokens_per_step, cfg.normalise)
        where = f"the table converted from {cfg.log}"
    else:
        mixtures, losses = (str(required(cfg, key, f"{key} table (CSV or Parquet)", USAGE))
                            for key in ("mixtures", "losses"))
        tokens = None if cfg.tokens is None else budget(cfg.tokens, example="tokens=1e9")
        frame = from_wide(read_table(mixtures), read_table(losses), tokens=tokens,
                          run_id_column=cfg.run_id_column, normalise=cfg.normalise,
                          paths=(mixtures, losses))
        where = f"the table converted from {mixtures} and {losses}"
    table = validate_pilots(frame, path=where)
    write_pilots(table.frame, output)
    for warning in design_warnings(table):
        print(f"warning: {warning}", file=sys.stderr)
    print(f"wrote {output}: {len(table.frame)} rows, {table.frame['run_id'].nunique()} runs, "
          f"{len(table.sources)} training and {len(table.targets)} evaluated languages")


if __name__ == "__main__":
    check_command_line("convert")
    main()
