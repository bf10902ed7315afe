"""The `genbench` command line: run, list, data, gate, baseline, tables, eval, train-evaluator,
equivalence. Defaults come from bench/registry.py, the single place that defines them."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from . import registry  # noqa: E402
from .specs import DATASETS, FLOAT32_PRECISIONS, SpecError  # noqa: E402

FRAMEWORK_CHOICES = ("torch", "tensorflow", "both")


class UsageError(Exception):
    """Bad input from the command line: printed as one line, exit code 2."""


def _seeds(text: str) -> list[int]:
    """'0,1,2' or '0-2' -> [0, 1, 2]."""
    try:
        out = []
        for part in text.split(","):
            if "-" in part.strip()[1:]:
                lo, hi = part.split("-", 1)
                out += list(range(int(lo), int(hi) + 1))
            else:
                out.append(int(part))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds takes integers like '0,1,2' or '0-4', got {text!r}") from None
    return out


def _models(text: str) -> list[tuple[str, tuple[str, ...]]]:
    if text == "matrix":
        return list(registry.SEED_MATRIX)
    if text == "all":
        return [(m, ()) for m in registry.MODELS]
    return [registry.parse_model(t) for t in text.split(",") if t.strip()]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="genbench",
        description="Benchmark and regression suite for twin PyTorch/TensorFlow generative models.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Start with `genbench data` (which datasets are installed), `genbench list` (the catalog) "
               "and `genbench run` (quick profile, MNIST, both frameworks, models gan and vae).",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    r = sub.add_parser("run", help="train experiments, write records, sample grids and tables",
                       description="Train each experiment (model x stabilizers x dataset x seed x framework) "
                                   "for the profile's budget, then render results.md and comparison.md. "
                                   "Completed experiments already in --out are reused (see --fresh).")
    r.add_argument("--profile", choices=tuple(registry.PROFILES), default="quick",
                   help="budget: " + "; ".join(f"{k} = {v['steps']} steps" for k, v in registry.PROFILES.items())
                   + " (default quick)")
    r.add_argument("--dataset", default=None,
                   help=f"one or more of {', '.join(DATASETS)}, comma-separated (default mnist; the ci "
                        "profile has its own matrix of datasets and models)")
    r.add_argument("--framework", choices=FRAMEWORK_CHOICES, default="both", help="twin(s) to train (default both)")
    r.add_argument("--models", type=_models, default=None,
                   help="comma-separated models, each optionally with stabilizers joined by '+', e.g. "
                        "'gan,dcgan+spectral-norm,vae+dropout'; 'all' = every model bare; 'matrix' = the "
                        "study's seed matrix (default: gan,vae). `genbench list` shows the catalog")
    r.add_argument("--seeds", type=_seeds, default=[0], help="seeds, e.g. '0,1,2' or '0-4' (default 0)")
    r.add_argument("--steps", type=int, default=None, help="override the profile's step budget")
    r.add_argument("--out", type=Path, default=None,
                   help="run folder (default results/runs/<profile>-<timestamp>); reuse one to resume")
    r.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu", help="device (default cpu)")
    r.add_argument("--float32-precision", choices=FLOAT32_PRECISIONS, default="full",
                   help="float32 matmuls/convolutions on GPUs: full IEEE float32 (default) or tf32, which "
                        "PyTorch's cuDNN and TensorFlow use by default on Ampere and newer; every record "
                        "says which ran")
    r.add_argument("--data-dir", type=Path, default=None,
                   help="your own dataset copy: IDX folder (gz or not), Keras mnist.npz, or torchvision root")
    r.add_argument("--fresh", action="store_true", help="retrain experiments that already have a record")
    r.add_argument("--no-metrics", action="store_true", help="skip quality metrics (losses and timing only)")
    r.add_argument("--no-progress", action="store_true", help="no progress bars")

    sub.add_parser("list", help="the catalog: models, and which stabilizers apply to each")

    d = sub.add_parser("data", help="which dataset sources are installed and valid")
    d.add_argument("--data-dir", type=Path, default=None, help="also check this folder")

    g = sub.add_parser("gate", help="compare a run with a baseline; exit 1 on regression",
                       description="Compare RUN_DIR's metrics (mean over seeds) with a baseline file, "
                                   "metric by metric, each with a direction and a tolerance. Prints a "
                                   "table; exit code 0 when every check passed, 1 when any check regressed, "
                                   "2 on bad input (no run, unreadable baseline, or a baseline of another "
                                   "profile, step budget or genbench version).")
    g.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    g.add_argument("--baseline", type=Path, required=True, metavar="FILE", help="e.g. results/baselines/ci.json")
    g.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the checks as JSON")
    g.add_argument("--junit", type=Path, default=None, metavar="FILE",
                   help="also write JUnit XML, one testcase per check (for CI test reports)")

    b = sub.add_parser("baseline", help="make a baseline file from a run (ideally several seeds)")
    b.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    b.add_argument("--out", type=Path, required=True, metavar="FILE")
    b.add_argument("--k-std", type=float, default=4.0, help="tolerance = max(k std, rel-floor |mean|, abs-floor)")
    b.add_argument("--rel-floor", type=float, default=0.1)
    b.add_argument("--abs-floor", type=float, default=0.05)
    b.add_argument("--losses", action="store_true",
                   help="also gate every final loss term (direction both); off by default, since a loss "
                        "that changed is not a model that got worse")
    b.add_argument("--no-untrained", action="store_true",
                   help="do not score the untrained models (by default checks whose band contains the "
                        "untrained value are left out)")

    t = sub.add_parser("tables", help="re-render results.md/comparison.md of a run folder")
    t.add_argument("run_dir", type=Path, metavar="RUN_DIR")

    e = sub.add_parser("eval", help="score a sample set (npz with an 'images' array) against a dataset",
                       description="Fidelity (FID, KID, precision/recall, classifier score) and class "
                                   "coverage of SAMPLES.npz against the dataset's test split. 'images': uint8 "
                                   "(N, 28, 28) or (N, 1, 28, 28), or floats in [0, 1] / [-1, 1]; for "
                                   "stacked-mnist uint8 (N, 3, 28, 28) and the 1000-mode coverage.")
    e.add_argument("samples", type=Path, metavar="SAMPLES.npz")
    e.add_argument("--dataset", choices=("mnist", "fashion-mnist", "stacked-mnist"), required=True)

    te = sub.add_parser("train-evaluator", help="train the evaluator classifier of a dataset")
    te.add_argument("--dataset", choices=("mnist", "fashion-mnist"), required=True)
    te.add_argument("--epochs", type=int, default=None)
    te.add_argument("--seed", type=int, default=0)

    q = sub.add_parser("equivalence", help="PyTorch vs TensorFlow step-by-step equivalence table")
    q.add_argument("--full", action="store_true", help="every model x stabilizer (slow), not one axis at a time")
    q.add_argument("--steps", type=int, default=5)
    q.add_argument("--out", type=Path, default=Path("results/tables"))
    return p


def cmd_run(a) -> int:
    datasets = [d.strip() for d in a.dataset.split(",") if d.strip()] if a.dataset else None
    for d in datasets or ():
        if d not in DATASETS:
            raise UsageError(f"--dataset {d!r} is not one of {', '.join(DATASETS)}")
    frameworks = ("torch", "tensorflow") if a.framework == "both" else (a.framework,)
    device = a.device
    if device in ("cuda", "auto"):
        import torch

        if not torch.cuda.is_available():
            if device == "cuda":
                raise UsageError("--device cuda: no CUDA device here; use --device cpu")
            device = "cpu"
    specs = registry.profile_experiments(a.profile, a.models, datasets, a.seeds, a.steps,
                                         float32_precision=a.float32_precision)
    if a.data_dir is None:  # fail before any training if a dataset is missing
        from . import data

        for ds in {s.dataset for s in specs if s.is_image}:
            data.load(ds, "train")
    out = a.out or Path("results/runs") / f"{a.profile}-{time.strftime('%Y%m%d-%H%M%S')}"
    from . import tables
    from .records import read_records
    from .runner import experiment_id, run_experiment

    done = {r["id"] for r in read_records(out) if r["status"] == "ok"} if (out / "records").exists() else set()
    total = len(specs) * len(frameworks)
    print(f"genbench run: {total} experiment(s), profile {a.profile}, device {device}, out {out}", flush=True)
    n_eval = registry.PROFILES[a.profile]["n_eval"]
    interrupted = False
    t0 = time.perf_counter()
    for i, spec in enumerate(specs):
        for fw in frameworks:
            eid = experiment_id(spec, fw)
            if eid in done and not a.fresh:
                print(f"  [{eid}] record exists, reused (--fresh to retrain)")
                continue
            try:
                rec = run_experiment(spec, fw, out, device=device, data_dir=a.data_dir,
                                     progress=not a.no_progress, metrics=not a.no_metrics, n_eval=n_eval,
                                     profile=a.profile)
            except KeyboardInterrupt:
                print(f"  [{eid}] interrupted; finished records are kept in {out}", flush=True)
                interrupted = True
                break
            losses = ", ".join(f"{k} {v:.4g}" for k, v in rec["final_losses"].items())
            print(f"  [{eid}] {rec['status']}: {rec['steps_done']} steps, "
                  f"{rec['timing']['ms_per_step']:.1f} ms/step, {rec['timing']['wall_s']:.1f} s; {losses}",
                  flush=True)
        if interrupted:
            break
    if (out / "records").exists():
        written = tables.render(out)
        print(f"\n{(out / 'comparison.md').read_text()}")
        print(f"tables: {', '.join(str(p) for p in written.values())}")
    print(f"total wall time {time.perf_counter() - t0:.1f} s")
    return 130 if interrupted else 0


def cmd_list(_a) -> int:
    from tabulate import tabulate

    print(tabulate(registry.catalog_rows(), headers="keys", tablefmt="github"))
    print("\nstabilizers:")
    print(tabulate([{"stabilizer": s.name, "what": s.help} for s in registry.STABILIZERS.values()],
                   headers="keys", tablefmt="github"))
    print("\nprofiles: " + ", ".join(f"{k} ({v['steps']} steps)" for k, v in registry.PROFILES.items()))
    return 0


def cmd_data(a) -> int:
    from .data import format_sources

    print(format_sources(a.data_dir))
    return 0


def cmd_gate(a) -> int:
    from .gate import gate

    if not (a.run_dir / "records").is_dir():
        raise UsageError(f"{a.run_dir} has no records/ folder: pass the --out folder of a `genbench run`")
    ok, report = gate(a.run_dir, a.baseline, json_path=a.json, junit_path=a.junit)
    print(report)
    return 0 if ok else 1


def cmd_baseline(a) -> int:
    from .gate import make_baseline

    path = make_baseline(a.run_dir, a.out, k_std=a.k_std, rel_floor=a.rel_floor, abs_floor=a.abs_floor,
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


def cmd_eval(a) -> int:
    from .metrics import eval_samples_file

    print(json.dumps(eval_samples_file(a.samples, a.dataset), indent=2))
    return 0


def cmd_train_evaluator(a) -> int:
    from .metrics import train_evaluator_main

    kw = {"epochs": a.epochs} if a.epochs else {}
    print(json.dumps(train_evaluator_main(a.dataset, seed=a.seed, **kw), indent=2))
    return 0


def cmd_equivalence(a) -> int:
    from . import equivalence

    return equivalence.main(a)  # prints progress and the table; exit 1 if any case is out of tolerance


COMMANDS = {"run": cmd_run, "list": cmd_list, "data": cmd_data, "gate": cmd_gate, "baseline": cmd_baseline,
            "tables": cmd_tables, "eval": cmd_eval, "train-evaluator": cmd_train_evaluator,
            "equivalence": cmd_equivalence}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from .data import DataError
    from .gate import BaselineError
    from .metrics import SamplesFileError
    from .metrics.evaluator import EvaluatorError

    try:
        return COMMANDS[args.command](args)
    except (UsageError, SpecError, DataError, BaselineError, SamplesFileError, EvaluatorError,
            FileNotFoundError) as e:
        print(f"genbench {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
