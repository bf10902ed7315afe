"""Records: one JSON file per experiment run, written atomically, plus environment facts."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write to a temporary file in the same folder, then os.replace: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _jsonable(x):
    """Floats that JSON cannot carry (NaN, inf) become strings, so a diverged run still parses."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if hasattr(x, "item") and callable(x.item):  # NumPy scalars
        return _jsonable(x.item())
    return x


def write_record(path, record: dict) -> Path:
    return atomic_write_text(path, json.dumps(_jsonable(record), indent=2, sort_keys=True) + "\n")


def read_records(run_dir) -> list[dict]:
    run_dir = Path(run_dir)
    out = []
    for p in sorted((run_dir / "records").glob("*.json")):
        with open(p, encoding="utf-8") as f:
            out.append(json.load(f))
    return out


def as_float(x) -> float:
    """A record value back to float ('nan'/'inf' strings included)."""
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def versions() -> dict:
    out = {"python": platform.python_version()}
    for dist in ("genbench", "numpy", "torch", "tensorflow-cpu", "tensorflow", "keras", "torch-fidelity"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def git_revision(cwd=None) -> str:
    cwd = cwd or Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=cwd, capture_output=True,
                             text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if rev.returncode != 0:
        return "unknown"
    return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def host() -> dict:
    return {"machine": platform.machine(), "system": platform.system(), "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine()}
