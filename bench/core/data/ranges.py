"""Scaling between the stored bytes and what the models see: (0, 1) or (-1, 1), NCHW."""

from __future__ import annotations

import numpy as np

_RANGES = ((0.0, 1.0), (-1.0, 1.0))


def _check_range(data_range) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in data_range)
    except (TypeError, ValueError):
        raise ValueError(f"data_range must be (0, 1) or (-1, 1), got {data_range!r}") from None
    if (lo, hi) not in _RANGES:
        raise ValueError(f"data_range must be (0, 1) or (-1, 1), got {data_range!r}")
    return lo, hi


def to_model_range(images: np.ndarray, data_range, dtype=np.float32) -> np.ndarray:
    """uint8 (N, 28, 28) or (N, C, 28, 28) -> float NCHW in ``data_range``: x/255*(hi-lo)+lo."""
    lo, hi = _check_range(data_range)
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(f"to_model_range expects uint8 images, got {images.dtype}")
    if images.ndim == 3:
        images = images[:, None]
    elif images.ndim != 4:
        raise ValueError(f"expected images (N, H, W) or (N, C, H, W), got shape {images.shape}")
    x = images.astype(dtype)
    x /= 255  # 0 -> 0 and 255 -> 1 exactly, so the ends of the range are exact
    if hi - lo != 1.0:
        x *= hi - lo
    if lo != 0.0:
        x += lo
    return x


def from_model_range(x: np.ndarray, data_range) -> np.ndarray:
    """The inverse of :func:`to_model_range`: float (N, C, H, W) or (N, H, W) -> uint8 NCHW.

    Values are rounded to the nearest byte and clipped; NaN becomes 0.
    """
    lo, hi = _check_range(data_range)
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim != 4:
        raise ValueError(f"expected (N, H, W) or (N, C, H, W), got shape {x.shape}")
    y = (x.astype(np.float64) - lo) * (255.0 / (hi - lo))
    y = np.nan_to_num(np.rint(y), nan=0.0, posinf=255.0, neginf=0.0)
    return np.clip(y, 0, 255).astype(np.uint8)
