"""Behaviours every model must have, checked in each twin against references of the test's own.

- a conditional model's samples, reconstructions and training losses depend on the label, and
  only on it: the same label gives the same output, another label another one;
- the VAE's latent is z = mean + exp(logvar / 2) * eps with the harness's eps, exactly;
- evaluation mode uses batch norm's running statistics and no dropout: deterministic, equal to a
  NumPy forward with the running statistics, and it changes no state;
- the discriminator update changes only D, the generator update only G (the encoder update only E);
- a small step along the recorded gradient lowers each loss (every GAN loss, the gradient
  penalty, the ELBO, the three VAE-GAN losses) by lr * |grad|^2 to first order, and the
  trainer's own optimizer step lowers it too;
- after enough power iterations a spectrally normalised weight has largest singular value 1.
"""

import numpy as np
import pytest

from bench.core import data, registry
from bench.core.randomness import real_batches_per_step, step_noise


def build64(backend, spec):
    spec = spec.with_(dtype="float64")
    kw = {"variant": "eager"} if backend.__name__.endswith("tensorflow") else {}
    return spec, backend.build(spec, **kw)


def small(model, stabilizers=(), **kw):
    return registry.experiment(model, stabilizers, profile="smoke", **kw)


def real_batch(spec, rng):
    n = real_batches_per_step(spec) * spec.batch_size
    if spec.is_image:
        lo, hi = spec.data_range
        return {"x": rng.uniform(lo, hi, (n, 1, 28, 28)), "y": rng.integers(0, 10, n)}
    points, modes = data.ring8(n, rng)
    return {"x": points.astype(np.float64), "y": modes}


VAE_SMALL = {"latent_dim": 3, "batch_size": 6, "encoder.hidden": (8, 7), "generator.hidden": (7, 8)}
RING_GAN = {
    "latent_dim": 3,
    "batch_size": 16,
    "dataset": "ring8",
    "generator.hidden": (8, 8),
    "discriminator.hidden": (8, 6),
}
MLP_GAN = {"latent_dim": 3, "batch_size": 8, "generator.hidden": (8, 7), "discriminator.hidden": (8, 6)}
DC_SMALL = {"latent_dim": 5, "batch_size": 6, "generator.hidden": (4, 3), "discriminator.hidden": (3, 4)}
VAEGAN_SMALL = {
    "latent_dim": 3,
    "batch_size": 6,
    "encoder.hidden": (8, 7),
    "generator.hidden": (7, 8),
    "discriminator.hidden": (8, 6),
}


# -- conditioning ------------------------------------------------------------------------------
def test_the_label_steers_a_conditional_model_and_nothing_else_does(backend):
    spec, trainer = build64(backend, small("cvae", **VAE_SMALL))
    rng = np.random.default_rng(0)
    n = 10
    z = rng.standard_normal((n, 3))
    x = rng.uniform(0, 1, (n, 1, 28, 28))
    threes, fives, mixed = np.full(n, 3), np.full(n, 5), np.arange(n)
    s3, s5 = trainer.sample(z, threes), trainer.sample(z, fives)
    np.testing.assert_array_equal(trainer.sample(z, threes), s3)  # same label, same output
    per_sample = np.abs(s3 - s5).reshape(n, -1).max(axis=1)
    assert np.all(per_sample > 1e-4), per_sample  # every sample moves with its label
    # labels are per sample: a mixed batch equals each sample drawn with its own label
    mixed_out = trainer.sample(z, mixed)
    for i in range(n):
        np.testing.assert_allclose(mixed_out[i], trainer.sample(z[i : i + 1], mixed[i : i + 1])[0], rtol=1e-12)
    r3, r5 = trainer.reconstruct(x, threes), trainer.reconstruct(x, fives)
    np.testing.assert_array_equal(trainer.reconstruct(x, threes), r3)
    assert np.all(np.abs(r3 - r5).reshape(n, -1).max(axis=1) > 1e-4)
    m3, m5 = trainer.encode(x, threes)[0], trainer.encode(x, fives)[0]
    assert np.all(np.abs(m3 - m5).max(axis=1) > 1e-4)  # the encoder sees the label too
    # ... and so does training: same batch and noise, other labels, other losses
    noise = step_noise(spec, np.random.default_rng(1))
    b = spec.batch_size
    losses = []
    for y in (np.full(b, 3), np.full(b, 3), np.full(b, 5)):
        _, twin = build64(backend, small("cvae", **VAE_SMALL))
        losses.append(twin.train_step({"x": x[:b], "y": y}, noise))
    assert losses[0] == losses[1]
    assert losses[0]["recon"] != losses[2]["recon"]


