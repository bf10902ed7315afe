"""The synthetic sets: the 2-D Gaussian mixtures ring8 and grid25, and Stacked MNIST."""

from __future__ import annotations

import math
import os

import numpy as np

from .base import MIXTURE_DATASETS
from .loading import load

RING8_RADIUS, RING8_STD = 2.0, 0.02
GRID25_STD = 0.05


def _ring_centers(radius: float) -> np.ndarray:
    k = np.arange(8)
    ang = 2 * math.pi * k / 8
    return np.stack([radius * np.cos(ang), radius * np.sin(ang)], axis=1)


def _grid_centers() -> np.ndarray:
    # mode k = 5 * i + j sits at (-4 + 2i, -4 + 2j)
    v = np.arange(-4.0, 5.0, 2.0)
    return np.stack(np.meshgrid(v, v, indexing="ij"), axis=-1).reshape(25, 2)


def mixture_centers(dataset: str) -> tuple[np.ndarray, float]:
    """(centers float64 (K, 2), std) of a 2-D mixture at its default settings."""
    if dataset == "ring8":
        return _ring_centers(RING8_RADIUS), RING8_STD
    if dataset == "grid25":
        return _grid_centers(), GRID25_STD
    raise ValueError(f"unknown mixture {dataset!r}: choose one of {', '.join(MIXTURE_DATASETS)}")


def _mixture(n: int, rng: np.random.Generator, centers: np.ndarray, std: float):
    n = int(n)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    modes = rng.integers(0, len(centers), size=n).astype(np.int64)
    pts = centers[modes] + std * rng.standard_normal((n, 2))
    return pts.astype(np.float32), modes


def ring8(n: int, rng: np.random.Generator, radius: float = RING8_RADIUS, std: float = RING8_STD):
    """n points from 8 equal Gaussians on a circle (VEEGAN, Srivastava et al. 2017, sec. 5.1).

    Mode k is centred at radius * (cos(2 pi k / 8), sin(2 pi k / 8)). Returns float32 (n, 2)
    points and int64 (n,) mode indices.
    """
    return _mixture(n, rng, _ring_centers(radius), std)


def grid25(n: int, rng: np.random.Generator, std: float = GRID25_STD):
    """n points from 25 equal Gaussians on the grid {-4, -2, 0, 2, 4}^2 (VEEGAN / PacGAN).

    Mode k = 5 * i + j is centred at (-4 + 2i, -4 + 2j). Returns float32 (n, 2), int64 (n,).
    """
    return _mixture(n, rng, _grid_centers(), std)


def stacked_mnist(
    n: int,
    rng: np.random.Generator,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    *,
    verify: bool = True,
    source=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Stacked MNIST (Metz et al. 2017; VEEGAN): three random MNIST digits as RGB channels.

    Returns uint8 (n, 3, 28, 28) and int64 labels 100*d0 + 10*d1 + d2 (1000 modes). `source`:
    an MNIST Split already read (e.g. a Dataset's train split); else `split` is loaded from
    `data_dir`.
    """
    n = int(n)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    s = source if source is not None else load("mnist", split, data_dir, verify=verify)
    idx = rng.integers(0, len(s), size=(n, 3))
    images = s.images[idx]  # (n, 3, 28, 28), a fresh writable copy
    d = s.labels[idx]
    labels = (100 * d[:, 0] + 10 * d[:, 1] + d[:, 2]).astype(np.int64)
    return images, labels
