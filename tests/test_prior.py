"""Prior predictive sanity (docs/model.md): the default priors give losses in a plausible
range for the data at hand, and the check itself rejects an absurd prior."""

import dataclasses

import jax
import numpy as np
import numpyro
import pytest
import yaml
from hydra import compose, initialize_config_dir
from numpyro.infer import Predictive
from omegaconf import DictConfig, OmegaConf

from climb_bayes.cli import CONFIG_DIR
from climb_bayes.data.simulated import simulate_pilots
from climb_bayes.data.validation import validate_pilots
from climb_bayes.model.fitting import Sampler, model_data
from climb_bayes.model.law import INTERACTION_FORMS, LawParams, effective_share, expected_loss
from climb_bayes.model.numpyro_model import (
    CENTRED,
    POOLED_SITES,
    ModelData,
    anchor_tokens,
    climb_model,
    transfer_pairs,
    typical_share,
)
from climb_bayes.model.priors import Priors

DRAWS = 500


@pytest.fixture(scope="module")
def simulated() -> tuple[ModelData, np.ndarray]:
    frame, _ = simulate_pilots(languages=3, seed=0)
    data, loss, _ = model_data(validate_pilots(frame, "<simulated>"))
    return data, np.asarray(loss, dtype=np.float64)


def prior_predictive(data: ModelData, priors: Priors, form: str, seed: int = 0) -> np.ndarray:
    """``(draw, obs)`` prior predictive losses."""
    draws = Predictive(climb_model, num_samples=DRAWS)(
        jax.random.PRNGKey(seed), data=data, priors=priors, form=form)
    return np.asarray(draws["loss"], dtype=np.float64)


def plausibility_problems(draws: np.ndarray, observed: np.ndarray) -> list[str]:
    """What makes prior predictive losses implausible for ``observed`` (empty: plausible).

    The central 90% of all prior predictive losses must lie within [0.2 x the smallest, 5 x
    the largest] observed loss, and their median within a factor 2 of the observed median.
    """
    problems = []
    if not np.all(np.isfinite(draws)):
        problems.append(f"{np.sum(~np.isfinite(draws))} non-finite draws")
        draws = draws[np.isfinite(draws)]
    q05, q50, q95 = np.quantile(draws, [0.05, 0.5, 0.95])
    low, median, high = observed.min(), np.median(observed), observed.max()
    if not q05 > 0.2 * low:
        problems.append(f"5% quantile {q05:.3g} <= 0.2 x the smallest observed loss {low:.3g}")
    if not q95 < 5 * high:
        problems.append(f"95% quantile {q95:.3g} >= 5 x the largest observed loss {high:.3g}")
    if not 0.5 * median < q50 < 2 * median:
        problems.append(f"median {q50:.3g} not within x2 of the observed median {median:.3g}")
    return problems


@pytest.mark.parametrize("form", sorted(INTERACTION_FORMS))
def test_default_prior_predictive_is_plausible(simulated, form: str) -> None:
    data, observed = simulated
    draws = prior_predictive(data, Priors(), form)
    assert draws.shape == (DRAWS, observed.size)
    assert not np.isnan(draws).any()
    assert plausibility_problems(draws, observed) == []
    # every observation's own prior predictive interval covers it: per-row plausibility
    low, high = np.quantile(draws, [0.01, 0.99], axis=0)
    assert np.mean((low <= observed) & (observed <= high)) > 0.9


@pytest.mark.parametrize("absurd", [Priors(E_fraction=50.0),
                                    Priors(E_fraction=0.05, B_fraction=0.001)])
def test_absurd_prior_fails_the_check(simulated, absurd: Priors) -> None:
    """A prior that puts the irreducible loss at 50x the typical loss, or all of the loss
    at a twentieth of it, must be rejected by the same check."""
    data, observed = simulated
    draws = prior_predictive(data, absurd, "source_saturating")
    assert plausibility_problems(draws, observed) != []


def test_anchored_sampling_keeps_the_lognormal_prior_on_B(simulated) -> None:
    """``B`` is sampled as ``A = B * x0 ** -beta`` at the anchor; its prior must not move."""
    data, _ = simulated
    anchor = np.array([0.03, 0.2, 1.0], dtype=np.float32)[: data.anchor.shape[0]]
    priors = Priors()
    draws = Predictive(climb_model, num_samples=4000)(
        jax.random.PRNGKey(1), data=data._replace(anchor=anchor), priors=priors)
    log_B = np.log(np.asarray(draws["B"], dtype=np.float64))
    expected = np.log(priors.B_fraction * np.asarray(data.loss_scale))
    # 4000 draws: the standard error of the mean is 1/63 of B_log_sd, that of the sd ~1/90
    np.testing.assert_allclose(log_B.mean(axis=0), expected, atol=0.06)
    np.testing.assert_allclose(log_B.std(axis=0), priors.B_log_sd, rtol=0.05)
    # and it is anchored: A = B * x0 ** -beta, draw by draw
    np.testing.assert_allclose(np.asarray(draws["loss_split"])[..., 1],
                               np.asarray(draws["B"]) * anchor ** -np.asarray(draws["beta"]),
                               rtol=1e-4)


