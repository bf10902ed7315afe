"""`genbench run` and `genbench study`: options (or --resume), the data preflight, and the
matrix of experiments trained, evaluated or reused into one run folder."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from ..core import registry
from ..core.specs import CONVENTIONS, DATASETS
from .options import (EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, FRAMEWORK_CHOICES, RUN_DEFAULTS, UsageError,
                      _models, _seeds, _steps)


def _run_options(a) -> tuple[dict, Path | None]:
    """The run's options (RUN_DEFAULTS filled in) and its folder: from the command line, or
    with --resume from the newest invocation recorded in RUN_DIR/run.json."""
    if a.resume is None:
        return {k: (getattr(a, k) if getattr(a, k) not in (None, False) else v) for k, v in RUN_DEFAULTS.items()}, a.out
    given = [f"--{k.replace('_', '-')}" for k in (*RUN_DEFAULTS, "out", "fresh") if getattr(a, k) not in (None, False)]
    if given:
        raise UsageError(f"--resume RUN_DIR takes the options recorded in RUN_DIR/run.json; drop {', '.join(given)} "
                         f"(or use --out {a.resume} with the options you want)")
    if not a.resume.is_dir():
        raise UsageError(f"--resume {a.resume}: no such run folder")
    from ..runs.records import MANIFEST, read_manifest

    manifest = read_manifest(a.resume)
    if manifest is None:
        raise UsageError(f"--resume {a.resume}: no {MANIFEST} there (not a `genbench run` folder, or one made "
                         f"before run.json existed: run the original command with --out {a.resume})")
    recorded = manifest["invocations"][-1].get("options", {})
    return {k: recorded.get(k, v) for k, v in RUN_DEFAULTS.items()}, a.resume


def _preflight_data(specs, data_dir, metrics: bool) -> None:
    """Load every image split the matrix needs before anything is trained or written: a
    missing or corrupt dataset is bad input (one line, exit 2), not a failed experiment."""
    from ..core import data

    for ds in sorted({s.source_dataset for s in specs if s.is_image}):
        data.load(ds, "train", data_dir=data_dir)
        if metrics or any(s.has_encoder for s in specs if s.source_dataset == ds):
            data.load(ds, "test", data_dir=data_dir)


def cmd_run(a) -> int:
    from .matrix_ray import executor_options

    opts, out = _run_options(a)
    executor = executor_options(a)
    datasets = [d.strip() for d in str(opts["dataset"]).split(",") if d.strip()] if opts["dataset"] else None
    if datasets == []:
        raise UsageError("--dataset names no dataset")
    for d in datasets or ():
        if d not in DATASETS:
            raise UsageError(f"--dataset {d!r} is not one of {', '.join(DATASETS)}"
                             + registry.did_you_mean(d, DATASETS))
    if opts["framework"] not in FRAMEWORK_CHOICES:
        raise UsageError(f"--framework {opts['framework']!r} is not one of {', '.join(FRAMEWORK_CHOICES)}")
    frameworks = ("torch", "tensorflow") if opts["framework"] == "both" else (opts["framework"],)
    if opts["convention"] not in CONVENTIONS:
        raise UsageError(f"--convention {opts['convention']!r} is not one of {', '.join(CONVENTIONS)}"
                         + registry.did_you_mean(str(opts["convention"]), CONVENTIONS))
    models = _models(str(opts["models"])) if opts["models"] else None
    seeds, steps = _seeds(opts["seeds"]), _steps(opts["steps"])
    profile, metrics = opts["profile"], not opts["no_metrics"]
    data_dir = Path(opts["data_dir"]) if opts["data_dir"] else None
    device = _resolve_device(opts["device"])
    specs = registry.profile_experiments(profile, models, datasets, seeds, steps,
                                         float32_precision=opts["float32_precision"],
                                         convention=opts["convention"])
    _preflight_data(specs, data_dir, metrics)
    out = out or Path("results/runs") / f"{profile}-{time.strftime('%Y%m%d-%H%M%S')}"
    options = {**opts, "data_dir": str(data_dir.resolve()) if data_dir else None, "steps": steps}
    return run_matrix(specs, frameworks, out, profile=profile, device=device, metrics=metrics, data_dir=data_dir,
                      fresh=a.fresh, progress=not a.no_progress, command=a._command, options=options,
                      executor=executor, randomness=opts["randomness"])


def _resolve_device(device: str) -> str:
    """cpu, cuda or auto -> the device used; --device cuda without CUDA is bad input."""
    if device in ("cuda", "auto"):
        import torch

        if not torch.cuda.is_available():
            if device == "cuda":
                raise UsageError("--device cuda: no CUDA device here; use --device cpu")
            return "cpu"
        return "cuda"
    return device


def run_matrix(specs, frameworks, out: Path, *, profile: str, device: str, metrics: bool, data_dir, fresh: bool,
               progress: bool, command: list, options: dict, name: str = "run", select=None, resume_hint=None,
               executor: dict | None = None, randomness: str = "reproducible") -> int:
    """Train and evaluate specs x frameworks into the run folder `out` (records reused by identity
    hash, superseded and corrupt ones moved aside), then render the tables; the exit code.
    `select(i)` keeps only the i-th experiment of the matrix (sharding); None keeps all.
    `executor` (executor_options): serial in this process (None), or Ray tasks (matrix_ray.py)."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a run folder")

    from ..runs import records, tables
    from ..runs.executors import ExperimentBusy, claim, make_job, release, run_job
    from ..runs.runner import experiment_identity, plan

    executor = executor or {"executor": "serial", "threads": None}
    pool = None
    if executor["executor"] == "ray":
        from . import matrix_ray

        pool = matrix_ray.start(executor, device, name)
        if isinstance(pool, int):
            return pool
    try:
        records.append_invocation(out, {"command": command, "options": options, "device_used": device,
                                        "executor": executor, "started_at": records.now_iso(),
                                        "git_revision": records.git_revision()})
        existing, unreadable = records.scan_records(out)
        for path, why in unreadable:
            dest = records.move_aside(path, records.CORRUPT_DIR)
            print(f"genbench {name}: warning: {why}; moved to {dest}, treated as not run", file=sys.stderr)
    except records.WriteError as e:
        print(f"genbench {name}: error: {e}", file=sys.stderr)
        if pool is not None:
            pool.shutdown()
        return EXIT_FAILED
    by_key: dict[tuple, set[str]] = {}  # experiment key -> ids of its records in records/
    for rid, rec in existing.items():
        by_key.setdefault(records.experiment_key(rec), set()).add(rid)
    n_eval = registry.PROFILES[profile]["n_eval"]
    matrix = [(spec, fw) for spec in specs for fw in frameworks]
    matrix = [m for i, m in enumerate(matrix) if select is None or select(i)]
    total = len(matrix)
    hint = resume_hint or f"genbench run --resume {out}" + (" --executor ray" if pool is not None else "")
    print(f"genbench {name}: {total} experiment(s), profile {profile}, device {device}, out {out}", flush=True)
    statuses: dict[str, str] = {}
    jobs: list[dict] = []  # planned for Ray
    claims: dict[str, Path] = {}  # experiments this process holds (executors.claim)
    interrupted = write_failed = False
    t0 = time.perf_counter()
    for spec, fw in matrix:
        ident = experiment_identity(spec, fw, device=device, profile=profile, n_eval=n_eval, randomness=randomness)
        eid = ident["id"]
        job = None
        try:
            try:
                claims[eid] = claim(out, eid)
            except ExperimentBusy as e:
                print(f"  [{eid}] skipped: {e}; another genbench process is working on it", flush=True)
                statuses[eid] = "busy"
                continue
            prev = _current_record(out, eid, existing)
            action, why = plan(prev, ident, out / eid, metrics=metrics, fresh=fresh)
            if action == "reuse":
                print(f"  [{eid}] {prev['status']} record with this identity hash exists, reused "
                      f"(--fresh retrains)", flush=True)
                statuses[eid] = prev["status"]
            elif action == "train" and prev is not None and prev.get("status") in (
                    "ok", "diverged", "metrics_failed", "trained"):
                dest = records.move_aside(out / "records" / f"{eid}.json", records.SUPERSEDED_DIR)
                print(f"  [{eid}] retraining ({why}); the old record moved to {dest}", flush=True)
            elif action == "evaluate":
                print(f"  [{eid}] {why}", flush=True)
            if action != "reuse":
                job = make_job(action, spec, fw, out, eid, device=device, profile=profile, n_eval=n_eval,
                               data_dir=data_dir, metrics=metrics, command=command, prev=prev,
                               randomness=randomness)
            if job is not None and pool is not None:
                jobs.append(job)
                continue  # the record (and the claim's release) arrives later: matrix_ray.collect
            rec = run_job(job, progress=progress, threads=executor["threads"]) if job is not None else None
        except KeyboardInterrupt:
            print(f"  [{eid}] interrupted; everything written so far is kept in {out}; `{hint}` continues", flush=True)
            statuses[eid] = "interrupted"
            interrupted = True
        except records.WriteError as e:
            print(f"genbench {name}: error: {e}; records already written are kept in {out}", file=sys.stderr)
            statuses[eid] = "failed"
            write_failed = True
        else:
            if rec is not None:
                statuses[eid] = rec["status"]
                _report(eid, rec)
        release(claims.pop(eid, None))
        try:
            _supersede_others(out, eid, by_key)
        except records.WriteError as e:
            if not write_failed:
                print(f"genbench {name}: error: {e}", file=sys.stderr)
            write_failed = True
        if interrupted or write_failed:
            break
    if pool is not None:
        from . import matrix_ray

        try:
            if not (interrupted or write_failed):
                outcome = matrix_ray.collect(pool, jobs, out, by_key, statuses, total=total, name=name,
                                             progress=progress, hint=hint)
                interrupted, write_failed = outcome == "interrupted", outcome == "write_failed"
        finally:
            pool.shutdown()
    for path in claims.values():  # Ray jobs whose outcome never arrived
        release(path)
    if not write_failed and records.record_paths(out):
        try:
            written = tables.render(out)
        except records.WriteError as e:
            print(f"genbench {name}: error: {e}", file=sys.stderr)
            write_failed = True
        else:
            print(f"\n{(out / 'comparison.md').read_text()}")
            print(f"tables: {', '.join(str(p) for p in written.values())}")
    counts = {s: list(statuses.values()).count(s) for s in dict.fromkeys(statuses.values())}
    code = (EXIT_INTERRUPTED if interrupted else EXIT_FAILED if write_failed or
            any(s in ("failed", "metrics_failed") for s in statuses.values()) else EXIT_OK)
    print(f"{len(statuses)}/{total} experiment(s): " + ", ".join(f"{n} {s}" for s, n in counts.items())
          + f"; total wall time {time.perf_counter() - t0:.1f} s; exit {code}", flush=True)
    return code


