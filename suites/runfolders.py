"""What the executor suites share (test_ray.py, test_jobs.py): running genbench in a subprocess,
reading a run folder, waiting for a worker, and the comparator of two runs of one experiment
within the float32 error model stated below.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.core import registry
from bench.runs import records

ROOT = Path(__file__).resolve().parent.parent
RING = ["--profile", "smoke", "--dataset", "ring8", "--no-progress"]


def _env(**extra) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **extra)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def _genbench(*args, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT,
        timeout=timeout,
    )


def _start(*args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.cli", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(),
        cwd=ROOT,
    )


def _records(run_dir: Path) -> dict[str, dict]:
    return {r["id"]: r for r in records.read_records(run_dir)}


def _losses(run_dir: Path, eid: str) -> list[dict]:
    """losses.csv without its wall-clock column, as floats."""
    with open(run_dir / eid / "losses.csv", newline="") as f:
        return [{k: float(v) for k, v in row.items() if k != "wall_s"} for row in csv.DictReader(f)]


# The error model. Both paths train with one thread, so every parameter update is the same
# float32 arithmetic in the same order; what may still differ is how a logged total of k
# float32 terms (d_loss = real + fake + penalty) is associated, which a graph optimizer or a
# vectorized kernel may choose per process (seen: TensorFlow's WGAN-GP d_loss, 1 ulp on some
# steps, every term equal). Each association rounds k - 1 times by at most u |partial sum| <=
# u sum|terms|, in either run: per step |a - b| <= 2 (k - 1) u sum|terms|. The bound is per
# step and does not grow: a trajectory that really differed (another thread count, another
# random stream) leaves it within a few steps, since GAN training amplifies any difference.
F32_UNIT_ROUNDOFF = 2.0**-24


def _step_tolerance(row: dict) -> float:
    terms = [abs(v) for k, v in row.items() if k != "step"]
    return 2 * (len(terms) - 1) * F32_UNIT_ROUNDOFF * sum(terms)


def _first_difference(run_a: Path, run_b: Path, eid: str) -> str | None:
    """The first result in which two runs of one experiment differ beyond the error model:
    losses.csv step by step; the final losses (window means: within the largest step
    tolerance); the loss-history metrics (means, stds, mean absolute steps: within twice it);
    every other field and metric exactly (they come from the same trained weights)."""
    a, b = (
        records.read_record(run_a / "records" / f"{eid}.json"),
        records.read_record(run_b / "records" / f"{eid}.json"),
    )
    for key in ("spec_hash", "status", "steps_done", "metrics_evaluated"):
        if a.get(key) != b.get(key):
            return f"{eid}: {key} differs: {a.get(key)!r} vs {b.get(key)!r}"
    rows_a, rows_b = _losses(run_a, eid), _losses(run_b, eid)
    if [r["step"] for r in rows_a] != [r["step"] for r in rows_b] or list(rows_a[0]) != list(rows_b[0]):
        return f"{eid}: losses.csv has other steps or columns"
    eps = 0.0
    for ra, rb in zip(rows_a, rows_b):
        tol = _step_tolerance(ra)
        eps = max(eps, tol)
        for k in ra:
            if abs(ra[k] - rb[k]) > tol:
                return f"{eid}: step {ra['step']:.0f} {k} {ra[k]!r} vs {rb[k]!r}, beyond {tol:.2g}"
    terms = set(a["final_losses"])
    if set(b["final_losses"]) != terms or set(a["metrics"]) != set(b["metrics"]):
        return f"{eid}: other loss terms or metrics"
    for k in terms:
        if abs(a["final_losses"][k] - b["final_losses"][k]) > eps:
            return f"{eid}: final {k} {a['final_losses'][k]!r} vs {b['final_losses'][k]!r}, beyond {eps:.2g}"
    for k, va in a["metrics"].items():
        vb = b["metrics"][k]
        from_losses = any(k == f"{t}{s}" for t in terms for s in ("_mean", "_std", "_abs_step"))
        same = abs(va - vb) <= 2 * eps if from_losses and isinstance(va, float) else json.dumps(va) == json.dumps(vb)
        if not same:
            return f"{eid}: metric {k} {va!r} vs {vb!r}" + (f", beyond {2 * eps:.2g}" if from_losses else "")
    return None


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _worker(run_dir: Path, eid: str, *, not_pid=None) -> dict | None:
    """RUN_DIR/<id>/worker.json of a running task (another than not_pid), once it has trained a few steps."""
    try:
        info = json.loads((run_dir / eid / "worker.json").read_text())
        rows = (run_dir / eid / "losses.csv").read_text().count("\n")
    except (OSError, ValueError):
        return None
    return info if rows > 20 and info["pid"] != not_pid else None


def _ids(models: str, frameworks=("torch",), seeds=(0,), steps=None, dataset="ring8", profile="smoke") -> list[str]:
    """The identity ids the CLI must give, computed from the registry, not read from a run."""
    from bench.cli.options import _models
    from bench.runs.runner import experiment_identity

    n_eval = registry.PROFILES[profile]["n_eval"]
    specs = registry.profile_experiments(profile, _models(models), [dataset], list(seeds), steps)
    return [experiment_identity(s, fw, profile=profile, n_eval=n_eval)["id"] for s in specs for fw in frameworks]
