"""Stabilizers, TensorFlow twin. Same names as impls/torch/stabilizers.py; only the TF
quirks are commented here (layouts: kernels are Keras-style, activations NHWC)."""

import tensorflow as tf

from bench.core.specs import GP_EPSILON, GP_FORMS, SN_FORMS, SN_KINDS, SN_VECTORS, check_choice


def spectral_matrix(kernel, kind):
    """The canonical (rows, rest) matrix of a TF kernel, rows = output units/channels.

    A naive reshape of a (kh, kw, C_in, C_out) kernel to (C_out, -1) mixes axes; transpose to
    the canonical order first so that u means the same vector in both twins."""
    check_choice("kind", kind, SN_KINDS)
    if kind == "dense":  # (in, out)
        return tf.transpose(kernel)
    if kind == "conv":  # (kh, kw, C_in, C_out) -> (C_out, C_in, kh, kw)
        kernel = tf.transpose(kernel, (3, 2, 0, 1))
    else:  # convT (kh, kw, C_out, C_in) -> (C_out, C_in, kh, kw)
        kernel = tf.transpose(kernel, (2, 3, 0, 1))
    return tf.reshape(kernel, (tf.shape(kernel)[0], -1))


def _normalize(v, eps):
    # torch.nn.functional.normalize: v / max(||v||, eps)
    return v / tf.maximum(tf.norm(v), eps)


def spectral_normalize(kernel, u, kind, n_iter, eps, update, form="equality", vector="output"):
    check_choice("form", form, SN_FORMS)
    check_choice("vector", vector, SN_VECTORS)
    w_mat = spectral_matrix(kernel, kind)
    if vector == "input":
        w_mat = tf.transpose(w_mat)
    w_const = tf.stop_gradient(w_mat)
    u_new = tf.convert_to_tensor(u)
    for _ in range(n_iter if update else 0):
        v = _normalize(tf.linalg.matvec(w_const, u_new, transpose_a=True), eps)
        u_new = _normalize(tf.linalg.matvec(w_const, v), eps)
    if update:
        u.assign(u_new)
    else:
        v = _normalize(tf.linalg.matvec(w_const, u_new, transpose_a=True), eps)
    v = tf.stop_gradient(v)
    sigma = tf.tensordot(tf.stop_gradient(u_new), tf.linalg.matvec(w_mat, v), 1)
    if form == "at_most_one":  # tf.maximum(1., sigma)'s gradient: at sigma = 1 it goes to the 1
        sigma = tf.where(sigma > 1.0, sigma, tf.ones_like(sigma))
    return kernel / sigma


def gradient_penalty(critic, real, fake, alpha, target=1.0, form="subtract"):
    """sqrt(sum g^2 + GP_EPSILON) as in the torch twin (not tf.norm, which has no epsilon)."""
    check_choice("form", form, GP_FORMS)
    x_hat = alpha * real + (1.0 - alpha) * tf.stop_gradient(fake)
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        total = tf.reduce_sum(critic(x_hat))  # the sum must be taped too
    grad = tape.gradient(total, x_hat)
    norm = tf.sqrt(tf.reduce_sum(tf.reshape(grad, (tf.shape(grad)[0], -1)) ** 2, axis=1) + GP_EPSILON)
    return tf.reduce_mean(penalty_of_norm(norm, target, form))


def penalty_of_norm(norm, target, form="subtract"):
    check_choice("form", form, GP_FORMS)
    if form == "subtract":
        return (norm - target) ** 2
    if form == "divide":
        return (norm / target - 1.0) ** 2
    return tf.nn.relu(norm - target) ** 2  # one_sided


def clip_weights(params, clip):
    for p in params:
        p.assign(tf.clip_by_value(p, -clip, clip))


def dropout(x, mask):
    return x * mask


def batch_norm(x, weight, bias, running_mean, running_var, training, momentum, eps, biased_variance=False):
    """torch's formula: `momentum` weights the new batch (Keras momentum = 1 - this), the
    running variance stores the unbiased batch variance (Keras stores the biased one), and
    eps comes from the spec (Keras default 1e-3, torch 1e-5). Channels are the last axis.
    biased_variance=True stores the biased batch variance, as Keras does."""
    if not training:
        return (x - running_mean) * tf.math.rsqrt(running_var + eps) * weight + bias
    if x.dtype == tf.float32 and len(x.shape) == 4 and not biased_variance:
        y, mean, unbiased_var = _fused_batch_norm(x, weight, bias, eps)
    else:  # FusedBatchNormV3 takes 4-D half, bfloat16 and float32 only
        axes = list(range(len(x.shape) - 1))
        # not tf.nn.moments: it stops the gradient through the mean inside the variance, exact
        # for first derivatives, wrong for the second ones a gradient penalty takes through BN
        mean = tf.reduce_mean(x, axes)
        var = tf.reduce_mean(tf.square(x - mean), axes)
        n = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), x.dtype)
        unbiased_var = var * n / (n - 1.0)
        y = (x - mean) * tf.math.rsqrt(var + eps) * weight + bias
    running_mean.assign((1.0 - momentum) * running_mean + momentum * mean)
    running_var.assign((1.0 - momentum) * running_var + momentum * (var if biased_variance else unbiased_var))
    return y


def _fused_batch_norm(x, weight, bias, eps):
    """The same formula in one FusedBatchNormV3 on NHWC input (oneDNN on CPU, cuDNN on GPU:
    one kernel forward and one backward instead of about ten): it normalises with the biased
    batch variance and returns the unbiased one, which is what torch stores."""
    return tf.compat.v1.nn.fused_batch_norm(x, weight, bias, epsilon=eps, data_format="NHWC", is_training=True)
