"""Framework defaults that differ between PyTorch and Keras 3 / TensorFlow.

For each one: the defaults as the real classes report them (torch.nn, torch.optim,
keras.layers, keras.optimizers), a difference under those defaults that is far above rounding,
and the spec's explicit setting, run through the TensorFlow twin's code, agreeing with PyTorch
to float64 rounding. bench/checks/conventions.py does the measuring; the thresholds and their reasons
are here.
"""

import pytest

from bench.checks import conventions
from bench.core.specs import NetSpec, OptimizerSpec

pytestmark = pytest.mark.equivalence

# float64 throughout: agreement means rounding, a few ulps of O(1) values
PINNED = 1e-12


@pytest.fixture(scope="module")
def keras():
    return conventions._keras()


def test_the_defaults_are_what_the_spec_pins_against(keras):
    import torch

    bn_t, bn_k = torch.nn.BatchNorm2d(3), keras.layers.BatchNormalization()
    assert (bn_t.momentum, bn_t.eps) == (0.1, 1e-5)
    assert (bn_k.momentum, bn_k.epsilon) == (0.99, 1e-3)
    p = [torch.nn.Parameter(torch.zeros(1))]
    rms_t, rms_k = torch.optim.RMSprop(p).defaults, keras.optimizers.RMSprop()
    assert (rms_t["alpha"], rms_t["eps"], rms_t["lr"]) == (0.99, 1e-8, 1e-2)
    assert (rms_k.rho, rms_k.epsilon, float(rms_k.learning_rate)) == (0.9, 1e-7, pytest.approx(1e-3))
    assert torch.optim.Adam(p).defaults["eps"] == 1e-8 and keras.optimizers.Adam().epsilon == 1e-7
    assert torch.optim.Adam(p).defaults["weight_decay"] == 0 and keras.optimizers.Adam().weight_decay is None
    assert torch.optim.AdamW(p).defaults["weight_decay"] == 0.01 and keras.optimizers.AdamW().weight_decay == 0.004
    assert torch.nn.LeakyReLU().negative_slope == 0.01 and keras.layers.LeakyReLU().negative_slope == 0.3
    assert keras.layers.Conv2DTranspose(1, 4).padding == "valid" and keras.layers.Conv2D(1, 4).padding == "valid"
    assert keras.losses.BinaryCrossentropy().reduction == "sum_over_batch_size"
    # what the spec writes instead: torch's values, explicitly, for both twins
    net, opt = NetSpec(), OptimizerSpec()
    assert (net.bn_momentum, net.bn_eps, opt.eps) == (0.1, 1e-5, 1e-8)


def test_batch_norm():
    r = conventions.batch_norm()
    # eps 1e-3 vs 1e-5 on a batch variance of 2.5e-3 rescales outputs by ~20%; Keras' momentum
    # keeps 99% of the old running mean where torch keeps 90%
    assert r["default_diff"] > 0.1
    # Keras with momentum 1 - m and eps 1e-5: outputs and running mean agree, the running
    # variance does not: Keras stores the biased batch variance (factor (n-1)/n = 15/16 here)
    assert 1e-6 < r["matched_diff"] < 1e-3
    assert r["pinned_diff"] < PINNED


def test_rmsprop_eps_placement():
    r = conventions.rmsprop()
    # gradients below eps: torch g / (sqrt(v) + eps), Keras g / sqrt(v + eps) differ by orders of
    # magnitude per element, here more than one learning rate (1e-3) of movement in 3 steps
    assert r["default_diff"] > 1e-3
    assert r["matched_diff"] > 1e-3  # rho and eps matched: the placement alone does it
    assert r["pinned_diff"] < PINNED


def test_adam_epsilon():
    r = conventions.adam()
    # Keras adds eps to the uncorrected sqrt(v) (an effective eps / sqrt(1 - b2^t) ~ 3e-7 at
    # step 1) and computes beta powers from float32 betas (~7e-6 relative at step 1)
    assert r["default_diff"] > 1e-5
    assert r["matched_diff"] > 1e-5
    assert r["pinned_diff"] < PINNED


def test_weight_decay_coupling():
    r = conventions.weight_decay()
    # torch Adam(weight_decay) adds wd p to the gradient, Keras 3 Adam(weight_decay) decays the
    # weight: for p = 1, wd = 1e-2, lr = 1e-3 they differ by about lr per step on small gradients
    assert r["default_diff"] > 1e-3
    assert r["matched_diff"] > 1e-6  # AdamW vs AdamW with matched wd: Adam's eps placement remains
    assert r["pinned_diff"] < PINNED


def test_leaky_relu_slope():
    r = conventions.leaky_relu()
    assert r["default_diff"] > 0.5  # 0.01 vs 0.3 at x = -3
    # Keras LeakyReLU(negative_slope=0.2) in float64 still uses 0.2 rounded to float32
    assert 1e-10 < r["matched_diff"] < 1e-7
    assert r["pinned_diff"] == 0.0


def test_transposed_conv_padding():
    r = conventions.transposed_conv_padding()
    # Keras' default "valid" gives 16x16 where torch gives 14x14 (a shape mismatch, inf), and
    # "same" with kernel 3 pads bottom/right only, shifting the conv output
    assert r["default_diff"] > 1.0
    assert r["matched_diff"] < PINNED  # "same" happens to agree for kernel 4, stride 2
    assert r["pinned_diff"] < PINNED


def test_kernel_layouts():
    r = conventions.kernel_layouts()
    assert r["default_diff"] > 0.1  # a plain reshape scrambles the weights
    assert r["pinned_diff"] < PINNED


def test_flatten_order():
    r = conventions.flatten_order()
    assert r["default_diff"] > 0.1
    assert r["matched_diff"] < PINNED  # Keras with the dense weight permuted to (H, W, C) rows
    assert r["pinned_diff"] < PINNED


def test_bce_label_smoothing():
    r = conventions.bce_label_smoothing()
    # Keras smooths real targets to 0.95 and fake to 0.05; one-sided smoothing is 0.9 and 0
    assert r["default_diff"] > 1e-3
    assert r["matched_diff"] < PINNED  # Keras BCE without label_smoothing, on explicit targets
    assert r["pinned_diff"] < PINNED


def test_every_convention_has_a_test():
    tested = {name[len("test_") :] for name in globals() if name.startswith("test_")}
    aliases = {
        "rmsprop": "rmsprop_eps_placement",
        "adam": "adam_epsilon",
        "weight_decay": "weight_decay_coupling",
        "leaky_relu": "leaky_relu_slope",
    }
    for fn in conventions.CONVENTIONS:
        assert aliases.get(fn.__name__, fn.__name__) in tested, fn.__name__
