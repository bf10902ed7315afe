"""Figures: sample grids, loss curves, latent-space PCA and interpolations (matplotlib, Agg)."""

from __future__ import annotations

import csv
import io

import numpy as np

from .records import atomic_write_bytes


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def tile(images: np.ndarray, nrow: int = 8) -> np.ndarray:
    """(N, 1, H, W) or (N, H, W) uint8 -> one (rows*H, nrow*W) uint8 mosaic with 1-px gaps;
    (N, 3, H, W) (Stacked MNIST) -> an RGB mosaic (rows*H, nrow*W, 3)."""
    if images.ndim == 4:
        images = images[:, 0] if images.shape[1] == 1 else np.moveaxis(images, 1, -1)
    n, h, w = images.shape[:3]
    rows = -(-n // nrow)
    out = np.zeros((rows * (h + 1) + 1, nrow * (w + 1) + 1) + images.shape[3:], np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, nrow)
        out[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + c * (w + 1) : 1 + c * (w + 1) + w] = img
    return out


def _save_png(path, array_or_fig):
    """Render a uint8 array (gray, or RGB with a last axis of 3) or a figure to PNG and write it
    atomically."""
    plt = _plt()
    buf = io.BytesIO()
    try:
        if isinstance(array_or_fig, np.ndarray):
            plt.imsave(buf, array_or_fig, cmap="gray", vmin=0, vmax=255, format="png")
        else:
            array_or_fig.savefig(buf, dpi=100, bbox_inches="tight", format="png")
    finally:
        if not isinstance(array_or_fig, np.ndarray):
            plt.close(array_or_fig)
    return atomic_write_bytes(path, buf.getvalue())


def save_grid(images_uint8: np.ndarray, path, nrow: int = 8):
    """A grid of image samples (uint8) as PNG."""
    return _save_png(path, tile(images_uint8, nrow))


def save_points(points: np.ndarray, centers: np.ndarray | None, path, title=""):
    """2-D samples of the mixture datasets, with the true mode centers."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.scatter(points[:, 0], points[:, 1], s=2, alpha=0.4)
    if centers is not None:
        ax.scatter(centers[:, 0], centers[:, 1], marker="x", c="red", s=30)
    ax.set_title(title)
    ax.set_aspect("equal")
    return _save_png(path, fig)


def save_loss_curves(csv_path, path, smooth: int = 25):
    """Every loss term of losses.csv against the step, moving-average smoothed."""
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return None
    terms = [k for k in rows[0] if k not in ("step", "wall_s")]
    plt = _plt()
    fig, axes = plt.subplots(len(terms), 1, figsize=(6, 1.6 * len(terms)), sharex=True, squeeze=False)
    steps = np.array([int(r["step"]) for r in rows])
    for ax, term in zip(axes[:, 0], terms):
        y = np.array([float(r[term]) for r in rows])
        ax.plot(steps, y, lw=0.5, alpha=0.4)
        if len(y) > smooth:
            ax.plot(steps[smooth - 1 :], np.convolve(y, np.ones(smooth) / smooth, "valid"), lw=1.2)
        ax.set_ylabel(term, fontsize=8)
    axes[-1, 0].set_xlabel("step")
    return _save_png(path, fig)


def save_latent_pca(means: np.ndarray, labels: np.ndarray, path, title="latent means (PCA)"):
    """First two principal components of latent means, coloured by class."""
    centred = means - means.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    xy = centred @ vt[:2].T
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 4))
    sc = ax.scatter(xy[:, 0], xy[:, 1], c=labels, cmap="tab10", s=3)
    fig.colorbar(sc, ax=ax)
    ax.set_title(title)
    return _save_png(path, fig)


def interpolation_latents(z0: np.ndarray, z1: np.ndarray, steps: int = 10) -> np.ndarray:
    """Linear interpolation between two latent vectors, endpoints included."""
    t = np.linspace(0.0, 1.0, steps)[:, None]
    return (1.0 - t) * z0[None] + t * z1[None]
