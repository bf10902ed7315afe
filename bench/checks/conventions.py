"""Framework defaults that differ between PyTorch and TensorFlow/Keras, measured.

Each function runs the real framework classes (torch.nn, torch.optim, keras.layers,
keras.optimizers, Keras 3 on the TensorFlow backend) on the same float64 inputs and returns one
row: the defaults it read off the instances (never assumed), the largest difference under those
defaults, the difference when Keras gets the PyTorch values as explicit arguments (where Keras
exposes them), and the difference on the path genbench takes, the spec's explicit setting run
through the TensorFlow twin's own code, which is what removes it. The twins are reached through
their contract only, `impls.load(framework).<part>` (PARTS, impls/__init__.py).
suites/test_conventions.py asserts that each default difference is real and that the pinned
path removes it; `rows()` returns them as table rows.

Row keys: convention, torch, keras (defaults as read), default_diff, matched_diff (None where
Keras has no such argument), pinned_diff, pinned_by.
"""

from __future__ import annotations

import os

import numpy as np

import impls  # importing it first also loads Triton before TensorFlow (impls/__init__.py)

DTYPE = "float64"


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(f"Keras runs on {keras.backend.backend()!r}; genbench compares against tensorflow")
    return keras


def _maxdiff(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a - b)))


def _row(convention, torch_default, keras_default, default_diff, matched_diff, pinned_diff, pinned_by):
    return {
        "convention": convention,
        "torch": torch_default,
        "keras": keras_default,
        "default_diff": default_diff,
        "matched_diff": matched_diff,
        "pinned_diff": pinned_diff,
        "pinned_by": pinned_by,
    }


# -- batch norm ---------------------------------------------------------------------------------
def batch_norm(momentum=0.1, eps=1e-5):
    """One training-mode batch: output, running mean, running variance."""
    import tensorflow as tf
    import torch

    keras = _keras()
    rng = np.random.default_rng(0)
    x = 0.3 + 0.05 * rng.standard_normal((16, 4))  # small variance: eps 1e-3 vs 1e-5 shows

    def run_torch(bn):
        bn.train()
        y = bn(torch.tensor(x)).detach().numpy()
        return y, bn.running_mean.numpy(), bn.running_var.numpy()

    def run_keras(bn):
        y = np.asarray(bn(x, training=True))
        return y, np.asarray(bn.moving_mean), np.asarray(bn.moving_variance)

    t_default = torch.nn.BatchNorm1d(4, dtype=torch.float64)
    k_default = keras.layers.BatchNormalization(dtype=DTYPE)
    ref = run_torch(torch.nn.BatchNorm1d(4, momentum=momentum, eps=eps, dtype=torch.float64))
    default_diff = max(_maxdiff(a, b) for a, b in zip(run_torch(t_default), run_keras(k_default)))
    # Keras' momentum weights the old value: torch m is Keras 1 - m. Its moving variance stays
    # the biased batch variance (torch stores the unbiased one), which no argument changes.
    matched = run_keras(keras.layers.BatchNormalization(momentum=1.0 - momentum, epsilon=eps, dtype=DTYPE))
    rm, rv = tf.Variable(np.zeros(4)), tf.Variable(np.ones(4))
    tf_batch_norm = impls.load("tensorflow").stabilizers.batch_norm
    y = tf_batch_norm(tf.constant(x), tf.constant(np.ones(4)), tf.constant(np.zeros(4)), rm, rv, True, momentum, eps)
    return _row(
        "batch norm momentum, eps, running variance",
        f"momentum={t_default.momentum} (new batch), eps={t_default.eps}, unbiased running var",
        f"momentum={k_default.momentum} (old value), epsilon={k_default.epsilon}, biased moving var",
        default_diff,
        max(_maxdiff(a, b) for a, b in zip(ref, matched)),
        max(_maxdiff(a, b) for a, b in zip(ref, (y, rm, rv))),
        "spec bn_momentum/bn_eps; impls/tensorflow/stabilizers.batch_norm (torch formula)",
    )


# -- optimizers ---------------------------------------------------------------------------------
GRADS = np.array([1.0, 1e-2, 1e-4, 1e-6, 1e-8, -1e-9, 3e-7])  # from large to below eps


