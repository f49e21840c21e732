"""Is ``P(gain > delta)`` optimistic because it is measured on the draws that chose the mix?

    python -m benchmarks.selection_optimism --posterior runs/fit/posterior.nc --tokens 1e7
    python -m benchmarks.selection_optimism --posterior ... --tokens 1e7 --delta 0.0028

``solve`` chooses ``posterior_mean`` (and ``robust``, ``plugin``) on the posterior's draws and
then reports ``P(gain > delta)`` over the reference on the same draws: a winner's curse would
make it too high. Here the draws are split in two at random, ``--splits`` times; each mix is
chosen on one half (:func:`climb_bayes.decide.decision.decision`, as ``solve`` does) and its
``P(gain > delta)`` and mean gain are computed on both halves (in-sample: the half that chose
it; out-of-sample: the other). With ``--delta`` near the mix's gain, ``P`` sits mid-range,
where a bias would show. Rows go to ``--output`` (CSV, appended).
"""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from climb_bayes.decide.compare import gains
from climb_bayes.decide.decision import decision
from climb_bayes.decide.inputs import Options
from climb_bayes.decide.objectives import Problem
from climb_bayes.decide.tables import weighted_loss_draws
from climb_bayes.model.posterior import read_posterior

MIXES = ("posterior_mean", "robust", "plugin")


def split_scores(posterior_path: str, tokens: float, delta: float | None, splits: int,
                 seed: int) -> pd.DataFrame:
    """One row per split and mix: ``delta``, ``P(gain > delta)`` and the mean gain over the
    reference, in-sample and out-of-sample."""
    posterior = read_posterior(posterior_path)
    m, draws = len(posterior.sources), posterior.sigma.shape[0]
    weights = np.full(len(posterior.targets), 1.0 / len(posterior.targets))
    options = Options(target_tokens=tokens, available=None, delta=delta)
    rng = np.random.default_rng(seed)
    rows = []
    for split in range(splits):
        order = rng.permutation(draws)
        choosing = posterior.thinned(np.sort(order[: draws // 2]))
        scoring = posterior.thinned(np.sort(order[draws // 2:]))
        problem = Problem.at_budget(choosing.law, tokens, weights, np.zeros(m), np.ones(m))
        chosen = decision(choosing, problem, options, weights)
        reference, margin = chosen.versus["reference"], chosen.versus["delta"]
        inside = chosen.table.set_index("mix")
        _, weighted = weighted_loss_draws(scoring, chosen.shares, tokens, weights)
        outside = gains(weighted, chosen.names.index(reference), margin)
        for mix in MIXES:
            i = chosen.names.index(mix)
            rows.append({"posterior": posterior_path, "tokens": tokens, "split": split,
                         "mix": mix, "delta": margin,
                         "p_gain_in": inside.loc[mix, "p_gain"],
                         "p_gain_out": outside["p_gain"].iloc[i],
                         "gain_in": inside.loc[mix, "gain_mean"],
                         "gain_out": outside["gain_mean"].iloc[i]})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posterior", required=True)
    parser.add_argument("--tokens", type=float, required=True, help="target budget")
    parser.add_argument("--delta", type=float, default=None,
                        help="margin in nats (default: the run noise, as solve uses)")
    parser.add_argument("--splits", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="benchmarks/results/selection_optimism.csv")
    args = parser.parse_args()
    table = split_scores(args.posterior, args.tokens, args.delta, args.splits, args.seed)
    output = Path(args.output)
    table.to_csv(output, mode="a", header=not output.exists(), index=False)
    with pd.option_context("display.width", 200):
        print(table.drop(columns="posterior").to_string(index=False,
                                                       float_format=lambda v: f"{v:.4g}"))
    bias = table["p_gain_in"] - table["p_gain_out"]
    print(f"P(gain > delta), in-sample minus out-of-sample: mean {bias.mean():+.4f}, "
          f"range {bias.min():+.4f} to {bias.max():+.4f}")


if __name__ == "__main__":
    main()