def test_an_unconditional_model_ignores_labels(backend):
    _, trainer = build64(backend, small("vae", **VAE_SMALL))
    z = np.random.default_rng(0).standard_normal((4, 3))
    np.testing.assert_array_equal(trainer.sample(z, np.full(4, 3)), trainer.sample(z, np.full(4, 7)))
    np.testing.assert_array_equal(trainer.sample(z, np.full(4, 3)), trainer.sample(z))


# -- the reparameterization ----------------------------------------------------------------------
@pytest.mark.parametrize("model", ["vae", "cvae"])
def test_latent_is_mean_plus_sigma_times_the_harness_epsilon(backend, model):
    """train_step reports the reconstruction NLL at its z; the same NLL through the public
    reconstruction_nll at z = mean + exp(logvar / 2) eps (from encode) must agree to rounding.
    Without batch norm and dropout the training and evaluation forwards are the same function."""
    spec, trainer = build64(backend, small(model, **VAE_SMALL))
    rng = np.random.default_rng(3)
    w = trainer.get_weights()
    w["E.fc2.weight"] = w["E.fc2.weight"] * 8.0  # log-variances of order 1, far from exp(0) = 1
    trainer.set_weights(w)
    b = spec.batch_size
    x = rng.uniform(0, 1, (b, 1, 28, 28))
    y = rng.integers(0, 10, b) if spec.conditional else None
    noise = step_noise(spec, np.random.default_rng(4))
    eps = noise["eps"]
    mean, logvar = trainer.encode(x, y)
    assert np.abs(logvar).max() > 0.5
    nll = lambda z: float(np.mean(trainer.reconstruction_nll(x, z, y)))  # noqa: E731
    right = nll(mean + np.exp(logvar / 2) * eps)
    kl = float(np.mean(0.5 * np.sum(mean**2 + np.exp(logvar) - 1 - logvar, axis=1)))
    losses = trainer.train_step({"x": x, "y": y} if y is not None else {"x": x}, noise)
    assert losses["recon"] == pytest.approx(right, rel=1e-10)
    assert losses["kl"] == pytest.approx(kl, rel=1e-10)
    # the check can tell the formula apart from its usual slips
    for wrong in (mean + np.exp(logvar) * eps, mean + logvar * eps, mean, mean + np.exp(-logvar / 2) * eps):
        assert abs(nll(wrong) - right) > 1e-6 * abs(right)


# -- evaluation mode ---------------------------------------------------------------------------
def np_mlp(h, w, net, n_hidden, act, bn_stats=None, eps=1e-5):
    """Dense -> batch norm (running statistics) -> activation, n_hidden times, then dense."""
    for i in range(n_hidden):
        h = h @ w[f"{net}.fc{i}.weight"].T + w[f"{net}.fc{i}.bias"]
        if bn_stats:
            p = f"{net}.bn{i}."
            h = (h - w[p + "running_mean"]) / np.sqrt(w[p + "running_var"] + eps) * w[p + "weight"] + w[p + "bias"]
        h = act(h)
    return h @ w[f"{net}.fc{n_hidden}.weight"].T + w[f"{net}.fc{n_hidden}.bias"]


def randomize(w, rng):
    out = {}
    for k, v in w.items():
        if k.endswith("running_var"):
            out[k] = rng.uniform(0.5, 2.0, v.shape)
        elif k.endswith("running_mean") or k.endswith(".bias"):
            out[k] = rng.normal(0, 0.5, v.shape)
        elif k.endswith(".weight") and v.ndim == 1:
            out[k] = rng.uniform(0.5, 1.5, v.shape)
        else:
            out[k] = rng.uniform(-1, 1, v.shape) / np.sqrt(v.shape[-1])
    return out


