"""Fit the posterior of the CLIMB law to a pilot table: ``python -m climb_bayes.fit``.

``python -m climb_bayes.fit pilots=PATH output=DIR`` validates the pilot table, finds a MAP
estimate from several starts, runs NUTS from it and writes ``DIR/posterior.nc`` (ArviZ
InferenceData, see :mod:`climb_bayes.model.posterior`), ``DIR/summary.csv`` (``az.summary``) and
``DIR/config.yaml``. It prints the sampler diagnostics, the fit's health verdict
(:mod:`climb_bayes.model.health`: healthy, marginal or broken; stored in ``posterior.nc``) and the
parameters the pilots leave to their priors. A broken fit is not written (``keep_broken=true``
writes it for debugging) and the command exits with status 3; ``strict=true`` exits 3 on a
marginal fit too. ``compare_forms=true`` also fits the other interaction forms, writes
``DIR/posterior_<form>.nc`` and compares all by PSIS-LOO (``DIR/model_comparison.csv``).
Overrides follow Hydra: ``sampler.chains=2 law=self_saturating law.priors.discrepancy_scale=0``.
The defaults of ``sampler`` and ``law`` live in dataclasses registered with Hydra by
:mod:`climb_bayes.config_store` (imported here, before Hydra starts).
"""
import logging
import sys
import time
import warnings
from importlib import resources
from pathlib import Path

import arviz as az
import hydra
import numpy as np
import numpyro
import pandas as pd
from omegaconf import DictConfig, OmegaConf

import climb_bayes.config_store  # noqa: F401  (registers fit_schema before Hydra starts)
from climb_bayes.cli import choice, flag, output_directory
from climb_bayes.data.designs import design_warnings
from climb_bayes.data.table_files import read_pilots
from climb_bayes.errors import exits_on_input_error
from climb_bayes.io import atomic_path, write_text
from climb_bayes.model.fitting import (
    CHECKPOINTS,
    UNTRAINED,
    Sampler,
    fit_posterior,
    model_settings,
    pilot_rows,
)
from climb_bayes.model.health import (
    BROKEN,
    HEALTHY,
    Health,
    left_to_prior,
    stored_health,
)
from climb_bayes.model.law import INTERACTION_FORMS
from climb_bayes.model.numpyro_model import PARAMETER_SITES
from climb_bayes.model.posterior import save_posterior
from climb_bayes.model.priors import Priors
from climb_bayes.model.share_error import zero_share_rows
from climb_bayes.overrides import check_command_line

log = logging.getLogger(__name__)

#: Exit status of a broken fit (and of a marginal one under ``strict=true``).
DIAGNOSTICS_STATUS = 3


def bundled_example() -> Path:
    """The example pilot table shipped with the package."""
    return Path(str(resources.files("climb_bayes") / "data" / "example" / "pilots.csv"))


def parameter_summary(idata: az.InferenceData) -> pd.DataFrame:
    """``az.summary`` of the law's parameters and ``sigma``; entries fixed by construction
    (``a`` and ``k`` on the diagonal) have zero spread and are left out."""
    names = [name for name in PARAMETER_SITES if name in idata.posterior]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # constant entries: 0 / 0
        summary = az.summary(idata, var_names=names)
    return summary[summary["sd"] > 0]


def sampling_report(idata: az.InferenceData, health: Health, seconds: float) -> str:
    """One paragraph: time, draws, divergences, R-hat, ESS, E-BFMI and tree size."""
    stats = idata.sample_stats
    tree_depth = np.log2(np.asarray(stats["n_steps"]) + 1)
    return (f"NUTS: {stats.sizes['chain']} chains x {stats.sizes['draw']} draws in "
            f"{seconds:.0f} s (including MAP and compilation); "
            f"{health.divergences} divergences; max R-hat {health.max_r_hat:.3f}; "
            f"min bulk ESS {health.min_ess_bulk:.0f}; min tail ESS {health.min_ess_tail:.0f}; "
            f"min E-BFMI {health.min_bfmi:.2f}; "
            f"mean tree depth {tree_depth.mean():.1f} (max {tree_depth.max():.0f}).")


