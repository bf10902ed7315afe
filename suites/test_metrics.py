"""Known-answer tests of bench.metrics: every expected value is a closed form, a literal, or
an independent NumPy/SciPy computation, never the code under test."""

import json
import math
import shutil
import socket

import numpy as np
import pytest
from scipy import linalg, stats

from bench.core import data
from bench.metrics import (
    EvaluatorError,
    SamplesFileError,
    anomaly_auroc,
    class_coverage,
    denoising_psnr,
    eval_samples_file,
    feature_metrics,
    fidelity_metrics,
    is_diverged,
    iwae_nll,
    kl_to_uniform,
    latent_knn_accuracy,
    load_evaluator,
    loss_summary,
    mean_abs_step,
    mixture_metrics,
    oscillation,
    seed_spread,
    stacked_mnist_metrics,
    test_elbo,
)
from bench.metrics.evaluator import ACCURACY_TARGETS, weight_paths


# -- helpers --------------------------------------------------------------------------------
def gaussian_set(rng, mean, cov, n):
    """n points whose sample mean and sample covariance (ddof 1) are exactly mean and cov."""
    d = len(mean)
    z = rng.standard_normal((n, d))
    z -= z.mean(axis=0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T  # sample cov = I
    return mean + z @ np.linalg.cholesky(cov).T


def frechet_closed_form(mu1, s1, mu2, s2):
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^1/2), with scipy's matrix square root."""
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean))


def mmd2_unbiased_poly(x, y):
    """Unbiased MMD^2 (Gretton et al. 2012, eq. 3), cubic polynomial kernel (x.y/d + 1)^3."""
    d = x.shape[1]
    k = lambda a, b: (a @ b.T / d + 1.0) ** 3  # noqa: E731
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    m, n = len(x), len(y)
    return (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2 * kxy.mean()


@pytest.fixture(scope="module")
def mnist_test():
    return data.load("mnist", "test")


# -- FID / KID / PRC / ISC through torch-fidelity's own path -------------------------------
def test_fid_of_gaussian_feature_sets_matches_closed_form():
    rng = np.random.default_rng(0)
    d = 6
    a = rng.standard_normal((d, d))
    b = rng.standard_normal((d, d))
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d) + 1.0
    s1, s2 = a @ a.T + 0.5 * np.eye(d), b @ b.T + 0.1 * np.eye(d)
    f1, f2 = gaussian_set(rng, mu1, s1, 3000), gaussian_set(rng, mu2, s2, 2000)
    got = feature_metrics(f1, f2, fid=True, kid=False)["fid"]
    # float64 throughout; eigvals vs sqrtm agree to ~1e-12 relative on well-conditioned 6x6
    assert got == pytest.approx(frechet_closed_form(mu1, s1, mu2, s2), rel=1e-8)


def test_fid_diagonal_covariances_trivial_closed_form():
    rng = np.random.default_rng(1)
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, -1.0])
    v1, v2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    f1 = gaussian_set(rng, mu1, np.diag(v1), 1000)
    f2 = gaussian_set(rng, mu2, np.diag(v2), 1000)
    # diagonal: ||mu1 - mu2||^2 + sum (sqrt v1 - sqrt v2)^2 = 10 + (1 + 1 + 4) = 16
    assert feature_metrics(f1, f2, kid=False)["fid"] == pytest.approx(16.0, rel=1e-9)


def test_kid_one_full_subset_equals_numpy_unbiased_mmd():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((300, 8))
    y = rng.standard_normal((300, 8)) * 1.5 + 0.3
    got = feature_metrics(x, y, fid=False, kid=True, kid_subsets=1, kid_subset_size=300)
    # one subset of the whole set is a permutation, and MMD^2 is permutation invariant
    assert got["kid_mean"] == pytest.approx(mmd2_unbiased_poly(x, y), rel=1e-9)
    assert got["kid_std"] == 0.0


