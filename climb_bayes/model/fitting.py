"""From a pilot table to a posterior: the model's inputs, MAP starts, NUTS and the refit.

:func:`fit_posterior` is what ``python -m climb_bayes.fit`` runs for each interaction form:
the model's inputs from a validated pilot table (:func:`model_data`), a MAP estimate from several
starts and NUTS started from it (:mod:`climb_bayes.model.inference`), the health verdict
(:mod:`climb_bayes.model.health`), and, for a broken fit, one refit with the transfer pairs in the
other parameterisation. The result is a full ArviZ InferenceData
(:mod:`climb_bayes.model.posterior`).
"""
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import partial

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
from omegaconf import DictConfig

from climb_bayes.cli import choice, count, flag, names, number, positive
from climb_bayes.data.pilot_table import PilotTable
from climb_bayes.errors import InputError
from climb_bayes.model.health import BROKEN, Health, assess, rank, store
from climb_bayes.model.inference import (
    centredness,
    chain_starts,
    reparameterised,
    run_nuts,
)
from climb_bayes.model.law import INTERACTION_FORMS, self_map
from climb_bayes.model.map_search import find_map
from climb_bayes.model.numpyro_model import (
    CENTRED,
    POOLED_SITES,
    ModelData,
    anchor_tokens,
    budget_knots,
    climb_model,
    decentred,
    reference_tokens,
    typical_share,
)
from climb_bayes.model.posterior import inference_data, posterior_from_idata, provenance
from climb_bayes.model.priors import Priors
from climb_bayes.model.run_effect import run_slots
from climb_bayes.model.share_error import measure_share_error

log = logging.getLogger(__name__)


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
    with_effect = run_effect and np.bincount(arrays.point_run).max() > 1
    slots, lag = (run_slots(arrays.point_run[arrays.obs_point], arrays.point_tokens[
        arrays.obs_point], arrays.obs_target) if with_effect
        else (np.zeros((0, 0), int), np.zeros(len(arrays.loss))))
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
        run_count=len(arrays.run_ids) if with_effect else 0,
        run_slots=jnp.asarray(slots), obs_lag=jnp.asarray(lag, dtype=jnp.float32),
    )
    return data, jnp.asarray(arrays.loss, dtype=jnp.float32), reference


@dataclass(frozen=True)
class Sampler:
    """NUTS and MAP settings: ``sampler`` of ``python -m climb_bayes.fit`` (registered with
    Hydra by :mod:`climb_bayes.config_store`; this class is where the defaults live,
    ``sampler.<key>=...`` overrides one)."""

    chains: int = 4
    # a quarter, then a half, re-estimate the mass matrix from all chains' draws
    warmup: int = 1000
    # 1500 left the bundled example's min tail ESS at 308 (eta[es]); 2000: >= 1450 (seeds 0, 1)
    samples: int = 2000
    seed: int = 0
    # 0.9 left a few divergences on the E-B-beta ridge at m = 16
    target_accept: float = 0.95
    # false: a diagonal mass matrix (the variances of those draws)
    dense_mass: bool = True
    max_tree_depth: int = 10
    # L-BFGS starts for the MAP estimate that initialises the chains
    map_starts: int = 8
    # L-BFGS iterations before the polish with the exact Hessian (map_search.find_map)
    map_max_iter: int = 3000
    # chains start from optima within this many nats of the best one
    map_tolerance: float = 5.0
    progress_bar: bool = True
    # a broken fit with centred transfer pairs: sample again with them non-centred and keep
    # the one with the better health verdict
    refit: bool = True
    # centre each pooled value as far as the MAP's Laplace approximation says the pilots pin
    # it down (climb_bayes.model.inference.centredness); false: non-centred, as law.centred says
    partial_centring: bool = True

    @classmethod
    def from_config(cls, cfg: DictConfig) -> "Sampler":
        """The ``sampler`` settings of the fit's configuration, each checked (an InputError
        naming its key)."""
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
            refit=flag(cfg.refit, "sampler.refit"),
            partial_centring=flag(cfg.partial_centring, "sampler.partial_centring"))


