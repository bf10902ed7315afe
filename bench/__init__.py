"""genbench: a benchmark and regression suite for twin PyTorch/TensorFlow generative models."""

__version__ = "0.1.0"
