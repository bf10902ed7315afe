"""The loss functions of both twins against independent NumPy references and closed forms.

Every reference here is written from the textbook formula, in float64, without the
numerically stable rewrites the twins use (only np.logaddexp for log(1 + e^x)), so a sign,
a reduction or a stable-form slip in a twin shows up as a mismatch.
"""

import importlib

import numpy as np
import pytest
from helpers import as_numpy, as_tensor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import special, stats

from bench.core.specs import GAN_LOSSES, ExperimentSpec
from impls import FRAMEWORKS

# float64 throughout: rounding is ~1e-16 relative. The stable BCE form max(l, 0) - l t
# cancels two terms of size |l|, so its absolute error is ~|l| * 2^-52 (< 1e-13 for
# |l| <= 60); the atol covers that, the rtol covers summation order.
RTOL, ATOL = 1e-12, 1e-13

# hypothesis: the framework fixture is the same for every example of one test; TF's first
# call of an op is slow, so no deadline.
HYPOTHESIS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# -- framework helpers ------------------------------------------------------------------------
def value_and_grad(framework, fn, a, dtype="float64"):
    """fn(x) and d fn / dx at x = a, for a scalar-valued fn written in framework ops."""
    if framework == "torch":
        import torch

        x = torch.tensor(np.asarray(a, dtype=dtype), requires_grad=True)
        y = fn(x)
        (g,) = torch.autograd.grad(y, x)
        return as_numpy(y), as_numpy(g)
    import tensorflow as tf

    x = tf.constant(np.asarray(a, dtype=dtype))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fn(x)
    return as_numpy(y), as_numpy(tape.gradient(y, x))


def losses_module(framework):
    return importlib.import_module(f"impls.{framework}.losses")


@pytest.fixture
def L(framework):
    return losses_module(framework)


def gan_loss(framework, name, d_real, d_fake, real_target=1.0, fake_target=0.0):
    """The four outputs of a twin's GAN loss as NumPy floats."""
    fn = losses_module(framework).GAN_LOSSES[name]
    out = fn(as_tensor(framework, d_real), as_tensor(framework, d_fake), real_target, fake_target)
    return tuple(float(as_numpy(t)) for t in out)


# -- NumPy references (textbook formulas) -----------------------------------------------------
def np_log_sigmoid(logits):
    return -np.logaddexp(0.0, -logits)  # log s(l) = -log(1 + e^-l)


def np_log1m_sigmoid(logits):
    return -np.logaddexp(0.0, logits)  # log(1 - s(l)) = -log(1 + e^l)


def np_bce(logits, targets):
    logits = np.asarray(logits, np.float64)
    return np.mean(-(targets * np_log_sigmoid(logits) + (1.0 - targets) * np_log1m_sigmoid(logits)))


def np_gan_loss(name, d_real, d_fake, real_target=1.0, fake_target=0.0):
    d_real, d_fake = np.asarray(d_real, np.float64), np.asarray(d_fake, np.float64)
    if name in ("minimax", "non-saturating"):
        real, fake = np_bce(d_real, real_target), np_bce(d_fake, fake_target)
        if name == "minimax":  # G minimises E[log(1 - D(G(z)))]
            g = np.mean(np_log1m_sigmoid(d_fake))
        else:  # G maximises E[log D(G(z))]
            g = -np.mean(np_log_sigmoid(d_fake))
    elif name in ("wasserstein", "wgan-gp"):  # critic maximises E f(x) - E f(G(z))
        real, fake, g = -np.mean(d_real), np.mean(d_fake), -np.mean(d_fake)
    elif name == "hinge":
        real, fake = np.mean(np.maximum(0.0, 1.0 - d_real)), np.mean(np.maximum(0.0, 1.0 + d_fake))
        g = -np.mean(d_fake)
    elif name == "lsgan":  # Mao et al. 2017 with TF-GAN's halves; G aims at the real target
        real = np.mean((d_real - real_target) ** 2) / 2
        fake = np.mean((d_fake - fake_target) ** 2) / 2
        g = np.mean((d_fake - real_target) ** 2) / 2
    elif name == "ragan":  # relativistic average: each side against the other side's batch mean
        rel_real, rel_fake = d_real - np.mean(d_fake), d_fake - np.mean(d_real)
        real, fake = np_bce(rel_real, real_target), np_bce(rel_fake, fake_target)
        g = np_bce(rel_fake, 1.0) + np_bce(rel_real, 0.0)
    else:  # pragma: no cover - a new loss needs a reference here
        raise KeyError(f"no NumPy reference for GAN loss {name!r}")
    return real + fake, real, fake, g


