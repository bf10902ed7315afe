"""Records: one JSON file per experiment run, its identity, its saved training state, and how
every file of a run folder is written (atomically, mode 0644).

Identity. An experiment's identity is the SHA-256 of its fully resolved spec (every field,
so a field added later takes part without a change here) together with everything else that
changes its result: framework, execution variant, device, profile (which fixes the number of
evaluation samples), that number, and the randomness mode. Its id, which names the record
and the experiment's folder, stays readable: ``<name>__<dataset>__<framework>__s<seed>__<first
8 hex of the hash>``. A record is reused only when its stored ``spec_hash`` is the full hash
of the experiment asked for; the code version is recorded (``git_revision``), not hashed.

States (``status``): ``trained`` (training finished, state saved, evaluation pending), ``ok``,
``diverged`` (bench/core/divergence.py), ``metrics_failed`` (a figure or a metric raised; the
error is in ``error``), ``failed`` (training raised), ``interrupted`` (Ctrl-C; ``phase`` says
in training or in evaluation). See bench/runs/runner.py for the transitions.

Reading. The functions here hand back each file as written (dicts, which the runner updates);
bench/runs/schema.py checks them on the way in and gives the typed views (Record, Manifest,
RunFolder).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import io
import json
import math
import os
import platform
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path

from ..core.randomness import RANDOMNESS_MODES
from .schema import (
    MANIFEST,
    SCHEMA_VERSION,
    NewerSchemaError,
    RecordError,
    RunFolder,
    load_manifest,
    load_record,
    read_json,
)
from .schema import REQUIRED as REQUIRED  # the names the run folder's files share, kept here as well
from .schema import STATE_FILE as STATE_FILE
from .schema import STATUSES as STATUSES

IDENTITY_VERSION = 3  # 2: float32 twins draw their random inputs in float32; 3: dropout keep
# decisions from 16-bit raw draws (bench/core/randomness.py)
FILE_MODE = 0o644
CORRUPT_DIR = "corrupt"  # unreadable records are moved here by `genbench run`, never deleted
SUPERSEDED_DIR = "superseded"  # records replaced by a newer configuration of the same experiment


class WriteError(OSError):
    """A file of the run folder could not be written (disk full, permissions): one line that
    names the file. The previous content of that file is intact (writes are atomic)."""

    def __init__(self, path, cause: OSError):
        super().__init__(cause.errno, cause.strerror or str(cause))
        self.path = Path(path)

    def __str__(self) -> str:
        return f"cannot write {self.path}: {self.strerror}"


# -- files ---------------------------------------------------------------------------------
def _write(f, data: bytes, path: Path) -> None:
    """The one place bytes reach a run folder's files (`path` is the final name)."""
    f.write(data)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write to a temporary file in the same folder, fsync, chmod 0644, then os.replace:
    readers never see half a file, and a failure leaves the previous file as it was."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                _write(f, data, path)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, FILE_MODE)  # mkstemp makes 0600
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except WriteError:
        raise
    except OSError as e:
        raise WriteError(path, e) from e
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def jsonable(x):
    """Floats that JSON cannot carry (NaN, inf) become strings, so a diverged run still parses."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {k: jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if hasattr(x, "item") and callable(x.item):  # NumPy scalars
        return jsonable(x.item())
    return x


def write_record(path, record: dict) -> Path:
    return atomic_write_text(path, json.dumps(jsonable(record), indent=2, sort_keys=True) + "\n")


def read_record(path) -> dict:
    """One record, every key as written; RecordError (one line naming the file, and the field
    where one is wrong) if it is not a readable record (bench/runs/schema.py load_record)."""
    return load_record(path).raw


def record_paths(run_dir) -> list[Path]:
    return RunFolder(run_dir).record_paths()


def read_records(run_dir) -> list[dict]:
    """Every current record of a run folder (records/*.json, not the corrupt/ or superseded/
    ones). A record that cannot be read is a RecordError naming it: a table never silently
    leaves a result out. `genbench run` on the folder moves such a file aside and retrains it."""
    good, bad = RunFolder(run_dir).scan()
    if bad:
        raise RecordError(
            f"{bad[0][1]}; `genbench run --resume {run_dir}` (or the same command with --out) moves "
            f"it to records/{CORRUPT_DIR}/ and retrains it"
        )
    return [rec.raw for rec in good]


def scan_records(run_dir) -> tuple[dict[str, dict], list[tuple[Path, str]]]:
    """({record id: record}, [(path, error)] of the unreadable ones)."""
    good, bad = RunFolder(run_dir).scan()
    return {rec.id: rec.raw for rec in good}, bad


def move_aside(path, sub: str) -> Path:
    """Move records/<name> to records/<sub>/<name> (a numbered name if that exists): kept, out
    of the tables."""
    path = Path(path)
    dest_dir = path.parent / sub
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / path.name
    n = 1
    while dest.exists():
        dest = dest_dir / f"{path.stem}.{n}{path.suffix}"
        n += 1
    try:
        os.replace(path, dest)
    except OSError as e:
        raise WriteError(dest, e) from e
    return dest


def as_float(x) -> float:
    """A record value back to float ('nan'/'inf' strings included)."""
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


# -- identity ------------------------------------------------------------------------------
def canonical_json(obj) -> str:
    return json.dumps(jsonable(obj), sort_keys=True, separators=(",", ":"))


def identity(
    spec,
    framework: str,
    *,
    variant: str,
    device: str,
    profile: str | None,
    n_eval: int,
    randomness: str = "reproducible",
) -> dict:
    """{"hash", "id", "inputs"}: see the module docstring. `inputs` is what was hashed
    besides the spec (the spec itself is stored whole in the record). `randomness`: where a
    step's random inputs come from (bench/core/randomness.py RANDOMNESS_MODES)."""
    if randomness not in RANDOMNESS_MODES:
        raise ValueError(f"randomness {randomness!r} is not one of {', '.join(RANDOMNESS_MODES)}")
    inputs = {
        "identity_version": IDENTITY_VERSION,
        "framework": framework,
        "variant": variant,
        "device": device,
        "profile": profile,
        "n_eval": int(n_eval),
        "randomness": randomness,
    }
    digest = hashlib.sha256(canonical_json({"spec": spec.to_dict(), **inputs}).encode()).hexdigest()
    return {
        "hash": digest,
        "id": f"{spec.name}__{spec.dataset}__{framework}__s{spec.seed}__{digest[:8]}",
        "inputs": inputs,
    }


def experiment_key(rec: dict) -> tuple:
    """What two records of different configurations share when one replaces the other."""
    return rec["experiment"], rec["dataset"], rec["framework"], rec["seed"]


# -- the run folder's manifest -------------------------------------------------------------
def read_manifest(run_dir) -> dict | None:
    """RUN_DIR/run.json: every `genbench run` into this folder, its command and its resolved
    options, newest last (`genbench run --resume` repeats the newest). None if absent."""
    path = Path(run_dir) / MANIFEST
    if not path.exists():
        return None
    try:
        return load_manifest(path).raw
    except NewerSchemaError:
        raise
    except RecordError as e:
        raise RecordError(f"{e}; pass the options again with --out {run_dir}") from None


def append_invocation(run_dir, invocation: dict) -> Path:
    path = Path(run_dir) / MANIFEST
    try:
        doc = read_manifest(run_dir) or {}
    except NewerSchemaError:
        doc = read_json(path)  # a newer genbench's manifest: kept whole, this invocation appended
    except RecordError:
        doc = {}  # an unreadable manifest is replaced; records never depend on it
    doc["schema_version"] = max(doc.get("schema_version") or 0, SCHEMA_VERSION)
    doc.setdefault("invocations", []).append(invocation)
    return atomic_write_text(path, json.dumps(jsonable(doc), indent=2) + "\n")


# -- training state ------------------------------------------------------------------------
def save_state(path, weights: dict) -> dict:
    """The trainer's canonical weights (get_weights()) as an npz, atomically; returns the
    record's "state" entry: file name and SHA-256."""
    import numpy as np

    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in weights.items()})
    data = buf.getvalue()
    atomic_write_bytes(path, data)
    return {"file": Path(path).name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def save_arrays(path, **arrays) -> Path:
    """Named arrays as an npz, atomically (a figure's data, such as a VAE's latent means)."""
    import numpy as np

    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return atomic_write_bytes(path, buf.getvalue())


def load_state(path, sha256: str | None = None) -> dict:
    """The saved weights; RecordError if the file is missing, changed or unreadable."""
    import zipfile

    import numpy as np

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise RecordError(f"training state {path} cannot be read: {e.strerror or e}") from None
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise RecordError(f"training state {path} does not match the SHA-256 its record stores")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise RecordError(f"training state {path} is corrupt: {e}") from None


# -- environment facts ---------------------------------------------------------------------
def now_iso() -> str:
    """The current time, ISO 8601 UTC with a Z, to the second."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def versions() -> dict:
    out = {"python": platform.python_version()}
    for dist in ("genbench", "numpy", "torch", "tensorflow-cpu", "tensorflow", "keras", "torch-fidelity"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def git_revision(cwd=None) -> str:
    cwd = cwd or Path(__file__).resolve().parents[2]
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if rev.returncode != 0:
        return "unknown"
    return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def host() -> dict:
    return {
        "machine": platform.machine(),
        "system": platform.system(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
    }
