"""The regression gate: compare a run's metrics with a committed baseline.

A baseline (results/baselines/*.json) lists checks:
  {"experiment", "dataset", "framework", "metric", "value", "direction", "tolerance"}
direction "lower" (lower is better: regressed if current > value + tolerance), "higher"
(regressed if current < value - tolerance) or "both" (regressed if |current - value| >
tolerance). The current value is the mean over the run's seeds; a check whose experiment is
missing from the run, or whose value is NaN/inf, fails. `make_baseline` derives each
tolerance from the spread over seeds: max(k * std, rel_floor * |mean|, abs_floor).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from tabulate import tabulate

from .records import as_float, atomic_write_text, read_records
from .tables import flat_row

DIRECTIONS = {
    "fid": "lower", "kid_mean": "lower", "class_kl": "lower", "mode_kl": "lower",
    "classes_covered": "higher", "modes_covered": "higher", "high_quality_share": "higher",
    "precision": "higher", "recall": "higher", "isc_mean": "higher",
    "test_elbo": "higher", "knn_accuracy": "higher", "iwae_nll": "lower",
}
GATED_PREFIXES = ("final.",)  # loss terms: "both"


class BaselineError(ValueError):
    pass


def _key(row) -> tuple:
    return row["experiment"], row["dataset"], row["framework"]


def current_values(run_dir) -> dict[tuple, dict[str, list[float]]]:
    out: dict[tuple, dict[str, list[float]]] = {}
    for rec in read_records(run_dir):
        row = flat_row(rec)
        vals = out.setdefault(_key(row), {})
        for k, v in row.items():
            if k not in ("experiment", "dataset", "framework"):
                vals.setdefault(k, []).append(v if k == "status" else as_float(v))
    return out


def load_baseline(path) -> dict:
    path = Path(path)
    if not path.exists():
        raise BaselineError(f"baseline {path} not found; make one with `genbench baseline RUN_DIR --out {path}`")
    try:
        base = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise BaselineError(f"baseline {path} is not valid JSON: {e}") from None
    checks = base.get("checks")
    if not isinstance(checks, list) or not checks:
        raise BaselineError(f"baseline {path} has no 'checks' list")
    need = {"experiment", "dataset", "framework", "metric", "value", "direction", "tolerance"}
    for i, c in enumerate(checks):
        missing = need - set(c)
        if missing:
            raise BaselineError(f"baseline {path} check {i} lacks {', '.join(sorted(missing))}")
        if c["direction"] not in ("lower", "higher", "both"):
            raise BaselineError(f"baseline {path} check {i}: direction must be lower, higher or both")
    return base


def evaluate(run_dir, baseline: dict) -> list[dict]:
    current = current_values(run_dir)
    rows = []
    for c in baseline["checks"]:
        key = (c["experiment"], c["dataset"], c["framework"])
        vals = current.get(key, {}).get(c["metric"])
        value, tol, direction = float(c["value"]), float(c["tolerance"]), c["direction"]
        if vals is None:
            now, ok, why = float("nan"), False, "missing from run"
        else:
            finite = [v for v in vals if isinstance(v, float) and math.isfinite(v)]
            now = float(np.mean(finite)) if len(finite) == len(vals) else float("nan")
            if not math.isfinite(now):
                ok, why = False, "not finite (diverged?)"
            elif direction == "lower":
                ok, why = now <= value + tol, "worse (higher)"
            elif direction == "higher":
                ok, why = now >= value - tol, "worse (lower)"
            else:
                ok, why = abs(now - value) <= tol, "changed"
        rows.append({**key_dict(key), "metric": c["metric"], "baseline": value, "current": now,
                     "delta": now - value, "tolerance": tol, "direction": direction,
                     "result": "ok" if ok else f"REGRESSED: {why}"})
    return rows


def key_dict(key) -> dict:
    return dict(zip(("experiment", "dataset", "framework"), key))


def format_report(rows: list[dict]) -> str:
    cols = ["experiment", "dataset", "framework", "metric", "baseline", "current", "delta", "tolerance",
            "direction", "result"]
    return tabulate([[r[c] for c in cols] for r in rows], headers=cols, tablefmt="github", floatfmt=".4g")


def gate(run_dir, baseline_path) -> tuple[bool, str]:
    rows = evaluate(run_dir, load_baseline(baseline_path))
    failed = [r for r in rows if r["result"] != "ok"]
    summary = f"{len(rows) - len(failed)}/{len(rows)} checks passed"
    return not failed, format_report(rows) + "\n\n" + summary


def make_baseline(run_dir, out_path, *, k_std=4.0, rel_floor=0.1, abs_floor=0.05, profile=None,
                  command=None) -> Path:
    """A baseline from a run (ideally several seeds): every loss term and every directed metric."""
    checks = []
    for key, vals in sorted(current_values(run_dir).items()):
        if vals.get("status") and any(s != "ok" for s in vals["status"]):
            raise BaselineError(f"{key} did not finish ok in {run_dir}; a baseline needs clean runs")
        for metric, vs in sorted(vals.items()):
            direction = DIRECTIONS.get(metric, "both" if metric.startswith(GATED_PREFIXES) else None)
            if direction is None:
                continue
            arr = np.asarray(vs, dtype=float)
            if not np.all(np.isfinite(arr)):
                continue
            mean = float(arr.mean())
            std = float(arr.std(ddof=1)) if len(arr) > 1 else 0.0
            tol = max(k_std * std, rel_floor * abs(mean), abs_floor)
            checks.append({**key_dict(key), "metric": metric, "value": mean, "direction": direction,
                           "tolerance": tol, "seeds": len(arr), "std": std})
    if not checks:
        raise BaselineError(f"no gated metrics found under {run_dir}")
    doc = {"profile": profile, "command": command, "rule": f"tolerance = max({k_std} std over seeds, "
           f"{rel_floor} |mean|, {abs_floor})", "checks": checks}
    return atomic_write_text(out_path, json.dumps(doc, indent=2) + "\n")
