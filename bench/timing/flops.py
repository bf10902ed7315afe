"""Floating-point operations of one `Trainer.train_step`, counted from the layer lists.

What is counted: the multiply-accumulates (x 2) of the dense, conv and transposed-conv
layers (bench.core.arch.flops_per_sample), which are the GEMM work a step cannot avoid. Batch
norm, activations, dropout, losses and the optimizer updates are elementwise, memory-bound
and left out (a few percent of the arithmetic for every model here), as is the spectral-norm
power iteration (matrix-vector products on the weights, independent of the batch).

Per layer and per sample, with F its forward FLOPs:
- forward: F;
- weight gradient (dL/dW, a GEMM of the same size): F, for the layers of a network that is
  being updated;
- input gradient (dL/dx, the transposed GEMM): F, for every layer through which a gradient
  must flow. A network's first layer needs none when its input is data or a detached sample.

A GAN step (family gan), for each of the n_critic critic iterations (B = batch size):
  G forward on B latents (no gradient)                          G.fwd x B
  D forward on B real + B fake images                           D.fwd x 2B
  D backward: weight gradients, input gradients past layer 1    (D.wgrad + D.igrad_inner) x 2B
  with a gradient penalty (Gulrajani 2017), on B interpolates:
    D forward, gradient w.r.t. the input (every layer)         (D.fwd + D.igrad) x B
    backward of that gradient: each input-gradient GEMM gives
    a weight-gradient GEMM and an upstream-gradient GEMM        (D.wgrad + D.igrad) x B
then the generator step:
  G forward, D forward on B latents                             (G.fwd + D.fwd) x B
  D input gradients (every layer, down to the image)            D.igrad x B
  G weight gradients, input gradients past layer 1              (G.wgrad + G.igrad_inner) x B
D's weight gradients are not needed in the generator step and are not counted: a step that
computes them does work this count does not credit.

A VAE step: E forward, G forward, G weight + input gradients, E weight gradients and input
gradients past layer 1, all on B. A VAE-GAN step (Larsen 2016, one forward pass, three
gradients): E forward B, G forward 2B (reconstruction, prior), D forward 3B (real,
reconstruction, prior); encoder loss: D input gradients up to the feature tap on B, G input
gradients on B, E weight + inner input gradients on B; decoder loss: D input gradients on 2B
plus up to the feature tap on B, G weight + inner input gradients on 2B; D loss: D weight +
inner input gradients on 3B.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core import arch
from ..core.randomness import real_batches_per_step
from ..core.specs import ExperimentSpec

PARAMETRIZED = ("dense", "conv", "convT")


def layer_flops(layer: arch.Layer) -> int:
    """Forward FLOPs (2 x multiply-accumulates) of one layer for one sample."""
    return arch.flops_per_sample([layer])


@dataclass(frozen=True)
class NetCost:
    """Per-sample FLOPs of the passes over one network."""

    fwd: int  # forward
    wgrad: int  # weight gradients of every parametrized layer
    igrad: int  # input gradients of every parametrized layer
    igrad_inner: int  # input gradients of all but the first parametrized layer
    igrad_to_tap: int  # input gradients of the layers up to the feature tap (VAE-GAN)

    @classmethod
    def of(cls, layers: list[arch.Layer]) -> NetCost:
        costs = [layer_flops(layer) for layer in layers if layer.kind in PARAMETRIZED]
        to_tap, seen_tap = 0, False
        for layer in layers:
            if seen_tap:
                break
            if layer.kind in PARAMETRIZED:
                to_tap += layer_flops(layer)
            seen_tap = layer.feature_tap
        return cls(
            fwd=sum(costs),
            wgrad=sum(costs),
            igrad=sum(costs),
            igrad_inner=sum(costs[1:]),
            igrad_to_tap=to_tap if seen_tap else 0,
        )


def step_terms(spec: ExperimentSpec, batch: int | None = None) -> dict[str, int]:
    """FLOPs of one train_step, by term (the names say what is counted; see the module doc)."""
    b = batch or spec.batch_size
    nets = {name: NetCost.of(layers) for name, layers in arch.networks(spec).items()}
    G = nets["G"]
    terms: dict[str, int] = {}
    if spec.family == "gan":
        D, k = nets["D"], spec.n_critic
        terms["critic: G forward (B)"] = k * G.fwd * b
        terms["critic: D forward (2B)"] = k * D.fwd * 2 * b
        terms["critic: D backward (2B)"] = k * (D.wgrad + D.igrad_inner) * 2 * b
        if spec.uses_gp:
            terms["critic: GP forward + input gradient (B)"] = k * (D.fwd + D.igrad) * b
            terms["critic: GP double backward (B)"] = k * (D.wgrad + D.igrad) * b
        terms["generator: G + D forward (B)"] = (G.fwd + D.fwd) * b
        terms["generator: D input gradients (B)"] = D.igrad * b
        terms["generator: G backward (B)"] = (G.wgrad + G.igrad_inner) * b
    elif spec.family in ("vae", "cvae"):
        E = nets["E"]
        terms["E + G forward (B)"] = (E.fwd + G.fwd) * b
        terms["G backward (B)"] = (G.wgrad + G.igrad) * b
        terms["E backward (B)"] = (E.wgrad + E.igrad_inner) * b
    else:  # vaegan
        E, D = nets["E"], nets["D"]
        terms["forward: E (B), G (2B), D (3B)"] = (E.fwd + 2 * G.fwd + 3 * D.fwd) * b
        terms["encoder loss backward (B)"] = (D.igrad_to_tap + G.igrad + E.wgrad + E.igrad_inner) * b
        terms["decoder loss backward (2B)"] = (2 * D.igrad + D.igrad_to_tap) * b + (G.wgrad + G.igrad_inner) * 2 * b
        terms["discriminator loss backward (3B)"] = (D.wgrad + D.igrad_inner) * 3 * b
    return terms


def flops_per_step(spec: ExperimentSpec, batch: int | None = None) -> int:
    """Total FLOPs of one train_step of `spec` at `batch` (default: the spec's batch size)."""
    return sum(step_terms(spec, batch).values())


def images_per_step(spec: ExperimentSpec, batch: int | None = None) -> int:
    """Real images one train_step consumes (n_critic batches for GANs)."""
    return (batch or spec.batch_size) * real_batches_per_step(spec)


def sample_flops(spec: ExperimentSpec, n: int) -> int:
    """FLOPs of generating n samples (one generator forward each)."""
    return NetCost.of(arch.networks(spec)["G"]).fwd * n
