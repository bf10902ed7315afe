"""Peer conventions: the literal expected values of other GAN libraries' own test files,
reproduced by genbench's losses through options only (no formula rewritten here).

Every case names the repository, the file and the test it comes from; the inputs and the
expected value are copied from that file, as is the precision the peer asserts
(unittest's ``assertAlmostEqual(places=p)``: |diff| <= 0.5e-p; Keras' ``assertAlmostEqual``
(decimal 3 by default, numpy's assert_almost_equal): |diff| < 1.5e-3). Sources:

- TF-GAN: tensorflow/gan, tensorflow_gan/python/losses/losses_impl_test.py
- Keras: keras-team/keras, keras/src/losses/losses_test.py (BinaryCrossentropyTest)
- torchgan: torchgan/torchgan, tests/torchgan/test_losses.py
- mimicry: kwotsin/mimicry, tests/nets/modules/test_losses.py

Each case runs in both twins (the `framework` fixture) and in float64 and float32:
- float64 must meet the peer's own precision on the peer's literal;
- float32 must stay within FLOAT32_FACTOR * eps(float32) * S of float64, where S bounds the
  magnitude of the summed terms (the largest |input|, squared for least squares, times the
  largest |weight|; at least 1), and so meet the literal within that plus the peer's precision.
"""

import importlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from bench.core.specs import smoothed_targets

FLOAT32_FACTOR = 8.0  # a 4-term float32 sum and one transcendental per term: a few ulps of S
EPS32 = float(np.finfo(np.float32).eps)


@dataclass(frozen=True)
class Peer:
    id: str  # "<peer>-<test class or function>-<quantity>"
    source: str  # repository and path
    fn: Callable  # (modules, t) -> tensor, t(list) makes a tensor of the dtype under test
    want: object  # the peer's literal (a float or a list)
    tol: float  # the peer's asserted precision
    scale: float  # S above

    def __str__(self):
        return self.id


class Modules:
    def __init__(self, framework):
        self.framework = framework
        self.L = importlib.import_module(f"impls.{framework}.losses")
        self.S = importlib.import_module(f"impls.{framework}.stabilizers")


def maker(framework, dtype):
    if framework == "torch":
        import torch

        return lambda a: torch.as_tensor(np.array(a, dtype))  # a copy: broadcast views are read-only
    import tensorflow as tf

    return lambda a: tf.constant(np.asarray(a, dtype))


def to_numpy(x):
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


# -- TF-GAN ------------------------------------------------------------------------------------
TFGAN = "tensorflow/gan tensorflow_gan/python/losses/losses_impl_test.py"
# _LossesTest.init_constants
TFGAN_REAL = [-5.0, 1.4, 12.5, 2.7]
TFGAN_GEN = [10.0, 4.4, -5.5, 3.6]
TFGAN_WEIGHT = 2.3
# TF-GAN's minimax and modified discriminator losses default to label_smoothing=0.25, applied by
# tf.losses.sigmoid_cross_entropy to the real side only; the generator losses to 0.
TFGAN_TARGETS = smoothed_targets(0.25, "tfgan")
TFGAN_OPTS = {"reduction": "sum_by_nonzero_weights"}  # tf.losses' default reduction

# (test class, genbench loss, extra options, expected g loss, expected d loss)
TFGAN_CLASSES = [
    ("LeastSquaresLossTest", "lsgan", {}, (1.0, 0.0), 17.69625, 41.73375),
    ("ModifiedLossTest", "non-saturating", {}, TFGAN_TARGETS, 1.38582, 6.19637),
    ("MinimaxLossTest", "minimax", {"tfgan_constant": True}, TFGAN_TARGETS, -4.82408, 6.19637),
    ("WassersteinLossTest", "wasserstein", {}, (1.0, 0.0), -3.12500, 0.22500),
    ("HingeWassersteinLossTest", "hinge", {}, (1.0, 0.0), -3.12500, 6.7500),
]


def _tfgan_loss(loss, opts, targets, index, shape=(4,), weight=None):
    def fn(m, t):
        real = t(np.reshape(TFGAN_REAL, shape))
        gen = t(np.reshape(TFGAN_GEN, shape))
        kw = dict(TFGAN_OPTS, **opts)
        if weight is not None:
            kw["weights"] = weight
        # the generator losses take label_smoothing 0: targets only reach the D terms
        return m.L.GAN_LOSSES[loss](real, gen, *targets, **kw)[index]

    return fn


