"""The law's error below the shares the pilots measured, and how big it is there.

The pilots measure each training language's loss down to the smallest share a mixed pilot
gave it, ``m_i``. Below that, down to a share of 0, the law's loss comes from transfer alone
and nothing checks it; an optimised mix that drops a language there rests on the law's form.
So a prediction carries an error on the log of each reducible loss
(:meth:`climb_bayes.model.loss_model.Law.share_error`)::

    e_i(r) = z_i * sqrt(v_i(r)),        z_i ~ Normal(0, 1)
    v_i(r) = s^2 u_i (2 - u_i) + g^2 max(0, b_i - 1)^2,     u_i = min(1, a_i^2 + b_i^2),
    a_i = max(0, 1 - r_i / m_i),         b_i = max(0, ln(mt_i / rt_i(r)))

(:func:`climb_bayes.model.law.share_error_variance`): zero while the target's own share
``r_i`` is at least the smallest ``m_i`` of its fitted losses and its effective share ``rt_i``
at least the smallest ``mt_i`` there; growing to ``s`` at an own share of 0 or an e-fold below
the measured effective shares; and beyond that e-fold growing by ``g`` per e-fold (down to the
floor of :func:`climb_bayes.model.law.positive_floor`). One ``z_i`` per draw and language.
The solver takes it in expectation, ``exp(v / 2)`` on the reducible loss, so a mix pays for
leaving what the pilots measured, and more the further it goes.

``s`` and ``g`` are measured on the pilots themselves: the monolingual pilots evaluated on the
other training languages are losses at a share of 0, which the fit leaves out
(``untrained=drop``, :func:`climb_bayes.model.fitting.pilot_rows`), at effective shares that
transfer puts anywhere from near the measured ones to the floor. On those rows ``k``, with
``L`` the law's loss and ``E`` its irreducible part at each draw, and ``sigma`` the noise of
one loss, the error beyond what the posterior and the noise already allow for is::

    d_k = ln (y_k - E_k) - ln (L_k - E_k)       (posterior means of E and of ln(L - E))
    x_k = d_k^2 - Var_draws ln(L_k - E_k) - (sigma_k / (L_k - E_k))^2
    x_k ~ s^2 + g^2 c_k,        c_k = max(0, b_k - 1)^2

the variance the error model gives a loss at a share of 0 (own share 0: ramp 1), ``b_k`` its
e-folds below the measured effective shares at the posterior mean effective share; ``s^2`` and
``g^2`` by non-negative least squares, ``g`` with a prior worth one loss
``GROWTH_PRIOR_FOLDS`` e-folds down that shows ``DEFAULT_SHARE_SD_GROWTH`` (with no row deeper
than one e-fold, ``g`` is that default and ``s^2`` the mean excess). With no rows at a share of
0 at all, ``s`` and ``g`` are ``DEFAULT_SHARE_SD`` and ``DEFAULT_SHARE_SD_GROWTH``.
"""

from dataclasses import replace
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd
from scipy.optimize import nnls

from climb_bayes.data.pilot_table import PilotTable

if TYPE_CHECKING:  # the law holds a MeasuredShares
    from climb_bayes.model.loss_model import Law
    from climb_bayes.model.posterior import Posterior

#: ``s`` when the pilots have no loss at a share of 0 to measure it on: between what the
#: measurement gives on the bundled example (related languages, 0) and on the real study
#: (five languages, four scripts, 0.62); ``docs/extrapolation.md``, section 6.
DEFAULT_SHARE_SD = 0.3
#: ``g`` when the pilots have no loss at a share of 0: between what the bundled example's
#: losses deeper than an e-fold give (0) and the 0.11-0.14 of the simulation study's Data
#: Mixing Laws worlds (the real study's pilots have none that deep).
DEFAULT_SHARE_SD_GROWTH = 0.1
#: The prior on a fitted ``g`` is one row this many e-folds below the measured effective
#: shares showing the default growth (``measured_sizes``): a third of the depth the Data
#: Mixing Laws worlds' deepest losses at a share of 0 reach, so that 40 losses spread over
#: that depth outweigh it about 400 to 1, and a handful barely past the first e-fold do not.
GROWTH_PRIOR_FOLDS = 3.0
#: ``y - E`` below this (nats) counts as this much: a loss at or under the law's irreducible
#: part is a large error, not a missing one.
SMALLEST_REDUCIBLE = 1e-3


