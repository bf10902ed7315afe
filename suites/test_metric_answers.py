"""Known answers for the metrics that are not symmetric in their two arguments or their labels.

Precision and recall swap if generated and real swap; KL(p || uniform) is not KL(uniform || p);
a mode is covered by samples near *its* centre, within three of *its* standard deviations.
Each test builds inputs whose answer is known by construction (or computed here with NumPy,
following the papers' definitions), so a swap or a wrong direction fails:

- precision / recall (Kynkaanniemi et al. 2019): generated samples from one of ten real
  clusters are precise and have low recall; samples spread far wider than the data have low
  precision and high recall; both equal a NumPy k-NN computation exactly;
- classes covered and KL(class histogram || uniform), from hand-built predicted labels;
- ring-of-8 and 5x5-grid metrics (VEEGAN, Srivastava et al. 2017; PacGAN, Lin et al. 2018)
  with points placed by hand around centres stated here from docs/cli.md.
"""

import math

import numpy as np
import pytest

from bench.core import data
from bench.metrics import class_coverage, feature_metrics, fidelity_metrics, mixture_metrics


# -- precision and recall ----------------------------------------------------------------------
def numpy_precision_recall(generated, real, k=3):
    """Kynkaanniemi et al. 2019: a point is inside a set's manifold if it lies within the k-NN
    radius (k-th nearest other member) of some member. precision = share of generated samples
    inside the real manifold; recall = share of real samples inside the generated manifold."""

    def radii(a):
        d = np.sqrt(np.sum((a[:, None, :] - a[None, :, :]) ** 2, axis=2))
        return np.sort(d, axis=1)[:, k]  # column 0 is the point itself

    cross = np.sqrt(np.sum((generated[:, None, :] - real[None, :, :]) ** 2, axis=2))  # (G, R)
    precision = np.mean(np.any(cross <= radii(real)[None, :], axis=1))
    recall = np.mean(np.any(cross.T <= radii(generated)[None, :], axis=1))
    return float(precision), float(recall)