def tfgan_cases():
    out = []
    for cls, loss, opts, targets, g_want, d_want in TFGAN_CLASSES:
        s = 16.0**2 if loss == "lsgan" else 16.0
        for qty, index, want in (("generator", 3, g_want), ("discriminator", 0, d_want)):
            # test_<qty>_all_correct: assertAlmostEqual(expected, loss, 5)
            out.append(
                Peer(
                    f"tfgan-{cls}-test_{qty}_all_correct",
                    TFGAN,
                    _tfgan_loss(loss, opts, targets, index),
                    want,
                    0.5e-5,
                    s,
                )
            )
            # test_<qty>_patch: the same outputs reshaped to [2, 2], the same value (places 5)
            out.append(
                Peer(
                    f"tfgan-{cls}-test_{qty}_patch",
                    TFGAN,
                    _tfgan_loss(loss, opts, targets, index, (2, 2)),
                    want,
                    0.5e-5,
                    s,
                )
            )
            # test_<qty>_with_python_scalar_weight: expected * 2.3, places 4
            out.append(
                Peer(
                    f"tfgan-{cls}-test_{qty}_with_python_scalar_weight",
                    TFGAN,
                    _tfgan_loss(loss, opts, targets, index, weight=TFGAN_WEIGHT),
                    want * TFGAN_WEIGHT,
                    0.5e-4,
                    s * TFGAN_WEIGHT,
                )
            )
    return out


# GradientPenaltyTest: D(x) = 2 x (dummy_d initialised to 2.0), one example of 4 values, so the
# gradient is (2, 2, 2, 2) with norm 4 wherever the interpolate lands.
TFGAN_GP_GEN = [[3.1, 2.3, -12.3, 32.1]]
TFGAN_GP_REAL = [[-12.3, 23.2, 16.3, -43.2]]


def _tfgan_gp(target=1.0, form="divide"):
    def fn(m, t):
        real, gen = t(TFGAN_GP_REAL), t(TFGAN_GP_GEN)
        alpha = t([[0.5]])
        return m.S.gradient_penalty(lambda x: 2.0 * x, real, gen, alpha, target, form=form)

    return fn


def tfgan_gp_cases():
    return [
        # test_all_correct: _expected_loss 9.00000, places 6 ((4 / 1 - 1)^2)
        Peer("tfgan-GradientPenaltyTest-test_all_correct", TFGAN, _tfgan_gp(), 9.0, 0.5e-6, 16.0),
        # test_loss_using_one_sided_mode: one_sided=True, 9.0, places 5
        Peer(
            "tfgan-GradientPenaltyTest-test_loss_using_one_sided_mode",
            TFGAN,
            _tfgan_gp(form="one_sided"),
            9.0,
            0.5e-5,
            16.0,
        ),
        # test_loss_with_gradient_norm_target: target=2.0 gives 1.0, places 5: TF-GAN divides,
        # (||g|| / target - 1)^2 = (4 / 2 - 1)^2; subtracting would give 4
        Peer(
            "tfgan-GradientPenaltyTest-test_loss_with_gradient_norm_target",
            TFGAN,
            _tfgan_gp(target=2.0),
            1.0,
            0.5e-5,
            16.0,
        ),
    ]


# -- Keras -------------------------------------------------------------------------------------
KERAS = "keras-team/keras keras/src/losses/losses_test.py"
KERAS_TOL = 1.5e-3  # keras testing.TestCase.assertAlmostEqual: decimal=3
KERAS_Y = [[1, 0, 1], [0, 1, 1]]
KERAS_LOGITS = [[10.0, -10.0, 10.0], [10.0, 10.0, -10.0]]


def _keras_bce(y, logits, weights=None, reduction="mean", smoothing=0.0):
    """Keras' BCE averages each example's row, then the batch; genbench's bce_with_logits takes
    the per-element targets and per-element weights (a row's weight repeated over its row)."""

    def fn(m, t):
        yy = np.asarray(y, np.float64)
        real, fake = smoothed_targets(smoothing, "keras" if smoothing else "none")
        targets = np.where(yy == 1, real, fake)
        w = (
            None
            if weights is None
            else np.broadcast_to(np.asarray(weights, np.float64)[..., None] if np.ndim(weights) else weights, yy.shape)
        )
        return m.L.bce_with_logits(t(logits), t(targets), None if w is None else t(w), reduction)

    return fn


