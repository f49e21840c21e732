"""Is a fit trustworthy? One verdict per posterior, stored with it and read by every consumer.

The verdict comes from the sampler's diagnostics over the sampled quantities of the model
(the law's parameters per language and per transfer pair, the noise, and the pooled means and
spreads; ``b`` and ``k`` on the diagonal are zero by construction and not counted):

``broken``
    any diagnostic is not a finite number (a chain that never moved has no variance, so its
    R-hat and ESS are undefined, and so is E-BFMI when the energy never changed), the worst
    rank-normalised split R-hat exceeds ``BROKEN_R_HAT`` (1.1), or more than
    ``BROKEN_DIVERGENT`` (1%) of the transitions diverged. Numbers computed from such a
    posterior are not results: ``fit`` exits non-zero, and ``predict``, ``solve`` and
    ``report`` refuse it unless told ``allow_broken=true``.
``marginal``
    not broken, but R-hat exceeds 1.01, a bulk or tail ESS is below 400, some transition
    diverged, or E-BFMI is below 0.3 (Vehtari et al. 2021; Betancourt 2017). Usable with care:
    every consumer says "marginal" beside its numbers.
``healthy``
    none of the above.

:func:`assess` computes it from an InferenceData; :func:`store` writes it into
``posterior.attrs`` (``health``, ``health_reasons``) and :func:`stored_health` reads it back
(or assesses a posterior that has none stored). :func:`left_to_prior` lists what the data did
not inform: parameters whose posterior is about as wide as their prior.
"""

import json
import warnings
from dataclasses import dataclass

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

HEALTHY, MARGINAL, BROKEN = "healthy", "marginal", "broken"
#: Verdicts from best to worst; a refit keeps the fit that comes first here.
VERDICTS = (HEALTHY, MARGINAL, BROKEN)

BROKEN_R_HAT = 1.1
BROKEN_DIVERGENT = 0.01
MARGINAL_R_HAT = 1.01
MARGINAL_ESS = 400.0
MARGINAL_BFMI = 0.3

#: Sampled quantities whose diagonal-free values the diagnostics cover (those present are used).
CHECKED_SITES = ("E", "B", "beta", "eta", "sigma", "noise_budget_exponent", "nu", "a_pair",
                 "k_pair",
                 "beta_mu", "beta_tau", "a_mu", "a_tau", "k_tau",
                 "discrepancy_scale", "discrepancy_sd", "discrepancy_shared_sd",
                 "exponent_drift_mean", "exponent_drift",
                 "run_sd", "run_slope_sd")


@dataclass(frozen=True)
class Health:
    """A fit's verdict, the reasons for it, and the numbers it was judged on."""

    verdict: str  # one of VERDICTS
    reasons: tuple[str, ...]  # one sentence per failed check (empty when healthy)
    max_r_hat: float
    min_ess_bulk: float
    min_ess_tail: float
    divergences: int
    transitions: int
    min_bfmi: float

    @property
    def line(self) -> str:
        """``healthy``, or ``marginal: reason; reason``: one line for logs and outputs."""
        return self.verdict + (": " + "; ".join(self.reasons) if self.reasons else "")

    def to_attrs(self) -> dict[str, str | float | int]:
        """netCDF-safe attributes for ``posterior.attrs``."""
        return {"health": self.verdict, "health_reasons": json.dumps(list(self.reasons)),
                "max_r_hat": self.max_r_hat, "min_ess_bulk": self.min_ess_bulk,
                "min_ess_tail": self.min_ess_tail, "divergences": self.divergences,
                "transitions": self.transitions, "min_bfmi": self.min_bfmi}


def _entries(values: xr.Dataset) -> pd.Series:
    """Every entry of every variable, labelled like ``k_pair[en->fr]``."""
    entries = {}
    for var, array in values.data_vars.items():
        if not array.dims:
            entries[var] = float(array)
            continue
        for labels, value in array.to_series().items():
            labels = labels if isinstance(labels, tuple) else (labels,)
            entries[f"{var}[{', '.join(map(str, labels))}]"] = float(value)
    return pd.Series(entries, dtype=float)


def _worst(values: xr.Dataset, pick: str) -> tuple[float, str]:
    """The worst entry (``max`` or ``min``; a NaN or infinity counts as worst) and its label."""
    entries = _entries(values)
    bad = entries[~np.isfinite(entries)]
    if len(bad):
        return float(bad.iloc[0]), str(bad.index[0])
    at = entries.idxmax() if pick == "max" else entries.idxmin()
    return float(entries[at]), str(at)


