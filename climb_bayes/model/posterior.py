"""The posterior on disk: an ArviZ InferenceData in netCDF, and reading it back.

Groups: ``posterior`` (the law's parameters, dims ``target`` and ``source``; the non-centred
latents on ``pair``), ``sample_stats``, ``log_likelihood``, ``posterior_predictive``,
``prior``, ``prior_predictive``, ``observed_data`` (``loss`` on ``obs``) and
``constant_data`` (the mixes on ``run`` x ``source``, each observation's run, budget and
language, the loss scales, and which languages are trained and evaluated on ``language``).
``posterior.attrs`` records ``reference_tokens`` (``D_ref``), the languages, the interaction
form, ``extrapolation_sd`` (:meth:`climb_bayes.model.loss_model.Law.extrapolation_error`),
the pooled sites sampled ``centred``, the fit's health verdict and the numbers behind it
(:mod:`climb_bayes.model.health`), the config, the package version and the pilot table's
checksum. :func:`read_posterior` is the one reader: every command that reads a posterior goes
through it, and it refuses a file this version cannot use (missing parts, an unknown form,
another major version, transfer matrices of the wrong shape) and a broken fit unless asked to
allow it.
"""

import hashlib
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import arviz as az
import jax
import numpy as np
from numpyro.infer import MCMC, Predictive, log_likelihood

from climb_bayes import __version__
from climb_bayes.data.pilot_table import PilotTable
from climb_bayes.errors import InputError
from climb_bayes.io import atomic_path
from climb_bayes.model.health import BROKEN, Health, stored_health
from climb_bayes.model.law import INTERACTION_FORMS, LawParams
from climb_bayes.model.loss_model import Discrepancy, Law
from climb_bayes.model.numpyro_model import (
    LAW_SITES,
    PARAMETER_SITES,
    ModelData,
    budget_knots,
    climb_model,
    reference_tokens,
)
from climb_bayes.model.share_error import measured_shares

TARGET_SITES = ("E", "B", "beta", "eta", "sigma", "log_beta", "log_beta_decentered",
                "discrepancy_sd", "discrepancy_sd_offset", "exponent_drift",
                "exponent_drift_offset", "run_sd", "run_slope_sd")
KNOT_SITES = ("discrepancy", "discrepancy_slope")
MATRIX_SITES = ("a", "k", "self_map")
PAIR_SITES = ("a_pair", "k_pair", "a_pair_decentered", "k_pair_decentered")


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def dims_and_coords(table: PilotTable, pairs: tuple[np.ndarray, np.ndarray]
                    ) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """ArviZ ``dims`` and ``coords`` for the model's sites and the constant data."""
    sources, targets = table.sources, table.targets
    languages = list(dict.fromkeys(sources + targets))
    arrays = table.arrays()
    knots = knot_tokens(table)
    coords = {
        "source": sources, "target": targets, "language": languages,
        "run": list(arrays.run_ids), "obs": np.arange(len(arrays.loss)),
        "run_slot": np.arange(np.bincount(arrays.point_run[arrays.obs_point]).max()),
        "pair": [f"{sources[s]}->{targets[t]}" for s, t in zip(*pairs, strict=True)],
        "loss_part": ["irreducible", "reducible_at_anchor"],
        "budget_knot": knots, "budget_step": np.arange(len(knots) - 1),
        "innovation": ["level", "slope"], "shared": ["all"], "other_target": targets,
    }
    dims = {
        **{site: ["target"] for site in TARGET_SITES},
        **{site: ["source", "target"] for site in MATRIX_SITES},
        **{site: ["pair"] for site in PAIR_SITES}, "loss": ["obs"],
        "loss_split": ["target", "loss_part"],
        **{site: ["target", "budget_knot"] for site in KNOT_SITES},
        "discrepancy_innovation": ["target", "budget_step", "innovation"],
        "discrepancy_shared_innovation": ["shared", "budget_step", "innovation"],
        "knot_log_budget": ["budget_knot"],
        "run_noise": ["run", "run_slot"],
        "run_correlation": ["target", "other_target"],
        "run_shares": ["run", "source"], "obs_run": ["obs"], "obs_tokens": ["obs"],
        "obs_language": ["obs"], "loss_scale": ["target"], "anchor_tokens": ["target"],
        "trained": ["language"], "evaluated": ["language"],
    }
    return dims, coords


def knot_tokens(table: PilotTable) -> list[float]:
    """The discrepancy's knots in tokens: the pilots' distinct budgets
    (:func:`climb_bayes.model.numpyro_model.budget_knots`), the ``budget_knot`` coordinate."""
    tokens = table.arrays().point_tokens
    reference = reference_tokens(tokens)
    knots, _ = budget_knots(tokens / reference)
    return [float(v) for v in reference * np.exp(knots)]