def _steps_torch(opt_cls, n=3, **kw):
    import torch

    p = torch.nn.Parameter(torch.ones(len(GRADS), dtype=torch.float64))
    opt = opt_cls([p], **kw)
    for i in range(n):
        p.grad = torch.tensor(GRADS * (1.0 + 0.5 * i) + 0.01 * (p.detach().numpy() - 1.0))
        opt.step()
    return p.detach().numpy() - 1.0, opt


def _steps_keras(opt, n=3):
    keras = _keras()
    v = keras.Variable(np.ones(len(GRADS)), dtype=DTYPE)
    for i in range(n):
        opt.apply_gradients([(GRADS * (1.0 + 0.5 * i) + 0.01 * (np.asarray(v) - 1.0), v)])
    return np.asarray(v) - 1.0


def _steps_twin(spec, n=3):
    import tensorflow as tf

    v = tf.Variable(np.ones(len(GRADS)))
    opt = impls.load("tensorflow").train.make_optimizer([v], spec)
    for i in range(n):
        opt.apply([tf.constant(GRADS * (1.0 + 0.5 * i) + 0.01 * (v.numpy() - 1.0))])
    return v.numpy() - 1.0


def rmsprop(lr=1e-3, rho=0.99, eps=1e-8):
    """Three steps from the same gradients (the learning rate is set equal on both sides)."""
    import torch

    from ..core.specs import OptimizerSpec

    keras = _keras()
    ref, _ = _steps_torch(torch.optim.RMSprop, lr=lr, alpha=rho, eps=eps)
    t_default, t_opt = _steps_torch(torch.optim.RMSprop, lr=lr)
    k_opt = keras.optimizers.RMSprop(learning_rate=lr)
    k_default = _steps_keras(k_opt)
    matched = _steps_keras(keras.optimizers.RMSprop(learning_rate=lr, rho=rho, epsilon=eps))
    pinned = _steps_twin(OptimizerSpec(kind="rmsprop", lr=lr, rho=rho, eps=eps))
    d = t_opt.defaults
    return _row(
        "RMSprop rho and eps placement",
        f"alpha={d['alpha']}, eps={d['eps']} outside: g / (sqrt(v) + eps)",
        f"rho={k_opt.rho}, epsilon={k_opt.epsilon} inside: g / sqrt(v + eps)",
        _maxdiff(t_default, k_default),
        _maxdiff(ref, matched),
        _maxdiff(ref, pinned),
        "spec rho/eps; impls/tensorflow/train.Optimizer (torch formula)",
    )


