"""The law's error below the shares the pilots measured, and how big it is at a share of 0.

The pilots measure each training language's loss down to the smallest share a mixed pilot
gave it, ``m_i``. Below that, down to a share of 0, the law's loss comes from transfer alone
and nothing checks it; an optimised mix that drops a language there rests on the law's form.
So a prediction carries an error on the log of each reducible loss
(:meth:`climb_bayes.model.loss_model.Law.share_error`)::

    e_i(r) = s * z_i * ramp_i(r),        z_i ~ Normal(0, 1)
    ramp_i(r)^2 = u_i (2 - u_i),         u_i = min(1, a_i^2 + b_i^2),
    a_i = max(0, 1 - r_i / m_i),         b_i = max(0, ln(mt_i / rt_i(r)))

(:func:`climb_bayes.model.law.beyond_measured`): zero while the target's own share ``r_i`` is
at least the smallest ``m_i`` of its fitted losses and its effective share ``rt_i`` at least
the smallest ``mt_i`` there; growing to ``s`` at an own share of 0 or an e-fold below the
measured effective shares, and ``s`` beyond, however far (down to the floor of
:func:`climb_bayes.model.law.positive_floor`): ``s`` is measured on losses at a share of 0,
whatever their effective share, and that is the error they show. One ``z_i`` per draw and
language. The solver takes it in expectation, ``exp(s^2 ramp^2 / 2)`` on
the reducible loss, so a mix pays for leaving what the pilots measured.

``s`` is measured on the pilots themselves: the monolingual pilots evaluated on the other
training languages are losses at a share of 0, which the fit leaves out (``untrained=drop``,
:func:`climb_bayes.model.fitting.pilot_rows`). On those rows ``k``, with ``L`` the law's loss
and ``E`` its irreducible part at each draw, and ``sigma`` the noise of one loss::

    d_k = ln (y_k - E_k) - ln (L_k - E_k)       (posterior means of E and of ln(L - E))
    s^2 = max(0, mean_k d_k^2 - mean_k Var_draws ln(L_k - E_k) - mean_k (sigma_k / (L_k - E_k))^2)

the error beyond what the posterior and the noise already allow for. With no such rows ``s``
is ``DEFAULT_SHARE_SD``.
"""

from dataclasses import replace
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

from climb_bayes.data.pilot_table import PilotTable

if TYPE_CHECKING:  # the law holds a MeasuredShares
    from climb_bayes.model.loss_model import Law

#: ``s`` when the pilots have no loss at a share of 0 to measure it on: between what the
#: measurement gives on the bundled example (related languages, 0) and on the real study
#: (five languages, four scripts, 0.62); ``docs/extrapolation.md``, section 6.
DEFAULT_SHARE_SD = 0.3
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


def measured_share_sd(predicted: np.ndarray, irreducible: np.ndarray, noise: np.ndarray,
                      observed: np.ndarray) -> float:
    """``s`` (module docstring) from draws of the law's loss ``predicted`` and irreducible part
    ``irreducible`` ``(draw, row)``, the noise sd of each row ``noise`` ``(row,)`` and the
    observed losses ``observed`` ``(row,)``."""
    log_reducible = np.log(np.maximum(predicted - irreducible, SMALLEST_REDUCIBLE))
    observed_reducible = np.maximum(observed - irreducible.mean(0), SMALLEST_REDUCIBLE)
    error = np.log(observed_reducible) - log_reducible.mean(0)
    relative_noise = noise / np.exp(log_reducible.mean(0))
    excess = np.mean(error ** 2) - np.mean(log_reducible.var(0)) - np.mean(relative_noise ** 2)
    return float(np.sqrt(max(0.0, excess)))


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
