"""Helpers shared by the suites that call the twins' functions directly (imported by the
test modules; pytest puts this folder on sys.path)."""

import numpy as np


def as_tensor(framework, a, dtype="float64"):
    """A NumPy array as the framework's tensor (a contiguous copy in `dtype`)."""
    a = np.ascontiguousarray(a, dtype=dtype)
    if framework == "torch":
        import torch

        return torch.as_tensor(a)
    import tensorflow as tf

    return tf.constant(a)


def as_numpy(t):
    """A torch or TensorFlow tensor (or variable) as a NumPy array."""
    if hasattr(t, "detach"):
        return t.detach().cpu().numpy()
    return np.asarray(t.numpy())


def count_calls(monkeypatch, module, name) -> list:
    """Record the positional arguments of every call of module.<name>; the calls go through."""
    calls, real = [], getattr(module, name)

    def counted(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls
