"""The endless, seeded, shuffled batch iterator used for training."""

from __future__ import annotations

import math

import numpy as np


class Batches:
    """Endless, seeded, shuffled batches for training.

    The samples are consumed as one stream of epochs, each a fresh permutation drawn from
    ``np.random.default_rng(seed)``; a batch that crosses an epoch boundary takes the tail of
    one permutation and the head of the next, so every sample is seen exactly once per epoch
    and ``next(2)`` equals ``next(1)`` twice, concatenated.
    """

    def __init__(self, images_f: np.ndarray, labels: np.ndarray | None, batch_size: int, seed: int):
        images_f = np.asarray(images_f)
        if images_f.ndim < 1 or len(images_f) == 0:
            raise ValueError("Batches needs at least one sample")
        if labels is not None:
            labels = np.asarray(labels, dtype=np.int64)
            if labels.shape != (len(images_f),):
                raise ValueError(f"labels have shape {labels.shape}, expected ({len(images_f)},) to match the images")
        batch_size = int(batch_size)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.images = images_f
        self.labels = labels
        self.batch_size = batch_size
        self.seed = seed
        self.n = len(images_f)
        self.epoch = 0  # completed passes over the data
        self._rng = np.random.default_rng(seed)
        self._perm = self._rng.permutation(self.n)
        self._pos = 0

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def _indices(self, count: int) -> np.ndarray:
        parts = []
        while count > 0:
            take = min(count, self.n - self._pos)
            parts.append(self._perm[self._pos : self._pos + take])
            self._pos += take
            count -= take
            if self._pos == self.n:
                self.epoch += 1
                self._perm = self._rng.permutation(self.n)
                self._pos = 0
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def next(self, n_batches: int = 1) -> dict:
        """{"x": (n_batches * batch_size, ...) samples, "y": int64 labels or None}."""
        n_batches = int(n_batches)
        if n_batches < 1:
            raise ValueError(f"n_batches must be >= 1, got {n_batches}")
        idx = self._indices(n_batches * self.batch_size)
        return {"x": self.images[idx], "y": None if self.labels is None else self.labels[idx]}

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        return self.next(1)