def prior_report(idata: az.InferenceData) -> str | None:
    """A sentence naming the parameters the data leave to their priors, or None."""
    left = left_to_prior(idata)
    if not left:
        return None
    parts = [f"{site} ({len(entries)}: {', '.join(entries[:4])}"
             f"{f' and {len(entries) - 4} more' if len(entries) > 4 else ''})"
             for site, entries in left.items()]
    return ("the pilots leave these parameters to their priors (posterior sd >= 90% of the "
            "prior sd): " + "; ".join(parts) + ". Their values in predictions come from the "
            "priors (law.priors); pilots that vary what they govern would pin them down.")


def compare_forms(posteriors: dict[str, az.InferenceData]) -> pd.DataFrame:
    """PSIS-LOO comparison of the fitted interaction forms (``az.compare``)."""
    return az.compare(posteriors, ic="loo")


@hydra.main(config_path="../conf", config_name="fit", version_base="1.3")
@exits_on_input_error
def main(cfg: DictConfig) -> None:
    """Validate, fit, diagnose and write the posterior (see the module docstring)."""
    sampler = Sampler.from_config(cfg.sampler)
    chosen, centred, extrapolation_sd, share_sd, share_sd_growth = model_settings(
        cfg.law.form, cfg.law.centred, cfg.law.extrapolation_sd, cfg.law.share_sd,
        cfg.law.share_sd_growth)
    compare, strict = flag(cfg.compare_forms, "compare_forms"), flag(cfg.strict, "strict")
    keep_broken = flag(cfg.keep_broken, "keep_broken")
    output = output_directory(cfg.output, "output", "runs/fit",
                              "posterior.nc, summary.csv and config.yaml")
    priors = Priors.from_mapping(OmegaConf.to_container(cfg.law.priors))
    numpyro.set_host_device_count(max(sampler.chains, 1))
    pilots = read_pilots(cfg.pilots or bundled_example())
    checkpoints = choice(cfg.checkpoints, "checkpoints", CHECKPOINTS)
    untrained = choice(cfg.untrained, "untrained", UNTRAINED)
    table = pilot_rows(pilots, checkpoints, untrained)
    zero_share = zero_share_rows(pilots, checkpoints) if untrained == "drop" else None
    for warning in design_warnings(table):
        log.warning(warning)
    config_yaml = OmegaConf.to_yaml(cfg)
    forms = [chosen] + ([f for f in INTERACTION_FORMS if f != chosen] if compare else [])
    posteriors, verdicts = {}, {}
    for form in forms:
        start = time.perf_counter()
        idata = fit_posterior(table, priors, form, sampler, centred, config_yaml,
                              extrapolation_sd, zero_share, share_sd, share_sd_growth)
        health = stored_health(idata)
        verdicts[form] = health
        log.info("%s form. %s", form, sampling_report(idata, health,
                                                      time.perf_counter() - start))
        if (left := prior_report(idata)) is not None:
            log.info("%s form: %s", form, left)
        print(f"fit health ({form}): {health.line}")
        attrs = idata.posterior.attrs
        print(f"the law's error below the pilots' shares ({form}): {attrs['share_sd']:.3g} on "
              f"the log of the reducible loss at a share of 0, growing "
              f"{attrs['share_sd_growth']:.3g} per e-fold deeper than one, "
              f"{attrs['share_sd_from']}")
        name = "posterior.nc" if form == chosen else f"posterior_{form}.nc"
        if health.verdict == BROKEN and not keep_broken:
            log.error("the %s fit is broken, so %s is not written (an earlier one, if any, "
                      "is left as it was). Try more warmup (sampler.warmup), a higher "
                      "sampler.target_accept, or pilots that pin down the flagged parameters; "
                      "keep_broken=true writes it anyway for debugging.", form, output / name)
            continue
        save_posterior(idata, output / name)
        if form == chosen:
            summary = parameter_summary(idata)
            with atomic_path(output / "summary.csv") as tmp:
                summary.to_csv(tmp)
            print(summary.to_string())
        posteriors[form] = idata
    if len(posteriors) > 1:
        comparison = compare_forms(posteriors)
        with atomic_path(output / "model_comparison.csv") as tmp:
            comparison.to_csv(tmp)
        print(comparison.to_string())
    if posteriors:
        write_text(output / "config.yaml", config_yaml)
    if chosen in posteriors:
        print(f"wrote {output / 'posterior.nc'} ({verdicts[chosen].verdict})")
    if any(health.verdict == BROKEN or (strict and health.verdict != HEALTHY)
           for health in verdicts.values()):
        sys.exit(DIAGNOSTICS_STATUS)


if __name__ == "__main__":
    check_command_line("fit")
    main()