def keras_cases():
    return [
        # test_all_correct_unweighted, logits +-10 with matching labels: 0.0
        Peer(
            "keras-BinaryCrossentropyTest-test_all_correct_unweighted-logits",
            KERAS,
            _keras_bce(
                [[1, 0, 0], [0, 1, 0], [0, 0, 1]], [[10.0, -10.0, -10.0], [-10.0, 10.0, -10.0], [-10.0, -10.0, 10.0]]
            ),
            0.0,
            KERAS_TOL,
            10.0,
        ),
        # test_unweighted, from_logits: 3.3333
        Peer(
            "keras-BinaryCrossentropyTest-test_unweighted-logits",
            KERAS,
            _keras_bce(KERAS_Y, KERAS_LOGITS),
            3.3333,
            KERAS_TOL,
            10.0,
        ),
        # test_scalar_weighted, from_logits, sample_weight=2.3: 7.666
        Peer(
            "keras-BinaryCrossentropyTest-test_scalar_weighted-logits",
            KERAS,
            _keras_bce(KERAS_Y, KERAS_LOGITS, weights=2.3),
            7.666,
            KERAS_TOL,
            23.0,
        ),
        # test_sample_weighted, from_logits, sample_weight=[4, 3]: 10.0
        Peer(
            "keras-BinaryCrossentropyTest-test_sample_weighted-logits",
            KERAS,
            _keras_bce(KERAS_Y, KERAS_LOGITS, weights=[4.0, 3.0]),
            10.0,
            KERAS_TOL,
            40.0,
        ),
        # test_label_smoothing: logits [[10, -10, -10]], y [[1, 0, 1]], 0.1: (10 + 5 * 0.1) / 3
        Peer(
            "keras-BinaryCrossentropyTest-test_label_smoothing",
            KERAS,
            _keras_bce([[1, 0, 1]], [[10.0, -10.0, -10.0]], smoothing=0.1),
            (10.0 + 5.0 * 0.1) / 3.0,
            KERAS_TOL,
            10.0,
        ),
    ]


def _keras_no_reduction(m, t):
    # test_no_reduction (reduction=None): one loss per example, the mean over its row; genbench's
    # reduction="none" gives the elements, and a row's mean is a "mean" reduction of that row
    rows = [_keras_bce([y], [lg])(m, t) for y, lg in zip(KERAS_Y, KERAS_LOGITS)]
    return [float(to_numpy(r)) for r in rows]


KERAS_NO_REDUCTION = Peer(
    "keras-BinaryCrossentropyTest-test_no_reduction", KERAS, _keras_no_reduction, [0.0, 6.666], 1e-3, 10.0
)  # assertAllClose(..., atol=1e-3)


# -- torchgan ----------------------------------------------------------------------------------
TORCHGAN = "torchgan/torchgan tests/torchgan/test_losses.py"
TG_DX = [1.3, 2.9, 8.4, 6.3]
TG_DGZ = [4.8, 1.2, -3.5, 5.9]
TG_FACTOR = float(np.log1p(np.exp(-1.0)))  # factor = -log(sigmoid(1)) in test_minimax_loss

# test function -> (genbench loss, g mean, g sum, g none, d mean, d sum, d none)
TORCHGAN_TESTS = {
    "test_wasserstein_loss": (
        "wasserstein",
        -2.1,
        -8.4,
        [-4.8, -1.2, 3.5, -5.9],
        -2.625,
        -10.5,
        [3.5000002, -1.7, -11.9, -0.4000001],
    ),
    "test_lsgan_loss": (
        "lsgan",
        7.3425007,
        29.370003,
        [7.2200007, 0.02000001, 10.125, 12.005],
        19.76125,
        79.045,
        [11.565001, 2.525, 33.504997, 31.45],
    ),
    "test_minimax_loss": (
        "minimax",
        -3.3642528 + TG_FACTOR,
        -13.457011 + 4 * TG_FACTOR,
        [-5.1214576 + TG_FACTOR, -1.7765441 + TG_FACTOR, -0.3430121 + TG_FACTOR, -6.215997 + TG_FACTOR],
        3.1251488,
        12.500595,
        [5.0492043, 1.5168452, 0.02997526, 5.90457],
    ),
    "test_minimax_nonsaturating_loss": (
        "non-saturating",
        0.9509911,
        3.8039644,
        [8.1960661e-03, 2.6328245e-01, 3.5297503e00, 2.7356991e-03],
        3.1251488,
        12.500595,
        [5.0492043, 1.5168452, 0.02997526, 5.90457],
    ),
}


def _torchgan_loss(loss, index, reduction):
    def fn(m, t):
        return m.L.GAN_LOSSES[loss](t(TG_DX), t(TG_DGZ), reduction=reduction)[index]

    return fn


def torchgan_cases():
    out = []
    for test, (loss, g_mean, g_sum, g_none, d_mean, d_sum, d_none) in TORCHGAN_TESTS.items():
        s = 9.0**2 if loss == "lsgan" else 9.0
        for qty, index, values in (("gen", 3, (g_mean, g_sum, g_none)), ("d", 0, (d_mean, d_sum, d_none))):
            for reduction, want in zip(("mean", "sum", "none"), values):
                # match_losses: assertAlmostEqual(..., places=5) for every reduction
                out.append(
                    Peer(
                        f"torchgan-{test}-{qty}_loss_{reduction}",
                        TORCHGAN,
                        _torchgan_loss(loss, index, reduction),
                        want,
                        0.5e-5,
                        s * (4 if reduction == "sum" else 1),
                    )
                )
    return out