def test_evaluation_uses_running_statistics_and_no_dropout(backend):
    """The MLP GAN on MNIST with batch norm in G and D and dropout in D (LeakyReLU 0.2, tanh out)."""
    spec, trainer = build64(backend, small("gan", ("batch-norm", "dropout"), **MLP_GAN))
    assert spec.discriminator.dropout > 0 and spec.discriminator.batch_norm and spec.generator.batch_norm
    rng = np.random.default_rng(5)
    leaky = lambda h: np.where(h > 0, h, 0.2 * h)  # noqa: E731
    x = rng.uniform(-1, 1, (7, 1, 28, 28))
    z = rng.standard_normal((7, 3))
    # a training step moves the running statistics; evaluation must read the moved ones
    trainer.train_step(real_batch(spec, rng), step_noise(spec, rng))
    for w in (trainer.get_weights(), randomize(trainer.get_weights(), rng)):
        trainer.set_weights(w)
        d1, d2 = trainer.discriminate(x), trainer.discriminate(x)
        s1, s2 = trainer.sample(z), trainer.sample(z)
        np.testing.assert_array_equal(d1, d2)  # no dropout mask, no batch statistics
        np.testing.assert_array_equal(s1, s2)
        want_d = np_mlp(x.reshape(7, -1), w, "D", 2, leaky, bn_stats=True)[:, 0]
        want_s = np.tanh(np_mlp(z, w, "G", 2, leaky, bn_stats=True)).reshape(7, 1, 28, 28)
        np.testing.assert_allclose(d1, want_d, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(s1, want_s, rtol=1e-10, atol=1e-12)
        # one sample alone gives the same answer as in a batch (no batch statistics)
        np.testing.assert_allclose(trainer.discriminate(x[:1]), d1[:1], rtol=1e-12)
        after = trainer.get_weights()
        assert all(np.array_equal(after[k], w[k]) for k in w), "evaluation changed the state"


def test_vae_evaluation_uses_running_statistics_and_no_dropout(backend):
    spec, trainer = build64(backend, small("vae", ("batch-norm", "dropout"), **VAE_SMALL))
    rng = np.random.default_rng(6)
    w = randomize(trainer.get_weights(), rng)
    trainer.set_weights(w)
    x = rng.uniform(0, 1, (5, 1, 28, 28))
    relu = lambda h: np.maximum(h, 0)  # noqa: E731
    h = np_mlp(x.reshape(5, -1), w, "E", 2, relu, bn_stats=True)
    mean, logvar = trainer.encode(x)
    np.testing.assert_array_equal(trainer.encode(x)[0], mean)
    np.testing.assert_allclose(mean, h[:, :3], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(logvar, h[:, 3:], rtol=1e-10, atol=1e-12)


# -- which update moves which network ----------------------------------------------------------
def _watch_optimizers(trainer, log):
    """Wrap each optimizer's update so that every call logs the weights before and after it."""
    names = [n for n in ("e_opt", "g_opt", "d_opt") if hasattr(trainer, n)]
    for name in names:
        opt = getattr(trainer, name)
        attr = "step" if trainer.framework == "torch" else "apply"
        original = getattr(opt, attr)

        def wrapped(*args, _original=original, _name=name, **kw):
            before = trainer.get_weights()
            result = _original(*args, **kw)
            log.append((_name, before, trainer.get_weights()))
            return result

        setattr(opt, attr, wrapped)


UPDATE_CASES = {
    "gan": (small("gan", **RING_GAN), ["d_opt", "g_opt"]),
    "wgan-n_critic-5": (small("wgan", **DC_SMALL), ["d_opt"] * 5 + ["g_opt"]),
    "dcgan+batch-norm": (small("dcgan", ("batch-norm",), **DC_SMALL), ["d_opt", "g_opt"]),
    "vaegan": (small("vaegan", **VAEGAN_SMALL), ["e_opt", "g_opt", "d_opt"]),
    "vae": (small("vae", **VAE_SMALL), ["g_opt"]),
}
PREFIX = {"e_opt": "E.", "g_opt": "G.", "d_opt": "D."}


@pytest.mark.parametrize("case", list(UPDATE_CASES))
def test_each_update_changes_only_its_own_network(backend, case):
    """The D update moves every D parameter and nothing of G (or E); the G update moves G and
    nothing of D; between the updates no parameter moves, except WGAN's clipping of D."""
    spec, calls = UPDATE_CASES[case]
    spec, trainer = build64(backend, spec)
    log = []
    _watch_optimizers(trainer, log)
    w_start = trainer.get_weights()
    trainer.train_step(real_batch(spec, np.random.default_rng(7)), step_noise(spec, np.random.default_rng(8)))
    w_end = trainer.get_weights()
    assert [name for name, _, _ in log] == calls
    trainable = sorted(k for k in w_start if not k.endswith(("running_mean", "running_var", ".u")))
    c = spec.weight_clip

    def moved_between(a, b, clipped):
        """Trainable arrays that differ from a to b (D clipped to [-c, c] counts as unmoved)."""
        out = []
        for k in trainable:
            want = np.clip(a[k], -c, c) if clipped and k.startswith("D.") else a[k]
            if not np.array_equal(b[k], want):
                out.append(k)
        return out

    checkpoints = [w_start] + [w for _, before, after in log for w in (before, after)] + [w_end]
    for i in range(0, len(checkpoints), 2):  # the gaps: start -> 1st update, ..., last update -> end
        clipped = c > 0 and i > 0 and log[i // 2 - 1][0] == "d_opt"
        assert moved_between(checkpoints[i], checkpoints[i + 1], clipped) == [], f"moved outside an update ({i // 2})"
    for name, before, after in log:
        changed = set(moved_between(before, after, False))
        own = PREFIX[name]
        if spec.family == "vae":  # one Adam over encoder and decoder: the ELBO trains both
            assert changed == set(trainable)
            continue
        assert all(k.startswith(own) for k in changed), (
            f"{name} changed {sorted(k for k in changed if not k.startswith(own))}"
        )
        want = {k for k in trainable if k.startswith(own)}
        if name == "d_opt" and spec.loss in ("wasserstein", "wgan-gp"):
            # mean f(fake) - mean f(real) does not depend on the critic's output bias: its
            # gradient is exactly 0, and so is its update
            want.discard("D.fc2.bias")
        assert changed == want  # every parameter of its own net


# -- a small step along each loss lowers it ------------------------------------------------------
def _loss_value(losses, key, spec):
    if key == "d_loss" and spec.uses_gp:
        return losses["d_loss"] + spec.gp_lambda * losses["gp"]  # the objective D descends
    return losses[key]


def _descent(backend, spec, key, prefixes, batch, noise):
    """(L0, L at w - lr g, predicted decrease lr |g|^2, L after the trainer's own update) for the
    loss `key` and the parameters under `prefixes`, from fresh twins with the same weights."""
    _, a = build64(backend, spec)
    w0 = a.get_weights()
    a.record_grads = True
    l0 = _loss_value(a.train_step(batch, noise), key, spec)
    grads = {k: v for k, v in a.last_grads.items() if k.startswith(prefixes)}
    assert grads and all(np.isfinite(g).all() for g in grads.values())
    g2 = sum(float(np.sum(g * g)) for g in grads.values())
    lr = 1e-6 * max(abs(l0), 0.1) / g2  # a predicted decrease of 1e-6 relative: no LeakyReLU kink crossed
    w1 = a.get_weights()

    def loss_at(weights):
        _, b = build64(backend, spec)
        b.set_weights(weights)
        return _loss_value(b.train_step(batch, noise), key, spec)

    l_sgd = loss_at({k: v - lr * grads[k] if k in grads else v for k, v in w0.items()})
    l_opt = loss_at({k: w1[k] if k in grads else v for k, v in w0.items()})
    return l0, l_sgd, lr * g2, l_opt


GAN_LOSSES = ("minimax", "non-saturating", "wasserstein", "hinge", "wgan-gp")


@pytest.mark.parametrize("loss", GAN_LOSSES)
def test_a_small_step_lowers_each_gan_loss(backend, loss):
    # no weight clipping and one critic step, so that one step is one gradient; D's own update
    # is made negligible (lr 1e-30) for the generator's loss, which is taken after it
    spec = small("gan", loss=loss, **RING_GAN).with_(weight_clip=0.0, n_critic=1)
    rng = np.random.default_rng(9)
    batch, noise = real_batch(spec, rng), step_noise(spec, rng)
    for key, prefixes, s in (("d_loss", ("D.",), spec), ("g_loss", ("G.",), spec.with_(**{"d_optimizer.lr": 1e-30}))):
        l0, l_sgd, predicted, l_opt = _descent(backend, s, key, prefixes, batch, noise)
        assert l_sgd < l0, (key, l0, l_sgd)
        assert (l0 - l_sgd) / predicted == pytest.approx(1.0, abs=0.01), (key, l0, l_sgd, predicted)
        assert l_opt < l0, f"{key}: the optimizer's own step raised the loss {l0} -> {l_opt}"


def test_a_small_step_lowers_the_negative_elbo(backend):
    spec = small("vae", **VAE_SMALL)
    rng = np.random.default_rng(10)
    batch, noise = real_batch(spec, rng), step_noise(spec, rng)
    l0, l_sgd, predicted, l_opt = _descent(backend, spec, "loss", ("E.", "G."), batch, noise)
    assert l_sgd < l0 and (l0 - l_sgd) / predicted == pytest.approx(1.0, abs=0.01)
    assert l_opt < l0


@pytest.mark.parametrize("key, prefix", [("enc_loss", "E."), ("dec_loss", "G."), ("d_loss", "D.")])
def test_a_small_step_lowers_each_vaegan_loss(backend, key, prefix):
    spec = small("vaegan", **VAEGAN_SMALL)
    rng = np.random.default_rng(11)
    batch, noise = real_batch(spec, rng), step_noise(spec, rng)
    l0, l_sgd, predicted, l_opt = _descent(backend, spec, key, (prefix,), batch, noise)
    assert l_sgd < l0 and (l0 - l_sgd) / predicted == pytest.approx(1.0, abs=0.01), (l0, l_sgd, predicted)
    assert l_opt < l0


# -- spectral norm -----------------------------------------------------------------------------
def _matrix(w):
    return w.reshape(w.shape[0], -1)


def _with_spectrum(shape, rng, top=3.0, ratio=0.5):
    """A weight whose (C_out, rest) matrix has singular values top, top * ratio, top * ratio^2, ..."""
    rows, cols = shape[0], int(np.prod(shape[1:]))
    k = min(rows, cols)
    u, _ = np.linalg.qr(rng.standard_normal((rows, k)))
    v, _ = np.linalg.qr(rng.standard_normal((cols, k)))
    return (u * (top * ratio ** np.arange(k))) @ v.T


@pytest.mark.parametrize("model, overrides", [("gan", RING_GAN), ("hinge-gan", DC_SMALL)], ids=["dense", "conv"])
def test_spectrally_normalised_weights_have_top_singular_value_one(backend, model, overrides):
    spec = small(model, ("spectral-norm",), **overrides).with_(**{"discriminator.sn_power_iterations": 30})
    spec, trainer = build64(backend, spec)
    rng = np.random.default_rng(12)
    w = trainer.get_weights()
    sn_layers = sorted(k[:-2] for k in w if k.endswith(".u"))
    assert sn_layers and all(k.startswith("D.") for k in sn_layers)
    for layer in sn_layers:
        shape = w[layer + ".weight"].shape
        w[layer + ".weight"] = _with_spectrum(shape, rng).reshape(shape)
    trainer.set_weights(w)
    trainer.train_step(real_batch(spec, rng), step_noise(spec, rng))  # power iterations in training
    w1 = trainer.get_weights()
    plain = {}
    for layer in sn_layers:
        m = _matrix(w1[layer + ".weight"])
        s = np.linalg.svd(m, compute_uv=False)
        u = w1[layer + ".u"]
        v = m.T @ u / np.linalg.norm(m.T @ u)
        sigma = u @ m @ v  # what evaluation divides by (from the stored u)
        assert sigma == pytest.approx(s[0], rel=1e-10), layer
        top = np.linalg.svd(m / sigma, compute_uv=False)[0]
        assert top == pytest.approx(1.0, rel=1e-10), layer
        plain[layer + ".weight"] = w1[layer + ".weight"] / s[0]
    # the discriminator with spectral norm is the plain one with W / sigma_max (numpy SVD)
    _, bare = build64(backend, small(model, **overrides))
    bare.set_weights({**{k: v for k, v in w1.items() if not k.endswith(".u")}, **plain})
    x = real_batch(spec, rng)["x"][:5]
    np.testing.assert_allclose(trainer.discriminate(x), bare.discriminate(x), rtol=1e-9, atol=1e-12)


# -- the checks can fail -------------------------------------------------------------------------
def test_a_planted_reparameterization_mistake_is_caught(monkeypatch):
    """z = mean + exp(logvar) eps (a forgotten 1/2) in the PyTorch twin."""
    import torch

    import impls
    from impls.torch.train import Trainer

    def wrong(self, x, cond, noise):
        h, _ = self._run("E", x, self._masks(noise, "E"), cond)
        mean, logvar = torch.chunk(h, 2, dim=1)
        return mean, logvar, mean + torch.exp(logvar) * self._t(noise["eps"])

    monkeypatch.setattr(Trainer, "_encode_sample", wrong)
    with pytest.raises(AssertionError):
        test_latent_is_mean_plus_sigma_times_the_harness_epsilon(impls.load("torch"), "vae")
