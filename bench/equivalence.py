"""Cross-framework equivalence: the PyTorch twin and the TensorFlow twin, step by step.

Both twins of a case are built from one spec; the TensorFlow twin takes the weights the
PyTorch twin exports (canonical layout, round trip checked bit for bit), and each twin draws
its harness randomness from its own, identically seeded, NumPy generator. Then, for N steps:
every loss term of every step, every gradient of the last D (critic) step and of the G (and E)
step (`record_grads`), and every parameter and buffer after every step (batch-norm running
statistics, spectral-norm u); forward outputs (sample, discriminate, encode, decode, in
evaluation mode) before the first step and after the last. The first tensor out of tolerance
is named with its step: `dcgan [float64] step 0 params: G.bn0.running_mean differs, max abs
0.069 > 1.8e-11 (max rel 0.88, atol 1e-11, rtol 1e-10)`.

float64: fixed tolerances
-------------------------
A float64 tensor passes when

    max|torch - tf| <= atol + rtol * max|tf|

- The relative part scales with the tensor's largest magnitude, not element by element:
  single elements can be pure rounding noise. Dtypes and shapes must match exactly, NaN must
  sit at the same places (this holds in float32 too).
- Gauge tensors (gauge_names): a bias that feeds batch norm directly has an exactly zero
  gradient (batch norm subtracts the batch mean), so its gradient is rounding noise, different
  in each twin, which Adam and RMSprop scale up by as much as lr / eps: the bias wanders
  without changing any loss or other gradient, and the running mean follows it. It is held to
  a multiple of optimizer_reach(), how far the optimizer can move any parameter in those steps
  (1e-5 of it). Its gradient is judged against its network's largest gradient, and before the
  final forward check every twin takes PyTorch's gauge tensors (evaluation mode sees them). The
  relativistic average GAN (ragan) adds one more: its losses do not change when every D score
  shifts by a constant, so the bias of D's output layer has an exactly zero gradient too.

float32: bounds from both twins' own rounding
---------------------------------------------
A float32 case trains four twins side by side: PyTorch and TensorFlow in float32, and each of
them again in float64, all four from the same (float32) weights and on the same float32 inputs
(the float64 twins get them upcast, so that their runs differ from the float32 ones by
arithmetic only). The two float64 twins are held to the float64 tolerances above, in the same
run. A float32 tensor passes, at each step, when

    max|t32 - f32| <= (2.5 * max(e_torch, e_tf) + 2 * eps32) * s,   s = max|f32|,
    e_torch = max|t32 - t64| / s,   e_tf = max|f32 - f64| / s,

with t = the PyTorch twin, f = the TensorFlow twin, eps32 = 2**-23 = 1.19e-7 (FLOAT32_MODEL).

- Why: the triangle inequality, element by element and so for the largest element,
  |t32 - f32| <= |t32 - t64| + |t64 - f64| + |f64 - f32| <= 2 max(E_torch, E_tf) + D64,
  where D64 = max|t64 - f64| is held to 1e-10 s in the same run (measured at most 1.7e-12 s
  over the full product), far below eps32 s. Two float32 implementations of one computation can differ
  by no more than what each one's own rounding moved it, whatever that rounding was: summation
  order, vector width (SSE4.1, AVX2, AVX-512, AMX), thread count, oneDNN, MKL or Eigen. Both
  twins' errors are measured on the machine that runs the check, so the bound moves with that
  machine's rounding, and nothing in it was fitted to the machine the tables came from.
- factor 2.5: 2 is what the inequality needs; the other 0.5 is slack for D64 and for the
  float64 evaluation of the differences. Two correct twins' difference can therefore reach at
  most 0.8 of its bound (2 / 2.5, when they round in opposite directions by the same amount);
  a larger ratio anywhere, on any CPU, means a defect.
- floor 2 eps32: two float32 ulps at the tensor's largest magnitude (one ulp at s is at most
  eps32 * s), the bound that is left when both twins' float32 results equal their float64
  runs; it is far above D64 and far below any real defect.
- Per tensor and per step: float32 drifts from the exact trajectory in places (LeakyReLU
  units cross their kink at random once weights have drifted by ~1e-6, and the gradient jumps;
  a WGAN critic amplifies rounding over its 5 updates a step), and there e is large for those
  tensors at those steps only; everywhere else e is 1e-8 to 1e-4 and the bound stays that
  tight. A PyTorch-only yardstick was not enough: TensorFlow's float32 can cross a kink where
  PyTorch's does not (its own error is then the larger one), which depends on the CPU's
  rounding.
- Cap 10 %: no float32 bound may exceed 0.10 relative (MAX_FLOAT32_RTOL, enforced in
  _Checker). A tensor whose bound would be wider is not compared at that step: float32 has
  left the exact trajectory there, and a wider bound would let real differences through. The
  row's `not_compared` lists those (quantity, count, steps); the float64 twins are still
  compared at 1e-10 at that step. In the default cases: the float32 gauge biases, whose own
  error is their whole size, and at steps 3-4 (critic updates 16 to 25) 11 WGAN and 4
  WGAN-GP gradients and WGAN's D.conv1.bias; in the full product also three more WGAN /
  WGAN-GP variants at steps 3-4, gradients only.
- What it catches: a defect in a twin's code shows in both of its dtypes (the code is
  dtype-generic), so its float32 and float64 runs agree with each other and disagree with the
  other twin: e stays at rounding level and the bound stays tight. suites/test_equivalence.py
  plants a 1 % error in every optimizer update of either twin and checks that the float32
  comparison itself fails in every default case (the float64 twins fail too).
- What it cannot catch: a defect in one twin's float32 arithmetic only (a kernel that rounds
  through bfloat16, TF32 on a GPU) is that twin's own float32 error by definition, and widens
  its bound (past 4 % it takes the tensor out of the comparison); the float64 twins, held to
  1e-10, are what checks the code.
- Gauge tensors follow the same rule in float32, their gradients against their network's
  largest gradient; the gauge biases themselves are never compared (their own error is ~1).

Tolerances and the worst measured values over the default cases, 5 steps at small widths
(results/tables/equivalence.md lists every default case; "full" is the model x stabilizer x
optimizer product, `-m slow`):

| dtype   | quantity    | atol  | rtol  | default | full    | why this size |
|---------|-------------|-------|-------|---------|---------|---------------|
| float64 | weights     | 0     | 0     | 0       | 0       | a layout transpose moves bits, never rounds |
| float64 | outputs     | 1e-12 | 1e-10 | 4.5e-13 | 4.5e-13 | summation order differs (oneDNN vs ATen), ~1e-16 x sqrt(fan-in) per layer; 1e-10 still catches a float32 constant (3e-9 relative, as tf.nn.leaky_relu's alpha was) |
| float64 | losses      | 1e-12 | 1e-10 | 9.5e-15 | 4.9e-14 | as outputs; ELBO terms are sums over 784 pixels |
| float64 | grads       | 1e-12 | 1e-10 | 1.5e-14 | -       | as outputs, through one backward pass |
| float64 | grads_later | 1e-12 | 1e-10 | 1.0e-12 | 1.0e-12 | float64 drift is ~1e-13, far from any kink |
| float64 | params      | 1e-11 | 1e-10 | 2.0e-12 | 1.1e-11 | RMSprop/Adam divide by sqrt(v) + eps: tiny gradients' rounding is scaled up by up to lr/eps ~ 1e5 |
| float64 | gauge       | 0     | 1e-5  | 6.3e-10 | 1.3e-06 | x optimizer_reach: gradient noise ~1e-16 x gradient scale, times lr/eps |
| float32 | weights     | 0     | 0     | 0       | 0       | as float64 |
| float32 | all others  | 0     | 2.5 max(e_torch, e_tf) + 2 eps32, at most 0.10 | 0.80 of bound; widest 0.089 | 0.80; widest 0.095 | the error model above |

For float32 the "default" and "full" columns give the largest difference as a fraction of its
bound (at most 0.8 for correct twins, as above) and the widest bound that was used.
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import arch, randomness, registry
from .specs import NUM_CLASSES, OPTIMIZERS, ExperimentSpec, OptimizerSpec

QUANTITIES = ("weights", "outputs", "losses", "grads", "grads_later", "params", "gauge")

# float64: atol / rtol per quantity; the module docstring says why each is that size. float32:
# the weights round trip is exact; every other float32 bound comes from FLOAT32_MODEL.
TOLERANCES = {
    "float64": {
        "weights": {"atol": 0.0, "rtol": 0.0},
        "outputs": {"atol": 1e-12, "rtol": 1e-10},
        "losses": {"atol": 1e-12, "rtol": 1e-10},
        "grads": {"atol": 1e-12, "rtol": 1e-10},
        "grads_later": {"atol": 1e-12, "rtol": 1e-10},
        "params": {"atol": 1e-11, "rtol": 1e-10},
        "gauge": {"atol": 0.0, "rtol": 1e-5},  # x the optimizer's reach (optimizer_reach)
    },
    "float32": {
        "weights": {"atol": 0.0, "rtol": 0.0},
    },
}

EPS32 = float(np.finfo(np.float32).eps)  # 2**-23: one float32 ulp at 1.0, at most eps32 * |x| at x
# A float32 tensor at one step passes when
#     max|torch32 - tf32| <= (factor * max(e_torch, e_tf) + floor_eps * EPS32) * max|tf32|
# where e_x = max|x32 - x64| / max|tf32| is twin x's own float32 error against its own float64
# run from the same weights and inputs. A relative bound above `cap` is not used: that tensor
# is not compared at that step (the row's not_compared says which). The module docstring
# derives each number.
FLOAT32_MODEL = {"factor": 2.5, "floor_eps": 2.0, "cap": 0.10}
MAX_FLOAT32_RTOL = 0.10  # the hard limit on any float32 bound: a model's cap may not exceed it

# Small widths keep a case under a second on one CPU core; the layer kinds, the depth and
# every code path stay those of the catalog model (dcgan needs exactly two widths per net).
SMALL = {"generator.hidden": (32, 16), "discriminator.hidden": (16, 32), "encoder.hidden": (32, 16),
         "batch_size": 8, "latent_dim": 8}
DATA_SEED, NOISE_SEED, PROBE_SEED = 20240, 20241, 20242


# -- the comparator ----------------------------------------------------------------------------
class EquivalenceError(AssertionError):
    """The twins disagree; `path` names the tensor, `context` the case and step."""

    def __init__(self, message, context="", path="", max_abs=math.nan, bound=math.nan):
        super().__init__(message)
        self.context, self.path, self.max_abs, self.bound = context, path, max_abs, bound


def _leaves(a, b, path):
    """Yield (path, a, b, problem) for every leaf of two nested dict/list/tuple trees."""
    if isinstance(a, dict) or isinstance(b, dict):
        if not (isinstance(a, dict) and isinstance(b, dict)):
            yield path, a, b, f"is a {type(a).__name__} in torch, a {type(b).__name__} in tensorflow"
            return
        only_a, only_b = [k for k in a if k not in b], [k for k in b if k not in a]
        if only_a or only_b:
            yield path, a, b, f"keys differ: only torch {only_a[:5]}, only tensorflow {only_b[:5]}"
            return
        for k in a:
            yield from _leaves(a[k], b[k], f"{path}.{k}" if path else str(k))
        return
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        if not (isinstance(a, (list, tuple)) and isinstance(b, (list, tuple))) or len(a) != len(b):
            yield path, a, b, "sequence lengths differ"
            return
        for i, (x, y) in enumerate(zip(a, b)):
            yield from _leaves(x, y, f"{path}[{i}]")
        return
    yield path, a, b, None


def _row(path, a, b, scale=None):
    a, b = np.asarray(a), np.asarray(b)
    row = {"path": path, "shape": tuple(b.shape), "dtype": str(b.dtype), "max_abs": 0.0,
           "max_rel": 0.0, "scale": 0.0, "problem": None}
    if a.shape != b.shape:
        row["problem"] = f"shape {a.shape} in torch, {b.shape} in tensorflow"
    elif a.dtype != b.dtype:
        row["problem"] = f"dtype {a.dtype} in torch, {b.dtype} in tensorflow"
    elif a.size:
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        nan_a, nan_b = np.isnan(a64), np.isnan(b64)
        if (nan_a != nan_b).any():
            row["problem"] = f"NaN in one twin only ({int((nan_a != nan_b).sum())} elements)"
            row["max_abs"] = row["max_rel"] = math.inf
            return row
        keep = ~nan_a
        diff = np.abs(a64[keep] - b64[keep])
        row["max_abs"] = float(diff.max()) if diff.size else 0.0
        row["scale"] = float(np.abs(b64[keep]).max()) if diff.size else 0.0
        if scale is not None:
            row["scale"] = float(scale)
        if row["scale"] > 0:
            row["max_rel"] = row["max_abs"] / row["scale"]
        else:
            row["max_rel"] = 0.0 if row["max_abs"] == 0 else math.inf
    return row


def compare(a, b, path="", scale=None) -> list[dict]:
    """One row per leaf of two nested trees (torch first): path, shape, dtype, max_abs,
    max_rel (max abs / scale), scale (max |tf| of the leaf, or the given one), and a problem
    string for a structural difference (keys, lengths, shapes, dtypes, NaN placement) or None."""
    rows = []
    for p, x, y, problem in _leaves(a, b, path):
        if problem:
            rows.append({"path": p, "shape": None, "dtype": None, "max_abs": math.inf,
                         "max_rel": math.inf, "scale": 0.0, "problem": problem})
        else:
            rows.append(_row(p, x, y, scale))
    return rows


def violation(row, atol, rtol, context=""):
    """The EquivalenceError for a compare() row outside atol + rtol * scale, else None."""
    where = f"{context}: " if context else ""
    if row["problem"]:
        return EquivalenceError(f"{where}{row['path']} {row['problem']}", context, row["path"])
    bound = atol + rtol * row["scale"]
    if row["max_abs"] <= bound:
        return None
    return EquivalenceError(
        f"{where}{row['path']} differs, max abs {row['max_abs']:.2g} > {bound:.2g} "
        f"(max rel {row['max_rel']:.2g}, atol {atol:g}, rtol {rtol:g})",
        context, row["path"], row["max_abs"], bound)


def assert_close_tree(a, b, atol=0.0, rtol=0.0, path="", context=""):
    """Raise EquivalenceError naming the first leaf (in tree order) that is not close."""
    for row in compare(a, b, path):
        err = violation(row, atol, rtol, context)
        if err is not None:
            raise err


# -- cases -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """A catalog model with stabilizers; `optimizer` swaps both optimizers' kind (keeping lr,
    betas, rho, eps) or None keeps the model's own."""

    model: str
    stabilizers: tuple[str, ...] = ()
    optimizer: str | None = None

    @property
    def label(self) -> str:
        base = "+".join((self.model,) + tuple(self.stabilizers))
        return f"{base}@{self.optimizer}" if self.optimizer else base

    def spec(self, dtype="float64", small=True) -> ExperimentSpec:
        spec = registry.experiment(self.model, self.stabilizers, profile="smoke")
        if self.optimizer:
            if self.optimizer not in OPTIMIZERS:
                raise ValueError(f"optimizer {self.optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
            spec = spec.with_(**{"g_optimizer.kind": self.optimizer, "d_optimizer.kind": self.optimizer})
        if small:
            spec = spec.with_(**SMALL)
        return spec.with_(dtype=dtype, name=self.label)


def parse_case(token: str) -> Case:
    """'dcgan+spectral-norm@adam' -> Case('dcgan', ('spectral-norm',), 'adam')."""
    token, _, optimizer = token.partition("@")
    model, stabs = registry.parse_model(token)
    return Case(model, stabs, optimizer or None)


# Where each stabilizer is checked in the one-axis-at-a-time set (a stabilizer missing here is
# checked on the first catalog model it applies to): weight decay, batch norm and label
# smoothing on the MLP GAN (RMSprop, 1-D batch norm), dropout on the VAE's encoder (the DCGAN
# critic already has dropout), spectral norm and the gradient penalty on convolutions.
REPRESENTATIVE = {"weight-decay": "gan", "weight-decay-decoupled": "gan", "batch-norm": "gan",
                  "dropout": "vae", "spectral-norm": "dcgan", "gradient-penalty": "dcgan"}
# The other optimizer kind: RMSprop GANs under Adam, the Adam VAE under RMSprop, and both kinds
# of weight decay under Adam (Adam's coupled L2 and AdamW; RMSprop's come with the MLP GAN).
OPTIMIZER_CASES = (
    Case("gan", (), "adam"), Case("dcgan", (), "adam"), Case("vae", (), "rmsprop"),
    Case("vae", ("weight-decay",)), Case("vae", ("weight-decay-decoupled",)),
)


def default_cases(full=False) -> list[Case]:
    """One axis at a time (every model bare; every stabilizer on one model; the other optimizer
    kind), or with full=True every model x (no / each applicable stabilizer, and the study's
    combinations) x both optimizer kinds."""
    if not full:
        cases = [Case(m) for m in registry.MODELS]
        for name in registry.STABILIZERS:
            model = REPRESENTATIVE.get(name) or next(m for m in registry.MODELS if name in registry.applicable(m))
            cases.append(Case(model, (name,)))
        return cases + list(OPTIMIZER_CASES)
    combos = [(m, ()) for m in registry.MODELS]
    combos += [(m, (s,)) for m in registry.MODELS for s in registry.applicable(m)]
    combos += [row for row in registry.SEED_MATRIX if len(row[1]) > 1]
    cases = []
    for model, stabs in combos:
        own = registry.MODELS[model].g_optimizer.kind
        for kind in OPTIMIZERS:
            cases.append(Case(model, tuple(stabs), None if kind == own else kind))
    return list(dict.fromkeys(cases))


# -- inputs ------------------------------------------------------------------------------------
def batch(spec: ExperimentSpec, step: int) -> dict:
    """The real batch of one train_step: uniform images in the data range, labels 0..9."""
    rng = np.random.default_rng([DATA_SEED, step])
    n = randomness.real_batches_per_step(spec) * spec.batch_size
    lo, hi = spec.data_range if spec.is_image else (-2.0, 2.0)
    x = rng.uniform(lo, hi, (n,) + spec.data_shape).astype(spec.dtype)
    return {"x": x, "y": rng.integers(0, NUM_CLASSES, n)}


def probes(spec: ExperimentSpec) -> dict:
    """Fixed inputs for the forward checks (evaluation mode)."""
    rng = np.random.default_rng(PROBE_SEED)
    b = spec.batch_size
    lo, hi = spec.data_range if spec.is_image else (-2.0, 2.0)
    return {"z": rng.standard_normal((b, spec.latent_dim)).astype(spec.dtype),
            "x": rng.uniform(lo, hi, (b,) + spec.data_shape).astype(spec.dtype),
            "y": rng.integers(0, NUM_CLASSES, b)}


def random_weights(spec: ExperimentSpec, rng: np.random.Generator) -> dict:
    """Canonical weights with every array random (unlike the initial weights, whose batch-norm
    statistics are 0 and 1 and whose biases are 0): running variances positive, u unit."""
    out = {}
    for name, shape in arch.weight_shapes(spec).items():
        a = rng.standard_normal(shape) * 0.1
        if name.endswith(".running_var"):
            a = 0.5 + rng.random(shape)
        elif name.endswith((".u", ".v")):
            a = a / np.linalg.norm(a)
        elif name.endswith(".weight") and len(shape) == 1:  # batch-norm scale
            a = 1.0 + a
        out[name] = a.astype(spec.dtype)
    return out


def forward(trainer, spec: ExperimentSpec, p: dict) -> dict:
    """Every forward output of the backend contract that the spec's family has."""
    out = {"sample": trainer.sample(p["z"], p["y"])}
    if spec.has_discriminator:
        out["discriminate"] = trainer.discriminate(p["x"])
    if spec.has_encoder:
        mean, logvar = trainer.encode(p["x"], p["y"])
        out.update({"encode.mean": mean, "encode.logvar": logvar, "decode": trainer.decode(p["z"], p["y"])})
    return out


# -- one case ----------------------------------------------------------------------------------
def gauge_names(spec: ExperimentSpec) -> set[str]:
    """Biases that feed batch norm directly, and that batch norm's running mean.

    In training mode batch norm subtracts the batch mean, so such a bias has an exactly zero
    gradient in exact arithmetic: in floating point its gradient is rounding noise, different
    in each twin, and Adam and RMSprop scale noise up by as much as lr / eps. The bias then
    wanders differently in each twin without changing any loss or any other gradient; the
    running mean, which averages the biased batch mean, follows it. These tensors are compared
    under the "gauge" tolerance, and their gradients against their network's largest gradient.
    """
    out = set()
    for net, layers in arch.networks(spec).items():
        for i, layer in enumerate(layers):
            if layer.kind not in ("dense", "conv", "convT"):
                continue
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            # directly: after a reshape (DCGAN's fc0 -> 7x7 maps) the bias is per position and
            # only its per-channel mean cancels, so it stays an ordinary parameter
            if nxt is not None and nxt.kind == "bn":
                out |= {f"{net}.{layer.name}.bias", f"{net}.{nxt.name}.running_mean"}
    if spec.loss == "ragan" and spec.has_discriminator:
        # the relativistic average loss reads only C(x_r) - mean C(x_f) and C(x_f) - mean C(x_r):
        # a constant added to every score cancels, so the bias of D's output layer is a gauge too
        last = [layer for layer in arch.networks(spec)["D"] if layer.kind in ("dense", "conv")][-1]
        out.add(f"D.{last.name}.bias")
    return out


def optimizer_reach(o: OptimizerSpec, updates: int) -> float:
    """How far `updates` steps of this optimizer can move one parameter, whatever the gradients.

    RMSprop: |g| / sqrt(v) <= 1 / sqrt(1 - rho), because v >= (1 - rho) g^2. Adam: by
    Cauchy-Schwarz on the two moving averages, |m_t| / sqrt(v_t) <= (1 - b1) / sqrt((1 - b2)
    (1 - b1^2 / b2)), times the bias correction sqrt(1 - b2^t) / (1 - b1^t). Decoupled decay adds
    lr * wd * |p| per step (|p| <= 1 assumed: the gauge tensors are biases near 0)."""
    total = 0.0
    for t in range(1, updates + 1):
        if o.kind == "rmsprop":
            ratio = 1.0 / math.sqrt(1.0 - o.rho)
        else:
            ratio = ((1.0 - o.beta1) / math.sqrt((1.0 - o.beta2) * (1.0 - o.beta1**2 / o.beta2))
                     * math.sqrt(1.0 - o.beta2**t) / (1.0 - o.beta1**t))
        total += o.lr * ratio + (o.lr * o.weight_decay if o.decoupled_weight_decay else 0.0)
    return total


def _flatten(tree, path="") -> dict:
    """{path: leaf} of a nested dict/list tree, paths spelled as compare() spells them."""
    if isinstance(tree, dict):
        out = {}
        for k, v in tree.items():
            out.update(_flatten(v, f"{path}.{k}" if path else str(k)))
        return out
    if isinstance(tree, (list, tuple)):
        out = {}
        for i, v in enumerate(tree):
            out.update(_flatten(v, f"{path}[{i}]"))
        return out
    return {path: tree}


def _upcast(tree):
    """The same tree with every floating-point array as float64 (labels and other integers kept):
    the float64 twins of a float32 case consume exactly the float32 inputs."""
    if isinstance(tree, dict):
        return {k: _upcast(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [_upcast(v) for v in tree]
    a = np.asarray(tree)
    return a.astype(np.float64) if np.issubdtype(a.dtype, np.floating) else tree


def own_error(x32, x64) -> float:
    """max |x32 - x64| (float64 arithmetic): one twin's float32 result against its float64 run.
    Infinite where the shapes or the NaN placements differ."""
    a, b = np.asarray(x32, dtype=np.float64), np.asarray(x64, dtype=np.float64)
    if a.shape != b.shape:
        return math.inf
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    if (nan_a != nan_b).any():
        return math.inf
    keep = ~nan_a
    return float(np.abs(a[keep] - b[keep]).max()) if keep.any() else 0.0


def float32_rtol(e_torch: float, e_tf: float, model=None) -> float:
    """The relative bound for one float32 tensor at one step: factor x the larger of the two
    twins' own relative float32 errors, plus floor_eps float32 epsilons (FLOAT32_MODEL)."""
    model = model or FLOAT32_MODEL
    return model["factor"] * max(e_torch, e_tf) + model["floor_eps"] * EPS32


class _Checker:
    """Compares one pair of twins quantity by quantity; keeps the worst error per quantity and
    raises at the first violation when strict (otherwise appends it to `errors`).

    float64 pairs use TOLERANCES. float32 pairs use the error model: __call__ gets `ref`, the
    same quantity from the two twins' float64 runs, and each tensor's bound is
    float32_rtol(e_torch, e_tf) (module docstring); a bound above the cap means that tensor is
    not compared at that step, recorded in `not_compared`."""

    def __init__(self, label, dtype, strict, tolerances=None, gauge=(), model=None, tag=None,
                 errors=None):
        self.label, self.dtype, self.strict, self.tag = label, dtype, strict, tag or dtype
        self.tol = (tolerances or TOLERANCES)[dtype]
        self.model = model or FLOAT32_MODEL
        if self.model["cap"] > MAX_FLOAT32_RTOL:
            raise ValueError(f"a float32 bound may not exceed {MAX_FLOAT32_RTOL * 100:g} % relative; "
                             f"cap {self.model['cap']:g} is above it")
        self.gauge = set(gauge)
        self.worst = {q: {"max_abs": 0.0, "max_rel": 0.0, "path": "", "ratio": 0.0} for q in QUANTITIES}
        self.own = {"torch": 0.0, "tensorflow": 0.0}  # float32 vs float64, largest relative
        self.widest = 0.0  # the widest float32 rtol a compared tensor had
        self.not_compared: list[tuple] = []  # (where, quantity, path, rtol)
        self.errors = [] if errors is None else errors

    @property
    def error(self):
        return self.errors[0] if self.errors else None

    def _pick(self, tree, keep):
        return {k: v for k, v in tree.items() if keep(k)} if isinstance(tree, dict) else tree

    def __call__(self, quantity, a, b, where, reach=None, ref=None):
        kind = "grads" if quantity == "grads_later" else quantity
        model = self.dtype == "float32" and quantity != "weights"
        if model and ref is None:
            raise ValueError("a float32 comparison needs the twins' float64 runs (ref)")
        ref = ref or (None, None)
        split = kind in ("params", "grads") and isinstance(b, dict)
        rest = (lambda k: k not in self.gauge) if split else (lambda k: True)
        self._check(quantity, self._pick(a, rest), self._pick(b, rest), where,
                    ref=(self._pick(ref[0], rest), self._pick(ref[1], rest)) if model else None)
        if not split:
            return
        for net in sorted({k.split(".")[0] for k in b if k in self.gauge}):
            mine = lambda k, net=net: k in self.gauge and k.startswith(net + ".")  # noqa: E731
            pair = (self._pick(a, mine), self._pick(b, mine))
            pair_ref = (self._pick(ref[0], mine), self._pick(ref[1], mine)) if model else None
            if kind == "params":  # float64: against what the optimizer could move them
                self._check("gauge", *pair, where, scale=None if model else reach[net], ref=pair_ref)
            else:  # gradients: against the network's largest gradient
                scale = max(float(np.max(np.abs(v))) for k, v in b.items() if k.startswith(net + "."))
                self._check(quantity, *pair, where, scale=scale, ref=pair_ref)

    def _record(self, quantity, row, bound, where):
        w = self.worst[quantity]
        ratio = row["max_abs"] / bound if bound > 0 else (0.0 if row["max_abs"] == 0 else math.inf)
        w["max_abs"], w["max_rel"] = max(w["max_abs"], row["max_abs"]), max(w["max_rel"], row["max_rel"])
        if ratio > w["ratio"] or not w["path"]:
            w["ratio"], w["path"] = ratio, f"{where}: {row['path']}"

    def _fail(self, err):
        if self.strict:
            raise err
        self.errors.append(err)

    def _check(self, quantity, a, b, where, scale=None, ref=None):
        context = f"{self.label} [{self.tag}] {where}"
        if ref is None:  # a fixed tolerance
            tol = self.tol[quantity]
            for row in compare(a, b, scale=scale):
                bound = tol["atol"] + tol["rtol"] * row["scale"]
                self._record(quantity, row, bound, where)
                err = violation(row, tol["atol"], tol["rtol"], context)
                if err is not None:
                    self._fail(err)
            return
        leaves = [_flatten(t) for t in (a, b) + tuple(ref)]
        cap = self.model["cap"]
        for row in compare(a, b, scale=scale):
            path = row["path"]
            if row["problem"]:
                self._record(quantity, row, 0.0, where)
                self._fail(violation(row, 0.0, 0.0, context))
                continue
            s = row["scale"]
            own = [own_error(leaves[0][path], leaves[2].get(path)), own_error(leaves[1][path], leaves[3].get(path))]
            e_t, e_tf = [(e / s if s > 0 else (0.0 if e == 0 else math.inf)) for e in own]
            if quantity != "gauge":  # a gauge tensor is all rounding noise: its own error is ~1
                self.own["torch"], self.own["tensorflow"] = max(self.own["torch"], e_t), max(self.own["tensorflow"], e_tf)
            rtol = float32_rtol(e_t, e_tf, self.model)
            if rtol > cap:
                self.not_compared.append((where, quantity, path, rtol))
                continue
            self.widest = max(self.widest, rtol)
            bound = rtol * s
            self._record(quantity, row, bound, where)
            if row["max_abs"] > bound:
                self._fail(EquivalenceError(
                    f"{context}: {path} differs, max abs {row['max_abs']:.2g} > {bound:.2g} "
                    f"(max rel {row['max_rel']:.2g}; rtol {rtol:.3g} = {self.model['factor']:g} x "
                    f"max(e_torch {e_t:.2g}, e_tf {e_tf:.2g}) + {self.model['floor_eps']:g} eps32)",
                    context, path, row["max_abs"], bound))


def assert_twins_close(quantity, values, context="", model=None):
    """One quantity under the suite's rule: values = (torch, tf) in float64, or (torch32, tf32,
    torch64, tf64) in float32, the float64 pair run from the same weights and inputs (and held to
    the float64 tolerances). Raises EquivalenceError at the first tensor out of bounds."""
    dtype = "float32" if len(values) == 4 else "float64"
    check = _Checker(context, dtype, True, model=model)
    if dtype == "float32":
        check(quantity, values[0], values[1], "", ref=(values[2], values[3]))
        _Checker(context, "float64", True, tag="float64 twins")(quantity, values[2], values[3], "")
    else:
        check(quantity, values[0], values[1], "")


def _step_of(where: str) -> int:
    parts = where.split()
    return int(parts[1]) if len(parts) > 1 and parts[0] == "step" and parts[1].isdigit() else -1


def not_compared_summary(items) -> str:
    """'grads_later 6 (steps 3-4)' for the (where, quantity, path, rtol) a float32 case left out."""
    by_q: dict = {}
    for where, quantity, _path, _rtol in items:
        by_q.setdefault(quantity, []).append(_step_of(where))
    parts = []
    for q, steps in by_q.items():
        lo, hi = min(steps), max(steps)
        parts.append(f"{q} {len(steps)} (step{'s' if lo != hi else ''} {lo}{f'-{hi}' if hi != lo else ''})")
    return "; ".join(parts)


def run_case(case: Case, dtype="float64", steps=5, tf_variant="eager", strict=True,
             tolerances=None, spec: ExperimentSpec | None = None, model=None) -> dict:
    """Train both twins of a case for `steps` steps side by side and compare everything.

    In float32, both twins also train in float64 alongside, from the same weights and the same
    (float32) inputs: each twin's float32-vs-float64 error sets the float32 bounds, and the two
    float64 twins are held to the float64 tolerances (the error model needs them to agree).
    strict=True raises EquivalenceError at the first tensor out of tolerance; otherwise the row
    carries `ok` and `error`. Returns one table row (see write_table)."""
    import impls

    spec = spec or case.spec(dtype)
    float32 = spec.dtype == "float32"
    gauge = gauge_names(spec)
    errors: list = []
    check = _Checker(case.label, spec.dtype, strict, tolerances, gauge, model, errors=errors)
    start = time.perf_counter()
    torch_b, tf_b = impls.load("torch"), impls.load("tensorflow")
    torch_twin, tf_twin = torch_b.build(spec), tf_b.build(spec, variant=tf_variant)
    exported = torch_twin.get_weights()
    tf_twin.set_weights(exported)
    check("weights", exported, tf_twin.get_weights(), "weights round trip")
    twins = [torch_twin, tf_twin]
    if float32:
        spec64 = spec.with_(dtype="float64")
        check64 = _Checker(case.label, "float64", strict, tolerances, gauge, tag="float32 case, float64 twins",
                           errors=errors)
        twins += [torch_b.build(spec64), tf_b.build(spec64, variant=tf_variant)]
        twins[2].set_weights(_upcast(exported))
        twins[3].set_weights(twins[2].get_weights())
        check64("weights", twins[2].get_weights(), twins[3].get_weights(), "weights round trip")
    for twin in twins:
        twin.record_grads = True

    def judge(quantity, values, where, reach=None):
        """values: one per twin (torch, tf, then the float64 torch and tf of a float32 case)."""
        if float32:  # the float32 pair first: a defect in both dtypes is reported as float32's
            check(quantity, values[0], values[1], where, reach, ref=(values[2], values[3]))
            check64(quantity, values[2], values[3], where, reach)
        else:
            check(quantity, values[0], values[1], where, reach)

    def inputs_of(tree):
        return [tree, tree, _upcast(tree), _upcast(tree)][:len(twins)]

    p = probes(spec)
    judge("outputs", [forward(t, spec, x) for t, x in zip(twins, inputs_of(p))], "step 0 forward")
    rngs = [np.random.default_rng(NOISE_SEED) for _ in range(2)]  # each twin draws its own
    for step in range(steps):
        data = batch(spec, step)
        noise = [randomness.step_noise(spec, r) for r in rngs]
        noise += [_upcast(n) for n in noise][:len(twins) - 2]
        losses = [t.train_step(d, n) for t, d, n in zip(twins, inputs_of(data), noise)]
        judge("losses", losses, f"step {step} losses")
        judge("grads" if step == 0 else "grads_later", [t.last_grads for t in twins], f"step {step} grads")
        updates = {"G": step + 1, "E": step + 1, "D": (step + 1) * spec.n_critic}
        reach = {net: optimizer_reach(spec.d_optimizer if net == "D" else spec.g_optimizer, n)
                 for net, n in updates.items()}
        judge("params", [t.get_weights() for t in twins], f"step {step} params", reach)
    if gauge:  # evaluation mode sees the gauge through the running mean: every twin takes torch's
        final = torch_twin.get_weights()
        for twin in twins[1:]:
            own = twin.get_weights()
            twin.set_weights({**own, **{k: final[k].astype(own[k].dtype) for k in gauge}})
    judge("outputs", [forward(t, spec, x) for t, x in zip(twins, inputs_of(p))], f"step {steps} forward")
    row = {"case": case.label, "model": case.model, "stabilizers": "+".join(case.stabilizers) or "-",
           "optimizer": "/".join(dict.fromkeys((spec.g_optimizer.kind, spec.d_optimizer.kind))),
           "dtype": spec.dtype, "steps": steps}
    for q in QUANTITIES[1:]:
        row[f"{q}_abs"], row[f"{q}_rel"] = check.worst[q]["max_abs"], check.worst[q]["max_rel"]
    row["grads_step0_rel"] = row["grads_rel"]  # the table folds both steps' gradients into one column
    for x in ("abs", "rel"):
        row[f"grads_{x}"] = max(row[f"grads_{x}"], row.pop(f"grads_later_{x}"))
    if not gauge:
        row["gauge_abs"] = row["gauge_rel"] = None
    row["own_torch"] = check.own["torch"] if float32 else None
    row["own_tf"] = check.own["tensorflow"] if float32 else None
    row["widest_rtol"] = check.widest if float32 else None
    row["float64_twins_rel"] = (max(w["max_rel"] for q, w in check64.worst.items() if q != "gauge")
                                if float32 else None)
    row["not_compared_list"] = list(check.not_compared)
    row["not_compared"] = not_compared_summary(check.not_compared)
    closest = max(QUANTITIES, key=lambda q: check.worst[q]["ratio"])
    row["worst_ratio"] = check.worst[closest]["ratio"]
    row["closest"] = (f"{closest} {check.worst[closest]['path']} "
                      f"({check.worst[closest]['ratio']:.2g} of tol)")
    row["ok"] = check.error is None
    row["error"] = str(check.error) if check.error else ""
    row["exception"], row["errors"] = check.error, list(errors)
    row["seconds"] = round(time.perf_counter() - start, 2)
    return row


# -- many cases, the table, the CLI entry ------------------------------------------------------
def run_equivalence(cases, dtypes=("float64", "float32"), steps=5, out_dir=None, tf_variant="eager",
                    progress=None) -> list[dict]:
    """One row per case x dtype (never raises for a disagreement: `ok` and `error` say it);
    with out_dir, also write the tables there."""
    rows = []
    for case in cases:
        case = parse_case(case) if isinstance(case, str) else case
        for dtype in dtypes:
            try:
                row = run_case(case, dtype, steps, tf_variant, strict=False)
            except Exception as e:  # a twin that cannot even run the case is a failed row
                row = {"case": case.label, "model": case.model, "dtype": dtype, "steps": steps,
                       "ok": False, "error": f"{type(e).__name__}: {e}"}
            rows.append(row)
            if progress:
                progress(row)
    if out_dir is not None:
        write_table(rows, out_dir)
    return rows


COLUMNS = ("case", "optimizer", "dtype", "steps", "outputs_abs", "outputs_rel", "losses_abs",
           "losses_rel", "grads_abs", "grads_rel", "params_abs", "params_rel", "gauge_abs", "own_torch", "own_tf",
           "widest_rtol", "worst_ratio", "float64_twins_rel", "not_compared", "ok", "closest", "error")


def _fmt(v):
    if isinstance(v, float) and not isinstance(v, bool):
        return f"{v:.1e}" if v else "0"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    return "" if v is None else str(v)


def tolerance_rows() -> list[dict]:
    m = FLOAT32_MODEL
    rows = [{"dtype": d, "quantity": q, "atol": f"{t['atol']:g}", "rtol": f"{t['rtol']:g}"}
            for d, per in TOLERANCES.items() for q, t in per.items()]
    rows.append({"dtype": "float32", "quantity": "all others", "atol": "0",
                 "rtol": f"{m['factor']:g} x max(e_torch, e_tf) + {m['floor_eps']:g} eps32; "
                         f"above {m['cap']:g}: not compared"})
    return rows


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_table(rows, out_dir="results/tables") -> list[Path]:
    """Write equivalence.md (tolerances + one row per case x dtype) and equivalence.csv into
    out_dir, each through a temporary file and os.replace. Returns [md path, csv path]."""
    from tabulate import tabulate

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = [[_fmt(r.get(c)) for c in COLUMNS] for r in rows]
    failed = sum(not r.get("ok") for r in rows)
    m = FLOAT32_MODEL
    md = ["# PyTorch vs TensorFlow: step-by-step equivalence", "",
          "Each row trains both twins of a case from the same canonical weights on the same harness "
          "randomness and reports the largest difference (abs, and relative to the tensor's largest "
          "magnitude) over all steps and every tensor that was compared. A float32 case also trains both "
          "twins in float64 from the same weights and inputs: `own_torch` and `own_tf` are each twin's "
          "largest float32-vs-float64 error, `float64_twins_rel` how far those two float64 runs are apart, "
          "`widest_rtol` the widest float32 bound that was used, `worst_ratio` the largest difference as "
          "a fraction of its bound, and `not_compared` the tensors whose bound would have exceeded "
          f"{m['cap']:g} (quantity, count, steps). {len(rows)} rows, {failed} outside tolerance. "
          "`closest` names the tensor nearest to its bound. Written by `genbench equivalence` "
          "(bench/equivalence.py).", "",
          "## Tolerances", "",
          "float64: a tensor passes when max abs <= atol + rtol x max |tf|; `gauge` tensors (biases that "
          "feed batch norm, and its running mean) scale with how far the optimizer can move a parameter "
          "instead. float32: a tensor passes when max abs <= rtol x max |tf| with rtol = "
          f"{m['factor']:g} x max(e_torch, e_tf) + {m['floor_eps']:g} x float32 epsilon, where e_x = "
          "max|x32 - x64| / max |tf| is twin x's own float32 error at that step; a tensor whose rtol "
          f"would exceed {m['cap']:g} is not compared at that step. bench/equivalence.py derives each "
          "number.", "",
          tabulate(tolerance_rows(), headers="keys", tablefmt="github"), "",
          "## Cases", "", tabulate(table, headers=list(COLUMNS), tablefmt="github"), ""]
    md_path, csv_path = out / "equivalence.md", out / "equivalence.csv"
    _atomic_write(md_path, "\n".join(md))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(COLUMNS), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({c: r.get(c, "") for c in COLUMNS})
    _atomic_write(csv_path, buf.getvalue())
    return [md_path, csv_path]


def main(args=None, **kwargs) -> int:
    """`genbench equivalence`: args is an argparse Namespace or None; keyword arguments win.
    Options: full, cases (tokens like 'dcgan+spectral-norm@adam'), dtypes, steps, out
    (or out_dir), variant. Prints the table; exit code 1 when any row is out of tolerance."""
    opts = {**(vars(args) if args is not None else {}), **kwargs}
    cases = opts.get("cases") or default_cases(full=bool(opts.get("full")))
    dtypes = tuple(opts.get("dtypes") or ("float64", "float32"))
    out = opts.get("out_dir") or opts.get("out") or "results/tables"
    rows = run_equivalence(cases, dtypes, int(opts.get("steps") or 5), tf_variant=opts.get("variant", "eager"),
                           progress=lambda r: print(f"{'ok ' if r['ok'] else 'FAIL'} {r['case']} [{r['dtype']}]"
                                                    + (f": {r['error']}" if r["error"] else ""), flush=True))
    md_path, _ = write_table(rows, out)
    print(md_path.read_text())
    return 0 if all(r["ok"] for r in rows) else 1
