"""Executors of a planned matrix on one machine: serial (this process) and process (N worker
processes at once, each pinned to its share of the cores). The Ray executor (executors.RayPool)
has the same interface, so bench/runs/matrix.py collects every executor's outcomes through one
path:

    start() -> str                      one line describing the executor
    submit(jobs)                        take planned jobs (bench/runs/executors.make_job)
    pending: dict                       submitted jobs whose outcome has not been handed back
    running() -> int                    how many run now
    spare_cores() -> list[int]          the cores idling while the last jobs run (nothing queued)
    steps_report() -> list[str]         each running worker's step (empty where a step bar shows it)
    next_done(timeout) -> (job, record, error) | None
    cancel_all(grace_s) -> iterator of (job, record, error)
    shutdown()

error is None (the record is the outcome), "cancelled", or one line saying why the job ended
without a record (its worker died).

Process workers. Each job runs in a fresh `python -m bench.runs.worker` process (its own
session, so a Ctrl-C at the terminal reaches only this process, which forwards one SIGINT to
each running worker: each writes its `interrupted` record as a serial run does). A worker's
output goes to RUN_DIR/<id>/worker.log; it writes its outcome to RUN_DIR/<id>/worker-result.json.
On Linux a worker gets SIGINT when this process dies, so no orphan goes on training an
experiment whose claim is then free. Cores: with N jobs on C cores (os.sched_getaffinity) each
worker is pinned to C // N cores (one each when N >= C, shared round-robin) and runs that many
threads unless --threads says otherwise.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

from . import records
from .executors import run_job

JOB_FILE = "worker-job.json"
RESULT_FILE = "worker-result.json"
LOG_FILE = "worker.log"


class SerialPool:
    """One job after another in this process (the default executor)."""

    kind = "serial"
    matrix_bar = False  # each experiment shows its own step bar instead

    def __init__(self, *, threads: int | None = None, progress: bool = True):
        self.threads, self.progress = threads, progress
        self.queue: deque = deque()
        self.pending: dict = {}
        self._interrupted: dict | None = None

    def start(self) -> str:
        return "serial, in this process" + (f", {self.threads} thread(s)" if self.threads else "")

    def submit(self, jobs: list[dict]) -> None:
        for job in jobs:
            self.queue.append(job)
            self.pending[job["id"]] = job

    def running(self) -> int:
        return 0

    def spare_cores(self) -> list[int]:
        return []  # the one experiment in training has every core

    def steps_report(self) -> list[str]:
        return []  # the experiment's own step bar shows them

    def next_done(self, timeout: float = 1.0):
        if not self.queue:
            return None
        job = self.queue.popleft()
        try:
            rec = run_job(job, progress=self.progress, threads=self.threads)
        except KeyboardInterrupt:  # the runner wrote its interrupted record
            self._interrupted = job
            raise
        except BaseException:
            self.pending.pop(job["id"], None)
            raise
        self.pending.pop(job["id"], None)
        return job, rec, None

    def cancel_all(self, grace_s: float = 0.0):
        if self._interrupted is not None:
            job, self._interrupted = self._interrupted, None
            self.pending.pop(job["id"], None)
            yield job, None, "cancelled"
        self.queue.clear()

    def shutdown(self) -> None:
        self.queue.clear()


def core_slots(n_jobs: int, cores=None) -> list[list[int]]:
    """The cores of each of n_jobs workers: C // n_jobs of them each, or one each shared
    round-robin when n_jobs > C."""
    cores = sorted(os.sched_getaffinity(0) if cores is None else cores)
    if n_jobs >= len(cores):
        return [[cores[i % len(cores)]] for i in range(n_jobs)]
    per = len(cores) // n_jobs
    return [cores[i * per : (i + 1) * per] for i in range(n_jobs)]


class ProcessPool:
    """n_jobs experiments at once, each in its own worker process pinned to its cores."""

    kind = "process"
    matrix_bar = True

    def __init__(self, n_jobs: int, *, threads: int | None = None, cores=None):
        self.n_jobs, self.cores = n_jobs, cores
        self.slots = core_slots(n_jobs, cores)
        self.threads = threads
        self.queue: deque = deque()
        self.pending: dict = {}
        self.procs: dict[int, tuple[subprocess.Popen, dict]] = {}  # slot -> (process, job)

    def start(self) -> str:
        per = len(self.slots[0])
        return (
            f"{len(self.slots)} worker processes at once, each pinned to {per} core(s), "
            f"{self.threads or per} thread(s) each"
        )

    def submit(self, jobs: list[dict]) -> None:
        """Queue jobs; fewer jobs than workers get more cores each (one job: all of them)."""
        if not self.procs and not self.queue:
            self.slots = core_slots(min(self.n_jobs, max(1, len(jobs))), self.cores)
        for job in jobs:
            self.queue.append(job)
            self.pending[job["id"]] = job

    def running(self) -> int:
        return len(self.procs)

    def steps_report(self) -> list[str]:
        """'<id> step/steps' of each running worker, from the rows of its losses.csv."""
        out = []
        for _, job in self.procs.values():
            path = Path(job["run_dir"]) / job["id"] / "losses.csv"
            try:
                with open(path, "rb") as f:
                    done = max(0, f.read().count(b"\n") - 1)
            except OSError:
                done = 0
            name = job["id"].rsplit("__", 1)[0]
            out.append(f"{name} {done}/{job['spec']['steps']}" if job["action"] == "train" else f"{name} evaluating")
        return out

    def _launch(self) -> None:
        for slot, cores in enumerate(self.slots):
            if slot in self.procs or not self.queue:
                continue
            job = self.queue.popleft()
            exp_dir = Path(job["run_dir"]) / job["id"]
            exp_dir.mkdir(parents=True, exist_ok=True)
            (exp_dir / RESULT_FILE).unlink(missing_ok=True)
            records.atomic_write_text(exp_dir / JOB_FILE, json.dumps(job) + "\n")
            threads = self.threads or len(cores)
            env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
            with open(exp_dir / LOG_FILE, "w") as log:
                proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "bench.runs.worker",
                        str(exp_dir / JOB_FILE),
                        "--threads",
                        str(threads),
                        "--cores",
                        ",".join(map(str, cores)),
                        "--parent",
                        str(os.getpid()),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )
            self.procs[slot] = (proc, job)

    def _finished(self):
        for slot, (proc, job) in list(self.procs.items()):
            if proc.poll() is not None:
                del self.procs[slot]
                self.pending.pop(job["id"], None)
                self._launch()  # the freed cores take the next job before its outcome is handled
                return self._outcome(job, proc.returncode)
        return None

    def spare_cores(self) -> list[int]:
        """With nothing queued and some workers still running, the cores none of them holds."""
        if self.queue or not self.procs:
            return []
        held = {c for slot in self.procs for c in self.slots[slot]}
        return sorted({c for cores in self.slots for c in cores} - held)

    def next_done(self, timeout: float = 1.0):
        deadline = time.monotonic() + timeout
        while True:
            self._launch()
            got = self._finished()
            if got is not None or time.monotonic() >= deadline or not self.procs:
                return got
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    @staticmethod
    def _outcome(job: dict, returncode: int):
        exp_dir = Path(job["run_dir"]) / job["id"]
        try:
            result = json.loads((exp_dir / RESULT_FILE).read_text())
        except (FileNotFoundError, ValueError):
            result = None
        if result is None:
            how = f"was killed by signal {-returncode}" if returncode < 0 else f"exited with status {returncode}"
            return job, None, f"its worker process {how} without a result (log: {exp_dir / LOG_FILE})"
        if result.get("outcome") == "record":
            return job, result["record"], None
        if result.get("outcome") == "cancelled":
            return job, None, "cancelled"
        if result.get("outcome") == "write_error":
            raise records.WriteError(result.get("path", exp_dir), OSError(result.get("error", "write failed")))
        return job, None, f"the worker raised {result.get('error', 'an error')}"

    def cancel_all(self, grace_s: float = 60.0):
        """Cancel queued jobs; send each running worker one SIGINT and take its outcome (it writes
        its interrupted record); a worker still running after grace_s is killed."""
        while self.queue:
            job = self.queue.popleft()
            self.pending.pop(job["id"], None)
            yield job, None, "cancelled"
        for proc, _ in self.procs.values():
            _signal(proc, signal.SIGINT)
        deadline = time.monotonic() + grace_s
        while self.procs and time.monotonic() < deadline:
            got = self._finished()
            if got is None:
                time.sleep(0.1)
            else:
                yield got
        for slot, (proc, job) in list(self.procs.items()):
            _signal(proc, signal.SIGKILL)
            proc.wait()
            del self.procs[slot]
            self.pending.pop(job["id"], None)
            yield job, None, "cancelled"

    def shutdown(self) -> None:
        self.queue.clear()
        for proc, _ in self.procs.values():
            _signal(proc, signal.SIGKILL)
            proc.wait()
        self.procs.clear()


def _signal(proc: subprocess.Popen, sig: int) -> None:
    try:
        proc.send_signal(sig)
    except ProcessLookupError:
        pass


def make_pool(executor: dict, cfg):
    """The executor that `executor` (the CLI's executor options) names, not started yet."""
    if executor["executor"] == "ray":
        from .executors import RayPool

        return RayPool(
            address=executor["address"],
            cpus_per_task=executor["cpus_per_task"],
            gpus_per_task=1 if cfg.device == "cuda" else 0,
            max_retries=executor["max_retries"],
            threads=executor["threads"],
        )
    if executor["executor"] == "process":
        return ProcessPool(executor["jobs"], threads=executor["threads"])
    return SerialPool(threads=executor["threads"], progress=cfg.progress)
