"""The GPU checks in one short run, for a machine with a CUDA device and PyTorch (TensorFlow not
needed): the CPU-vs-GPU training test, the DCGAN step timed in PyTorch with native randomness
(eager, torch.compile, and torch.compile's CUDA graphs), and a batch-size sweep in images/s;
writes a markdown table (default results/tables/timing-gpu.md).

    python tools/gpu_check.py                                  # on the GPU machine: everything
    python tools/gpu_check.py --device cpu --dry-run           # here: the same code, tiny, no GPU

Each timing is the median of --steps timed steps after --warmup untimed ones (the first call,
which compiles, is reported apart). A step ends with its losses copied to the host, as in
`genbench run`, so every timed step includes one device synchronisation. The "cudagraphs" variant
compiles each network with torch.compile(mode="reduce-overhead"), which replays CUDA graphs.
Exit status: 0 when every part ran and the CPU-vs-GPU test passed (or was skipped on a CPU
dry run), 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

VARIANTS = ("eager", "compile", "cudagraphs")
TARGET_MS = 3.0  # the DCGAN step at batch 64 on one H200 (docs/timing.md)


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def time_dcgan(device: str, variant: str, batch: int, steps: int, warmup: int) -> dict:
    """The DCGAN train step in the PyTorch twin, native randomness: first-call seconds, median ms."""
    import torch

    import impls
    from bench.core import registry
    from bench.core.randomness import random_batch, real_batches_per_step, step_noise

    backend = impls.load("torch")
    spec = registry.experiment("dcgan", batch_size=batch, steps=steps + warmup + 1)
    trainer = backend.build(spec, device=device, variant="compile" if variant == "compile" else "eager")
    if variant == "cudagraphs":
        trainer._forward = {name: torch.compile(net, mode="reduce-overhead") for name, net in trainer.nets.items()}
    draws = backend.noise.NativeDraws(spec, device)
    rng = np.random.default_rng(0)
    real = random_batch(spec, rng, batch * real_batches_per_step(spec))  # copied to the device each step, as in a run

    def step():
        trainer.train_step(real, step_noise(spec, rng, draws=draws))

    t0 = time.perf_counter()
    step()
    _sync(device)
    first = time.perf_counter() - t0
    for _ in range(warmup):
        step()
    _sync(device)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    ms = 1e3 * statistics.median(times)
    return {"variant": variant, "batch": batch, "first_s": first, "ms": ms, "images_per_s": batch / ms * 1e3}


def gpu_test(device: str, dry_run: bool) -> tuple[str, bool]:
    """The CPU-vs-GPU training test (PyTorch cases): its summary line and whether it passed."""
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "suites/test_precision.py",
        "-m",
        "gpu",
        "-k",
        "torch",
        "-q",
        "-p",
        "no:cacheprovider",
        "--device",
        device,
    ]
    if dry_run:
        cmd.append("--collect-only")
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    lines = [ln for ln in out.stdout.strip().splitlines() if ln.strip()]
    summary = lines[-1] if lines else out.stderr.strip().splitlines()[-1:]
    return str(summary), out.returncode == 0


def render(env: dict, test_line: str, rows: list[dict], sweep: list[dict]) -> str:
    lines = [
        "# Timing on a GPU",
        "",
        f"Written by `python tools/gpu_check.py` on {env['when']}: {env['device_name']}, PyTorch "
        f"{env['torch']}, Python {env['python']}. DCGAN train step (the PyTorch twin, native randomness, "
        f"float32), median of the timed steps; each step copies its losses to the host once.",
        "",
        f"CPU-vs-GPU training test (suites/test_precision.py, PyTorch cases): {test_line}",
        "",
        "## DCGAN step at batch 64",
        "",
        "| variant | first call s | ms/step | images/s | target |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        meets = "met" if r["ms"] <= TARGET_MS else "not met"
        lines.append(
            f"| {r['variant']} | {r['first_s']:.1f} | {r['ms']:.2f} | {r['images_per_s']:.0f} | "
            f"<= {TARGET_MS} ms: {meets} |"
        )
    lines += [
        "",
        f"## Batch sweep ({sweep[0]['variant'] if sweep else 'eager'})",
        "",
        "| batch | ms/step | images/s |",
        "|---|---|---|",
    ]
    lines += [f"| {r['batch']} | {r['ms']:.2f} | {r['images_per_s']:.0f} |" for r in sweep]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python tools/gpu_check.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="tiny counts, the GPU test only collected, eager only unless --variants says otherwise",
    )
    p.add_argument("--variants", default=None, help=f"comma-separated, of {', '.join(VARIANTS)} (default all)")
    p.add_argument("--batches", default="64,128,256,512,1024", help="the sweep's batch sizes")
    p.add_argument("--steps", type=int, default=None, help="timed steps per row (default 200, dry run 2)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps after the first (default 20, dry run 1)")
    p.add_argument("--out", type=Path, default=ROOT / "results" / "tables" / "timing-gpu.md")
    a = p.parse_args(argv)
    variants = [v for v in (a.variants or ("eager" if a.dry_run else ",".join(VARIANTS))).split(",") if v]
    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        print(f"gpu_check: unknown variant {bad[0]!r}: choose from {', '.join(VARIANTS)}", file=sys.stderr)
        return 2
    try:
        batches = [int(b) for b in a.batches.split(",")]
    except ValueError:
        print(f"gpu_check: --batches takes integers like 64,128, got {a.batches!r}", file=sys.stderr)
        return 2
    steps = a.steps or (2 if a.dry_run else 200)
    warmup = a.warmup if a.warmup is not None else (1 if a.dry_run else 20)
    import torch

    from bench.core import cpu

    if a.device == "cuda" and not torch.cuda.is_available():
        print(
            "gpu_check: --device cuda: PyTorch sees no CUDA device (use --device cpu --dry-run here)", file=sys.stderr
        )
        return 2
    env = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device_name": torch.cuda.get_device_name(0) if a.device == "cuda" else f"CPU ({cpu.isa_level()}, dry run)",
    }
    test_line, test_ok = gpu_test(a.device, a.dry_run)
    print(f"CPU-vs-GPU test: {test_line}", flush=True)
    rows = []
    for v in variants:
        rows.append(time_dcgan(a.device, v, 64, steps, warmup))
        print(f"dcgan batch 64 {v}: {rows[-1]['ms']:.2f} ms/step (first call {rows[-1]['first_s']:.1f} s)", flush=True)
    best = min(rows, key=lambda r: r["ms"])["variant"]
    sweep = []
    for b in batches:
        sweep.append(time_dcgan(a.device, best, b, steps, warmup))
        print(f"dcgan batch {b} {best}: {sweep[-1]['images_per_s']:.0f} images/s", flush=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = a.out.with_name(a.out.name + ".tmp")
    tmp.write_text(render(env, test_line, rows, sweep))
    os.replace(tmp, a.out)
    print(f"written: {a.out}")
    return 0 if test_ok else 1


if __name__ == "__main__":
    sys.exit(main())
