"""A report a person can read, without Jupyter: ``python -m climb_bayes.report``.

``python -m climb_bayes.report posterior=DIR/posterior.nc mixes=MIXDIR output=OUT`` writes the
figures of :mod:`climb_bayes.inspect` as PNG files in ``OUT`` and one HTML page,
``OUT/report.html``, with every figure embedded (and linked to its PNG) and the tables, so the
page can be shared alone. The page opens with the fit's health verdict
(:mod:`climb_bayes.model.health`): a green line when healthy, an amber box when marginal, a red one
when broken; a broken fit's posterior is refused (exit 2) unless ``allow_broken=true``. A
figure that its input leaves empty (chains that never moved, draws that are not numbers) is
left out, with a note saying why. Sections, each with a sentence on how to read it:

1. sampling health: ``az.summary``, per-chain sampler statistics, rank, trace and energy plots;
2. the scaling laws: pilot losses against the fitted curves with 50/90% bands;
3. cross-lingual transfer: heatmap of the posterior mean of ``alpha_{j->i}`` at a budget, with
   ``P(alpha > 0)``, and a forest plot of the largest coefficients;
4. checks: posterior predictive checks, PSIS-LOO with Pareto k, and ``az.compare`` of the
   interaction forms when ``posterior_<form>.nc`` for another form lies beside the posterior;
5. the decision (only with ``mixes=DIR``, a directory written by ``python -m climb_bayes.solve``),
   as the solver wrote it (:mod:`climb_bayes.inspect.decision`; nothing is computed again):
   each mix's per-language predicted loss with 90% intervals and its loss minus the reference
   mix's, draw by draw, the posterior of each language's optimal share, each mix's gain over the
   reference and ``P(gain > delta)``, and the recommendation.

A mix directory holds ``<name>.yaml`` mix files (:class:`climb_bayes.decide.mix_file.MixFile`:
the target budget is read from them when ``tokens`` is not given, and the language weights),
and the solver's tables (:mod:`climb_bayes.decide.mix_directory`); mixes written by hand carry
no decision, and the section says so. Bad input (no posterior, no mixes in the directory, a mix
naming a language the posterior does not know) exits with status 2 before anything is written.

This module is the command line only: :func:`climb_bayes.inspect.assemble.make_report` reads
the inputs and writes the report.
"""

import hydra
import matplotlib
from omegaconf import DictConfig

import climb_bayes.config_store  # noqa: F401  (registers report_schema before Hydra starts)
from climb_bayes.cli import output_directory
from climb_bayes.errors import exits_on_input_error
from climb_bayes.inspect.assemble import ReportSettings, make_report
from climb_bayes.overrides import check_command_line


@hydra.main(config_path="../conf", config_name="report", version_base="1.3")
@exits_on_input_error
def main(cfg: DictConfig) -> None:
    """Write the report of ``cfg.posterior`` (and ``cfg.mixes``) into ``cfg.output``."""
    settings = ReportSettings.from_config(cfg)
    output = output_directory(cfg.output, "output", "runs/report", "PNG files and report.html")
    matplotlib.use("Agg")
    page = make_report(cfg.posterior, cfg.mixes, output, settings,
                       allow_broken=cfg.allow_broken)
    print(f"wrote {page}")


if __name__ == "__main__":
    check_command_line("report")
    main()
