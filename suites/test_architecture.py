"""The architecture of every catalog model, stated by hand, and a NumPy forward pass of each family.

The equivalence suite compares the two twins with each other; both read the layer lists of
bench/core/arch.py, so a mistake in those lists (a missing batch norm, a kernel of 3, a slope of
0.01) would pass it. Here the reference is written out in the test from the catalog (docs/cli.md) and
the papers it cites, never derived from arch.py:

- the layers of each network (kind, canonical name, shapes, kernel, stride, padding, activation
  and slope, where batch norm and dropout sit, the output activation) and the parameter count
  as hand arithmetic, compared with arch.py and with the parameters each twin actually holds;
- a NumPy forward pass of one small network per family (MLP VAE with the harness's epsilon,
  conditional VAE, DCGAN generator and discriminator with batch norm, dropout and spectral
  norm), with its own dense, convolution and transposed convolution, matched by both twins in
  float64 from the same canonical weights.

Sources: Kingma & Welling 2014 (VAE, reparameterization z = mean + exp(logvar / 2) eps);
Radford et al. 2016 (DCGAN: strided convolutions, batch norm everywhere except the generator
output and the discriminator input, tanh output); Miyato et al. 2018 (spectral norm: one power
iteration per training forward pass, W / sigma with sigma = u . W v); Ioffe & Szegedy 2015
(batch norm; momentum and unbiased running variance in the PyTorch convention of bench/core/specs.py).
"""

import numpy as np
import pytest

from bench.core import arch, registry
from bench.core.randomness import step_noise

# -- the catalog, written out ------------------------------------------------------------------
IMG = (1, 28, 28)
PIXELS = 28 * 28  # 784
CLASSES = 10


def conv_out(n, k=4, s=2, p=1):
    return (n + 2 * p - k) // s + 1


def convT_out(n, k=4, s=2, p=1):
    return (n - 1) * s - 2 * p + k


# Kernel 4, stride 2, padding 1: 28 -> 14 -> 7 and back (the arithmetic, checked once here).
assert conv_out(28) == 14 and conv_out(14) == 7 and convT_out(7) == 14 and convT_out(14) == 28


def dense(name, n_in, n_out, sn=False, tap=False):
    return ("dense", name, (n_in,), (n_out,), {}, sn, tap)


def conv(name, c_in, c_out, n_in, sn=False):
    return (
        "conv",
        name,
        (c_in, n_in, n_in),
        (c_out, conv_out(n_in), conv_out(n_in)),
        {"kernel": 4, "stride": 2, "padding": 1},
        sn,
        False,
    )


def convT(name, c_in, c_out, n_in):
    return (
        "convT",
        name,
        (c_in, n_in, n_in),
        (c_out, convT_out(n_in), convT_out(n_in)),
        {"kernel": 4, "stride": 2, "padding": 1},
        False,
        False,
    )


def bn(name, shape):
    return ("bn", name, shape, shape, {"momentum": 0.1, "eps": 1e-5}, False, False)


def relu(name, shape, tap=False):
    return ("act", name, shape, shape, {"fn": "relu"}, False, tap)


def lrelu(name, shape, tap=False):
    return ("act", name, shape, shape, {"fn": "leaky_relu", "slope": 0.2}, False, tap)


def drop(name, shape, p, tap=False):
    return ("dropout", name, shape, shape, {"p": p}, False, tap)


def flatten(shape, tap=False):
    n = int(np.prod(shape))
    return ("flatten", "flatten", shape, (n,), {}, False, tap)


def reshape(name, shape_in, shape_out):
    return ("reshape", name, shape_in, shape_out, {}, False, False)


def out(kind, shape):
    return (kind, "out", shape, shape, {}, False, False)


def vae_encoder(latent, n_in=PIXELS, dropout=0.0, batch_norm=False):
    """docs/cli.md: 784-512-256-20, ReLU; the last layer gives [mean, log-variance], 2 x latent."""
    layers = [flatten(IMG)]
    for i, (a, b) in enumerate(((n_in, 512), (512, 256))):
        layers.append(dense(f"fc{i}", a, b))
        if batch_norm:
            layers.append(bn(f"bn{i}", (b,)))
        layers.append(relu(f"act{i}", (b,)))
        if dropout:
            layers.append(drop(f"drop{i}", (b,), dropout))
    return layers + [dense("fc2", 256, 2 * latent)]


def vae_decoder(n_in, batch_norm=False):
    """The mirror image, 20-256-512-784, logits out (the Bernoulli likelihood applies the sigmoid)."""
    layers = []
    for i, (a, b) in enumerate(((n_in, 256), (256, 512))):
        layers.append(dense(f"fc{i}", a, b))
        if batch_norm:
            layers.append(bn(f"bn{i}", (b,)))
        layers.append(relu(f"act{i}", (b,)))
    return layers + [dense("fc2", 512, PIXELS), reshape("reshape_out", (PIXELS,), IMG)]