def np_kl_standard_normal(mean, logvar):
    """KL(N(m, S) || N(0, I)) = 0.5 [tr S + m^T m - k - log det S] with S as a full matrix."""
    out = []
    for m, lv in zip(np.asarray(mean, np.float64), np.asarray(logvar, np.float64)):
        cov = np.diag(np.exp(lv))
        _, logdet = np.linalg.slogdet(cov)
        out.append(0.5 * (np.trace(cov) + m @ m - len(m) - logdet))
    return np.array(out)


def np_bernoulli_nll(logits, x):
    logits, x = np.asarray(logits, np.float64), np.asarray(x, np.float64)
    per = -(x * np_log_sigmoid(logits) + (1.0 - x) * np_log1m_sigmoid(logits))
    return per.reshape(len(per), -1).sum(axis=1)


def np_gaussian_nll(mean, x, sigma):
    return -stats.norm.logpdf(x, loc=mean, scale=sigma).reshape(len(x), -1).sum(axis=1)


# -- fixed inputs -----------------------------------------------------------------------------
D_REAL = np.array([-3.0, -0.5, 0.0, 0.7, 4.0, 12.0])
D_FAKE = np.array([2.5, -1.2, 0.3, -6.0, 0.0, -0.9])


@pytest.mark.parametrize("name", GAN_LOSSES)
@pytest.mark.parametrize("targets", [(1.0, 0.0), (0.9, 0.0), (0.9, 0.1)], ids=["plain", "one", "two"])
def test_gan_loss_matches_numpy_on_fixed_inputs(framework, name, targets):
    got = gan_loss(framework, name, D_REAL, D_FAKE, *targets)
    want = np_gan_loss(name, D_REAL, D_FAKE, *targets)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_bce_with_logits_matches_literal(L, framework):
    # -log s(0) = -log(1 - s(0)) = log 2; at l = 2, t = 0.5: -0.5 log s(2) - 0.5 log s(-2)
    # = 0.5 * 2 + log(1 + e^-2)
    logits = np.array([0.0, 0.0, 2.0])
    targets = np.array([1.0, 0.0, 0.5])
    want = np.mean([np.log(2.0), np.log(2.0), np.log1p(np.exp(-2.0)) + 1.0])
    got = as_numpy(L.bce_with_logits(as_tensor(framework, logits), as_tensor(framework, targets)))
    np.testing.assert_allclose(got, want, rtol=RTOL)


def test_vae_terms_match_numpy_on_fixed_inputs(L, framework, rng):
    mean, logvar = rng.normal(size=(4, 5)), rng.normal(scale=1.5, size=(4, 5))
    logits, x01 = rng.normal(scale=3.0, size=(4, 1, 3, 3)), rng.random((4, 1, 3, 3))
    t = lambda a: as_tensor(framework, a)  # noqa: E731
    np.testing.assert_allclose(
        as_numpy(L.kl_standard_normal(t(mean), t(logvar))), np_kl_standard_normal(mean, logvar), rtol=RTOL, atol=ATOL
    )
    np.testing.assert_allclose(
        as_numpy(L.bernoulli_nll(t(logits), t(x01))), np_bernoulli_nll(logits, x01), rtol=RTOL, atol=ATOL
    )
    mu = rng.random((4, 1, 3, 3))
    np.testing.assert_allclose(
        as_numpy(L.gaussian_nll(t(mu), t(x01), 0.1)), np_gaussian_nll(mu, x01, 0.1), rtol=RTOL, atol=ATOL
    )
    recon = np_bernoulli_nll(logits, x01)
    kl = np_kl_standard_normal(mean, logvar)
    got = [float(as_numpy(v)) for v in L.elbo_terms(t(recon), t(mean), t(logvar))]
    np.testing.assert_allclose(got, [np.mean(recon + kl), np.mean(recon), np.mean(kl)], rtol=RTOL)


# -- hypothesis-generated inputs --------------------------------------------------------------
@st.composite
def critic_outputs(draw, bound=60.0):
    n = draw(st.integers(1, 16))
    elems = st.floats(-bound, bound, allow_nan=False, allow_infinity=False)
    return draw(hnp.arrays(np.float64, n, elements=elems)), draw(hnp.arrays(np.float64, n, elements=elems))