@pytest.fixture(scope="module")
def clusters():
    """Ten well separated Gaussian clusters in 4-D, 150 points each."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((10, 4)) * 10.0
    labels = np.repeat(np.arange(10), 150)
    real = centres[labels] + rng.standard_normal((len(labels), 4))
    return real, centres, rng


def prc(generated, real):
    return feature_metrics(generated, real, fid=False, kid=False, prc=True, prc_neighborhood=3)


def test_samples_from_one_cluster_are_precise_but_recall_little(clusters):
    real, centres, rng = clusters
    generated = centres[3] + rng.standard_normal((400, 4))  # mode collapse onto cluster 3
    got = prc(generated, real)
    assert got["precision"] > 0.9
    assert got["recall"] < 0.3  # about one cluster in ten
    assert (got["precision"], got["recall"]) == pytest.approx(
        numpy_precision_recall(generated, real), abs=1e-6
    )  # float32 means; counts differ by 1/400


def test_samples_spread_far_wider_than_the_data_recall_much_but_are_imprecise(clusters):
    real, _, rng = clusters
    generated = rng.standard_normal((400, 4)) * 30.0
    got = prc(generated, real)
    assert got["precision"] < 0.3
    assert got["recall"] > 0.7
    assert (got["precision"], got["recall"]) == pytest.approx(
        numpy_precision_recall(generated, real), abs=1e-6
    )  # float32 means; counts differ by 1/400


def test_precision_and_recall_of_evaluator_features_one_digit_class():
    """Through fidelity_metrics (evaluator features of images): real images of the digit 1
    only (test images 5000 on), against the first 1000 test images (all classes). Real images,
    so precise; one class of ten, so low recall."""
    test = data.load("mnist", "test")
    ones = test.images[5000 + np.flatnonzero(test.labels[5000:] == 1)[:300]]
    got = fidelity_metrics(ones, "mnist", "test", n_reference=1000, fid=False, kid=False, isc=False)
    assert got["precision"] > 0.8
    assert got["recall"] < 0.3


# -- classes covered and class KL --------------------------------------------------------------
class LabelStub:
    """An evaluator whose predictions are given: class_coverage only calls predict."""

    def __init__(self, labels):
        self.labels = np.asarray(labels)

    def predict(self, images):
        assert len(images) == len(self.labels)
        return self.labels


def coverage_of(counts):
    labels = np.repeat(np.arange(10), counts)
    images = np.zeros((len(labels), 1, 28, 28), np.uint8)
    return class_coverage(images, "mnist", evaluator=LabelStub(labels))


def kl_to_uniform_by_hand(counts):
    p = np.asarray(counts, float) / np.sum(counts)
    p = p[p > 0]
    return float(np.sum(p * np.log(p * 10)))


@pytest.mark.parametrize(
    "counts, covered",
    [
        ([100] * 10, 10),  # even: KL 0
        ([1000, 0, 0, 0, 0, 0, 0, 0, 0, 0], 1),  # one class: KL log 10
        ([500, 300, 150, 40, 10, 0, 0, 0, 0, 0], 5),  # 10 of 1000 is exactly the 1 % threshold
        ([500, 300, 151, 40, 9, 0, 0, 0, 0, 0], 4),  # 9 of 1000 is under it
        ([910, 10, 10, 10, 10, 10, 10, 10, 10, 10], 10),  # every class present: KL(p||u) != KL(u||p)
    ],
)
def test_classes_covered_and_class_kl_known_answers(counts, covered):
    got = coverage_of(counts)
    assert got["classes_covered"] == covered
    assert got["class_kl"] == pytest.approx(kl_to_uniform_by_hand(counts), rel=1e-12, abs=1e-15)


def test_class_kl_is_of_the_samples_against_uniform_not_the_reverse():
    counts = [991] + [1] * 9
    p = np.array(counts) / 1000
    forward = 0.991 * np.log(9.91) + 9 * 0.001 * np.log(0.01)  # KL(p || u) = 2.23
    reverse = np.sum(0.1 * np.log(0.1 / p))  # KL(u || p) = 3.92
    assert abs(forward - reverse) > 1.0
    assert coverage_of(counts)["class_kl"] == pytest.approx(forward, rel=1e-12)
    assert coverage_of([1000] + [0] * 9)["class_kl"] == pytest.approx(math.log(10), rel=1e-12)


# -- ring of 8 and grid of 25 ------------------------------------------------------------------
# docs/cli.md: ring8 = 8 Gaussians on a circle of radius 2, std 0.02 (mode k at angle 2 pi k / 8);
# grid25 = the 5 x 5 grid at -4, -2, 0, 2, 4, std 0.05 (mode 5 i + j at (-4 + 2 i, -4 + 2 j)).
RING = np.array([[2 * math.cos(2 * math.pi * k / 8), 2 * math.sin(2 * math.pi * k / 8)] for k in range(8)])
RING_STD = 0.02
GRID = np.array([[-4.0 + 2 * i, -4.0 + 2 * j] for i in range(5) for j in range(5)])
GRID_STD = 0.05


def test_the_mixtures_are_where_the_readme_says():
    for name, centres, std in (("ring8", RING, RING_STD), ("grid25", GRID, GRID_STD)):
        got, got_std = data.mixture_centers(name)
        np.testing.assert_allclose(got, centres, atol=1e-12)
        assert got_std == std


def mode_kl_by_hand(counts):
    p = np.asarray(counts, float) / np.sum(counts)
    p = p[p > 0]
    return float(np.sum(p * np.log(p * len(counts))))


def test_points_on_three_ring_centres_cover_three_modes():
    counts = [5, 0, 3, 0, 0, 2, 0, 0]
    pts = np.repeat(RING, counts, axis=0)
    got = mixture_metrics(pts, "ring8")
    assert got["modes_covered"] == 3
    assert got["high_quality_share"] == 1.0
    assert got["mode_kl"] == pytest.approx(mode_kl_by_hand(counts), rel=1e-12)


def test_three_standard_deviations_of_the_right_mixture_decide_high_quality():
    radial = RING[1] / 2  # unit vector from the origin through mode 1
    pts = np.stack(
        [
            RING[1] + 2.9 * RING_STD * radial,  # inside: HQ, mode 1
            RING[4] - 2.5 * RING_STD * radial,  # 2.5 std from mode 4's centre: HQ, mode 4
            RING[6] + 3.1 * RING_STD * radial,  # 3.1 ring std from mode 6 (within 3 grid std)
            np.zeros(2),
        ]
    )  # the centre of the ring: 100 std from every mode
    got = mixture_metrics(pts, "ring8")
    assert got["high_quality_share"] == pytest.approx(2 / 4)
    assert got["modes_covered"] == 2
    assert got["mode_kl"] == pytest.approx(mode_kl_by_hand([0, 1, 0, 0, 1, 0, 0, 0]), rel=1e-12)


def test_points_far_from_every_mode_are_not_high_quality():
    far = np.array([[0.0, 0.0], [10.0, 10.0], [1.0, 1.0]])
    got = mixture_metrics(far, "ring8")
    assert (got["modes_covered"], got["high_quality_share"]) == (0.0, 0.0)
    assert got["mode_kl"] == pytest.approx(math.log(8))  # nothing covered evenly: the maximum
    mid = (GRID[:-1] + GRID[1:]) / 2  # half way between neighbouring grid centres: 20 std off
    got = mixture_metrics(mid, "grid25")
    assert (got["modes_covered"], got["high_quality_share"]) == (0.0, 0.0)


def test_every_grid_centre_once_covers_25_modes_evenly():
    got = mixture_metrics(GRID + 2.0 * GRID_STD * np.array([0.6, 0.8]), "grid25")  # 2 std off each
    assert got == {"modes_covered": 25.0, "high_quality_share": 1.0, "mode_kl": pytest.approx(0.0, abs=1e-12)}
    counts = np.zeros(25, int)
    counts[[0, 12, 24]] = [6, 3, 1]
    got = mixture_metrics(np.repeat(GRID, counts, axis=0), "grid25")
    assert got["modes_covered"] == 3 and got["high_quality_share"] == 1.0
    assert got["mode_kl"] == pytest.approx(mode_kl_by_hand(counts), rel=1e-12)


# -- the checks can fail -------------------------------------------------------------------------
def test_swapped_precision_and_recall_are_caught(clusters, monkeypatch):
    from bench.metrics import fidelity

    monkeypatch.setitem(fidelity.RENAME, "precision", "recall")
    monkeypatch.setitem(fidelity.RENAME, "recall", "precision")
    with pytest.raises(AssertionError):
        test_samples_from_one_cluster_are_precise_but_recall_little(clusters)