def test_kid_of_a_set_with_itself_is_about_zero():
    rng = np.random.default_rng(3)
    n, d, m, subsets = 1000, 16, 250, 40
    x = rng.standard_normal((n, d))
    y = rng.standard_normal((n, d)) + 0.5
    same = feature_metrics(x, x, fid=False, kid=True, kid_subset_size=m, kid_subsets=subsets)
    other = feature_metrics(x, y, fid=False, kid=True, kid_subset_size=m, kid_subsets=subsets)
    # Both subsets come from the same n points, so a cross pair is one point twice with
    # probability 1/n: E[KID] = -2 (mean k(x_i, x_i) - mean_{i != j} k(x_i, x_j)) / n, O(1/n)
    k = (x @ x.T / d + 1.0) ** 3
    diag, off = np.mean(np.diag(k)), (k.sum() - np.trace(k)) / (n * (n - 1))
    expected = -2 * (diag - off) / n
    # the mean over subsets scatters by kid_std / sqrt(subsets); 4 of those
    assert same["kid_mean"] == pytest.approx(expected, abs=4 * same["kid_std"] / math.sqrt(subsets))
    # and it is ~0 on the scale of a real difference (a mean shift of half a std)
    assert abs(same["kid_mean"]) < 0.03 * other["kid_mean"]


def test_isc_of_confident_logits_is_number_of_classes():
    logits = 50.0 * np.eye(10)[np.arange(1000) % 10]  # p(y|x) one-hot, p(y) uniform
    got = feature_metrics(logits, None, fid=False, kid=False, isc=True, isc_splits=1)
    assert got["isc_mean"] == pytest.approx(10.0, rel=1e-9)  # exp(H(y) - E H(y|x)) = exp(log 10)
    one = feature_metrics(np.tile(50.0 * np.eye(10)[0], (1000, 1)), None, fid=False, kid=False, isc=True, isc_splits=1)
    assert one["isc_mean"] == pytest.approx(1.0, rel=1e-9)


def test_real_test_set_against_itself(mnist_test):
    n = 5000  # any identical pair of sets gives these answers; half the test set halves PRC cost
    got = fidelity_metrics(mnist_test.images[:n], "mnist", "test", n_reference=n, kid_subsets=10)
    # identical sets: identical statistics, FID ~ 0 up to float64 eigenvalue round-off
    # of a 128x128 covariance with entries ~1e2
    assert abs(got["fid"]) < 1e-3
    assert abs(got["kid_mean"]) < 3 * got["kid_std"] + 1e-6
    # every sample lies at distance 0 from itself, inside its own k-NN ball
    assert got["precision"] == 1.0 and got["recall"] == 1.0
    # a 99%-accurate confident classifier on balanced classes: exp(H(y) - E H(y|x)) near 10
    assert got["isc_mean"] > 9.0


def test_no_network_is_touched(monkeypatch, mnist_test):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    got = fidelity_metrics(mnist_test.images[:500], "mnist", "test", kid_subsets=5)
    assert set(got) == {"fid", "kid_mean", "kid_std", "precision", "recall", "isc_mean", "isc_std"}


# -- the evaluator --------------------------------------------------------------------------
@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_committed_evaluator_meets_target_and_its_record(dataset):
    ev = load_evaluator(dataset)
    test = data.load(dataset, "test")
    acc = ev.accuracy(test.images, test.labels)
    assert acc >= ACCURACY_TARGETS[dataset]  # evaluator.ACCURACY_TARGETS: MNIST >= 99%, Fashion-MNIST >= 90%
    # inference is deterministic: the committed record was measured with the same weights
    assert acc == pytest.approx(ev.info["test_accuracy"], abs=2e-4)
    assert ev.features(test.images[:10]).shape == (10, 128)
    assert ev.logits(test.images[:10, None]).dtype == np.float32


def test_evaluator_checksum_mismatch_and_missing_are_clear(tmp_path):
    npz, js = weight_paths("mnist")
    with pytest.raises(EvaluatorError, match="genbench train-evaluator --dataset mnist"):
        load_evaluator("mnist", tmp_path)
    shutil.copy(npz, tmp_path / npz.name)
    meta = json.loads(js.read_text())
    meta["sha256"] = "0" * 64
    (tmp_path / js.name).write_text(json.dumps(meta))
    with pytest.raises(EvaluatorError, match="SHA-256.*genbench train-evaluator --dataset mnist"):
        load_evaluator("mnist", tmp_path)


def test_evaluator_rejects_float_input():
    with pytest.raises(TypeError, match="uint8"):
        load_evaluator("mnist").predict(np.zeros((2, 28, 28), np.float32))


# -- class coverage -------------------------------------------------------------------------
def test_one_class_generator_is_flagged(mnist_test):
    threes = mnist_test.images[mnist_test.labels == 3]
    got = class_coverage(threes, "mnist")
    assert got["classes_covered"] == 1.0
    # KL(one-hot || uniform) = log 10; evaluator errors (<1% of the 3s, spread over the
    # other classes) lower it by at most the entropy they add, ~0.06 nats at 1%
    assert got["class_kl"] == pytest.approx(math.log(10), abs=0.1)


