"""The experiment matrix as a library: plan every experiment of specs x frameworks against a run
folder (reuse, evaluate from a saved state, or train; superseding other configurations), hand
the planned jobs to an executor, and take their records back through one path, whatever the
executor: serial (this process), process (N worker processes at once) or Ray.

    cfg = MatrixConfig(profile="quick", device="cpu")
    outcome = run_matrix(specs, ("torch", "tensorflow"), Path("results/runs/x"), cfg, SerialPool())
    outcome.code  # 0 ok, 1 failed, 130 interrupted (the CLI's exit status)

Printing: one line per experiment, the tables at the end, and a progress bar over the matrix
for the executors that run several experiments at once.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from ..core import registry
from ..core.specs import ExperimentSpec
from . import figures, records, tables
from .executors import CLAIM_FILE, ExperimentBusy, claim, make_job, release
from .runner import experiment_identity, failed_record, plan

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


class MatrixError(ValueError):
    """The matrix cannot run as asked (bad output folder): one line, bad input."""


@dataclass(frozen=True)
class MatrixConfig:
    """What every experiment of one matrix run shares (none of it but the profile, device and
    randomness enters an experiment's identity)."""

    profile: str
    device: str = "cpu"
    metrics: bool = True
    data_dir: Path | None = None
    fresh: bool = False
    progress: bool = True
    command: tuple = ()
    options: dict = field(default_factory=dict)
    name: str = "run"
    randomness: str = "reproducible"
    resume_hint: str | None = None
    select: object = None  # i -> bool: keep the i-th experiment of the matrix (sharding); None keeps all

    @property
    def n_eval(self) -> int:
        return registry.PROFILES[self.profile]["n_eval"]


@dataclass
class MatrixOutcome:
    statuses: dict
    total: int
    interrupted: bool = False
    write_failed: bool = False

    @property
    def code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.write_failed or any(s in ("failed", "metrics_failed") for s in self.statuses.values()):
            return EXIT_FAILED
        return EXIT_OK


def run_matrix(specs, frameworks, out: Path, cfg: MatrixConfig, pool) -> MatrixOutcome:
    """Train and evaluate specs x frameworks into the run folder `out` with executor `pool`
    (started here, shut down at the end), then render the tables. `frameworks` is a tuple, or a
    function spec -> tuple when experiments differ in it (the study's plan: more seeds in PyTorch)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise MatrixError(f"--out {out} is a file, not a run folder")
    name = cfg.name
    described = pool.start()  # ExecutorError (Ray missing, a dead --address) before anything is written
    matrix = [(spec, fw) for spec in specs for fw in (frameworks(spec) if callable(frameworks) else frameworks)]
    matrix = [m for i, m in enumerate(matrix) if cfg.select is None or cfg.select(i)]
    outcome = MatrixOutcome(statuses={}, total=len(matrix))
    try:
        records.append_invocation(
            out,
            {
                "command": list(cfg.command),
                "options": cfg.options,
                "device_used": cfg.device,
                "executor": pool.kind,
                "started_at": records.now_iso(),
                "git_revision": records.git_revision(),
            },
        )
        existing, unreadable = records.scan_records(out)
        for path, why in unreadable:
            dest = records.move_aside(path, records.CORRUPT_DIR)
            print(f"genbench {name}: warning: {why}; moved to {dest}, treated as not run", file=sys.stderr)
    except records.WriteError as e:
        print(f"genbench {name}: error: {e}", file=sys.stderr)
        pool.shutdown()
        outcome.write_failed = True
        return outcome
    by_key: dict[tuple, set[str]] = {}  # experiment key -> ids of its records in records/
    for rid, rec in existing.items():
        by_key.setdefault(records.experiment_key(rec), set()).add(rid)
    hint = cfg.resume_hint or f"genbench run --resume {out}"
    print(
        f"genbench {name}: {outcome.total} experiment(s), profile {cfg.profile}, device {cfg.device}, out {out}; "
        f"{described}",
        flush=True,
    )
    jobs: list[dict] = []
    t0 = time.perf_counter()
    try:
        for spec, fw in matrix:
            job = _plan_one(spec, fw, out, cfg, existing, outcome.statuses, by_key)
            if job is not None:
                jobs.append(job)
        _collect(pool, jobs, out, by_key, outcome, cfg, hint)
    except records.WriteError as e:
        print(f"genbench {name}: error: {e}; records already written are kept in {out}", file=sys.stderr)
        outcome.write_failed = True
    finally:
        pool.shutdown()
        for job in jobs:  # planned but never reported (Ctrl-C, a write error): give the claim back
            release(out / job["id"] / CLAIM_FILE)
    if not outcome.write_failed and records.record_paths(out):
        try:
            written = tables.render(out)
        except records.WriteError as e:
            print(f"genbench {name}: error: {e}", file=sys.stderr)
            outcome.write_failed = True
        else:
            print(f"\n{(out / 'comparison.md').read_text()}")
            print(f"tables: {', '.join(str(p) for p in written.values())}")
    statuses = outcome.statuses
    counts = {s: list(statuses.values()).count(s) for s in dict.fromkeys(statuses.values())}
    print(
        f"{len(statuses)}/{outcome.total} experiment(s): "
        + ", ".join(f"{n} {s}" for s, n in counts.items())
        + f"; total wall time {time.perf_counter() - t0:.1f} s; exit {outcome.code}",
        flush=True,
    )
    return outcome


def _plan_one(
    spec: ExperimentSpec, fw: str, out: Path, cfg: MatrixConfig, existing: dict, statuses: dict, by_key: dict
) -> dict | None:
    """Claim and plan one experiment: its job, or None (reused, or busy in another process)."""
    ident = experiment_identity(
        spec, fw, device=cfg.device, profile=cfg.profile, n_eval=cfg.n_eval, randomness=cfg.randomness
    )
    eid = ident["id"]
    try:
        held = claim(out, eid)
    except ExperimentBusy as e:
        print(f"  [{eid}] skipped: {e}; another genbench process is working on it", flush=True)
        statuses[eid] = "busy"
        return None
    prev = current_record(out, eid, existing)
    action, why = plan(prev, ident, out / eid, metrics=cfg.metrics, fresh=cfg.fresh)
    if action == "reuse":
        print(
            f"  [{eid}] {prev['status']} record with this identity hash exists, reused (--fresh retrains)", flush=True
        )
        statuses[eid] = prev["status"]
        release(held)
        supersede_others(out, eid, by_key)
        return None
    if action == "train" and prev is not None and prev.get("status") in ("ok", "diverged", "metrics_failed", "trained"):
        dest = records.move_aside(out / "records" / f"{eid}.json", records.SUPERSEDED_DIR)
        print(f"  [{eid}] retraining ({why}); the old record moved to {dest}", flush=True)
    elif action == "evaluate":
        print(f"  [{eid}] {why}", flush=True)
    return make_job(
        action,
        spec,
        fw,
        out,
        eid,
        device=cfg.device,
        profile=cfg.profile,
        n_eval=cfg.n_eval,
        data_dir=cfg.data_dir,
        metrics=cfg.metrics,
        command=list(cfg.command),
        prev=prev,
        randomness=cfg.randomness,
    )


def _collect(
    pool, jobs: list[dict], out: Path, by_key: dict, outcome: MatrixOutcome, cfg: MatrixConfig, hint: str
) -> None:
    """Submit `jobs` to the pool and take in their outcomes as they finish: a line each, the
    superseding of other configurations, the tables re-rendered while several run at once."""
    statuses = outcome.statuses
    pool.submit(jobs)
    bar = tqdm(
        total=outcome.total,
        initial=len(statuses),
        desc=f"genbench {cfg.name}",
        unit="exp",
        disable=not (cfg.progress and pool.matrix_bar),
        dynamic_ncols=True,
    )

    def show():
        failed = sum(s in ("failed", "metrics_failed") for s in statuses.values())
        post = {"done": len(statuses), "running": pool.running(), "failed": failed}
        steps = pool.steps_report()
        if steps:
            post["steps"] = "; ".join(steps)
        bar.set_postfix(post, refresh=True)

    def take(job, rec, error):
        eid = job["id"]
        release(out / eid / CLAIM_FILE)
        with tqdm.external_write_mode():
            if rec is not None:
                statuses[eid] = rec["status"]
                report_line(eid, rec)
            elif error == "cancelled":
                statuses[eid] = "interrupted"
                print(f"  [{eid}] interrupted; an experiment stopped in training starts again from step 0", flush=True)
            else:
                statuses[eid] = "failed"
                lost(job, error, out)
            supersede_others(out, eid, by_key)
            if pool.matrix_bar and records.record_paths(out):
                tables.render(out)
                spare = pool.spare_cores()
                if spare:
                    predraw(out, spare)
        bar.update(1)
        show()

    try:
        show()
        while pool.pending:
            got = pool.next_done(timeout=1.0)
            if got is None:
                show()
            else:
                take(*got)
    except KeyboardInterrupt:
        outcome.interrupted = True
        with tqdm.external_write_mode():
            print(
                f"  interrupted: stopping {len(pool.pending)} experiment(s); running ones write their records",
                flush=True,
            )
        try:
            for got in pool.cancel_all():
                take(*got)
        except records.WriteError as e:
            print(f"genbench {cfg.name}: error: {e}", file=sys.stderr)
            outcome.write_failed = True
        print(f"  everything written so far is kept in {out}; `{hint}` continues", flush=True)
    finally:
        bar.close()
    for job in jobs:  # never started or never reported (Ctrl-C, a write error): not run
        statuses.setdefault(job["id"], "interrupted" if outcome.interrupted else "failed")


def predraw(out: Path, cores: list[int]) -> None:
    """Draw the figures of the experiments finished so far (RUN_DIR/figures, as the report does)
    on `cores`, the ones idling while the last workers run, with one thread per core (t-SNE's
    OpenMP threads on a worker's core would slow both), so that the report at the end draws only
    the last ones. Best effort: the report draws again, and says what it cannot draw."""
    from threadpoolctl import threadpool_limits

    keep = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, cores)
        with threadpool_limits(limits=len(cores)):
            figures.write_figures(out, list(records.scan_records(out)[0].values()))
    except (records.RecordError, OSError, ValueError):
        pass
    finally:
        os.sched_setaffinity(0, keep)


def lost(job: dict, error: str, out: Path) -> None:
    """A job that ended without a record of this attempt (its worker died, or raised): keep a
    trained state if the worker saved one before it died, else write a `failed` record under
    the job's own identity (its randomness mode included)."""
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
        print(f"  [{eid}] failed: {error}; its record is left as it was (the next run evaluates it again)", flush=True)
        return
    written = failed_record(
        ExperimentSpec.from_dict(job["spec"]),
        job["framework"],
        out,
        f"training: {error}",
        device=job["device"],
        profile=job["profile"],
        n_eval=job["n_eval"],
        command=job["command"],
        randomness=job["randomness"],
    )
    if written["id"] != eid:  # the identity is computed in one place: a mismatch is a bug, not a result
        raise RuntimeError(f"failed record of {eid} written under {written['id']}")
    print(f"  [{eid}] failed: {error}; a failed record is written (the next run trains it again)", flush=True)


def current_record(out: Path, eid: str, existing: dict) -> dict | None:
    """The record under this id: in records/ (as scanned when the run started, or written
    since by another process into the same folder, e.g. another --shard), or, moved there by a
    run of another configuration, in records/superseded/ (then it moves back)."""
    if eid in existing:
        return existing[eid]
    fresh = out / "records" / f"{eid}.json"
    if fresh.exists():
        try:
            return records.read_record(fresh)
        except records.RecordError:
            return None
    old = out / "records" / records.SUPERSEDED_DIR / f"{eid}.json"
    if old.exists():
        try:
            rec = records.read_record(old)
        except records.RecordError:
            return None
        try:
            os.replace(old, out / "records" / f"{eid}.json")
        except OSError as e:
            raise records.WriteError(out / "records" / f"{eid}.json", e) from e
        print(f"  [{eid}] back from records/{records.SUPERSEDED_DIR}/", flush=True)
        return rec
    return None


def supersede_others(out: Path, eid: str, by_key: dict[tuple, set[str]]) -> None:
    """Move every other record of the same experiment (same name, dataset, framework, seed;
    another identity hash) to records/superseded/: the tables show one configuration of each."""
    current = out / "records" / f"{eid}.json"
    if not current.exists():
        return
    key = records.experiment_key(records.read_record(current))
    for other in sorted(by_key.get(key, set()) - {eid}):
        path = out / "records" / f"{other}.json"
        if path.exists():
            dest = records.move_aside(path, records.SUPERSEDED_DIR)
            print(f"  [{eid}] replaces {path.name} (another configuration), moved to {dest}", flush=True)
    by_key[key] = {eid}


def report_line(eid: str, rec: dict) -> None:
    losses = ", ".join(f"{k} {v:.4g}" for k, v in rec["final_losses"].items())
    timing = rec.get("timing", {})
    nan = float("nan")
    line = (
        f"  [{eid}] {rec['status']}: {rec['steps_done']} steps, {timing.get('ms_per_step', nan):.1f} "
        f"ms/step ({timing.get('loop_ms_per_step', nan):.1f} with the loop), "
        f"{timing.get('wall_s', nan):.1f} s; {losses}"
    )
    if rec.get("error"):
        line += f"\n  [{eid}] {rec['status']}: {' '.join(str(rec['error']).split())}"
    print(line, flush=True)