@pytest.mark.parametrize("name", GAN_LOSSES)
@HYPOTHESIS
@given(outputs=critic_outputs(), real_target=st.floats(0.0, 1.0), fake_target=st.floats(0.0, 1.0))
def test_gan_loss_matches_numpy_on_generated_inputs(framework, name, outputs, real_target, fake_target):
    d_real, d_fake = outputs
    got = gan_loss(framework, name, d_real, d_fake, real_target, fake_target)
    want = np_gan_loss(name, d_real, d_fake, real_target, fake_target)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@HYPOTHESIS
@given(shape=st.tuples(st.integers(1, 5), st.integers(1, 6)), data=st.data())
def test_vae_terms_match_numpy_on_generated_inputs(L, framework, shape, data):
    floats = lambda lo, hi: st.floats(lo, hi, allow_nan=False, allow_infinity=False)  # noqa: E731
    mean = data.draw(hnp.arrays(np.float64, shape, elements=floats(-5, 5)))
    logvar = data.draw(hnp.arrays(np.float64, shape, elements=floats(-6, 6)))
    logits = data.draw(hnp.arrays(np.float64, shape, elements=floats(-40, 40)))
    x01 = data.draw(hnp.arrays(np.float64, shape, elements=floats(0, 1)))
    t = lambda a: as_tensor(framework, a)  # noqa: E731
    # KL sums exp(lv) (up to e^6) and lv: rounding ~1e-13 absolute at most
    np.testing.assert_allclose(
        as_numpy(L.kl_standard_normal(t(mean), t(logvar))), np_kl_standard_normal(mean, logvar), rtol=RTOL, atol=1e-12
    )
    np.testing.assert_allclose(
        as_numpy(L.bernoulli_nll(t(logits), t(x01))), np_bernoulli_nll(logits, x01), rtol=RTOL, atol=1e-12
    )


# -- extreme logits ---------------------------------------------------------------------------
EXTREME = np.array([100.0, -100.0, 1e4, -1e4])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("target", [0.0, 1.0, 0.9])
def test_bce_is_finite_and_exact_at_extreme_logits(framework, L, dtype, target):
    targets = as_tensor(framework, np.full(4, target), dtype)
    loss, grad = value_and_grad(framework, lambda logits: L.bce_with_logits(logits, targets), EXTREME, dtype)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    # float32 carries 24 bits: 1e4 * 2^-24 ~ 6e-4 absolute on terms of size 1e4
    rtol = RTOL if dtype == "float64" else 1e-6
    np.testing.assert_allclose(loss, np_bce(EXTREME, target), rtol=rtol)
    # d/dl BCE = (s(l) - t) / n; s(+-100) is 1 or 0 to float64 precision
    want_grad = (special.expit(EXTREME) - target) / len(EXTREME)
    np.testing.assert_allclose(grad, want_grad, rtol=rtol, atol=1e-30)


@pytest.mark.parametrize("name", GAN_LOSSES)
def test_every_gan_loss_is_finite_at_extreme_logits(framework, name):
    got = gan_loss(framework, name, EXTREME, EXTREME[::-1])
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, np_gan_loss(name, EXTREME, EXTREME[::-1]), rtol=RTOL)


def test_bernoulli_nll_is_exact_at_extreme_logits(L, framework):
    logits = EXTREME.reshape(1, 4)
    x = np.array([[0.0, 1.0, 0.0, 1.0]])  # every pixel maximally wrong: nll = sum |l|
    got = as_numpy(L.bernoulli_nll(as_tensor(framework, logits), as_tensor(framework, x)))
    np.testing.assert_allclose(got, [100.0 + 100.0 + 1e4 + 1e4], rtol=RTOL)


# -- KL and ELBO against closed forms and Monte Carlo ----------------------------------------
KL_MEAN = np.array([[0.5, -1.0, 2.0], [0.0, 0.3, -0.2]])
KL_LOGVAR = np.array([[0.0, -1.0, 0.7], [1.2, -0.4, 0.0]])


@pytest.fixture(scope="module")
def kl_monte_carlo():
    """E_q[log q(z) - log p(z)] from 1e6 NumPy samples per row, with its standard error."""
    rng = np.random.default_rng(20240601)
    n = 1_000_000
    out = []
    for m, lv in zip(KL_MEAN, KL_LOGVAR):
        std = np.exp(0.5 * lv)
        z = m + std * rng.standard_normal((n, len(m)))
        log_ratio = (stats.norm.logpdf(z, m, std) - stats.norm.logpdf(z)).sum(axis=1)
        out.append((log_ratio.mean(), log_ratio.std(ddof=1) / np.sqrt(n)))
    return np.array(out)


