"""`genbench run` and `genbench study`: options (or --resume), the data preflight, and the
matrix of experiments trained, evaluated or reused into one run folder."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from ..core import registry
from ..core.specs import CONVENTIONS, DATASETS
from ..runs.executors import RAY_MISSING, ExecutorError
from ..runs.matrix import MatrixConfig, MatrixError, run_matrix
from ..runs.pools import make_pool
from .options import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    FRAMEWORK_CHOICES,
    RUN_DEFAULTS,
    UsageError,
    _models,
    _seeds,
    _steps,
)

DEFAULT_MAX_RETRIES = 2


# experiments at once when --jobs is not given: measured on 2 cores (docs/timing.md, "The main job"),
# the main job ran 1.21x faster as two one-thread workers than serially with two threads
DEFAULT_JOBS = 2


def default_jobs() -> int:
    """--jobs when not given: GENBENCH_JOBS if set (the test suite sets 1), else DEFAULT_JOBS
    capped at this process's cores (1: serial, in this process)."""
    given = os.environ.get("GENBENCH_JOBS")
    if given is not None:
        try:
            jobs = int(given)
        except ValueError:
            raise UsageError(f"GENBENCH_JOBS={given!r}: expected a positive integer") from None
        if jobs < 1:
            raise UsageError(f"GENBENCH_JOBS={given!r}: expected a positive integer")
        return jobs
    return max(1, min(DEFAULT_JOBS, len(os.sched_getaffinity(0))))


def executor_options(a) -> dict:
    """How the matrix runs (--executor, --jobs, --threads and the Ray options; none of them is
    part of an experiment's identity), checked; "flags" repeats them for the resume hint."""
    ray = a.executor == "ray"
    for flag, value in (
        ("--address", a.address),
        ("--ray-cpus-per-task", a.ray_cpus_per_task),
        ("--ray-max-retries", a.ray_max_retries),
    ):
        if value is not None and not ray:
            raise UsageError(f"{flag} is an option of the Ray executor: add --executor ray")
    for flag, value, low in (
        ("--ray-cpus-per-task", a.ray_cpus_per_task, 1),
        ("--threads", a.threads, 1),
        ("--ray-max-retries", a.ray_max_retries, 0),
        ("--jobs", a.jobs, 1),
    ):
        if value is not None and value < low:
            raise UsageError(f"{flag} must be >= {low}, got {value}")
    if ray and a.jobs is not None:
        raise UsageError(
            "--jobs runs worker processes on this machine; with --executor ray, Ray runs as many "
            "experiments at once as its CPUs allow (--ray-cpus-per-task each)"
        )
    flags = "".join(
        f" --{k.replace('_', '-')} {v}" for k, v in (("jobs", a.jobs), ("threads", a.threads)) if v is not None
    )
    if not ray:
        jobs = a.jobs or default_jobs()
        return {"executor": "serial" if jobs == 1 else "process", "jobs": jobs, "threads": a.threads, "flags": flags}
    cpus = a.ray_cpus_per_task or 1
    return {
        "executor": "ray",
        "address": a.address,
        "cpus_per_task": cpus,
        "threads": a.threads or cpus,
        "max_retries": DEFAULT_MAX_RETRIES if a.ray_max_retries is None else a.ray_max_retries,
        "flags": " --executor ray" + flags + (f" --address {a.address}" if a.address else ""),
    }


def _run_options(a) -> tuple[dict, Path | None]:
    """The run's options (RUN_DEFAULTS filled in) and its folder: from the command line, or
    with --resume from the newest invocation recorded in RUN_DIR/run.json."""
    if a.resume is None:
        return {k: (getattr(a, k) if getattr(a, k) not in (None, False) else v) for k, v in RUN_DEFAULTS.items()}, a.out
    given = [f"--{k.replace('_', '-')}" for k in (*RUN_DEFAULTS, "out", "fresh") if getattr(a, k) not in (None, False)]
    if given:
        raise UsageError(
            f"--resume RUN_DIR takes the options recorded in RUN_DIR/run.json; drop {', '.join(given)} "
            f"(or use --out {a.resume} with the options you want)"
        )
    if not a.resume.is_dir():
        raise UsageError(f"--resume {a.resume}: no such run folder")
    from ..runs.records import MANIFEST, read_manifest

    manifest = read_manifest(a.resume)
    if manifest is None:
        raise UsageError(
            f"--resume {a.resume}: no {MANIFEST} there (not a `genbench run` folder, or one made "
            f"before run.json existed: run the original command with --out {a.resume})"
        )
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
    opts, out = _run_options(a)
    executor = executor_options(a)
    datasets = [d.strip() for d in str(opts["dataset"]).split(",") if d.strip()] if opts["dataset"] else None
    if datasets == []:
        raise UsageError("--dataset names no dataset")
    for d in datasets or ():
        if d not in DATASETS:
            raise UsageError(
                f"--dataset {d!r} is not one of {', '.join(DATASETS)}" + registry.did_you_mean(d, DATASETS)
            )
    if opts["framework"] not in FRAMEWORK_CHOICES:
        raise UsageError(f"--framework {opts['framework']!r} is not one of {', '.join(FRAMEWORK_CHOICES)}")
    frameworks = ("torch", "tensorflow") if opts["framework"] == "both" else (opts["framework"],)
    if opts["convention"] not in CONVENTIONS:
        raise UsageError(
            f"--convention {opts['convention']!r} is not one of {', '.join(CONVENTIONS)}"
            + registry.did_you_mean(str(opts["convention"]), CONVENTIONS)
        )
    models = _models(str(opts["models"])) if opts["models"] else None
    seeds, steps = _seeds(opts["seeds"]), _steps(opts["steps"])
    profile, metrics = opts["profile"], not opts["no_metrics"]
    data_dir = Path(opts["data_dir"]) if opts["data_dir"] else None
    device = _resolve_device(opts["device"])
    specs = registry.profile_experiments(
        profile,
        models,
        datasets,
        seeds,
        steps,
        float32_precision=opts["float32_precision"],
        convention=opts["convention"],
    )
    _preflight_data(specs, data_dir, metrics)
    out = out or Path("results/runs") / f"{profile}-{time.strftime('%Y%m%d-%H%M%S')}"
    options = {**opts, "data_dir": str(data_dir.resolve()) if data_dir else None, "steps": steps}
    cfg = MatrixConfig(
        profile=profile,
        device=device,
        metrics=metrics,
        data_dir=data_dir,
        fresh=a.fresh,
        progress=not a.no_progress,
        command=tuple(a._command),
        options=options,
        randomness=opts["randomness"],
        resume_hint=f"genbench run --resume {out}" + executor["flags"],
    )
    code = _run(specs, frameworks, out, cfg, executor)
    if code == EXIT_OK:  # after a failure its line stays the last word; `genbench report` draws the page
        _write_page(out, "run")
    return code