# -- mimicry -----------------------------------------------------------------------------------
MIMICRY = "kwotsin/mimicry tests/nets/modules/test_losses.py"


def _mimicry_loss(loss, index):
    def fn(m, t):  # TestLosses.setup: output_real = output_fake = torch.ones(4, 1)
        ones = t(np.ones(4))
        return m.L.GAN_LOSSES[loss](ones, ones)[index]

    return fn


def mimicry_cases():
    # mimicry asserts `value - literal < 1e-2` (one-sided); held here to the literal's 4 decimals.
    # Its minimax_loss_gen is BCE(output_fake, 1), genbench's non-saturating generator loss.
    rows = [
        ("test_minimax_loss-loss_gen", "non-saturating", 3, 0.3133),
        ("test_minimax_loss-loss_dis", "minimax", 0, 1.6265),
        ("test_ns_loss-loss_gen", "non-saturating", 3, 0.3133),
        ("test_wasserstein_loss-loss_gen", "wasserstein", 3, -1.0),
        ("test_wasserstein_loss-loss_dis", "wasserstein", 0, 0.0),
        ("test_hinge_loss-loss_gen", "hinge", 3, -1.0),
        ("test_hinge_loss-loss_dis", "hinge", 0, 2.0),
    ]
    return [
        Peer(f"mimicry-{name}", MIMICRY, _mimicry_loss(loss, index), want, 0.5e-4, 2.0)
        for name, loss, index, want in rows
    ]


# -- spectral norm: TF-GAN's stored vector and its at-most-one form, Keras' layer -----------------
TFGAN_SN = "tensorflow/gan tensorflow_gan/python/features/spectral_normalization_test.py"
KERAS_SN = "keras-team/keras keras/src/layers/normalization/spectral_normalization_test.py"
TFGAN_SN_EPS = 1e-6  # tf.nn.l2_normalize: x / sqrt(max(sum x^2, 1e-12)) = x / max(||x||, 1e-6)
KERAS_SN_EPS = 1e-7  # keras.ops.normalize: x * min(rsqrt(sum x^2), 1 / epsilon()), epsilon 1e-7


def _tf_layout(kind, canonical):
    """A canonical weight in the peers' (Keras) kernel layout: dense (in, out), conv (kh, kw, C_in, C_out)."""
    return canonical.T if kind == "dense" else np.transpose(canonical, (2, 3, 1, 0))


def _spectral(kind, w, vec, n_iter, eps, form="equality", vector="output"):
    """The twin's spectral_normalize on a canonical weight, training mode; the result canonical."""

    def fn(m, t):
        if m.framework == "torch":
            return m.S.spectral_normalize(t(w), t(vec), kind, n_iter, eps, True, form=form, vector=vector)
        import tensorflow as tf

        out = m.S.spectral_normalize(
            t(_tf_layout(kind, w)), tf.Variable(t(vec)), kind, n_iter, eps, True, form=form, vector=vector
        )
        return tf.transpose(out) if kind == "dense" else tf.transpose(out, (3, 2, 0, 1))

    return fn


def np_tfgan_spectral_normalize(kernel, u, rounds, equality_constrained=True):
    """TF-GAN's spectral_normalize (compute_spectral_norm, training=True) re-implemented in NumPy
    on its own layout: w = kernel.reshape(-1, C_out), u (rest,) the persisted vector."""

    def l2n(x):
        return x / np.sqrt(max(np.sum(x * x), 1e-12))

    w = kernel.reshape(-1, kernel.shape[-1])
    for _ in range(rounds):
        v = l2n(w.T @ u)
        u = l2n(w @ v)
    sigma = u @ w @ v
    if not equality_constrained:
        sigma = max(1.0, sigma)
    return kernel / sigma


def _svd_normalized(w):
    return w / np.linalg.svd(w.reshape(w.shape[0], -1), compute_uv=False)[0]


_SN_RNG = np.random.default_rng(20)
# _testLayerHelper: w_initial = np.random.randn(*w_shape) * 10 (unseeded in the peer; seeded here),
# 1000 forward passes, then assertAllClose(w_initial / s[0], w_after, rtol=1e-4, atol=1e-4)
SN_FC = _SN_RNG.standard_normal((3, 300)) * 10  # canonical (out, in) of the peer's (300, 3) kernel
SN_CONV = _SN_RNG.standard_normal((3, 3, 3, 3)) * 10  # canonical (C_out, C_in, kh, kw)
SN_SMALL = _SN_RNG.standard_normal((4, 6)) * 0.05  # sigma < 1
SN_V_FC = _SN_RNG.standard_normal(300)
SN_V_CONV = _SN_RNG.standard_normal(27)
SN_V_SMALL = _SN_RNG.standard_normal(6)


