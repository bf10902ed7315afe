"""The stabilizers of both twins against SVD, finite differences and NumPy formulas.

Spectral norm, gradient penalty, weight decay (coupled and decoupled, through each twin's
optimizer), dropout, batch norm and weight clipping. All in float64, so the tolerances
below are set by the method (power iteration, finite differences), not by rounding.
"""

import importlib

import numpy as np
import pytest
from helpers import as_numpy, as_tensor

from bench.core import arch
from bench.core.randomness import dropout_masks, initial_weights
from bench.core.specs import GP_EPSILON, ExperimentSpec, NetSpec, OptimizerSpec
from impls import FRAMEWORKS


# -- framework helpers ------------------------------------------------------------------------
def module(framework, name):
    return importlib.import_module(f"impls.{framework}.{name}")


def as_variable(framework, a, trainable=True):
    """A parameter (trainable) or buffer the twin updates in place: torch Parameter or
    tensor, tf.Variable."""
    a = np.array(a, dtype=np.float64)
    if framework == "torch":
        import torch

        return torch.nn.Parameter(torch.as_tensor(a)) if trainable else torch.as_tensor(a)
    import tensorflow as tf

    return tf.Variable(a)


def nchw_to_framework(framework, x):
    """Canonical NCHW activations -> the twin's layout (TF is NHWC)."""
    if framework == "tensorflow" and x.ndim == 4:
        return x.transpose(0, 2, 3, 1)
    return x


def framework_to_nchw(framework, x):
    if framework == "tensorflow" and x.ndim == 4:
        return x.transpose(0, 3, 1, 2)
    return x


# -- spectral norm --------------------------------------------------------------------------
# Canonical weights and the matrix spectral norm divides by (bench/core/arch.py):
#   dense (out, in)                 -> as is
#   conv  (C_out, C_in, kh, kw)     -> weight.reshape(C_out, C_in * kh * kw)
#   convT (C_in, C_out, kh, kw)     -> weight.transpose(1, 0, 2, 3).reshape(C_out, C_in * kh * kw)
# The TF twin stores Keras kernels; impls.tensorflow.weights.to_tf / to_canonical convert.
SN_SHAPES = {"dense": (6, 10), "conv": (8, 3, 4, 4), "convT": (5, 4, 4, 4)}
SN_ITERATIONS = 100


def canonical_matrix(weight, kind):
    if kind == "convT":
        weight = weight.transpose(1, 0, 2, 3)
    return weight.reshape(weight.shape[0], -1)


def framework_weight(framework, kind, weight):
    if framework == "tensorflow":
        return module("tensorflow", "weights").to_tf(kind, "weight", weight)
    return weight


def canonical_weight(framework, kind, weight):
    if framework == "tensorflow":
        return module("tensorflow", "weights").to_canonical(kind, "weight", weight)
    return weight


def sn_case(kind, seed=9):
    rng = np.random.default_rng(seed)
    weight = rng.normal(size=SN_SHAPES[kind])
    rows = canonical_matrix(weight, kind).shape[0]
    u = rng.normal(size=rows)
    return weight, u / np.linalg.norm(u)


@pytest.mark.parametrize("kind", SN_SHAPES)
def test_spectral_matrix_follows_the_canonical_convention(framework, kind):
    weight, _ = sn_case(kind)
    got = module(framework, "stabilizers").spectral_matrix(
        as_tensor(framework, framework_weight(framework, kind, weight)), kind
    )
    np.testing.assert_array_equal(as_numpy(got), canonical_matrix(weight, kind))