def adam(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    import torch

    from ..core.specs import OptimizerSpec

    keras = _keras()
    ref, t_opt = _steps_torch(torch.optim.Adam, lr=lr, betas=(beta1, beta2), eps=eps)
    k_opt = keras.optimizers.Adam(learning_rate=lr, beta_1=beta1, beta_2=beta2)
    k_default = _steps_keras(k_opt)
    matched = _steps_keras(keras.optimizers.Adam(learning_rate=lr, beta_1=beta1, beta_2=beta2, epsilon=eps))
    pinned = _steps_twin(OptimizerSpec(kind="adam", lr=lr, beta1=beta1, beta2=beta2, eps=eps))
    return _row(
        "Adam eps (and where it is added)",
        f"eps={t_opt.defaults['eps']} on bias-corrected sqrt(v_hat)",
        f"epsilon={k_opt.epsilon} on uncorrected sqrt(v) ('epsilon hat'), beta powers from float32 betas",
        _maxdiff(ref, k_default),
        _maxdiff(ref, matched),
        _maxdiff(ref, pinned),
        "spec eps; impls/tensorflow/train.Optimizer (torch formula, float64 step count)",
    )


def weight_decay(lr=1e-3, wd=1e-2, eps=1e-8):
    """torch Adam(weight_decay) is coupled L2 (g += wd p); Keras 3 Adam(weight_decay) and
    both AdamWs decay the weights (p -= lr wd p)."""
    import torch

    from ..core.specs import OptimizerSpec

    keras = _keras()
    coupled, _ = _steps_torch(torch.optim.Adam, lr=lr, eps=eps, weight_decay=wd)
    decoupled, tw_opt = _steps_torch(torch.optim.AdamW, lr=lr, eps=eps, weight_decay=wd)
    k_adam = _steps_keras(keras.optimizers.Adam(learning_rate=lr, epsilon=eps, weight_decay=wd))
    kw_opt = keras.optimizers.AdamW(learning_rate=lr, epsilon=eps)
    k_adamw_default = _steps_keras(kw_opt)
    k_adamw = _steps_keras(keras.optimizers.AdamW(learning_rate=lr, epsilon=eps, weight_decay=wd))
    twin_coupled = _steps_twin(OptimizerSpec(kind="adam", lr=lr, beta1=0.9, eps=eps, weight_decay=wd))
    twin_decoupled = _steps_twin(
        OptimizerSpec(kind="adam", lr=lr, beta1=0.9, eps=eps, weight_decay=wd, decoupled_weight_decay=True)
    )
    return _row(
        "weight decay: coupled L2 vs decoupled",
        f"Adam(weight_decay) coupled L2; AdamW weight_decay={tw_opt.defaults['weight_decay']} decoupled",
        f"Adam(weight_decay) decoupled; AdamW weight_decay={kw_opt.weight_decay} decoupled",
        max(_maxdiff(coupled, k_adam), _maxdiff(decoupled, k_adamw_default)),
        _maxdiff(decoupled, k_adamw),
        max(_maxdiff(coupled, twin_coupled), _maxdiff(decoupled, twin_decoupled)),
        "spec weight_decay + decoupled_weight_decay; impls/tensorflow/train.Optimizer",
    )


# -- layers -------------------------------------------------------------------------------------
def leaky_relu(slope=0.2):
    import tensorflow as tf
    import torch

    keras = _keras()
    x = np.linspace(-3.0, 3.0, 61)
    t_default, k_layer = torch.nn.LeakyReLU(), keras.layers.LeakyReLU(dtype=DTYPE)
    ref = torch.nn.LeakyReLU(slope)(torch.tensor(x)).numpy()
    # Keras (tf.nn.leaky_relu underneath) keeps the slope as a float32 attribute: ~3e-9 in float64
    matched = np.asarray(keras.layers.LeakyReLU(negative_slope=slope, dtype=DTYPE)(x))
    return _row(
        "LeakyReLU slope",
        f"negative_slope={t_default.negative_slope}",
        f"negative_slope={k_layer.negative_slope} (tf.nn.leaky_relu alpha=0.2, float32)",
        _maxdiff(t_default(torch.tensor(x)).numpy(), np.asarray(k_layer(x))),
        _maxdiff(ref, matched),
        _maxdiff(ref, impls.load("tensorflow").models.leaky_relu(tf.constant(x), slope)),
        "spec leaky_slope; impls/tensorflow/models.leaky_relu (slope in x's dtype)",
    )


def _twin_nets(layers, weights):
    """The same layer list built by both twins (float64), loaded with the same canonical weights."""
    import tensorflow as tf
    import torch

    torch_twin, tf_twin = impls.load("torch"), impls.load("tensorflow")
    torch_models, torch_weights = torch_twin.models, torch_twin.weights
    tf_models, tf_weights = tf_twin.models, tf_twin.weights
    t_net, k_net = torch_models.Net(layers, torch.float64), tf_models.Net(layers, tf.float64)
    t_net.eval()
    k_net.training = False
    torch_weights.set_weights({"N": t_net}, weights)
    tf_weights.set_weights({"N": k_net}, weights)

    def run_torch(x):
        return t_net(torch.tensor(x))[0].detach().numpy()

    def run_tf(x):
        return tf_models.to_nchw(k_net(tf_models.to_nhwc(tf.constant(x)))[0]).numpy()

    return run_torch, run_tf


def _canonical(layers, rng):
    return {f"N.{la.name}.{p}": rng.standard_normal(shape) * 0.2 for la in layers for p, shape in la.params.items()}


def transposed_conv_padding():
    """DCGAN's ConvTranspose2d(k=4, s=2, p=1), 7x7 -> 14x14. Keras has only "valid" (16x16)
    and "same" (which happens to agree for k=4, s=2); the conv twin Conv2d(k=3, s=2, p=1) shows
    where "same" goes wrong: it pads bottom/right only when the total padding is odd."""
    import torch

    from ..core.arch import Layer

    keras = _keras()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 7, 7))
    convt = Layer("convT", "up", (3, 7, 7), (5, 14, 14), {"kernel": 4, "stride": 2, "padding": 1})
    w = _canonical([convt], rng)
    ref = torch.nn.functional.conv_transpose2d(
        torch.tensor(x), torch.tensor(w["N.up.weight"]), torch.tensor(w["N.up.bias"]), stride=2, padding=1
    ).numpy()

    def keras_convt(padding):
        layer = keras.layers.Conv2DTranspose(5, 4, strides=2, padding=padding, dtype=DTYPE)
        layer.build((None, 7, 7, 3))
        layer.set_weights([w["N.up.weight"].transpose(2, 3, 1, 0), w["N.up.bias"]])
        return np.asarray(layer(x.transpose(0, 2, 3, 1))).transpose(0, 3, 1, 2)

    valid, same = keras_convt(keras.layers.Conv2DTranspose(1, 4).padding), keras_convt("same")
    conv = Layer("conv", "down", (3, 28, 28), (5, 14, 14), {"kernel": 3, "stride": 2, "padding": 1})
    wc = _canonical([conv], rng)
    x28 = rng.standard_normal((2, 3, 28, 28))
    ref_conv = torch.nn.functional.conv2d(
        torch.tensor(x28), torch.tensor(wc["N.down.weight"]), torch.tensor(wc["N.down.bias"]), stride=2, padding=1
    ).numpy()
    k_conv = keras.layers.Conv2D(5, 3, strides=2, padding="same", dtype=DTYPE)
    k_conv.build((None, 28, 28, 3))
    k_conv.set_weights([wc["N.down.weight"].transpose(2, 3, 1, 0), wc["N.down.bias"]])
    same_conv = np.asarray(k_conv(x28.transpose(0, 2, 3, 1))).transpose(0, 3, 1, 2)
    twin_t, twin_c = _twin_nets([convt], w)[1](x), _twin_nets([conv], wc)[1](x28)
    return _row(
        "conv / transposed-conv padding",
        "ConvTranspose2d(4, 2, padding=1): 7 -> 14; Conv2d(3, 2, padding=1): symmetric",
        f"Conv2DTranspose padding={keras.layers.Conv2DTranspose(1, 4).padding!r}: 7 -> "
        f"{valid.shape[-1]}; 'same' pads bottom/right first",
        max(_maxdiff(ref, valid), _maxdiff(ref_conv, same_conv)),
        _maxdiff(ref, same),
        max(_maxdiff(ref, twin_t), _maxdiff(ref_conv, twin_c)),
        "bench/core/arch.py kernel/stride/padding; explicit pads in impls/tensorflow/models.py",
    )