def constant_data(table: PilotTable, data: ModelData) -> dict[str, np.ndarray]:
    """What the fit conditioned on besides the losses, named for what it is."""
    arrays = table.arrays()
    languages = list(dict.fromkeys(table.sources + table.targets))
    return {
        "run_shares": arrays.run_shares,
        "obs_run": arrays.run_ids[arrays.point_run[arrays.obs_point]].astype(str),
        "obs_tokens": arrays.point_tokens[arrays.obs_point],
        "obs_language": np.asarray(table.targets)[arrays.obs_target].astype(str),
        "loss_scale": np.asarray(data.loss_scale),
        "anchor_tokens": np.asarray(data.anchor),
        "self_map": np.asarray(data.self_map),
        "knot_log_budget": np.asarray(data.knots),
        "trained": np.isin(languages, table.sources),
        "evaluated": np.isin(languages, table.targets),
    }


#: Number of prior draws stored in the ``prior`` and ``prior_predictive`` groups.
PRIOR_DRAWS = 500

#: numpyro's per-draw statistics (``climb_bayes.model.inference.SAMPLE_STATS``) under ArviZ's
#: names, as ``az.from_numpyro`` names them; ``lp`` and ``tree_depth`` are derived.
STAT_NAMES = {"diverging": "diverging", "energy": "energy", "num_steps": "n_steps",
              "accept_prob": "acceptance_rate", "adapt_state.step_size": "step_size"}


def inference_data(mcmc: MCMC, model_kwargs: dict[str, Any], keys: jax.Array, table: PilotTable,
                   data: ModelData) -> az.InferenceData:
    """The fit as ArviZ InferenceData (``az.from_dict``): the draws and their statistics, each
    draw's pointwise log-likelihood and posterior predictive losses, ``PRIOR_DRAWS`` prior
    draws split into ``prior`` (the sampled sites) and ``prior_predictive`` (the losses), the
    observed losses and the constant data; ``model_kwargs`` include the observed ``loss``.

    Every model evaluation here is one compiled program. ``az.from_numpyro`` and an unjitted
    ``Predictive`` run the model eagerly, compiling each operation on its own: 10-20 s at
    m = 4 languages, most of a fit's time beside NUTS (``benchmarks/fit_speed.py``).
    """
    by_chain = {name: np.asarray(value)
                for name, value in mcmc.get_samples(group_by_chain=True).items()}
    chains, samples = next(iter(by_chain.values())).shape[:2]
    draws = {name: value.reshape(chains * samples, *value.shape[2:])
             for name, value in by_chain.items()}
    unobserved = {**model_kwargs, "loss": None}

    def per_chain(value: jax.Array) -> np.ndarray:
        return np.asarray(value).reshape(chains, samples, *value.shape[1:])

    predictive = jax.jit(lambda key, draws: Predictive(climb_model, draws, return_sites=[
        "loss"])(key, **unobserved)["loss"])(keys[0], draws)
    pointwise = jax.jit(lambda draws: log_likelihood(climb_model, draws, **model_kwargs)[
        "loss"])(draws)
    prior = jax.jit(lambda key: Predictive(climb_model, num_samples=PRIOR_DRAWS)(
        key, **unobserved))(keys[1])
    fields = {name: np.asarray(value)
              for name, value in mcmc.get_extra_fields(group_by_chain=True).items()}
    stats = {STAT_NAMES[name]: value for name, value in fields.items() if name in STAT_NAMES}
    stats["lp"] = -fields["potential_energy"]
    stats["tree_depth"] = np.log2(stats["n_steps"]).astype(int) + 1
    dims, coords = dims_and_coords(table, np.nonzero(np.asarray(data.self_map) == 0))
    return az.from_dict(
        posterior=by_chain, sample_stats=stats,
        log_likelihood={"loss": per_chain(pointwise)},
        posterior_predictive={"loss": per_chain(predictive)},
        prior={name: np.asarray(value)[None] for name, value in prior.items()
               if name in by_chain},
        prior_predictive={name: np.asarray(value)[None] for name, value in prior.items()
                          if name not in by_chain},
        observed_data={"loss": np.asarray(model_kwargs["loss"])},
        constant_data=constant_data(table, data), coords=coords, dims=dims)


def save_posterior(idata: az.InferenceData, path: str | Path) -> None:
    """Write ``idata`` to netCDF atomically."""
    with atomic_path(path) as tmp:
        idata.to_netcdf(str(tmp))


