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

A tensor passes when

    max|torch - tf| <= atol + (rtol + ref * e32) * max|tf|

- The relative part scales with the tensor's largest magnitude, not element by element:
  single elements can be pure rounding noise. Dtypes and shapes must match exactly, NaN must
  sit at the same places.
- e32 (float32 only) is the PyTorch twin's own float32 error. A float32 case also trains the
  PyTorch twin in float64 from the same weights and draws; e32 is the largest relative
  difference between PyTorch float32 and float64 in the same network and quantity, so far.
  Float32 training is chaotic in places (below), and where float32 itself has left the exact
  trajectory the twins cannot be held closer than that; elsewhere e32 is ~1e-5 and the bound
  stays tight. A float32 defect in one twin is not excused: the yardstick is PyTorch's.
- Gradients after the first step ("grads_later") get float32 rtol 2e-2. A LeakyReLU network's
  gradient jumps when a unit crosses its kink, and float32 drift of ~1e-6 moves units across
  at random: measured up to 9.5e-3 (wgan+batch-norm, step 4) where PyTorch float32 stayed
  within 6e-5 of float64. Step 0 gradients keep rtol 1e-4.
- Gauge tensors (gauge_names): a bias that feeds batch norm directly has an exactly zero
  gradient (batch norm subtracts the batch mean), so its gradient is rounding noise, different
  in each twin, which Adam and RMSprop scale up by as much as lr / eps: the bias wanders
  without changing any loss or other gradient, and the running mean follows it. It is held to
  a multiple of optimizer_reach(), how far the optimizer can move any parameter in those steps
  (float32: 2, the twins moving the whole way in opposite directions; float64: 1e-5). Its
  gradient is judged against its network's largest gradient, and before the final forward check
  the TensorFlow twin takes PyTorch's gauge tensors (evaluation mode sees them). The relativistic
  average GAN (ragan) adds one more: its losses do not change when every D score shifts by a
  constant, so the bias of D's output layer has an exactly zero gradient too.

Tolerances (TOLERANCES) and the worst measured relative error, max|torch - tf| / max|tf|, over
the default cases and over the full product, 5 steps at small widths
(results/tables/equivalence.md lists every default case):

