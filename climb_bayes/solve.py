"""The decision: recommended mixes for a target budget, with their uncertainty.

``python -m climb_bayes.solve posterior=runs/fit/posterior.nc target_tokens=2e9
output=runs/mix`` reads a posterior and writes, in ``output``:

- ``<mix>.yaml`` for every mix (a Hydra ``mix`` group entry: ``python train.py
  +mix=posterior_mean``): top-level ``shares: {lang: share}`` over the posterior's training
  languages, summing to 1, and ``metadata:`` (predicted loss of every evaluated language at
  ``target_tokens``, posterior mean and 90% interval; the weighted loss; its gain over the
  reference mix and ``P(gain > delta)``, ``P(regret < delta)`` and ``P(beats posterior_mean)``
  (:mod:`climb_bayes.decide.compare`); the comparison's settings and the recommendation; solver
  diagnostics; provenance: the posterior's
  SHA-256 and fit health, the settings and the package version). Mixes: ``posterior_mean``
  (minimises the posterior expected weighted loss), ``plugin`` (the same at the posterior-mean
  parameters), ``climb_two_step`` (the paper's procedure on the point estimate; its gap to
  ``plugin`` is reported), ``robust`` (by default the CVaR of the regret against each draw's own
  optimum; or mean + k sd, or an upper quantile, of the weighted loss),
  ``isolated`` (the solver with all transfer removed), and the heuristics ``uniform``,
  ``natural``, ``temperature`` and ``unimax`` (the last three need the available tokens).
- ``comparison.csv``: one row per mix: :data:`climb_bayes.decide.mix_directory.COMPARISON_COLUMNS`
  and ``share_<lang>``. Printed too. The reference is ``uniform``, or where the bounds forbid it
  ``uniform_capped`` (the mix closest to uniform within them), added to the mixes.
- ``near_optimal_shares.csv``: per training language the range of shares of the near-optimal
  mixes (``P(regret < delta) >= 0.8``, among the named mixes and 400 per-draw optima).
- ``optimal_shares.csv``: one row per training language: ``language``, ``mean``, ``q05``,
  ``q50``, ``q95`` of the optimal share of each posterior draw solved on its own.
- ``optimal_share_draws.csv``: one row per draw: ``draw``, ``share_<lang>``.
- ``loss_differences.csv``: per mix and evaluated language (and the weighted loss), the
  posterior mean and 90% interval of its loss minus the reference's, draw by draw
  (:mod:`climb_bayes.decide.loss_differences`).

:mod:`climb_bayes.decide.mix_directory` owns the directory: its file names and columns.

The steps are in :mod:`climb_bayes.decide` (:mod:`~climb_bayes.decide.inputs`,
:mod:`~climb_bayes.decide.decision`, :mod:`~climb_bayes.decide.tables`,
:mod:`~climb_bayes.decide.extrapolation`, :mod:`~climb_bayes.decide.mix_file`,
:mod:`~climb_bayes.decide.mix_directory`); the mathematics
in :mod:`climb_bayes.decide.objectives`, :mod:`climb_bayes.decide.optimal_mix`,
:mod:`climb_bayes.decide.two_step` and :mod:`climb_bayes.decide.baselines`; the constrained
Newton solver in :mod:`climb_bayes.decide.interior`. Bad input (unknown languages,
infeasible constraints, a posterior that is not one, a non-positive budget) exits with status
2 before anything is written; every file is written atomically. A posterior from a broken fit
(:mod:`climb_bayes.model.health`) is refused unless ``allow_broken=true``; a marginal or allowed
broken one is named so beside the printed table.
"""

import json
import logging
from dataclasses import replace

import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf

import climb_bayes.config_store  # noqa: F401  (registers solve_schema before Hydra starts)
from climb_bayes import __version__
from climb_bayes.cli import output_directory
from climb_bayes.decide.compare import NEAR_OPTIMAL_LEVEL
from climb_bayes.decide.decision import decision
from climb_bayes.decide.extrapolation import extrapolation_warnings, floor_warnings
from climb_bayes.decide.inputs import (
    Options,
    available_tokens,
    feasible_bounds,
    language_weights,
    share_bounds,
    solve_options,
)
from climb_bayes.decide.loss_differences import loss_differences
from climb_bayes.decide.mix_directory import SolverTables, mix_directory_files
from climb_bayes.decide.mix_file import mix_file
from climb_bayes.decide.mixes import OPTIMISED, clean_shares
from climb_bayes.decide.objectives import Problem
from climb_bayes.decide.tables import near_optimal_table, optimal_share_tables
from climb_bayes.errors import exits_on_input_error
from climb_bayes.io import write_text
from climb_bayes.model.health import notice
from climb_bayes.model.posterior import Posterior, file_sha256, read_posterior
from climb_bayes.overrides import check_command_line

log = logging.getLogger(__name__)


# --- the command -------------------------------------------------------------------------------

def _problem(cfg: DictConfig, posterior: Posterior, options: Options
             ) -> tuple[Problem, Options, np.ndarray]:
    """The problem, the options with the available tokens and the language weights: the
    settings of ``cfg`` that name the posterior's languages, checked against them."""
    weights = language_weights(cfg.weights, posterior.targets)
    available = available_tokens(cfg.available, posterior.sources)
    lower, upper = share_bounds(cfg.min_share, cfg.max_share, posterior.sources)
    lower, upper = feasible_bounds(lower, upper, available, options.max_epochs,
                                   options.target_tokens, posterior.sources)
    problem = Problem.at_budget(posterior.law, options.target_tokens, weights, lower, upper)
    return problem, replace(options, available=available), weights