@dataclass(frozen=True)
class Posterior:
    """Posterior draws flattened over chains (leading axis ``draw``): the law at every draw
    (:class:`climb_bayes.model.loss_model.Law`, which predicts the losses) and the noise of an
    observed loss around it."""

    law: Law  # the parameters, D_ref, form, languages and the learned error in budget
    sigma: np.ndarray  # (draw, target) observation noise at the reference budget D_ref
    nu: np.ndarray  # (draw,) its Student-t degrees of freedom (inf: Gaussian)
    idata: az.InferenceData
    health: Health  # the fit's verdict (climb_bayes.model.health)
    run_sd: np.ndarray | None = None  # (draw, target) spread of a run's offset, when fitted
    run_correlation: np.ndarray | None = None  # (draw, target, target) its Cholesky factor
    noise_exponent: np.ndarray | None = None  # (draw,) kappa: noise ~ (D / D_ref)^-kappa

    def noise_sd(self, tokens: np.ndarray) -> np.ndarray:
        """The observation noise's scale at budgets ``tokens`` ``(mix,)``: ``sigma_i (D /
        D_ref)^-kappa``, ``(draw, mix, target)`` (``kappa = 0`` when the fit has none)."""
        sigma = self.sigma[:, None, :]
        if self.noise_exponent is None:
            return np.broadcast_to(sigma, (sigma.shape[0], len(tokens), sigma.shape[2]))
        scaled = np.asarray(tokens, dtype=np.float64) / self.law.reference
        return sigma * (scaled[None, :, None] ** -self.noise_exponent[:, None, None]
                        ).astype(np.float32)

    @property
    def sources(self) -> list[str]:
        """The training languages."""
        return self.law.sources

    @property
    def targets(self) -> list[str]:
        """The evaluated languages."""
        return self.law.targets

    def thinned(self, keep: np.ndarray) -> "Posterior":
        """The posterior at the draws ``keep`` only."""
        def part(values: np.ndarray | None) -> np.ndarray | None:
            return None if values is None else values[keep]

        return replace(self, law=self.law.thinned(keep), sigma=self.sigma[keep],
                       nu=self.nu[keep], run_sd=part(self.run_sd),
                       run_correlation=part(self.run_correlation),
                       noise_exponent=part(self.noise_exponent))


def _draws(idata: az.InferenceData, name: str) -> np.ndarray:
    stacked = idata.posterior[name].stack(sample=("chain", "draw"))
    return np.asarray(stacked.transpose("sample", ...).values, dtype=np.float32)