def model_settings(form: str, centred: Iterable[str], extrapolation_sd: float,
                   share_sd: float | None = None, share_sd_growth: float | None = None
                   ) -> tuple[str, tuple[str, ...], float, float | None, float | None]:
    """The interaction form, the centred sites and the law's error beyond the pilots (``law``
    of the fit's configuration, :class:`climb_bayes.config_store.LawConfig`), checked: an
    InputError naming the key otherwise."""
    form = choice(form, "law.form", INTERACTION_FORMS)
    centred = tuple(names(centred, "law.centred", "pooled site", "law.centred=[log_beta]",
                          minimum=0))
    unknown = sorted(set(centred) - set(POOLED_SITES))
    if unknown:
        raise InputError(f"law.centred names unknown sites {unknown}; choose from "
                         f"{list(POOLED_SITES)}.")
    extrapolation_sd = number(extrapolation_sd, "law.extrapolation_sd",
                              "law's error beyond the pilots (nats per e-fold)",
                              "law.extrapolation_sd=0.05", at_least=0.0)
    if share_sd is not None:
        share_sd = number(share_sd, "law.share_sd", "law's error at a share of 0",
                          "law.share_sd=0.3", at_least=0.0)
    if share_sd_growth is not None:
        share_sd_growth = number(share_sd_growth, "law.share_sd_growth",
                                 "growth of the law's error per e-fold below the pilots' shares",
                                 "law.share_sd_growth=0.1", at_least=0.0)
    return form, centred, extrapolation_sd, share_sd, share_sd_growth


#: Pooled sites whose best parameterisation depends on the pilots: non-centred suits pairs
#: the pilots barely inform (spreads near zero, languages alike), centred suits pairs they pin
#: down. The refit of a broken fit samples them the other way.
REFIT_SITES = ("a_pair", "k_pair")


def fit_posterior(table: PilotTable, priors: Priors, form: str, sampler: Sampler,
                  centred: tuple[str, ...] = CENTRED, config_yaml: str = "",
                  extrapolation_sd: float = 0.0, zero_share: PilotTable | None = None,
                  share_sd: float | None = None, share_sd_growth: float | None = None
                  ) -> az.InferenceData:
    """MAP from several starts, then NUTS from the Laplace approximation; full InferenceData
    with its health verdict (:mod:`climb_bayes.model.health`) in ``posterior.attrs``.

    With ``sampler.refit``, a broken fit is sampled again with the transfer pairs
    (``REFIT_SITES``) in the other parameterisation (centred if they were non-centred, and
    the reverse; with ``sampler.partial_centring``, each value's choice reversed), and the fit
    with the better verdict is kept (on a tie, the lower worst
    R-hat, a non-finite one counting as worst); ``posterior.attrs["centred"]`` records the
    sites it centred. ``extrapolation_sd`` (nats per e-fold beyond the largest pilot budget,
    >= 0) is stored with the posterior for
    :meth:`climb_bayes.model.loss_model.Law.extrapolation_error`. ``zero_share``, the losses
    at a share of 0 the fit leaves out (:func:`climb_bayes.model.share_error.zero_share_rows`),
    measures the law's error below the pilots' shares (``posterior.attrs["share_sd"]`` and
    ``["share_sd_growth"]``, :mod:`climb_bayes.model.share_error`) unless ``share_sd`` or
    ``share_sd_growth`` fixes it.
    """
    form, centred, extrapolation_sd, share_sd, share_sd_growth = model_settings(
        form, centred, extrapolation_sd, share_sd, share_sd_growth)
    data, loss, reference = model_data(table, priors.run_sd_fraction > 0)
    uninformed = uninformed_sites(data)
    centred = tuple(site for site in centred if site not in uninformed)
    idata = sample_posterior(table, data, loss, priors, form, sampler, centred)
    health = assess(idata)
    flip = tuple(site for site in REFIT_SITES if site not in uninformed)
    partial = sampler.partial_centring and not set(flip) & set(centred)
    switched = centred if partial else tuple(sorted(
        set(centred).symmetric_difference(REFIT_SITES) - set(uninformed), key=POOLED_SITES.index))
    if sampler.refit and health.verdict == BROKEN:
        log.warning("the fit is %s with %s centred; sampling again with %s", health.line,
                    list(centred), f"the centring of {list(flip)} flipped value by value"
                    if partial else f"{list(switched)} centred")
        again = sample_posterior(table, data, loss, priors, form, sampler, switched,
                                 flip if partial else ())
        health_again = assess(again)
        keep = better(health_again, health)
        log.warning("refit: %s; keeping the %s fit", health_again.line,
                    "second" if keep else "first")
        if keep:
            idata, centred, health = again, switched, health_again
    nu = np.inf if data.run_count else priors.nu  # with a run effect the noise is Gaussian
    idata.posterior.attrs.update(provenance(table, reference, form, nu, config_yaml,
                                            extrapolation_sd, centred))
    store(idata, health)
    idata.posterior.attrs.update(measure_share_error(
        posterior_from_idata(idata, allow_broken=True), zero_share, share_sd, share_sd_growth))
    return idata


#: What ``checkpoints`` in ``conf/fit.yaml`` may say: which rows of each run the fit uses.
CHECKPOINTS = {"final": "each run's last checkpoint only",
               "all": "every checkpoint, as the loss a run of that budget would reach"}