def mlp_generator(latent, batch_norm=False):
    layers = []
    for i, (a, b) in enumerate(((latent, 256), (256, 512))):
        layers.append(dense(f"fc{i}", a, b))
        if batch_norm:
            layers.append(bn(f"bn{i}", (b,)))
        layers.append(lrelu(f"act{i}", (b,)))
    return layers + [dense("fc2", 512, PIXELS), out("tanh", (PIXELS,)), reshape("reshape_out", (PIXELS,), IMG)]


def mlp_discriminator(dropout=0.0, batch_norm=False, sn=False):
    """784-512-256-1, LeakyReLU 0.2; VAE-GAN's feature-matching layer is the last hidden one."""
    layers = [flatten(IMG)]
    for i, (a, b) in enumerate(((PIXELS, 512), (512, 256))):
        last = i == 1
        layers.append(dense(f"fc{i}", a, b, sn=sn))
        if batch_norm:
            layers.append(bn(f"bn{i}", (b,)))
        layers.append(lrelu(f"act{i}", (b,), tap=last and not dropout))
        if dropout:
            layers.append(drop(f"drop{i}", (b,), dropout, tap=last))
    return layers + [dense("fc2", 256, 1, sn=sn)]


def dcgan_generator(latent=100):
    """Dense to 128 x 7 x 7, then 7 -> 14 -> 28 by transposed convs; batch norm on every block
    but the output (Radford et al. 2016), LeakyReLU 0.2 (docs/cli.md), tanh out."""
    return [
        dense("fc0", latent, 128 * 7 * 7),
        reshape("reshape0", (128 * 7 * 7,), (128, 7, 7)),
        bn("bn0", (128, 7, 7)),
        lrelu("act0", (128, 7, 7)),
        convT("deconv1", 128, 64, 7),
        bn("bn1", (64, 14, 14)),
        lrelu("act1", (64, 14, 14)),
        convT("deconv2", 64, 1, 14),
        out("tanh", IMG),
    ]


def dcgan_discriminator(dropout=0.0, batch_norm=False, sn=False):
    """28 -> 14 -> 7 by strided convs, 64 then 128 channels; no batch norm on the input block
    (Radford et al. 2016); dropout after each activation; one logit from the flattened 128 x 7 x 7."""
    layers = [conv("conv0", 1, 64, 28, sn=sn), lrelu("act0", (64, 14, 14))]
    if dropout:
        layers.append(drop("drop0", (64, 14, 14), dropout))
    layers.append(conv("conv1", 64, 128, 14, sn=sn))
    if batch_norm:
        layers.append(bn("bn1", (128, 7, 7)))
    layers.append(lrelu("act1", (128, 7, 7)))
    if dropout:
        layers.append(drop("drop1", (128, 7, 7), dropout))
    return layers + [flatten((128, 7, 7), tap=True), dense("fc2", 128 * 7 * 7, 1, sn=sn)]


EXPECTED = {
    "vae": {"E": vae_encoder(20), "G": vae_decoder(20)},
    "cvae": {"E": vae_encoder(20, n_in=PIXELS + CLASSES), "G": vae_decoder(20 + CLASSES)},
    "gan": {"G": mlp_generator(64), "D": mlp_discriminator()},
    "gan-minimax": {"G": mlp_generator(64), "D": mlp_discriminator()},
    "dcgan": {"G": dcgan_generator(), "D": dcgan_discriminator(dropout=0.3)},
    "wgan": {"G": dcgan_generator(), "D": dcgan_discriminator()},
    "wgan-gp": {"G": dcgan_generator(), "D": dcgan_discriminator()},
    "hinge-gan": {"G": dcgan_generator(), "D": dcgan_discriminator()},
    "vaegan": {"E": vae_encoder(32), "G": mlp_generator(32), "D": mlp_discriminator()},
    # DCGANs with other losses (Mao et al. 2017; Jolicoeur-Martineau 2018), where the catalog has them
    "lsgan": {"G": dcgan_generator(), "D": dcgan_discriminator()},
    "ragan": {"G": dcgan_generator(), "D": dcgan_discriminator()},
    # stabilizers that change the layers (docs/cli.md: where each one goes)
    "gan+batch-norm": {"G": mlp_generator(64, batch_norm=True), "D": mlp_discriminator(batch_norm=True)},
    "gan+dropout": {"G": mlp_generator(64), "D": mlp_discriminator(dropout=0.3)},
    "gan+spectral-norm": {"G": mlp_generator(64), "D": mlp_discriminator(sn=True)},
    "dcgan+batch-norm": {"G": dcgan_generator(), "D": dcgan_discriminator(dropout=0.3, batch_norm=True)},
    "dcgan+spectral-norm": {"G": dcgan_generator(), "D": dcgan_discriminator(dropout=0.3, sn=True)},
    "wgan+dropout": {"G": dcgan_generator(), "D": dcgan_discriminator(dropout=0.3)},
    "vae+dropout": {"E": vae_encoder(20, dropout=0.2), "G": vae_decoder(20)},
    "vae+batch-norm": {"E": vae_encoder(20, batch_norm=True), "G": vae_decoder(20, batch_norm=True)},
    "vaegan+spectral-norm": {"E": vae_encoder(32), "G": mlp_generator(32), "D": mlp_discriminator(sn=True)},
}

