"""The study's metrics that are not plain record metrics: those derived from a record's metrics
(DERIVED) and those read from an experiment's loss curve (`oscillation:<term>`, `drop:<term>`,
`drift:<term>`), with study/curves.json caching the loss-curve values so that verdicts can be
recomputed from committed records without the loss logs."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from .study_plan import STACKED


def read_losses(path) -> dict[str, np.ndarray]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {}
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0] if k not in ("step", "wall_s")}


def oscillation_index(x) -> float:
    """How jagged a loss curve looks on its own axes: the standard deviation of the final 10 %
    of steps around their linear trend (np.polyfit), over the spread of the whole curve (the
    5th to 95th percentile of its moving average, window n/50). Scale-free: a BCE loss that
    jitters around a constant scores high; a Wasserstein estimate that moves a long way and
    smoothly scores low."""
    x = np.asarray(x, np.float64)
    n = len(x)
    if n < 50 or not np.all(np.isfinite(x)):
        return float("nan")
    tail = x[-max(n // 10, 20) :]
    t = np.arange(len(tail))
    noise = float(np.std(tail - np.polyval(np.polyfit(t, tail, 1), t)))
    w = max(n // 50, 5)
    smooth = np.convolve(x, np.ones(w) / w, mode="valid")
    spread = float(np.percentile(smooth, 95) - np.percentile(smooth, 5))
    return noise / spread if spread > 0 else float("nan")


def relative_drop(x) -> float:
    """(mean of the first 1 % of steps - mean of the last 10 %) / |first|: the share by which a
    loss fell over training (negative when it rose)."""
    x = np.asarray(x, np.float64)
    first, last = np.mean(x[: max(len(x) // 100, 5)]), np.mean(x[-max(len(x) // 10, 20) :])
    return float((first - last) / abs(first)) if first != 0 else float("nan")


def relative_drift(x) -> float:
    """(mean of the last 10 % - mean of the 10 % before) / |mean of the first 1 % - mean of the
    last 10 %|: the share of the whole change still happening at the end (0 when flat)."""
    x = np.asarray(x, np.float64)
    k = max(len(x) // 10, 20)
    first, last, before = np.mean(x[: max(len(x) // 100, 5)]), np.mean(x[-k:]), np.mean(x[-2 * k : -k])
    total = abs(first - last)
    return float((last - before) / total) if total > 0 else float("nan")


CURVE_METRICS = {"oscillation": oscillation_index, "drop": relative_drop, "drift": relative_drift}
DERIVED = {
    "silhouette_gain": lambda m: m["latent_silhouette"] - m["pixel_silhouette"],
    # |log(sharpness / real sharpness)|: 0 when samples are as sharp as real images; blur (< 1)
    # and speckle noise (> 1) both move it up, so "clearer" means lower
    "sharpness_gap": lambda m: abs(math.log(m["sharpness_ratio"])),
}


# The real sharpness a Stacked MNIST run is held to. Its records carry the samples' `sharpness`
# (bench.metrics.laplacian_sharpness over every channel of every sample) and no reference: each
# channel of a real Stacked MNIST image is an MNIST digit, so the real images' expected value is
# the mean over MNIST digits, here over the whole test split (10,000 digits, the reference split of
# sharpness_metrics). suites/test_study_metrics.py recomputes it from the data.
STACKED_REAL_SHARPNESS = 0.15758313127211668


def with_references(rec: dict, m: dict) -> dict:
    """A record's metrics with the references its derived metrics need: for a Stacked MNIST
    record, sharpness_real (STACKED_REAL_SHARPNESS) and sharpness_ratio."""
    if (rec.get("spec") or {}).get("dataset") in STACKED and "sharpness" in m and "sharpness_ratio" not in m:
        r = STACKED_REAL_SHARPNESS
        return {**m, "sharpness_real": r, "sharpness_ratio": float(m["sharpness"]) / r}
    return m


CURVES_FILE = "curves.json"  # study/curves.json: the loss-curve metrics, kept with the records


def metric_value(rec: dict, metric: str, run_dir, curves: dict | None = None) -> float:
    """One record's value of a study metric: a record metric, a derived one (DERIVED), or a
    loss-curve one ("oscillation:d_loss") read from the experiment's losses.csv. `curves`
    ({record id: {metric: value}}, study/curves.json) caches the loss-curve values, so that a
    study's verdicts can be recomputed from its committed records without the loss logs."""
    if rec.get("status") not in ("ok", "diverged"):
        return float("nan")
    if ":" in metric:
        cached = (curves or {}).get(rec["id"], {})
        if metric in cached:
            return float(cached[metric])
        kind, term = metric.split(":", 1)
        path = Path(run_dir) / rec["id"] / "losses.csv"
        if not path.exists():
            return float("nan")
        series = read_losses(path)
        value = CURVE_METRICS[kind](series[term]) if term in series else float("nan")
        if curves is not None:
            curves.setdefault(rec["id"], {})[metric] = value
        return value
    m = with_references(rec, rec.get("metrics") or {})
    try:
        return float(DERIVED[metric](m)) if metric in DERIVED else float(m.get(metric, float("nan")))
    except (KeyError, TypeError, ValueError):
        return float("nan")


def cache_all_curves(recs: list[dict], run_dir, curves: dict) -> int:
    """Every loss-curve metric of every loss term of every record whose losses.csv is here, into
    `curves` ({record id: {"oscillation:d_loss": value, ...}}), so that any claims file can be
    judged on the committed records after the loss logs are gone; returns the records read."""
    n = 0
    for rec in recs:
        path = Path(run_dir) / str(rec.get("id")) / "losses.csv"
        if rec.get("status") not in ("ok", "diverged") or not path.exists():
            continue
        series = read_losses(path)
        entry = curves.setdefault(rec["id"], {})
        for term, values in series.items():
            for kind, fn in CURVE_METRICS.items():
                entry[f"{kind}:{term}"] = fn(values)
        n += 1
    return n