def test_kl_closed_form_matches_monte_carlo(L, framework, kl_monte_carlo):
    got = as_numpy(L.kl_standard_normal(as_tensor(framework, KL_MEAN), as_tensor(framework, KL_LOGVAR)))
    estimate, stderr = kl_monte_carlo[:, 0], kl_monte_carlo[:, 1]
    # 5 standard errors: a correct closed form fails with probability < 1e-6 (and the seed is fixed)
    assert np.all(np.abs(got - estimate) < 5.0 * stderr), (got, estimate, stderr)
    # and tight enough to mean something: 5 standard errors are under 2% of each KL
    assert np.all(5.0 * stderr < 2e-2 * got), (stderr, got)


def test_kl_is_zero_at_the_prior(L, framework):
    zeros = as_tensor(framework, np.zeros((3, 4)))
    np.testing.assert_array_equal(as_numpy(L.kl_standard_normal(zeros, zeros)), np.zeros(3))


def test_elbo_is_exact_when_the_decoder_ignores_z(L, framework, rng):
    """q(z|x) = p(z) = N(0, I) (mean 0, logvar 0) and p(x|z) = p(x): KL = 0 and the ELBO is
    log p(x) exactly, computed here naively as sum log p or log(1 - p)."""
    logits = rng.normal(scale=2.0, size=(1, 12))
    x = (rng.random((5, 12)) < 0.5).astype(np.float64)
    p = 1.0 / (1.0 + np.exp(-logits))
    log_px = np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=1)
    t = lambda a: as_tensor(framework, a)  # noqa: E731
    recon = L.bernoulli_nll(t(np.repeat(logits, 5, axis=0)), t(x))
    zeros = t(np.zeros((5, 3)))
    neg_elbo, mean_recon, kl = (float(as_numpy(v)) for v in L.elbo_terms(recon, zeros, zeros))
    assert kl == 0.0
    np.testing.assert_allclose([neg_elbo, mean_recon], [-log_px.mean()] * 2, rtol=RTOL)


def test_elbo_is_tight_with_the_exact_posterior(L, framework):
    """z ~ N(0, 1), x | z ~ N(z, s^2): the exact posterior is N(x / (1 + s^2), s^2 / (1 + s^2))
    and with it E_q[-log p(x|z)] + KL = -log p(x) = -log N(x; 0, 1 + s^2)."""
    sigma, x0, n = 0.5, 0.8, 200_000
    post_var = sigma**2 / (1 + sigma**2)
    post_mean = x0 / (1 + sigma**2)
    rng = np.random.default_rng(7)
    z = post_mean + np.sqrt(post_var) * rng.standard_normal((n, 1))
    t = lambda a: as_tensor(framework, a)  # noqa: E731
    recon = L.gaussian_nll(t(z), t(np.full((n, 1), x0)), sigma)
    mean, logvar = np.full((n, 1), post_mean), np.full((n, 1), np.log(post_var))
    neg_elbo = float(as_numpy(L.elbo_terms(recon, t(mean), t(logvar))[0]))
    stderr = as_numpy(recon).std(ddof=1) / np.sqrt(n)  # KL is the same for every row
    want = -stats.norm.logpdf(x0, 0.0, np.sqrt(1 + sigma**2))
    assert abs(neg_elbo - want) < 5.0 * stderr, (neg_elbo, want, stderr)


# -- label smoothing as targets ---------------------------------------------------------------
SMOOTHING = {"one": (0.9, 0.0), "two": (0.9, 0.1)}


@pytest.mark.parametrize("sides", ["one", "two"])
def test_spec_targets_are_the_literal_smoothed_labels(sides):
    spec = ExperimentSpec("ls", loss="non-saturating", label_smoothing=0.1, label_smoothing_sides=sides)
    assert spec.targets == pytest.approx(SMOOTHING[sides], abs=1e-15)
    assert ExperimentSpec("plain").targets == (1.0, 0.0)


@pytest.mark.parametrize("name", ["minimax", "non-saturating"])
@pytest.mark.parametrize("sides", ["one", "two"])
def test_label_smoothing_changes_only_its_targets(framework, name, sides):
    spec = ExperimentSpec("ls", loss=name, label_smoothing=0.1, label_smoothing_sides=sides)
    plain = gan_loss(framework, name, D_REAL, D_FAKE)
    smooth = gan_loss(framework, name, D_REAL, D_FAKE, *spec.targets)
    np.testing.assert_allclose(smooth[1], np_bce(D_REAL, 0.9), rtol=RTOL)
    assert smooth[1] != plain[1]
    if sides == "one":
        assert smooth[2] == plain[2]  # the fake term is untouched, bit for bit
    else:
        np.testing.assert_allclose(smooth[2], np_bce(D_FAKE, 0.1), rtol=RTOL)
        assert smooth[2] != plain[2]
    assert smooth[3] == plain[3]  # the generator's loss never sees smoothed targets
    np.testing.assert_allclose(smooth[0], smooth[1] + smooth[2], rtol=RTOL)


