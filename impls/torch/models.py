"""Networks, PyTorch twin: one interpreter for the layer lists of bench/core/arch.py.

Parameters live under their canonical names ("fc0.weight", "bn1.running_var", "conv0.u"),
in the canonical layout, which is PyTorch's own (NCHW, Linear (out, in)).
"""

import torch
import torch.nn.functional as F
from torch import nn

from . import stabilizers


class LayerState(nn.Module):
    """Holds one layer's parameters and buffers under their canonical names."""

    def __init__(self, layer, dtype):
        super().__init__()
        for name, shape in layer.params.items():
            setattr(self, name, nn.Parameter(torch.zeros(shape, dtype=dtype)))
        for name, shape in layer.buffers.items():
            self.register_buffer(name, torch.zeros(shape, dtype=dtype))


class Net(nn.Module):
    def __init__(
        self,
        layers,
        dtype=torch.float32,
        sn_iterations=1,
        sn_eps=1e-12,
        memory_format=torch.contiguous_format,
        sn_form="equality",
    ):
        super().__init__()
        self.layers = layers
        # channels_last: conv inputs in NHWC memory order (oneDNN's native layout, no
        # reorders); shapes, indexing and the canonical weights stay NCHW
        self.memory_format = memory_format
        self.sn_iterations, self.sn_eps, self.sn_form = sn_iterations, sn_eps, sn_form
        self.state = nn.ModuleDict(
            {layer.name: LayerState(layer, dtype) for layer in layers if layer.params or layer.buffers}
        )

    def _weight(self, layer, s):
        if not layer.spectral_norm:
            return s.weight
        return stabilizers.spectral_normalize(
            s.weight,
            getattr(s, layer.sn_buffer),
            layer.kind,
            self.sn_iterations,
            self.sn_eps,
            update=self.training,
            form=self.sn_form,
            vector=layer.sn_vector,
        )

    def forward(self, x, masks=None, cond=None):
        """Returns (output, features at the feature tap or None). `cond` (one-hot labels) is
        concatenated to the input of the first dense layer."""
        features, mask_i = None, 0
        for layer in self.layers:
            s = self.state[layer.name] if layer.name in self.state else None
            kind, a = layer.kind, layer.args
            if kind == "dense":
                if cond is not None:
                    x, cond = torch.cat([x, cond], dim=1), None
                x = F.linear(x, self._weight(layer, s), s.bias)
            elif kind == "conv":
                x = _to_memory_format(x, self.memory_format)
                x = _conv2d(x, self._weight(layer, s), s.bias, a["stride"], a["padding"])
            elif kind == "convT":
                x = _to_memory_format(x, self.memory_format)
                x = _conv_transpose2d(x, self._weight(layer, s), s.bias, a["stride"], a["padding"])
            elif kind == "bn":
                x = stabilizers.batch_norm(
                    x,
                    s.weight,
                    s.bias,
                    s.running_mean,
                    s.running_var,
                    self.training,
                    a["momentum"],
                    a["eps"],
                    **({"biased_variance": True} if a.get("variance") == "biased" else {}),
                )
            elif kind == "act":
                x = F.leaky_relu(x, a["slope"]) if a["fn"] == "leaky_relu" else F.relu(x)
            elif kind == "dropout":
                if self.training:
                    if masks is None or mask_i >= len(masks):
                        raise ValueError(f"dropout layer {layer.name} needs a mask in training mode")
                    x = stabilizers.dropout(x, masks[mask_i])
                    mask_i += 1
            elif kind == "flatten":
                x = _to_memory_format(x, torch.contiguous_format).reshape(x.shape[0], -1)
            elif kind == "reshape":
                x = x.reshape((x.shape[0],) + tuple(layer.out_shape))
            elif kind == "tanh":
                x = torch.tanh(x)
            elif kind == "sigmoid":
                x = torch.sigmoid(x)
            else:  # pragma: no cover - arch.py defines the kinds
                raise ValueError(f"unknown layer kind {kind}")
            if layer.feature_tap:
                features = x
        return x, features


def _aten_single_channel(x, channels: int) -> bool:
    """One channel in or out on a CPU: oneDNN blocks channels by 16 there, so ATen's own
    kernels are faster. Not under torch.compile, which lowers convolutions itself (and has no
    symbolic-shape kernel for these ops)."""
    return x.device.type == "cpu" and channels == 1 and not torch.compiler.is_compiling()


def _conv2d(x, weight, bias, stride, padding):
    """F.conv2d, except with one input channel on a CPU (a grey image into a discriminator):
    ATen's im2col + GEMM kernel is about 5x faster than oneDNN's (0.65 vs 3.2 ms forward, 2.1
    vs 13 ms with both gradients, for 1 -> 64 channels, 28 -> 14 pixels, batch 64, one thread)."""
    if _aten_single_channel(x, weight.shape[1]):
        k = list(weight.shape[2:])
        return torch._C._nn.thnn_conv2d(x, weight, k, bias, [stride] * 2, [padding] * 2)
    return F.conv2d(x, weight, bias, stride, padding)


def _conv_transpose2d(x, weight, bias, stride, padding):
    """F.conv_transpose2d, except with one output channel on a CPU (a grey image out of a
    generator): ATen's own kernel is about 9x faster than oneDNN's (0.5 vs 4.7 ms for 64 -> 1
    channels, 14 -> 28 pixels, batch 64, one thread)."""
    if _aten_single_channel(x, weight.shape[1]):
        k = list(weight.shape[2:])
        return torch.ops.aten.slow_conv_transpose2d(x, weight, k, bias, [stride] * 2, [padding] * 2)
    return F.conv_transpose2d(x, weight, bias, stride, padding)


class _MemoryFormat(torch.autograd.Function):
    """x in another memory order, and its gradient back in x's: elementwise kernels whose
    inputs mix NCHW and NHWC strides take a slow path, so each side stays in one order."""

    @staticmethod
    def forward(ctx, x, memory_format):
        ctx.input_format = (
            torch.channels_last
            if (x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last))
            else torch.contiguous_format
        )
        out = torch.empty_like(x, memory_format=memory_format)  # strides as asked, even for C = 1
        return out.copy_(x)

    @staticmethod
    def backward(ctx, grad):
        return _to_memory_format(grad, ctx.input_format), None


def _to_memory_format(x, memory_format):
    if x.dim() != 4 or _strides_are(x, memory_format):
        return x
    return _MemoryFormat.apply(x, memory_format)


def _strides_are(x, memory_format):
    """Stricter than is_contiguous(memory_format): a (N, 1, H, W) batch counts as both NCHW
    and NHWC there, yet kernels pick their output's layout from the strides."""
    if memory_format == torch.channels_last:
        return x.is_contiguous(memory_format=torch.channels_last) and x.stride(1) == 1
    return x.is_contiguous() and (x.shape[1] == 1 or x.stride(1) == x.shape[2] * x.shape[3])
