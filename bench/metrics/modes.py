"""Mode collapse: which classes or mixture modes the samples cover, and how evenly.

Three settings, one shape of answer (a flat dict of floats):
- images (MNIST, Fashion-MNIST): the evaluator's predicted classes;
- the 2-D Gaussian mixtures (ring of 8, 5x5 grid): distance to the mixture centers;
- Stacked MNIST: the MNIST evaluator on each of the three channels, 1000 modes.
Every KL here is KL(p_generated || uniform) = sum_k p_k log(K p_k) in nats (0 log 0 = 0):
0 for a perfectly even spread, log K when every sample falls into one mode. It is the
"reverse KL" of PacGAN (Lin et al. 2018) and the KL of Metz et al. 2017 (Unrolled GAN) and
VEEGAN (Srivastava et al. 2017) on Stacked MNIST, where the target is uniform.
"""

from __future__ import annotations

import numpy as np

from .evaluator import NUM_CLASSES, as_uint8_images, load_evaluator

# A class counts as covered if it receives at least this fraction of the uniform share 1/K,
# i.e. >= 1% of the samples for 10 classes. A generator that never produces a class still
# gets some samples there through the evaluator's own errors (about 1% of MNIST test
# images are misclassified, spread over 9 wrong classes, i.e. ~0.1% each), so the threshold
# must sit well above that noise floor and well below the 10% of an even spread.
CLASS_COVERAGE_MIN_SHARE = 0.1
HIGH_QUALITY_STDS = 3.0  # VEEGAN / PacGAN: within three standard deviations of a center


def kl_to_uniform(counts) -> float:
    """KL(counts / sum || uniform over len(counts)) in nats; 0 log 0 = 0."""
    from scipy.stats import entropy

    c = np.asarray(counts, np.float64)
    if c.sum() <= 0:
        raise ValueError("KL of an empty histogram is undefined (no samples)")
    return float(entropy(c, np.ones(len(c))))  # both normalized; rel_entr gives 0 log 0 = 0


def class_histogram(images, dataset: str, evaluator=None) -> np.ndarray:
    """Counts (10,) of the evaluator's predicted classes."""
    ev = evaluator or load_evaluator(dataset)
    pred = ev.predict(as_uint8_images(images))
    return np.bincount(pred, minlength=NUM_CLASSES)


def class_coverage(
    images, dataset: str, min_share: float = CLASS_COVERAGE_MIN_SHARE, evaluator=None
) -> dict[str, float]:
    """Classes covered and KL(class histogram || uniform), by the dataset's evaluator.

    A class is covered when its share of the samples is at least ``min_share / 10``
    (default 1%; see CLASS_COVERAGE_MIN_SHARE for why). Returns
    {"classes_covered": 0..10, "class_kl": nats, 0 (even) .. log 10 = 2.303 (one class)}.
    """
    counts = class_histogram(images, dataset, evaluator)
    share = counts / counts.sum()
    return {"classes_covered": float(np.sum(share >= min_share / NUM_CLASSES)), "class_kl": kl_to_uniform(counts)}


def mixture_metrics(points, dataset: str, min_count: int = 1) -> dict[str, float]:
    """Mode coverage on the 2-D mixtures, as in VEEGAN and PacGAN.

    Definitions (Srivastava et al. 2017, VEEGAN, sec. 5.1, whose protocol Lin et al. 2018,
    PacGAN, reuse for their 2-D grid experiments): a generated sample is *high
    quality* if it lies within three standard deviations (of the mixture components) of its
    nearest mode center; a mode is *captured* if it is the nearest center of at least one
    high-quality sample. ``min_count`` raises that "at least one" to a count, for stricter
    variants. Returned:
    - "modes_covered": the number of captured modes (of 8 or 25);
    - "high_quality_share": the fraction of samples that are high quality (VEEGAN's
      "% high quality samples"). For exact samples of an isotropic 2-D Gaussian the share
      within 3 std is 1 - exp(-9/2) = 0.98889 (a chi distribution with 2 degrees of freedom);
    - "mode_kl": KL(histogram of high-quality samples over modes || uniform) (PacGAN's
      reverse KL), log K when no sample is high quality (nothing is covered evenly).
    """
    from sklearn.metrics import pairwise_distances_argmin_min

    from ..core.data import mixture_centers

    centers, std = mixture_centers(dataset)
    x = np.asarray(points, np.float64)
    if x.ndim != 2 or x.shape[1] != 2 or len(x) == 0:
        raise ValueError(f"mixture points must be a non-empty (N, 2) array, got {x.shape}")
    finite = np.all(np.isfinite(x), axis=1)
    nearest, dist = np.zeros(len(x), np.int64), np.full(len(x), np.inf)
    if finite.any():
        # "minkowski" (p = 2) computes sqrt(sum (x - c)^2) directly, so ties (the first center
        # wins) and the 3-std threshold are decided exactly; "euclidean" would use the faster
        # |x|^2 - 2 x.c + |c|^2 expansion, whose rounding moves points across both.
        nearest[finite], dist[finite] = pairwise_distances_argmin_min(
            x[finite], centers, metric="minkowski", metric_kwargs={"p": 2}
        )
    hq = finite & (dist <= HIGH_QUALITY_STDS * std)
    counts = np.bincount(nearest[hq], minlength=len(centers))
    return {
        "modes_covered": float(np.sum(counts >= min_count)),
        "high_quality_share": float(np.mean(hq)),
        "mode_kl": kl_to_uniform(counts) if counts.sum() > 0 else float(np.log(len(centers))),
    }


def stacked_mnist_modes(images_uint8, evaluator=None) -> np.ndarray:
    """Mode index 100*d0 + 10*d1 + d2 (N,) of Stacked MNIST images uint8 (N, 3, 28, 28),
    each digit read by the MNIST evaluator."""
    a = np.asarray(images_uint8)
    if a.dtype != np.uint8 or a.ndim != 4 or a.shape[1:] != (3, 28, 28):
        raise ValueError(f"Stacked MNIST images must be uint8 (N, 3, 28, 28), got {a.dtype} {a.shape}")
    ev = evaluator or load_evaluator("mnist")
    digits = ev.predict(a.reshape(-1, 1, 28, 28)).reshape(-1, 3)
    return 100 * digits[:, 0] + 10 * digits[:, 1] + digits[:, 2]


def stacked_mnist_metrics(images_uint8, evaluator=None) -> dict[str, float]:
    """Modes covered (of 1000) and KL(mode histogram || uniform) on Stacked MNIST.

    A mode is covered if at least one sample is classified into it (Metz et al. 2017,
    Unrolled GAN; VEEGAN; PacGAN, which count over 26,000 samples). With n samples of
    a generator that is uniform over the 1000 modes, the expected count is
    1000 (1 - (1 - 1/1000)^n), e.g. 993 for n = 5000 and 1000.0 for n = 26,000.
    """
    modes = stacked_mnist_modes(images_uint8, evaluator)
    counts = np.bincount(modes, minlength=1000)
    return {"modes_covered": float(np.sum(counts > 0)), "mode_kl": kl_to_uniform(counts)}