def read_posterior(path: str | Path, allow_broken: bool = False) -> Posterior:
    """Read a ``posterior.nc`` written by ``climb_bayes.fit``; InputError if it is not one, or
    if its fit is broken and not ``allow_broken`` (:func:`posterior_from_idata`)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"posterior file {path} does not exist; make one with "
                         f"`python -m climb_bayes.fit pilots=PILOTS output=DIR`.")
    try:
        idata = az.from_netcdf(str(path))
    except Exception as error:  # netCDF/HDF5 raise many types for a bad file
        raise InputError(f"could not read {path} as an ArviZ netCDF file ({error}); "
                         f"re-run `python -m climb_bayes.fit` to write it again.") from error
    return posterior_from_idata(idata, str(path), allow_broken)


def posterior_from_idata(idata: az.InferenceData, where: str = "the InferenceData",
                         allow_broken: bool = False) -> Posterior:
    """The :class:`Posterior` of an InferenceData made by ``fit_posterior`` (read from disk
    or still in memory): draws flattened over chains, as float32. InputError naming
    ``where`` if a group, variable or attribute is missing, or if the fit's health verdict
    (:func:`climb_bayes.model.health.stored_health`) is broken and not ``allow_broken``: numbers
    computed from such draws are not results; InputError too if this version cannot use it
    (:func:`check_compatible`)."""
    posterior = getattr(idata, "posterior", None)
    missing = [name for name in PARAMETER_SITES if posterior is None or name not in posterior]
    attrs = {} if posterior is None else posterior.attrs
    missing += [key for key in ("reference_tokens", "form", "sources", "targets",
                                "climb_bayes_version") if key not in attrs]
    missing += [f"constant_data.{name}" for name in ("self_map", "obs_tokens", "run_shares")
                if name not in getattr(idata, "constant_data", {})]
    if missing:
        raise InputError(f"{where} is not a complete climb_bayes posterior: it lacks "
                         f"{missing}; re-run `python -m climb_bayes.fit` to write one.")
    check_compatible(attrs, np.shape(posterior["a"].values)[2:], where)
    health = stored_health(idata)
    if health.verdict == BROKEN and not allow_broken:
        raise InputError(f"{where} comes from a broken fit ({health.line}): its numbers are "
                         f"not results. Fit again (more sampler.warmup, a higher "
                         f"sampler.target_accept, or pilots that pin down the flagged "
                         f"parameters), or pass allow_broken=true to use it anyway.")
    count = posterior.sizes["chain"] * posterior.sizes["draw"]
    nu = _draws(idata, "nu") if "nu" in posterior else np.full(count, float(attrs["nu"]))
    bend = (Discrepancy(_draws(idata, "discrepancy"), _draws(idata, "discrepancy_slope"),
                        _draws(idata, "discrepancy_sd") if "discrepancy_sd" in posterior
                        else np.zeros((count, len(json.loads(attrs["targets"]))), np.float32),
                        _draws(idata, "discrepancy_shared_sd")
                        if "discrepancy_shared_sd" in posterior
                        else np.zeros(count, np.float32),
                        np.asarray(idata.constant_data["knot_log_budget"].values),
                        _draws(idata, "exponent_drift") if "exponent_drift" in posterior
                        else None)
            if "discrepancy" in posterior else None)
    law = Law(params=LawParams(*(_draws(idata, name) for name in LAW_SITES)),
              reference=float(attrs["reference_tokens"]), sources=json.loads(attrs["sources"]),
              targets=json.loads(attrs["targets"]), form=str(attrs["form"]), bend=bend,
              extrapolation_sd=float(attrs.get("extrapolation_sd", 0.0)),
              pilot_tokens=float(idata.constant_data["obs_tokens"].max()),
              share_sd=float(attrs.get("share_sd", 0.0)),
              share_sd_growth=float(attrs.get("share_sd_growth", 0.0)))
    law = replace(law, measured=measured_shares(law, idata.constant_data))
    return Posterior(
        law=law, sigma=_draws(idata, "sigma"), nu=nu, idata=idata, health=health,
        run_sd=_draws(idata, "run_sd") if "run_sd" in posterior else None,
        run_correlation=(_draws(idata, "run_correlation") if "run_correlation" in posterior
                         else None),
        noise_exponent=(_draws(idata, "noise_budget_exponent")
                        if "noise_budget_exponent" in posterior else None),
    )


def check_compatible(attrs: Any, matrix_shape: tuple[int, ...], where: str) -> None:
    """InputError unless this version can use a posterior with these ``posterior.attrs`` and
    transfer matrices of ``matrix_shape`` (sources x targets): a known interaction form, a
    compatible version (:func:`compatible_versions`), matrices as large as its languages."""
    version, form = str(attrs["climb_bayes_version"]), str(attrs["form"])
    if form not in INTERACTION_FORMS:
        raise InputError(f"{where} uses the interaction form {form!r}, which this version "
                         f"({__version__}) does not know; known: {sorted(INTERACTION_FORMS)}. "
                         f"Refit with this version.")
    if not compatible_versions(version, __version__):
        raise InputError(f"{where} was written by climb_bayes {version}, incompatible with "
                         f"this version {__version__}; refit it with this version.")
    shape = (len(json.loads(attrs["sources"])), len(json.loads(attrs["targets"])))
    if tuple(matrix_shape) != shape:
        raise InputError(f"{where}: the transfer matrices do not match its {shape[0]} training "
                         f"and {shape[1]} evaluated languages; the file is corrupt, refit.")


def compatible_versions(theirs: str, ours: str) -> bool:
    """Same major version (and the same minor while the major is 0); unknown builds pass."""
    def release(text: str) -> tuple[int, ...] | None:
        found = re.match(r"(\d+)\.(\d+)", text)
        return None if found is None else (int(found[1]), int(found[2]))

    mine, other = release(ours), release(theirs)
    if mine is None:
        return True
    if other is None:
        return False
    return mine[0] == other[0] and (mine[0] != 0 or mine[1] == other[1])


def provenance(table: PilotTable, reference: float, form: str, nu: float | None,
               config_yaml: str, extrapolation_sd: float, centred: tuple[str, ...]
               ) -> dict[str, Any]:
    """Attributes stored with the posterior (netCDF-safe: strings and numbers)."""
    source_file = Path(table.path)
    return {
        "reference_tokens": reference, "form": form, "extrapolation_sd": float(extrapolation_sd),
        "centred": json.dumps(list(centred)),
        "nu": "learned" if nu is None else float(nu),
        "sources": json.dumps(table.sources), "targets": json.dumps(table.targets),
        "pilots": str(table.path),
        "pilots_sha256": file_sha256(source_file) if source_file.is_file() else "",
        "config": config_yaml, "climb_bayes_version": __version__,
    }