# -- Wasserstein and hinge: signs and margins ---------------------------------------------------
def test_wasserstein_signs(framework):
    # a critic that scores real 2 and fake -1 has estimated W = 3: d loss -3, g loss +1
    got = gan_loss(framework, "wasserstein", [2.0, 2.0], [-1.0, -1.0])
    assert got == (-3.0, -2.0, -1.0, 1.0)
    assert gan_loss(framework, "wgan-gp", [2.0, 2.0], [-1.0, -1.0]) == got


def test_hinge_is_zero_outside_the_margin(framework):
    got = gan_loss(framework, "hinge", [1.0, 1.5, 100.0], [-1.0, -3.0, -100.0])
    assert got[:3] == (0.0, 0.0, 0.0)
    np.testing.assert_allclose(got[3], (1.0 + 3.0 + 100.0) / 3, rtol=RTOL)


@pytest.mark.parametrize("delta", [0.25, 0.5, 1.0, 2.5])
def test_hinge_grows_linearly_inside_the_margin(framework, delta):
    _, real, fake, _ = gan_loss(framework, "hinge", [1.0 - delta], [-1.0 + delta])
    np.testing.assert_allclose([real, fake], [delta, delta], rtol=RTOL)
    hinge = losses_module(framework).hinge
    # slope -1 in d_real inside the margin, 0 outside; per-sample means divide by the batch
    _, g = value_and_grad(framework, lambda r: hinge(r, r * 0.0 - 5.0)[0], [1.0 - delta, 1.2])
    np.testing.assert_array_equal(g, [-0.5, 0.0])


# -- minimax vs non-saturating generator loss -------------------------------------------------
G_LOGITS = np.array([-30.0, -10.0, -2.0, 0.0, 3.0])


@pytest.mark.parametrize("name", ["minimax", "non-saturating"])
def test_generator_gradient_matches_closed_form_and_finite_differences(framework, name):
    fn = losses_module(framework).GAN_LOSSES[name]
    real = as_tensor(framework, np.zeros(len(G_LOGITS)))
    g_loss = lambda f: fn(real, f)[3]  # noqa: E731
    _, grad = value_and_grad(framework, g_loss, G_LOGITS)
    n = len(G_LOGITS)
    # minimax: d/dl -softplus(l) = -s(l); non-saturating: d/dl softplus(-l) = -s(-l)
    sign = 1.0 if name == "minimax" else -1.0
    want = -special.expit(sign * G_LOGITS) / n
    np.testing.assert_allclose(grad, want, rtol=RTOL, atol=1e-30)
    # central differences of the twin's own loss, step 1e-5: truncation ~h^2 f''' ~ 1e-10,
    # rounding ~1e-16 / 1e-5 ~ 1e-11
    h = 1e-5
    fd = np.array(
        [
            (
                float(as_numpy(g_loss(as_tensor(framework, G_LOGITS + h * e))))
                - float(as_numpy(g_loss(as_tensor(framework, G_LOGITS - h * e))))
            )
            / (2 * h)
            for e in np.eye(n)
        ]
    )
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-9)


def test_minimax_saturates_where_non_saturating_does_not(framework):
    """Goodfellow et al. 2014, section 3: early in training D rejects fakes confidently
    (l -> -inf); log(1 - D(G(z))) then has vanishing gradient, log D(G(z)) does not."""
    L = losses_module(framework)
    real = as_tensor(framework, np.zeros(1))
    for logit in (-10.0, -30.0):
        _, g_mm = value_and_grad(framework, lambda f: L.minimax(real, f)[3], [logit])
        _, g_ns = value_and_grad(framework, lambda f: L.non_saturating(real, f)[3], [logit])
        assert abs(g_mm[0]) < 5e-5  # s(-10) = 4.5e-5, s(-30) = 9.4e-14
        assert g_ns[0] < -0.9999  # -s(10) = -0.99995: the generator keeps a full-size signal
    _, g_mm = value_and_grad(framework, lambda f: L.minimax(real, f)[3], [-30.0])
    np.testing.assert_allclose(g_mm, [-np.exp(-30.0) / (1 + np.exp(-30.0))], rtol=RTOL)


