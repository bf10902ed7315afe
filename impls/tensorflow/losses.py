"""Losses, TensorFlow twin. Same names and signatures as impls/torch/losses.py, where the
formulas are documented. Reductions are written out: Keras' `sum_over_batch_size` and its
BCE `label_smoothing` (which smooths both classes toward 1/2) are not used. Python-float
targets go through convert_to_tensor with the logits' dtype: tf.cast(0.9, tf.float64) would
round 0.9 to float32 first. The keyword-only peer options (reduction, weights, tfgan_constant)
are documented in the PyTorch twin."""

import math

import numpy as np
import tensorflow as tf

from bench.core.specs import REDUCTIONS, check_choice, smoothed_targets  # noqa: F401 - smoothed_targets is API


def _const(value, like):
    return tf.convert_to_tensor(value, like.dtype)


def bce_with_logits(logits, targets, weights=None, reduction="mean"):
    return reduce(
        -(targets * tf.math.log_sigmoid(logits) + (1.0 - targets) * tf.math.log_sigmoid(-logits)), weights, reduction
    )


def reduce(per_example, weights=None, reduction="mean"):
    check_choice("reduction", reduction, REDUCTIONS)
    if weights is not None:
        if tf.is_tensor(weights):
            weights = tf.cast(weights, per_example.dtype)
        else:  # NumPy first: tf.convert_to_tensor of a Python list would round to float32
            weights = tf.convert_to_tensor(np.asarray(weights, per_example.dtype.as_numpy_dtype))
        per_example = per_example * weights
    if reduction == "mean":
        return tf.reduce_mean(per_example)
    if reduction == "sum":
        return tf.reduce_sum(per_example)
    if reduction == "none":
        return per_example
    w = tf.ones_like(per_example) if weights is None else tf.broadcast_to(weights, tf.shape(per_example))
    count = tf.cast(tf.math.count_nonzero(w), per_example.dtype)  # sum_by_nonzero_weights
    return tf.math.divide_no_nan(tf.reduce_sum(per_example), count)


def _sides(weights, real_weights, fake_weights):
    return (weights if real_weights is None else real_weights, weights if fake_weights is None else fake_weights)


def _full(like, value):
    return tf.fill(tf.shape(like), _const(value, like))


def minimax(
    d_real,
    d_fake,
    real_target=1.0,
    fake_target=0.0,
    *,
    reduction="mean",
    weights=None,
    real_weights=None,
    fake_weights=None,
    tfgan_constant=False,
):
    w_real, w_fake = _sides(weights, real_weights, fake_weights)
    d_loss_real = bce_with_logits(d_real, _full(d_real, real_target), w_real, reduction)
    d_loss_fake = bce_with_logits(d_fake, _full(d_fake, fake_target), w_fake, reduction)
    g_loss = reduce(tf.math.log_sigmoid(-d_fake), w_fake, reduction)
    if tfgan_constant:
        ones = tf.ones_like(d_fake)
        g_loss = g_loss - bce_with_logits(ones, ones, w_fake, reduction)
    return d_loss_real + d_loss_fake, d_loss_real, d_loss_fake, g_loss


def non_saturating(
    d_real,
    d_fake,
    real_target=1.0,
    fake_target=0.0,
    *,
    reduction="mean",
    weights=None,
    real_weights=None,
    fake_weights=None,
):
    d_loss, d_loss_real, d_loss_fake, _ = minimax(
        d_real,
        d_fake,
        real_target,
        fake_target,
        reduction=reduction,
        weights=weights,
        real_weights=real_weights,
        fake_weights=fake_weights,
    )
    g_loss = bce_with_logits(d_fake, tf.ones_like(d_fake), _sides(weights, real_weights, fake_weights)[1], reduction)
    return d_loss, d_loss_real, d_loss_fake, g_loss


