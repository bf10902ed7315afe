"""The "native" randomness mode (bench.core.randomness.RANDOMNESS_MODES): a step's random inputs
drawn by TensorFlow's own generator (tf.random.Generator, Philox), seeded from the spec's seed,
on the trainer's device. Same keys, shapes and distributions as the NumPy stream, other numbers:
reproducible run to run in TensorFlow, not comparable step by step with PyTorch. On a GPU it
saves the host draws and copies; on a CPU NumPy's 16-bit draws are faster (docs/timing.md)."""

import tensorflow as tf

from bench.core.randomness import Draws, native_seed
from bench.core.specs import DEVICES, check_choice


class NativeDraws(Draws):
    def __init__(self, spec, device="cpu"):
        check_choice("device", device, DEVICES)
        self.device = "/GPU:0" if device == "cuda" else "/CPU:0"
        self.dtype = tf.as_dtype(spec.dtype)
        with tf.device(self.device):
            self.gen = tf.random.Generator.from_seed(native_seed(spec.seed))

    def normal(self, shape):
        with tf.device(self.device):
            return self.gen.normal(shape, dtype=self.dtype)

    def uniform(self, shape):
        with tf.device(self.device):
            return self.gen.uniform(shape, dtype=self.dtype)

    def mask(self, shape, p):
        with tf.device(self.device):
            keep = self.gen.uniform(shape, dtype=tf.float32) >= p  # float32 draws, 23 bits
            return tf.cast(keep, self.dtype) * tf.constant(1.0 / (1.0 - p), self.dtype)
