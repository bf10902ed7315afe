"""Experiment specifications: everything about an experiment that is not framework code.

A spec is a frozen dataclass. Both twins are built from it and nothing else, so every
value that differs between PyTorch and TensorFlow defaults is written here explicitly
(batch-norm momentum and epsilon, optimizer epsilon, LeakyReLU slope, padding).

Conventions fixed here, once, for both twins:
- Images at the backend boundary are NumPy float arrays in NCHW, (batch, 1, 28, 28).
- Batch-norm momentum uses the PyTorch convention: the weight of the *new* batch,
  ``running = (1 - momentum) * running + momentum * batch_stat``; the running variance
  stores the unbiased (n - 1) batch variance, normalisation uses the biased one
  (``bn_variance="biased"`` stores the biased one, as Keras; Keras' momentum 0.99 is 0.01 here).
- Optimizers follow the PyTorch formulas: Adam adds ``eps`` to the bias-corrected
  ``sqrt(v_hat)``; RMSprop adds ``eps`` outside the square root, ``g / (sqrt(v) + eps)``.
  The peers' forms are options: ``adam_eps="epsilon_hat"``, ``rmsprop_eps_placement="inside"``,
  ``rmsprop_initial_ms=1`` (TF1).
- Weight decay is either coupled (L2 added to the gradient, ``g += wd * p``) or decoupled
  (``p *= 1 - lr * wd`` before the update, as in AdamW, Loshchilov & Hutter 2019).
- float32 precision is pinned: ``float32_precision="full"`` turns TF32 off in both twins
  (PyTorch's cuDNN convolutions and TensorFlow use it on GPUs by default), "tf32" allows it.
- Label smoothing is written as targets: one-sided keeps fake at 0 and sets real to
  ``1 - label_smoothing``; two-sided also sets fake to ``label_smoothing``. The peers' styles
  are targets too (`smoothed_targets`): TF-GAN (tf.losses.sigmoid_cross_entropy on the real
  side only) sets real to ``1 - label_smoothing / 2``; Keras' BinaryCrossentropy smooths both
  classes toward 1/2: real ``1 - label_smoothing / 2``, fake ``label_smoothing / 2``.
- Gradient-penalty forms: "subtract" ``(||g|| - t)^2`` (Gulrajani et al. 2017), "divide"
  ``(||g|| / t - 1)^2`` (TF-GAN's ``target``), "one_sided" ``max(0, ||g|| - t)^2``.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .conventions import BCE_LOSSES, CONVENTION_PRESETS, CONVENTIONS, field_value
from .facts import DATASET_FACTS, DATASETS, FAMILIES, FAMILY_FACTS

# families and datasets: bench/core/facts.py; peer conventions: bench/core/conventions.py
ARCHITECTURES = ("mlp", "dcgan")
GAN_LOSSES = ("minimax", "non-saturating", "wasserstein", "wgan-gp", "hinge", "lsgan", "ragan")
G_NEEDS_REAL = ("ragan",)  # losses whose generator term also reads D(x) on real data
LOSSES = GAN_LOSSES + ("elbo",)
LIKELIHOODS = ("bernoulli", "gaussian")
ACTIVATIONS = ("leaky_relu", "relu")
OPTIMIZERS = ("adam", "rmsprop")
SMOOTHING_SIDES = ("none", "one", "two", "tfgan", "keras")
# how many of the two targets each style moves (TF-GAN smooths the real side only, Keras both)
SMOOTHED_SIDES = {"none": 0, "one": 1, "two": 2, "tfgan": 1, "keras": 2}
# reductions of per-example losses (impls/*/losses.py `reduce`)
REDUCTIONS = ("mean", "sum", "none", "sum_by_nonzero_weights")
GP_FORMS = ("subtract", "divide", "one_sided")
BN_VARIANCES = ("unbiased", "biased")  # what the batch-norm running variance stores
RMSPROP_EPS_PLACEMENTS = ("outside", "inside")
ADAM_EPS = ("torch", "epsilon_hat")
# spectral norm (bench/core/arch.py): divide by sigma ("equality", Miyato 2018, torch, Keras) or by
# max(1, sigma) ("at_most_one", TF-GAN's spectral_normalize(equality_constrained=False))
SN_FORMS = ("equality", "at_most_one")
# the singular vector the power iteration keeps between steps: "output" (u, rows = output units;
# torch, Keras 3, torchgan, compare_gan singular_value="right") or "input" (v, the input side;
# TF-GAN's compute_spectral_norm, compare_gan's default singular_value="left")
SN_VECTORS = ("output", "input")
DTYPES = ("float32", "float64")
DEVICES = ("cpu", "cuda")  # where both twins train (the CLI resolves "auto" to one of them)
# the layer kinds with a weight matrix, the ones spectral norm normalizes (bench/core/arch.py)
SN_KINDS = ("dense", "conv", "convT")
# float32 matmuls and convolutions: "full" IEEE float32, or "tf32" (10-bit mantissa inputs), which
# PyTorch's cuDNN convolutions and TensorFlow's GPU kernels use by default on Ampere and newer
FLOAT32_PRECISIONS = ("full", "tf32")

# The gradient penalty's norm is sqrt(sum g^2 + GP_EPSILON), TF-GAN's choice
# (tfgan.losses.wasserstein_gradient_penalty, epsilon=1e-10): the derivative of sqrt at 0 is
# infinite, so without it a critic whose input gradient is exactly zero at an interpolate (a
# ReLU critic with every unit off, f(x) = 0) turns every critic gradient into NaN.
GP_EPSILON = 1e-10


def smoothed_targets(label_smoothing: float = 0.0, style: str = "none") -> tuple[float, float]:
    """(real target, fake target) of BCE losses for one label-smoothing style.

    "none": (1, 0); "one" (genbench one-sided, Salimans et al. 2016): (1 - ls, 0);
    "two" (genbench two-sided): (1 - ls, ls); "tfgan" (TF-GAN's D losses, through
    tf.losses.sigmoid_cross_entropy, real side only): (1 - ls / 2, 0); "keras"
    (BinaryCrossentropy(label_smoothing=ls) on both sides): (1 - ls / 2, ls / 2)."""
    check_choice("label smoothing style", style, SMOOTHING_SIDES)
    ls = float(label_smoothing)
    if style == "none":
        return 1.0, 0.0
    if style == "one":
        return 1.0 - ls, 0.0
    if style == "two":
        return 1.0 - ls, ls
    if style == "tfgan":
        return 1.0 * (1.0 - ls) + 0.5 * ls, 0.0
    return 1.0 * (1.0 - ls) + 0.5 * ls, 0.0 * (1.0 - ls) + 0.5 * ls


class SpecError(ValueError):
    """A spec asks for something that does not exist or does not fit together."""


def did_you_mean(name: str, choices) -> str:
    """ "; did you mean 'x'?" for the closest choice (difflib), or ""."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def check_choice(name: str, value: Any, allowed) -> None:
    """Refuse a value outside `allowed`: one SpecError (a ValueError) naming every allowed value.

    Every string option, in the spec dataclasses and at each twin function that takes one, is
    checked through here, so a misspelt option fails where it is given instead of falling back
    to a default."""
    if value not in allowed:
        raise SpecError(f"{name}={value!r} is not one of {', '.join(map(str, allowed))}" + did_you_mean(value, allowed))