def wasserstein(
    d_real,
    d_fake,
    real_target=1.0,
    fake_target=0.0,
    *,
    reduction="mean",
    weights=None,
    real_weights=None,
    fake_weights=None,
):
    w_real, w_fake = _sides(weights, real_weights, fake_weights)
    d_loss_real = -reduce(d_real, w_real, reduction)
    d_loss_fake = reduce(d_fake, w_fake, reduction)
    return d_loss_real + d_loss_fake, d_loss_real, d_loss_fake, -reduce(d_fake, w_fake, reduction)


def hinge(
    d_real,
    d_fake,
    real_target=1.0,
    fake_target=0.0,
    *,
    reduction="mean",
    weights=None,
    real_weights=None,
    fake_weights=None,
):
    w_real, w_fake = _sides(weights, real_weights, fake_weights)
    d_loss_real = reduce(tf.nn.relu(1.0 - d_real), w_real, reduction)
    d_loss_fake = reduce(tf.nn.relu(1.0 + d_fake), w_fake, reduction)
    return d_loss_real + d_loss_fake, d_loss_real, d_loss_fake, -reduce(d_fake, w_fake, reduction)


def lsgan(
    d_real,
    d_fake,
    real_target=1.0,
    fake_target=0.0,
    *,
    reduction="mean",
    weights=None,
    real_weights=None,
    fake_weights=None,
):
    w_real, w_fake = _sides(weights, real_weights, fake_weights)
    d_loss_real = reduce(0.5 * (d_real - _const(real_target, d_real)) ** 2, w_real, reduction)
    d_loss_fake = reduce(0.5 * (d_fake - _const(fake_target, d_fake)) ** 2, w_fake, reduction)
    g_loss = reduce(0.5 * (d_fake - _const(real_target, d_fake)) ** 2, w_fake, reduction)
    return d_loss_real + d_loss_fake, d_loss_real, d_loss_fake, g_loss


def ragan(
    d_real,
    d_fake,
    real_target=1.0,
    fake_target=0.0,
    *,
    reduction="mean",
    weights=None,
    real_weights=None,
    fake_weights=None,
):
    w_real, w_fake = _sides(weights, real_weights, fake_weights)
    rel_real = d_real - tf.reduce_mean(d_fake)
    rel_fake = d_fake - tf.reduce_mean(d_real)
    d_loss_real = bce_with_logits(rel_real, _full(rel_real, real_target), w_real, reduction)
    d_loss_fake = bce_with_logits(rel_fake, _full(rel_fake, fake_target), w_fake, reduction)
    g_loss = bce_with_logits(rel_fake, tf.ones_like(rel_fake), w_fake, reduction) + bce_with_logits(
        rel_real, tf.zeros_like(rel_real), w_real, reduction
    )
    return d_loss_real + d_loss_fake, d_loss_real, d_loss_fake, g_loss


GAN_LOSSES = {
    "minimax": minimax,
    "non-saturating": non_saturating,
    "wasserstein": wasserstein,
    "wgan-gp": wasserstein,
    "hinge": hinge,
    "lsgan": lsgan,
    "ragan": ragan,
}


def kl_standard_normal(mean, logvar):
    return 0.5 * tf.reduce_sum(mean * mean + tf.exp(logvar) - 1.0 - logvar, axis=1)


def bernoulli_nll(logits, x):
    per = -(x * tf.math.log_sigmoid(logits) + (1.0 - x) * tf.math.log_sigmoid(-logits))
    return tf.reduce_sum(tf.reshape(per, (tf.shape(per)[0], -1)), axis=1)


def gaussian_nll(mean, x, sigma):
    d = tf.reshape(x - mean, (tf.shape(x)[0], -1))
    const = d.shape[1] * (0.5 * math.log(2.0 * math.pi) + math.log(sigma))
    return 0.5 * tf.reduce_sum(d * d, axis=1) / sigma**2 + const


def elbo_terms(recon_nll, mean, logvar):
    kl = kl_standard_normal(mean, logvar)
    return tf.reduce_mean(recon_nll + kl), tf.reduce_mean(recon_nll), tf.reduce_mean(kl)