def _np_ref(kind, w, v, rounds, equality_constrained=True):
    """np_tfgan_spectral_normalize on the peer's layout, returned in the canonical one. The
    persisted vector is given canonically (C_in, kh, kw order) and permuted to TF-GAN's (kh, kw, C_in)."""
    k = _tf_layout(kind, w)
    u = v if kind == "dense" else np.transpose(v.reshape(w.shape[1:]), (1, 2, 0)).reshape(-1)
    out = np_tfgan_spectral_normalize(k, u, rounds, equality_constrained)
    return out.T if kind == "dense" else np.transpose(out, (3, 2, 0, 1))


def _tol(want, rtol, atol):
    return atol + rtol * float(np.max(np.abs(want)))


def sn_cases():
    """(case, planted): planted is the same computation with the option under test flipped."""
    out = []
    for test, kind, w, v in (
        ("testFC_Layers", "dense", SN_FC, SN_V_FC),
        ("testConv2D_Layers", "conv", SN_CONV, SN_V_CONV),
    ):
        # the SVD reference of the peer's test: 1000 rounds, rtol = atol = 1e-4 (independent: NumPy SVD)
        want = _svd_normalized(w)
        case = Peer(
            f"tfgan-SpectralNormalizationTest-{test}",
            TFGAN_SN + " (want: NumPy SVD, as the test)",
            _spectral(kind, w, v, 1000, TFGAN_SN_EPS, vector="input"),
            want.tolist(),
            _tol(want, 1e-4, 1e-4),
            1.0,
        )
        out.append((case, None))
        # one round from a given vector: NumPy re-implementation of compute_spectral_norm (no literal)
        want1 = _np_ref(kind, w, v, 1)
        case = Peer(
            f"tfgan-compute_spectral_norm-one_round-{kind}",
            "tensorflow/gan tensorflow_gan/python/features/spectral_normalization.py (NumPy re-implementation)",
            _spectral(kind, w, v, 1, TFGAN_SN_EPS, vector="input"),
            want1.tolist(),
            1e-12,
            1.0,
        )
        u0 = w.reshape(w.shape[0], -1) @ v  # the output-side vector the input-side one implies
        out.append((case, _spectral(kind, w, u0 / np.linalg.norm(u0), 1, TFGAN_SN_EPS, vector="output")))
    # spectral_normalize(equality_constrained=False): w / max(1, sigma) (NumPy re-implementation)
    for name, kind, w, v in (
        ("sigma_below_one", "dense", SN_SMALL, SN_V_SMALL),
        ("sigma_above_one", "conv", SN_CONV, SN_V_CONV),
    ):
        want = _np_ref(kind, w, v, 1, equality_constrained=False)
        case = Peer(
            f"tfgan-spectral_normalize-equality_constrained_False-{name}",
            "tensorflow/gan tensorflow_gan/python/features/spectral_normalization.py (NumPy re-implementation)",
            _spectral(kind, w, v, 1, TFGAN_SN_EPS, form="at_most_one", vector="input"),
            want.tolist(),
            1e-12,
            1.0,
        )
        out.append(
            (
                case,
                _spectral(kind, w, v, 1, TFGAN_SN_EPS, form="equality", vector="input")
                if name == "sigma_below_one"
                else None,
            )
        )
    # test_apply_layer: Conv2D(1, (2, 2)) with a kernel of ones on an image of ones, power_iterations=8,
    # training=True: 4 / sigma = 2.0, assertAllClose (rtol = atol = 1e-6). The output is the sum of the
    # normalized kernel; vector_u (TruncatedNormal) has one element here, so any non-zero start gives 2.
    case = Peer(
        "keras-SpectralNormalizationTest-test_apply_layer",
        KERAS_SN,
        lambda m, t: _sum(m, _spectral("conv", np.ones((1, 1, 2, 2)), np.array([0.3]), 8, KERAS_SN_EPS)(m, t)),
        2.0,
        1e-6 + 2e-6,
        4.0,
    )
    out.append((case, lambda m, t: _sum(m, t(np.ones((1, 1, 2, 2))))))  # no normalization: 4
    return out


def _sum(m, x):
    if m.framework == "torch":
        return x.sum()
    import tensorflow as tf

    return tf.reduce_sum(x)


SN_CASES = sn_cases()

CASES = (
    tfgan_cases()
    + tfgan_gp_cases()
    + keras_cases()
    + [KERAS_NO_REDUCTION]
    + torchgan_cases()
    + mimicry_cases()
    + [c for c, _ in SN_CASES]
)