# Trainable parameters, by hand: dense in * out + out; conv C_in * C_out * 4 * 4 + C_out;
# batch norm 2 C (scale and shift).
_VAE_ENC = (784 * 512 + 512) + (512 * 256 + 256) + (256 * 40 + 40)  # 543,528
_VAE_DEC = (20 * 256 + 256) + (256 * 512 + 512) + (512 * 784 + 784)  # 539,152
_CVAE_ENC = (794 * 512 + 512) + (512 * 256 + 256) + (256 * 40 + 40)
_CVAE_DEC = (30 * 256 + 256) + (256 * 512 + 512) + (512 * 784 + 784)
_MLP_G64 = (64 * 256 + 256) + (256 * 512 + 512) + (512 * 784 + 784)
_MLP_D = (784 * 512 + 512) + (512 * 256 + 256) + (256 * 1 + 1)  # 533,505
_DC_G = (100 * 6272 + 6272) + 2 * 128 + (128 * 64 * 16 + 64) + 2 * 64 + (64 * 1 * 16 + 1)
_DC_D = (1 * 64 * 16 + 64) + (64 * 128 * 16 + 128) + (6272 * 1 + 1)
_VAEGAN_E = (784 * 512 + 512) + (512 * 256 + 256) + (256 * 64 + 64)
_MLP_G32 = (32 * 256 + 256) + (256 * 512 + 512) + (512 * 784 + 784)
PARAM_COUNTS = {
    "vae": _VAE_ENC + _VAE_DEC,
    "cvae": _CVAE_ENC + _CVAE_DEC,
    "gan": _MLP_G64 + _MLP_D,
    "gan-minimax": _MLP_G64 + _MLP_D,
    "dcgan": _DC_G + _DC_D,
    "wgan": _DC_G + _DC_D,
    "wgan-gp": _DC_G + _DC_D,
    "hinge-gan": _DC_G + _DC_D,
    "vaegan": _VAEGAN_E + _MLP_G32 + _MLP_D,
    "lsgan": _DC_G + _DC_D,
    "ragan": _DC_G + _DC_D,
    "gan+batch-norm": _MLP_G64 + _MLP_D + 2 * (256 + 512) + 2 * (512 + 256),
    "gan+dropout": _MLP_G64 + _MLP_D,
    "gan+spectral-norm": _MLP_G64 + _MLP_D,
    "dcgan+batch-norm": _DC_G + _DC_D + 2 * 128,
    "dcgan+spectral-norm": _DC_G + _DC_D,
    "wgan+dropout": _DC_G + _DC_D,
    "vae+dropout": _VAE_ENC + _VAE_DEC,
    "vae+batch-norm": _VAE_ENC + _VAE_DEC + 2 * (512 + 256) + 2 * (256 + 512),
    "vaegan+spectral-norm": _VAEGAN_E + _MLP_G32 + _MLP_D,
}
# Sanity of the hand arithmetic against figures one can recompute on paper.
assert _VAE_ENC == 543_528 and _VAE_DEC == 539_152 and _MLP_D == 533_505
assert _DC_G == 633_472 + 256 + 131_136 + 128 + 1_025 and _DC_D == 1_088 + 131_200 + 6_273


def spec_of(label, **kw):
    model, stabilizers = registry.parse_model(label)
    return registry.experiment(model, stabilizers, profile="smoke", **kw)


def as_tuple(layer):
    args = dict(layer.args)
    if layer.kind == "act" and args.get("fn") == "relu":
        args.pop("slope", None)  # a slope means nothing to ReLU
    return (
        layer.kind,
        layer.name,
        tuple(layer.in_shape),
        tuple(layer.out_shape),
        args,
        layer.spectral_norm,
        layer.feature_tap,
    )


def expected_weight_shapes(nets):
    """Canonical arrays (the backend contract, docs/extending.md): Linear (out, in), Conv (C_out, C_in, kh, kw),
    ConvTranspose (C_in, C_out, kh, kw), batch-norm scale, shift and running statistics, the
    spectral-norm vector u with one entry per output unit or channel."""
    shapes = {}
    for net, layers in nets.items():
        for kind, name, shape_in, shape_out, args, sn, _ in layers:
            p = f"{net}.{name}."
            if kind == "dense":
                shapes[p + "weight"], shapes[p + "bias"] = (shape_out[0], shape_in[0]), (shape_out[0],)
            elif kind == "conv":
                k = args["kernel"]
                shapes[p + "weight"], shapes[p + "bias"] = (shape_out[0], shape_in[0], k, k), (shape_out[0],)
            elif kind == "convT":
                k = args["kernel"]
                shapes[p + "weight"], shapes[p + "bias"] = (shape_in[0], shape_out[0], k, k), (shape_out[0],)
            elif kind == "bn":
                for q in ("weight", "bias", "running_mean", "running_var"):
                    shapes[p + q] = (shape_in[0],)
            if sn:
                shapes[p + "u"] = (shape_out[0],)
    return shapes


