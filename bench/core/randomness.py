"""All randomness a training run consumes, drawn by the harness from seeded NumPy generators.

In the default "reproducible" randomness mode the twins never draw random numbers of their
own while training: initial weights, latent noise, the VAE's epsilon, gradient-penalty
interpolation coefficients and dropout masks all come from here. Equal seeds therefore give the
two frameworks bit-identical inputs, which is what makes step-by-step equivalence testable. In
the "native" mode (RANDOMNESS_MODES; `genbench run --randomness native`) each twin's
`noise.NativeDraws` draws the same keys, shapes and distributions per step with its framework's
own seeded generator on the device; initial weights still come from here.

Noise for one `train_step` is a flat dict. Keys (B = batch size, L = latent size):
- gan:    "d{i}.z" (B, L), "d{i}.alpha" (B, 1...) with a gradient penalty, and dropout masks
          "d{i}.D.real", "d{i}.D.fake", "d{i}.D.gp", "d{i}.G" for i < n_critic;
          then "g.z", "g.G", "g.D.fake" for the generator step, and "g.D.real" (last) for
          losses whose generator term reads D(x) too (specs.G_NEEDS_REAL: ragan).
- vae/cvae: "eps" (B, L), masks "E", "G".
- vaegan: "eps", "z_prior" (B, L), masks "E", "G.rec", "G.prior", "D.real", "D.rec", "D.prior".
A mask entry is a list with one array per dropout layer, in network order, shape
(B,) + the layer's canonical (NCHW) output shape, values 0 or 1 / (1 - p) (inverted dropout).
"""

from __future__ import annotations

import numpy as np

from . import arch
from .facts import NUM_CLASSES
from .specs import G_NEEDS_REAL, ExperimentSpec


def initial_weights(spec: ExperimentSpec, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Initial canonical weights for every network of the spec.

    Dense layers: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias (PyTorch's Linear
    default). Conv and transposed conv: N(0, 0.02) weights and zero bias (Radford et al. 2016,
    DCGAN section 4). Batch norm: weight 1, bias 0, running mean 0, running var 1.
    Spectral-norm u: a random unit vector.
    """
    dtype = np.dtype(spec.dtype)
    out: dict[str, np.ndarray] = {}
    for net, layers in arch.networks(spec).items():
        for layer in layers:
            prefix = f"{net}.{layer.name}."
            if layer.kind == "dense":
                (n_in,), (n_out,) = layer.in_shape, layer.out_shape
                bound = 1.0 / np.sqrt(n_in)
                out[prefix + "weight"] = rng.uniform(-bound, bound, (n_out, n_in))
                out[prefix + "bias"] = rng.uniform(-bound, bound, (n_out,))
            elif layer.kind in ("conv", "convT"):
                shapes = layer.params
                out[prefix + "weight"] = rng.normal(0.0, 0.02, shapes["weight"])
                out[prefix + "bias"] = np.zeros(shapes["bias"])
            elif layer.kind == "bn":
                c = layer.in_shape[0]
                out[prefix + "weight"] = np.ones(c)
                out[prefix + "bias"] = np.zeros(c)
                out[prefix + "running_mean"] = np.zeros(c)
                out[prefix + "running_var"] = np.ones(c)
            if layer.spectral_norm:
                (n,) = layer.buffers[layer.sn_buffer]
                u = rng.normal(size=(n,))
                out[prefix + layer.sn_buffer] = u / np.linalg.norm(u)
    return {k: v.astype(dtype) for k, v in out.items()}


def uniform(rng: np.random.Generator, shape, dtype) -> np.ndarray:
    """U[0, 1) in `dtype`, drawn in float32 unless float64 is asked for: NumPy's float32
    stream (24 random bits a value) is about 3x faster than float64 and what float32 twins read."""
    dtype = np.dtype(dtype)
    return rng.random(shape, dtype=np.float32 if dtype != np.float64 else np.float64).astype(dtype, copy=False)


def normal(rng: np.random.Generator, shape, dtype) -> np.ndarray:
    """N(0, 1) in `dtype`, drawn directly in float32 for float32 twins (ziggurat, 2x faster)."""
    dtype = np.dtype(dtype)
    return rng.standard_normal(shape, dtype=np.float32 if dtype != np.float64 else np.float64).astype(dtype, copy=False)


MASK_BITS = 16  # one uint16 per unit: P(drop) = round(p * 2^16) / 2^16, within 2^-17 of p


def keep_units(rng: np.random.Generator, shape, p: float) -> np.ndarray:
    """Bernoulli(1 - p) keep decisions (bool) for `shape` units: one 16-bit draw per unit, taken
    from the bit generator's raw 64-bit output (four units a word, little-endian), kept when
    >= round(p * 2^16). A fraction of the cost of a float draw, the same in float32 and float64."""
    n = int(np.prod(shape, dtype=np.int64))
    words = rng.bit_generator.random_raw((n + 3) // 4)
    bits = words.astype("<u8", copy=False).view("<u2")[:n]
    return (bits >= round(p * (1 << MASK_BITS))).reshape(shape)


def dropout_masks(layers: list, batch: int, rng: np.random.Generator, dtype) -> list[np.ndarray]:
    """Inverted-dropout masks, 0 or 1 / (1 - p) in `dtype`, one array per dropout layer: the
    keep decisions of `keep_units`, so the pattern does not depend on the dtype."""
    return NumpyDraws(rng, dtype).masks(layers, batch)


RANDOMNESS_MODES = ("reproducible", "native")


class Draws:
    """A source of a step's random inputs: `normal`, `uniform` and `mask` (inverted dropout,
    0 or 1 / (1 - p)) of a shape, in the spec's dtype; step_noise asks for them in one order."""

    def masks(self, layers: list, batch: int) -> list:
        """One mask per dropout layer of `layers`, in network order, canonical (NCHW) shapes."""
        return [
            self.mask((batch,) + tuple(layer.out_shape), layer.args["p"]) for layer in layers if layer.kind == "dropout"
        ]


