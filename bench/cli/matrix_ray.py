"""`genbench run/study --executor ray`: the driver's side of a matrix run on Ray.

run.py plans every experiment (reuse, evaluate or train; superseding) exactly as serially;
the planned jobs go to Ray as tasks (bench/runs/executors.py RayPool), and here their
outcomes are taken in as they finish: a line per experiment, the superseding of other
configurations, the tables re-rendered, one progress bar over the matrix (done, running,
failed). A task whose worker died past its retries gets a `failed` record (the next run
trains it again). Ctrl-C cancels what is left: running tasks write their `interrupted`
records, finished records stay, and the run exits 130 with the command that continues it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .options import EXIT_USAGE, UsageError

DEFAULT_MAX_RETRIES = 2


def executor_options(a) -> dict:
    """The executor options of `genbench run/study` (not part of any experiment's identity)."""
    ray = a.executor == "ray"
    for flag, value in (("--address", a.address), ("--ray-cpus-per-task", a.ray_cpus_per_task),
                        ("--ray-max-retries", a.ray_max_retries)):
        if value is not None and not ray:
            raise UsageError(f"{flag} is an option of the Ray executor: add --executor ray")
    for flag, value, low in (("--ray-cpus-per-task", a.ray_cpus_per_task, 1), ("--threads", a.threads, 1),
                             ("--ray-max-retries", a.ray_max_retries, 0)):
        if value is not None and value < low:
            raise UsageError(f"{flag} must be >= {low}, got {value}")
    if not ray:
        return {"executor": "serial", "threads": a.threads}
    cpus = a.ray_cpus_per_task or 1
    return {"executor": "ray", "address": a.address, "cpus_per_task": cpus, "threads": a.threads or cpus,
            "max_retries": DEFAULT_MAX_RETRIES if a.ray_max_retries is None else a.ray_max_retries}


def start(executor: dict, device: str, name: str):
    """A started RayPool, or the exit code after one line saying why Ray cannot be used."""
    from ..runs.executors import RAY_MISSING, ExecutorError, RayPool

    pool = RayPool(address=executor["address"], cpus_per_task=executor["cpus_per_task"],
                   gpus_per_task=1 if device == "cuda" else 0, max_retries=executor["max_retries"],
                   threads=executor["threads"])
    try:
        print(f"genbench {name}: {pool.start()}", flush=True)
    except ExecutorError as e:
        if str(e) == RAY_MISSING:
            print(f"genbench {name}: {e}", file=sys.stderr)
            return EXIT_USAGE
        raise UsageError(str(e)) from None
    return pool


def collect(pool, jobs: list[dict], out: Path, by_key: dict, statuses: dict, *, total: int, name: str,
            progress: bool, hint: str) -> str:
    """Submit `jobs` and take in their outcomes; "done", "interrupted" or "write_failed"."""
    from tqdm import tqdm

    from ..runs import records, tables
    from ..runs.executors import CLAIM_FILE, release
    from .run import _report, _supersede_others

    pool.submit(jobs)
    bar = tqdm(total=total, initial=len(statuses), desc=f"genbench {name}", unit="exp", disable=not progress,
               dynamic_ncols=True)

    def show():
        failed = sum(s in ("failed", "metrics_failed") for s in statuses.values())
        bar.set_postfix({"done": len(statuses), "running": pool.running(), "failed": failed}, refresh=True)

    def take(job, rec, error):
        eid = job["id"]
        release(out / eid / CLAIM_FILE)
        with tqdm.external_write_mode():
            if rec is not None:
                statuses[eid] = rec["status"]
                _report(eid, rec)
            elif error == "cancelled":
                statuses[eid] = "interrupted"
                print(f"  [{eid}] cancelled; an experiment stopped in training starts again from step 0", flush=True)
            else:
                statuses[eid] = "failed"
                _lost(job, error, out)
            _supersede_others(out, eid, by_key)
            if records.record_paths(out):  # a task cancelled before it started leaves none
                tables.render(out)
        bar.update(1)
        show()

    outcome = "done"
    try:
        show()
        while pool.pending:
            got = pool.next_done(timeout=1.0)
            if got is None:
                show()
            else:
                take(*got)
    except KeyboardInterrupt:
        outcome = "interrupted"
        with tqdm.external_write_mode():
            print(f"  interrupted: cancelling {len(pool.pending)} task(s); running ones write their records",
                  flush=True)
        try:
            for got in pool.cancel_all():
                take(*got)
        except records.WriteError as e:
            print(f"genbench {name}: error: {e}", file=sys.stderr)
        for job in pool.pending.values():
            statuses.setdefault(job["id"], "interrupted")
        print(f"  everything written so far is kept in {out}; `{hint}` continues", flush=True)
    except records.WriteError as e:
        print(f"genbench {name}: error: {e}; records already written are kept in {out}", file=sys.stderr)
        outcome = "write_failed"
    finally:
        bar.close()
    for job in jobs:  # never submitted or never reported (Ctrl-C, a write error): not run
        statuses.setdefault(job["id"], "interrupted" if outcome == "interrupted" else "failed")
    return outcome


def _lost(job: dict, error: str, out: Path) -> None:
    """A task that ended without a record of this attempt: keep a trained state if the worker
    saved one before it died, else write a `failed` record."""
    from ..core.specs import ExperimentSpec
    from ..runs import records
    from ..runs.runner import failed_record

    eid = job["id"]
    path = out / "records" / f"{eid}.json"
    try:
        rec = records.read_record(path) if path.exists() else None
    except records.RecordError:
        rec = None
    if job["action"] == "train" and rec is not None and rec.get("status") == "trained":
        print(f"  [{eid}] failed: {error}; its trained state is kept (the next run evaluates it)", flush=True)
        return
    if job["action"] == "evaluate":
        print(f"  [{eid}] failed: {error}; its record is left as it was (the next run evaluates it again)",
              flush=True)
        return
    failed_record(ExperimentSpec.from_dict(job["spec"]), job["framework"], out, f"training: {error}",
                  device=job["device"], profile=job["profile"], n_eval=job["n_eval"], command=job["command"])
    print(f"  [{eid}] failed: {error}; a failed record is written (the next run trains it again)", flush=True)