def evaluate(case, framework, dtype):
    out = case.fn(Modules(framework), maker(framework, dtype))
    return np.asarray([float(v) for v in out] if isinstance(out, list) else to_numpy(out), np.float64)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_peer_literal(case, framework):
    want = np.asarray(case.want, np.float64)
    got64 = evaluate(case, framework, "float64")
    got32 = evaluate(case, framework, "float32")
    assert got64.shape == want.shape, case.source
    assert np.all(np.abs(got64 - want) <= case.tol), (
        f"{case.id} ({case.source}): float64 {got64} vs the peer's {want}, tolerance {case.tol}"
    )
    f32_tol = FLOAT32_FACTOR * EPS32 * max(1.0, case.scale)
    assert np.all(np.abs(got32 - got64) <= f32_tol), (
        f"{case.id}: float32 {got32} vs float64 {got64}, tolerance {f32_tol:.2e}"
    )
    assert np.all(np.abs(got32 - want) <= case.tol + f32_tol)


@pytest.mark.parametrize(
    "case, planted", [cp for cp in SN_CASES if cp[1] is not None], ids=[str(c) for c, p in SN_CASES if p is not None]
)
def test_spectral_norm_bounds_catch_a_planted_error(case, planted, framework):
    """The other option (or none) misses the peer's value by more than the case's tolerance:
    the output-side iteration for TF-GAN's stored input-side vector, W / sigma for W / max(1, sigma)
    below 1, an unnormalized kernel for Keras' layer."""
    want = np.asarray(case.want, np.float64)
    got = evaluate(case.__class__(**{**case.__dict__, "fn": planted}), framework, "float64")
    assert np.max(np.abs(got - want)) > case.tol, case.id


def test_spectral_norm_of_a_zero_kernel_is_finite_at_most_one_and_nan_equality(framework):
    """TF-GAN's equality_constrained=False divides 0 by max(1, 0) = 1; the equality form gives 0 / 0."""
    zero, v = np.zeros((4, 6)), SN_V_SMALL
    at_most = evaluate(
        Peer("zero", "", _spectral("dense", zero, v, 1, TFGAN_SN_EPS, "at_most_one", "input"), 0.0, 0.0, 1.0),
        framework,
        "float64",
    )
    assert np.all(at_most == 0.0)
    equality = evaluate(
        Peer("zero", "", _spectral("dense", zero, v, 1, TFGAN_SN_EPS, "equality", "input"), 0.0, 0.0, 1.0),
        framework,
        "float64",
    )
    assert np.all(np.isnan(equality))


def test_spectral_norm_options_are_validated():
    from bench.core.specs import ExperimentSpec, NetSpec, SpecError

    for field, bad, allowed in (
        ("sn_form", "at_most", "equality, at_most_one"),
        ("sn_vector", "left", "output, input"),
    ):
        with pytest.raises(SpecError, match=f"NetSpec.{field}='{bad}' is not one of {allowed}"):
            ExperimentSpec("x", discriminator=NetSpec(**{field: bad}))
    d = NetSpec()
    assert (d.sn_form, d.sn_vector) == ("equality", "output")  # torch's, unchanged


def test_every_peer_case_names_its_source_and_ids_are_unique():
    assert len({c.id for c in CASES}) == len(CASES)
    peers = {c.id.split("-")[0] for c in CASES}
    assert peers == {"tfgan", "keras", "torchgan", "mimicry"}
    assert all(c.source.split()[1].endswith(".py") for c in CASES)


def test_subtracting_the_gp_target_is_not_tfgans_form(framework):
    """The literal of test_loss_with_gradient_norm_target tells the forms apart: genbench's
    default (||g|| - 2)^2 = 4, TF-GAN's (||g|| / 2 - 1)^2 = 1."""
    m, t = Modules(framework), maker(framework, "float64")
    real, gen, alpha = t(TFGAN_GP_REAL), t(TFGAN_GP_GEN), t([[0.5]])
    sub = float(to_numpy(m.S.gradient_penalty(lambda x: 2.0 * x, real, gen, alpha, 2.0)))
    assert sub == pytest.approx(4.0, abs=1e-9)
    one_sided_below = float(to_numpy(m.S.gradient_penalty(lambda x: 0.1 * x, real, gen, alpha, 1.0, form="one_sided")))
    assert one_sided_below == 0.0  # ||g|| = 0.2 < 1: no penalty one-sided; (0.2 - 1)^2 two-sided


# -- the peers' own classes: optimizers and batch norm under the spec's peer settings ----------
GRADS = np.array([1.0, 1e-2, 1e-4, 1e-6, 1e-8, -1e-9, 3e-7])  # from large to below eps


