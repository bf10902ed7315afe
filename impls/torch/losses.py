"""Losses, PyTorch twin. Same names and signatures as impls/tensorflow/losses.py.

Every GAN loss has the compare_gan signature
``(d_real, d_fake, real_target, fake_target) -> (d_loss, d_loss_real, d_loss_fake, g_loss)``
where d_real/d_fake are logits (BCE losses) or critic scores (Wasserstein, hinge), shape (B,).
Targets only matter for the BCE losses; label smoothing is expressed through them.
Every reduction is explicit: mean over the batch, sum over data dimensions.
"""

import math

import torch
import torch.nn.functional as F


def bce_with_logits(logits, targets):
    """Mean over the batch of -[t log s(l) + (1 - t) log(1 - s(l))], with log(1 - s(l)) = log s(-l).

    Both terms are <= 0, so nothing cancels, and log-sigmoid is exact for any logit. The
    rewrite max(l, 0) - l t + log(1 + exp(-|l|)) has the same value, but autograd takes the
    kinks of max and |.| at l = 0 apart and returns -t there instead of 1/2 - t."""
    return -torch.mean(targets * F.logsigmoid(logits) + (1.0 - targets) * F.logsigmoid(-logits))


def minimax(d_real, d_fake, real_target=1.0, fake_target=0.0):
    """Goodfellow et al. 2014, eq. 1: G minimises E[log(1 - D(G(z)))] = -E[softplus(l_fake)]."""
    d_loss_real = bce_with_logits(d_real, torch.full_like(d_real, real_target))
    d_loss_fake = bce_with_logits(d_fake, torch.full_like(d_fake, fake_target))
    # log(1 - s(l)) = log s(-l); not -softplus(l): F.softplus returns l itself above its
    # threshold of 20, off by up to e^-20 relative (2e-9, visible in float64)
    g_loss = torch.mean(F.logsigmoid(-d_fake))
    return d_loss_real + d_loss_fake, d_loss_real, d_loss_fake, g_loss


def non_saturating(d_real, d_fake, real_target=1.0, fake_target=0.0):
    """Goodfellow et al. 2014, section 3: G maximises E[log D(G(z))] = BCE(l_fake, 1)."""
    d_loss, d_loss_real, d_loss_fake, _ = minimax(d_real, d_fake, real_target, fake_target)
    g_loss = bce_with_logits(d_fake, torch.ones_like(d_fake))
    return d_loss, d_loss_real, d_loss_fake, g_loss


def wasserstein(d_real, d_fake, real_target=1.0, fake_target=0.0):
    """Arjovsky et al. 2017: critic maximises E[f(x)] - E[f(G(z))]."""
    d_loss_real = -torch.mean(d_real)
    d_loss_fake = torch.mean(d_fake)
    return d_loss_real + d_loss_fake, d_loss_real, d_loss_fake, -torch.mean(d_fake)


def hinge(d_real, d_fake, real_target=1.0, fake_target=0.0):
    """Lim & Ye 2017 / Miyato et al. 2018: E[relu(1 - f(x))] + E[relu(1 + f(G(z)))]."""
    d_loss_real = torch.mean(F.relu(1.0 - d_real))
    d_loss_fake = torch.mean(F.relu(1.0 + d_fake))
    return d_loss_real + d_loss_fake, d_loss_real, d_loss_fake, -torch.mean(d_fake)


GAN_LOSSES = {
    "minimax": minimax,
    "non-saturating": non_saturating,
    "wasserstein": wasserstein,
    "wgan-gp": wasserstein,
    "hinge": hinge,
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