# stated models that this checkout's catalog has (a model added to the catalog must be stated above)
IN_CATALOG = [label for label in EXPECTED if registry.parse_model(label)[0] in registry.MODELS]


@pytest.mark.parametrize("label", IN_CATALOG)
def test_arch_builds_the_stated_layers(label):
    nets = arch.networks(spec_of(label))
    want = EXPECTED[label]
    assert set(nets) == set(want)
    for net, layers in want.items():
        got = [as_tuple(layer) for layer in nets[net]]
        for i, (g, w) in enumerate(zip(got, layers)):
            assert g == w, f"{label} {net} layer {i}: built {g}, stated {w}"
        assert len(got) == len(layers), f"{label} {net}: {len(got)} layers built, {len(layers)} stated"
    assert arch.weight_shapes(spec_of(label)) == expected_weight_shapes(want)


def test_every_catalog_model_has_a_stated_architecture():
    assert set(registry.MODELS) <= set(EXPECTED)


def _trainable_count(trainer):
    if trainer.framework == "torch":
        return sum(p.numel() for net in trainer.nets.values() for p in net.parameters())
    return sum(int(np.prod(v.shape)) for net in trainer.nets.values() for v in net.trainable)


@pytest.mark.parametrize("label", IN_CATALOG)
def test_parameter_count_by_hand_in_arch_and_in_each_twin(backend, label):
    spec = spec_of(label)
    buffers = (".running_mean", ".running_var", ".u")
    in_arch = sum(int(np.prod(s)) for n, s in arch.weight_shapes(spec).items() if not n.endswith(buffers))
    assert in_arch == PARAM_COUNTS[label]
    trainer = backend.build(spec)
    assert _trainable_count(trainer) == PARAM_COUNTS[label]
    got = {k: v.shape for k, v in trainer.get_weights().items()}
    assert got == expected_weight_shapes(EXPECTED[label])


MIXTURE_G = [
    dense("fc0", 2, 128),
    relu("act0", (128,)),
    dense("fc1", 128, 128),
    relu("act1", (128,)),
    dense("fc2", 128, 2),
]  # a 2-D generator is linear at the output
MIXTURE_D = [
    dense("fc0", 2, 128),
    lrelu("act0", (128,)),
    dense("fc1", 128, 128),
    lrelu("act1", (128,), tap=True),
    dense("fc2", 128, 1),
]


@pytest.mark.parametrize("model", ["gan", "gan-minimax", "dcgan", "wgan", "wgan-gp", "hinge-gan"])
def test_gans_on_a_2d_mixture_take_the_small_setup(backend, model):
    """docs/gate.md (the CI profile): on the 2-D mixtures every GAN takes the classic small setup, MLPs
    of 128 units and a 2-D latent (ReLU in G, LeakyReLU 0.2 in D), batch 256; its loss stays."""
    spec = registry.experiment(model, (), dataset="ring8", profile="smoke")
    nets = arch.networks(spec)
    assert [as_tuple(layer) for layer in nets["G"]] == MIXTURE_G
    assert [as_tuple(layer) for layer in nets["D"]] == MIXTURE_D
    assert (spec.latent_dim, spec.batch_size, spec.loss) == (2, 256, registry.MODELS[model].loss)
    g = (2 * 128 + 128) + (128 * 128 + 128) + (128 * 2 + 2)  # 17,154
    d = (2 * 128 + 128) + (128 * 128 + 128) + (128 * 1 + 1)  # 17,025
    assert _trainable_count(backend.build(spec)) == g + d == 34_179


def test_catalog_hyperparameters_as_the_readme_states():
    m = registry.MODELS
    assert (
        m["vae"].latent_dim,
        m["cvae"].latent_dim,
        m["gan"].latent_dim,
        m["dcgan"].latent_dim,
        m["vaegan"].latent_dim,
    ) == (20, 20, 64, 100, 32)
    assert [m[k].loss for k in ("gan", "gan-minimax", "dcgan", "wgan", "wgan-gp", "hinge-gan", "vaegan")] == [
        "non-saturating",
        "minimax",
        "non-saturating",
        "wasserstein",
        "wgan-gp",
        "hinge",
        "non-saturating",
    ]
    for k in ("vae", "cvae"):
        o = m[k].g_optimizer
        assert (m[k].loss, m[k].likelihood, o.kind) == ("elbo", "bernoulli", "adam")
    for k in ("gan", "gan-minimax", "dcgan"):
        assert m[k].g_optimizer.kind == m[k].d_optimizer.kind == "rmsprop"
    w = m["wgan"]
    assert (w.n_critic, w.weight_clip, w.d_optimizer.kind, w.d_optimizer.lr, w.g_optimizer.lr) == (
        5,
        0.01,
        "rmsprop",
        5e-5,
        5e-5,
    )
    gp = m["wgan-gp"]
    o = gp.d_optimizer
    assert (gp.n_critic, gp.gp_lambda, gp.gp_target, gp.weight_clip) == (5, 10.0, 1.0, 0.0)
    assert (o.kind, o.lr, o.beta1, o.beta2) == ("adam", 1e-4, 0.5, 0.9) and gp.g_optimizer == o
    assert gp.uses_gp and not m["wgan"].uses_gp and not m["hinge-gan"].uses_gp
    sn = spec_of("dcgan+spectral-norm").discriminator
    assert sn.spectral_norm and sn.sn_power_iterations == 1


