"""Where a train step's time goes, op by op, as each framework's own profiler sees it.

    python -m bench.timing.profile --model dcgan [--steps 5] [--top 15] [--threads N]

Runs a few warm-up steps of the default variant (torch eager, TensorFlow tf.function), then
profiles `--steps` steps: PyTorch with torch.profiler (self CPU time per ATen op), TensorFlow
with tf.profiler (the host plane of the trace it writes, XPlane protobuf: time per op type on
the executor's compute threads). Prints one markdown table per framework: op, calls per step,
ms per step, share of the profiled ops' total. Both profilers add their own overhead; the
shares, not the absolute times, are the point (docs/timing.md). Ops run by several threads at
once add up, so the totals can exceed the wall time of a step.
"""

from __future__ import annotations

import argparse
import collections
import glob
import tempfile

import numpy as np

from ..core import registry
from ..core.randomness import random_batch, real_batches_per_step, step_noise
from . import add_threads_option, pin_from_args


def _steps(framework: str, model: str, batch: int, warmup: int):
    import impls

    spec = registry.experiment(model, batch_size=batch, steps=1)
    trainer = impls.load(framework).build(spec, variant=registry.DEFAULT_VARIANT[framework])
    rng = np.random.default_rng(0)
    real = random_batch(spec, rng, batch * real_batches_per_step(spec))

    def step():
        trainer.train_step(real, step_noise(spec, rng))

    for _ in range(warmup):
        step()
    return step


def torch_ops(model: str, steps: int = 5, batch: int = 64, warmup: int = 3) -> list[dict]:
    """[{op, calls, ms}] per step, from torch.profiler's self CPU time, largest first."""
    from torch.profiler import ProfilerActivity, profile

    step = _steps("torch", model, batch, warmup)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    ops = [
        {"op": e.key, "calls": e.count / steps, "ms": e.self_cpu_time_total / 1e3 / steps}
        for e in prof.key_averages()
        if e.self_cpu_time_total > 0
    ]
    return sorted(ops, key=lambda o: -o["ms"])


def tensorflow_ops(model: str, steps: int = 5, batch: int = 64, warmup: int = 3) -> list[dict]:
    """[{op, calls, ms}] per step: the events of TensorFlow's compute threads in the trace
    tf.profiler writes, summed by op type (an event is named "<node>:<OpType>")."""
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    step = _steps("tensorflow", model, batch, warmup)
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        try:
            for _ in range(steps):
                step()
        finally:
            tf.profiler.experimental.stop()
        (path,) = glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)
        space = xplane_pb2.XSpace()
        with open(path, "rb") as f:
            space.ParseFromString(f.read())
    time_ps, calls = collections.Counter(), collections.Counter()
    for plane in space.planes:
        if plane.name != "/host:CPU":
            continue
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for ev in line.events:
                name = plane.event_metadata[ev.metadata_id].name
                if ":" not in name or "::" in name:  # the executor's own frames (ExecutorState::Process)
                    continue
                op = name.rsplit(":", 1)[1]
                time_ps[op] += ev.duration_ps
                calls[op] += 1
    ops = [{"op": op, "calls": calls[op] / steps, "ms": ps / 1e9 / steps} for op, ps in time_ps.items()]
    return sorted(ops, key=lambda o: -o["ms"])


def table(ops: list[dict], top: int) -> str:
    from tabulate import tabulate

    total = sum(o["ms"] for o in ops) or float("nan")
    rows = [[o["op"], f"{o['calls']:g}", f"{o['ms']:.2f}", f"{100 * o['ms'] / total:.1f}"] for o in ops[:top]]
    rest = sum(o["ms"] for o in ops[top:])
    rows.append([f"{max(len(ops) - top, 0)} other ops", "", f"{rest:.2f}", f"{100 * rest / total:.1f}"])
    rows.append(["total", "", f"{total:.2f}", "100.0"])
    return tabulate(
        rows, headers=["op", "calls/step", "ms/step", "% of profiled"], tablefmt="github", disable_numparse=True
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.timing.profile", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="dcgan", choices=registry.MODELS, help="catalog model (default dcgan)")
    p.add_argument("--framework", choices=("torch", "tensorflow", "both"), default="both")
    p.add_argument("--steps", type=int, default=5, help="profiled steps (default 5)")
    p.add_argument("--top", type=int, default=15, help="ops listed before the rest are summed (default 15)")
    add_threads_option(p)
    a = p.parse_args(argv)
    if a.steps < 1 or a.top < 1:
        p.error("--steps and --top must be >= 1")
    pin_from_args(p, a.threads)
    for fw, fn in (("torch", torch_ops), ("tensorflow", tensorflow_ops)):
        if a.framework in (fw, "both"):
            print(f"\n{fw}, {a.model}, batch 64, default variant: self time per op over {a.steps} steps\n")
            print(table(fn(a.model, a.steps), a.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
