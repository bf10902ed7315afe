"""Canonical weights, PyTorch twin. The canonical layout is PyTorch's own, so the mapping
is by name only: "<net>.<layer>.<param>" <-> nets[net].state[layer].<param>."""

import numpy as np
import torch


def canonical_items(nets):
    """Yield (canonical name, tensor) for every parameter and buffer of every network."""
    for net_name, net in nets.items():
        for layer_name, state in net.state.items():
            for pname, tensor in list(state.named_parameters(recurse=False)) + list(state.named_buffers(recurse=False)):
                yield f"{net_name}.{layer_name}.{pname}", tensor


def get_weights(nets):
    return {name: t.detach().cpu().numpy().copy() for name, t in canonical_items(nets)}


def set_weights(nets, weights):
    items = dict(canonical_items(nets))
    missing = sorted(set(items) - set(weights))
    unknown = sorted(set(weights) - set(items))
    if missing or unknown:
        raise KeyError(f"weights do not match the spec: missing {missing[:5]}, unknown {unknown[:5]}")
    with torch.no_grad():
        for name, tensor in items.items():
            value = np.asarray(weights[name])
            if value.shape != tuple(tensor.shape):
                raise ValueError(f"{name}: shape {value.shape} != {tuple(tensor.shape)}")
            tensor.copy_(torch.as_tensor(value, dtype=tensor.dtype))


def gradients_to_canonical(named_grads, nets):
    """{canonical name: grad tensor} -> NumPy, layout unchanged (the canonical layout is torch's
    own, so `nets` is not needed here; the TensorFlow twin reads its layer kinds)."""
    return {name: g.detach().cpu().numpy().copy() for name, g in named_grads.items()}