def test_real_test_set_covers_all_classes(mnist_test):
    got = class_coverage(mnist_test.images, "mnist")
    assert got["classes_covered"] == 10.0
    truth = kl_to_uniform(np.bincount(mnist_test.labels, minlength=10))  # ~0.003 nats
    # 1% misclassified images move at most 1% of the mass: |dKL| well below 0.01 here
    assert got["class_kl"] == pytest.approx(truth, abs=0.01)


def test_kl_to_uniform_literals():
    assert kl_to_uniform([5, 5, 5, 5]) == 0.0
    assert kl_to_uniform([7, 0, 0, 0]) == pytest.approx(math.log(4), rel=1e-12)
    assert kl_to_uniform([1, 3]) == pytest.approx(0.25 * math.log(0.5) + 0.75 * math.log(1.5))


# -- 2-D mixtures ---------------------------------------------------------------------------
@pytest.mark.parametrize("dataset,sampler,k", [("ring8", data.ring8, 8), ("grid25", data.grid25, 25)])
def test_exact_mixture_samples_cover_every_mode(dataset, sampler, k):
    n = 20000
    points, _ = sampler(n, np.random.default_rng(4))
    got = mixture_metrics(points, dataset)
    assert got["modes_covered"] == k
    # P(|x - c| <= 3 std) for an isotropic 2-D Gaussian (chi with 2 dof) = 1 - exp(-9/2);
    # 5 binomial standard deviations at n = 20000 is 0.0037
    p = 1 - math.exp(-4.5)
    assert got["high_quality_share"] == pytest.approx(p, abs=5 * math.sqrt(p * (1 - p) / n))
    # multinomial noise alone gives E[KL] ~ (k - 1) / (2 n) < 1e-3
    assert got["mode_kl"] < 0.01


def test_collapsed_mixture_samples_cover_one_mode():
    centers, std = data.mixture_centers("ring8")
    rng = np.random.default_rng(5)
    points = centers[3] + 0.5 * std * rng.standard_normal((1000, 2))
    got = mixture_metrics(points, "ring8")
    assert got == {
        "modes_covered": 1.0,
        "high_quality_share": pytest.approx(1.0, abs=1e-12),
        "mode_kl": pytest.approx(math.log(8), rel=1e-12),
    }
    far = mixture_metrics(np.full((10, 2), 10.0), "ring8")  # nowhere near any mode
    assert far["modes_covered"] == 0.0 and far["high_quality_share"] == 0.0


def test_mixture_hand_counted_case():
    centers, std = data.mixture_centers("ring8")
    pts = np.stack([centers[0], centers[0] + [2.9 * std, 0], centers[1] + [0, 3.1 * std], centers[2], [np.nan, 0.0]])
    got = mixture_metrics(pts, "ring8")
    # HQ: the first two (mode 0) and the fourth (mode 2); 3.1 std and NaN are not HQ
    assert got["modes_covered"] == 2.0
    assert got["high_quality_share"] == pytest.approx(3 / 5)
    assert got["mode_kl"] == pytest.approx((2 / 3) * math.log(8 * 2 / 3) + (1 / 3) * math.log(8 / 3))


def _mixture_metrics_by_hand(points, dataset, min_count=1):
    """The NumPy broadcast that mixture_metrics used before it called scikit-learn."""
    centers, std = data.mixture_centers(dataset)
    x = np.asarray(points, np.float64)
    finite = np.all(np.isfinite(x), axis=1)
    d2 = np.sum((x[:, None, :] - centers[None, :, :]) ** 2, axis=2)
    nearest = np.argmin(np.where(finite[:, None], d2, np.inf), axis=1)
    dist = np.sqrt(d2[np.arange(len(x)), nearest])
    hq = finite & (dist <= 3.0 * std)
    counts = np.bincount(nearest[hq], minlength=len(centers))
    p = counts[counts > 0] / max(counts.sum(), 1)
    kl = float(np.sum(p * np.log(p * len(counts)))) if counts.sum() else float(np.log(len(centers)))
    return {
        "modes_covered": float(np.sum(counts >= min_count)),
        "high_quality_share": float(np.mean(hq)),
        "mode_kl": kl,
    }