@pytest.mark.parametrize("kind", SN_SHAPES)
def test_spectral_normalize_gives_unit_top_singular_value(framework, kind):
    weight, u0 = sn_case(kind)
    svd_u, s, _ = np.linalg.svd(canonical_matrix(weight, kind))
    # Power iteration converges like (s2/s1)^(2n) in sigma; with this seed s2/s1 < 0.86 (the
    # gap of Gaussian matrices is often 0.95), so 100 iterations leave < 1e-13, under the
    # 1e-8 asserted; 1e-8 also bounds u's error, which converges only like (s2/s1)^n.
    assert s[1] / s[0] < 0.86, "pick a seed with a spectral gap"
    stab = module(framework, "stabilizers")
    u = as_variable(framework, u0, trainable=False)
    out = stab.spectral_normalize(
        as_tensor(framework, framework_weight(framework, kind, weight)), u, kind, SN_ITERATIONS, 1e-12, update=True
    )
    normalized = canonical_weight(framework, kind, as_numpy(out))
    top = np.linalg.svd(canonical_matrix(normalized, kind), compute_uv=False)[0]
    np.testing.assert_allclose(top, 1.0, rtol=1e-8)
    np.testing.assert_allclose(normalized, weight / s[0], rtol=1e-8)  # one scalar divides all
    # the stored u is the top left singular vector (up to sign)
    np.testing.assert_allclose(abs(as_numpy(u) @ svd_u[:, 0]), 1.0, rtol=1e-8)


@pytest.mark.parametrize("kind", SN_SHAPES)
def test_spectral_normalize_in_evaluation_uses_the_stored_u(framework, kind):
    weight, u0 = sn_case(kind)
    stab = module(framework, "stabilizers")
    w = as_tensor(framework, framework_weight(framework, kind, weight))
    u = as_variable(framework, u0, trainable=False)
    out = as_numpy(stab.spectral_normalize(w, u, kind, 1, 1e-12, update=False))
    np.testing.assert_array_equal(as_numpy(u), u0)  # evaluation does not move u
    # sigma = u . W v with v = normalize(W^T u) = ||W^T u||
    sigma = np.linalg.norm(canonical_matrix(weight, kind).T @ u0)
    np.testing.assert_allclose(canonical_weight(framework, kind, out), weight / sigma, rtol=1e-12)
    # one power iteration (update=True) moves u to normalize(W normalize(W^T u))
    stab.spectral_normalize(w, u, kind, 1, 1e-12, update=True)
    m = canonical_matrix(weight, kind)
    v = m.T @ u0 / np.linalg.norm(m.T @ u0)
    np.testing.assert_allclose(as_numpy(u), m @ v / np.linalg.norm(m @ v), rtol=1e-12)