# -- a NumPy forward pass, written from the formulas -------------------------------------------
def np_dense(x, w, b):
    return x @ w.T + b


def np_conv2d(x, w, b, s=2, p=1):
    """Cross-correlation: out[n, o, i, j] = b[o] + sum_{c, a, d} w[o, c, a, d] xp[n, c, s i + a, s j + d]."""
    n, c, h, wd = x.shape
    c_out, _, k, _ = w.shape
    xp = np.zeros((n, c, h + 2 * p, wd + 2 * p))
    xp[:, :, p : p + h, p : p + wd] = x
    ho, wo = (h + 2 * p - k) // s + 1, (wd + 2 * p - k) // s + 1
    y = np.zeros((n, c_out, ho, wo))
    for a in range(k):
        for d in range(k):
            patch = xp[:, :, a : a + s * (ho - 1) + 1 : s, d : d + s * (wo - 1) + 1 : s]
            y += np.einsum("ncij,oc->noij", patch, w[:, :, a, d])
    return y + b[None, :, None, None]


def np_conv_transpose2d(x, w, b, s=2, p=1):
    """The adjoint, by scattering: input pixel (i, j) adds x[n, c, i, j] w[c, o, a, d] to output
    pixel (s i + a - p, s j + d - p); w is (C_in, C_out, k, k)."""
    n, c, h, wd = x.shape
    _, c_out, k, _ = w.shape
    full = np.zeros((n, c_out, s * (h - 1) + k, s * (wd - 1) + k))
    for a in range(k):
        for d in range(k):
            full[:, :, a : a + s * (h - 1) + 1 : s, d : d + s * (wd - 1) + 1 : s] += np.einsum(
                "ncij,co->noij", x, w[:, :, a, d]
            )
    ho, wo = s * (h - 1) - 2 * p + k, s * (wd - 1) - 2 * p + k
    return full[:, :, p : p + ho, p : p + wo] + b[None, :, None, None]


def _channel(a, ndim):
    return a.reshape((1, -1) + (1,) * (ndim - 2))


class BN:
    """Batch norm, PyTorch convention (bench/core/specs.py): in training, normalise with the biased
    batch variance over (N, H, W) and move the running statistics by momentum 0.1 towards the
    batch mean and the *unbiased* batch variance; in evaluation, use the running statistics."""

    def __init__(self, w, prefix, train, momentum=0.1, eps=1e-5):
        self.w, self.prefix, self.train, self.momentum, self.eps = w, prefix, train, momentum, eps
        self.updated = {}  # running statistics after this forward pass

    def __call__(self, x, name):
        p = f"{self.prefix}.{name}."
        rm = self.updated.get(p + "running_mean", self.w[p + "running_mean"])
        rv = self.updated.get(p + "running_var", self.w[p + "running_var"])
        if self.train:
            axes = (0,) + tuple(range(2, x.ndim))
            mean, var = x.mean(axis=axes), x.var(axis=axes)
            m = x.size // x.shape[1]
            self.updated[p + "running_mean"] = (1 - self.momentum) * rm + self.momentum * mean
            self.updated[p + "running_var"] = (1 - self.momentum) * rv + self.momentum * var * m / (m - 1)
        else:
            mean, var = rm, rv
        xhat = (x - _channel(mean, x.ndim)) / np.sqrt(_channel(var, x.ndim) + self.eps)
        return xhat * _channel(self.w[p + "weight"], x.ndim) + _channel(self.w[p + "bias"], x.ndim)


def leaky(x, slope=0.2):
    return np.where(x > 0, x, slope * x)


def relu_np(x):
    return np.maximum(x, 0.0)


def normalize(v):
    return v / np.linalg.norm(v)


class SN:
    """Spectral norm (Miyato et al. 2018, Algorithm 1) on the (C_out, rest) matrix of a weight.
    Training: one power iteration from the current u, v = normalize(W^T u), u' = normalize(W v),
    sigma = u' . W v, and u' is stored; evaluation: v = normalize(W^T u), sigma = u . W v."""

    def __init__(self, w, prefix, train):
        self.w, self.prefix, self.train = w, prefix, train
        self.u = {}

    def __call__(self, name):
        weight = self.w[f"{self.prefix}.{name}.weight"]
        m = weight.reshape(weight.shape[0], -1)
        u = self.u.get(name, self.w[f"{self.prefix}.{name}.u"])
        v = normalize(m.T @ u)
        if self.train:
            u = normalize(m @ v)
            self.u[name] = u
        return weight / (u @ m @ v)


def softplus(x):
    return np.logaddexp(0.0, x)


def onehot(y):
    return np.eye(CLASSES)[y]


