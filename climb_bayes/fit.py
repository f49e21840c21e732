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
Overrides follow Hydra: ``sampler.chains=2 model=self_saturating``.
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
from climb_bayes.data.pilot_table import PilotTable, design_warnings, read_pilots
from climb_bayes.errors import InputError, exits_on_input_error
from climb_bayes.io import atomic_path, write_text
from climb_bayes.model.health import (
    BROKEN,
    HEALTHY,
    Health,
    assess,
    left_to_prior,
    rank,
    store,
    stored_health,
)
from climb_bayes.model.inference import chain_starts, find_map, reparameterised, run_nuts
from climb_bayes.model.law import INTERACTION_FORMS, self_map
from climb_bayes.model.numpyro_model import (
    CENTRED,
    PARAMETER_SITES,
    POOLED_SITES,
    ModelData,
    Priors,
    anchor_tokens,
    budget_knots,
    climb_model,
    reference_tokens,
    typical_share,
)
from climb_bayes.model.posterior import constant_data, dims_and_coords, provenance, save_posterior

log = logging.getLogger(__name__)

#: Exit status of a broken fit (and of a marginal one under ``strict=true``).
DIAGNOSTICS_STATUS = 3
#: Number of prior draws stored in the ``prior`` and ``prior_predictive`` groups.
PRIOR_DRAWS = 500


def bundled_example() -> Path:
    """The example pilot table shipped with the package."""
    return Path(str(resources.files("climb_bayes") / "data" / "example" / "pilots.csv"))


def model_data(table: PilotTable, run_effect: bool = True
               ) -> tuple[ModelData, jax.Array, float]:
    """The model's inputs, the observed losses and ``D_ref`` from a validated pilot table; with
    ``run_effect``, a run effect when some run has several checkpoints."""
    arrays = table.arrays()
    reference = reference_tokens(arrays.point_tokens)
    loss_scale = np.array([np.median(arrays.loss[arrays.obs_target == t])
                           for t in range(len(table.targets))])
    point_shares = arrays.run_shares[arrays.point_run]
    sources_targets = self_map(table.sources, table.targets)
    knots, point_knot = budget_knots(arrays.point_tokens / reference)
    anchor = anchor_tokens(point_shares, arrays.point_tokens / reference, arrays.obs_point,
                           arrays.obs_target, sources_targets)
    data = ModelData(
        shares=jnp.asarray(point_shares, dtype=jnp.float32),
        tokens_scaled=jnp.asarray(arrays.point_tokens / reference, dtype=jnp.float32),
        obs_point=jnp.asarray(arrays.obs_point), obs_target=jnp.asarray(arrays.obs_target),
        self_map=jnp.asarray(sources_targets),
        loss_scale=jnp.asarray(loss_scale, dtype=jnp.float32),
        anchor=jnp.asarray(anchor, dtype=jnp.float32),
        typical_share=jnp.asarray(typical_share(arrays.run_shares), dtype=jnp.float32),
        knots=jnp.asarray(knots, dtype=jnp.float32), point_knot=jnp.asarray(point_knot),
        point_run=jnp.asarray(arrays.point_run),
        run_count=(len(arrays.run_ids)
                   if run_effect and np.bincount(arrays.point_run).max() > 1 else 0),
    )
    return data, jnp.asarray(arrays.loss, dtype=jnp.float32), reference


@dataclass(frozen=True)
class Sampler:
    """NUTS and MAP settings (``sampler`` in ``conf/fit.yaml``)."""

    chains: int = 4
    warmup: int = 1000
    samples: int = 2000
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


#: Pooled sites whose best parameterisation depends on the pilots: non-centred suits pairs
#: the pilots barely inform (spreads near zero, languages alike), centred suits pairs they pin
#: down. The refit of a broken fit samples them the other way.
REFIT_SITES = ("a_pair", "k_pair")


def fit_posterior(table: PilotTable, priors: Priors, form: str, sampler: Sampler,
                  centred: tuple[str, ...] = CENTRED, config_yaml: str = "",
                  extrapolation_sd: float = 0.0) -> az.InferenceData:
    """MAP from several starts, then NUTS from the Laplace approximation; full InferenceData
    with its health verdict (:mod:`climb_bayes.model.health`) in ``posterior.attrs``.

    With ``sampler.refit``, a broken fit is sampled again with the transfer pairs
    (``REFIT_SITES``) in the other parameterisation (centred if they were non-centred, and
    the reverse), and the fit with the better verdict is kept (on a tie, the lower worst
    R-hat, a non-finite one counting as worst); ``posterior.attrs["centred"]`` records the
    sites it centred. ``extrapolation_sd`` (nats per e-fold beyond the largest pilot budget,
    >= 0) is stored with the posterior for
    :meth:`climb_bayes.model.loss_model.Law.extrapolation_error`.
    """
    form, centred, extrapolation_sd = model_settings(form, centred, extrapolation_sd)
    data, loss, reference = model_data(table, priors.run_sd_fraction > 0)
    uninformed = uninformed_sites(data)
    centred = tuple(site for site in centred if site not in uninformed)
    idata = sample_posterior(table, data, loss, priors, form, sampler, centred)
    health = assess(idata)
    switched = tuple(sorted(set(centred).symmetric_difference(REFIT_SITES)
                            - set(uninformed), key=POOLED_SITES.index))
    if sampler.refit and health.verdict == BROKEN:
        log.warning("the fit is %s with %s centred; sampling again with %s centred",
                    health.line, list(centred), list(switched))
        again = sample_posterior(table, data, loss, priors, form, sampler, switched)
        health_again = assess(again)
        keep = better(health_again, health)
        log.warning("refit: %s; keeping the %s fit", health_again.line,
                    "second" if keep else "first")
        if keep:
            idata, centred, health = again, switched, health_again
    idata.posterior.attrs.update(provenance(table, reference, form, priors.nu, config_yaml,
                                            extrapolation_sd, centred))
    store(idata, health)
    return idata