#: What ``untrained`` in ``conf/fit.yaml`` may say: whether the fit uses the losses of a
#: training language on runs with none of it (:meth:`PilotTable.untrained`).
UNTRAINED = {"drop": "leave them out (the law does not describe them)",
             "keep": "fit them like every other loss"}


def pilot_rows(table: PilotTable, checkpoints: str = "final", untrained: str = "drop"
               ) -> PilotTable:
    """The rows the fit conditions on (the defaults are those of ``conf/fit.yaml``).

    ``checkpoints``: with ``"final"`` each run's last checkpoint
    (:meth:`PilotTable.final_of_run`), with ``"all"`` every row. A mid-run checkpoint under a
    decaying learning rate is not the loss a run of that budget reaches (measured in
    ``docs/checkpoints.md``), so ``final`` is the default; ``all`` suits tables whose runs
    share one long schedule and have no shorter siblings (published checkpoint series).

    ``untrained``: with ``"drop"`` the losses of a training language on a run with none of it
    (:meth:`PilotTable.untrained`: the monolingual pilots evaluated on the other languages)
    are left out; ``"keep"`` fits them. On real pilots those losses sit at or above the
    uniform guess and several rise with the budget, which no law of effective data describes;
    fitted, they set the languages' noise and split the transfer into modes, and given their
    own noise the transfer pairs interpolate them (``docs/model.md``, "Which losses the fit
    uses"). The transfer stays measured by the mixed pilots.
    """
    if checkpoints != "all":
        final = table.final_of_run()
        dropped = len(table.frame) - len(final.frame)
        if dropped:
            log.info("using each run's final checkpoint: %d of %d rows are mid-run "
                     "checkpoints and are left out (checkpoints=all uses them)", dropped,
                     len(table.frame))
        table = final
    if untrained == "drop":
        mask = table.untrained()
        if mask.any():
            log.info("leaving out %d of %d losses of a training language on a run with none "
                     "of it (untrained=keep fits them)", mask.sum(), len(mask))
            table = replace(table, frame=table.frame[~mask].reset_index(drop=True))
    return table


def uninformed_sites(data: ModelData) -> tuple[str, ...]:
    """Pooled sites the pilots cannot inform, sampled non-centred whatever ``law.centred``
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
                     form: str, sampler: Sampler, centred: tuple[str, ...],
                     flip: tuple[str, ...] = ()) -> az.InferenceData:
    """One MAP + NUTS run (``data`` and ``loss`` from :func:`model_data`) with the pooled
    sites in ``centred`` centred, the others partially (``sampler.partial_centring``; the
    sites in ``flip`` with each value's choice reversed): the InferenceData without
    provenance attributes."""
    model_kwargs = {"data": data, "priors": priors, "form": form, "centred": centred}
    keys = jax.random.split(jax.random.PRNGKey(sampler.seed), 4)
    non_centred = {**model_kwargs, "loss": loss, "centred": ()}  # where a mode exists
    optima = find_map(climb_model, non_centred, keys[0], sampler.map_starts,
                      sampler.map_max_iter)
    log.info("MAP potential energy of the %d starts (non-centred): %s", sampler.map_starts,
             np.array2string(optima.potential, precision=1))
    if sampler.partial_centring:
        model_kwargs["centring"] = {
            site: 1.0 - c if site in flip else c
            for site, c in centredness(optima, [s for s in POOLED_SITES if s not in centred]
                                       ).items()}
        log.info("partial centring: %s", {site: np.round(c, 2).tolist()
                                          for site, c in model_kwargs["centring"].items()})
    optima = reparameterised(optima, climb_model, non_centred, {**model_kwargs, "loss": loss},
                             partial(decentred, centring=model_kwargs.get("centring", {})))
    starts = chain_starts(optima, sampler.chains, sampler.map_tolerance,
                          np.random.default_rng(sampler.seed))
    mcmc = run_nuts(climb_model, {**model_kwargs, "loss": loss}, starts, keys[1],
                    num_warmup=sampler.warmup, num_samples=sampler.samples,
                    num_chains=sampler.chains, target_accept=sampler.target_accept,
                    dense_mass=sampler.dense_mass, max_tree_depth=sampler.max_tree_depth,
                    inverse_mass_matrix=optima.covariance, progress_bar=sampler.progress_bar)
    idata = inference_data(mcmc, {**model_kwargs, "loss": loss}, keys[2:], table, data)
    idata.posterior.attrs["centring"] = json.dumps(
        {site: np.asarray(c).tolist() for site, c in model_kwargs.get("centring", {}).items()})
    return idata
