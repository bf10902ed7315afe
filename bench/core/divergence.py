"""What "diverged" means and which steps the "final" numbers cover: one definition, used by the
runner (when to stop a run), the stability metrics (bench/metrics/stability.py) and the tables.

A loss value is bad when it is NaN, infinite, or its magnitude passes DIVERGENCE_LIMIT: no
healthy run of these models gets there (BCE and ELBO terms stay below ~1e4 nats, a critic's
scores below ~1e3). A run diverges at the first step where any loss term is bad; the runner
stops it there and records status "diverged" with steps_done = that step + 1.

Final losses and the stability summary (mean, std, step-to-step jitter) are taken over the
last FINAL_WINDOW steps (all of them when a run is shorter).
"""

from __future__ import annotations

import math

import numpy as np

DIVERGENCE_LIMIT = 1e6
FINAL_WINDOW = 100


def is_bad(value) -> bool:
    """One loss value: NaN, infinite, or |value| > DIVERGENCE_LIMIT."""
    v = float(value)
    return not math.isfinite(v) or abs(v) > DIVERGENCE_LIMIT


def losses_diverged(losses: dict) -> bool:
    """One step's {term: value}: True if any term is bad."""
    return any(is_bad(v) for v in losses.values())


def divergence_step(values, limit: float = DIVERGENCE_LIMIT) -> int:
    """Index of the first bad entry of a sequence; -1 if there is none."""
    v = np.asarray(values, np.float64).ravel()
    bad = ~np.isfinite(v) | (np.abs(np.nan_to_num(v, nan=0.0)) > limit)
    return int(np.argmax(bad)) if bad.any() else -1


def tail(values, window: int = FINAL_WINDOW) -> np.ndarray:
    """The last `window` entries as float64."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    return np.asarray(values, np.float64).ravel()[-window:]


def final_losses(history: dict, window: int = FINAL_WINDOW) -> dict[str, float]:
    """{term: mean over the last `window` steps} of a run's loss history."""
    return {k: float(np.mean(tail(v, window))) if len(v) else float("nan") for k, v in history.items()}