#: What ``checkpoints`` in ``conf/fit.yaml`` may say: which rows of each run the fit uses.
CHECKPOINTS = {"final": "each run's last checkpoint only",
               "all": "every checkpoint, as the loss a run of that budget would reach"}


def pilot_rows(table: PilotTable, checkpoints: str) -> PilotTable:
    """The rows the fit conditions on: with ``checkpoints="final"`` each run's last checkpoint
    (:meth:`PilotTable.final_of_run`), with ``"all"`` every row. A mid-run checkpoint under a
    decaying learning rate is not the loss a run of that budget reaches (measured in
    ``docs/checkpoints.md``), so ``final`` is the default; ``all`` suits tables whose runs
    share one long schedule and have no shorter siblings (published checkpoint series)."""
    if checkpoints == "all":
        return table
    final = table.final_of_run()
    dropped = len(table.frame) - len(final.frame)
    if dropped:
        log.info("using each run's final checkpoint: %d of %d rows are mid-run checkpoints "
                 "and are left out (checkpoints=all uses them)", dropped, len(table.frame))
    return final


def uninformed_sites(data: ModelData) -> tuple[str, ...]:
    """Pooled sites the pilots cannot inform, sampled non-centred whatever ``model.centred``
    says: ``k_pair`` when every pilot has the same budget, since ``k`` multiplies
    ``D_ref / D - 1 = 0`` there. Its posterior is then its prior, a funnel between ``k_tau``
    and the pairs that centred NUTS cannot enter, and that a non-centred one samples freely."""
    tokens = np.asarray(data.tokens_scaled)
    if np.allclose(tokens, tokens[0], rtol=1e-6):
        log.info("every pilot has the same budget, so k (how transfer changes with budget) "
                 "is left to its prior and sampled non-centred")
        return ("k_pair",)
    return ()


def better(candidate: Health, incumbent: Health) -> bool:
    """Whether ``candidate`` is the better fit: a better verdict, or the same verdict and a
    lower worst R-hat (NaN, from a chain that never moved, counts as infinitely bad)."""
    def key(health: Health) -> tuple[int, float]:
        r_hat = health.max_r_hat if np.isfinite(health.max_r_hat) else np.inf
        return rank(health), r_hat
    return key(candidate) < key(incumbent)


def sample_posterior(table: PilotTable, data: ModelData, loss: jax.Array, priors: Priors,
                     form: str, sampler: Sampler, centred: tuple[str, ...]) -> az.InferenceData:
    """One MAP + NUTS run (``data`` and ``loss`` from :func:`model_data`) with the pooled
    sites in ``centred`` centred: the InferenceData without provenance attributes."""
    model_kwargs = {"data": data, "priors": priors, "form": form, "centred": centred}
    keys = jax.random.split(jax.random.PRNGKey(sampler.seed), 4)
    non_centred = {**model_kwargs, "loss": loss, "centred": ()}  # where a mode exists
    optima = find_map(climb_model, non_centred, keys[0], sampler.map_starts,
                      sampler.map_max_iter)
    log.info("MAP potential energy of the %d starts (non-centred): %s", sampler.map_starts,
             np.array2string(optima.potential, precision=1))
    optima = reparameterised(optima, climb_model, non_centred, {**model_kwargs, "loss": loss})
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
            "priors in conf/model/; pilots that vary what they govern would pin them down.")


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
    compare, strict = flag(cfg.compare_forms, "compare_forms"), flag(cfg.strict, "strict")
    keep_broken = flag(cfg.keep_broken, "keep_broken")
    output = output_directory(cfg.output, "output", "runs/fit",
                              "posterior.nc, summary.csv and config.yaml")
    priors = Priors.from_mapping(OmegaConf.to_container(cfg.model.priors))
    numpyro.set_host_device_count(max(sampler.chains, 1))
    table = pilot_rows(read_pilots(cfg.pilots or bundled_example()),
                       choice(cfg.checkpoints, "checkpoints", CHECKPOINTS))
    for warning in design_warnings(table):
        log.warning(warning)
    config_yaml = OmegaConf.to_yaml(cfg)
    forms = [chosen] + ([f for f in INTERACTION_FORMS if f != chosen] if compare else [])
    posteriors, verdicts = {}, {}
    for form in forms:
        start = time.perf_counter()
        idata = fit_posterior(table, priors, form, sampler, centred, config_yaml,
                              extrapolation_sd)
        health = stored_health(idata)
        verdicts[form] = health
        log.info("%s form. %s", form, sampling_report(idata, health,
                                                      time.perf_counter() - start))
        if (left := prior_report(idata)) is not None:
            log.info("%s form: %s", form, left)
        print(f"fit health ({form}): {health.line}")
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
