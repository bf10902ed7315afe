"""The "native" randomness mode (bench.core.randomness.RANDOMNESS_MODES): a step's random inputs
drawn by PyTorch's own generator, seeded from the spec's seed, on the trainer's device. Same
keys, shapes and distributions as the NumPy stream, other numbers: reproducible run to run in
PyTorch, not comparable step by step with TensorFlow. On a GPU it saves the host draws and the
host-to-device copies; on a CPU NumPy's 16-bit draws are faster (docs/timing.md)."""

import torch

from bench.core.randomness import Draws, native_seed
from bench.core.specs import DEVICES, check_choice


class NativeDraws(Draws):
    def __init__(self, spec, device="cpu"):
        check_choice("device", device, DEVICES)
        self.device = torch.device(device)
        self.dtype = getattr(torch, spec.dtype)
        self.gen = torch.Generator(device=self.device)
        self.gen.manual_seed(native_seed(spec.seed))

    def normal(self, shape):
        return torch.randn(shape, generator=self.gen, device=self.device, dtype=self.dtype)

    def uniform(self, shape):
        return torch.rand(shape, generator=self.gen, device=self.device, dtype=self.dtype)

    def mask(self, shape, p):
        keep = torch.rand(shape, generator=self.gen, device=self.device) >= p  # float32 draws, 24 bits
        return keep.to(self.dtype).mul_(1.0 / (1.0 - p))
