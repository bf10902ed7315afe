"""PyTorch twin. `build(spec)` is the whole backend contract (see bench/README of DESIGN)."""


def build(spec, device="cpu", variant="eager"):
    """A Trainer for the spec, initialised from the spec's seed (bench.core.randomness)."""
    from .train import Trainer

    return Trainer(spec, device=device, variant=variant)


def available_devices():
    import torch

    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