@pytest.mark.parametrize("dataset", ["ring8", "grid25"])
def test_mixture_metrics_match_the_broadcast_on_ties_and_the_threshold(dataset):
    """Nearest centers come from scikit-learn: the first of equally near centers wins, and a
    point exactly 3 std from its center is high quality, as in the plain NumPy computation."""
    centers, std = data.mixture_centers(dataset)
    rng = np.random.default_rng(11)
    spread = [
        centers[rng.integers(0, len(centers), 4000)] + s * std * rng.standard_normal((4000, 2))
        for s in (1.0, 2.0, 3.0, 30.0)
    ]
    ties = ((centers[:, None] + centers[None]) / 2).reshape(-1, 2)  # midpoints between centers
    edge = np.concatenate([centers + [3 * std, 0], centers - [0, 3 * std], centers + 3 * std * np.array([0.6, 0.8])])
    odd = np.array([[0.0, 0.0], [np.nan, 1.0], [np.inf, 0.0], [-1.0, 3.0]])
    for pts in (*spread, ties, edge, odd, np.concatenate([*spread, ties, edge, odd])):
        for min_count in (1, 5):
            want = _mixture_metrics_by_hand(pts, dataset, min_count)
            got = mixture_metrics(pts, dataset, min_count)
            assert got["modes_covered"] == want["modes_covered"]
            assert got["high_quality_share"] == want["high_quality_share"]
            assert got["mode_kl"] == pytest.approx(want["mode_kl"], rel=1e-12, abs=1e-15)


def test_kl_to_uniform_matches_the_sum_by_hand():
    """kl_to_uniform is scipy.stats.entropy against uniform: sum p log(K p) over p > 0."""
    rng = np.random.default_rng(12)
    for counts in (
        [1, 2, 3],
        [0, 5, 0, 5],
        [10],
        [0, 0, 7],
        rng.integers(0, 50, 1000),
        rng.integers(0, 3, 25),
        [1e-300, 1.0],
    ):
        c = np.asarray(counts, np.float64)
        p = c[c > 0] / c.sum()
        assert kl_to_uniform(counts) == pytest.approx(float(np.sum(p * np.log(p * len(c)))), rel=1e-12, abs=1e-15)
    with pytest.raises(ValueError):
        kl_to_uniform([0, 0])


# -- Stacked MNIST --------------------------------------------------------------------------
def test_stacked_mnist_real_digits_cover_nearly_all_modes():
    n = 6000
    images, labels = data.stacked_mnist(n, np.random.default_rng(6), "test")
    got = stacked_mnist_metrics(images)
    truth_counts = np.bincount(labels, minlength=1000)
    # true labels: sum_m exp(-n p_m) ~ 3 modes expected empty (1000 e^-6 = 2.5 for uniform
    # digits, a little more for the uneven test-set digit frequencies); the evaluator misreads
    # ~2% of the triples, which can only empty or fill a mode that had one or two samples
    assert got["modes_covered"] >= 990
    assert abs(got["modes_covered"] - np.sum(truth_counts > 0)) <= 5
    # KL of the true-label histogram (~0.09: multinomial noise (K-1)/(2n) plus uneven digits);
    # misreads move ~2% of the mass between modes
    assert got["mode_kl"] == pytest.approx(kl_to_uniform(truth_counts), abs=0.03)


def test_stacked_mnist_single_mode():
    test = data.load("mnist", "test")
    seven = test.images[np.flatnonzero(test.labels == 7)[:50]]
    images = np.stack([seven, seven, seven], axis=1)
    got = stacked_mnist_metrics(images)
    assert got["modes_covered"] <= 2  # 777, plus at most one misread
    assert got["mode_kl"] > math.log(1000) - 0.3


# -- VAE metrics on stub trainers with closed-form answers -----------------------------------
class DiagonalStub:
    """encode returns given (mean, logvar); -log p(x|z) = 0.5 ||x - z||^2 (x and z in R^L)."""

    def __init__(self, mean, logvar):
        self.mean, self.logvar = np.asarray(mean, float), np.asarray(logvar, float)

    def encode(self, x, y=None):
        idx = np.asarray(x)[:, -1].astype(int)  # last column carries the row index
        return self.mean[idx], self.logvar[idx]

    def reconstruction_nll(self, x, z, y=None):
        return 0.5 * np.sum((np.asarray(x)[:, :-1] - z) ** 2, axis=1)