class MeasuredShares(NamedTuple):
    """Down to which shares the pilots measured each target's loss, ``(target,)`` each."""

    own: np.ndarray  # the smallest own share of its fitted losses (0: measured at 0)
    effective: np.ndarray  # the smallest effective share rt_i there (posterior mean)


def zero_share_rows(table: PilotTable, checkpoints: str = "final") -> PilotTable:
    """The losses at a share of 0 of a training language (:meth:`PilotTable.untrained`) among
    the rows ``checkpoints`` selects (each run's final checkpoint, or all)."""
    rows = table.final_of_run() if checkpoints != "all" else table
    return replace(rows, frame=rows.frame[rows.untrained()].reset_index(drop=True))


def share_error_excess(predicted: np.ndarray, irreducible: np.ndarray, noise: np.ndarray,
                       observed: np.ndarray) -> np.ndarray:
    """``x_k`` (module docstring) of every row ``(row,)``, from draws of the law's loss
    ``predicted`` and irreducible part ``irreducible`` ``(draw, row)``, the noise sd of each
    row ``noise`` ``(row,)`` and the observed losses ``observed`` ``(row,)``."""
    log_reducible = np.log(np.maximum(predicted - irreducible, SMALLEST_REDUCIBLE))
    observed_reducible = np.maximum(observed - irreducible.mean(0), SMALLEST_REDUCIBLE)
    error = np.log(observed_reducible) - log_reducible.mean(0)
    relative_noise = noise / np.exp(log_reducible.mean(0))
    return error ** 2 - log_reducible.var(0) - relative_noise ** 2


def measured_sizes(excess: np.ndarray, folds: np.ndarray, share_sd: float | None = None,
                   share_sd_growth: float | None = None) -> tuple[float, float]:
    """``(s, g)`` (module docstring) from the excess ``x_k`` of every row and its e-folds
    ``b_k`` below the measured effective shares: the non-negative least-squares fit of
    ``x_k = s^2 + g^2 c_k``, ``c_k = max(0, b_k - 1)^2``, with either given held (its part
    taken off ``x_k``) and the other fitted alone. A fitted ``g`` has a prior worth one more
    row (:data:`GROWTH_PRIOR_FOLDS` e-folds down) showing ``g = DEFAULT_SHARE_SD_GROWTH``: it
    is that default where no row lies deeper than one e-fold, and the rows take it over as
    their ``c_k`` grow (rows barely past the first e-fold, whose ``c_k`` is tiny, cannot blow
    a noisy excess up into a large growth)."""
    deep = np.maximum(0.0, folds - 1.0) ** 2
    prior = (GROWTH_PRIOR_FOLDS - 1.0) ** 2  # the prior row's c_k; its x_k is g0^2 c_k
    if share_sd_growth is None:  # a fitted growth: the prior row, which has no s in it
        excess = np.append(excess, DEFAULT_SHARE_SD_GROWTH ** 2 * prior)
        ones, deep = np.append(np.ones_like(deep), 0.0), np.append(deep, prior)
    else:
        ones = np.ones_like(deep)
    parts = {"sd": (share_sd, ones), "growth": (share_sd_growth, deep)}
    free = [name for name, (given, _) in parts.items() if given is None]
    held = sum((given ** 2 * column for given, column in parts.values() if given is not None),
               np.zeros_like(deep))
    sizes = {name: given for name, (given, _) in parts.items() if given is not None}
    if free:
        squares, _ = nnls(np.column_stack([parts[name][1] for name in free]), excess - held)
        sizes.update({name: float(np.sqrt(square)) for name, square in zip(free, squares,
                                                                          strict=True)})
    return float(sizes["sd"]), float(sizes["growth"])


