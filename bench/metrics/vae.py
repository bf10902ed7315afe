"""VAE metrics: test ELBO, importance-weighted NLL, latent class separation, anomaly AUROC
and denoising PSNR.

Everything goes through the backend contract (duck-typed, NumPy in and out):
``trainer.encode(x, y) -> (mean, logvar)`` of q(z|x) = N(mean, diag(exp(logvar))),
``trainer.reconstruction_nll(x, z, y) -> (B,)`` = -log p(x|z) in nats, and
``trainer.reconstruct(x, y)``. The prior is p(z) = N(0, I). All randomness (the
reparameterisation noise eps) comes from the caller's NumPy generator, drawn batch by batch
as ``rng.standard_normal((B, k, L))`` so that equal generators give equal draws to every
function here. Likelihoods are in nats per image, summed over pixels.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import logsumexp

LOG_2PI = math.log(2.0 * math.pi)


def _batches(n: int, batch: int):
    for i in range(0, n, batch):
        yield slice(i, min(i + batch, n))


def _take(labels, s):
    return None if labels is None else np.asarray(labels)[s]


def kl_standard_normal(mean, logvar) -> np.ndarray:
    """KL(N(mean, exp(logvar)) || N(0, I)) per row, closed form (Kingma & Welling 2014,
    appendix B): 0.5 * sum(mean^2 + exp(logvar) - 1 - logvar)."""
    m, lv = np.asarray(mean, np.float64), np.asarray(logvar, np.float64)
    return 0.5 * np.sum(m * m + np.exp(lv) - 1.0 - lv, axis=-1)


def gaussian_log_density(z, mean, logvar) -> np.ndarray:
    """log N(z; mean, diag(exp(logvar))) summed over the last axis."""
    z, m, lv = (np.asarray(a, np.float64) for a in (z, mean, logvar))
    return -0.5 * np.sum(LOG_2PI + lv + (z - m) ** 2 / np.exp(lv), axis=-1)


def _encode_draw(trainer, x, y, rng, k):
    """q(z|x) parameters (B, L) and k reparameterised draws z (B, k, L)."""
    mean, logvar = (np.asarray(a) for a in trainer.encode(x, y))
    eps = rng.standard_normal((len(x), k, mean.shape[1])).astype(mean.dtype)
    z = mean[:, None, :] + np.exp(0.5 * logvar)[:, None, :] * eps
    return mean, logvar, z


def negative_elbo_per_sample(trainer, x, labels, rng, batch: int = 500):
    """(recon NLL (N,), KL (N,)): one-sample reconstruction term, closed-form KL."""
    recon, kl = [], []
    for s in _batches(len(x), batch):
        xb, yb = x[s], _take(labels, s)
        mean, logvar, z = _encode_draw(trainer, xb, yb, rng, 1)
        recon.append(np.asarray(trainer.reconstruction_nll(xb, z[:, 0], yb), np.float64))
        kl.append(kl_standard_normal(mean, logvar))
    return np.concatenate(recon), np.concatenate(kl)


def test_elbo(trainer, images_f, labels=None, rng=None, batch: int = 500) -> dict[str, float]:
    """Test-set ELBO in nats per image, with its two terms apart.

    ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z)), estimated with one reparameterised draw
    per image for the first term and the closed form for the second. Returns
    {"elbo": mean ELBO (a lower bound on log p(x), usually negative),
     "recon": mean -log p(x|z), "kl": mean KL}, so elbo = -(recon + kl).
    `labels` go to a conditional model's encoder and decoder (None otherwise).
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    recon, kl = negative_elbo_per_sample(trainer, np.asarray(images_f), labels, rng, batch)
    return {"elbo": float(-np.mean(recon + kl)), "recon": float(np.mean(recon)), "kl": float(np.mean(kl))}


test_elbo.__test__ = False  # a metric, not a pytest test


def iwae_log_weights(trainer, x, labels, rng, k: int) -> np.ndarray:
    """log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x), z_i ~ q(z|x); shape (B, k)."""
    mean, logvar, z = _encode_draw(trainer, x, labels, rng, k)
    b, _, latent = z.shape
    x_rep = np.repeat(np.asarray(x), k, axis=0)
    y_rep = None if labels is None else np.repeat(np.asarray(labels), k, axis=0)
    nll = np.asarray(trainer.reconstruction_nll(x_rep, z.reshape(b * k, latent), y_rep), np.float64).reshape(b, k)
    log_prior = gaussian_log_density(z, 0.0, 0.0)
    log_q = gaussian_log_density(z, mean[:, None, :], logvar[:, None, :])
    return -nll + log_prior - log_q


