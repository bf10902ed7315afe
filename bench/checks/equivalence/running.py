"""Running one case: both twins side by side, in float64, or in float32 with float64 references."""

from __future__ import annotations

import time

import numpy as np

from ...core import randomness
from ...core.specs import ExperimentSpec
from .bounds import QUANTITIES, _Checker, gauge_names, optimizer_reach
from .cases import NOISE_SEED, Case, batch, forward, probes


def _upcast(tree):
    """The same tree with every floating-point array as float64 (labels and other integers kept):
    the float64 twins of a float32 case consume exactly the float32 inputs."""
    if isinstance(tree, dict):
        return {k: _upcast(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [_upcast(v) for v in tree]
    a = np.asarray(tree)
    return a.astype(np.float64) if np.issubdtype(a.dtype, np.floating) else tree


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


def run_case(
    case: Case,
    dtype="float64",
    steps=5,
    tf_variant="eager",
    strict=True,
    tolerances=None,
    spec: ExperimentSpec | None = None,
    model=None,
) -> dict:
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
        check64 = _Checker(
            case.label, "float64", strict, tolerances, gauge, tag="float32 case, float64 twins", errors=errors
        )
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
        return [tree, tree, _upcast(tree), _upcast(tree)][: len(twins)]

    p = probes(spec)
    judge("outputs", [forward(t, spec, x) for t, x in zip(twins, inputs_of(p))], "step 0 forward")
    rngs = [np.random.default_rng(NOISE_SEED) for _ in range(2)]  # each twin draws its own
    for step in range(steps):
        data = batch(spec, step)
        noise = [randomness.step_noise(spec, r) for r in rngs]
        noise += [_upcast(n) for n in noise][: len(twins) - 2]
        losses = [t.train_step(d, n) for t, d, n in zip(twins, inputs_of(data), noise)]
        judge("losses", losses, f"step {step} losses")
        judge("grads" if step == 0 else "grads_later", [t.last_grads for t in twins], f"step {step} grads")
        updates = {"G": step + 1, "E": step + 1, "D": (step + 1) * spec.n_critic}
        reach = {
            net: optimizer_reach(spec.d_optimizer if net == "D" else spec.g_optimizer, n) for net, n in updates.items()
        }
        judge("params", [t.get_weights() for t in twins], f"step {step} params", reach)
    if gauge:  # evaluation mode sees the gauge through the running mean: every twin takes torch's
        final = torch_twin.get_weights()
        for twin in twins[1:]:
            own = twin.get_weights()
            twin.set_weights({**own, **{k: final[k].astype(own[k].dtype) for k in gauge}})
    judge("outputs", [forward(t, spec, x) for t, x in zip(twins, inputs_of(p))], f"step {steps} forward")
    row = {
        "case": case.label,
        "model": case.model,
        "stabilizers": "+".join(case.stabilizers) or "-",
        "optimizer": "/".join(dict.fromkeys((spec.g_optimizer.kind, spec.d_optimizer.kind))),
        "dtype": spec.dtype,
        "steps": steps,
    }
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
    row["float64_twins_rel"] = max(w["max_rel"] for q, w in check64.worst.items() if q != "gauge") if float32 else None
    row["not_compared_list"] = list(check.not_compared)
    row["not_compared"] = not_compared_summary(check.not_compared)
    closest = max(QUANTITIES, key=lambda q: check.worst[q]["ratio"])
    row["worst_ratio"] = check.worst[closest]["ratio"]
    row["closest"] = f"{closest} {check.worst[closest]['path']} ({check.worst[closest]['ratio']:.2g} of tol)"
    row["ok"] = check.error is None
    row["error"] = str(check.error) if check.error else ""
    row["exception"], row["errors"] = check.error, list(errors)
    row["seconds"] = round(time.perf_counter() - start, 2)
    return row