def test_naive_reshape_of_a_tf_conv_kernel_is_a_different_matrix():
    """A Keras conv kernel (kh, kw, C_in, C_out) reshaped to (C_out, -1) has the canonical
    matrix's shape but mixes kernel positions into rows, and its singular values differ.
    Viewed right, as (kh kw C_in, C_out) (rows = the rest), it is the canonical matrix
    transposed with its columns permuted: the same singular values.

    A rank-one kernel W[o, i, h, w] = a[o] b[i, h, w] makes it plain: its canonical matrix
    a b^T has one nonzero singular value, ||a|| ||b||; the naive matrix has several."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=8), rng.normal(size=(3, 4, 4))
    weight = a[:, None, None, None] * b[None]
    c_out = weight.shape[0]
    kernel = module("tensorflow", "weights").to_tf("conv", "weight", weight)
    canonical = canonical_matrix(weight, "conv")
    naive = kernel.reshape(c_out, -1)
    assert naive.shape == canonical.shape and not np.allclose(naive, canonical)
    s_canonical = np.linalg.svd(canonical, compute_uv=False)
    s_naive = np.linalg.svd(naive, compute_uv=False)
    np.testing.assert_allclose(s_canonical[0], np.linalg.norm(a) * np.linalg.norm(b), rtol=1e-12)
    assert np.all(s_canonical[1:] < 1e-12 * s_canonical[0])
    assert s_naive[1] > 0.1 * s_naive[0]  # not rank one
    assert abs(s_naive[0] - s_canonical[0]) > 0.1 * s_canonical[0]
    for w in (weight, sn_case("conv")[0]):  # the rank-one and a random kernel
        tf_kernel = module("tensorflow", "weights").to_tf("conv", "weight", w)
        np.testing.assert_allclose(
            np.linalg.svd(tf_kernel.reshape(-1, c_out), compute_uv=False),
            np.linalg.svd(canonical_matrix(w, "conv"), compute_uv=False),
            rtol=1e-12,
            atol=1e-12 * s_canonical[0],
        )


# -- gradient penalty -----------------------------------------------------------------------
def tanh_critic(framework, w1, b1, w2):
    """f(x) = w2 . tanh(W1 flat(x) + b1), one score per sample, in framework ops (smooth, so
    central differences converge)."""
    w1, b1, w2 = (as_tensor(framework, a) for a in (w1, b1, w2))
    if framework == "torch":
        import torch

        return lambda x: (torch.tanh(x.reshape(x.shape[0], -1) @ w1 + b1) * w2).sum(dim=1)
    import tensorflow as tf

    return lambda x: tf.reduce_sum(tf.tanh(tf.reshape(x, (tf.shape(x)[0], -1)) @ w1 + b1) * w2, axis=1)


def finite_difference_norms(critic, framework, x, eps=1e-6):
    """||grad_x f|| per sample by central differences. f_i depends on x_i only, so one
    coordinate is perturbed in every sample at once."""
    flat = x.reshape(len(x), -1)
    grad = np.zeros_like(flat)
    for j in range(flat.shape[1]):
        step = np.zeros_like(flat)
        step[:, j] = eps
        up = as_numpy(critic(as_tensor(framework, (flat + step).reshape(x.shape))))
        down = as_numpy(critic(as_tensor(framework, (flat - step).reshape(x.shape))))
        grad[:, j] = (up - down) / (2 * eps)
    return np.linalg.norm(grad, axis=1)


@pytest.mark.parametrize("data_shape", [(3,), (2, 2, 3)], ids=["vector", "image"])
@pytest.mark.parametrize("target", [1.0, 0.0])
def test_gradient_penalty_matches_finite_differences(framework, rng, data_shape, target):
    batch, hidden = 4, 5
    dim = int(np.prod(data_shape))
    critic = tanh_critic(framework, rng.normal(size=(dim, hidden)), rng.normal(size=hidden), rng.normal(size=hidden))
    real, fake = rng.normal(size=(2, batch) + data_shape)
    alpha = rng.random((batch,) + (1,) * len(data_shape))
    x_hat = alpha * real + (1 - alpha) * fake
    norms = finite_difference_norms(critic, framework, x_hat)
    want = np.mean((norms - target) ** 2)
    got = module(framework, "stabilizers").gradient_penalty(
        critic, as_tensor(framework, real), as_tensor(framework, fake), as_tensor(framework, alpha), target
    )
    # central differences, eps 1e-6: truncation ~eps^2 f''' ~ 1e-12, rounding ~1e-16 / eps ~ 1e-10
    np.testing.assert_allclose(float(as_numpy(got)), want, rtol=1e-7)


def linear_critic(framework, w):
    if framework == "torch":
        return lambda x: (x.reshape(x.shape[0], -1) * w).sum(dim=1)
    import tensorflow as tf

    return lambda x: tf.reduce_sum(tf.reshape(x, (tf.shape(x)[0], -1)) * w, axis=1)


def penalty_and_grads(framework, critic_of, values, real, fake, alpha, target, dtype):
    """The penalty of critic_of(params) and its gradient in each parameter (None where the
    penalty does not depend on it), through the twin's own autograd, all in `dtype`."""
    stab = module(framework, "stabilizers")
    real, fake, alpha = (as_tensor(framework, a, dtype) for a in (real, fake, alpha))
    if framework == "torch":
        import torch

        params = [as_tensor(framework, v, dtype).requires_grad_(True) for v in values]
        penalty = stab.gradient_penalty(critic_of(params), real, fake, alpha, target)
        grads = torch.autograd.grad(penalty, params, allow_unused=True)
    else:
        import tensorflow as tf

        params = [tf.Variable(as_tensor(framework, v, dtype)) for v in values]
        with tf.GradientTape() as tape:
            penalty = stab.gradient_penalty(critic_of(params), real, fake, alpha, target)
        grads = tape.gradient(penalty, params)
    return float(as_numpy(penalty)), [None if g is None else as_numpy(g) for g in grads]


