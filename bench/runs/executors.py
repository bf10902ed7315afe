"""How the experiments of a matrix are executed: one after the other in this process (serial),
or as Ray tasks on a local or remote Ray cluster.

Both paths execute the same plain-data job (`job`: what the CLI planned for one experiment,
built by `make_job`) with the same function, `run_job`, which calls bench/runs/runner.py
(`run_experiment` or `evaluate_saved`). On Ray the job runs in a worker process, which writes
the experiment's files and its record into the run folder itself, atomically, as the serial
path does: the run folder must therefore be on a filesystem that every worker sees (any
local folder on a one-machine cluster; a shared mount on a multi-node cluster).

Threads. A float sum depends on its order, and PyTorch and TensorFlow split their reductions
by thread count: a result is reproducible across the two paths only with the same intra-op
thread count. `pin_threads` sets it in the process that trains (the worker on Ray, where it
defaults to the task's CPUs; the CLI process serially, with --threads).

While a task runs, RUN_DIR/<experiment id>/worker.json names its process (pid, host,
started_at); it is removed when the task ends, so its presence means "running" (the progress
bar counts them) and a stale one names a process that died.

Claims. Two commands may work on one run folder at once (shards of a study, a second run
started by mistake): before it plans an experiment, the command that will train or evaluate it
claims it, RUN_DIR/<experiment id>/claim.json created exclusively (O_EXCL) with its pid, host
and time, and gives the claim back when the experiment's record is in. An experiment claimed by
a live process is skipped (its record counts when it lands), so two processes never write one
experiment's files at once; a claim whose process is gone (same host, no such pid) is taken over.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import time
from pathlib import Path

from . import records

WORKER_FILE = "worker.json"
CLAIM_FILE = "claim.json"
FRESH_CLAIM_S = 10.0  # an unreadable claim younger than this is being written: busy, not stale
ADDRESS_FORMS = "auto, HOST:PORT (a cluster's GCS, as `ray start --head` prints it) or ray://HOST:PORT (Ray Client)"
RAY_MISSING = "--executor ray needs Ray: pip install 'genbench[ray]'"


class ExecutorError(Exception):
    """The executor cannot start (Ray missing, an unreachable --address): one line, exit 2."""


class ExperimentBusy(Exception):
    """Another live process has claimed this experiment (its one-line description)."""


def claim(run_dir, eid: str) -> Path:
    """Claim experiment `eid` of `run_dir` for this process; the claim file. ExperimentBusy if a
    live process holds it (or one on another host, which cannot be checked from here)."""
    path = Path(run_dir) / eid / CLAIM_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    me = {"pid": os.getpid(), "host": socket.gethostname(), "claimed_at": records.now_iso()}
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _holder(path)
            if holder is not None:
                raise ExperimentBusy(
                    f"claimed by pid {holder.get('pid')} on {holder.get('host')} since "
                    f"{holder.get('claimed_at')} (if no such process runs, remove {path})"
                ) from None
            path.unlink(missing_ok=True)  # its process is gone: take it over
            continue
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(me) + "\n")
        return path
    raise ExperimentBusy(f"{path} keeps reappearing: another process is claiming it")


def _holder(path: Path) -> dict | None:
    """The live holder of a claim file, or None when the claim is stale (or already gone)."""
    try:
        text = path.read_text()
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return None
    try:
        holder = json.loads(text)
    except ValueError:  # being written this instant, or left half-written by a crash
        return {"pid": "?", "host": "?", "claimed_at": "just now"} if age < FRESH_CLAIM_S else None
    if holder.get("host") != socket.gethostname():
        return holder  # another machine's process: cannot be checked, so it counts as live
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return None
    except (PermissionError, KeyError, TypeError, ValueError):
        return holder
    return holder


def release(path: Path | None) -> None:
    """Give a claim back (only this process's own)."""
    if path is None:
        return
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink(missing_ok=True)
    except (FileNotFoundError, ValueError):
        pass


def make_job(
    action: str,
    spec,
    framework: str,
    run_dir: Path,
    eid: str,
    *,
    device: str,
    profile: str,
    n_eval: int,
    data_dir,
    metrics: bool,
    command: list,
    prev: dict | None,
    randomness: str = "reproducible",
) -> dict:
    """One experiment's work as plain data (JSON types only), for this process or a Ray worker."""
    return {
        "action": action,
        "id": eid,
        "spec": spec.to_dict(),
        "framework": framework,
        "run_dir": str(Path(run_dir).resolve()),
        "device": device,
        "profile": profile,
        "n_eval": int(n_eval),
        "data_dir": str(Path(data_dir).resolve()) if data_dir else None,
        "metrics": bool(metrics),
        "command": [str(c) for c in command],
        "prev": prev if action == "evaluate" else None,
        "randomness": randomness,
    }


def run_job(job: dict, *, progress: bool = False, threads: int | None = None) -> dict:
    """Train or evaluate one planned experiment; its record (also written under run_dir)."""
    from ..core.specs import ExperimentSpec
    from .runner import evaluate_saved, experiment_identity, run_experiment

    if threads:
        pin_threads(threads, job["framework"])
    spec = ExperimentSpec.from_dict(job["spec"])
    ident = experiment_identity(
        spec,
        job["framework"],
        device=job["device"],
        profile=job["profile"],
        n_eval=job["n_eval"],
        randomness=job["randomness"],
    )
    if ident["id"] != job["id"]:  # the spec did not survive the trip as data: refuse to write a record under it
        raise RuntimeError(f"job {job['id']}: rebuilt spec has identity {ident['id']}")
    data_dir = Path(job["data_dir"]) if job["data_dir"] else None
    if job["action"] == "evaluate":
        return evaluate_saved(
            spec,
            job["framework"],
            job["run_dir"],
            job["prev"],
            device=job["device"],
            data_dir=data_dir,
            metrics=job["metrics"],
            n_eval=job["n_eval"],
            command=job["command"],
        )
    return run_experiment(
        spec,
        job["framework"],
        job["run_dir"],
        device=job["device"],
        profile=job["profile"],
        data_dir=data_dir,
        progress=progress,
        metrics=job["metrics"],
        n_eval=job["n_eval"],
        command=job["command"],
        randomness=job["randomness"],
    )


def pin_threads(n: int, framework: str) -> None:
    """n threads, in this process, for every library that splits a float sum: PyTorch (which
    also computes the TensorFlow twins' FID, through torch-fidelity), TensorFlow (intra- and
    inter-op) when it trains, and the BLAS and OpenMP runtimes behind NumPy, SciPy and
    scikit-learn (the metrics' PCA, distances, matrix square roots), limited through
    threadpoolctl once they are loaded. No environment variable is set: setenv in a process
    whose threads read the environment can crash it. TensorFlow fixes its pools when its
    context starts: after that, another count raises RuntimeError (the same count is accepted)."""
    import scipy.linalg  # noqa: F401
    import sklearn.metrics  # noqa: F401
    import torch
    from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

    import impls  # noqa: F401 - loads triton before TensorFlow (impls/__init__.py: the other order segfaults)

    torch.set_num_threads(n)
    if framework == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(n)
    threadpool_limits(limits=n)


def pin_process(n: int) -> list[int]:
    """This process on the first n cores it may use, and every library at n threads (both
    frameworks' pools), as a worker of `--jobs` trains: for timing one worker's share of a
    machine. Returns the cores. ValueError when n is not between 1 and the cores available;
    RuntimeError from TensorFlow when its pools already run at another count."""
    cores = sorted(os.sched_getaffinity(0))
    if not 1 <= n <= len(cores):
        raise ValueError(f"needs 1 to {len(cores)} threads (the cores this process may use), not {n}")
    os.sched_setaffinity(0, set(cores[:n]))
    pin_threads(n, "tensorflow")
    return cores[:n]


def worker_file(run_dir, eid: str) -> Path:
    return Path(run_dir) / eid / WORKER_FILE


def run_announced(job: dict, threads: int) -> dict:
    """The body of a Ray task or a worker process: announce this process in worker.json, run
    the job, tidy up."""
    marker = worker_file(job["run_dir"], job["id"])
    marker.parent.mkdir(parents=True, exist_ok=True)
    records.atomic_write_text(
        marker, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started_at": records.now_iso()}) + "\n"
    )
    try:
        return run_job(job, progress=False, threads=threads)
    finally:
        marker.unlink(missing_ok=True)


def check_address(address: str | None) -> None:
    """ExecutorError unless `address` is None, auto, HOST:PORT or ray://HOST:PORT with something
    listening there (checked with a 5 s TCP connect: Ray itself waits minutes on a dead port)."""
    if address is None or address == "auto":
        return
    m = re.fullmatch(r"(ray://)?([A-Za-z0-9_.\-]+|\[[0-9A-Fa-f:]+\]):(\d{1,5})", address)
    if not m or not 0 < int(m.group(3)) < 65536:
        raise ExecutorError(f"--address {address!r}: expected {ADDRESS_FORMS}")
    host, port = m.group(2).strip("[]"), int(m.group(3))
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as e:
        raise ExecutorError(
            f"--address {address}: nothing answers at {host}:{port} ({e.strerror or e}); "
            f"start a cluster there with `ray start --head` or fix the address"
        ) from None


class RayPool:
    """The Ray side of a run: start or join a cluster, submit jobs as tasks, hand back their
    outcomes as they finish, cancel the rest on Ctrl-C."""

    kind = "ray"
    matrix_bar = True

    def __init__(self, *, address: str | None, cpus_per_task: int, gpus_per_task: int, max_retries: int, threads: int):
        self.address, self.cpus, self.gpus = address, cpus_per_task, gpus_per_task
        self.max_retries, self.threads = max_retries, threads
        self.ray = None
        self.pending: dict = {}  # ObjectRef -> job

    def start(self) -> str:
        """Connect (or start a local Ray); a one-line description of the cluster."""
        check_address(self.address)
        try:
            import ray
        except ImportError:
            raise ExecutorError(RAY_MISSING) from None
        self.ray = ray
        os.environ.setdefault("RAY_DEDUP_LOGS", "1")
        # the workers' own output (TensorFlow's start-up lines) stays in the cluster's log folder
        kwargs = {
            "include_dashboard": False,
            "log_to_driver": False,
            "logging_level": logging.WARNING,
            "runtime_env": {"env_vars": {"TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}},
        }
        try:
            if self.address is None:
                ray.init(address="local", num_cpus=len(os.sched_getaffinity(0)), **kwargs)
            else:
                ray.init(address=self.address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as e:
            why = " ".join(str(e).split())[:300]
            if self.address not in (None, "auto") and os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
                # Ray enables token authentication on `ray start --head` when a token exists, but a
                # client given an explicit address does not send one unless told to (docs/scale.md)
                why += (
                    "; if the cluster uses token authentication (Ray's default once a token exists, "
                    "e.g. ~/.ray/auth_token), set RAY_AUTH_MODE=token with the cluster's token in "
                    "~/.ray/auth_token, RAY_AUTH_TOKEN_PATH or RAY_AUTH_TOKEN (docs/scale.md)"
                )
            raise ExecutorError(f"--address {self.address or 'local'}: cannot start or join Ray: {why}") from None
        res = ray.cluster_resources()
        where = "local" if self.address is None else self.address
        return (
            f"Ray {ray.__version__} ({where}): {int(res.get('CPU', 0))} CPU, {int(res.get('GPU', 0))} GPU, "
            f"{self.cpus} CPU{f' + {self.gpus} GPU' if self.gpus else ''} and {self.threads} thread(s) "
            f"per task, {self.max_retries} retr{'y' if self.max_retries == 1 else 'ies'} on a lost worker"
        )

    def submit(self, jobs: list[dict]) -> None:
        task = self.ray.remote(run_announced).options(
            num_cpus=self.cpus, num_gpus=self.gpus, max_retries=self.max_retries, retry_exceptions=False
        )
        for job in jobs:
            worker_file(job["run_dir"], job["id"]).unlink(missing_ok=True)  # left by a worker that was killed
            self.pending[task.remote(job, self.threads)] = job

    def steps_report(self) -> list[str]:
        return []

    def spare_cores(self) -> list[int]:
        return []  # the cluster's cores are Ray's to schedule, not this process's

    def running(self) -> int:
        """Pending tasks whose worker announced itself (worker.json present)."""
        return sum(worker_file(j["run_dir"], j["id"]).exists() for j in self.pending.values())

    def next_done(self, timeout: float = 1.0):
        """(job, record, error) of a finished task, or None after `timeout` seconds. error is
        None, or one line: the task raised, was cancelled, or lost its worker past its retries."""
        ray = self.ray
        done, _ = ray.wait(list(self.pending), num_returns=1, timeout=timeout)
        if not done:
            return None
        ref = done[0]
        job = self.pending.pop(ref)
        try:
            return job, ray.get(ref), None
        except ray.exceptions.TaskCancelledError:
            return job, None, "cancelled"
        except ray.exceptions.RayTaskError as e:
            cause = getattr(e, "cause", None)
            if isinstance(cause, records.WriteError):
                raise cause from None
            if isinstance(cause, KeyboardInterrupt):
                return job, None, "cancelled"
            return (
                job,
                None,
                f"the task raised {type(cause).__name__ if cause else 'an error'}: "
                + " ".join(str(cause or e).split())[:300],
            )
        except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError, ray.exceptions.RayError) as e:
            return (
                job,
                None,
                (
                    f"its worker process died ({type(e).__name__}) and "
                    f"{self.max_retries} retr{'y' if self.max_retries == 1 else 'ies'} did not finish it"
                ),
            )

    def cancel_all(self, grace_s: float = 20.0):
        """Cancel every pending task (a running one gets KeyboardInterrupt and writes an
        interrupted record, as on Ctrl-C serially); yield each outcome that arrives within grace_s."""
        for ref in list(self.pending):
            self.ray.cancel(ref, force=False)
        deadline = time.monotonic() + grace_s
        while self.pending and time.monotonic() < deadline:
            out = self.next_done(timeout=max(0.1, deadline - time.monotonic()))
            if out is not None:
                yield out

    def shutdown(self) -> None:
        if self.ray is not None and self.ray.is_initialized():
            self.ray.shutdown()