def _shard(text: str | None):
    """'K/N' -> a predicate keeping every N-th experiment from the K-th; None keeps all."""
    if text is None:
        return None
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard {text!r}: expected K/N, e.g. 0/2") from None
    if n < 1 or not 0 <= k < n:
        raise UsageError(f"--shard {text!r}: need 0 <= K < N")
    return lambda i: i % n == k


def cmd_study(a) -> int:
    from ..runs import claims, study
    from .matrix_ray import executor_options

    executor = executor_options(a)
    claims_file = claims.load(a.claims)  # a bad file stops here, before any training

    datasets = [d.strip() for d in a.datasets.split(",") if d.strip()]
    for d in datasets:
        if d not in study.DATASETS:
            raise UsageError(f"--datasets {d!r} is not one of {', '.join(study.DATASETS)}"
                             + registry.did_you_mean(d, study.DATASETS))
    if not datasets:
        raise UsageError("--datasets names no dataset")
    select = _shard(a.shard)
    code = EXIT_OK
    if not a.verdicts_only:
        specs = study.study_specs(datasets, _seeds(a.seeds), a.budget)
        _preflight_data(specs, a.data_dir, True)
        frameworks = ("torch", "tensorflow") if a.framework == "both" else (a.framework,)
        options = {"datasets": datasets, "seeds": a.seeds, "budget": a.budget, "framework": a.framework,
                   "shard": a.shard, "data_dir": str(a.data_dir.resolve()) if a.data_dir else None}
        for profile, part in study.by_profile(specs):  # Stacked MNIST: its own evaluation sample count
            code = max(code, run_matrix(part, frameworks, a.out, profile=profile, device=_resolve_device(a.device),
                                        metrics=True, data_dir=a.data_dir, fresh=a.fresh, progress=not a.no_progress,
                                        command=a._command, options=options, name="study", select=select,
                                        resume_hint=" ".join(a._command), executor=executor))
            if code in (EXIT_INTERRUPTED, EXIT_USAGE):  # Ctrl-C, or the executor could not start
                return code
    from ..runs.records import record_paths

    if not record_paths(a.out):
        raise UsageError(f"{a.out}: no records to judge (run `genbench study --out {a.out}` first)")
    result = study.write_verdicts(a.out, claims_file, a.correction, a.allow_mixed_code)
    if result["code"]["allowed"]:
        print("genbench study: judging records of mixed code versions (--allow-mixed-code): "
              + ", ".join(f"{h}: {n}" for h, n in result["code"]["versions"].items()), file=sys.stderr)
    print(f"\n{(a.out / 'study' / 'verdicts.md').read_text().split(chr(10) + '## ')[0]}")
    print(f"verdicts: {a.out / 'study' / 'verdicts.json'}, {a.out / 'study' / 'verdicts.md'} "
          f"({sum(len(c['rows']) for c in result['claims'])} rows)")
    return code


def _current_record(out: Path, eid: str, existing: dict) -> dict | None:
    """The record under this id: in records/ (as scanned when the run started, or written
    since by another process into the same folder, e.g. another --shard), or, moved there by a
    run of another configuration, in records/superseded/ (then it moves back)."""
    from ..runs import records

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


def _supersede_others(out: Path, eid: str, by_key: dict[tuple, set[str]]) -> None:
    """Move every other record of the same experiment (same name, dataset, framework, seed;
    another identity hash) to records/superseded/: the tables show one configuration of each."""
    from ..runs import records

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


def _report(eid: str, rec: dict) -> None:
    losses = ", ".join(f"{k} {v:.4g}" for k, v in rec["final_losses"].items())
    timing = rec.get("timing", {})
    nan = float("nan")
    line = (f"  [{eid}] {rec['status']}: {rec['steps_done']} steps, {timing.get('ms_per_step', nan):.1f} "
            f"ms/step ({timing.get('loop_ms_per_step', nan):.1f} with the loop), "
            f"{timing.get('wall_s', nan):.1f} s; {losses}")
    if rec.get("error"):
        line += f"\n  [{eid}] {rec['status']}: {' '.join(str(rec['error']).split())}"
    print(line, flush=True)