def kernel_layouts():
    """The same canonical (torch-layout) weights copied into Keras layers: a plain reshape to
    the Keras shape (memory order kept) against the layout transpose of impls/tensorflow/weights."""
    from ..core.arch import Layer

    tf_weights = impls.load("tensorflow").weights
    rng = np.random.default_rng(2)
    cases = [
        (Layer("dense", "fc", (6,), (4,)), rng.standard_normal((3, 6))),
        (
            Layer("conv", "c", (3, 8, 8), (5, 4, 4), {"kernel": 4, "stride": 2, "padding": 1}),
            rng.standard_normal((2, 3, 8, 8)),
        ),
        (
            Layer("convT", "t", (3, 4, 4), (5, 8, 8), {"kernel": 4, "stride": 2, "padding": 1}),
            rng.standard_normal((2, 3, 4, 4)),
        ),
    ]
    naive, pinned = 0.0, 0.0
    for layer, x in cases:
        w = _canonical([layer], rng)
        run_torch, run_tf = _twin_nets([layer], w)
        ref = run_torch(x)
        key = f"N.{layer.name}.weight"
        tf_shape = tf_weights.to_tf(layer.kind, "weight", w[key]).shape
        # the Keras variable holds a plain reshape (memory order kept); set_weights takes canonical arrays
        scrambled = tf_weights.to_canonical(layer.kind, "weight", w[key].reshape(tf_shape))
        naive = max(naive, _maxdiff(ref, _twin_nets([layer], {**w, key: scrambled})[1](x)))
        pinned = max(pinned, _maxdiff(ref, run_tf(x)))
    return _row(
        "kernel layouts",
        "Linear (out, in); Conv2d (C_out, C_in, kh, kw); ConvTranspose2d (C_in, C_out, kh, kw)",
        "Dense (in, out); Conv2D (kh, kw, C_in, C_out); Conv2DTranspose (kh, kw, C_out, C_in)",
        naive,
        None,
        pinned,
        "impls/tensorflow/weights.py transposes on import and export",
    )


