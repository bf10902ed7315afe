"""The error model: float64 tolerances, the float32 bound from each twin's own error, the gauge
tensors and how far an optimizer can move them, and the checker that applies them all. The
package docstring (bench/checks/equivalence/__init__.py) derives each number."""

from __future__ import annotations

import math

import numpy as np

from ...core import arch
from ...core.specs import ExperimentSpec, OptimizerSpec
from .trees import EquivalenceError, _flatten, compare, violation

QUANTITIES = ("weights", "outputs", "losses", "grads", "grads_later", "params", "gauge")

# float64: atol / rtol per quantity; the package docstring says why each is that size. float32:
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
# is not compared at that step (the row's not_compared says which). The package docstring
# derives each number.
FLOAT32_MODEL = {"factor": 2.5, "floor_eps": 2.0, "cap": 0.10}
MAX_FLOAT32_RTOL = 0.10  # the hard limit on any float32 bound: a model's cap may not exceed it


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
            ratio = (
                (1.0 - o.beta1)
                / math.sqrt((1.0 - o.beta2) * (1.0 - o.beta1**2 / o.beta2))
                * math.sqrt(1.0 - o.beta2**t)
                / (1.0 - o.beta1**t)
            )
        total += o.lr * ratio + (o.lr * o.weight_decay if o.decoupled_weight_decay else 0.0)
    return total


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
    float32_rtol(e_torch, e_tf) (package docstring); a bound above the cap means that tensor is
    not compared at that step, recorded in `not_compared`."""

    def __init__(self, label, dtype, strict, tolerances=None, gauge=(), model=None, tag=None, errors=None):
        self.label, self.dtype, self.strict, self.tag = label, dtype, strict, tag or dtype
        self.tol = (tolerances or TOLERANCES)[dtype]
        self.model = model or FLOAT32_MODEL
        if self.model["cap"] > MAX_FLOAT32_RTOL:
            raise ValueError(
                f"a float32 bound may not exceed {MAX_FLOAT32_RTOL * 100:g} % relative; "
                f"cap {self.model['cap']:g} is above it"
            )
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
        self._check(
            quantity,
            self._pick(a, rest),
            self._pick(b, rest),
            where,
            ref=(self._pick(ref[0], rest), self._pick(ref[1], rest)) if model else None,
        )
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
                self.own["torch"], self.own["tensorflow"] = (
                    max(self.own["torch"], e_t),
                    max(self.own["tensorflow"], e_tf),
                )
            rtol = float32_rtol(e_t, e_tf, self.model)
            if rtol > cap:
                self.not_compared.append((where, quantity, path, rtol))
                continue
            self.widest = max(self.widest, rtol)
            bound = rtol * s
            self._record(quantity, row, bound, where)
            if row["max_abs"] > bound:
                self._fail(
                    EquivalenceError(
                        f"{context}: {path} differs, max abs {row['max_abs']:.2g} > {bound:.2g} "
                        f"(max rel {row['max_rel']:.2g}; rtol {rtol:.3g} = {self.model['factor']:g} x "
                        f"max(e_torch {e_t:.2g}, e_tf {e_tf:.2g}) + {self.model['floor_eps']:g} eps32)",
                        context,
                        path,
                        row["max_abs"],
                        bound,
                    )
                )


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
