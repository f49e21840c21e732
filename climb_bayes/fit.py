"""Fit the posterior of the CLIMB law to a pilot table: ``python -m climb_bayes.fit``.

``python -m climb_bayes.fit pilots=PATH output=DIR`` validates the pilot table, finds a MAP
estimate from several starts, runs NUTS from it and writes ``DIR/posterior.nc`` (ArviZ
InferenceData, see :mod:`climb_bayes.posterior`), ``DIR/summary.csv`` (``az.summary``) and
``DIR/config.yaml``. It prints the sampler diagnostics and warns when they fail the thresholds
(exit status 3 with ``strict=true``). ``compare_forms=true`` also fits the other interaction
forms, writes ``DIR/posterior_<form>.nc`` and compares all by PSIS-LOO
(``DIR/model_comparison.csv``). Overrides follow Hydra: ``sampler.chains=2 model=self_saturating``.
"""

import logging
import sys
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import arviz as az
import hydra
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pandas as pd
from numpyro.infer import Predictive
from omegaconf import DictConfig, OmegaConf

from climb_bayes.cli import (
    check_command_line,
    choice,
    count,
    flag,
    names,
    number,
    output_directory,
    positive,
)
from climb_bayes.errors import InputError, exits_on_input_error
from climb_bayes.inference import chain_starts, find_map, run_nuts
from climb_bayes.io import atomic_path, write_text
from climb_bayes.law import INTERACTION_FORMS, self_map
from climb_bayes.model import (
    PARAMETER_SITES,
    POOLED_SITES,
    ModelData,
    Priors,
    anchor_tokens,
    climb_model,
    reference_tokens,
)
from climb_bayes.pilots import PilotTable, design_warnings, read_pilots
from climb_bayes.posterior import constant_data, dims_and_coords, provenance, save_posterior

log = logging.getLogger(__name__)

#: Exit status under ``strict=true`` when the sampler's diagnostics fail the thresholds.
DIAGNOSTICS_STATUS = 3
#: Number of prior draws stored in the ``prior`` and ``prior_predictive`` groups.
PRIOR_DRAWS = 500


def bundled_example() -> Path:
    """The example pilot table shipped with the package."""
    return Path(str(resources.files("climb_bayes") / "data" / "example" / "pilots.csv"))


def model_data(table: PilotTable) -> tuple[ModelData, jax.Array, float]:
    """The model's inputs, the observed losses and ``D_ref`` from a validated pilot table."""
    arrays = table.arrays()
    reference = reference_tokens(arrays.point_tokens)
    loss_scale = np.array([np.median(arrays.loss[arrays.obs_target == t])
                           for t in range(len(table.targets))])
    point_shares = arrays.run_shares[arrays.point_run]
    sources_targets = self_map(table.sources, table.targets)
    anchor = anchor_tokens(point_shares, arrays.point_tokens / reference, arrays.obs_point,
                           arrays.obs_target, sources_targets)
    data = ModelData(
        shares=jnp.asarray(point_shares, dtype=jnp.float32),
        tokens_scaled=jnp.asarray(arrays.point_tokens / reference, dtype=jnp.float32),
        obs_point=jnp.asarray(arrays.obs_point), obs_target=jnp.asarray(arrays.obs_target),
        self_map=jnp.asarray(sources_targets),
        loss_scale=jnp.asarray(loss_scale, dtype=jnp.float32),
        anchor=jnp.asarray(anchor, dtype=jnp.float32),
    )
    return data, jnp.asarray(arrays.loss, dtype=jnp.float32), reference


