"""How much published loss curves bend in budget: the source of the exponent's drift prior.

    python -m benchmarks.published_curvature --logs mixinglaws/data/RedPajama
    python -m benchmarks.published_curvature --logs mixinglaws/data/RedPajama \
        --domains Pile-CC Github ArXiv Books3 FreeLaw     # the external benchmark's targets

Reads Data Mixing Laws' RedPajama loss files of the 160M, 305M and 410M models (github
yegcjs/mixinglaws; the 70M runs are left out: ``benchmarks/external_extrapolation.py`` scores
them) with :func:`climb_bayes.data.checkpoint_log.read_checkpoint_log`. For every curve (run
and evaluated domain) with checkpoints spanning ``--first`` to ``--last`` steps it fits

    ln L = c0 + c1 u + c2 u^2 / 2,    u = ln(D / D_mid)

by least squares and reports, per model size, the mean and sd across curves of the curvature
``c2`` (how fast the exponent of ``L`` against ``D`` falls per e-fold; positive: the curve
flattens), of the slope ``c1``, and of the residual sd. A pure power law in the reducible
part ``R = L - E`` with exponent ``b`` already bends ``ln L`` by ``f (1 - f) b^2``, ``f = R /
L``; what ``ln L`` bends beyond that, divided by ``f``, is the reducible part's own bend
``gamma``, and ``gamma / b`` the fraction by which its exponent falls per e-fold, the ``g``
of ``law.priors.exponent_drift_centre`` and ``exponent_drift_scale``
(:class:`climb_bayes.model.priors.Priors` has the numbers).

What bends beyond each curve's own parabola is the random walk's
(``law.priors.discrepancy_scale``): per size, :func:`walk_intensity` finds the intensity
``tau`` of an integrated random walk added to every curve's parabola, with white noise of each
curve's own sd, by restricted maximum likelihood over all curves (the parabola's coefficients
integrated out), and its 95% profile-likelihood interval (``walk_tau``, ``walk_tau_low``,
``walk_tau_high``, on ``ln L``). One row per size is appended to ``--output`` (default
``benchmarks/results/published_curvature.csv``).
"""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.records import REPO, append_row, commit
from climb_bayes.data.checkpoint_log import TOKENS_PER_STEP, read_checkpoint_log

SIZES = ("160M", "305M", "410M")
#: Walk intensities tried by :func:`walk_intensity` (0, then 1e-3 to 1 geometrically).
TAUS = np.concatenate([[0.0], np.geomspace(1e-3, 1.0, 241)])
#: Noise sds each curve's likelihood is maximised over.
NOISE_SDS = np.geomspace(1e-4, 0.1, 91)


def curve_fits(log: pd.DataFrame, first: int, last: int) -> pd.DataFrame:
    """One row per curve (run, domain) spanning ``first`` to ``last`` steps, with at least 8
    checkpoints: its quadratic fit's ``curvature``, ``slope`` and ``residual_sd``."""
    steps = log["tokens"] / TOKENS_PER_STEP
    window = log[(steps >= first) & (steps <= last)]
    middle = np.sqrt(first * last) * TOKENS_PER_STEP
    rows = []
    for (run, domain), curve in window.groupby(["run_id", "language"]):
        span = curve["tokens"] / TOKENS_PER_STEP
        if len(curve) < 8 or span.min() > 1.1 * first or span.max() < last / 1.1:
            continue
        u = np.log(curve["tokens"].to_numpy() / middle)
        y = np.log(curve["loss"].to_numpy())
        half_curvature, slope, intercept = np.polyfit(u, y, 2)
        residual = y - (intercept + slope * u + half_curvature * u**2)
        rows.append({"run": run, "domain": domain, "curvature": 2 * half_curvature,
                     "slope": slope, "residual_sd": residual.std()})
    return pd.DataFrame(rows)


def walk_covariance(u: np.ndarray) -> np.ndarray:
    """Covariance, per unit ``tau^2``, of an integrated Wiener process started (zero and flat)
    at ``u[0]``: ``s^2 t / 2 - s^3 / 6`` for ``s <= t``, both measured from ``u[0]``."""
    t = u - u[0]
    low, high = np.minimum.outer(t, t), np.maximum.outer(t, t)
    return low**2 * high / 2 - low**3 / 6


