"""float32 precision is pinned and recorded; a twin on CUDA trains like itself on the CPU.

PyTorch runs cuDNN float32 convolutions in TF32 by default, and TensorFlow runs float32
matmuls and convolutions in TF32 on Ampere and newer GPUs: "float32" on a GPU is then a
10-bit-mantissa computation, up to 6.7 % off the CPU after 5 DCGAN-family steps. The spec's
``float32_precision`` ("full" by default, or "tf32") is set in both twins when a trainer is
built, read back from the frameworks' own switches, and stored in every record.

The CPU tests read the switches through the frameworks' own APIs (not through genbench). The
``gpu`` tests train the same spec, weights and draws on the CPU and on CUDA and compare them
with the equivalence suite's comparator; they skip without a GPU (GENBENCH_REQUIRE_GPU=1 makes
that a failure).
"""

import numpy as np
import pytest

import impls
from bench.checks.equivalence import TOLERANCES, Case, batch, compare, gauge_names, random_weights
from bench.core import randomness
from bench.core.specs import ExperimentSpec, SpecError

TINY = Case("dcgan").spec("float32")


def framework_switches(framework) -> dict:
    """The TF32 switches as each framework reports them."""
    if framework == "torch":
        import torch

        b = torch.backends
        return {"cuda.matmul": b.cuda.matmul.fp32_precision, "cudnn.conv": b.cudnn.conv.fp32_precision}
    import tensorflow as tf

    on = tf.config.experimental.tensor_float_32_execution_enabled()
    return {"tensor_float_32": "tf32" if on else "ieee"}


def test_spec_precision_is_validated():
    assert ExperimentSpec("x").float32_precision == "full"
    with pytest.raises(SpecError, match="float32_precision='bf16' is not one of full, tf32"):
        ExperimentSpec("x", float32_precision="bf16")


def test_building_a_trainer_pins_the_switches(backend, framework):
    tf32 = backend.build(TINY.with_(float32_precision="tf32"))
    assert set(framework_switches(framework).values()) == {"tf32"}
    assert tf32.precision["mode"] == "tf32"
    full = backend.build(TINY)
    assert set(framework_switches(framework).values()) == {"ieee"}
    assert full.precision["mode"] == "full"
    assert set(v for k, v in full.precision.items() if k != "mode") == {"ieee"}


def test_every_record_says_which_precision_ran(tmp_path):
    from bench.core import registry
    from bench.runs.runner import run_experiment

    spec = registry.experiment("gan", dataset="ring8", profile="smoke", steps=3)
    rec = run_experiment(spec, "torch", tmp_path, progress=False, metrics=False)
    assert rec["float32_precision"]["mode"] == "full"
    assert rec["float32_precision"]["torch.cudnn.conv"] == "ieee"


# -- CUDA vs CPU ------------------------------------------------------------------------------
GPU_CASES = ["dcgan", "wgan-gp", "hinge-gan", "dcgan+spectral-norm", "vae", "gan"]
GPU_STEPS = 5
# float32: each device may differ from exact arithmetic by its own float32 error (measured
# against the CPU float64 run of the same weights and draws); by the triangle inequality the two
# devices differ by at most the sum of the two, plus a float32 rounding floor. Capped at 10 %.
F32_FACTOR, F32_FLOOR, F32_CAP = 2.5, 1e-4, 0.1


def train_on(framework, spec, device, weights, steps=GPU_STEPS):
    twin = impls.load(framework).build(spec, device=device)
    twin.set_weights({k: v.astype(spec.dtype) for k, v in weights.items()})
    rng = np.random.default_rng(20241)
    losses = [twin.train_step(batch(spec, s), randomness.step_noise(spec, rng)) for s in range(steps)]
    gauge = gauge_names(spec)  # rounding-noise biases before batch norm: see bench/checks/equivalence/__init__.py
    return {"losses": losses, "params": {k: v for k, v in twin.get_weights().items() if k not in gauge}}


def worst_rel(a, b) -> float:
    return max((r["max_rel"] for r in compare(a, b)), default=0.0)


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["full", "tf32"])
@pytest.mark.parametrize("label", GPU_CASES)
def test_cuda_trains_like_cpu(framework, label, precision):
    if framework == "tensorflow":
        import tensorflow as tf

        if not tf.config.list_physical_devices("GPU"):
            pytest.skip("missing GPU: this TensorFlow build sees no GPU (install tensorflow[and-cuda])")
    model, *stabs = label.split("+")
    case = Case(model, tuple(stabs))
    spec64 = case.spec("float64").with_(float32_precision=precision)
    weights = random_weights(spec64, np.random.default_rng(0))
    cpu64 = train_on(framework, spec64, "cpu", weights)
    gpu64 = train_on(framework, spec64, "cuda", weights)
    tol = TOLERANCES["float64"]["params"]  # float64 has no TF32: summation order only, as between twins
    for row in compare(gpu64, cpu64):
        assert row["max_abs"] <= tol["atol"] + tol["rtol"] * row["scale"], row
    spec32 = spec64.with_(dtype="float32")
    cpu32 = train_on(framework, spec32, "cpu", weights)
    gpu32 = train_on(framework, spec32, "cuda", weights)
    e_cpu, e_gpu = worst_rel(cpu32, cpu64), worst_rel(gpu32, cpu64)
    bound = min(F32_FACTOR * max(e_cpu, e_gpu) + F32_FLOOR, F32_CAP)
    got = worst_rel(gpu32, cpu32)
    print(
        f"\n{framework} {label} {precision}: float64 cuda-cpu {worst_rel(gpu64, cpu64):.2g}; float32 "
        f"cuda-cpu {got:.3g} (cpu vs f64 {e_cpu:.3g}, cuda vs f64 {e_gpu:.3g}, bound {bound:.3g})"
    )
    if precision == "full":
        assert got <= bound, (got, e_cpu, e_gpu)
