"""Where is the posterior hard for NUTS? Fit one simulated world and find its stiffest directions.

    python -m benchmarks.fit_geometry --setting law_m4_pos_10x --seed 0        # the fit's default
    python -m benchmarks.fit_geometry --setting law_m4_pos_10x --non-centred   # without partial
    python -m benchmarks.fit_geometry --setting law_m4_pos_10x --non-centred --centred log_beta

NUTS with a dense mass matrix takes leapfrog steps of about ``1 / sqrt(lambda_max)`` in the
posterior's whitened coordinates, where ``lambda_max`` is the largest eigenvalue of the
potential's Hessian ``H`` whitened by the posterior covariance ``S`` (``L^T H L``,
``S = L L^T``). For a Gaussian posterior every eigenvalue is 1; a funnel or a curved ridge
makes ``H`` much stiffer in some places than ``S`` says on average, and the step size (and so
the tree depth) follows the stiffest place the chains visit.

The script fits the world's pilots as the simulation study does (each run's final loss,
2 chains x 500 draws, the fit's default priors, no refit), prints the fit's time, step size,
mean tree depth and health, then evaluates ``L^T H L`` at ``--points`` posterior draws (in
numpyro's unconstrained coordinates, ``S`` from all draws) and names the coordinates that move
most, in posterior sds, along each draw's stiffest direction. ``S`` is estimated from the
draws, so a coordinate the pilots do not inform (a random walk's innovation with three
budgets) can appear there through a chance correlation with a stiff one; the stiff ones recur
from draw to draw.
"""

import argparse
import json
import time

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
from jax.flatten_util import ravel_pytree
from numpyro.infer.util import unconstrain_fn

from benchmarks.simulation.settings import SETTINGS, make_world
from climb_bayes.data.validation import validate_pilots
from climb_bayes.model.fitting import Sampler, fit_posterior, model_data, pilot_rows
from climb_bayes.model.health import stored_health
from climb_bayes.model.map_search import prior_median
from climb_bayes.model.numpyro_model import POOLED_SITES, climb_model
from climb_bayes.model.priors import Priors


def latent_draws(idata: az.InferenceData, model_kwargs: dict) -> tuple[np.ndarray, list[str],
                                                                       object]:
    """The posterior draws in numpyro's unconstrained coordinates ``(draw, dim)``, a label per
    coordinate (``site[index]``) and the function that unflattens one."""
    start, potential = prior_median(climb_model, model_kwargs, jax.random.PRNGKey(0))
    sites = list(start)
    posterior = idata.posterior.stack(sample=("chain", "draw"))
    count = posterior.sizes["sample"]

    def latent(i: int) -> jax.Array:
        values = {s: jnp.asarray(np.moveaxis(posterior[s].values, -1, 0)[i]) for s in sites}
        return ravel_pytree(unconstrain_fn(climb_model, (), model_kwargs, values))[0]

    draws = np.stack([np.asarray(latent(i), np.float64) for i in range(count)])
    _, unravel = ravel_pytree({s: start[s] for s in sites})
    labels = []
    for site in sites:
        size = np.size(start[site])
        labels += [site] if size == 1 else [f"{site}[{j}]" for j in range(size)]
    return draws, labels, (potential, unravel)


def stiffness(draws: np.ndarray, potential: object, points: int
              ) -> list[tuple[int, float, np.ndarray]]:
    """At ``points`` draws spread over the chains: ``(index, lambda_max, direction)``, the
    largest eigenvalue of ``L^T H L`` and its eigenvector mapped back to the coordinates and
    divided by each coordinate's posterior sd."""
    potential_fn, unravel = potential
    covariance = np.cov(draws.T)
    factor = np.linalg.cholesky(covariance + 1e-10 * np.eye(len(covariance)))
    sd = np.sqrt(np.diag(covariance))
    hessian = jax.jit(jax.hessian(lambda flat: potential_fn(unravel(flat))))
    found = []
    for index in np.linspace(0, len(draws) - 1, points).astype(int):
        whitened = factor.T @ np.asarray(hessian(jnp.asarray(draws[index])), np.float64) @ factor
        values, vectors = np.linalg.eigh(0.5 * (whitened + whitened.T))
        found.append((int(index), float(values[-1]), factor @ vectors[:, -1] / sd))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", default="law_m4_pos_10x", choices=sorted(SETTINGS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--centred", nargs="*", default=[], choices=POOLED_SITES,
                        help="pooled sites to sample centred (default: none, the fit's)")
    parser.add_argument("--non-centred", action="store_true",
                        help="sample the other pooled sites non-centred, without the fit's "
                             "partial centring (sampler.partial_centring=false)")
    parser.add_argument("--points", type=int, default=10, help="draws to evaluate H at")
    parser.add_argument("--top", type=int, default=5, help="coordinates named per direction")
    args = parser.parse_args()
    numpyro.set_host_device_count(2)
    jax.config.update("jax_enable_x64", True)  # Hessians in float64

    frame, _, _, _ = make_world(SETTINGS[args.setting], args.seed)
    table = pilot_rows(validate_pilots(frame), "final")
    priors = Priors()
    sampler = Sampler(chains=2, warmup=500, samples=500, seed=0, map_starts=4,
                      progress_bar=False, refit=False, partial_centring=not args.non_centred)
    start = time.perf_counter()
    idata = fit_posterior(table, priors, "source_saturating", sampler,
                          centred=tuple(args.centred))
    seconds = time.perf_counter() - start
    health, stats = stored_health(idata), idata.sample_stats
    print(f"{args.setting} seed {args.seed}, centred {args.centred or 'none'}, partial centring "
          f"{not args.non_centred}: {seconds:.0f} s, "
          f"{health.verdict} (R-hat {health.max_r_hat:.3f}, bulk ESS {health.min_ess_bulk:.0f}, "
          f"{health.divergences} divergences), step size "
          f"{np.round(stats.step_size.values[:, 0], 3)}, mean tree depth "
          f"{float(stats.tree_depth.mean()):.1f}, leapfrog steps per draw "
          f"{float(stats.n_steps.mean()):.0f}")

    data, loss, _ = model_data(table, priors.run_sd_fraction > 0)
    attrs = idata.posterior.attrs  # the coordinates the fit sampled in
    model_kwargs = {"data": data, "priors": priors, "form": "source_saturating",
                    "centred": tuple(json.loads(attrs["centred"])), "loss": loss,
                    "centring": {site: np.asarray(c)
                                 for site, c in json.loads(attrs["centring"]).items()}}
    draws, labels, potential = latent_draws(idata, model_kwargs)
    found = stiffness(draws, potential, args.points)
    for index, largest, direction in found:
        named = np.argsort(-np.abs(direction))[:args.top]
        print(f"draw {index:4d}: lambda_max {largest:7.0f} (step ~ {largest ** -0.5:.3f}); "
              + ", ".join(f"{labels[j]} {direction[j]:+.2f}" for j in named))
    print(f"{len(labels)} coordinates; median lambda_max "
          f"{np.median([f[1] for f in found]):.0f}")


if __name__ == "__main__":
    main()
