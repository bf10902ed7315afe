"""Losses, PyTorch twin. Same names and signatures as impls/tensorflow/losses.py.

Every GAN loss has the compare_gan signature
``(d_real, d_fake, real_target, fake_target) -> (d_loss, d_loss_real, d_loss_fake, g_loss)``
where d_real/d_fake are logits (BCE losses) or critic scores (Wasserstein, hinge), shape (B,).
Targets only matter for the BCE and least-squares losses; label smoothing is expressed
through them (`smoothed_targets` writes each peer's style as targets).
Every reduction is explicit: mean over the batch, sum over data dimensions by default.

Peer conventions are keyword-only options with defaults that keep the formulas above bit for bit:
- ``reduction``: "mean" (default), "sum", "none" (per example), or TF1's
  "sum_by_nonzero_weights" (sum of weighted losses / number of non-zero weights);
- ``weights`` (per example or scalar, both sides and G), ``real_weights``/``fake_weights``
  (one side of D; G takes ``fake_weights``), as TF-GAN's ``real_weights``/``generated_weights``;
- ``tfgan_constant`` (minimax only): TF-GAN's minimax generator loss is minus its
  discriminator loss on (ones, d_fake), so it keeps the constant -BCE(1, 1) = -log(1 + e^-1).
"""

import math

import torch
import torch.nn.functional as F

from bench.core.specs import REDUCTIONS, check_choice, smoothed_targets  # noqa: F401 - smoothed_targets is API


def bce_with_logits(logits, targets, weights=None, reduction="mean"):
    """Mean (or `reduction`) over the batch of -[t log s(l) + (1 - t) log(1 - s(l))], with log(1 - s(l)) = log s(-l).

    Both terms are <= 0, so nothing cancels, and log-sigmoid is exact for any logit. The
    rewrite max(l, 0) - l t + log(1 + exp(-|l|)) has the same value, but autograd takes the
    kinks of max and |.| at l = 0 apart and returns -t there instead of 1/2 - t."""
    return reduce(-(targets * F.logsigmoid(logits) + (1.0 - targets) * F.logsigmoid(-logits)), weights, reduction)


def reduce(per_example, weights=None, reduction="mean"):
    """Weight (broadcast: per example or scalar) and reduce a tensor of per-example losses.

    "mean": sum(w l) / n (torch's and Keras' default); "sum": sum(w l); "none": w l;
    "sum_by_nonzero_weights": sum(w l) / count(w != 0), TF1's tf.losses default (0 if none)."""
    check_choice("reduction", reduction, REDUCTIONS)
    if weights is not None:
        weights = torch.as_tensor(weights, dtype=per_example.dtype, device=per_example.device)
        per_example = per_example * weights
    if reduction == "mean":
        return torch.mean(per_example)
    if reduction == "sum":
        return torch.sum(per_example)
    if reduction == "none":
        return per_example
    w = torch.ones_like(per_example) if weights is None else torch.broadcast_to(weights, per_example.shape)
    count = torch.count_nonzero(w).to(per_example.dtype)  # sum_by_nonzero_weights
    total = torch.sum(per_example)
    return torch.where(count > 0, total / torch.clamp(count, min=1.0), torch.zeros_like(total))