def test_elbo_kl_term_matches_general_gaussian_kl():
    rng = np.random.default_rng(7)
    n, latent = 50, 4
    mean, logvar = rng.standard_normal((n, latent)), rng.standard_normal((n, latent))
    x = np.concatenate([rng.standard_normal((n, latent)), np.arange(n)[:, None]], axis=1)
    got = test_elbo(DiagonalStub(mean, logvar), x, None, np.random.default_rng(0), batch=16)

    def kl_full(m, cov):  # KL(N(m, cov) || N(0, I)) by the general matrix formula
        return 0.5 * (np.trace(cov) + m @ m - len(m) - np.linalg.slogdet(cov)[1])

    want = np.mean([kl_full(mean[i], np.diag(np.exp(logvar[i]))) for i in range(n)])
    assert got["kl"] == pytest.approx(want, rel=1e-12)
    assert got["elbo"] == pytest.approx(-(got["recon"] + got["kl"]), rel=1e-12)
    # literals: N(1, 1) in 1-D has KL 1/2; N(0, 2) has KL (2 - 1 - log 2) / 2
    lit = DiagonalStub([[1.0], [0.0]], [[0.0], [math.log(2)]])
    xs = np.array([[0.0, 0], [0.0, 1]])
    assert test_elbo(lit, xs, None, np.random.default_rng(0))["kl"] == pytest.approx(
        (0.5 + (1 - math.log(2)) / 2) / 2, rel=1e-12
    )


def test_elbo_reconstruction_term_is_deterministic_at_zero_variance():
    mean = np.array([[1.0, 2.0], [0.0, -1.0]])
    stub = DiagonalStub(mean, np.full((2, 2), -80.0))  # std e^-40: z = mean to 1e-17
    x = np.array([[1.0, 0.0, 0], [3.0, -1.0, 1]])
    got = test_elbo(stub, x, None, np.random.default_rng(0))
    # 0.5 ||x - mean||^2 = 0.5 * 4 and 0.5 * 9
    assert got["recon"] == pytest.approx((2.0 + 4.5) / 2, rel=1e-12)


class LinearGaussianStub:
    """p(z) = N(0, I_L), p(x|z) = N(W z + b, s^2 I_D) with orthogonal columns in W, so the
    exact posterior is diagonal: cov = diag(1 / (1 + w_j^2 / s^2)), mean = cov W^T (x - b) / s^2.
    The marginal is p(x) = N(b, W W^T + s^2 I): a closed-form log-likelihood."""

    def __init__(self, rng, d=6, latent=3, s=0.5, mean_shift=0.0, logvar_shift=0.0):
        q, _ = np.linalg.qr(rng.standard_normal((d, latent)))
        self.w_norm = np.array([1.5, 1.0, 0.7])[:latent]
        self.W, self.b, self.s = q * self.w_norm, rng.standard_normal(d), s
        self.mean_shift, self.logvar_shift = mean_shift, logvar_shift

    def log_px(self, x):
        cov = self.W @ self.W.T + self.s**2 * np.eye(len(self.b))
        return stats.multivariate_normal(self.b, cov).logpdf(x)

    def encode(self, x, y=None):
        var = 1.0 / (1.0 + self.w_norm**2 / self.s**2)
        mean = (np.asarray(x) - self.b) @ self.W / self.s**2 * var
        return mean + self.mean_shift, np.broadcast_to(np.log(var) + self.logvar_shift, mean.shape)

    def reconstruction_nll(self, x, z, y=None):
        d = np.asarray(x) - (np.asarray(z) @ self.W.T + self.b)
        return 0.5 * np.sum(d * d, axis=1) / self.s**2 + len(self.b) * (0.5 * math.log(2 * math.pi) + math.log(self.s))


def test_iwae_k1_equals_single_sample_elbo_with_same_eps():
    rng = np.random.default_rng(8)
    stub = LinearGaussianStub(rng, mean_shift=0.3, logvar_shift=0.4)
    x = rng.standard_normal((40, 6))
    got = iwae_nll(stub, x, None, np.random.default_rng(11), k=1, batch=40)["iwae_nll"]
    mean, logvar = stub.encode(x)
    eps = np.random.default_rng(11).standard_normal((40, 1, 3))[:, 0]  # the same draw
    z = mean + np.exp(0.5 * logvar) * eps
    log_q = np.array([stats.multivariate_normal(mean[i], np.diag(np.exp(logvar[i]))).logpdf(z[i]) for i in range(40)])
    log_p = stats.multivariate_normal(np.zeros(3), np.eye(3)).logpdf(z)
    want = -np.mean(-stub.reconstruction_nll(x, z) + log_p - log_q)
    assert got == pytest.approx(want, rel=1e-10)