def test_anchor_is_the_geometric_mean_of_own_tokens() -> None:
    shares = np.array([[0.5, 0.5], [0.1, 0.9], [1.0, 0.0]])
    tokens = np.array([1.0, 4.0, 2.0])
    # observations: (point, target); target 1 never trained on in point 2; target 2 evaluation-only
    obs_point = np.array([0, 1, 2, 0, 1, 2, 0])
    obs_target = np.array([0, 0, 0, 1, 1, 1, 2])
    self_map = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    anchor = anchor_tokens(shares, tokens, obs_point, obs_target, self_map)
    np.testing.assert_allclose(anchor, [np.cbrt(0.5 * 0.4 * 2.0), np.sqrt(0.5 * 3.6), 1.0])


def test_transfer_is_sampled_at_the_typical_share(simulated) -> None:
    """``a_pair`` is the transfer at the typical share ``s0``: the law's ``a`` times the
    saturation factor of the target's ``eta`` at ``s0``, draw by draw."""
    data, _ = simulated
    draws = Predictive(climb_model, num_samples=200)(jax.random.PRNGKey(2), data=data,
                                                      priors=Priors())
    sources, targets = transfer_pairs(np.asarray(data.self_map))
    s0 = float(data.typical_share)
    eta = np.asarray(draws["eta"], dtype=np.float64)[:, targets]
    factor = (1 - np.exp(-eta * s0)) / (eta * s0)
    a = np.asarray(draws["a"], dtype=np.float64)[:, sources, targets]
    np.testing.assert_allclose(a * factor, np.asarray(draws["a_pair"]), rtol=1e-4, atol=1e-6)


def test_typical_share_is_the_geometric_mean_of_mixed_shares() -> None:
    runs = np.array([[0.5, 0.5, 0.0], [0.1, 0.2, 0.7], [1.0, 0.0, 0.0]])  # last: monolingual
    expected = np.exp(np.mean(np.log([0.5, 0.5, 0.1, 0.2, 0.7])))
    assert typical_share(runs) == pytest.approx(expected)


@pytest.fixture(scope="module")
def evaluation_only() -> ModelData:
    """The simulated pilots with French never trained on (its share given to German), but
    still evaluated: an evaluation-only target."""
    frame, _ = simulate_pilots(languages=3, seed=0)
    frame = frame.assign(share_de=frame["share_de"] + frame["share_fr"]).drop(columns="share_fr")
    # no run effect: these tests read the law's loss, the Student-t's location
    data, _, _ = model_data(validate_pilots(frame, "<simulated>"), run_effect=False)
    assert np.asarray(data.self_map).sum(axis=0).tolist() == [1.0, 1.0, 0.0]
    return data


def test_an_evaluation_only_target_is_anchored_at_its_effective_tokens(evaluation_only) -> None:
    """``B = A * x0 ** beta`` with ``x0`` the geometric mean of the effective tokens over the
    target's observations (the law's, computed here independently); the prior on ``B`` is
    still ``LogNormal(log(B_fraction * loss_scale), B_log_sd)``."""
    data, priors = evaluation_only, Priors()
    draws = Predictive(climb_model, num_samples=2000)(jax.random.PRNGKey(3), data=data,
                                                      priors=priors)
    params = LawParams(**{name: draws[name] for name in LawParams._fields})
    share = jax.vmap(lambda p: effective_share(p, data.shares, data.tokens_scaled,
                                               data.self_map))(params)
    obs = np.asarray(data.obs_target) == 2
    tokens = np.asarray(share)[:, np.asarray(data.obs_point)[obs], 2] * np.asarray(
        data.tokens_scaled)[np.asarray(data.obs_point)[obs]]
    x0 = np.exp(np.log(tokens).mean(axis=1))
    reducible = np.asarray(draws["loss_split"])[:, 2, 1]
    np.testing.assert_allclose(reducible * x0 ** np.asarray(draws["beta"])[:, 2],
                               np.asarray(draws["B"])[:, 2], rtol=1e-3)
    log_b = np.log(np.asarray(draws["B"], dtype=np.float64))
    centre = np.log(priors.B_fraction * np.asarray(data.loss_scale))
    # 2000 draws: standard errors 0.022 B_log_sd (mean) and 0.016 B_log_sd (sd)
    np.testing.assert_allclose(log_b.mean(axis=0), centre, atol=0.08 * priors.B_log_sd)
    np.testing.assert_allclose(log_b.std(axis=0), priors.B_log_sd, rtol=0.06)