# -- canonical weights of our own, random everywhere -------------------------------------------
def random_canonical(shapes, rng, conv_std=0.3):
    """Random values for the hand-stated canonical arrays: no 0 / 1 batch-norm defaults that
    would hide a swapped scale and shift or running mean and variance."""
    w = {}
    for name, shape in shapes.items():
        if name.endswith(".running_var"):
            a = rng.uniform(0.5, 2.0, shape)
        elif name.endswith(".running_mean") or name.endswith(".bias"):
            a = rng.normal(0.0, 0.3, shape)
        elif name.endswith(".u"):
            a = normalize(rng.standard_normal(shape))
        elif name.endswith(".weight") and len(shape) == 1:
            a = rng.uniform(0.5, 1.5, shape)
        elif len(shape) == 4:
            a = rng.normal(0.0, conv_std, shape)
        else:
            a = rng.uniform(-1, 1, shape) / np.sqrt(shape[1])
        w[name] = a.astype(np.float64)
    return w


def build64(backend, spec):
    spec = spec.with_(dtype="float64")
    kw = {"variant": "eager"} if backend.__name__.endswith("tensorflow") else {}
    return spec, backend.build(spec, **kw)


def close(got, want, what, rtol=1e-10):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-12 * max(1.0, np.abs(want).max()), err_msg=what)


# -- MLP VAE and conditional VAE ---------------------------------------------------------------
VAE_SMALL = dict(latent_dim=3, batch_size=5, **{"encoder.hidden": (7, 6), "generator.hidden": (6, 7)})


def small_vae_layers(latent, n_cond, dropout, batch_norm):
    """The small VAE's layers, stated like the catalog ones (widths 7, 6 / 6, 7)."""
    e = (
        [flatten(IMG), dense("fc0", PIXELS + n_cond, 7)]
        + ([bn("bn0", (7,))] if batch_norm else [])
        + [relu("act0", (7,))]
        + ([drop("drop0", (7,), dropout)] if dropout else [])
        + [dense("fc1", 7, 6)]
        + ([bn("bn1", (6,))] if batch_norm else [])
        + [relu("act1", (6,))]
        + ([drop("drop1", (6,), dropout)] if dropout else [])
        + [dense("fc2", 6, 2 * latent)]
    )
    g = (
        [dense("fc0", latent + n_cond, 6)]
        + ([bn("bn0", (6,))] if batch_norm else [])
        + [relu("act0", (6,))]
        + [dense("fc1", 6, 7)]
        + ([bn("bn1", (7,))] if batch_norm else [])
        + [relu("act1", (7,))]
        + [dense("fc2", 7, PIXELS), reshape("reshape_out", (PIXELS,), IMG)]
    )
    return {"E": e, "G": g}


def np_encoder(w, x, y, masks, batch_norm, norm):
    h = x.reshape(len(x), -1)
    if y is not None:
        h = np.concatenate([h, onehot(y)], axis=1)  # the one-hot label joins the pixels
    for i in range(2):
        h = np_dense(h, w[f"E.fc{i}.weight"], w[f"E.fc{i}.bias"])
        if batch_norm:
            h = norm(h, f"bn{i}")
        h = relu_np(h)
        if masks:
            h = h * masks[i]
    h = np_dense(h, w["E.fc2.weight"], w["E.fc2.bias"])
    latent = h.shape[1] // 2
    return h[:, :latent], h[:, latent:]  # [mean, log-variance]


def np_decoder_logits(w, z, y, batch_norm, norm):
    h = z if y is None else np.concatenate([z, onehot(y)], axis=1)
    for i in range(2):
        h = np_dense(h, w[f"G.fc{i}.weight"], w[f"G.fc{i}.bias"])
        if batch_norm:
            h = norm(h, f"bn{i}")
        h = relu_np(h)
    return np_dense(h, w["G.fc2.weight"], w["G.fc2.bias"]).reshape(len(z), *IMG)


VAE_CASES = {
    "vae": ("vae", ()),
    "vae+batch-norm+dropout": ("vae", ("batch-norm", "dropout")),
    "cvae": ("cvae", ()),
    "cvae+batch-norm+dropout": ("cvae", ("batch-norm", "dropout")),
}


