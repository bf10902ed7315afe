"""Architectures as data: each network of a spec is a list of layers with canonical names.

Both twins interpret the same list, so the two builds cannot drift apart in depth, width,
order, padding or slope. Shapes are per sample in the canonical NCHW layout.

Canonical parameter layout (the .npz weight format), by layer kind:
- dense:  weight (out, in), bias (out,)                     [torch Linear; Keras Dense is (in, out)]
- conv:   weight (C_out, C_in, kh, kw), bias (C_out,)       [Keras Conv2D is (kh, kw, C_in, C_out)]
- convT:  weight (C_in, C_out, kh, kw), bias (C_out,)       [Keras Conv2DTranspose (kh, kw, C_out, C_in)]
- bn:     weight, bias, running_mean, running_var (C,)      [running_var unbiased, torch convention]
- spectral norm adds u (rows,): the left singular vector estimate, rows = C_out for
  dense/conv/convT. The weight is viewed as a (rows, rest) matrix: dense as is, conv as
  weight.reshape(C_out, -1), convT as weight.transpose(1, 0, 2, 3).reshape(C_out, -1).
  One power iteration is v = normalize(W^T u), u = normalize(W v); sigma = u . W v
  (Miyato et al. 2018, Algorithm 1); gradients flow through sigma with u, v held constant.
  normalize(x) = x / max(||x||, sn_eps). The weight used is W / sigma (sn_form "equality"),
  or W / max(1, sigma) ("at_most_one", TF-GAN's equality_constrained=False: a zero weight
  stays 0 instead of 0 / 0).
  sn_vector "input" keeps the right singular vector instead, v (rest,), in the canonical
  column order (C_in, kh, kw), as TF-GAN and compare_gan (singular_value="left") do on their
  (rest, C_out) kernel view: one iteration is u = normalize(W v), v = normalize(W^T u),
  sigma = u . W v, the same iteration run on W^T.
- flatten and reshape always use C, H, W order, whatever the framework's own layout.
A parameter's full name is "<net>.<layer>.<param>" with net G (generator / decoder),
D (discriminator / critic) or E (encoder).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .facts import NUM_CLASSES
from .specs import ExperimentSpec, NetSpec

DCGAN_KERNEL, DCGAN_STRIDE, DCGAN_PADDING = 4, 2, 1  # 28 -> 14 -> 7 and back, both frameworks


@dataclass(frozen=True)
class Layer:
    kind: str  # dense conv convT bn act dropout flatten reshape tanh sigmoid
    name: str
    in_shape: tuple
    out_shape: tuple
    args: dict = field(default_factory=dict, compare=False, hash=False)
    spectral_norm: bool = False
    feature_tap: bool = False  # VAE-GAN reads discriminator features after this layer
    sn_vector: str = "output"  # spectral norm's stored vector: "output" u (rows,), "input" v (rest,)

    @property
    def params(self) -> dict[str, tuple]:
        """Trainable parameter shapes in the canonical layout."""
        if self.kind == "dense":
            (n_in,), (n_out,) = self.in_shape, self.out_shape
            return {"weight": (n_out, n_in), "bias": (n_out,)}
        if self.kind == "conv":
            c_in, c_out, k = self.in_shape[0], self.out_shape[0], self.args["kernel"]
            return {"weight": (c_out, c_in, k, k), "bias": (c_out,)}
        if self.kind == "convT":
            c_in, c_out, k = self.in_shape[0], self.out_shape[0], self.args["kernel"]
            return {"weight": (c_in, c_out, k, k), "bias": (c_out,)}
        if self.kind == "bn":
            return {"weight": (self.in_shape[0],), "bias": (self.in_shape[0],)}
        return {}

    @property
    def buffers(self) -> dict[str, tuple]:
        """Non-trainable state in the canonical layout."""
        out = {}
        if self.kind == "bn":
            out = {"running_mean": (self.in_shape[0],), "running_var": (self.in_shape[0],)}
        if self.spectral_norm and self.sn_vector == "input":
            out["v"] = (self.sn_rest,)
        elif self.spectral_norm:
            out["u"] = (self.out_shape[0],)
        return out

    @property
    def sn_rest(self) -> int:
        """Columns of the (rows, rest) matrix spectral norm views the weight as."""
        k = self.args["kernel"] ** 2 if self.kind in ("conv", "convT") else 1
        return self.in_shape[0] * k

    @property
    def sn_buffer(self) -> str:
        """The name of the stored singular vector: "u" (output side) or "v" (input side)."""
        return "v" if self.sn_vector == "input" else "u"


def _block_tail(net: NetSpec, i: int, shape: tuple, layers: list, norm: bool, drop: bool) -> None:
    if norm and net.batch_norm:
        args = {"momentum": net.bn_momentum, "eps": net.bn_eps}
        if net.bn_variance != "unbiased":  # Keras' convention; named only where it is asked for
            args["variance"] = net.bn_variance
        layers.append(Layer("bn", f"bn{i}", shape, shape, args))
    layers.append(Layer("act", f"act{i}", shape, shape, {"fn": net.activation, "slope": net.leaky_slope}))
    if drop and net.dropout > 0:
        layers.append(Layer("dropout", f"drop{i}", shape, shape, {"p": net.dropout}))


def generator_layers(spec: ExperimentSpec) -> list[Layer]:
    """Generator (GAN) or decoder (VAE): latent (+ one-hot label for cvae) -> data."""
    net = spec.generator
    n_in = spec.latent_dim + (NUM_CLASSES if spec.conditional else 0)
    layers: list[Layer] = []
    if spec.architecture == "dcgan":
        c1, c2 = net.hidden
        layers.append(Layer("dense", "fc0", (n_in,), (c1 * 49,)))
        layers.append(Layer("reshape", "reshape0", (c1 * 49,), (c1, 7, 7)))
        _block_tail(net, 0, (c1, 7, 7), layers, norm=True, drop=True)
        conv = {"kernel": DCGAN_KERNEL, "stride": DCGAN_STRIDE, "padding": DCGAN_PADDING}
        layers.append(Layer("convT", "deconv1", (c1, 7, 7), (c2, 14, 14), conv))
        _block_tail(net, 1, (c2, 14, 14), layers, norm=True, drop=True)
        layers.append(Layer("convT", "deconv2", (c2, 14, 14), spec.data_shape, conv))
        layers.append(Layer("tanh", "out", spec.data_shape, spec.data_shape))
        return layers
    width = n_in
    for i, h in enumerate(net.hidden):
        layers.append(Layer("dense", f"fc{i}", (width,), (h,)))
        _block_tail(net, i, (h,), layers, norm=True, drop=True)
        width = h
    n = len(net.hidden)
    layers.append(Layer("dense", f"fc{n}", (width,), (spec.data_dim,)))
    if spec.is_image and spec.family in ("gan", "vaegan"):
        layers.append(Layer("tanh", "out", (spec.data_dim,), (spec.data_dim,)))
    elif spec.is_image and spec.likelihood == "gaussian":
        layers.append(Layer("sigmoid", "out", (spec.data_dim,), (spec.data_dim,)))
    # bernoulli VAE decoders return logits; 2-D generators are linear
    if spec.is_image:
        layers.append(Layer("reshape", "reshape_out", (spec.data_dim,), spec.data_shape))
    return layers


def discriminator_layers(spec: ExperimentSpec) -> list[Layer]:
    """Discriminator or critic: data -> one logit / score per sample."""
    net = spec.discriminator
    sn = {"spectral_norm": net.spectral_norm, "sn_vector": net.sn_vector}
    layers: list[Layer] = []
    if spec.architecture == "dcgan":
        c1, c2 = net.hidden
        conv = {"kernel": DCGAN_KERNEL, "stride": DCGAN_STRIDE, "padding": DCGAN_PADDING}
        layers.append(Layer("conv", "conv0", spec.data_shape, (c1, 14, 14), conv, **sn))
        _block_tail(net, 0, (c1, 14, 14), layers, norm=False, drop=True)  # DCGAN: no BN on input block
        layers.append(Layer("conv", "conv1", (c1, 14, 14), (c2, 7, 7), conv, **sn))
        _block_tail(net, 1, (c2, 7, 7), layers, norm=True, drop=True)
        layers.append(Layer("flatten", "flatten", (c2, 7, 7), (c2 * 49,), feature_tap=True))
        layers.append(Layer("dense", "fc2", (c2 * 49,), (1,), **sn))
        return layers
    if spec.is_image:
        layers.append(Layer("flatten", "flatten", spec.data_shape, (spec.data_dim,)))
    width = spec.data_dim
    for i, h in enumerate(net.hidden):
        layers.append(Layer("dense", f"fc{i}", (width,), (h,), **sn))
        _block_tail(net, i, (h,), layers, norm=True, drop=True)
        width = h
    last = layers[-1]
    layers[-1] = Layer(
        last.kind,
        last.name,
        last.in_shape,
        last.out_shape,
        last.args,
        last.spectral_norm,
        feature_tap=True,
        sn_vector=last.sn_vector,
    )
    layers.append(Layer("dense", f"fc{len(net.hidden)}", (width,), (1,), **sn))
    return layers


def encoder_layers(spec: ExperimentSpec) -> list[Layer]:
    """Encoder: data (+ one-hot label for cvae) -> [mean, log-variance] of q(z|x)."""
    net = spec.encoder
    n_in = spec.data_dim + (NUM_CLASSES if spec.conditional else 0)
    layers = [Layer("flatten", "flatten", spec.data_shape, (spec.data_dim,))]
    width = n_in
    for i, h in enumerate(net.hidden):
        layers.append(Layer("dense", f"fc{i}", (width,), (h,)))
        _block_tail(net, i, (h,), layers, norm=True, drop=True)
        width = h
    layers.append(Layer("dense", f"fc{len(net.hidden)}", (width,), (2 * spec.latent_dim,)))
    return layers


def networks(spec: ExperimentSpec) -> dict[str, list[Layer]]:
    """The networks of a spec, keyed by their canonical prefix."""
    nets = {"G": generator_layers(spec)}
    if spec.has_discriminator:
        nets["D"] = discriminator_layers(spec)
    if spec.has_encoder:
        nets["E"] = encoder_layers(spec)
    return nets


def dropout_shapes(layers: list[Layer]) -> list[tuple]:
    """Per-sample shapes of the dropout masks one forward pass of this network consumes."""
    return [layer.out_shape for layer in layers if layer.kind == "dropout"]


def weight_shapes(spec: ExperimentSpec) -> dict[str, tuple]:
    """Every canonical array name (parameters and buffers) with its shape."""
    out = {}
    for net, layers in networks(spec).items():
        for layer in layers:
            for pname, shape in {**layer.params, **layer.buffers}.items():
                out[f"{net}.{layer.name}.{pname}"] = shape
    return out


def flops_per_sample(layers: list[Layer]) -> int:
    """Multiply-accumulates x 2 of the dense and conv layers for one forward pass of one sample."""
    total = 0
    for layer in layers:
        if layer.kind == "dense":
            total += 2 * layer.in_shape[0] * layer.out_shape[0]
        elif layer.kind == "conv":
            c_out, h, w = layer.out_shape
            total += 2 * c_out * h * w * layer.in_shape[0] * layer.args["kernel"] ** 2
        elif layer.kind == "convT":
            c_in, h, w = layer.in_shape
            total += 2 * c_in * h * w * layer.out_shape[0] * layer.args["kernel"] ** 2
    return total