@dataclass(frozen=True)
class Sampler:
    """NUTS and MAP settings (``sampler`` in ``conf/fit.yaml``)."""

    chains: int = 4
    warmup: int = 1000
    samples: int = 1000
    seed: int = 0
    target_accept: float = 0.95
    dense_mass: bool = True
    max_tree_depth: int = 10
    map_starts: int = 8
    map_max_iter: int = 3000
    map_tolerance: float = 5.0
    progress_bar: bool = True
    refit: bool = True

    @classmethod
    def from_config(cls, cfg: DictConfig) -> "Sampler":
        """The ``sampler`` settings of ``conf/fit.yaml``, each checked (an InputError naming
        its key)."""
        def whole(name: str, what: str, minimum: int = 1) -> int:
            return count(cfg[name], f"sampler.{name}", what,
                         f"sampler.{name}={getattr(cls, name)}", minimum)

        return cls(
            chains=whole("chains", "number of chains"),
            warmup=whole("warmup", "number of warmup draws per chain"),
            samples=whole("samples", "number of draws per chain"),
            seed=whole("seed", "seed", minimum=0),
            target_accept=number(cfg.target_accept, "sampler.target_accept",
                                 "target acceptance rate", "sampler.target_accept=0.95",
                                 above=0.0, below=1.0),
            dense_mass=flag(cfg.dense_mass, "sampler.dense_mass"),
            max_tree_depth=whole("max_tree_depth", "largest tree depth"),
            map_starts=whole("map_starts", "number of MAP starts"),
            map_max_iter=whole("map_max_iter", "number of L-BFGS iterations"),
            map_tolerance=positive(cfg.map_tolerance, "sampler.map_tolerance",
                                   "tolerance in nats", "sampler.map_tolerance=5.0"),
            progress_bar=flag(cfg.progress_bar, "sampler.progress_bar"),
            refit=flag(cfg.refit, "sampler.refit"))


def model_settings(form: str, centred: Iterable[str], extrapolation_sd: float
                   ) -> tuple[str, tuple[str, ...], float]:
    """The interaction form, the centred sites and the law's error beyond the pilots (``model``
    in ``conf/fit.yaml``), checked: an InputError naming the key otherwise."""
    form = choice(form, "model.form", INTERACTION_FORMS)
    centred = tuple(names(centred, "model.centred", "pooled site", "model.centred=[log_beta]",
                          minimum=0))
    unknown = sorted(set(centred) - set(POOLED_SITES))
    if unknown:
        raise InputError(f"model.centred names unknown sites {unknown}; choose from "
                         f"{list(POOLED_SITES)}.")
    extrapolation_sd = number(extrapolation_sd, "model.extrapolation_sd",
                              "law's error beyond the pilots (nats per e-fold)",
                              "model.extrapolation_sd=0.05", at_least=0.0)
    return form, centred, extrapolation_sd


#: Chains count as stuck when the worst R-hat exceeds this or more than ``STUCK_DIVERGENT`` of
#: the transitions diverged; ``sampler.refit`` then samples again with ``REFIT_NONCENTRED``.
STUCK_R_HAT = 1.1
STUCK_DIVERGENT = 0.05
#: Pooled sites whose spread can go to zero (languages alike, ``k`` barely informed), where
#: centred chains stick in the funnel; the refit samples them non-centred.
REFIT_NONCENTRED = ("b_pair", "k_pair")


def fit_posterior(table: PilotTable, priors: Priors, form: str, sampler: Sampler,
                  centred: tuple[str, ...] = POOLED_SITES, config_yaml: str = "",
                  extrapolation_sd: float = 0.0) -> az.InferenceData:
    """MAP from several starts, then NUTS from the Laplace approximation; full InferenceData.

    With ``sampler.refit``, chains that look stuck (:func:`chain_health`) with a centred
    transfer-pair site are sampled again with those sites non-centred, and the fit with the
    lower worst R-hat is kept; ``posterior.attrs["centred"]`` records the sites it centred.
    ``extrapolation_sd`` (nats per e-fold beyond the largest pilot budget, >= 0) is stored
    with the posterior for :func:`climb_bayes.predict.extrapolation_error`.
    """
    form, centred, extrapolation_sd = model_settings(form, centred, extrapolation_sd)
    data, loss, reference = model_data(table)
    idata = sample_posterior(table, data, loss, priors, form, sampler, centred)
    r_hat, divergent = chain_health(idata)
    fewer = tuple(site for site in centred if site not in REFIT_NONCENTRED)
    if sampler.refit and fewer != centred and (r_hat > STUCK_R_HAT
                                               or divergent > STUCK_DIVERGENT):
        log.warning("the chains look stuck (max R-hat %.3g, %.0f%% divergent) with %s "
                    "centred; sampling again with them non-centred", r_hat, 100 * divergent,
                    [site for site in centred if site in REFIT_NONCENTRED])
        again = sample_posterior(table, data, loss, priors, form, sampler, fewer)
        r_hat_again = chain_health(again)[0]
        log.warning("non-centred: max R-hat %.3g; keeping the %s fit", r_hat_again,
                    "non-centred" if r_hat_again <= r_hat else "first")
        if r_hat_again <= r_hat:
            idata, centred = again, fewer
    idata.posterior.attrs.update(provenance(table, reference, form, priors.nu, config_yaml,
                                            extrapolation_sd, centred))
    return idata