def _grad(i, p):
    return GRADS * (1.0 + 0.5 * i) + 0.01 * (p - 1.0)


def _twin_steps(framework, o, n=3):
    """n steps of the twin's optimizer from the OptimizerSpec on one float64 parameter."""
    if framework == "torch":
        import torch

        from impls.torch.train import make_optimizer

        p = torch.nn.Parameter(torch.ones(len(GRADS), dtype=torch.float64))
        opt = make_optimizer([p], o)
        for i in range(n):
            p.grad = torch.tensor(_grad(i, p.detach().numpy()))
            opt.step()
        return p.detach().numpy() - 1.0
    import tensorflow as tf

    from impls.tensorflow.train import Optimizer

    v = tf.Variable(np.ones(len(GRADS)))
    opt = Optimizer([v], o)
    for i in range(n):
        opt.apply([tf.constant(_grad(i, v.numpy()))])
    return v.numpy() - 1.0


def _peer_steps(opt, keras_api, n=3):
    import tensorflow as tf

    if keras_api:
        from bench.checks.conventions import _keras

        v = _keras().Variable(np.ones(len(GRADS)), dtype="float64")
        for i in range(n):
            opt.apply_gradients([(_grad(i, np.asarray(v)), v)])
        return np.asarray(v) - 1.0
    v = tf.Variable(np.ones(len(GRADS)))
    for i in range(n):
        opt.apply_gradients([(tf.constant(_grad(i, v.numpy())), v)])
    return v.numpy() - 1.0


def f32(x):
    """The peers keep learning rates (and TF1 every hyperparameter) as float32 tensors."""
    return float(np.float32(x))


def test_keras_rmsprop_is_eps_inside_the_sqrt(framework):
    from bench.checks.conventions import _keras
    from bench.core.specs import OptimizerSpec

    k = _keras().optimizers.RMSprop(learning_rate=1e-3)
    peer = _peer_steps(k, keras_api=True)
    o = OptimizerSpec(kind="rmsprop", lr=f32(1e-3), rho=k.rho, eps=k.epsilon, rmsprop_eps_placement="inside")
    np.testing.assert_allclose(_twin_steps(framework, o), peer, rtol=1e-14, atol=1e-18)
    outside = _twin_steps(framework, OptimizerSpec(kind="rmsprop", lr=f32(1e-3), rho=k.rho, eps=k.epsilon))
    assert np.max(np.abs(outside - peer)) > 1e-3 * np.max(np.abs(peer))  # placement matters


def test_tf1_rmsprop_starts_the_mean_square_at_one(framework):
    import tensorflow as tf

    from bench.core.specs import OptimizerSpec

    peer = _peer_steps(tf.compat.v1.train.RMSPropOptimizer(1e-3), keras_api=False)  # decay 0.9, eps 1e-10
    o = OptimizerSpec(
        kind="rmsprop",
        lr=f32(1e-3),
        rho=f32(0.9),
        eps=f32(1e-10),
        rmsprop_eps_placement="inside",
        rmsprop_initial_ms=1.0,
    )
    np.testing.assert_allclose(_twin_steps(framework, o), peer, rtol=1e-14, atol=1e-18)
    zero_start = _twin_steps(framework, o.__class__(**{**o.__dict__, "rmsprop_initial_ms": 0.0}))
    assert np.max(np.abs(zero_start - peer)) > 0.5 * np.max(np.abs(peer))


@pytest.mark.parametrize("peer", ["keras", "tf1"])
def test_adam_epsilon_hat(framework, peer):
    """Epsilon hat reproduces Keras' and TF1's Adam up to their float32 beta powers: 1 - b2^t
    from a float32 b2^t is off by ~6e-8 / 1e-3 relative at t = 1, ~3e-5 in sqrt(1 - b2^t)."""
    import tensorflow as tf

    from bench.checks.conventions import _keras
    from bench.core.specs import OptimizerSpec

    if peer == "keras":
        k = _keras().optimizers.Adam(learning_rate=1e-3)
        ref, eps = _peer_steps(k, keras_api=True), k.epsilon
    else:
        ref, eps = _peer_steps(tf.compat.v1.train.AdamOptimizer(1e-3), keras_api=False), 1e-8
    o = OptimizerSpec(kind="adam", lr=f32(1e-3), beta1=0.9, beta2=0.999, eps=eps, adam_eps="epsilon_hat")
    scale = np.max(np.abs(ref))
    hat = _twin_steps(framework, o)
    assert np.max(np.abs(hat - ref)) <= 1e-4 * scale
    torch_form = _twin_steps(framework, OptimizerSpec(kind="adam", lr=f32(1e-3), beta1=0.9, beta2=0.999, eps=eps))
    assert np.max(np.abs(torch_form - ref)) > 100 * np.max(np.abs(hat - ref))