@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_gradient_penalty_of_a_linear_critic(framework, rng, scale):
    """f(x) = w . x has gradient w everywhere: with n = sqrt(||w||^2 + GP_EPSILON) the penalty
    is (n - 1)^2, and its gradient in w is 2 (n - 1) w / n; the interpolates (fake side) get no
    gradient."""
    w0 = rng.normal(size=6)
    w0 *= scale / np.linalg.norm(w0)
    n = np.sqrt(scale**2 + GP_EPSILON)
    real, fake = rng.normal(size=(2, 3, 6))
    alpha = rng.random((3, 1))
    stab = module(framework, "stabilizers")
    w, fake_t = as_variable(framework, w0), as_variable(framework, fake)
    if framework == "torch":
        import torch

        penalty = stab.gradient_penalty(
            linear_critic(framework, w), as_tensor(framework, real), fake_t, as_tensor(framework, alpha), 1.0
        )
        grad_w, grad_fake = torch.autograd.grad(penalty, [w, fake_t], allow_unused=True)
    else:
        import tensorflow as tf

        with tf.GradientTape() as tape:
            penalty = stab.gradient_penalty(
                linear_critic(framework, w), as_tensor(framework, real), fake_t, as_tensor(framework, alpha), 1.0
            )
        grad_w, grad_fake = tape.gradient(penalty, [w, fake_t])
    np.testing.assert_allclose(float(as_numpy(penalty)), (n - 1) ** 2, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(as_numpy(grad_w), 2 * (n - 1) * w0 / n, rtol=1e-12, atol=1e-15)
    assert grad_fake is None  # fake is a constant of the critic step


def relu_critic(framework, w1, b1, w2):
    """f(x) = w2 . relu(W1 flat(x) + b1)."""
    if framework == "torch":
        import torch

        return lambda x: (torch.relu(x.reshape(x.shape[0], -1) @ w1 + b1) * w2).sum(dim=1)
    import tensorflow as tf

    return lambda x: tf.reduce_sum(tf.nn.relu(tf.reshape(x, (tf.shape(x)[0], -1)) @ w1 + b1) * w2, axis=1)


@pytest.mark.parametrize("critic", ["relu-all-off", "zero-linear"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("target", [1.0, 0.5])
def test_gradient_penalty_is_finite_at_a_zero_gradient(framework, rng, critic, dtype, target):
    """A critic whose input gradient is exactly zero at every interpolate (a ReLU critic with
    every unit off, or f(x) = 0 . x): the penalty is (sqrt(GP_EPSILON) - target)^2, within
    2e-5 target of target^2, and its gradient in every critic parameter is finite (sqrt'(0)
    is infinite: without the epsilon each of them is NaN)."""
    batch, dim, hidden = 4, 6, 5
    real, fake = rng.normal(size=(2, batch, dim))
    alpha = rng.random((batch, 1))
    if critic == "relu-all-off":  # inputs are N(0, 1): a bias of -1e3 keeps every unit off
        values = [rng.normal(size=(dim, hidden)), np.full(hidden, -1e3), rng.normal(size=hidden)]

        def critic_of(p):
            return relu_critic(framework, *p)
    else:
        values = [np.zeros(dim)]

        def critic_of(p):
            return linear_critic(framework, p[0])

    penalty, grads = penalty_and_grads(framework, critic_of, values, real, fake, alpha, target, dtype)
    want = (np.sqrt(GP_EPSILON) - target) ** 2
    assert penalty == pytest.approx(want, rel=1e-6)
    assert penalty == pytest.approx(target**2, abs=2.1e-5 * target)  # 2 sqrt(eps) target + rounding
    for g in grads:
        assert g is not None and np.all(np.isfinite(g)), grads
        np.testing.assert_array_equal(g, 0.0)  # the gradient of a dead critic is zero, not NaN


# -- weight decay through each twin's optimizer -------------------------------------------
def numpy_optimizer(o, p0, grads):
    """The torch.optim formulas (bench/core/specs.py): Adam with eps on the bias-corrected
    sqrt(v_hat), RMSprop with eps outside the root; coupled decay adds wd p to the gradient,
    decoupled decay multiplies p by 1 - lr wd before the update."""
    p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    for t, g in enumerate(grads, start=1):
        if o.decoupled_weight_decay:
            p = p * (1.0 - o.lr * o.weight_decay)
        else:
            g = g + o.weight_decay * p
        if o.kind == "adam":
            m = o.beta1 * m + (1 - o.beta1) * g
            v = o.beta2 * v + (1 - o.beta2) * g * g
            m_hat, v_hat = m / (1 - o.beta1**t), v / (1 - o.beta2**t)
            p = p - o.lr * m_hat / (np.sqrt(v_hat) + o.eps)
        else:
            v = o.rho * v + (1 - o.rho) * g * g
            p = p - o.lr * g / (np.sqrt(v) + o.eps)
    return p


def framework_optimizer_steps(framework, o, p0, grads):
    train = module(framework, "train")
    p = as_variable(framework, p0)
    opt = train.make_optimizer([p], o)
    for g in grads:
        if framework == "torch":
            import torch

            p.grad = torch.as_tensor(np.array(g))
            opt.step()
        else:
            opt.apply([as_tensor(framework, g)])
    return as_numpy(p)


@pytest.mark.parametrize("kind", ["adam", "rmsprop"])
@pytest.mark.parametrize("decay", ["none", "coupled", "decoupled"])
@pytest.mark.parametrize("steps", [1, 3])
def test_optimizer_step_matches_the_torch_formula(framework, kind, decay, steps):
    # non-default hyperparameters, and gradients from 1e-9 (eps dominates) to 3
    o = OptimizerSpec(
        kind=kind,
        lr=1e-2,
        beta1=0.8,
        beta2=0.95,
        rho=0.9,
        eps=1e-6,
        weight_decay=0.0 if decay == "none" else 0.1,
        decoupled_weight_decay=decay == "decoupled",
    )
    rng = np.random.default_rng(11)
    p0 = rng.normal(size=6)
    grads = [np.array([1e-9, -1e-9, 1e-3, -0.5, 3.0, 0.0]) * rng.uniform(0.5, 1.5, 6) for _ in range(steps)]
    got = framework_optimizer_steps(framework, o, p0, grads)
    np.testing.assert_allclose(got, numpy_optimizer(o, p0, grads), rtol=1e-12, atol=1e-15)


def test_adam_coupled_decay_is_normalized_away_but_decoupled_decay_is_not(framework):
    """Loshchilov & Hutter 2019: with a tiny gradient, coupled L2 (g += wd p) dominates g and
    Adam divides it by its own magnitude, so every weight moves by ~lr whatever wd is;
    decoupled decay shrinks each weight by the factor 1 - lr wd."""
    lr, eps = 1e-3, 1e-8
    p0 = np.array([1.0, -0.5, 2.0])
    grad = np.full(3, 1e-12)  # 1e4 times smaller than eps: Adam's own step is lr * 1e-4

    def step(wd, decoupled):
        o = OptimizerSpec(
            kind="adam", lr=lr, beta1=0.9, beta2=0.999, eps=eps, weight_decay=wd, decoupled_weight_decay=decoupled
        )
        return framework_optimizer_steps(framework, o, p0, [grad])

    # coupled: g' = wd p + g, and the first Adam step lr g' / (|g'| + eps) is lr sign(p),
    # short by lr eps / (wd |p|) <= 2e-7 here: a 100 times larger wd moves p no further
    for wd in (1e-2, 1e-4):
        np.testing.assert_allclose(step(wd, False), [0.999, -0.499, 1.999], rtol=0, atol=2.5e-7)
    # decoupled: p (1 - lr wd) minus Adam's step on the tiny gradient, lr g / (g + eps) ~ 1e-7
    for wd in (1e-2, 1e-4):
        adam_step = lr * 1e-12 / (1e-12 + eps)
        np.testing.assert_allclose(step(wd, True), p0 * (1 - lr * wd) - adam_step, rtol=1e-12)
    np.testing.assert_allclose(step(1e-2, True), [0.9999899, -0.4999951, 1.9999799], rtol=0, atol=1e-9)


# -- dropout --------------------------------------------------------------------------------
def numpy_forward(layers, weights, x, masks=None):
    """A NumPy interpreter for MLP layer lists (dense, act, dropout, flatten)."""
    masks = list(masks or [])
    for layer in layers:
        if layer.kind == "dense":
            x = x @ weights[f"{layer.name}.weight"].T + weights[f"{layer.name}.bias"]
        elif layer.kind == "act":
            slope = layer.args["slope"] if layer.args["fn"] == "leaky_relu" else 0.0
            x = np.where(x > 0, x, slope * x)
        elif layer.kind == "dropout":
            if masks:
                x = x * masks.pop(0)
        elif layer.kind == "flatten":
            x = x.reshape(len(x), -1)
        else:  # pragma: no cover
            raise ValueError(layer.kind)
    return x


DROPOUT_P = 0.4


def dropout_spec(p=DROPOUT_P, dataset="ring8"):
    return ExperimentSpec("dropout", dataset=dataset, dtype="float64", discriminator=NetSpec(hidden=(12, 8), dropout=p))


def build_net(framework, spec):
    """The twin's discriminator network for the spec, with the spec's initial weights."""
    layers = arch.discriminator_layers(spec)
    weights = {k: v for k, v in initial_weights(spec, np.random.default_rng(5)).items() if k.startswith("D.")}
    models = module(framework, "models")
    if framework == "torch":
        import torch

        net = models.Net(layers, torch.float64)
    else:
        import tensorflow as tf

        net = models.Net(layers, tf.float64)
    module(framework, "weights").set_weights({"D": net}, weights)
    return net, layers, {k[2:]: v for k, v in weights.items()}


def set_training(framework, net, on):
    if framework == "torch":
        net.train(on)
    else:
        net.training = on


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dropout_masks_are_inverted_and_unbiased(dtype):
    layers = arch.discriminator_layers(dropout_spec())
    masks = dropout_masks(layers, 20000, np.random.default_rng(0), dtype)
    assert [m.shape for m in masks] == [(20000, 12), (20000, 8)]
    assert all(m.dtype == dtype for m in masks)
    n = 20000 * 20
    values = np.concatenate([m.ravel() for m in masks]).astype(np.float64)
    assert set(np.unique(values)) == {0.0, float(dtype(1.0 / (1.0 - DROPOUT_P)))}
    # E[mask] = 1; Var[mask] = p / (1 - p), so the mean's standard error is sqrt(p/(1-p)/n)
    stderr = np.sqrt(DROPOUT_P / (1 - DROPOUT_P) / n)
    assert abs(values.mean() - 1.0) < 5 * stderr + 2 * np.finfo(dtype).eps  # the scale's rounding
    assert abs(np.mean(values == 0.0) - DROPOUT_P) < 5 * np.sqrt(DROPOUT_P * (1 - DROPOUT_P) / n)


def test_dropout_keeps_the_same_units_in_float32_and_float64():
    """The keep decisions come from integer draws, so a float32 run and a float64 run of one
    seed drop the same units (only the stored scale 1 / (1 - p) is rounded differently)."""
    layers = arch.discriminator_layers(dropout_spec())
    m64 = dropout_masks(layers, 500, np.random.default_rng(5), np.float64)
    m32 = dropout_masks(layers, 500, np.random.default_rng(5), np.float32)
    for a, b in zip(m64, m32, strict=True):
        np.testing.assert_array_equal(a == 0, b == 0)
        assert 0.3 < np.mean(a == 0) < 0.5  # p = DROPOUT_P = 0.4: some kept, some dropped


@pytest.mark.parametrize("dataset", ["ring8", "mnist"])
def test_dropout_in_training_applies_the_harness_mask(framework, dataset):
    spec = dropout_spec(dataset=dataset)
    net, layers, weights = build_net(framework, spec)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(5,) + spec.data_shape)
    masks = dropout_masks(layers, 5, rng, np.float64)
    set_training(framework, net, True)
    out, _ = net(as_tensor(framework, nchw_to_framework(framework, x)), [as_tensor(framework, m) for m in masks])
    np.testing.assert_allclose(as_numpy(out), numpy_forward(layers, weights, x, masks), rtol=1e-12)
    # and the masks matter: without them the output differs
    assert not np.allclose(as_numpy(out), numpy_forward(layers, weights, x))
    with pytest.raises(ValueError, match="needs a mask"):
        net(as_tensor(framework, nchw_to_framework(framework, x)))


def test_dropout_in_evaluation_is_the_identity(framework):
    spec = dropout_spec()
    net, layers, weights = build_net(framework, spec)
    plain, plain_layers, plain_weights = build_net(framework, dropout_spec(p=0.0))
    assert plain_weights.keys() == weights.keys()  # dropout has no parameters
    x = np.random.default_rng(3).normal(size=(7, 2))
    set_training(framework, net, False)
    out, _ = net(as_tensor(framework, x))  # no masks needed
    want = as_numpy(plain(as_tensor(framework, x))[0])  # no dropout layers: no masks either
    np.testing.assert_array_equal(as_numpy(out), want)
    np.testing.assert_allclose(as_numpy(out), numpy_forward(plain_layers, weights, x), rtol=1e-12)


def test_dropout_masks_land_on_the_same_units_in_both_twins():
    """4-D masks are canonical NCHW; the TF twin transposes them to NHWC. A DCGAN
    discriminator with dropout after both convs must give the same scores in both twins."""
    spec = ExperimentSpec(
        "dcgan-dropout",
        architecture="dcgan",
        dtype="float64",
        generator=NetSpec(hidden=(4, 2)),
        discriminator=NetSpec(hidden=(2, 3), dropout=0.5),
    )
    rng = np.random.default_rng(4)
    x = rng.uniform(-1, 1, size=(3, 1, 28, 28))
    masks = dropout_masks(arch.discriminator_layers(spec), 3, rng, np.float64)
    outs = {}
    for fw in FRAMEWORKS:
        net, _, _ = build_net(fw, spec)
        set_training(fw, net, True)
        outs[fw] = as_numpy(net(as_tensor(fw, nchw_to_framework(fw, x)), [as_tensor(fw, m) for m in masks])[0])
    assert masks[0].shape == (3, 2, 14, 14)
    # float64 convolutions in two libraries: summation order differs, ~1e-15 relative
    np.testing.assert_allclose(outs["torch"], outs["tensorflow"], rtol=1e-10, atol=1e-13)


# -- batch norm ---------------------------------------------------------------------------
def numpy_batch_norm_train(x, weight, bias, running_mean, running_var, momentum, eps):
    """torch convention: normalise with the biased batch variance, store the unbiased one,
    momentum weights the new batch. Channels on axis 1 (canonical)."""
    axes = tuple(i for i in range(x.ndim) if i != 1)
    shape = [1] * x.ndim
    shape[1] = -1
    n = x.size // x.shape[1]
    mean, var = x.mean(axis=axes), x.var(axis=axes)
    out = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) * weight.reshape(shape) + bias.reshape(shape)
    new_mean = (1 - momentum) * running_mean + momentum * mean
    new_var = (1 - momentum) * running_var + momentum * var * n / (n - 1)
    return out, new_mean, new_var


def numpy_batch_norm_eval(x, weight, bias, running_mean, running_var, eps):
    shape = [1] * x.ndim
    shape[1] = -1
    r = lambda a: a.reshape(shape)  # noqa: E731
    return (x - r(running_mean)) / np.sqrt(r(running_var) + eps) * r(weight) + r(bias)


@pytest.mark.parametrize("shape", [(16, 3), (4, 3, 5, 5)], ids=["2d", "4d"])
@pytest.mark.parametrize(
    "net",
    [NetSpec(batch_norm=True), NetSpec(batch_norm=True, bn_momentum=0.3, bn_eps=1e-3)],
    ids=["defaults", "custom"],
)
def test_batch_norm_matches_the_torch_formula(framework, rng, shape, net):
    momentum, eps = net.bn_momentum, net.bn_eps
    c = shape[1]
    weight, bias = rng.uniform(0.5, 1.5, c), rng.normal(size=c)
    running_mean, running_var = rng.normal(size=c), rng.uniform(0.5, 2.0, c)
    stab = module(framework, "stabilizers")
    rm_t, rv_t = (as_variable(framework, a, trainable=False) for a in (running_mean, running_var))
    w_t, b_t = as_tensor(framework, weight), as_tensor(framework, bias)
    for step in range(2):  # the second step starts from the first one's running averages
        x = rng.normal(loc=2.0, scale=3.0, size=shape)
        out = stab.batch_norm(
            as_tensor(framework, nchw_to_framework(framework, x)), w_t, b_t, rm_t, rv_t, True, momentum, eps
        )
        want, running_mean, running_var = numpy_batch_norm_train(
            x, weight, bias, running_mean, running_var, momentum, eps
        )
        # float64; outputs are O(1), so an absolute floor of 1e-12 for values near zero
        np.testing.assert_allclose(
            framework_to_nchw(framework, as_numpy(out)),
            want,
            rtol=1e-12,
            atol=1e-12,
            err_msg=f"training output, step {step}",
        )
        np.testing.assert_allclose(as_numpy(rm_t), running_mean, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(as_numpy(rv_t), running_var, rtol=1e-12)
    x = rng.normal(size=shape)
    running_mean, running_var = as_numpy(rm_t).copy(), as_numpy(rv_t).copy()
    out = stab.batch_norm(
        as_tensor(framework, nchw_to_framework(framework, x)), w_t, b_t, rm_t, rv_t, False, momentum, eps
    )
    np.testing.assert_allclose(
        framework_to_nchw(framework, as_numpy(out)),
        numpy_batch_norm_eval(x, weight, bias, running_mean, running_var, eps),
        rtol=1e-12,
        atol=1e-12,
    )
    np.testing.assert_array_equal(as_numpy(rm_t), running_mean)  # evaluation leaves them alone
    np.testing.assert_array_equal(as_numpy(rv_t), running_var)


def test_batch_norm_layers_take_momentum_and_eps_from_the_spec():
    spec = ExperimentSpec(
        "bn", dataset="ring8", discriminator=NetSpec(hidden=(4,), batch_norm=True, bn_momentum=0.3, bn_eps=1e-3)
    )
    (bn,) = [layer for layer in arch.discriminator_layers(spec) if layer.kind == "bn"]
    assert bn.args == {"momentum": 0.3, "eps": 1e-3}


# -- weight clipping ------------------------------------------------------------------------
def test_clip_weights_clamps_every_parameter(framework, rng):
    clip = 0.01
    arrays = [rng.uniform(-0.05, 0.05, size=s) for s in ((4, 3), (3,), (2, 2, 2, 2))]
    arrays[1][0] = 0.005  # inside the interval: unchanged
    params = [as_variable(framework, a) for a in arrays]
    module(framework, "stabilizers").clip_weights(params, clip)
    for p, a in zip(params, arrays):
        got = as_numpy(p)
        np.testing.assert_array_equal(got, np.clip(a, -clip, clip))
        assert got.min() >= -clip and got.max() <= clip
    assert as_numpy(params[1])[0] == 0.005