@pytest.mark.parametrize("case", list(VAE_CASES))
def test_vae_forward_matches_numpy(backend, case):
    model, stabs = VAE_CASES[case]
    conditional, batch_norm, dropout = model == "cvae", "batch-norm" in stabs, "dropout" in stabs
    spec = registry.experiment(model, stabs, profile="smoke", **VAE_SMALL)
    stated = small_vae_layers(3, CLASSES if conditional else 0, 0.2 if dropout else 0.0, batch_norm)
    assert {k: [as_tuple(layer) for layer in v] for k, v in arch.networks(spec).items()} == stated
    spec, trainer = build64(backend, spec)
    rng = np.random.default_rng(21)
    w = random_canonical(expected_weight_shapes(stated), rng)
    trainer.set_weights(w)
    b = spec.batch_size
    x = rng.uniform(0.0, 1.0, (b,) + IMG)
    y = rng.integers(0, CLASSES, b) if conditional else None
    noise = step_noise(spec, np.random.default_rng(22))
    # the harness's draws: epsilon (B, L), one encoder mask per dropout layer, none in the decoder
    assert noise["eps"].shape == (b, 3) and len(noise["E"]) == (2 if dropout else 0) and noise["G"] == []

    # training step: the losses it reports are those of the pre-step weights
    norm = BN(w, "E", train=True)
    mean, logvar = np_encoder(w, x, y, noise["E"], batch_norm, norm)
    z = mean + np.exp(logvar / 2) * noise["eps"]  # Kingma & Welling 2014, eq. 10
    gnorm = BN(w, "G", train=True)
    logits = np_decoder_logits(w, z, y, batch_norm, gnorm)
    nll = np.sum(softplus(logits) - x * logits, axis=(1, 2, 3))  # -log Bernoulli(x; sigmoid(l))
    kl = 0.5 * np.sum(mean**2 + np.exp(logvar) - 1.0 - logvar, axis=1)
    batch = {"x": x} if y is None else {"x": x, "y": y}
    losses = trainer.train_step(batch, noise)
    close(losses["recon"], nll.mean(), f"{case} recon")
    close(losses["kl"], kl.mean(), f"{case} kl")
    close(losses["loss"], (nll + kl).mean(), f"{case} loss")
    close(losses["elbo"], -(nll + kl).mean(), f"{case} elbo")
    after = trainer.get_weights()
    for name, value in {**norm.updated, **gnorm.updated}.items():  # one forward pass each, one update
        close(after[name], value, f"{case} {name} after the step")

    # evaluation: running statistics, no dropout, the mean of q(z|x); decode gives sigmoid(logits)
    w = random_canonical(expected_weight_shapes(stated), rng)
    trainer.set_weights(w)
    mean, logvar = np_encoder(w, x, y, None, batch_norm, BN(w, "E", train=False))
    got_mean, got_logvar = trainer.encode(x, y)
    close(got_mean, mean, f"{case} encode mean")
    close(got_logvar, logvar, f"{case} encode logvar")
    z = rng.standard_normal((b, 3))
    logits = np_decoder_logits(w, z, y, batch_norm, BN(w, "G", train=False))
    close(trainer.decode(z, y), 1.0 / (1.0 + np.exp(-logits)), f"{case} decode")
    close(
        trainer.reconstruction_nll(x, z, y),
        np.sum(softplus(logits) - x * logits, axis=(1, 2, 3)),
        f"{case} reconstruction_nll",
    )
    rec_logits = np_decoder_logits(w, mean, y, batch_norm, BN(w, "G", train=False))
    close(trainer.reconstruct(x, y), 1.0 / (1.0 + np.exp(-rec_logits)), f"{case} reconstruct")


# -- DCGAN generator and discriminator ---------------------------------------------------------
DC_SMALL = dict(latent_dim=5, batch_size=6, **{"generator.hidden": (4, 3), "discriminator.hidden": (3, 4)})


def small_dcgan_layers(batch_norm_d, sn):
    g = [
        dense("fc0", 5, 4 * 49),
        reshape("reshape0", (4 * 49,), (4, 7, 7)),
        bn("bn0", (4, 7, 7)),
        lrelu("act0", (4, 7, 7)),
        convT("deconv1", 4, 3, 7),
        bn("bn1", (3, 14, 14)),
        lrelu("act1", (3, 14, 14)),
        convT("deconv2", 3, 1, 14),
        out("tanh", IMG),
    ]
    d = (
        [
            conv("conv0", 1, 3, 28, sn=sn),
            lrelu("act0", (3, 14, 14)),
            drop("drop0", (3, 14, 14), 0.3),
            conv("conv1", 3, 4, 14, sn=sn),
        ]
        + ([bn("bn1", (4, 7, 7))] if batch_norm_d else [])
        + [
            lrelu("act1", (4, 7, 7)),
            drop("drop1", (4, 7, 7), 0.3),
            flatten((4, 7, 7), tap=True),
            dense("fc2", 4 * 49, 1, sn=sn),
        ]
    )
    return {"G": g, "D": d}


def np_generator(w, z, norm):
    h = np_dense(z, w["G.fc0.weight"], w["G.fc0.bias"]).reshape(len(z), 4, 7, 7)  # C, H, W order
    h = leaky(norm(h, "bn0"))
    h = leaky(norm(np_conv_transpose2d(h, w["G.deconv1.weight"], w["G.deconv1.bias"]), "bn1"))
    return np.tanh(np_conv_transpose2d(h, w["G.deconv2.weight"], w["G.deconv2.bias"]))


def np_discriminator(w, x, masks, batch_norm, norm, sn):
    weight = (lambda name: sn(name)) if sn else (lambda name: w[f"D.{name}.weight"])  # noqa: E731
    h = leaky(np_conv2d(x, weight("conv0"), w["D.conv0.bias"]))
    if masks:
        h = h * masks[0]
    h = np_conv2d(h, weight("conv1"), w["D.conv1.bias"])
    if batch_norm:
        h = norm(h, "bn1")
    h = leaky(h)
    if masks:
        h = h * masks[1]
    h = h.reshape(len(h), -1)  # flatten in C, H, W order
    return np_dense(h, weight("fc2"), w["D.fc2.bias"])[:, 0]


