"""Twin implementations: one package per framework, same module names in each.

`bench/` reaches them only through `impls.load(framework)`, so importing the harness
never imports a framework. What `impls.load(framework)` returns, the backend contract, is the
same in both twins:

- `build(spec, device, variant)`: a Trainer (train_step, sample, encode, decode, reconstruct,
  get_weights, set_weights; suites/test_surface.py checks both twins have them);
- `available_devices()`: "cpu", and "cuda" where the framework sees a GPU;
- `PARTS`, the twin's modules that a checking tool (bench/checks: conventions, equivalence)
  may use beside build(), each imported on first access as `impls.load(framework).<part>`:
  `losses` (GAN_LOSSES, one signature per loss family, and the VAE terms), `stabilizers`
  (spectral norm, gradient penalty, weight clipping, dropout, batch norm), `models` (Net, the
  interpreter of a bench/core/arch.py layer list), `train` (Trainer, make_optimizer,
  set_float32_precision, VARIANTS), `weights` (the canonical weight layout) and `noise`
  (NativeDraws: the "native" randomness mode, bench/core/randomness.py). Names that
  exist in one twin only are listed, with their reason, in suites/test_surface.py.
"""

import importlib
import importlib.util
import sys

from bench.core import cpu as _cpu

FRAMEWORKS = ("torch", "tensorflow")


def _load_triton_before_tensorflow():
    """Load Triton's native library now if TensorFlow is not loaded yet.

    torch imports Triton lazily (the first torch.optim optimizer imports torch._dynamo, which
    imports triton), and loading libtriton into a process that has already loaded TensorFlow
    2.21 segfaults (torch 2.14.1, triton 3.8). Loading it first is safe in either framework,
    so a process that uses both twins, such as a pytest session, never crashes on import order.
    """
    if "tensorflow" in sys.modules or importlib.util.find_spec("triton") is None:
        return
    try:
        importlib.import_module("triton._C.libtriton")
    except ImportError:  # pragma: no cover - a broken triton install: torch copes without it
        pass


_load_triton_before_tensorflow()
_cpu.apply_tf_onednn()  # TensorFlow reads TF_ENABLE_ONEDNN_OPTS once, when it loads


def load(framework: str):
    """Return the backend package (`impls.torch` or `impls.tensorflow`)."""
    if framework not in FRAMEWORKS:
        raise ValueError(f"unknown framework {framework!r}; choose one of {', '.join(FRAMEWORKS)}")
    return importlib.import_module(f"impls.{framework}")
