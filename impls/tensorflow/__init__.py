"""TensorFlow twin. The backend contract (impls/__init__.py): `build`, `available_devices`, PARTS."""

import importlib

# The twin's parts that a checking tool may use beside build(): the same list in both twins,
# each imported on first access (impls/__init__.py says what each part holds).
PARTS = ("losses", "stabilizers", "models", "train", "weights", "noise")


def build(spec, device="cpu", variant="function"):
    """A Trainer for the spec, initialised from the spec's seed (bench.core.randomness)."""
    from .train import Trainer

    return Trainer(spec, device=device, variant=variant)


def available_devices():
    import tensorflow as tf

    return ["cpu"] + (["cuda"] if tf.config.list_physical_devices("GPU") else [])


def __getattr__(name):
    if name in PARTS:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r} (its parts: {', '.join(PARTS)})")


def __dir__():
    return sorted({*globals(), *PARTS})
