"""TensorFlow twin. `build(spec)` is the whole backend contract, as in impls/torch."""


def build(spec, device="cpu", variant="function"):
    """A Trainer for the spec, initialised from the spec's seed (bench.core.randomness)."""
    from .train import Trainer

    return Trainer(spec, device=device, variant=variant)


def available_devices():
    import tensorflow as tf

    return ["cpu"] + (["cuda"] if tf.config.list_physical_devices("GPU") else [])