| dtype   | quantity    | atol  | rtol  | ref | default | full    | why this size |
|---------|-------------|-------|-------|-----|---------|---------|---------------|
| float64 | weights     | 0     | 0     | -   | 0       | 0       | a layout transpose moves bits, never rounds |
| float64 | outputs     | 1e-12 | 1e-10 | 0   | 4.5e-13 | 4.5e-13 | summation order differs (oneDNN vs ATen), ~1e-16 x sqrt(fan-in) per layer; 1e-10 still catches a float32 constant (3e-9 relative, as tf.nn.leaky_relu's alpha was) |
| float64 | losses      | 1e-12 | 1e-10 | 0   | 9.5e-15 | 4.9e-14 | as outputs; ELBO terms are sums over 784 pixels |
| float64 | grads       | 1e-12 | 1e-10 | 0   | 1.5e-14 | -       | as outputs, through one backward pass |
| float64 | grads_later | 1e-12 | 1e-10 | 0   | 1.0e-12 | 1.0e-12 | float64 drift is ~1e-13, far from any kink |
| float64 | params      | 1e-11 | 1e-10 | 0   | 2.0e-12 | 1.1e-11 | RMSprop/Adam divide by sqrt(v) + eps: tiny gradients' rounding is scaled up by up to lr/eps ~ 1e5 |
| float64 | gauge       | 0     | 1e-5  | -   | 6.3e-10 | 1.3e-06 | x optimizer_reach: gradient noise ~1e-16 x gradient scale, times lr/eps |
| float32 | weights     | 0     | 0     | -   | 0       | 0       | as float64 |
| float32 | outputs     | 1e-5  | 1e-4  | 4   | 8.6e-05 | 3.6e-03 | float32 eps 1.2e-7 x fan-in up to 800 x depth, then parameter drift; full-product maximum (wgan+dropout) is inside 4 x e32 = 4 x 0.26 |
| float32 | losses      | 1e-5  | 1e-4  | 4   | 5.7e-05 | 1.0e-03 | ELBO terms are ~550 nats (float32 ulp 6e-5): 1e-4 relative is ~1000 ulps of a 784-term sum |
| float32 | grads       | 1e-6  | 1e-4  | 4   | 7.1e-06 | -       | from (nearly) identical weights: rounding only |
| float32 | grads_later | 1e-6  | 2e-2  | 4   | 5.7e-02 | 2.6e-01 | kink crossings (above); the largest values are WGAN critics where e32 itself is 0.06-0.26 |
| float32 | params      | 1e-5  | 1e-4  | 4   | 4.9e-03 | 2.8e-02 | lr-scaled drift; above 1e-4 only where e32 is at least as large |
| float32 | gauge       | 0     | 2     | -   | 2.4e-01 | 1.95    | x optimizer_reach: float32 noise gradients (~1e-9) are comparable to eps 1e-8, so each twin may take full steps either way |

"grads" is step 0 and "grads_later" the later steps; the full product (126 cases x 2 dtypes)
was measured with the table's gradient columns folded, so its grads_later value covers both.
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

# atol / rtol per dtype and quantity; the module docstring says why each is that size.
TOLERANCES = {
    "float64": {
        "weights": {"atol": 0.0, "rtol": 0.0},
        "outputs": {"atol": 1e-12, "rtol": 1e-10},
        "losses": {"atol": 1e-12, "rtol": 1e-10},
        "grads": {"atol": 1e-12, "rtol": 1e-10},
        "grads_later": {"atol": 1e-12, "rtol": 1e-10},
        "params": {"atol": 1e-11, "rtol": 1e-10},
        "gauge": {"atol": 0.0, "rtol": 1e-5},  # x the optimizer's reach (optimizer_reach)
        "ref": 0.0,
    },
    "float32": {
        "weights": {"atol": 0.0, "rtol": 0.0},
        "outputs": {"atol": 1e-5, "rtol": 1e-4},
        "losses": {"atol": 1e-5, "rtol": 1e-4},
        "grads": {"atol": 1e-6, "rtol": 1e-4},
        "grads_later": {"atol": 1e-6, "rtol": 2e-2},  # kinks: see the module docstring
        "params": {"atol": 1e-5, "rtol": 1e-4},
        "gauge": {"atol": 0.0, "rtol": 2.0},  # x the optimizer's reach: both twins, either way
        "ref": 4.0,  # rtol widens by 4 x PyTorch's own float32 error (float32 vs float64 run)
    },
}

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
        elif name.endswith(".u"):
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


def _nets_of(tree) -> dict:
    """Group a flat {name: array} tree by network prefix ("G", "D", "E"); other trees
    (losses, forward outputs) are one group."""
    if isinstance(tree, dict) and tree and all(k.split(".")[0] in ("G", "D", "E") and "." in k for k in tree):
        groups: dict = {}
        for k, v in tree.items():
            groups.setdefault(k.split(".")[0], {})[k] = v
        return groups
    return {"": tree}


def _as_float64(tree):
    if isinstance(tree, dict):
        return {k: _as_float64(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [_as_float64(v) for v in tree]
    return np.asarray(tree, dtype=np.float64)


class _Checker:
    """Compares and keeps the worst error per quantity; raises at the first violation when
    strict, otherwise remembers it. With a float64 reference run of the PyTorch twin, float32
    bounds widen by `ref` times PyTorch's own float32 error (see the module docstring)."""

    def __init__(self, label, dtype, strict, tolerances, gauge=()):
        self.label, self.dtype, self.strict = label, dtype, strict
        self.tol, self.gauge = tolerances[dtype], set(gauge)
        self.worst = {q: {"max_abs": 0.0, "max_rel": 0.0, "path": "", "ratio": 0.0} for q in QUANTITIES}
        self.own_error: dict = {}  # (quantity, net) -> PyTorch float32 vs float64, max relative so far
        self.error: EquivalenceError | None = None

    def _drop_gauge(self, tree):
        return {k: v for k, v in tree.items() if k not in self.gauge} if isinstance(tree, dict) else tree

    def __call__(self, quantity, a, b, where, reach=None, ref=None):
        use_ref = ref is not None and bool(self.tol.get("ref"))
        kind = "grads" if quantity == "grads_later" else quantity  # one yardstick for all steps
        if use_ref:  # PyTorch's own float32 error, per network, the largest so far
            groups_ref = _nets_of(_as_float64(self._drop_gauge(ref)))
            for net, tree in _nets_of(self._drop_gauge(a)).items():
                rows = compare(_as_float64(tree), groups_ref.get(net, {}))
                own = max((r["max_rel"] for r in rows if not r["problem"]), default=0.0)
                self.own_error[(kind, net)] = max(self.own_error.get((kind, net), 0.0), own)
        a_rest, b_rest = (self._drop_gauge(a), self._drop_gauge(b)) if kind in ("params", "grads") else (a, b)
        groups_a, groups_b = _nets_of(a_rest), _nets_of(b_rest)
        if not use_ref or set(groups_a) != set(groups_b):
            self._check(quantity, a_rest, b_rest, where)
        else:
            for net in groups_a:
                self._check(quantity, groups_a[net], groups_b[net], where, own_error=self.own_error[(kind, net)])
        if quantity == "params":  # the gauge tensors against what the optimizer could move them
            for net in sorted({k.split(".")[0] for k in a if k in self.gauge}):
                gauge = [k for k in a if k in self.gauge and k.startswith(net + ".")]
                self._check("gauge", {k: a[k] for k in gauge}, {k: b.get(k) for k in gauge}, where, reach[net])
        if kind == "grads" and isinstance(b, dict) and self.gauge & set(b):
            for net in sorted({k.split(".")[0] for k in b}):  # against the network's largest gradient
                gauge = [k for k in a if k in self.gauge and k.startswith(net + ".")]
                if gauge:
                    scale = max(float(np.max(np.abs(v))) for k, v in b.items() if k.startswith(net + "."))
                    self._check(quantity, {k: a[k] for k in gauge}, {k: b.get(k) for k in gauge}, where, scale,
                                self.own_error.get((kind, net), 0.0))

    def _check(self, quantity, a, b, where, scale=None, own_error=0.0):
        context = f"{self.label} [{self.dtype}] {where}"
        tol = self.tol[quantity]
        widen = self.tol.get("ref", 0.0) * own_error
        for row in compare(a, b, scale=scale):
            w = self.worst[quantity]
            bound = tol["atol"] + (tol["rtol"] + widen) * row["scale"]
            ratio = row["max_abs"] / bound if bound > 0 else (0.0 if row["max_abs"] == 0 else math.inf)
            w["max_abs"], w["max_rel"] = max(w["max_abs"], row["max_abs"]), max(w["max_rel"], row["max_rel"])
            if ratio > w["ratio"] or not w["path"]:
                w["ratio"], w["path"] = ratio, f"{where}: {row['path']}"
            err = violation(row, tol["atol"], tol["rtol"] + widen, context)
            if err is not None:
                if self.strict:
                    raise err
                self.error = self.error or err


def run_case(case: Case, dtype="float64", steps=5, tf_variant="eager", strict=True,
             tolerances=None, spec: ExperimentSpec | None = None) -> dict:
    """Train both twins of a case for `steps` steps side by side and compare everything.

    In float32 the PyTorch twin also trains in float64 alongside, from the same weights and
    draws, as the yardstick for float32's own error. strict=True raises EquivalenceError at
    the first tensor out of tolerance; otherwise the row carries `ok` and `error`. Returns one
    table row (see write_table)."""
    import impls

    tolerances = tolerances or TOLERANCES
    spec = spec or case.spec(dtype)
    gauge = gauge_names(spec)
    check = _Checker(case.label, dtype, strict, tolerances, gauge)
    start = time.perf_counter()
    torch_twin = impls.load("torch").build(spec)
    tf_twin = impls.load("tensorflow").build(spec, variant=tf_variant)
    exported = torch_twin.get_weights()
    tf_twin.set_weights(exported)
    check("weights", exported, tf_twin.get_weights(), "weights round trip")
    torch_twin.record_grads = tf_twin.record_grads = True
    ref_spec = spec.with_(dtype="float64") if tolerances[dtype].get("ref") else None
    if ref_spec is not None:
        ref_twin = impls.load("torch").build(ref_spec)
        ref_twin.set_weights({k: v.astype(np.float64) for k, v in exported.items()})
        ref_twin.record_grads = True
        rng_ref = np.random.default_rng(NOISE_SEED)
    p = probes(spec)
    ref_forward = (lambda: forward(ref_twin, ref_spec, probes(ref_spec))) if ref_spec else (lambda: None)
    check("outputs", forward(torch_twin, spec, p), forward(tf_twin, spec, p), "step 0 forward", ref=ref_forward())
    rng_torch, rng_tf = np.random.default_rng(NOISE_SEED), np.random.default_rng(NOISE_SEED)
    for step in range(steps):
        data = batch(spec, step)
        losses_torch = torch_twin.train_step(data, randomness.step_noise(spec, rng_torch))
        losses_tf = tf_twin.train_step(data, randomness.step_noise(spec, rng_tf))
        ref = {}
        if ref_spec is not None:
            ref["losses"] = ref_twin.train_step(batch(ref_spec, step), randomness.step_noise(ref_spec, rng_ref))
            ref["grads"], ref["params"] = ref_twin.last_grads, ref_twin.get_weights()
        check("losses", losses_torch, losses_tf, f"step {step} losses", ref=ref.get("losses"))
        check("grads" if step == 0 else "grads_later", torch_twin.last_grads, tf_twin.last_grads,
              f"step {step} grads", ref=ref.get("grads"))
        updates = {"G": step + 1, "E": step + 1, "D": (step + 1) * spec.n_critic}
        reach = {net: optimizer_reach(spec.d_optimizer if net == "D" else spec.g_optimizer, n)
                 for net, n in updates.items()}
        check("params", torch_twin.get_weights(), tf_twin.get_weights(), f"step {step} params", reach,
              ref=ref.get("params"))
    if gauge:  # evaluation mode sees the gauge through the running mean: compare the rest
        final = torch_twin.get_weights()
        tf_twin.set_weights({**tf_twin.get_weights(), **{k: final[k] for k in gauge}})
        if ref_spec is not None:
            ref_twin.set_weights({**ref_twin.get_weights(), **{k: final[k].astype(np.float64) for k in gauge}})
    check("outputs", forward(torch_twin, spec, p), forward(tf_twin, spec, p), f"step {steps} forward",
          ref=ref_forward())
    row = {"case": case.label, "model": case.model, "stabilizers": "+".join(case.stabilizers) or "-",
           "optimizer": "/".join(dict.fromkeys((spec.g_optimizer.kind, spec.d_optimizer.kind))),
           "dtype": dtype, "steps": steps}
    for q in QUANTITIES[1:]:
        row[f"{q}_abs"], row[f"{q}_rel"] = check.worst[q]["max_abs"], check.worst[q]["max_rel"]
    row["grads_step0_rel"] = row["grads_rel"]  # the table folds both steps' gradients into one column
    for x in ("abs", "rel"):
        row[f"grads_{x}"] = max(row[f"grads_{x}"], row.pop(f"grads_later_{x}"))
    if not gauge:
        row["gauge_abs"] = row["gauge_rel"] = None
    row["float32_own"] = max(check.own_error.values(), default=None)
    closest = max(QUANTITIES, key=lambda q: check.worst[q]["ratio"])
    row["closest"] = (f"{closest} {check.worst[closest]['path']} "
                      f"({check.worst[closest]['ratio']:.2g} of tol)")
    row["ok"] = check.error is None
    row["error"] = str(check.error) if check.error else ""
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
           "losses_rel", "grads_abs", "grads_rel", "params_abs", "params_rel", "gauge_abs", "float32_own",
           "ok", "closest", "error")


def _fmt(v):
    if isinstance(v, float) and not isinstance(v, bool):
        return f"{v:.1e}" if v else "0"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    return "" if v is None else str(v)


def tolerance_rows() -> list[dict]:
    return [{"dtype": d, "quantity": q, "atol": f"{t['atol']:g}", "rtol": f"{t['rtol']:g}",
             "ref": f"{per['ref']:g}" if q not in ("weights", "gauge") else "-"}
            for d, per in TOLERANCES.items() for q, t in per.items() if q != "ref"]


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
    md = ["# PyTorch vs TensorFlow: step-by-step equivalence", "",
          "Each row trains both twins of a case from the same canonical weights on the same harness "
          "randomness and reports the largest difference (abs, and relative to the tensor's largest "
          f"magnitude) over all steps; `float32_own` is PyTorch's float32 error against float64. "
          f"{len(rows)} rows, {failed} outside tolerance. `closest` names the tensor nearest to its "
          "tolerance. Written by `genbench equivalence` (bench/equivalence.py).", "",
          "## Tolerances", "",
          "A tensor passes when max abs <= atol + (rtol + ref x e32) x max |tf|, where e32 (float32) is "
          "PyTorch's own float32 error against a float64 run of the same case; `gauge` tensors (biases "
          "that feed batch norm, and its running mean) scale with how far the optimizer can move a "
          "parameter instead. bench/equivalence.py explains each number.", "",
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
