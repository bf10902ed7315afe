"""Canonical weights, TensorFlow twin: Keras kernel layouts <-> the canonical (torch) layout.

dense  (in, out)             <-> (out, in)
conv   (kh, kw, C_in, C_out) <-> (C_out, C_in, kh, kw)
convT  (kh, kw, C_out, C_in) <-> (C_in, C_out, kh, kw)
Everything else (biases, batch-norm vectors, the spectral-norm u) is the same in both.
"""

import numpy as np

TO_TF = {"dense": (1, 0), "conv": (2, 3, 1, 0), "convT": (2, 3, 1, 0)}
TO_CANONICAL = {"dense": (1, 0), "conv": (3, 2, 0, 1), "convT": (3, 2, 0, 1)}


def _kinds(net):
    return {layer.name: layer.kind for layer in net.layers}


def to_canonical(kind, pname, array):
    if pname == "weight" and kind in TO_CANONICAL:
        return np.transpose(array, TO_CANONICAL[kind])
    return array


def to_tf(kind, pname, array):
    if pname == "weight" and kind in TO_TF:
        return np.transpose(array, TO_TF[kind])
    return array


def canonical_items(nets):
    for net_name, net in nets.items():
        kinds = _kinds(net)
        for key, var in net.vars.items():
            layer, pname = key.split(".", 1)
            yield f"{net_name}.{key}", kinds[layer], pname, var


def get_weights(nets):
    return {
        name: np.ascontiguousarray(to_canonical(kind, pname, var.numpy()))
        for name, kind, pname, var in canonical_items(nets)
    }


def set_weights(nets, weights):
    items = {name: (kind, pname, var) for name, kind, pname, var in canonical_items(nets)}
    missing = sorted(set(items) - set(weights))
    unknown = sorted(set(weights) - set(items))
    if missing or unknown:
        raise KeyError(f"weights do not match the spec: missing {missing[:5]}, unknown {unknown[:5]}")
    for name, (kind, pname, var) in items.items():
        value = to_tf(kind, pname, np.asarray(weights[name]))
        if tuple(value.shape) != tuple(var.shape):
            raise ValueError(f"{name}: shape {value.shape} != {tuple(var.shape)}")
        var.assign(value.astype(var.dtype.as_numpy_dtype))


def gradients_to_canonical(named_grads, nets):
    """{canonical name: TF-layout gradient} -> canonical-layout NumPy."""
    out = {}
    for name, grad in named_grads.items():
        net_name, layer, pname = name.split(".", 2)
        out[name] = np.ascontiguousarray(to_canonical(_kinds(nets[net_name])[layer], pname, np.asarray(grad)))
    return out