def assess(idata: az.InferenceData) -> Health:
    """The verdict of a fitted InferenceData (see the module docstring for the rules)."""
    names = [name for name in CHECKED_SITES if name in idata.posterior]
    posterior = idata.posterior[names]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a frozen chain: 0 / 0
        r_hat, r_hat_at = _worst(az.rhat(posterior), "max")
        bulk, bulk_at = _worst(az.ess(posterior, method="bulk"), "min")
        tail, tail_at = _worst(az.ess(posterior, method="tail"), "min")
        stats = getattr(idata, "sample_stats", None)
        bfmi = (np.atleast_1d(az.bfmi(idata)) if stats is not None and "energy" in stats
                else [np.nan])
    min_bfmi = float(np.min(bfmi)) if np.all(np.isfinite(bfmi)) else float("nan")
    has_stats = stats is not None and "diverging" in stats and "energy" in stats
    diverging = np.asarray(stats["diverging"].values) if has_stats else np.zeros(0, bool)
    divergences, transitions = int(diverging.sum()), int(diverging.size)

    broken, marginal = [], []
    if not has_stats:
        broken.append("there are no sampler statistics (sample_stats: diverging, energy), so "
                      "the sampling cannot be checked: fit it with python -m climb_bayes.fit")
    single = posterior.sizes["chain"] < 2
    if single:
        broken.append("R-hat is undefined with a single chain: run sampler.chains=2 or more")
    for label, value, at in (("R-hat", r_hat, r_hat_at), ("bulk ESS", bulk, bulk_at),
                             ("tail ESS", tail, tail_at)):
        if not np.isfinite(value) and not (single and label == "R-hat"):
            broken.append(f"{label} of {at} is not a number (a chain did not move)")
    if has_stats and not np.isfinite(min_bfmi):
        broken.append("E-BFMI is not a number (the chains' energy did not change)")
    if np.isfinite(r_hat) and r_hat > BROKEN_R_HAT:
        broken.append(f"max R-hat {r_hat:.3g} > {BROKEN_R_HAT} ({r_hat_at})")
    elif np.isfinite(r_hat) and r_hat > MARGINAL_R_HAT:
        marginal.append(f"max R-hat {r_hat:.3g} > {MARGINAL_R_HAT} ({r_hat_at})")
    if divergences > BROKEN_DIVERGENT * transitions:
        broken.append(f"{divergences} of {transitions} transitions divergent "
                      f"(> {100 * BROKEN_DIVERGENT:.0f}%)")
    elif divergences:
        marginal.append(f"{divergences} of {transitions} transitions divergent")
    for label, value, at in (("bulk ESS", bulk, bulk_at), ("tail ESS", tail, tail_at)):
        if np.isfinite(value) and value < MARGINAL_ESS:
            marginal.append(f"min {label} {value:.0f} < {MARGINAL_ESS:.0f} ({at})")
    if np.isfinite(min_bfmi) and min_bfmi < MARGINAL_BFMI:
        marginal.append(f"min E-BFMI {min_bfmi:.2f} < {MARGINAL_BFMI}")
    verdict = BROKEN if broken else MARGINAL if marginal else HEALTHY
    return Health(verdict=verdict, reasons=tuple(broken + marginal), max_r_hat=r_hat,
                  min_ess_bulk=bulk, min_ess_tail=tail, divergences=divergences,
                  transitions=transitions, min_bfmi=min_bfmi)


def store(idata: az.InferenceData, health: Health) -> None:
    """Write ``health`` into ``idata.posterior.attrs`` (saved with the netCDF file)."""
    idata.posterior.attrs.update(health.to_attrs())


def stored_health(idata: az.InferenceData) -> Health:
    """The verdict stored by ``fit``; a posterior without one is assessed now."""
    attrs = idata.posterior.attrs
    if "health" not in attrs:
        return assess(idata)
    return Health(verdict=str(attrs["health"]),
                  reasons=tuple(json.loads(attrs["health_reasons"])),
                  max_r_hat=float(attrs["max_r_hat"]),
                  min_ess_bulk=float(attrs["min_ess_bulk"]),
                  min_ess_tail=float(attrs["min_ess_tail"]),
                  divergences=int(attrs["divergences"]), transitions=int(attrs["transitions"]),
                  min_bfmi=float(attrs["min_bfmi"]))


def notice(health: Health, where: str) -> str | None:
    """What a command prints beside numbers from a posterior that is not healthy, or None."""
    if health.verdict == HEALTHY:
        return None
    if health.verdict == MARGINAL:
        return (f"note: {where} comes from a marginal fit ({'; '.join(health.reasons)}): "
                f"read these numbers with care.")
    return (f"WARNING: {where} comes from a broken fit ({'; '.join(health.reasons)}): these "
            f"numbers are not results (used because allow_broken=true).")


def rank(health: Health) -> int:
    """0 for healthy, 1 for marginal, 2 for broken: lower is better."""
    return VERDICTS.index(health.verdict)


#: A parameter is "left to its prior" when its posterior sd is at least this fraction of its
#: prior sd (the data narrowed it by less than 10%).
PRIOR_SD_RATIO = 0.9


def left_to_prior(idata: az.InferenceData, sites: tuple[str, ...] = CHECKED_SITES
                  ) -> dict[str, list[str]]:
    """Per site, the entries whose posterior sd is at least ``PRIOR_SD_RATIO`` times their
    prior sd (``idata.prior`` draws): what the pilots do not inform, e.g. every ``k_pair``
    when all pilots share one budget. Entries are labelled by their coordinates."""
    if "prior" not in idata.groups():
        return {}
    left = {}
    for site in sites:
        if site not in idata.posterior or site not in idata.prior:
            continue
        ratio = _entries(xr.Dataset({site: idata.posterior[site].std(("chain", "draw"))
                                     / idata.prior[site].std(("chain", "draw"))}))
        wide = ratio[ratio >= PRIOR_SD_RATIO]
        if len(wide):
            left[site] = list(wide.index)
    return left