def test_iwae_exact_with_true_posterior_and_converges_otherwise():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((20, 6)) * 2
    exact = LinearGaussianStub(np.random.default_rng(1))
    nll = -np.mean(exact.log_px(x))
    # with the exact posterior every weight equals p(x): exact for any k (float64 round-off)
    assert iwae_nll(exact, x, None, np.random.default_rng(0), k=3)["iwae_nll"] == pytest.approx(nll, rel=1e-10)
    off = LinearGaussianStub(np.random.default_rng(1), mean_shift=0.4, logvar_shift=0.5)
    gaps = [iwae_nll(off, x, None, np.random.default_rng(0), k=k)["iwae_nll"] - nll for k in (1, 10, 2000)]
    # Burda et al. 2016, Theorem 1: an upper bound that tightens with k; the k = 1 gap is
    # ~1 nat here (the KL from q to the posterior), k = 2000 leaves ~Var(w)/(2k) ~ 1e-3
    assert gaps[0] > gaps[1] > gaps[2] > -0.01
    assert gaps[2] < 0.02


def test_anomaly_auroc_separable_case():
    n = 40
    mean = np.zeros((n, 2))
    x = np.concatenate([np.zeros((n, 2)), np.arange(n)[:, None]], axis=1)
    x[n // 2 :, :2] = 5.0  # anomalies reconstruct badly: -log p(x|z) grows by ~25
    stub = DiagonalStub(mean, np.full((n, 2), -20.0))
    is_anomaly = np.arange(n) >= n // 2
    assert anomaly_auroc(stub, x, is_anomaly)["anomaly_auroc"] == 1.0
    assert anomaly_auroc(stub, x, ~is_anomaly)["anomaly_auroc"] == 0.0


def test_denoising_psnr_identity_model():
    class Identity:
        def reconstruct(self, x, y=None):
            return x

    x = np.full((20, 1, 28, 28), 0.5)
    got = denoising_psnr(Identity(), x, 0.01, np.random.default_rng(0))
    # identity returns the noisy input: PSNR = 10 log10(1 / 0.01^2) = 40 dB; no clipping at
    # 0.5 +- 50 std, and 15680 squared normals put the mean within ~1% (0.05 dB)
    assert got["denoising_psnr"] == pytest.approx(got["noisy_psnr"], rel=1e-12)
    assert got["noisy_psnr"] == pytest.approx(40.0, abs=0.1)


def test_latent_knn_accuracy_separated_and_random():
    class IdentityEncoder:
        def encode(self, x, y=None):
            return np.asarray(x), np.zeros_like(x)

    rng = np.random.default_rng(10)
    centers = 10.0 * np.eye(10)
    ytr, yte = rng.integers(0, 10, 500), rng.integers(0, 10, 200)
    xtr = centers[ytr] + rng.standard_normal((500, 10))
    xte = centers[yte] + rng.standard_normal((200, 10))
    # classes 14 std apart: every 5-NN vote is unanimous
    assert latent_knn_accuracy(IdentityEncoder(), xtr, ytr, xte, yte)["knn_accuracy"] == 1.0
    noise = latent_knn_accuracy(
        IdentityEncoder(), rng.standard_normal((500, 10)), ytr, rng.standard_normal((200, 10)), yte
    )["knn_accuracy"]
    assert noise < 0.25  # chance is 0.1; 200 test points give a binomial std of 0.02


# -- stability ------------------------------------------------------------------------------
def test_stability_known_sequences():
    alternating = [1.0, -1.0] * 100
    assert oscillation(alternating, window=50) == pytest.approx(1.0)
    assert mean_abs_step(alternating, window=50) == pytest.approx(2.0)
    assert oscillation(np.arange(10.0), window=4) == pytest.approx(np.std([6, 7, 8, 9]))
    assert not is_diverged([0.1, 1e5, -3])
    assert is_diverged([0.1, float("nan")]) and is_diverged([float("inf")]) and is_diverged([2e6])
    s = loss_summary({"d_loss": [1.0, 2.0, 3.0], "g_loss": [0.0, float("nan"), 1.0]}, window=2)
    assert s["d_loss_mean"] == 2.5 and s["d_loss_std"] == 0.5
    assert s["diverged"] == 1.0 and s["diverged_step"] == 1.0


def test_seed_spread_t_interval():
    got = seed_spread([1.0, 2.0, 3.0])
    # t_{0.975, 2} = 4.302653 (tables); std = 1; half-width = 4.302653 / sqrt(3)
    assert got["mean"] == 2.0 and got["std"] == 1.0
    assert got["ci_half_width"] == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)