@dataclass(frozen=True)
class OptimizerSpec:
    kind: str = "adam"
    lr: float = 2e-4
    beta1: float = 0.5  # Adam only
    beta2: float = 0.999  # Adam only
    rho: float = 0.99  # RMSprop only: torch `alpha`, Keras `rho`
    eps: float = 1e-8  # torch placement (see module docstring), not Keras' 1e-7 inside sqrt
    weight_decay: float = 0.0
    decoupled_weight_decay: bool = False
    # peer conventions (docs/conventions.md); the defaults are torch.optim's formulas
    rmsprop_eps_placement: str = "outside"  # outside: g / (sqrt(v) + eps); inside (TF/Keras): g / sqrt(v + eps)
    rmsprop_initial_ms: float = 0.0  # initial mean square v_0: torch/Keras 0, TF1 RMSPropOptimizer 1
    adam_eps: str = "torch"  # torch: eps added to sqrt(v_hat); epsilon_hat (TF1, Keras 2): lr_t m / (sqrt(v) + eps)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        check_choice("optimizer.kind", self.kind, OPTIMIZERS)
        check_choice("optimizer.rmsprop_eps_placement", self.rmsprop_eps_placement, RMSPROP_EPS_PLACEMENTS)
        check_choice("optimizer.adam_eps", self.adam_eps, ADAM_EPS)
        if self.rmsprop_initial_ms not in (0.0, 1.0):
            raise SpecError("optimizer.rmsprop_initial_ms is 0 (torch, Keras) or 1 (TF1)")
        if self.lr <= 0 or self.eps <= 0 or self.weight_decay < 0:
            raise SpecError("optimizer lr and eps must be > 0 and weight_decay >= 0")