def test_keras_batch_norm_with_the_biased_variance_and_its_momentum(framework):
    """Keras BatchNormalization() defaults: momentum 0.99 of the old value (0.01 of the batch in
    the spec's torch convention), epsilon 1e-3, biased moving variance."""
    from bench.checks.conventions import _keras

    bn = _keras().layers.BatchNormalization(dtype="float64")
    x = 0.3 + 0.05 * np.random.default_rng(0).standard_normal((16, 4))
    y_peer = np.asarray(bn(x, training=True))
    S = Modules(framework).S
    if framework == "torch":
        import torch

        rm, rv = torch.zeros(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64)
        y = S.batch_norm(
            torch.tensor(x),
            torch.ones(4, dtype=torch.float64),
            torch.zeros(4, dtype=torch.float64),
            rm,
            rv,
            True,
            1.0 - bn.momentum,
            bn.epsilon,
            biased_variance=True,
        )
    else:
        import tensorflow as tf

        rm, rv = tf.Variable(np.zeros(4)), tf.Variable(np.ones(4))
        y = S.batch_norm(
            tf.constant(x),
            tf.constant(np.ones(4)),
            tf.constant(np.zeros(4)),
            rm,
            rv,
            True,
            1.0 - bn.momentum,
            bn.epsilon,
            biased_variance=True,
        )
    np.testing.assert_allclose(to_numpy(y), y_peer, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(to_numpy(rm), np.asarray(bn.moving_mean), rtol=1e-14, atol=1e-16)
    np.testing.assert_allclose(to_numpy(rv), np.asarray(bn.moving_variance), rtol=1e-14, atol=1e-16)


# -- presets -----------------------------------------------------------------------------------
def test_presets_set_the_conventions_together_and_record_their_name():
    from bench.core import registry

    plain = registry.experiment("dcgan", profile="smoke")
    assert registry.experiment("dcgan", profile="smoke", convention="torch") == plain
    tfgan = registry.experiment("dcgan", profile="smoke", convention="tfgan")
    assert tfgan.convention == "tfgan" and tfgan.gp_form == "divide"
    assert tfgan.targets == (0.875, 0.0)  # TF-GAN's discriminator losses: label_smoothing=0.25
    assert (tfgan.d_optimizer.rmsprop_eps_placement, tfgan.d_optimizer.rmsprop_initial_ms) == ("inside", 1.0)
    assert (tfgan.generator.bn_variance, tfgan.generator.bn_eps) == ("biased", 1e-3)
    sn = registry.experiment("dcgan", ("spectral-norm",), profile="smoke", convention="tfgan").discriminator
    assert (sn.sn_vector, sn.sn_form, sn.sn_eps) == ("input", "equality", TFGAN_SN_EPS)
    keras_sn = registry.experiment("dcgan", ("spectral-norm",), profile="smoke", convention="keras").discriminator
    assert (keras_sn.sn_vector, keras_sn.sn_form, keras_sn.sn_eps) == ("output", "equality", KERAS_SN_EPS)
    keras = registry.experiment("wgan-gp", profile="smoke", convention="keras")
    assert (keras.g_optimizer.adam_eps, keras.g_optimizer.eps) == ("epsilon_hat", 1e-7)
    smooth = registry.experiment("gan", ("label-smoothing-two",), profile="smoke", convention="keras")
    assert smooth.targets == pytest.approx((0.95, 0.05))
    for name in ("torchgan", "mimicry"):  # torch.optim, torch BN, subtracted GP: genbench's own
        assert registry.experiment("dcgan", profile="smoke", convention=name) == plain.with_(convention=name)
    with pytest.raises(Exception, match="convention=.jax. is not one of torch, tfgan, keras, torchgan, mimicry"):
        registry.with_convention(plain, "jax")


# -- the twins still agree under every peer setting that changes training --------------------------
PRESET_CASES = [
    ("dcgan", ("batch-norm",), "tfgan"),
    ("dcgan", ("batch-norm",), "keras"),
    ("wgan-gp", (), "tfgan"),
    ("lsgan", (), "keras"),
    ("dcgan", ("spectral-norm",), "tfgan"),
]


@pytest.mark.equivalence
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    "model, stabs, convention",
    PRESET_CASES,
    ids=[f"{m}{''.join('+' + s for s in st)}@{c}" for m, st, c in PRESET_CASES],
)
def test_twins_train_identically_under_peer_presets(model, stabs, convention, dtype):
    from bench.checks import equivalence as eq
    from bench.core import registry

    case = eq.Case(model, stabs)
    spec = registry.with_convention(case.spec(dtype), convention)
    eq.run_case(case, dtype, steps=5, spec=spec)  # raises EquivalenceError naming the tensor