def flatten_order():
    """Flatten then Dense: torch flattens NCHW as (C, H, W), Keras Flatten on NHWC as (H, W, C)."""
    import torch

    from ..core.arch import Layer

    keras = _keras()
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 4, 4))
    layers = [Layer("flatten", "flat", (3, 4, 4), (48,)), Layer("dense", "fc", (48,), (5,))]
    w = _canonical(layers, rng)
    ref = torch.nn.functional.linear(
        torch.tensor(x).flatten(1), torch.tensor(w["N.fc.weight"]), torch.tensor(w["N.fc.bias"])
    ).numpy()
    dense = keras.layers.Dense(5, dtype=DTYPE)
    dense.build((None, 48))
    dense.set_weights([w["N.fc.weight"].T, w["N.fc.bias"]])
    k_out = np.asarray(dense(keras.layers.Flatten(dtype=DTYPE)(x.transpose(0, 2, 3, 1))))
    # Keras with the dense weight permuted from (C, H, W) to (H, W, C) input order
    perm = w["N.fc.weight"].reshape(5, 3, 4, 4).transpose(0, 2, 3, 1).reshape(5, 48)
    dense.set_weights([perm.T, w["N.fc.bias"]])
    matched = np.asarray(dense(keras.layers.Flatten(dtype=DTYPE)(x.transpose(0, 2, 3, 1))))
    return _row(
        "flatten order before a dense layer",
        "flatten(NCHW) = (C, H, W)",
        "Flatten(NHWC) = (H, W, C)",
        _maxdiff(ref, k_out),
        _maxdiff(ref, matched),
        _maxdiff(ref, _twin_nets(layers, w)[1](x)),
        "impls/tensorflow/models.py flattens in (C, H, W) order (bench/core/arch.py)",
    )


# -- losses -------------------------------------------------------------------------------------
def bce_label_smoothing(smoothing=0.1):
    """Discriminator loss with one-sided label smoothing (Salimans et al. 2016): real target
    1 - smoothing, fake target 0. Keras' label_smoothing moves both targets toward 1/2."""
    import tensorflow as tf
    import torch
    import torch.nn.functional as F

    keras = _keras()
    rng = np.random.default_rng(4)
    real, fake = rng.standard_normal(32) * 2, rng.standard_normal(32) * 2
    t_real, t_fake = torch.tensor(real), torch.tensor(fake)
    ref = float(
        F.binary_cross_entropy_with_logits(t_real, torch.full_like(t_real, 1 - smoothing))
        + F.binary_cross_entropy_with_logits(t_fake, torch.zeros_like(t_fake))
    )
    k_bce = keras.losses.BinaryCrossentropy(from_logits=True, label_smoothing=smoothing, dtype=DTYPE)
    k_smooth = float(k_bce(np.ones(32), real) + k_bce(np.zeros(32), fake))
    k_plain = keras.losses.BinaryCrossentropy(from_logits=True, dtype=DTYPE)
    k_targets = float(k_plain(np.full(32, 1 - smoothing), real) + k_plain(np.zeros(32), fake))
    tf_losses = impls.load("tensorflow").losses
    twin = float(tf_losses.minimax(tf.constant(real), tf.constant(fake), 1 - smoothing, 0.0)[0])
    return _row(
        "BCE label smoothing",
        "none in BCEWithLogitsLoss",
        f"BinaryCrossentropy(label_smoothing={smoothing}): y (1 - ls) + ls / 2, both classes",
        abs(ref - k_smooth),
        abs(ref - k_targets),
        abs(ref - twin),
        "spec label_smoothing + sides -> explicit targets (ExperimentSpec.targets)",
    )


CONVENTIONS = (
    batch_norm,
    rmsprop,
    adam,
    weight_decay,
    leaky_relu,
    transposed_conv_padding,
    kernel_layouts,
    flatten_order,
    bce_label_smoothing,
)


def rows() -> list[dict]:
    """Every convention, measured."""
    return [fn() for fn in CONVENTIONS]