def _write_page(out: Path, name: str) -> None:
    """RUN_DIR/report.html (grids, loss curves, the comparison or the verdicts), its path printed;
    a page that cannot be drawn is one line on stderr and leaves the exit code alone."""
    from ..runs.records import RecordError, WriteError
    from ..runs.report import write_report

    try:
        print(f"report: {write_report(out)}  (open it in a browser)")
    except (RecordError, WriteError, OSError, ValueError) as e:
        print(f"genbench {name}: no report.html: {e}", file=sys.stderr)


def _run(specs, frameworks, out: Path, cfg: MatrixConfig, executor: dict) -> int:
    """The matrix with the executor the options name; its exit code."""
    pool = make_pool(executor, cfg)
    try:
        return run_matrix(specs, frameworks, out, cfg, pool).code
    except MatrixError as e:
        raise UsageError(str(e)) from None
    except ExecutorError as e:
        if str(e) == RAY_MISSING:
            print(f"genbench {cfg.name}: {e}", file=sys.stderr)
            return EXIT_USAGE
        raise UsageError(str(e)) from None


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

    executor = executor_options(a)
    claims_file = claims.load(a.claims)  # a bad file stops here, before any training
    datasets = [d.strip() for d in a.datasets.split(",") if d.strip()]
    for d in datasets:
        if d not in study.DATASETS:
            raise UsageError(
                f"--datasets {d!r} is not one of {', '.join(study.DATASETS)}" + registry.did_you_mean(d, study.DATASETS)
            )
    if not datasets:
        raise UsageError("--datasets names no dataset")
    select = _shard(a.shard)
    code = EXIT_OK
    if not a.verdicts_only:
        frameworks = ("torch", "tensorflow") if a.framework == "both" else (a.framework,)
        pairs = study.study_plan(datasets, _seeds(a.seeds) if a.seeds else None, a.budget, frameworks)
        _preflight_data([spec for spec, _fw in pairs], a.data_dir, True)
        options = {
            "datasets": datasets,
            "seeds": a.seeds,
            "budget": a.budget,
            "framework": a.framework,
            "shard": a.shard,
            "data_dir": str(a.data_dir.resolve()) if a.data_dir else None,
        }
        for profile, part in study.by_profile(pairs):  # Stacked MNIST: its own evaluation sample count
            cfg = MatrixConfig(
                profile=profile,
                device=_resolve_device(a.device),
                metrics=True,
                data_dir=a.data_dir,
                fresh=a.fresh,
                progress=not a.no_progress,
                command=tuple(a._command),
                options=options,
                name="study",
                select=select,
                resume_hint=" ".join(a._command),
            )
            code = max(code, _run(*study.split_plan(part), a.out, cfg, executor))
            if code in (EXIT_INTERRUPTED, EXIT_USAGE):  # Ctrl-C, or the executor could not start
                return code
    from ..runs.records import record_paths

    if not record_paths(a.out):
        raise UsageError(f"{a.out}: no records to judge (run `genbench study --out {a.out}` first)")
    result = study.write_verdicts(a.out, claims_file, a.correction, a.allow_mixed_code)
    _write_page(a.out, "study")  # draws the groups' figures into OUT/figures (committed with the study)
    if result["code"]["allowed"]:
        print(
            "genbench study: judging records of mixed code versions (--allow-mixed-code): "
            + ", ".join(f"{h}: {n}" for h, n in result["code"]["versions"].items()),
            file=sys.stderr,
        )
    print(f"\n{(a.out / 'study' / 'verdicts.md').read_text().split(chr(10) + '## ')[0]}")
    print(
        f"verdicts: {a.out / 'study' / 'verdicts.json'}, {a.out / 'study' / 'verdicts.md'} "
        f"({sum(len(c['rows']) for c in result['claims'])} rows)"
    )
    return code