def sample_posterior(table: PilotTable, data: ModelData, loss: jax.Array, priors: Priors,
                     form: str, sampler: Sampler, centred: tuple[str, ...]) -> az.InferenceData:
    """One MAP + NUTS run (``data`` and ``loss`` from :func:`model_data`) with the pooled
    sites in ``centred`` centred: the InferenceData without provenance attributes."""
    model_kwargs = {"data": data, "priors": priors, "form": form, "centred": centred}
    keys = jax.random.split(jax.random.PRNGKey(sampler.seed), 4)
    optima = find_map(climb_model, {**model_kwargs, "loss": loss}, keys[0],
                      sampler.map_starts, sampler.map_max_iter)
    log.info("MAP potential energy of the %d starts: %s", sampler.map_starts,
             np.array2string(optima.potential, precision=1))
    starts = chain_starts(optima, sampler.chains, sampler.map_tolerance,
                          np.random.default_rng(sampler.seed))
    mcmc = run_nuts(climb_model, {**model_kwargs, "loss": loss}, starts, keys[1],
                    num_warmup=sampler.warmup, num_samples=sampler.samples,
                    num_chains=sampler.chains, target_accept=sampler.target_accept,
                    dense_mass=sampler.dense_mass, max_tree_depth=sampler.max_tree_depth,
                    inverse_mass_matrix=optima.covariance, progress_bar=sampler.progress_bar)
    posterior_predictive = Predictive(climb_model, mcmc.get_samples(), return_sites=["loss"])(
        keys[2], **model_kwargs)
    prior = Predictive(climb_model, num_samples=PRIOR_DRAWS)(keys[3], **model_kwargs)
    dims, coords = dims_and_coords(table, np.nonzero(np.asarray(data.self_map) == 0))
    return az.from_numpyro(
        mcmc, prior=prior, posterior_predictive=posterior_predictive, coords=coords, dims=dims,
        constant_data=constant_data(table, data),
    )


def chain_health(idata: az.InferenceData) -> tuple[float, float]:
    """The worst R-hat over the law's parameters and ``sigma`` (entries fixed by construction,
    whose R-hat is undefined, skipped; 1 with a single chain) and the fraction of divergent
    transitions."""
    names = [name for name in PARAMETER_SITES if name in idata.posterior]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # constant entries: 0 / 0
        r_hat = az.rhat(idata, var_names=names)
    values = np.concatenate([np.ravel(r_hat[name].values) for name in names])
    values = values[np.isfinite(values)]
    divergent = float(np.mean(idata.sample_stats["diverging"].values))
    return (float(values.max()) if values.size else 1.0), divergent


def diagnose(idata: az.InferenceData, r_hat: float, ess: float
             ) -> tuple[pd.DataFrame, list[str]]:
    """``az.summary`` of the law's parameters and the list of failed checks.

    Entries fixed by construction (``b`` and ``k`` on the diagonal) have zero spread and are
    left out of the summary.
    """
    names = [name for name in PARAMETER_SITES if name in idata.posterior]
    summary = az.summary(idata, var_names=names)
    summary = summary[summary["sd"] > 0]
    divergences = int(idata.sample_stats["diverging"].sum())
    problems = []
    if summary["r_hat"].max() > r_hat:
        worst = summary["r_hat"].idxmax()
        problems.append(f"max R-hat {summary['r_hat'].max():.3f} > {r_hat} ({worst})")
    for column in ("ess_bulk", "ess_tail"):
        if summary[column].min() < ess:
            worst = summary[column].idxmin()
            problems.append(f"min {column} {summary[column].min():.0f} < {ess} ({worst})")
    if divergences:
        problems.append(f"{divergences} divergent transitions")
    return summary, problems