def decide(cfg: DictConfig, options: Options) -> dict[str, str]:
    """Everything the command writes, as ``{file name: text}`` (nothing written yet), with
    the settings ``options`` from :func:`solve_options`."""
    posterior = read_posterior(cfg.posterior, allow_broken=cfg.allow_broken)
    problem, options, weights = _problem(cfg, posterior, options)
    sources, targets = posterior.sources, posterior.targets
    chosen = decision(posterior, problem, options, weights)
    names, shares, losses, table = chosen.names, chosen.shares, chosen.losses, chosen.table
    info, optima, versus = chosen.info, chosen.optima, chosen.versus
    optimised = {name: shares[names.index(name)] for name in OPTIMISED}
    delta = versus["delta"]
    near = near_optimal_table(posterior, shares, optima, chosen.optimum_values,
                              options.target_tokens, weights, delta)
    summary, draws = optimal_share_tables(np.stack([clean_shares(x) for x in optima.x]), sources)
    warnings = extrapolation_warnings(
        sources, np.asarray(posterior.idata.constant_data["run_shares"].values, np.float64),
        posterior.law.pilot_tokens, options.target_tokens, optimised, options.budget_factor
    ) + floor_warnings(posterior.law, weights, options.target_tokens, optimised)
    provenance = {
        "posterior": str(cfg.posterior), "posterior_sha256": file_sha256(cfg.posterior),
        "posterior_climb_bayes_version": str(posterior.idata.posterior.attrs.get(
            "climb_bayes_version")),
        "climb_bayes_version": __version__, "form": posterior.law.form,
        "fit_health": posterior.health.verdict,
        "fit_health_reasons": list(posterior.health.reasons),
        "target_tokens": options.target_tokens, "reference_tokens": posterior.law.reference,
        "draws": int(losses.shape[0]),
        "weights": dict(zip(targets, weights.tolist(), strict=True)),
        "lower": dict(zip(sources, problem.lower.tolist(), strict=True)),
        "upper": dict(zip(sources, problem.upper.tolist(), strict=True)),
        "settings": OmegaConf.to_container(cfg, resolve=True),
        "solver": "primal-dual interior point, exact JAX gradient and Hessian, float64",
    }
    mixes = {}
    for index, name in enumerate(names):
        extra = {"comparison": versus, "solver": info.get(name, {"objective": "heuristic"}),
                 "per_draw_optima_converged": float(np.mean(optima.converged)),
                 "extrapolation_warnings": warnings, "provenance": provenance}
        if options.available is not None:
            extra["epochs"] = dict(zip(sources, (shares[index] * options.target_tokens
                                                 / np.maximum(options.available, 1e-300)
                                                 ).tolist(), strict=True))
        mixes[name] = mix_file(shares[index], losses[:, index], table.iloc[index], sources,
                               targets, extra)
    files = mix_directory_files(mixes, SolverTables(
        comparison=table, optimal_shares=summary, optimal_share_draws=draws,
        near_optimal_shares=near,
        loss_differences=loss_differences(losses, weights, names, targets, versus["reference"])))
    for message in warnings:
        log.warning(message)
    gap = info["climb_two_step"]
    print(table.to_string(index=False, float_format="%.4f"))
    print(f"climb_two_step vs plugin (point estimate): objective gap {gap['gap_to_plugin']:.3g} "
          f"nats, L1 distance of the shares {gap['l1_distance_to_plugin']:.3g}")
    print(f"per-draw optimal shares (90% interval over {len(optima.x)} draws):")
    print(summary.to_string(index=False, float_format="%.4f"))
    print(f"near-optimal mixes (P(regret < {delta:.3g}) >= {NEAR_OPTIMAL_LEVEL:g}; delta from "
          f"{versus['delta_from']}): {int(near['near_optimal_mixes'].iloc[0])} of "
          f"{int(near['candidates'].iloc[0])} candidates; the shares they span:")
    print(near[["language", "min", "max"]].to_string(index=False, float_format="%.4f"))
    print(f"recommended: {versus['recommended']}. {versus['recommendation']}")
    if (message := notice(posterior.health, str(cfg.posterior))) is not None:
        print(message)
    unconverged = int(np.sum(~optima.converged))
    if unconverged:
        log.warning("%d of %d per-draw optima did not reach the KKT tolerance", unconverged,
                    len(optima.x))
    return files


@hydra.main(config_path="../conf", config_name="solve", version_base="1.3")
@exits_on_input_error
def main(cfg: DictConfig) -> None:
    """Solve for the mixes and write them (all checks before the first file is written)."""
    options = solve_options(cfg)
    output = output_directory(cfg.output, "output", "runs/mix",
                              "<mix>.yaml files and the solver's CSV tables")
    files = decide(cfg, options)
    for name, text in files.items():
        write_text(output / name, text)
    print(f"wrote {len(files)} files to {output}: {json.dumps(sorted(files))}")


if __name__ == "__main__":
    check_command_line("solve")
    main()