@dataclass(frozen=True)
class NetSpec:
    """One network. `hidden` are dense widths (mlp) or conv channels (dcgan)."""

    hidden: tuple[int, ...] = (256, 256)
    activation: str = "leaky_relu"  # leaky_relu | relu
    leaky_slope: float = 0.2  # torch LeakyReLU 0.01, Keras 3 LeakyReLU 0.3, tf.nn 0.2: always explicit
    batch_norm: bool = False
    bn_momentum: float = 0.1  # torch convention (weight of the new batch)
    bn_eps: float = 1e-5  # torch default 1e-5, Keras 1e-3
    bn_variance: str = "unbiased"  # running variance: unbiased batch variance (torch) or biased (Keras, TF)
    dropout: float = 0.0
    spectral_norm: bool = False
    sn_power_iterations: int = 1
    sn_eps: float = 1e-12  # normalize(x) = x / max(||x||, sn_eps), torch's F.normalize
    sn_form: str = "equality"  # equality: W / sigma; at_most_one: W / max(1, sigma) (TF-GAN option)
    sn_vector: str = "output"  # the stored singular vector: output side u (torch) or input side v (TF-GAN)

    def __post_init__(self) -> None:
        self.validate("NetSpec")

    def validate(self, name: str) -> None:
        check_choice(f"{name}.activation", self.activation, ACTIVATIONS)
        check_choice(f"{name}.bn_variance", self.bn_variance, BN_VARIANCES)
        if not 0.0 <= self.dropout < 1.0:
            raise SpecError(f"{name}.dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 < self.bn_momentum <= 1.0:
            raise SpecError(f"{name}.bn_momentum must be in (0, 1], got {self.bn_momentum}")
        if self.sn_power_iterations < 1:
            raise SpecError(f"{name}.sn_power_iterations must be >= 1")
        check_choice(f"{name}.sn_form", self.sn_form, SN_FORMS)
        check_choice(f"{name}.sn_vector", self.sn_vector, SN_VECTORS)
        if self.sn_eps <= 0:
            raise SpecError(f"{name}.sn_eps must be > 0")
        if not self.hidden or any(h <= 0 for h in self.hidden):
            raise SpecError(f"{name}.hidden must be a non-empty tuple of positive widths")


@dataclass(frozen=True)
class ExperimentSpec:
    name: str
    family: str = "gan"
    architecture: str = "mlp"
    dataset: str = "mnist"
    loss: str = "non-saturating"
    latent_dim: int = 64
    # VAE likelihood: bernoulli (logits, data in [0, 1]) or gaussian (sigmoid mean, fixed sigma)
    likelihood: str = "bernoulli"
    decoder_sigma: float = 0.1
    # networks: the generator is the VAE decoder; the encoder exists for vae, cvae, vaegan
    generator: NetSpec = field(default_factory=NetSpec)
    discriminator: NetSpec = field(default_factory=NetSpec)
    encoder: NetSpec = field(default_factory=NetSpec)
    g_optimizer: OptimizerSpec = field(default_factory=OptimizerSpec)
    d_optimizer: OptimizerSpec = field(default_factory=OptimizerSpec)
    # stabilizers
    label_smoothing: float = 0.0
    label_smoothing_sides: str = "none"  # none | one | two
    gradient_penalty: bool = False  # add the GP term to any GAN loss; implied by loss "wgan-gp"
    gp_lambda: float = 10.0
    gp_target: float = 1.0
    gp_form: str = "subtract"  # subtract | divide | one_sided (module docstring)
    n_critic: int = 1
    weight_clip: float = 0.0  # > 0: WGAN weight clipping of every D parameter (Arjovsky 2017)
    vaegan_gamma: float = 1e-2  # weight of feature-matching reconstruction in the decoder loss
    # budget
    batch_size: int = 64
    steps: int = 1000
    seed: int = 0
    dtype: str = "float32"
    float32_precision: str = "full"  # pinned in both twins at build; every record says what ran
    # the peer whose conventions the spec follows; "torch" is genbench's own. The fields above
    # decide what runs: a spec naming a peer must hold the values its preset sets
    # (CONVENTION_PRESETS, applied by `with_convention`), or it is refused.
    convention: str = "torch"

    def __post_init__(self) -> None:
        self.validate()

    # -- derived facts, used by both twins -------------------------------------------------
    @property
    def is_image(self) -> bool:
        return DATASET_FACTS[self.dataset].is_image

    @property
    def source_dataset(self) -> str:
        """The dataset whose files the data is made from (Stacked MNIST: MNIST's)."""
        return DATASET_FACTS[self.dataset].source or self.dataset

    @property
    def data_shape(self) -> tuple[int, ...]:
        return DATASET_FACTS[self.dataset].shape

    @property
    def data_dim(self) -> int:
        n = 1
        for s in self.data_shape:
            n *= s
        return n

    @property
    def data_range(self) -> tuple[float, float]:
        """GANs and VAE-GAN see [-1, 1] (tanh output); VAEs see [0, 1] (Bernoulli/sigmoid)."""
        if not self.is_image:
            return (float("-inf"), float("inf"))
        return (0.0, 1.0) if FAMILY_FACTS[self.family].unit_range else (-1.0, 1.0)

    @property
    def has_discriminator(self) -> bool:
        return FAMILY_FACTS[self.family].discriminator

    @property
    def has_encoder(self) -> bool:
        return FAMILY_FACTS[self.family].encoder

    @property
    def conditional(self) -> bool:
        return FAMILY_FACTS[self.family].conditional

    @property
    def uses_gp(self) -> bool:
        return self.family == "gan" and (self.loss == "wgan-gp" or self.gradient_penalty)

    @property
    def targets(self) -> tuple[float, float]:
        """(real target, fake target) for BCE losses, with label smoothing applied."""
        return smoothed_targets(self.label_smoothing, self.label_smoothing_sides)

    def validate(self) -> None:
        check_choice("family", self.family, FAMILIES)
        check_choice("architecture", self.architecture, ARCHITECTURES)
        check_choice("dataset", self.dataset, DATASETS)
        check_choice("loss", self.loss, LOSSES)
        check_choice("likelihood", self.likelihood, LIKELIHOODS)
        check_choice("label_smoothing_sides", self.label_smoothing_sides, SMOOTHING_SIDES)
        check_choice("dtype", self.dtype, DTYPES)
        check_choice("float32_precision", self.float32_precision, FLOAT32_PRECISIONS)
        check_choice("gp_form", self.gp_form, GP_FORMS)
        check_choice("convention", self.convention, CONVENTIONS)
        for name in ("generator", "discriminator", "encoder"):
            getattr(self, name).validate(name)
        self.g_optimizer.validate()
        self.d_optimizer.validate()
        if not self.has_discriminator and self.loss != "elbo":
            raise SpecError(f"family {self.family} trains with loss 'elbo', not {self.loss!r}")
        if self.has_discriminator and self.loss == "elbo":
            raise SpecError(f"family {self.family} needs a GAN loss: {', '.join(GAN_LOSSES)}")
        if self.family == "vaegan" and self.loss not in BCE_LOSSES:
            raise SpecError("vaegan uses a BCE discriminator: loss minimax or non-saturating")
        if not self.is_image and (self.family != "gan" or self.architecture != "mlp"):
            raise SpecError(f"dataset {self.dataset} is 2-D: only family gan with architecture mlp")
        if self.family not in DATASET_FACTS[self.dataset].families:
            raise SpecError(
                f"dataset {self.dataset} is for family {' or '.join(DATASET_FACTS[self.dataset].families)} "
                f"only, not {self.family}"
            )
        if self.architecture == "dcgan" and self.family not in ("gan",):
            raise SpecError("architecture dcgan is built for family gan; use mlp for VAEs")
        if self.architecture == "dcgan" and len(self.generator.hidden) != 2:
            raise SpecError("dcgan generator.hidden is (channels at 7x7, channels at 14x14)")
        if self.architecture == "dcgan" and len(self.discriminator.hidden) != 2:
            raise SpecError("dcgan discriminator.hidden is (channels at 14x14, channels at 7x7)")
        if self.label_smoothing_sides in ("one", "two") and not 0.0 < self.label_smoothing < 0.5:
            raise SpecError("label_smoothing must be in (0, 0.5) when smoothing is on")
        if self.label_smoothing_sides in ("tfgan", "keras") and not 0.0 < self.label_smoothing <= 1.0:
            raise SpecError("label_smoothing must be in (0, 1] for the tfgan and keras styles")
        if self.gp_form == "divide" and self.gp_target <= 0:
            raise SpecError("gp_form 'divide' needs gp_target > 0")
        if self.label_smoothing_sides != "none" and self.loss not in BCE_LOSSES:
            raise SpecError("label smoothing applies to BCE losses (minimax, non-saturating)")
        if self.n_critic < 1 or self.batch_size < 2 or self.steps < 1 or self.latent_dim < 1:
            raise SpecError("n_critic >= 1, batch_size >= 2, steps >= 1, latent_dim >= 1")
        if self.gradient_penalty and self.family != "gan":
            raise SpecError("gradient_penalty applies to family gan")
        if self.weight_clip < 0:
            raise SpecError("weight_clip must be >= 0 (0 turns clipping off)")
        self._check_convention()

    def _check_convention(self) -> None:
        """The fields its convention's preset sets hold the preset's values."""
        wrong = [
            f"{key}={field_value(self, key)!r} (the preset sets {value!r})"
            for key, value in CONVENTION_PRESETS[self.convention](self).items()
            if field_value(self, key) != value
        ]
        if wrong:
            more = f"; and {len(wrong) - 3} more" if len(wrong) > 3 else ""
            raise SpecError(
                f"convention={self.convention!r} does not match the spec's fields: "
                f"{'; '.join(wrong[:3])}{more}. "
                f"Apply it with spec.with_convention({self.convention!r}) (or build the spec with "
                f"convention='torch')"
            )

    def with_convention(self, convention: str) -> ExperimentSpec:
        """This spec with a peer's conventions set together (CONVENTION_PRESETS) and the preset's
        name recorded. A spec follows one peer: moving one to another peer is refused."""
        check_choice("convention", convention, CONVENTIONS)
        if self.convention not in ("torch", convention):
            raise SpecError(
                f"the spec follows convention {self.convention!r} already; apply {convention!r} "
                f"to a spec with convention 'torch'"
            )
        return self.with_(convention=convention, **CONVENTION_PRESETS[convention](self))

    # -- serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ExperimentSpec:
        d = dict(d)
        for key, sub in (
            ("generator", NetSpec),
            ("discriminator", NetSpec),
            ("encoder", NetSpec),
            ("g_optimizer", OptimizerSpec),
            ("d_optimizer", OptimizerSpec),
        ):
            if key in d and isinstance(d[key], dict):
                v = dict(d[key])
                if sub is NetSpec:
                    v["hidden"] = tuple(v.get("hidden", ()))
                unknown = set(v) - {f.name for f in fields(sub)}
                if unknown:
                    raise SpecError(f"unknown {key} fields: {', '.join(sorted(unknown))}")
                try:
                    d[key] = sub(**v)
                except SpecError as e:
                    raise SpecError(f"{key}: {e}") from None
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise SpecError(f"unknown spec fields: {', '.join(sorted(unknown))}")
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def with_(self, **changes) -> ExperimentSpec:
        """A copy with top-level fields changed; nested ones as 'generator.batch_norm'."""
        nested: dict[str, dict] = {}
        top = {}
        for key, value in changes.items():
            if "." in key:
                head, tail = key.split(".", 1)
                nested.setdefault(head, {})[tail] = value
            else:
                top[key] = value
        for head, sub in nested.items():
            if head not in ("generator", "discriminator", "encoder", "g_optimizer", "d_optimizer"):
                raise SpecError(f"{head} has no nested fields")
            top[head] = replace(top.get(head, getattr(self, head)), **sub)
        return replace(self, **top)
