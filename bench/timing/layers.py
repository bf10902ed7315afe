"""Where a step's time goes, layer by layer, in both twins.

    python -m bench.timing.layers [--model dcgan] [--batch 64] [--rounds 30] [--threads N] [--out FILE.md]

Each layer of the model's networks (bench/core/arch.py) is built alone by each twin's own `Net`
(the code a training step runs), in training mode, and timed on an input of the step's shape:
forward, then the gradients with respect to the input and the layer's parameters (TensorFlow
inside one tf.function, as its default variant trains). FLOPs are bench/timing/flops.py's
forward count x 3 (forward, input gradient, weight gradient); the percentage is of the fp32
GEMM peak measured in the same process (bench/timing/peak.py). Layers without arithmetic
(activations, batch norm, dropout, reshapes) show their time and no rate: that time is what
the FLOP count does not credit. The sum over layers is not the step time (a step runs G
twice and D three times, and adds the losses and the optimizer), but it says which
layers hold the step below the peak. Time on an idle machine.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from ..core import arch, registry
from ..core.randomness import dropout_masks
from ..runs.records import atomic_write_text
from . import add_threads_option, flops, pin_from_args


def _timed(fn, rounds: int) -> float:
    """Median seconds of fn() over `rounds` calls, after three warm-up calls."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _torch_layer(layer, x, masks):
    import torch

    import impls

    net = impls.load("torch").models.Net([layer], torch.float32)
    net.train()
    xt = torch.from_numpy(x).requires_grad_(True)
    mt = [torch.from_numpy(m) for m in masks]
    params = list(net.parameters())

    def run():
        out = net(xt, mt)[0]
        grads = torch.autograd.grad(out.sum(), [xt, *params], allow_unused=True)
        return grads

    return run


def _tf_layer(layer, x, masks):
    import tensorflow as tf

    import impls

    models = impls.load("tensorflow").models
    net = models.Net([layer], tf.float32)
    net.training = True
    xt = tf.constant(models.to_nhwc(tf.constant(x)) if x.ndim == 4 else x)
    mt = [tf.constant(m) for m in masks]  # NCHW: the Net moves masks to NHWC itself

    # Grappler prunes what no output needs: x is an argument, not a captured constant (with a
    # constant input the weight gradient, a function of x and the constant upstream gradient,
    # is folded away), and the forward's sum is returned (a linear layer's gradients do not
    # need its output, so its forward pass would be dropped)
    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = net(x, mt)[0]
            total = tf.reduce_sum(out)
        return [total, *tape.gradient(total, [x, *net.trainable])]

    def run():
        outputs = step(xt)
        return outputs[0].numpy()  # wait for the step

    return run


def layer_rows(
    model: str = "dcgan",
    batch: int = 64,
    rounds: int = 30,
    frameworks=("torch", "tensorflow"),
    peak_gflops: float | None = None,
) -> list[dict]:
    """One row per (network, layer, framework): ms forward + backward, GFLOP/s, % of peak."""
    spec = registry.experiment(model, batch_size=batch, steps=1)
    rng = np.random.default_rng(0)
    rows = []
    for net_name, layers in arch.networks(spec).items():
        for layer in layers:
            x = rng.standard_normal((batch,) + tuple(layer.in_shape)).astype(np.float32)
            masks = dropout_masks([layer], batch, rng, np.float32)
            work = 3 * batch * flops.layer_flops(layer)
            for fw in frameworks:
                run = (_torch_layer if fw == "torch" else _tf_layer)(layer, x, masks)
                seconds = _timed(run, rounds)
                gflops = work / seconds / 1e9 if work else None
                rows.append(
                    {
                        "net": net_name,
                        "layer": layer.name,
                        "kind": layer.kind,
                        "shape": "x".join(map(str, layer.out_shape)),
                        "framework": fw,
                        "ms": 1e3 * seconds,
                        "gflop": work / 1e9,
                        "gflops_per_s": gflops,
                        "percent_of_peak": 100 * gflops / peak_gflops if gflops and peak_gflops else None,
                    }
                )
    return rows


def render(rows: list[dict], model: str, batch: int, peak: dict | None) -> str:
    from tabulate import tabulate

    fws = list(dict.fromkeys(r["framework"] for r in rows))
    by = {(r["net"], r["layer"], r["framework"]): r for r in rows}
    keys = list(dict.fromkeys((r["net"], r["layer"]) for r in rows))
    table = []
    for net, name in keys:
        first = by[(net, name, fws[0])]
        line = [f"{net}.{name}", first["kind"], first["shape"], f"{first['gflop']:.3f}" if first["gflop"] else ""]
        for fw in fws:
            r = by[(net, name, fw)]
            line += [f"{r['ms']:.2f}", f"{r['percent_of_peak']:.0f}" if r["percent_of_peak"] else ""]
        table.append(line)
    totals = ["total", "", "", f"{sum(by[(n, name, fws[0])]['gflop'] for n, name in keys):.3f}"]
    for fw in fws:
        ms = sum(by[(n, name, fw)]["ms"] for n, name in keys)
        gemm_ms = sum(by[(n, name, fw)]["ms"] for n, name in keys if by[(n, name, fw)]["gflop"])
        totals += [f"{ms:.2f}", f"{100 * gemm_ms / ms:.0f}% in GEMM layers"]
    table.append(totals)
    headers = ["layer", "kind", "output", "GFLOP (fwd+bwd)"]
    for fw in fws:
        headers += [f"{fw} ms", f"{fw} % of peak"]
    head = (
        f"Layer by layer, {model}, batch {batch}: forward + input and weight gradients, each layer alone "
        f"(`python -m bench.timing.layers`)."
    )
    if peak:
        head += f" fp32 GEMM peak in the same process: {peak['gflops']:.0f} GFLOP/s ({peak['library']})."
    return head + "\n\n" + tabulate(table, headers=headers, tablefmt="github", disable_numparse=True) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.timing.layers", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="dcgan", help="a catalog model (default dcgan)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--rounds", type=int, default=30, help="timed calls per layer (median)")
    p.add_argument("--framework", choices=("torch", "tensorflow", "both"), default="both")
    p.add_argument("--out", default=None, help="write the markdown table here (atomically) as well")
    add_threads_option(p)
    a = p.parse_args(argv)
    if a.model not in registry.MODELS:
        p.error(f"unknown model {a.model!r}{registry.did_you_mean(a.model, registry.MODELS)}")
    if a.batch < 2 or a.rounds < 1:
        p.error("--batch >= 2 and --rounds >= 1")
    pin_from_args(p, a.threads)
    import impls  # noqa: F401 - loads Triton before TensorFlow

    from .peak import gemm_peak

    peak = gemm_peak()
    fws = ("torch", "tensorflow") if a.framework == "both" else (a.framework,)
    text = render(layer_rows(a.model, a.batch, a.rounds, fws, peak["gflops"]), a.model, a.batch, peak)
    print(text)
    if a.out:
        atomic_write_text(a.out, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
