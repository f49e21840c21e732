"""The point-fit baseline (``benchmarks/point_fit.py``): it recovers a known law, and it is a
function of the pilot table, not of the order of its rows."""

from dataclasses import replace

import numpy as np
import pytest

from benchmarks.point_fit import fit_point
from climb_bayes.data.pilot_table import SHARE_PREFIX
from climb_bayes.data.simulated import simulate_pilots
from climb_bayes.data.validation import validate_pilots


@pytest.fixture(scope="module")
def noiseless():
    """A 3-language law world observed without noise at three pilot budgets."""
    frame, world = simulate_pilots(languages=3, budgets=(1e7, 3e7, 1e8), noise=1e-6, seed=3)
    return validate_pilots(frame), world


def test_the_point_fit_recovers_a_noiseless_law(noiseless):
    table, world = noiseless
    fitted = fit_point(table, num_starts=8).law
    fitted_rows = table.frame[~table.untrained()]  # the rows the fit uses (untrained=drop)
    shares = fitted_rows[[SHARE_PREFIX + s for s in table.sources]].to_numpy()
    tokens = fitted_rows["tokens"].to_numpy()
    target = table.targets.index
    columns = [target(language) for language in fitted_rows["language"]]
    rows = np.arange(len(fitted_rows))
    fit = fitted.predict_loss(shares, tokens)[0][rows, columns]
    truth = world.predict_loss(shares, tokens)[0][rows, columns]
    assert np.max(np.abs(fit - truth)) < 1e-3  # within the Huber scale
    mixes = np.array([[1 / 3, 1 / 3, 1 / 3], [0.6, 0.3, 0.1]])  # at 3x the largest pilot
    at_3x = fitted.predict_loss(mixes, np.full(2, 3e8))[0]
    assert np.max(np.abs(at_3x - world.predict_loss(mixes, np.full(2, 3e8))[0])) < 2e-3


def test_the_point_fit_does_not_depend_on_the_row_order(noiseless):
    table, _ = noiseless
    shuffled = replace(table, frame=table.frame.sample(frac=1.0, random_state=1)
                       .reset_index(drop=True))
    first, second = fit_point(table, num_starts=3), fit_point(shuffled, num_starts=3)
    assert first.objective == second.objective
    for a, b in zip(first.law.params, second.law.params, strict=True):
        np.testing.assert_array_equal(a, b)
