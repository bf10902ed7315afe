"""Known answers for the metrics the study's claims 6 and 7 read: sharpness (variance of the
Laplacian), latent silhouette against a pixel reference, and the interpolation jump.

Each reference is computed here independently of the code under test: the Laplacian by NumPy
slicing on a symmetrically padded image, the silhouette from its definition (Rousseeuw 1987)
with NumPy distances, the interpolation jump from decoders whose answer is known in closed
form (a linear decoder changes evenly, 1; a step decoder puts the whole change in one step,
n_frames - 1).
"""

import numpy as np
import pytest

from bench.metrics import laplacian_sharpness, latent_structure


def numpy_laplacian_variance(images):
    """5-point Laplacian with the border mirrored (scipy's 'reflect' = NumPy's 'symmetric')."""
    out = []
    for img in np.asarray(images, np.float64) / 255.0:
        p = np.pad(img, 1, mode="symmetric")
        lap = p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:] - 4 * p[1:-1, 1:-1]
        out.append(lap.var())
    return float(np.mean(out))


def test_sharpness_equals_the_numpy_laplacian_and_falls_with_blur():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 28, 28)).astype(np.uint8)
    assert laplacian_sharpness(images) == pytest.approx(numpy_laplacian_variance(images), rel=1e-12)
    assert laplacian_sharpness(images[:, None]) == pytest.approx(laplacian_sharpness(images), rel=1e-15)
    assert laplacian_sharpness(np.full((3, 28, 28), 200, np.uint8)) == 0.0
    # a 3x3 box blur keeps every image's mean but removes high frequencies
    p = np.pad(images.astype(np.float64), ((0, 0), (1, 1), (1, 1)), mode="edge")
    blurred = sum(p[:, i : i + 28, j : j + 28] for i in range(3) for j in range(3)) / 9
    assert laplacian_sharpness(np.round(blurred).astype(np.uint8)) < 0.2 * laplacian_sharpness(images)


def numpy_silhouette(x, y):
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    s = []
    for i in range(len(x)):
        same = y == y[i]
        a = d[i, same & (np.arange(len(x)) != i)].mean()
        b = min(d[i, y == c].mean() for c in np.unique(y) if c != y[i])
        s.append((b - a) / max(a, b))
    return float(np.mean(s))


class StubVAE:
    """encode: the first `latent` pixels; decode: a chosen map from latent to image."""

    def __init__(self, latent, decode):
        self.latent, self._decode = latent, decode

    def encode(self, x, y=None):
        z = np.asarray(x).reshape(len(x), -1)[:, : self.latent]
        return z, np.zeros_like(z)

    def decode(self, z, y=None):
        return self._decode(np.asarray(z))


def three_classes(n=60, latent=3, seed=1):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.normal(0, 0.3, (n, 1, 4, 4))
    x.reshape(n, -1)[:, :latent] += 3.0 * np.eye(latent)[y]  # classes apart in the latent pixels only
    return x, y


def test_silhouettes_equal_their_definition():
    x, y = three_classes()
    out = latent_structure(StubVAE(3, lambda z: z), x, y)
    assert out["latent_silhouette"] == pytest.approx(numpy_silhouette(x.reshape(60, -1)[:, :3], y), rel=1e-9)
    from sklearn.decomposition import PCA  # the reference projection: PCA onto 3 dimensions

    pixels = PCA(3, random_state=0).fit_transform(x.reshape(60, -1))
    assert out["pixel_silhouette"] == pytest.approx(numpy_silhouette(pixels, y), rel=1e-9)
    assert out["latent_silhouette"] > 0.5  # separated by construction
    shuffled = latent_structure(StubVAE(3, lambda z: z), x, np.random.default_rng(2).permutation(y))
    assert abs(shuffled["latent_silhouette"]) < 0.1  # labels that mean nothing separate nothing


def test_interpolation_jump_is_one_for_a_linear_decoder_and_n_minus_one_for_a_step():
    x, y = three_classes()
    a = np.random.default_rng(3).normal(size=(3, 16))
    linear = latent_structure(StubVAE(3, lambda z: z @ a), x, y, n_frames=8)
    assert linear["interp_jump"] == pytest.approx(1.0, rel=1e-9)
    step = latent_structure(
        StubVAE(3, lambda z: np.where(z[:, :1] > 0.5 * (z[:1, :1] + z[-1:, :1]), 1.0, 0.0) * np.ones((1, 16))),
        x,
        y,
        n_frames=8,
    )
    assert step["interp_jump"] == pytest.approx(7.0, rel=1e-9)


# -- Stacked MNIST's real sharpness -------------------------------------------------------------


def test_stacked_mnist_real_sharpness_is_the_mnist_test_digits_mean():
    """STACKED_REAL_SHARPNESS equals the NumPy Laplacian variance averaged over the MNIST test
    split's 10,000 digits, and real Stacked MNIST images (3 test digits each, drawn with
    replacement) land within 4 standard errors of it: sd of one digit's value / sqrt(3 n)."""
    from bench.core import data, optional
    from bench.runs import study_metrics

    optional.need_dataset("mnist")
    digits = data.load("mnist", "test").images
    digits = np.round((np.asarray(digits, np.float64) - digits.min()) / (digits.max() - digits.min()) * 255)
    per_digit = [numpy_laplacian_variance(d[None]) for d in digits.reshape(-1, 28, 28)]
    assert len(per_digit) == 10_000
    assert study_metrics.STACKED_REAL_SHARPNESS == pytest.approx(np.mean(per_digit), rel=1e-9)
    n = 4000
    images, _ = data.stacked_mnist(n, np.random.default_rng(1), "test")
    se = np.std(per_digit) / np.sqrt(3 * n)
    assert abs(laplacian_sharpness(images) - study_metrics.STACKED_REAL_SHARPNESS) < 4 * se


def test_a_stacked_mnist_record_gets_its_sharpness_gap_from_the_real_reference():
    import math

    from bench.runs import study_metrics

    real = study_metrics.STACKED_REAL_SHARPNESS
    rec = {"id": "x", "status": "ok", "spec": {"dataset": "stacked-mnist"}, "metrics": {"sharpness": 0.2}}
    assert study_metrics.metric_value(rec, "sharpness_gap", ".") == pytest.approx(abs(math.log(0.2 / real)), rel=1e-12)
    # a record that carries its own reference keeps it; other datasets get none added
    own = {**rec, "metrics": {"sharpness": 0.2, "sharpness_ratio": 2.0}}
    assert study_metrics.metric_value(own, "sharpness_gap", ".") == pytest.approx(math.log(2.0), rel=1e-12)
    mnist = {**rec, "spec": {"dataset": "mnist"}}
    assert math.isnan(study_metrics.metric_value(mnist, "sharpness_gap", "."))