def sampling_report(idata: az.InferenceData, summary: pd.DataFrame, seconds: float) -> str:
    """One paragraph: time, draws, divergences, R-hat, ESS and tree size."""
    stats = idata.sample_stats
    tree_depth = np.log2(np.asarray(stats["n_steps"]) + 1)
    return (f"NUTS: {stats.sizes['chain']} chains x {stats.sizes['draw']} draws in "
            f"{seconds:.0f} s (including MAP and compilation); "
            f"{int(stats['diverging'].sum())} divergences; "
            f"max R-hat {summary['r_hat'].max():.3f}; min bulk ESS "
            f"{summary['ess_bulk'].min():.0f}; min tail ESS {summary['ess_tail'].min():.0f}; "
            f"mean tree depth {tree_depth.mean():.1f} (max {tree_depth.max():.0f}).")


def compare_forms(posteriors: dict[str, az.InferenceData]) -> pd.DataFrame:
    """PSIS-LOO comparison of the fitted interaction forms (``az.compare``)."""
    return az.compare(posteriors, ic="loo")


@hydra.main(config_path="../conf", config_name="fit", version_base="1.3")
@exits_on_input_error
def main(cfg: DictConfig) -> None:
    """Validate, fit, diagnose and write the posterior (see the module docstring)."""
    sampler = Sampler.from_config(cfg.sampler)
    chosen, centred, extrapolation_sd = model_settings(cfg.model.form, cfg.model.centred,
                                                       cfg.model.extrapolation_sd)
    r_hat = number(cfg.thresholds.r_hat, "thresholds.r_hat", "largest acceptable R-hat",
                   "thresholds.r_hat=1.01", above=1.0)
    ess = positive(cfg.thresholds.ess, "thresholds.ess", "smallest acceptable ESS",
                   "thresholds.ess=400")
    compare, strict = flag(cfg.compare_forms, "compare_forms"), flag(cfg.strict, "strict")
    output = output_directory(cfg.output, "output", "runs/fit",
                              "posterior.nc, summary.csv and config.yaml")
    priors = Priors.from_mapping(OmegaConf.to_container(cfg.model.priors))
    numpyro.set_host_device_count(max(sampler.chains, 1))
    table = read_pilots(cfg.pilots or bundled_example())
    for warning in design_warnings(table):
        log.warning(warning)
    config_yaml = OmegaConf.to_yaml(cfg)
    forms = [chosen] + ([f for f in INTERACTION_FORMS if f != chosen] if compare else [])
    posteriors, failed = {}, False
    for form in forms:
        start = time.perf_counter()
        idata = fit_posterior(table, priors, form, sampler, centred, config_yaml,
                              extrapolation_sd)
        summary, problems = diagnose(idata, r_hat, ess)
        log.info("%s form. %s", form, sampling_report(idata, summary,
                                                      time.perf_counter() - start))
        if problems:
            failed = True
            log.warning("the %s posterior may be unreliable: %s. Try more warmup "
                        "(sampler.warmup), a higher sampler.target_accept, or pilots that "
                        "pin down the flagged parameters.", form, "; ".join(problems))
        name = "posterior.nc" if form == chosen else f"posterior_{form}.nc"
        save_posterior(idata, output / name)
        if form == chosen:
            with atomic_path(output / "summary.csv") as tmp:
                summary.to_csv(tmp)
            print(summary.to_string())
        posteriors[form] = idata
    if len(posteriors) > 1:
        comparison = compare_forms(posteriors)
        with atomic_path(output / "model_comparison.csv") as tmp:
            comparison.to_csv(tmp)
        print(comparison.to_string())
    write_text(output / "config.yaml", config_yaml)
    print(f"wrote {output / 'posterior.nc'}")
    if failed and strict:
        sys.exit(DIAGNOSTICS_STATUS)


if __name__ == "__main__":
    check_command_line("fit")
    main()
