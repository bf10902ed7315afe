"""Losses, TensorFlow twin. Same names and signatures as impls/torch/losses.py, where the
formulas are documented. Reductions are written out: Keras' `sum_over_batch_size` and its
BCE `label_smoothing` (which smooths both classes toward 1/2) are not used. Python-float
targets go through convert_to_tensor with the logits' dtype: tf.cast(0.9, tf.float64) would
round 0.9 to float32 first."""

import math

import tensorflow as tf


def bce_with_logits(logits, targets):
    return -tf.reduce_mean(targets * tf.math.log_sigmoid(logits) + (1.0 - targets) * tf.math.log_sigmoid(-logits))


def minimax(d_real, d_fake, real_target=1.0, fake_target=0.0):
    d_loss_real = bce_with_logits(d_real, tf.fill(tf.shape(d_real), tf.convert_to_tensor(real_target, d_real.dtype)))
    d_loss_fake = bce_with_logits(d_fake, tf.fill(tf.shape(d_fake), tf.convert_to_tensor(fake_target, d_fake.dtype)))
    g_loss = tf.reduce_mean(tf.math.log_sigmoid(-d_fake))
    return d_loss_real + d_loss_fake, d_loss_real, d_loss_fake, g_loss


def non_saturating(d_real, d_fake, real_target=1.0, fake_target=0.0):
    d_loss, d_loss_real, d_loss_fake, _ = minimax(d_real, d_fake, real_target, fake_target)
    g_loss = bce_with_logits(d_fake, tf.ones_like(d_fake))
    return d_loss, d_loss_real, d_loss_fake, g_loss


def wasserstein(d_real, d_fake, real_target=1.0, fake_target=0.0):
    d_loss_real = -tf.reduce_mean(d_real)
    d_loss_fake = tf.reduce_mean(d_fake)
    return d_loss_real + d_loss_fake, d_loss_real, d_loss_fake, -tf.reduce_mean(d_fake)


def hinge(d_real, d_fake, real_target=1.0, fake_target=0.0):
    d_loss_real = tf.reduce_mean(tf.nn.relu(1.0 - d_real))
    d_loss_fake = tf.reduce_mean(tf.nn.relu(1.0 + d_fake))
    return d_loss_real + d_loss_fake, d_loss_real, d_loss_fake, -tf.reduce_mean(d_fake)


GAN_LOSSES = {
    "minimax": minimax,
    "non-saturating": non_saturating,
    "wasserstein": wasserstein,
    "wgan-gp": wasserstein,
    "hinge": hinge,
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
