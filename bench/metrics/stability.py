"""Training stability from the loss history: oscillation, divergence, spread over seeds.

What counts as divergence and how many final steps the summary covers is defined once, in
bench/core/divergence.py, and shared with the runner and the tables.
"""

from __future__ import annotations

import math

import numpy as np

from ..core.divergence import DIVERGENCE_LIMIT, FINAL_WINDOW, divergence_step
from ..core.divergence import tail as _tail

__all__ = [
    "DIVERGENCE_LIMIT",
    "FINAL_WINDOW",
    "oscillation",
    "mean_abs_step",
    "divergence_step",
    "is_diverged",
    "loss_summary",
    "seed_spread",
]


def oscillation(d_losses, window: int = FINAL_WINDOW) -> float:
    """Standard deviation (population) of the loss over its last `window` steps."""
    tail = _tail(d_losses, window)
    return float(np.std(tail)) if len(tail) else float("nan")


def mean_abs_step(values, window: int = FINAL_WINDOW) -> float:
    """Mean |l_t - l_{t-1}| over the last `window` steps: step-to-step jitter, which a slow
    drift (large std, small steps) does not inflate."""
    tail = _tail(values, window + 1)
    return float(np.mean(np.abs(np.diff(tail)))) if len(tail) > 1 else float("nan")


def is_diverged(values, limit: float = DIVERGENCE_LIMIT) -> bool:
    """True if any value is NaN or infinite, or its magnitude exceeds `limit`."""
    return divergence_step(values, limit) >= 0


def loss_summary(history: dict, window: int = FINAL_WINDOW) -> dict[str, float]:
    """Flat summary of every loss term of a run's history {name: [value per step]}:
    "<name>_mean" and "<name>_std" over the last `window` steps, "<name>_abs_step"
    (mean_abs_step), and for the run: "diverged" (1.0 or 0.0) and "diverged_step" (first
    bad step over all terms, -1 if none)."""
    out: dict[str, float] = {}
    first_bad = []
    with np.errstate(invalid="ignore", over="ignore"):  # a diverged run's NaN/inf give NaN, quietly
        for name, values in history.items():
            tail = _tail(values, window)
            out[f"{name}_mean"] = float(np.mean(tail)) if len(tail) else float("nan")
            out[f"{name}_std"] = oscillation(values, window)
            out[f"{name}_abs_step"] = mean_abs_step(values, window)
            step = divergence_step(values)
            if step >= 0:
                first_bad.append(step)
    out["diverged"] = 1.0 if first_bad else 0.0
    out["diverged_step"] = float(min(first_bad)) if first_bad else -1.0
    return out


def seed_spread(values, confidence: float = 0.95) -> dict[str, float]:
    """Mean, sample std (ddof 1) and the half-width of the Student-t confidence interval of
    one metric over seeds. With one seed, std and half-width are NaN."""
    from scipy import stats

    v = np.asarray(values, np.float64).ravel()
    n = len(v)
    if n == 0:
        raise ValueError("seed_spread needs at least one value")
    mean = float(np.mean(v))
    if n == 1:
        return {"mean": mean, "std": float("nan"), "ci_half_width": float("nan"), "n": 1.0}
    std = float(np.std(v, ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * std / math.sqrt(n))
    return {"mean": mean, "std": std, "ci_half_width": half, "n": float(n)}