def _sides(weights, real_weights, fake_weights):
    return (weights if real_weights is None else real_weights, weights if fake_weights is None else fake_weights)


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
    """Goodfellow et al. 2014, eq. 1: G minimises E[log(1 - D(G(z)))] = -E[softplus(l_fake)]."""
    w_real, w_fake = _sides(weights, real_weights, fake_weights)
    d_loss_real = bce_with_logits(d_real, torch.full_like(d_real, real_target), w_real, reduction)
    d_loss_fake = bce_with_logits(d_fake, torch.full_like(d_fake, fake_target), w_fake, reduction)
    # log(1 - s(l)) = log s(-l); not -softplus(l): F.softplus returns l itself above its
    # threshold of 20, off by up to e^-20 relative (2e-9, visible in float64)
    g_loss = reduce(F.logsigmoid(-d_fake), w_fake, reduction)
    if tfgan_constant:  # TF-GAN: -(BCE(ones as logits, 1) + BCE(l_fake, 0))
        ones = torch.ones_like(d_fake)
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
    """Goodfellow et al. 2014, section 3: G maximises E[log D(G(z))] = BCE(l_fake, 1)."""
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
    g_loss = bce_with_logits(d_fake, torch.ones_like(d_fake), _sides(weights, real_weights, fake_weights)[1], reduction)
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
    """Arjovsky et al. 2017: critic maximises E[f(x)] - E[f(G(z))]."""
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
    """Lim & Ye 2017 / Miyato et al. 2018: E[relu(1 - f(x))] + E[relu(1 + f(G(z)))]."""
    w_real, w_fake = _sides(weights, real_weights, fake_weights)
    d_loss_real = reduce(F.relu(1.0 - d_real), w_real, reduction)
    d_loss_fake = reduce(F.relu(1.0 + d_fake), w_fake, reduction)
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
    """Mao et al. 2017 (a, b, c) = (fake_target, real_target, real_target), with TF-GAN's halves:
    D: E[(f(x) - b)^2] / 2 + E[(f(G(z)) - a)^2] / 2; G: E[(f(G(z)) - c)^2] / 2."""
    w_real, w_fake = _sides(weights, real_weights, fake_weights)
    d_loss_real = reduce(0.5 * (d_real - real_target) ** 2, w_real, reduction)
    d_loss_fake = reduce(0.5 * (d_fake - fake_target) ** 2, w_fake, reduction)
    g_loss = reduce(0.5 * (d_fake - real_target) ** 2, w_fake, reduction)
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
    """Relativistic average GAN, BCE form (Jolicoeur-Martineau 2018, RaSGAN): with
    r = C(x_r) - mean C(x_f) and f = C(x_f) - mean C(x_r) (batch means, unweighted),
    D: BCE(r, 1) + BCE(f, 0); G: BCE(f, 1) + BCE(r, 0). G needs C(x_r) too."""
    w_real, w_fake = _sides(weights, real_weights, fake_weights)
    rel_real = d_real - torch.mean(d_fake)
    rel_fake = d_fake - torch.mean(d_real)
    d_loss_real = bce_with_logits(rel_real, torch.full_like(rel_real, real_target), w_real, reduction)
    d_loss_fake = bce_with_logits(rel_fake, torch.full_like(rel_fake, fake_target), w_fake, reduction)
    g_loss = bce_with_logits(rel_fake, torch.ones_like(rel_fake), w_fake, reduction) + bce_with_logits(
        rel_real, torch.zeros_like(rel_real), w_real, reduction
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
    """KL(N(mean, exp(logvar)) || N(0, I)) per sample: 0.5 sum(mean^2 + exp(lv) - 1 - lv)."""
    return 0.5 * torch.sum(mean * mean + torch.exp(logvar) - 1.0 - logvar, dim=1)


def bernoulli_nll(logits, x):
    """-log p(x | logits) per sample, summed over pixels; x in [0, 1]."""
    per = -(x * F.logsigmoid(logits) + (1.0 - x) * F.logsigmoid(-logits))  # as bce_with_logits
    return torch.sum(per.reshape(per.shape[0], -1), dim=1)


def gaussian_nll(mean, x, sigma):
    """-log N(x; mean, sigma^2 I) per sample, summed over pixels."""
    d = (x - mean).reshape(x.shape[0], -1)
    const = d.shape[1] * (0.5 * math.log(2.0 * math.pi) + math.log(sigma))
    return 0.5 * torch.sum(d * d, dim=1) / sigma**2 + const


def elbo_terms(recon_nll, mean, logvar):
    """Batch means of (negative ELBO, reconstruction NLL, KL), all in nats."""
    kl = kl_standard_normal(mean, logvar)
    return torch.mean(recon_nll + kl), torch.mean(recon_nll), torch.mean(kl)
