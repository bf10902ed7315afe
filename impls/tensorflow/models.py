"""Networks, TensorFlow twin: the same interpreter as impls/torch/models.py.

TF quirks handled here: activations are NHWC inside the network (flatten and reshape
transpose to the canonical C, H, W order so dense weights need no permutation), kernels
are stored in the Keras layouts (see impls/tensorflow/weights.py), and padding is derived
from the spec's explicit pads (`_padding`: "SAME" only where it pads exactly those).
"""

import tensorflow as tf

from . import stabilizers


def _nhwc(shape):
    return (shape[1], shape[2], shape[0]) if len(shape) == 3 else tuple(shape)


def tf_shape(layer, pname, canonical_shape):
    """The TF-side shape of a canonical array."""
    if pname == "weight" and layer.kind == "dense":
        return canonical_shape[::-1]
    if pname == "weight" and layer.kind == "conv":  # (C_out, C_in, kh, kw) -> (kh, kw, C_in, C_out)
        c_out, c_in, kh, kw = canonical_shape
        return (kh, kw, c_in, c_out)
    if pname == "weight" and layer.kind == "convT":  # (C_in, C_out, kh, kw) -> (kh, kw, C_out, C_in)
        c_in, c_out, kh, kw = canonical_shape
        return (kh, kw, c_out, c_in)
    return canonical_shape


class Net(tf.Module):
    def __init__(self, layers, dtype=tf.float32, sn_iterations=1, sn_eps=1e-12, name=None, sn_form="equality"):
        super().__init__(name=name)
        self.layers = layers
        self.sn_iterations, self.sn_eps, self.sn_form = sn_iterations, sn_eps, sn_form
        self.training = True
        self.vars = {}  # canonical "<layer>.<param>" -> tf.Variable in the TF layout
        for layer in layers:
            for pname, shape in layer.params.items():
                self.vars[f"{layer.name}.{pname}"] = tf.Variable(
                    tf.zeros(tf_shape(layer, pname, shape), dtype), name=f"{layer.name}.{pname}"
                )
            for pname, shape in layer.buffers.items():
                self.vars[f"{layer.name}.{pname}"] = tf.Variable(
                    tf.zeros(shape, dtype), trainable=False, name=f"{layer.name}.{pname}"
                )
        self.trainable = [v for k, v in self.vars.items() if v.trainable]
        self.trainable_names = [k for k, v in self.vars.items() if v.trainable]

    def _weight(self, layer):
        w = self.vars[f"{layer.name}.weight"]
        if not layer.spectral_norm:
            return w
        return stabilizers.spectral_normalize(
            w,
            self.vars[f"{layer.name}.{layer.sn_buffer}"],
            layer.kind,
            self.sn_iterations,
            self.sn_eps,
            update=self.training,
            form=self.sn_form,
            vector=layer.sn_vector,
        )

    def __call__(self, x, masks=None, cond=None):
        features, mask_i = None, 0
        v = self.vars
        for layer in self.layers:
            kind, a = layer.kind, layer.args
            if kind == "dense":
                if cond is not None:
                    x, cond = tf.concat([x, cond], axis=1), None
                x = tf.matmul(x, self._weight(layer)) + v[f"{layer.name}.bias"]
            elif kind == "conv":
                x = tf.nn.conv2d(x, self._weight(layer), a["stride"], _padding(layer)) + v[f"{layer.name}.bias"]
            elif kind == "convT":
                out_shape = tf.stack([tf.shape(x)[0], *_nhwc(layer.out_shape)])
                x = (
                    tf.nn.conv2d_transpose(x, self._weight(layer), out_shape, a["stride"], _padding(layer))
                    + v[f"{layer.name}.bias"]
                )
            elif kind == "bn":
                x = stabilizers.batch_norm(
                    x,
                    v[f"{layer.name}.weight"],
                    v[f"{layer.name}.bias"],
                    v[f"{layer.name}.running_mean"],
                    v[f"{layer.name}.running_var"],
                    self.training,
                    a["momentum"],
                    a["eps"],
                    **({"biased_variance": True} if a.get("variance") == "biased" else {}),
                )
            elif kind == "act":
                # not tf.nn.leaky_relu: its alpha is a float32 op attribute, so in float64 the slope
                # would be 0.2f = 0.2 + 3e-9; written out, the slope takes x's dtype (as in torch)
                x = leaky_relu(x, a["slope"]) if a["fn"] == "leaky_relu" else tf.nn.relu(x)
            elif kind == "dropout":
                if self.training:
                    if masks is None or mask_i >= len(masks):
                        raise ValueError(f"dropout layer {layer.name} needs a mask in training mode")
                    x = stabilizers.dropout(x, to_nhwc(masks[mask_i]))
                    mask_i += 1
            elif kind == "flatten":
                x = tf.reshape(to_nchw(x), (tf.shape(x)[0], -1))  # canonical C, H, W order
            elif kind == "reshape":
                x = to_nhwc(tf.reshape(x, (tf.shape(x)[0], *layer.out_shape)))
            elif kind == "tanh":
                x = tf.tanh(x)
            elif kind == "sigmoid":
                x = tf.sigmoid(x)
            else:  # pragma: no cover
                raise ValueError(f"unknown layer kind {kind}")
            if layer.feature_tap:
                features = x
        return x, features


def _padding(layer):
    """ "SAME" where it pads exactly the spec's `padding` on each side, else explicit pads.

    Same arithmetic either way, but TF 2.21's oneDNN rewrite skips the backprop kernels
    (Conv2DBackpropInput/Filter, so conv2d_transpose too) with explicit padding, and the
    Eigen fallback is 2-3x slower. For a stride-s conv from n to ceil(n / s) pixels, SAME
    pads (ceil(n / s) - 1) s + k - n in total, the extra pixel (if odd) after.
    """
    k, s, p = layer.args["kernel"], layer.args["stride"], layer.args["padding"]
    big, small = (layer.in_shape, layer.out_shape) if layer.kind == "conv" else (layer.out_shape, layer.in_shape)
    n, m = big[1], small[1]
    if m == -(-n // s) and (m - 1) * s + k - n == 2 * p and big[2] == n and small[2] == m:
        return "SAME"
    return [[0, 0], [p, p], [p, p], [0, 0]]


def leaky_relu(x, slope):
    """max(x, 0) + slope * min(x, 0), gradient slope at 0 (torch.nn.functional.leaky_relu).

    float32: the fused op (one kernel forward, one backward; its float32 alpha attribute is
    exactly torch's float32 slope). float64: written out, since the attribute would make the
    slope 0.2f = 0.2 + 3e-9; a Python float takes x's dtype, tf.cast(0.2) would not.
    """
    if x.dtype == tf.float32:
        return tf.nn.leaky_relu(x, alpha=slope)
    return tf.where(x > 0, x, x * slope)


def to_nhwc(x):
    return tf.transpose(x, (0, 2, 3, 1)) if len(x.shape) == 4 else x


def to_nchw(x):
    return tf.transpose(x, (0, 3, 1, 2)) if len(x.shape) == 4 else x
