"""The CLIMB law (climb_bayes.model.law) against docs/design.md, "The law": identities,
hand-computed values, the smooth floor and its gradients, and monotonicity in the budget."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from climb_bayes.model.law import (
    INTERACTION_FORMS,
    MAX_LOG_REDUCIBLE,
    SHARE_FLOOR,
    LawParams,
    effective_share,
    expected_loss,
    positive_floor,
    self_map,
    transfer_coefficient,
)

FORMS = sorted(INTERACTION_FORMS)
LANGS = ["en", "de", "fr"]

#: Relative tolerance of a float32 evaluation of the law (a few ulps of a loss of ~3 nats).
F32_RTOL = 2e-6

#: As written (docs/design.md), the monolingual mix gives law 1 exactly, but ``positive_floor``
#: adds a constant ``0.1 * SHARE_FLOOR`` (1e-4) to every effective share, however large.

def random_params(rng: np.random.Generator, n_source: int, n_target: int,
                  transfer: bool = True, a_low: float = -0.3, a_high: float = 0.6,
                  k_low: float = -0.05, k_high: float = 0.1) -> LawParams:
    """Plausible law parameters; ``a`` and ``k`` are zero unless ``transfer``."""
    scale = 1.0 if transfer else 0.0
    return LawParams(
        E=jnp.asarray(rng.uniform(1.5, 3.5, n_target), dtype=jnp.float32),
        B=jnp.asarray(rng.uniform(0.5, 2.0, n_target), dtype=jnp.float32),
        beta=jnp.asarray(rng.uniform(0.1, 0.6, n_target), dtype=jnp.float32),
        a=jnp.asarray(scale * rng.uniform(a_low, a_high, (n_source, n_target)),
                      dtype=jnp.float32),
        k=jnp.asarray(scale * rng.uniform(k_low, k_high, (n_source, n_target)),
                      dtype=jnp.float32),
        eta=jnp.asarray(rng.uniform(0.2, 5.0, n_target), dtype=jnp.float32),
    )


def random_mixes(rng: np.random.Generator, n: int, n_source: int) -> np.ndarray:
    """Mixes on the simplex, all shares > 0."""
    return rng.dirichlet(np.ones(n_source), n).astype(np.float32)


def chinchilla(params: LawParams, tokens_scaled: np.ndarray, share: float = 1.0) -> np.ndarray:
    """Law 1 in float64: ``E + B * (share * D / D_ref) ** (-beta)``; ``(n, target)``."""
    E, B, beta = (np.asarray(x, dtype=np.float64) for x in (params.E, params.B, params.beta))
    return E + B * (share * np.asarray(tokens_scaled, dtype=np.float64)[:, None]) ** (-beta)


def monolingual_losses(params: LawParams, tokens: np.ndarray, form: str) -> np.ndarray:
    """Loss of language ``i`` under the mix ``e_i``, for every ``i`` and budget: ``(n, lang)``."""
    smap = self_map(LANGS, LANGS)
    columns = []
    for i in range(len(LANGS)):
        shares = np.zeros((len(tokens), len(LANGS)), dtype=np.float32)
        shares[:, i] = 1.0
        loss = expected_loss(params, jnp.asarray(shares), jnp.asarray(tokens), smap, form)
        columns.append(np.asarray(loss)[:, i])
    return np.stack(columns, axis=1)


TOKENS = np.array([0.05, 0.3, 1.0, 4.0, 60.0], dtype=np.float32)


# ----------------------------------------------------------------------------- law 1


@pytest.mark.parametrize("form", FORMS)
def test_monolingual_mix_is_exactly_chinchilla(form: str) -> None:
    params = random_params(np.random.default_rng(1), 3, 3, transfer=False)
    np.testing.assert_allclose(monolingual_losses(params, TOKENS, form),
                               chinchilla(params, TOKENS), rtol=F32_RTOL)


@pytest.mark.parametrize("transfer", [False, True])
@pytest.mark.parametrize("form", FORMS)
def test_monolingual_mix_is_chinchilla_at_the_floored_share(form: str, transfer: bool) -> None:
    """Everything but the floor is exact: budget scaling, exponent sign, target indexing.

    With transfer the monolingual loss is unchanged too (no other language has tokens).
    """
    params = random_params(np.random.default_rng(2), 3, 3, transfer=transfer)
    floored_one = float(positive_floor(jnp.float32(1.0)))
    np.testing.assert_allclose(monolingual_losses(params, TOKENS, form),
                               chinchilla(params, TOKENS, share=floored_one), rtol=F32_RTOL)


# ----------------------------------------------------------------------------- forms


def test_forms_agree_without_transfer_and_disagree_with_it() -> None:
    rng = np.random.default_rng(3)
    smap = self_map(LANGS, LANGS)
    for _ in range(10):
        shares = jnp.asarray(random_mixes(rng, 16, 3))
        tokens = jnp.asarray(rng.uniform(0.1, 20.0, 16), dtype=jnp.float32)
        without = random_params(rng, 3, 3, transfer=False)
        a, b = (np.asarray(expected_loss(without, shares, tokens, smap, f)) for f in FORMS)
        np.testing.assert_allclose(a, b, rtol=F32_RTOL)
        # the same parameters with transfer: the forms are different functions
        with_transfer = without._replace(
            a=jnp.asarray(rng.uniform(0.2, 0.6, (3, 3)), dtype=jnp.float32))
        a, b = (np.asarray(expected_loss(with_transfer, shares, tokens, smap, f))
                for f in FORMS)
        assert np.max(np.abs(a - b)) > 1e-3


# ----------------------------------------------------------------------------- rt by hand

#: Two languages en, de. ``a[j, i]`` is the transfer from source ``j`` to target ``i``; the
#: diagonal holds junk that the law must ignore (only ``j != i`` transfers).
HAND_A = np.array([[7.0, 0.2], [0.3, -9.0]], dtype=np.float32)  # en->de 0.2, de->en 0.3
HAND_K = np.array([[5.0, 0.1], [0.05, 3.0]], dtype=np.float32)  # en->de 0.1, de->en 0.05
HAND_ETA = np.array([1.5, 0.7], dtype=np.float32)
HAND_R = np.array([[0.7, 0.3]], dtype=np.float32)
HAND_D = np.array([2.0], dtype=np.float32)  # D / D_ref


def hand_params() -> LawParams:
    return LawParams(E=jnp.array([2.0, 2.5]), B=jnp.array([1.0, 1.2]),
                     beta=jnp.array([0.3, 0.4]), a=jnp.asarray(HAND_A),
                     k=jnp.asarray(HAND_K), eta=jnp.asarray(HAND_ETA))


def test_source_saturating_effective_share_by_hand() -> None:
    alpha_de_en = 0.3 + 0.05 * (1 / 2.0 - 1)
    alpha_en_de = 0.2 + 0.1 * (1 / 2.0 - 1)
    rt_en = 0.7 + alpha_de_en * (1.0 - math.exp(-1.5 * 0.3)) / 1.5
    rt_de = 0.3 + alpha_en_de * (1.0 - math.exp(-0.7 * 0.7)) / 0.7
    rt = effective_share(hand_params(), jnp.asarray(HAND_R), jnp.asarray(HAND_D),
                         self_map(["en", "de"], ["en", "de"]), "source_saturating")
    expected = positive_floor(jnp.array([[rt_en, rt_de]], dtype=jnp.float32))
    np.testing.assert_allclose(np.asarray(rt), np.asarray(expected), rtol=1e-6)
    # and the loss is law 4 at that share
    loss = expected_loss(hand_params(), jnp.asarray(HAND_R), jnp.asarray(HAND_D),
                         self_map(["en", "de"], ["en", "de"]), "source_saturating")
    rt64 = np.asarray(expected, dtype=np.float64)[0]
    by_hand = np.array([2.0, 2.5]) + np.array([1.0, 1.2]) * (rt64 * 2.0) ** -np.array([0.3, 0.4])
    np.testing.assert_allclose(np.asarray(loss)[0], by_hand, rtol=F32_RTOL)


def test_self_saturating_effective_share_by_hand() -> None:
    alpha_de_en = 0.3 + 0.05 * (1 / 2.0 - 1)
    alpha_en_de = 0.2 + 0.1 * (1 / 2.0 - 1)
    rt_en = 0.7 + math.exp(-1.5 * 0.7) * alpha_de_en * 0.3
    rt_de = 0.3 + math.exp(-0.7 * 0.3) * alpha_en_de * 0.7
    rt = effective_share(hand_params(), jnp.asarray(HAND_R), jnp.asarray(HAND_D),
                         self_map(["en", "de"], ["en", "de"]), "self_saturating")
    expected = positive_floor(jnp.array([[rt_en, rt_de]], dtype=jnp.float32))
    np.testing.assert_allclose(np.asarray(rt), np.asarray(expected), rtol=1e-6)


@pytest.mark.parametrize("form", FORMS)
def test_evaluation_only_target_gets_the_transferred_share_alone(form: str) -> None:
    """Sources en, de (de source-only); targets en, fr (fr evaluation-only)."""
    sources, targets = ["en", "de"], ["en", "fr"]
    a = np.array([[4.0, 0.25], [0.3, 0.15]], dtype=np.float32)  # a[en, en] = 4 is ignored
    k = np.array([[1.0, 0.02], [0.04, 0.06]], dtype=np.float32)
    eta = np.array([2.0, 0.8], dtype=np.float32)
    params = LawParams(E=jnp.array([2.0, 2.2]), B=jnp.array([1.0, 1.0]),
                       beta=jnp.array([0.3, 0.3]), a=jnp.asarray(a), k=jnp.asarray(k),
                       eta=jnp.asarray(eta))
    shares = np.array([[0.6, 0.4], [0.1, 0.9], [1.0, 0.0]], dtype=np.float32)
    tokens = np.array([0.5, 1.0, 3.0], dtype=np.float32)
    rt = np.asarray(effective_share(params, jnp.asarray(shares), jnp.asarray(tokens),
                                    self_map(sources, targets), form))
    alpha = a[None] + k[None] * (1 / tokens[:, None, None] - 1)  # (n, source, target)
    r_en, r_de = shares[:, 0].astype(np.float64), shares[:, 1].astype(np.float64)
    if form == "source_saturating":
        fr = (alpha[:, 0, 1] * (1 - np.exp(-eta[1] * r_en))
              + alpha[:, 1, 1] * (1 - np.exp(-eta[1] * r_de))) / eta[1]
        en = r_en + alpha[:, 1, 0] * (1 - np.exp(-eta[0] * r_de)) / eta[0]
    else:
        fr = alpha[:, 0, 1] * r_en + alpha[:, 1, 1] * r_de
        en = r_en + np.exp(-eta[0] * r_en) * alpha[:, 1, 0] * r_de
    np.testing.assert_allclose(rt[:, 1], np.asarray(positive_floor(jnp.asarray(fr))),
                               rtol=1e-5)
    np.testing.assert_allclose(rt[:, 0], np.asarray(positive_floor(jnp.asarray(en))),
                               rtol=1e-5)
    # without incoming transfer an evaluation-only language sits on the floor
    no_transfer = params._replace(a=params.a.at[:, 1].set(0.0), k=params.k.at[:, 1].set(0.0))
    rt0 = np.asarray(effective_share(no_transfer, jnp.asarray(shares), jnp.asarray(tokens),
                                     self_map(sources, targets), form))
    np.testing.assert_allclose(rt0[:, 1], float(positive_floor(jnp.float32(0.0))), rtol=1e-6)


def test_transfer_coefficient() -> None:
    rng = np.random.default_rng(4)
    a = rng.normal(size=(3, 4)).astype(np.float32)
    k = rng.normal(size=(3, 4)).astype(np.float32)
    tokens = np.array([0.1, 1.0, 7.5], dtype=np.float32)
    alpha = np.asarray(transfer_coefficient(jnp.asarray(a), jnp.asarray(k), jnp.asarray(tokens)))
    assert alpha.shape == (3, 3, 4)
    for n, d in enumerate(tokens):
        np.testing.assert_allclose(alpha[n], a + k * (1 / d - 1), rtol=1e-5, atol=1e-6)
    # at the reference budget k drops out; at an infinite one the transfer is a - k
    np.testing.assert_array_equal(alpha[1], a)
    far = np.asarray(transfer_coefficient(jnp.asarray(a), jnp.asarray(k), jnp.array([1e7])))
    np.testing.assert_allclose(far[0], a - k, atol=1e-5)
    # a batch of draws keeps its leading axes: (draw, n, source, target)
    batch = np.asarray(transfer_coefficient(jnp.stack([a, 2 * a]), jnp.stack([k, k]),
                                            jnp.asarray(tokens)))
    assert batch.shape == (2, 3, 3, 4)
    np.testing.assert_allclose(batch[1, 1], 2 * a, rtol=1e-6)


# ----------------------------------------------------------------------------- the floor


def test_positive_floor_is_positive_monotone_and_close_to_identity() -> None:
    x = jnp.asarray(np.concatenate([-np.logspace(3, -6, 50), [0.0], np.logspace(-6, 2, 50)]),
                    dtype=jnp.float32)
    y = np.asarray(positive_floor(x))
    assert np.all(np.isfinite(y))
    assert np.all(y > 0)
    assert np.all(y >= 0.1 * SHARE_FLOOR * (1 - 1e-6))
    assert np.all(np.diff(y) >= 0)
    big = np.asarray(x) >= 10 * SHARE_FLOOR
    # close to x above the floor's scale: off by at most a fraction of the floor
    assert np.all(np.abs(y[big] - np.asarray(x)[big]) <= 0.2 * SHARE_FLOOR)


def test_positive_floor_is_the_identity_well_above_its_scale() -> None:
    x = jnp.asarray(np.logspace(np.log10(30 * SHARE_FLOOR), 1, 40), dtype=jnp.float32)
    np.testing.assert_allclose(np.asarray(positive_floor(x)), np.asarray(x), rtol=1e-5)


@pytest.mark.parametrize("form", FORMS)
def test_gradient_is_finite_under_strong_interference_and_at_zero_share(form: str) -> None:
    smap = self_map(LANGS, LANGS)
    params = random_params(np.random.default_rng(5), 3, 3)
    shares = jnp.array([[0.5, 0.5, 0.0],  # fr has no tokens of its own
                        [1.0, 0.0, 0.0],  # de, fr have none; de and fr transfer nothing
                        [0.2, 0.3, 0.5]], dtype=jnp.float32)
    tokens = jnp.array([0.5, 1.0, 2.0], dtype=jnp.float32)

    def loss_of_a(a: jax.Array) -> jax.Array:
        return jnp.sum(expected_loss(params._replace(a=a), shares, tokens, smap, form))

    for a in (jnp.full((3, 3), -50.0), jnp.zeros((3, 3))):
        value, grad = jax.value_and_grad(loss_of_a)(a)
        assert np.isfinite(float(value))
        assert np.all(np.isfinite(np.asarray(grad))), (a[0, 0], grad)
    # strong interference drives the effective share to the floor: large but finite loss
    rt = effective_share(params._replace(a=jnp.full((3, 3), -50.0)), shares, tokens, smap, form)
    assert np.all(np.asarray(rt) > 0)


@pytest.mark.parametrize("form", FORMS)
def test_gradient_wrt_all_parameters_is_finite_on_random_inputs(form: str) -> None:
    rng = np.random.default_rng(6)
    smap = self_map(LANGS, LANGS + ["sw"])  # sw is evaluation-only

    @jax.jit
    def value_and_grad(params: LawParams, shares: jax.Array, tokens: jax.Array):
        return jax.value_and_grad(
            lambda p: jnp.sum(expected_loss(p, shares, tokens, smap, form)))(params)

    for _ in range(30):
        params = random_params(rng, 3, 4, a_low=-3.0, a_high=3.0, k_low=-1.0, k_high=1.0)
        params = params._replace(eta=jnp.asarray(rng.uniform(0.01, 30.0, 4), jnp.float32))
        shares = random_mixes(rng, 12, 3)
        shares[rng.random(shares.shape) < 0.3] = 0.0  # exact zeros, including e_i rows
        shares[shares.sum(1) == 0, 0] = 1.0
        shares /= shares.sum(1, keepdims=True)
        tokens = np.exp(rng.uniform(np.log(1e-3), np.log(1e3), 12)).astype(np.float32)
        value, grad = value_and_grad(params, jnp.asarray(shares), jnp.asarray(tokens))
        assert np.isfinite(float(value))
        for name, g in grad._asdict().items():
            assert np.all(np.isfinite(np.asarray(g))), name


# ----------------------------------------------------------------------------- budget


@pytest.mark.parametrize("form", FORMS)
def test_loss_decreases_with_budget_under_positive_transfer(form: str) -> None:
    """With ``a >= k >= 0`` (transfer ``alpha(D) * D = (a - k) D + k D_ref`` never shrinking),
    ``rt * D`` grows with ``D``, so every loss falls."""
    rng = np.random.default_rng(7)
    sources, targets = LANGS, LANGS + ["sw"]
    smap = self_map(sources, targets)
    tokens = jnp.asarray(np.geomspace(0.05, 50.0, 30), dtype=jnp.float32)
    for _ in range(25):
        params = random_params(rng, 3, 4, a_low=0.2, a_high=0.8, k_low=0.0, k_high=0.2)
        mix = random_mixes(rng, 1, 3)
        shares = jnp.asarray(np.repeat(mix, len(tokens), axis=0))
        loss = np.asarray(expected_loss(params, shares, tokens, smap, form))
        assert np.all(np.diff(loss, axis=0) < 0), (mix, loss)


def test_a_steep_corner_gives_a_finite_loss_not_nan() -> None:
    """A large ``beta`` at an effective share on the floor overflows ``x ** -beta`` in
    float32; the law caps the reducible loss's log at ``MAX_LOG_REDUCIBLE`` instead."""
    smap = self_map(LANGS, LANGS)
    params = random_params(np.random.default_rng(9), 3, 3)._replace(
        beta=jnp.full(3, 9.0), a=jnp.full((3, 3), -5.0))
    shares = jnp.asarray([[1.0, 0.0, 0.0]], dtype=jnp.float32)  # de, fr on the floor
    tokens = jnp.asarray([1e-3], dtype=jnp.float32)
    loss, grad = jax.value_and_grad(
        lambda p: jnp.sum(expected_loss(p, shares, tokens, smap)))(params)
    assert np.isfinite(float(loss)) and float(loss) <= 3 * np.exp(MAX_LOG_REDUCIBLE) + 20
    for name, g in grad._asdict().items():
        assert np.all(np.isfinite(np.asarray(g))), name