DCGAN_CASES = {
    "dcgan": (),
    "dcgan+batch-norm": ("batch-norm",),
    "dcgan+spectral-norm": ("spectral-norm",),
    "dcgan+batch-norm+spectral-norm": ("batch-norm", "spectral-norm"),
}


@pytest.mark.parametrize("case", list(DCGAN_CASES))
def test_dcgan_forward_matches_numpy(backend, case):
    stabs = DCGAN_CASES[case]
    batch_norm_d, use_sn = "batch-norm" in stabs, "spectral-norm" in stabs
    spec = registry.experiment("dcgan", stabs, profile="smoke", **DC_SMALL)
    stated = small_dcgan_layers(batch_norm_d, use_sn)
    assert {k: [as_tuple(layer) for layer in v] for k, v in arch.networks(spec).items()} == stated
    spec, trainer = build64(backend, spec)
    rng = np.random.default_rng(31)
    shapes = expected_weight_shapes(stated)
    w = random_canonical(shapes, rng)
    trainer.set_weights(w)
    b = spec.batch_size
    x = rng.uniform(-1.0, 1.0, (b,) + IMG)
    noise = step_noise(spec, np.random.default_rng(32))
    assert [m.shape for m in noise["d0.D.real"]] == [(b, 3, 14, 14), (b, 4, 7, 7)]

    # training step (non-saturating / BCE): G in training mode on d0.z; D on the real batch and
    # then on the fakes, each call with its own masks and batch statistics and one power iteration
    gnorm = BN(w, "G", train=True)
    fake = np_generator(w, noise["d0.z"], gnorm)
    dnorm, sn = BN(w, "D", train=True), (SN(w, "D", train=True) if use_sn else None)
    d_real = np_discriminator(w, x, noise["d0.D.real"], batch_norm_d, dnorm, sn)
    d_fake = np_discriminator(w, fake, noise["d0.D.fake"], batch_norm_d, dnorm, sn)
    # the generator step runs G again (training mode, g.z) before G is updated
    np_generator(w, noise["g.z"], gnorm)
    losses = trainer.train_step({"x": x}, noise)
    close(losses["d_loss_real"], softplus(-d_real).mean(), f"{case} d_loss_real")  # BCE, target 1
    close(losses["d_loss_fake"], softplus(d_fake).mean(), f"{case} d_loss_fake")  # BCE, target 0
    after = trainer.get_weights()
    for name, value in gnorm.updated.items():  # two training passes of G, both before its update
        close(after[name], value, f"{case} {name} after the step")

    # evaluation: batch norm on running statistics, no dropout, sigma from the stored u
    w = random_canonical(shapes, rng)
    trainer.set_weights(w)
    z = rng.standard_normal((b, 5))
    close(trainer.sample(z), np_generator(w, z, BN(w, "G", train=False)), f"{case} sample")
    want = np_discriminator(
        w, x, None, batch_norm_d, BN(w, "D", train=False), SN(w, "D", train=False) if use_sn else None
    )
    close(trainer.discriminate(x), want, f"{case} discriminate")
    assert all(np.array_equal(v, w[k]) for k, v in trainer.get_weights().items()), "evaluation changed state"


def test_numpy_convolutions_agree_with_each_other():
    """The two NumPy convolutions are written independently; a transposed conv is the adjoint of
    the conv with the same weight: <conv(x), y> = <x, convT(y)> with zero biases."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((2, 3, 14, 14)), rng.standard_normal((2, 5, 7, 7))
    w = rng.standard_normal((5, 3, 4, 4))  # conv (C_out, C_in): as convT it maps 5 -> 3 channels
    lhs = np.sum(np_conv2d(x, w, np.zeros(5)) * y)
    rhs = np.sum(x * np_conv_transpose2d(y, w, np.zeros(3)))
    assert lhs == pytest.approx(rhs, rel=1e-12)
    # and a delta input reproduces the kernel (cross-correlation, not flipped)
    delta = np.zeros((1, 1, 6, 6))
    delta[0, 0, 2, 2] = 1.0
    k = rng.standard_normal((1, 1, 4, 4))
    got = np_conv2d(delta, k, np.zeros(1), s=1, p=0)  # 3 x 3 output
    assert got[0, 0, 0, 0] == k[0, 0, 2, 2] and got[0, 0, 2, 2] == k[0, 0, 0, 0]


# -- the checks can fail -------------------------------------------------------------------------
def test_a_planted_architecture_mistake_is_caught(monkeypatch):
    """Padding 0 instead of 1 in every DCGAN conv: both twins would still agree with each other."""
    monkeypatch.setattr(arch, "DCGAN_PADDING", 0)
    with pytest.raises(AssertionError, match="dcgan"):
        test_arch_builds_the_stated_layers("dcgan")
