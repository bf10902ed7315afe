"""Smoke test of the catalog: every model, and every stabilizer that applies to it, builds
and trains a few steps in each framework with finite losses, and samples / encodes in the
right shapes.

compare_gan style: the default selection is one axis at a time (each model bare, each
stabilizer on one representative model); the rest of the model x stabilizer product is
marked `slow`: the default `pytest` leaves it out (pyproject.toml's addopts deselects `slow`),
`tox -e quality` and `pytest -m slow` run it.
Widths and batch are shrunk: this checks that things fit together, not what they learn.
"""

import numpy as np
import pytest

from bench.core import randomness, registry
from bench.core.facts import NUM_CLASSES

STEPS = 2
BATCH = 8
N_SAMPLES = 5

# each stabilizer on one model that exercises it (conv layers where it touches them)
REPRESENTATIVE = {
    "weight-decay": "gan",  # RMSprop + coupled L2
    "weight-decay-decoupled": "vae",  # AdamW
    "dropout": "vae",  # encoder dropout (dcgan's D already has dropout bare)
    "batch-norm": "gan",  # 2-D batch norm in an MLP (dcgan's G has 4-D batch norm bare)
    "label-smoothing-one": "dcgan",
    "label-smoothing-two": "gan-minimax",
    "spectral-norm": "dcgan",  # conv and dense layers
    "gradient-penalty": "gan",
}

LOSS_TERMS = {
    "gan": {"d_loss", "d_loss_real", "d_loss_fake", "g_loss"},
    "vae": {"loss", "recon", "kl", "elbo"},
    "cvae": {"loss", "recon", "kl", "elbo"},
    "vaegan": {"d_loss", "g_loss", "kl", "llike", "enc_loss", "dec_loss"},
}


def _cases():
    cases = []
    for model in registry.MODELS:
        cases.append(pytest.param(model, (), id=model))
        for stab in registry.applicable(model):
            marks = () if REPRESENTATIVE.get(stab) == model else (pytest.mark.slow,)
            cases.append(pytest.param(model, (stab,), id=f"{model}+{stab}", marks=marks))
    return cases


def small(spec):
    """The spec at smoke size: batch 8, narrow networks (dcgan widths stay a pair)."""
    if spec.architecture == "dcgan":
        widths = {"generator.hidden": (8, 4), "discriminator.hidden": (4, 8)}
    else:
        widths = {f"{net}.hidden": (16, 16) for net in ("generator", "discriminator", "encoder")}
    return spec.with_(batch_size=BATCH, **widths)


def build(backend, framework, spec, bare):
    # TF: the runner's default variant (tf.function) for the bare models; eager for the
    # stabilizer variants, where a trace per spec would cost more than the steps
    if framework == "tensorflow" and not bare:
        return backend.build(spec, variant="eager")
    return backend.build(spec)


def test_representatives_are_applicable():
    for stab, model in REPRESENTATIVE.items():
        assert stab in registry.applicable(model), (stab, model)
    assert set(REPRESENTATIVE) == set(registry.STABILIZERS)


@pytest.mark.parametrize("model,stabilizers", _cases())
def test_trains_a_few_steps(framework, backend, model, stabilizers):
    spec = small(registry.experiment(model, stabilizers, steps=STEPS))
    trainer = build(backend, framework, spec, bare=not stabilizers)
    rng = np.random.default_rng(0)
    want_terms = LOSS_TERMS[spec.family] | ({"gp"} if spec.uses_gp else set())
    for step in range(spec.steps):
        n = spec.batch_size * randomness.real_batches_per_step(spec)
        out = trainer.train_step(randomness.random_batch(spec, rng, n), randomness.step_noise(spec, rng))
        assert set(out) == want_terms, f"{spec.name} step {step}: terms {sorted(out)}"
        bad = {k: v for k, v in out.items() if not np.isfinite(v)}
        assert not bad, f"{spec.name} step {step}: non-finite losses {bad}"
    weights = trainer.get_weights()
    bad = [k for k, v in weights.items() if not np.all(np.isfinite(v))]
    assert not bad, f"{spec.name}: non-finite weights {bad[:5]}"
    if "spectral-norm" in stabilizers:
        assert any(k.endswith(".u") for k in weights)

    z = rng.standard_normal((N_SAMPLES, spec.latent_dim)).astype(spec.dtype)
    y = np.arange(N_SAMPLES) % NUM_CLASSES if spec.conditional else None
    samples = trainer.sample(z, y)
    assert samples.shape == (N_SAMPLES,) + spec.data_shape
    assert np.all(np.isfinite(samples))
    if spec.is_image:  # tanh (GANs) or sigmoid (VAEs) outputs: inside the data range
        lo, hi = spec.data_range
        assert lo <= samples.min() and samples.max() <= hi
    if spec.has_encoder:
        x = randomness.random_batch(spec, rng, N_SAMPLES)["x"]
        mean, logvar = trainer.encode(x, y)
        assert mean.shape == logvar.shape == (N_SAMPLES, spec.latent_dim)
        assert np.all(np.isfinite(mean)) and np.all(np.isfinite(logvar))
        assert trainer.reconstruct(x, y).shape == (N_SAMPLES,) + spec.data_shape
    if spec.has_discriminator:
        assert trainer.discriminate(samples).shape == (N_SAMPLES,)


@pytest.mark.parametrize("model", list(registry.MODELS))
def test_every_applicable_stabilizer_changes_the_spec(model):
    """A stabilizer that leaves the spec as it was would add a table row identical to the
    bare model's under another name."""
    bare = registry.experiment(model)
    for stab in registry.applicable(model):
        spec = registry.experiment(model, (stab,))
        assert spec.with_(name=bare.name) != bare, f"{stab} does not change {model}"
