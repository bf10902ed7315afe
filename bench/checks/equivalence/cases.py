"""The cases (a catalog model, its stabilizers, an optimizer kind), the default and full case
lists, and the inputs every twin of a case sees: batches, probes, random weights."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...core import arch, randomness, registry
from ...core.specs import OPTIMIZERS, ExperimentSpec

# Small widths keep a case under a second on one CPU core; the layer kinds, the depth and
# every code path stay those of the catalog model (dcgan needs exactly two widths per net).
SMALL = {
    "generator.hidden": (32, 16),
    "discriminator.hidden": (16, 32),
    "encoder.hidden": (32, 16),
    "batch_size": 8,
    "latent_dim": 8,
}
DATA_SEED, NOISE_SEED, PROBE_SEED = 20240, 20241, 20242


@dataclass(frozen=True)
class Case:
    """A catalog model with stabilizers; `optimizer` swaps both optimizers' kind (keeping lr,
    betas, rho, eps) or None keeps the model's own."""

    model: str
    stabilizers: tuple[str, ...] = ()
    optimizer: str | None = None

    @property
    def label(self) -> str:
        base = "+".join((self.model,) + tuple(self.stabilizers))
        return f"{base}@{self.optimizer}" if self.optimizer else base

    def spec(self, dtype="float64", small=True) -> ExperimentSpec:
        spec = registry.experiment(self.model, self.stabilizers, profile="smoke")
        if self.optimizer:
            if self.optimizer not in OPTIMIZERS:
                raise ValueError(f"optimizer {self.optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
            spec = spec.with_(**{"g_optimizer.kind": self.optimizer, "d_optimizer.kind": self.optimizer})
        if small:
            spec = spec.with_(**SMALL)
        return spec.with_(dtype=dtype, name=self.label)


def parse_case(token: str) -> Case:
    """'dcgan+spectral-norm@adam' -> Case('dcgan', ('spectral-norm',), 'adam')."""
    token, _, optimizer = token.partition("@")
    model, stabs = registry.parse_model(token)
    return Case(model, stabs, optimizer or None)


# Where each stabilizer is checked in the one-axis-at-a-time set (a stabilizer missing here is
# checked on the first catalog model it applies to): weight decay, batch norm and label
# smoothing on the MLP GAN (RMSprop, 1-D batch norm), dropout on the VAE's encoder (the DCGAN
# critic already has dropout), spectral norm and the gradient penalty on convolutions.
REPRESENTATIVE = {
    "weight-decay": "gan",
    "weight-decay-decoupled": "gan",
    "batch-norm": "gan",
    "dropout": "vae",
    "spectral-norm": "dcgan",
    "gradient-penalty": "dcgan",
}
# The other optimizer kind: RMSprop GANs under Adam, the Adam VAE under RMSprop, and both kinds
# of weight decay under Adam (Adam's coupled L2 and AdamW; RMSprop's come with the MLP GAN).
OPTIMIZER_CASES = (
    Case("gan", (), "adam"),
    Case("dcgan", (), "adam"),
    Case("vae", (), "rmsprop"),
    Case("vae", ("weight-decay",)),
    Case("vae", ("weight-decay-decoupled",)),
)


def default_cases(full=False) -> list[Case]:
    """One axis at a time (every model bare; every stabilizer on one model; the other optimizer
    kind), or with full=True every model x (no / each applicable stabilizer, and the study's
    combinations) x both optimizer kinds."""
    if not full:
        cases = [Case(m) for m in registry.MODELS]
        for name in registry.STABILIZERS:
            model = REPRESENTATIVE.get(name) or next(m for m in registry.MODELS if name in registry.applicable(m))
            cases.append(Case(model, (name,)))
        return cases + list(OPTIMIZER_CASES)
    combos = [(m, ()) for m in registry.MODELS]
    combos += [(m, (s,)) for m in registry.MODELS for s in registry.applicable(m)]
    combos += [row for row in registry.SEED_MATRIX if len(row[1]) > 1]
    cases = []
    for model, stabs in combos:
        own = registry.MODELS[model].g_optimizer.kind
        for kind in OPTIMIZERS:
            cases.append(Case(model, tuple(stabs), None if kind == own else kind))
    return list(dict.fromkeys(cases))


# -- inputs ------------------------------------------------------------------------------------
def batch(spec: ExperimentSpec, step: int) -> dict:
    """The real batch of one train_step: uniform images in the data range, labels 0..9."""
    rng = np.random.default_rng([DATA_SEED, step])
    return randomness.random_batch(spec, rng, randomness.real_batches_per_step(spec) * spec.batch_size)


def probes(spec: ExperimentSpec) -> dict:
    """Fixed inputs for the forward checks (evaluation mode)."""
    rng = np.random.default_rng(PROBE_SEED)
    z = rng.standard_normal((spec.batch_size, spec.latent_dim)).astype(spec.dtype)  # drawn first
    return {"z": z, **randomness.random_batch(spec, rng, spec.batch_size)}


def random_weights(spec: ExperimentSpec, rng: np.random.Generator) -> dict:
    """Canonical weights with every array random (unlike the initial weights, whose batch-norm
    statistics are 0 and 1 and whose biases are 0): running variances positive, u unit."""
    out = {}
    for name, shape in arch.weight_shapes(spec).items():
        a = rng.standard_normal(shape) * 0.1
        if name.endswith(".running_var"):
            a = 0.5 + rng.random(shape)
        elif name.endswith((".u", ".v")):
            a = a / np.linalg.norm(a)
        elif name.endswith(".weight") and len(shape) == 1:  # batch-norm scale
            a = 1.0 + a
        out[name] = a.astype(spec.dtype)
    return out


def forward(trainer, spec: ExperimentSpec, p: dict) -> dict:
    """Every forward output of the backend contract that the spec's family has."""
    out = {"sample": trainer.sample(p["z"], p["y"])}
    if spec.has_discriminator:
        out["discriminate"] = trainer.discriminate(p["x"])
    if spec.has_encoder:
        mean, logvar = trainer.encode(p["x"], p["y"])
        out.update({"encode.mean": mean, "encode.logvar": logvar, "decode": trainer.decode(p["z"], p["y"])})
    return out
