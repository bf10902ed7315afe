"""One planned experiment in a worker process of the process executor (bench/runs/pools.py):

    python -m bench.runs.worker RUN_DIR/<id>/worker-job.json --threads N --cores 0,1 [--parent PID]

Pins itself to the cores, then runs the job exactly as the serial executor does
(executors.run_job: the same record, files and thread pinning), writes its outcome,
RUN_DIR/<id>/worker-result.json, atomically ({"outcome": "record", "record": ...}, "cancelled"
(SIGINT: the interrupted record is written first), "write_error" or "error") and exits at once.
While it runs, RUN_DIR/<id>/worker.json names its process, as on Ray.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path


def _die_with_parent(parent: int | None) -> None:
    """Linux: SIGINT to this process when its parent dies (no orphan keeps training an
    experiment whose claim is then free); elsewhere nothing."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGINT), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if parent is not None and os.getppid() != parent:  # it died before the prctl
        raise KeyboardInterrupt


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.runs.worker", description=__doc__.split("\n\n")[0])
    p.add_argument("job", type=Path)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--cores", default=None, help="comma-separated core ids to pin this process to")
    p.add_argument("--parent", type=int, default=None)
    a = p.parse_args(argv)
    if a.cores:
        os.sched_setaffinity(0, {int(c) for c in a.cores.split(",")})
    from ..core import cpu

    cpu.apply_tf_onednn()  # before the twin imports TensorFlow, as in the CLI
    from . import records
    from .executors import run_announced
    from .pools import RESULT_FILE

    job = json.loads(a.job.read_text())
    exp_dir = Path(job["run_dir"]) / job["id"]
    code = 0
    try:
        _die_with_parent(a.parent)
        result = {"outcome": "record", "record": run_announced(job, a.threads)}
    except KeyboardInterrupt:
        result, code = {"outcome": "cancelled"}, 130
    except records.WriteError as e:
        result, code = {"outcome": "write_error", "path": str(e.path), "error": str(e)}, 1
    except Exception as e:  # noqa: BLE001 - handed to the parent as one line
        result, code = {"outcome": "error", "error": f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"}, 1
    records.atomic_write_text(exp_dir / RESULT_FILE, json.dumps(records.jsonable(result)) + "\n")
    return code


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # the outcome is on disk: end now, without the interpreter's teardown of TensorFlow and
    # PyTorch (1-2 s during which the pool would not see the core free)
    os._exit(status)