# -- genbench eval --------------------------------------------------------------------------
def test_eval_samples_file_uint8_float_and_errors(tmp_path, mnist_test):
    imgs = mnist_test.images[:1000]
    np.savez(tmp_path / "u8.npz", images=imgs)
    np.savez(tmp_path / "f01.npz", images=imgs.astype(np.float32) / 255)
    np.savez(tmp_path / "fpm.npz", images=(imgs.astype(np.float32) / 255 * 2 - 1)[:, None])
    a = eval_samples_file(tmp_path / "u8.npz", "mnist", quick=True)
    b = eval_samples_file(tmp_path / "f01.npz", "mnist", quick=True)
    c = eval_samples_file(tmp_path / "fpm.npz", "mnist", quick=True)
    # the float files hold the same bytes exactly (k / 255 round-trips through rounding)
    assert a == b == c
    assert a["classes_covered"] == 10.0 and a["n_samples"] == 1000.0
    np.savez(tmp_path / "bad_key.npz", x=imgs)
    with pytest.raises(SamplesFileError, match="no 'images' array"):
        eval_samples_file(tmp_path / "bad_key.npz", "mnist")
    np.savez(tmp_path / "range.npz", images=imgs.astype(np.float32))
    with pytest.raises(SamplesFileError, match="outside"):
        eval_samples_file(tmp_path / "range.npz", "mnist")
    np.savez(tmp_path / "shape.npz", images=imgs[:, :14])
    with pytest.raises(SamplesFileError, match="28"):
        eval_samples_file(tmp_path / "shape.npz", "mnist")
    with pytest.raises(SamplesFileError, match="no such file"):
        eval_samples_file(tmp_path / "missing.npz", "mnist")


# -- metrics_for: what applies to each family, on untrained torch twins ---------------------
SHARP = {"sharpness", "sharpness_real", "sharpness_ratio"}
LATENT = {"latent_silhouette", "pixel_silhouette", "interp_jump"}


@pytest.mark.parametrize(
    "model,dataset,keys",
    [
        ("gan", "ring8", {"modes_covered", "high_quality_share", "mode_kl"}),
        ("gan", "mnist", {"fid", "kid_mean", "kid_std", "isc_mean", "isc_std", "classes_covered", "class_kl"} | SHARP),
        (
            "cvae",
            "fashion-mnist",
            {
                "test_elbo",
                "test_recon",
                "test_kl",
                "knn_accuracy",
                "fid",
                "kid_mean",
                "kid_std",
                "isc_mean",
                "isc_std",
                "classes_covered",
                "class_kl",
            }
            | SHARP
            | LATENT,
        ),
        (
            "vaegan",
            "mnist",
            {
                "test_recon_mse",
                "test_kl",
                "knn_accuracy",
                "fid",
                "kid_mean",
                "kid_std",
                "isc_mean",
                "isc_std",
                "classes_covered",
                "class_kl",
            }
            | SHARP
            | LATENT,
        ),
    ],
)
def test_metrics_for_each_family(model, dataset, keys):
    import impls
    from bench.core import registry
    from bench.core.specs import NetSpec
    from bench.metrics import metrics_for

    changes = {}
    if dataset == "ring8":
        changes = dict(latent_dim=2, generator=NetSpec(hidden=(32,)), discriminator=NetSpec(hidden=(32,)))
    spec = registry.experiment(model, dataset=dataset, **changes)
    trainer = impls.load("torch").build(spec)
    got = metrics_for(spec, trainer, np.random.default_rng(0), n_samples=500)
    assert set(got) == keys  # quick mode: no precision/recall
    assert all(isinstance(v, float) and math.isfinite(v) for v in got.values())
    if "test_elbo" in got:
        # an untrained Bernoulli decoder is near p = 1/2 per pixel: about -784 log 2 = -543
        assert -700 < got["test_elbo"] < -400