# -- the two twins agree ------------------------------------------------------------------------
def _all_outputs(framework, rng_seed=99):
    rng = np.random.default_rng(rng_seed)
    d_real, d_fake = rng.normal(scale=4.0, size=(2, 32))
    mean, logvar = rng.normal(size=(2, 8, 6))
    logits, x01 = rng.normal(scale=3.0, size=(8, 1, 4, 4)), rng.random((8, 1, 4, 4))
    L = losses_module(framework)
    t = lambda a: as_tensor(framework, a)  # noqa: E731
    out = {}
    for name in GAN_LOSSES:
        for targets in ((1.0, 0.0), (0.9, 0.0), (0.9, 0.1)):
            out[f"{name}{targets}"] = gan_loss(framework, name, d_real, d_fake, *targets)
    out["bce"] = as_numpy(L.bce_with_logits(t(d_real), t(rng.random(32))))
    out["kl"] = as_numpy(L.kl_standard_normal(t(mean), t(logvar)))
    out["bernoulli"] = as_numpy(L.bernoulli_nll(t(logits), t(x01)))
    out["gaussian"] = as_numpy(L.gaussian_nll(t(x01 * 0.5), t(x01), 0.2))
    recon = L.bernoulli_nll(t(logits), t(x01))
    out["elbo"] = [as_numpy(v) for v in L.elbo_terms(recon, t(mean), t(logvar))]
    return out


def test_twins_compute_the_same_losses():
    outs = {fw: _all_outputs(fw) for fw in FRAMEWORKS}
    a, b = (outs[fw] for fw in FRAMEWORKS)
    assert a.keys() == b.keys()
    for key in a:
        # same float64 formulas, different reduction order: a few ulps
        np.testing.assert_allclose(
            np.asarray(a[key], np.float64),
            np.asarray(b[key], np.float64),
            rtol=1e-12,
            atol=1e-15,
            err_msg=f"{key}: torch vs tensorflow",
        )


# -- reductions and weights -------------------------------------------------------------------
W = np.array([0.0, 2.0, 0.0, 1.5, 3.0, 0.5])


@pytest.mark.parametrize("name", GAN_LOSSES)
def test_reductions_and_weights_match_numpy(framework, name):
    """Per-example losses from the twin's own reduction="none", then every reduction by hand:
    "mean" sum(w l) / n, "sum" sum(w l), "sum_by_nonzero_weights" sum(w l) / count(w != 0)."""
    fn = losses_module(framework).GAN_LOSSES[name]
    r, f = as_tensor(framework, D_REAL), as_tensor(framework, D_FAKE)
    per = [as_numpy(v) for v in fn(r, f, 0.9, 0.1, reduction="none")]
    assert all(p.shape == D_REAL.shape for p in per)
    np.testing.assert_allclose(
        [p.mean() for p in per], gan_loss(framework, name, D_REAL, D_FAKE, 0.9, 0.1), rtol=RTOL, atol=ATOL
    )
    for reduction, norm in (("mean", len(W)), ("sum", 1.0), ("sum_by_nonzero_weights", np.count_nonzero(W))):
        got = [float(as_numpy(v)) for v in fn(r, f, 0.9, 0.1, reduction=reduction, weights=as_tensor(framework, W))]
        np.testing.assert_allclose(got, [np.sum(W * p) / norm for p in per], rtol=RTOL, atol=ATOL)
    # one side weighted only: the other side and (for real_weights) G keep weight 1
    got = [float(as_numpy(v)) for v in fn(r, f, 0.9, 0.1, reduction="sum", real_weights=W)]
    want_real = np.sum(W * per[1])
    np.testing.assert_allclose(got[1:3], [want_real, np.sum(per[2])], rtol=RTOL, atol=ATOL)


def test_sum_by_nonzero_weights_of_all_zero_weights_is_zero(L, framework):
    got = L.bce_with_logits(
        as_tensor(framework, D_REAL),
        as_tensor(framework, np.ones(6)),
        as_tensor(framework, np.zeros(6)),
        "sum_by_nonzero_weights",
    )
    assert float(as_numpy(got)) == 0.0


def test_unknown_reduction_is_refused(L, framework):
    with pytest.raises(ValueError, match="reduction"):
        L.bce_with_logits(as_tensor(framework, D_REAL), as_tensor(framework, np.ones(6)), None, "avg")