class NumpyDraws(Draws):
    """The "reproducible" mode: the seeded NumPy stream above, the same numbers in both twins.
    Each twin's `noise.NativeDraws` (the "native" mode) draws with its framework's own seeded
    generator on the trainer's device: reproducible within a framework, not across the two,
    and no host-to-device copies."""

    def __init__(self, rng: np.random.Generator, dtype):
        self.rng, self.dtype = rng, np.dtype(dtype)

    def normal(self, shape):
        return normal(self.rng, shape, self.dtype)

    def uniform(self, shape):
        return uniform(self.rng, shape, self.dtype)

    def mask(self, shape, p: float):
        keep = keep_units(self.rng, shape, p)
        return np.multiply(keep, self.dtype.type(1.0 / (1.0 - p)), dtype=self.dtype)


def native_seed(seed: int, stream: int = 1) -> int:
    """The 63-bit seed of a framework generator for `seed`'s stream `stream` (1: step noise)."""
    return int(np.random.SeedSequence([seed, stream]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def step_noise(spec: ExperimentSpec, rng: np.random.Generator | None, batch: int | None = None, draws=None) -> dict:
    """The random inputs of one `Trainer.train_step`, keyed as in the module docstring: drawn
    from `rng` (NumpyDraws), or by `draws` (a twin's NativeDraws) in the same order and shapes."""
    b = batch or spec.batch_size
    draws = draws or NumpyDraws(rng, spec.dtype)
    nets = arch.networks(spec)
    latent = lambda: draws.normal((b, spec.latent_dim))  # noqa: E731

    def masks(net: str) -> list:
        return draws.masks(nets[net], b)

    noise: dict = {}
    if spec.family == "gan":
        alpha_shape = (b,) + (1,) * len(spec.data_shape)
        for i in range(spec.n_critic):
            noise[f"d{i}.z"] = latent()
            if spec.uses_gp:
                noise[f"d{i}.alpha"] = draws.uniform(alpha_shape)
            noise[f"d{i}.G"] = masks("G")
            for call in ("real", "fake") + (("gp",) if spec.uses_gp else ()):
                noise[f"d{i}.D.{call}"] = masks("D")
        noise["g.z"] = latent()
        noise["g.G"] = masks("G")
        noise["g.D.fake"] = masks("D")
        if spec.loss in G_NEEDS_REAL:  # drawn last: every other loss draws what it drew before
            noise["g.D.real"] = masks("D")
    else:
        noise["eps"] = latent()
        noise["E"] = masks("E")
        if spec.family == "vaegan":
            noise["z_prior"] = latent()
            for call in ("rec", "prior"):
                noise[f"G.{call}"] = masks("G")
            for call in ("real", "rec", "prior"):
                noise[f"D.{call}"] = masks("D")
        else:
            noise["G"] = masks("G")
    return noise


def real_batches_per_step(spec: ExperimentSpec) -> int:
    """How many real batches one train_step consumes (n_critic critic steps for GANs)."""
    return spec.n_critic if spec.family == "gan" else 1


def random_batch(spec: ExperimentSpec, rng: np.random.Generator, n: int) -> dict:
    """n made-up real samples for tests and the equivalence suite (not a dataset): images
    uniform in the spec's data range (points uniform in [-2, 2]^2), then labels 0..9."""
    lo, hi = spec.data_range if spec.is_image else (-2.0, 2.0)
    x = rng.uniform(lo, hi, (n,) + spec.data_shape).astype(spec.dtype)
    return {"x": x, "y": rng.integers(0, NUM_CLASSES, n)}