def test_scaling_the_transfer_into_an_evaluation_only_target_leaves_its_losses(
        evaluation_only) -> None:
    """The ridge an evaluation-only target cannot see past, in the law itself: the transfer
    into it (``a`` and ``k``) times ``c`` and ``B`` times ``c ** beta`` predict the same
    losses, while the other targets' losses do move."""
    data = evaluation_only
    draw = {name: value[0] for name, value in Predictive(climb_model, num_samples=1)(
        jax.random.PRNGKey(4), data=data, priors=Priors(discrepancy_scale=0.0)).items()}
    params = LawParams(**{name: np.asarray(draw[name], dtype=np.float64)
                          for name in LawParams._fields})
    params = params._replace(a=np.abs(params.a) + 0.2 * (1 - np.asarray(data.self_map)))

    def losses(c: np.ndarray) -> np.ndarray:
        scaled = params._replace(a=params.a * c, k=params.k * c, B=params.B * c ** params.beta)
        return np.asarray(expected_loss(scaled, data.shares, data.tokens_scaled,
                                        data.self_map))

    once = losses(np.ones(3))
    np.testing.assert_allclose(losses(np.array([1.0, 1.0, 3.0])), once, rtol=1e-4)
    assert np.ptp(once[:, 2]) > 0.01  # the mixes differ
    assert np.abs(losses(np.array([3.0, 1.0, 1.0])) - once).max() > 0.01


def test_the_model_fixes_the_mean_transfer_into_an_evaluation_only_target(
        evaluation_only) -> None:
    """So the model measures only how the sources of an evaluation-only target compare: the
    transfer the law uses into it has the mean ``a_mean`` over its sources in every prior draw,
    and a common shift of ``a_pair`` into it changes neither that transfer nor any loss, while
    a shift of one pair does (``measured_transfer``)."""
    data, priors = evaluation_only, Priors(discrepancy_scale=0.0)
    draws = Predictive(climb_model, num_samples=50)(jax.random.PRNGKey(4), data=data,
                                                    priors=priors)
    sources, targets = transfer_pairs(np.asarray(data.self_map))
    into_french = targets == 2
    eta = np.asarray(draws["eta"], dtype=np.float64)[:, 2:]
    s0 = float(data.typical_share)
    used = np.asarray(draws["a"], dtype=np.float64)[:, sources[into_french], 2] * (
        (1 - np.exp(-eta * s0)) / (eta * s0))
    np.testing.assert_allclose(used.mean(axis=1), priors.a_mean, rtol=1e-4)
    trained = np.asarray(draws["a"])[:, sources[~into_french], targets[~into_french]]
    assert np.ptp(trained.mean(axis=1)) > 0.05  # into trained targets the mean is free
    draw = {name: value[0] for name, value in draws.items()}

    def traced(shift: np.ndarray) -> dict:
        sites = {name: draw[name] for name in ("beta_mu", "beta_tau", "eta", "sigma",
                                                "log_beta", "a_mu", "a_tau", "k_tau",
                                                "k_pair", "loss_split")}
        sites["a_pair"] = draw["a_pair"] + shift
        model = numpyro.handlers.substitute(numpyro.handlers.seed(climb_model, 0), sites)
        return numpyro.handlers.trace(model).get_trace(data=data, priors=priors,
                                                       centred=POOLED_SITES)

    once = traced(np.zeros(len(targets)))
    common = traced(np.where(into_french, 0.7, 0.0))
    np.testing.assert_allclose(common["loss"]["fn"].loc, once["loss"]["fn"].loc, rtol=1e-5)
    np.testing.assert_allclose(common["a"]["value"], once["a"]["value"], rtol=1e-5,
                               atol=1e-7)
    one = traced(np.where(np.arange(len(targets)) == np.flatnonzero(into_french)[0], 0.7, 0.0))
    french = np.asarray(data.obs_target) == 2
    assert np.abs(np.asarray(one["loss"]["fn"].loc - once["loss"]["fn"].loc)[french]
                  ).max() > 1e-3


def fit_config(*overrides: str) -> DictConfig:
    """``conf/fit.yaml`` composed as ``python -m climb_bayes.fit`` composes it."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("fit", list(overrides))


@pytest.mark.parametrize("law", ["source_saturating", "self_saturating"])
def test_the_fit_config_holds_every_prior_at_its_default(law: str) -> None:
    """Every hyper-parameter of ``Priors`` is a key of ``law.priors`` in the composed fit
    config (so ``law.priors.<key>=...`` overrides it) with the dataclass's default, whichever
    law is chosen; the law files set only the form (the defaults are written once)."""
    config = fit_config(f"law={law}")
    assert OmegaConf.to_container(config.law.priors) == dataclasses.asdict(Priors())
    assert config.law.form == law
    assert config.law.centred == list(CENTRED) and config.law.extrapolation_sd == 0.0
    assert OmegaConf.to_container(config.sampler) == dataclasses.asdict(Sampler())
    assert yaml.safe_load((CONFIG_DIR / "law" / f"{law}.yaml").read_text()) == {"form": law}
    changed = fit_config(f"law={law}", "law.priors.discrepancy_scale=0", "law.priors.nu=null")
    priors = Priors.from_mapping(OmegaConf.to_container(changed.law.priors))
    assert priors == dataclasses.replace(Priors(), discrepancy_scale=0.0, nu=None)
