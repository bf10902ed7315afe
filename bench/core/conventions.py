"""Peer conventions: the settings in which a peer library's defaults differ from genbench's own.

A preset (CONVENTION_PRESETS) gives, for a spec, the field changes that set a peer's
conventions together, written as `ExperimentSpec.with_` takes them ("g_optimizer.eps"). It
keeps the model's hyperparameters (learning rates, betas, rho, BN momentum as a rate) and
changes formulas and the peer's default constants: optimizer eps and where it is added, the
RMSprop start, batch norm's stored variance, eps and Keras' momentum (0.99 of the old value =
0.01 of the new batch), label-smoothing style, gradient-penalty form. Applying a preset twice
changes nothing more: a spec naming a peer must hold what its preset sets
(bench/core/specs.py, `ExperimentSpec.with_convention` applies one). docs/conventions.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

CONVENTIONS = ("torch", "tfgan", "keras", "torchgan", "mimicry")
BCE_LOSSES = ("minimax", "non-saturating")  # the losses label smoothing applies to


def field_value(spec, key: str) -> Any:
    """spec.<key>, where key may name a nested field ("g_optimizer.eps")."""
    head, _, tail = key.partition(".")
    return getattr(getattr(spec, head), tail) if tail else getattr(spec, head)


def _tf_batch_norm() -> dict:
    """Keras/TF BatchNormalization defaults: momentum 0.99 (Keras convention), epsilon 1e-3,
    the biased batch variance in the moving variance."""
    return {
        f"{n}.{k}": v
        for n in ("generator", "discriminator", "encoder")
        for k, v in (("bn_momentum", 1.0 - 0.99), ("bn_eps", 1e-3), ("bn_variance", "biased"))
    }


def _spectral_norm(**kw) -> dict:
    """Spectral-norm settings on every net (they act only where spectral_norm is on). TF-GAN's
    compute_spectral_norm keeps the input-side vector and normalizes with tf.nn.l2_normalize,
    x / sqrt(max(sum x^2, 1e-12)) = x / max(||x||, 1e-6); Keras 3's SpectralNormalization keeps
    the output side, as torch, and normalizes with ops.normalize, x / max(||x||, 1e-7). Both
    divide by sigma (TF-GAN's equality_constrained=True default): sn_form stays "equality"."""
    return {f"{n}.{k}": v for n in ("generator", "discriminator", "encoder") for k, v in kw.items()}


def _optimizers(spec, adam: dict, rmsprop: dict) -> dict:
    out = {}
    for name in ("g_optimizer", "d_optimizer"):
        for k, v in (adam if getattr(spec, name).kind == "adam" else rmsprop).items():
            out[f"{name}.{k}"] = v
    return out


def _smoothing(spec, style: str, default: float = 0.0) -> dict:
    """The peer's smoothing style where smoothing is on; TF-GAN's D losses smooth by 0.25 by default."""
    if spec.loss not in BCE_LOSSES:
        return {}
    if spec.label_smoothing_sides != "none":
        return {"label_smoothing_sides": style}
    if default:
        return {"label_smoothing_sides": style, "label_smoothing": default}
    return {}


def _tfgan(spec) -> dict:
    # TF-GAN trains with tf.compat.v1 optimizers: AdamOptimizer (epsilon hat, 1e-8) and
    # RMSPropOptimizer (eps 1e-10 inside the sqrt, mean square starting at 1)
    opts = _optimizers(
        spec,
        {"adam_eps": "epsilon_hat", "eps": 1e-8},
        {"rmsprop_eps_placement": "inside", "rmsprop_initial_ms": 1.0, "eps": 1e-10},
    )
    return {
        "gp_form": "divide",
        **_smoothing(spec, "tfgan", 0.25),
        **_tf_batch_norm(),
        **opts,
        **_spectral_norm(sn_vector="input", sn_eps=1e-6),
    }


def _keras(spec) -> dict:
    # Keras 3: Adam epsilon hat 1e-7; RMSprop eps 1e-7 inside the sqrt, velocity starting at 0
    opts = _optimizers(
        spec,
        {"adam_eps": "epsilon_hat", "eps": 1e-7},
        {"rmsprop_eps_placement": "inside", "rmsprop_initial_ms": 0.0, "eps": 1e-7},
    )
    return {**_smoothing(spec, "keras"), **_tf_batch_norm(), **opts, **_spectral_norm(sn_eps=1e-7)}


def _torch_like(spec) -> dict:
    # torchgan and mimicry train with torch.optim and torch.nn.BatchNorm, subtract the GP target,
    # and smooth one side (torchgan's MinimaxDiscriminatorLoss(label_smoothing)): genbench's own.
    # torchgan's SpectralNorm2d keeps u (output side) in torch's order, as genbench's default
    # (its x / (||x|| + 1e-12) differs from max(||x||, eps) only by ~1e-12 relative)
    return _smoothing(spec, "one")


CONVENTION_PRESETS: dict[str, Callable[..., dict]] = {
    "torch": lambda spec: {},
    "tfgan": _tfgan,
    "keras": _keras,
    "torchgan": _torch_like,
    "mimicry": _torch_like,
}
assert tuple(CONVENTION_PRESETS) == CONVENTIONS