def walk_intensity(curves: np.ndarray, u: np.ndarray, taus: np.ndarray = TAUS,
                   noise_sds: np.ndarray = NOISE_SDS) -> tuple[float, float, float]:
    """REML estimate of ``tau`` and its 95% profile interval, ``(tau, low, high)``, for curves
    ``y_c(u) = a_c + b_c u + c_c u^2 + tau * w_c(u) + sigma_c * e_c(u)`` (``curves``
    ``(curve, point)`` at the common ``u`` ``(point,)``, ``w_c`` independent integrated Wiener
    processes, ``e_c`` white noise).

    Every curve is projected on the orthogonal complement of its parabola (the restricted
    likelihood: ``a_c, b_c, c_c`` drop out), where its covariance is ``tau^2 K + sigma_c^2 I``;
    in ``K``'s eigenbasis the log likelihood is a sum over eigenvalues. Each curve's
    ``sigma_c`` is profiled out on ``noise_sds``, the sum over curves maximised over ``taus``;
    the interval holds the ``taus`` within 1.92 (chi-square(1) at 95% / 2) of the maximum.
    Profiling a noise sd per curve makes it a little narrow: on 400 simulated curves with the
    published curves' noise it held the truth in 80-90% of 20 seeds, and the estimate was
    within 22% of it (``tests/test_published_curvature.py``).
    """
    parabola = np.stack([np.ones_like(u), u, u**2], axis=1)
    basis, _ = np.linalg.qr(parabola, mode="complete")
    complement = basis[:, parabola.shape[1]:]
    eigenvalues, vectors = np.linalg.eigh(complement.T @ walk_covariance(u) @ complement)
    projected = curves @ complement @ vectors  # (curve, point - 3)
    variance = (taus[:, None, None] ** 2 * eigenvalues
                + noise_sds[None, :, None] ** 2)  # (tau, sd, point - 3)
    log_likelihood = -0.5 * (projected[:, None, None, :] ** 2 / variance
                             + np.log(variance)).sum(-1)  # (curve, tau, sd)
    profile = log_likelihood.max(axis=2).sum(axis=0)  # (tau,)
    inside = taus[profile >= profile.max() - 1.92]
    return float(taus[profile.argmax()]), float(inside.min()), float(inside.max())


def curve_matrix(log: pd.DataFrame, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
    """``(ln L, u)``: one row per curve with a loss at every checkpoint between ``first`` and
    ``last`` steps that any curve has, ``u = ln(D / D_first)``."""
    steps = log["tokens"] / TOKENS_PER_STEP
    window = log[(steps >= first) & (steps <= last)]
    wide = window.pivot_table(index=["run_id", "language"], columns="tokens", values="loss")
    wide = wide.dropna()
    tokens = wide.columns.to_numpy(dtype=float)
    return np.log(wide.to_numpy()), np.log(tokens / tokens[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logs", type=Path, required=True,
                        help="Data Mixing Laws' data/RedPajama directory")
    parser.add_argument("--first", type=int, default=10_000, help="first step of the window")
    parser.add_argument("--last", type=int, default=30_000, help="last step of the window")
    parser.add_argument("--domains", nargs="+", default=None,
                        help="only these evaluated domains (default: all of them)")
    parser.add_argument("--output", type=Path,
                        default=REPO / "benchmarks" / "results" / "published_curvature.csv")
    args = parser.parse_args()
    for size in SIZES:
        log = read_checkpoint_log(args.logs / f"{size}.txt", normalise=True)
        if args.domains:
            log = log[log["language"].isin(args.domains)]
        fits = curve_fits(log, args.first, args.last)
        tau, low, high = walk_intensity(*curve_matrix(log, args.first, args.last))
        row = {"commit": commit(), "model": size, "first_step": args.first,
               "last_step": args.last,
               "domains": " ".join(args.domains) if args.domains else "all",
               "curves": len(fits),
               **{f"{column}_{stat}": getattr(fits[column], stat)()
                  for column in ("curvature", "slope", "residual_sd")
                  for stat in ("mean", "std")},
               "walk_tau": tau, "walk_tau_low": low, "walk_tau_high": high}
        append_row(row, args.output)
        print(", ".join(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}"
                        for key, value in row.items()), flush=True)


if __name__ == "__main__":
    main()