def iwae_nll(trainer, images_f, labels=None, rng=None, k: int = 64, batch: int | None = None) -> dict[str, float]:
    """Importance-weighted NLL estimate (Burda et al. 2016, eq. 8), nats per image:
    -log (1/k) sum_i w_i, averaged over images; an upper bound on -log p(x) that tightens
    as k grows and equals the one-sample ELBO estimate for k = 1 (with the same eps, and a
    Monte Carlo KL). Returns {"iwae_nll": ..., "iwae_k": k}."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    rng = rng if rng is not None else np.random.default_rng(0)
    x = np.asarray(images_f)
    batch = batch or max(1, 4096 // k)
    out = []
    for s in _batches(len(x), batch):
        log_w = iwae_log_weights(trainer, x[s], _take(labels, s), rng, k)
        out.append(-(logsumexp(log_w, axis=1) - math.log(k)))
    return {"iwae_nll": float(np.mean(np.concatenate(out))), "iwae_k": float(k)}


def latent_means(trainer, images_f, labels=None, batch: int = 1000) -> np.ndarray:
    x = np.asarray(images_f)
    return np.concatenate([np.asarray(trainer.encode(x[s], _take(labels, s))[0]) for s in _batches(len(x), batch)])


def latent_knn_accuracy(
    trainer, train_x, train_y, test_x, test_y, k: int = 5, conditional_labels: bool = False
) -> dict[str, float]:
    """Test accuracy of a k-NN classifier (Euclidean, sklearn) on latent means: how well the
    latent space separates classes. Labels reach the encoder only if `conditional_labels`
    (a CVAE's encoder needs them; its latent should then carry *less* class information)."""
    from sklearn.neighbors import KNeighborsClassifier

    ytr = train_y if conditional_labels else None
    yte = test_y if conditional_labels else None
    z_train = latent_means(trainer, train_x, ytr)
    z_test = latent_means(trainer, test_x, yte)
    knn = KNeighborsClassifier(n_neighbors=k).fit(z_train, np.asarray(train_y))
    return {"knn_accuracy": float(np.mean(knn.predict(z_test) == np.asarray(test_y)))}


def latent_structure(
    trainer, test_x, test_y, conditional_labels: bool = False, n_pairs: int = 8, n_frames: int = 8
) -> dict[str, float]:
    """How the latent space is arranged (the study's claim 6), against a pixel-space reference.

    - latent_silhouette: sklearn silhouette score (Euclidean) of the test latent means grouped
      by class, in [-1, 1]; pixel_silhouette: the same for the test images projected by
      sklearn PCA onto as many dimensions as the latent has (what a linear map of the pixels
      already separates);
    - interp_jump: decode `n_frames` points on the line between the latent means of test
      images 2i and 2i+1 (i < n_pairs); per pair, the largest pixel L2 distance between
      consecutive frames over their mean (1 for perfectly even change, up to n_frames - 1 when
      one step carries the whole change); the mean over pairs.
    """
    from sklearn.decomposition import PCA
    from sklearn.metrics import silhouette_score

    x, y = np.asarray(test_x), np.asarray(test_y)
    labels = y if conditional_labels else None
    means = latent_means(trainer, x, labels)
    flat = x.reshape(len(x), -1)
    pixels = PCA(n_components=means.shape[1], random_state=0).fit_transform(flat)
    t = np.linspace(0.0, 1.0, n_frames)[:, None]
    jumps = []
    for i in range(min(n_pairs, len(x) // 2)):
        z = ((1.0 - t) * means[2 * i][None] + t * means[2 * i + 1][None]).astype(means.dtype)
        frames = np.asarray(trainer.decode(z, np.repeat(y[2 * i], n_frames) if conditional_labels else None))
        steps = np.linalg.norm(np.diff(frames.reshape(n_frames, -1).astype(np.float64), axis=0), axis=1)
        jumps.append(float(steps.max() / steps.mean()) if steps.mean() > 0 else float("nan"))
    return {
        "latent_silhouette": float(silhouette_score(means, y)),
        "pixel_silhouette": float(silhouette_score(pixels, y)),
        "interp_jump": float(np.mean(jumps)) if jumps else float("nan"),
    }


def anomaly_auroc(trainer, x, is_anomaly, labels=None, rng=None, batch: int = 500) -> dict[str, float]:
    """AUROC (sklearn roc_auc_score) of the per-sample negative ELBO as an anomaly score:
    1 when every anomaly scores above every normal sample, 0.5 for chance."""
    from sklearn.metrics import roc_auc_score

    rng = rng if rng is not None else np.random.default_rng(0)
    recon, kl = negative_elbo_per_sample(trainer, np.asarray(x), labels, rng, batch)
    return {"anomaly_auroc": float(roc_auc_score(np.asarray(is_anomaly, bool), recon + kl))}


def psnr(a, b, peak: float = 1.0) -> np.ndarray:
    """Per-image PSNR in dB, 10 log10(peak^2 / MSE)."""
    d = (np.asarray(a, np.float64) - np.asarray(b, np.float64)).reshape(len(a), -1)
    mse = np.mean(d * d, axis=1)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(peak * peak / mse)


def denoising_psnr(
    trainer, x_clean, noise_std: float, rng=None, labels=None, data_range=(0.0, 1.0), batch: int = 1000
) -> dict[str, float]:
    """PSNR of reconstruct(noisy) against the clean images, mean over images, in dB.

    noisy = clip(x + noise_std * (hi - lo) * N(0, 1), lo, hi) for data in ``data_range``
    (the noise std is given on the [0, 1] scale); the peak signal is hi - lo. Also returns the
    PSNR of the noisy input itself, the baseline a useful model beats.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    lo, hi = data_range
    x = np.asarray(x_clean)
    noisy = x + noise_std * (hi - lo) * rng.standard_normal(x.shape)
    noisy = np.clip(noisy, lo, hi).astype(x.dtype)
    rec = np.concatenate([np.asarray(trainer.reconstruct(noisy[s], _take(labels, s))) for s in _batches(len(x), batch)])
    peak = hi - lo
    return {"denoising_psnr": float(np.mean(psnr(rec, x, peak))), "noisy_psnr": float(np.mean(psnr(noisy, x, peak)))}