def measured_shares(law: "Law", data: Any) -> MeasuredShares | None:
    """Down to which shares the fit saw each target's loss (:class:`MeasuredShares`), from
    the constant data: the smallest own share of its losses (0 for an evaluation-only target,
    or where the fit saw a loss at a share of 0) and the smallest effective share there
    (posterior mean of each draw's smallest); None if the data do not say which run and
    language each loss is of."""
    if "obs_run" not in data or "obs_language" not in data:
        return None
    run = pd.Index(data["run"].values).get_indexer(data["obs_run"].values)
    tokens = np.asarray(data["obs_tokens"].values, np.float64)
    target = pd.Index(law.targets).get_indexer(np.asarray(data["obs_language"].values).astype(str))
    points, point = np.unique(np.column_stack([run, tokens]), axis=0, return_inverse=True)
    shares = np.asarray(data["run_shares"].values, np.float64)[points[:, 0].astype(int)]
    own = (shares @ law.self_map)[point.reshape(-1), target]
    effective = law.effective_share(shares, points[:, 1])[:, point.reshape(-1), target]
    seen = [target == i for i in range(len(law.targets))]
    return MeasuredShares(
        own=np.array([own[rows].min() if rows.any() else 0.0 for rows in seen]),
        effective=np.array([effective[:, rows].min(axis=1).mean() if rows.any() else 0.0
                            for rows in seen]))


def measure_share_error(posterior: "Posterior", rows: PilotTable | None,
                        share_sd: float | None = None, share_sd_growth: float | None = None
                        ) -> dict[str, float | str]:
    """The posterior attributes ``share_sd`` and ``share_sd_growth`` (module docstring) of
    ``posterior``'s law, without any error of its own below the measured shares, each measured
    on ``rows`` unless given (the growth then measured with the given ``share_sd``),
    the defaults where there are no rows; ``share_sd_rows`` and ``share_sd_deep_rows``, how many
    losses measured them (all, and those deeper than one e-fold below the measured effective
    shares), and ``share_sd_from``, in words."""
    given = [name for name, value in (("law.share_sd", share_sd),
                                      ("law.share_sd_growth", share_sd_growth))
             if value is not None]
    if rows is None or rows.frame.empty or len(given) == 2:
        origin = (" and ".join(given) if given
                  else "the default: the pilots report no loss at a share of 0")
        return {"share_sd": DEFAULT_SHARE_SD if share_sd is None else share_sd,
                "share_sd_growth": (DEFAULT_SHARE_SD_GROWTH if share_sd_growth is None
                                    else share_sd_growth),
                "share_sd_rows": 0, "share_sd_deep_rows": 0, "share_sd_from": origin}
    law = replace(posterior.law, share_sd=0.0, share_sd_growth=0.0)  # the error it must carry
    shares = rows.frame[rows.share_columns].to_numpy(np.float64)
    tokens = rows.frame["tokens"].to_numpy(np.float64)
    target = pd.Index(posterior.targets).get_indexer(rows.frame["language"])
    row = np.arange(len(target))
    predicted = law.predict_loss(shares, tokens)[:, row, target]
    irreducible = np.asarray(law.params.E, np.float64)[:, target]
    noise = posterior.noise_sd(tokens).mean(0)[row, target]
    excess = share_error_excess(predicted, irreducible, noise,
                                rows.frame["loss"].to_numpy(np.float64))
    effective = law.effective_share(shares, tokens)[:, row, target].mean(0)
    smallest = law.measured.effective[target] if law.measured is not None else effective
    folds = np.log(np.maximum(smallest, effective) / effective)
    sd, growth = measured_sizes(excess, folds, share_sd, share_sd_growth)
    deep = int(np.sum(folds > 1.0))
    measured = f"measured on {len(target)} losses at a share of 0 ({deep} deeper than an e-fold)"
    if deep == 0 and share_sd_growth is None:
        measured += ", the growth its prior: none lies deep enough to measure it"
    return {"share_sd": sd, "share_sd_growth": growth, "share_sd_rows": len(target),
            "share_sd_deep_rows": deep,
            "share_sd_from": measured + "".join(f", {name} given" for name in given)}
