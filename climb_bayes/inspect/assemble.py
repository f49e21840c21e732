"""A report from its inputs: the settings of ``python -m climb_bayes.report``, the posterior, the
posteriors of other interaction forms beside it and the mix directory read (all checks first),
every section drawn, and the page and its figures written."""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import arviz as az
from omegaconf import DictConfig

from climb_bayes.cli import budget, count, schema_keys
from climb_bayes.decide.mix_directory import MixDirectory, read_mix_directory
from climb_bayes.inspect.html_page import health_banner, render_figures, render_html, write_report
from climb_bayes.inspect.mix_directory import decision_budget
from climb_bayes.inspect.report_config import ReportConfig
from climb_bayes.inspect.sections import (
    Section,
    checks_section,
    decision_section,
    health_section,
    scaling_section,
    transfer_section,
)
from climb_bayes.model.posterior import Posterior, read_posterior


def other_forms(path: str | Path, form: str, allow_broken: bool = False
                ) -> dict[str, az.InferenceData]:
    """Posteriors of the other interaction forms beside ``path`` (``posterior_<form>.nc``);
    one from a broken fit is refused unless ``allow_broken``."""
    path = Path(path)
    found = {}
    for file in sorted(path.parent.glob("posterior_*.nc")):
        if file.resolve() == path.resolve():
            continue
        other = read_posterior(file, allow_broken=allow_broken)
        if other.law.form != form:
            found[other.law.form] = other.idata
    return found


@dataclass(frozen=True)
class ReportSettings:
    """The report's settings besides the paths, checked; each default is that of its key in
    :class:`~climb_bayes.inspect.report_config.ReportConfig` (where its meaning is explained)."""

    tokens: float | None = ReportConfig.tokens
    forest_pairs: int = ReportConfig.forest_pairs
    health_pairs: int = ReportConfig.health_pairs
    ppc_draws: int = ReportConfig.ppc_draws
    seed: int = ReportConfig.seed

    @classmethod
    def from_config(cls, cfg: DictConfig) -> "ReportSettings":
        """The settings of ``cfg`` (typed by :class:`ReportConfig`), each checked (an
        InputError naming its key)."""
        schema_keys(cfg)
        return cls(
            tokens=None if cfg.tokens is None else budget(cfg.tokens),
            forest_pairs=count(cfg.forest_pairs, "forest_pairs",
                               "number of coefficients in the forest plot", "forest_pairs=20"),
            health_pairs=count(cfg.health_pairs, "health_pairs",
                               "number of coefficients in the trace plots", "health_pairs=4",
                               minimum=0),
            ppc_draws=count(cfg.ppc_draws, "ppc_draws", "number of replicated data sets",
                            "ppc_draws=50"),
            seed=count(cfg.seed, "seed", "seed", "seed=0", minimum=0))


def build_sections(posterior: Posterior, others: Mapping[str, az.InferenceData],
                   mixes: MixDirectory | None, settings: ReportSettings = ReportSettings()
                   ) -> list[Section]:
    """Every section of the report, figures drawn in memory (nothing is written)."""
    target = decision_budget(mixes, settings.tokens) if mixes is not None else settings.tokens
    tokens = target or posterior.law.reference
    sections = [
        health_section(posterior.idata, settings.health_pairs),
        scaling_section(posterior, target),
        transfer_section(posterior.idata, tokens, settings.forest_pairs),
        checks_section(posterior.idata, others, posterior.law.form, settings.ppc_draws,
                       settings.seed),
    ]
    if mixes is None:
        sections.append(Section("The decision", "No mix directory was given (mixes=DIR, "
                                "written by `python -m climb_bayes.solve`): this section is "
                                "skipped."))
    else:
        sections.append(decision_section(posterior, mixes))
    if target is None:
        sections[2].notes.append(f"no target budget given (tokens=N): transfer is shown at "
                                 f"the reference budget D_ref = {tokens:.3g} tokens.")
    return sections


def make_report(posterior_path: str | Path, mixes_path: str | Path | None,
                output: str | Path, settings: ReportSettings = ReportSettings(),
                allow_broken: bool = False) -> Path:
    """Read the inputs (all checks first), draw every section, write the files. A posterior
    (or another form's beside it) from a broken fit is refused unless ``allow_broken``; the
    page opens with the fit's verdict (:func:`climb_bayes.inspect.html_page.health_banner`)."""
    posterior = read_posterior(posterior_path, allow_broken=allow_broken)
    mixes = (read_mix_directory(mixes_path, posterior.sources, posterior.targets)
             if mixes_path else None)
    others = other_forms(posterior_path, posterior.law.form, allow_broken)
    sections = build_sections(posterior, others, mixes, settings)
    figures = render_figures(sections)
    header = (f"Posterior {posterior_path} ({posterior.law.form} form; {len(posterior.nu)} draws; "
              f"training languages {', '.join(posterior.sources)}; evaluated languages "
              f"{', '.join(posterior.targets)}; D_ref = {posterior.law.reference:.3g} tokens)"
              + (f"; mixes from {mixes_path}." if mixes_path else "."))
    page = render_html(sections, figures, "climb_bayes posterior report", header,
                       health_banner(posterior.health))
    return write_report(output, figures, page)
