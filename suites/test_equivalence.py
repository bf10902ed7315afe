"""PyTorch twin vs TensorFlow twin: weights, forward outputs, losses, gradients, parameters.

The reference for each twin is the other framework, never the code under test: both start from
weights exported by one and imported by the other, and consume identically seeded harness
randomness (bench/checks/equivalence/__init__.py says what is compared and why each bound is that size; float32
bounds come from each twin's own float32-vs-float64 error). By default the one-axis-at-a-time
cases run 5 steps in float64 and float32, and a 1 % error planted in either twin's optimizer
updates must fail every default float32 case within one step (131 tests, about 65 s of CPU time
for the whole file with OMP_NUM_THREADS=1). The full model x stabilizer x optimizer
x dtype product (308 runs, about 9 minutes with OMP_NUM_THREADS=1) is marked `slow` and runs under
`tox -e quality` or `pytest -m equivalence`; `tox -e isa` runs this file once per
instruction-set level (bench/checks/isa_sweep.py).
"""

import csv
import json
import math
import os

import numpy as np
import pytest

from bench.checks import equivalence as eq
from bench.core import registry
from bench.core.randomness import step_noise

pytestmark = pytest.mark.equivalence

DTYPES = ("float64", "float32")


@pytest.fixture(scope="module")
def backends():
    import impls

    return impls.load("torch"), impls.load("tensorflow")


# -- the comparator ----------------------------------------------------------------------------
def test_comparator_names_the_first_tensor_that_diverges_with_its_numbers():
    a = {"D": {"conv0.weight": np.zeros((2, 2)), "conv1.weight": np.array([1.0, 2.0])}, "loss": 0.5}
    b = {"D": {"conv0.weight": np.zeros((2, 2)), "conv1.weight": np.array([1.0, 2.0031])}, "loss": 0.5}
    with pytest.raises(eq.EquivalenceError) as e:
        eq.assert_close_tree(a, b, atol=1e-5, rtol=0.0, context="dcgan+wgan-gp step 3")
    assert e.value.path == "D.conv1.weight"
    assert str(e.value).startswith("dcgan+wgan-gp step 3: D.conv1.weight differs, max abs 0.0031 > 1e-05")
    rows = {r["path"]: r for r in eq.compare(a, b)}
    assert rows["D.conv1.weight"]["max_abs"] == pytest.approx(0.0031)
    assert rows["D.conv1.weight"]["max_rel"] == pytest.approx(0.0031 / 2.0031)
    assert rows["loss"]["max_abs"] == 0.0
    eq.assert_close_tree(a, b, atol=0.0, rtol=2e-3)  # 0.0031 <= 2e-3 * max|b| = 4.0e-3


@pytest.mark.parametrize(
    "a, b, problem",
    [
        ({"x": np.zeros(2)}, {"y": np.zeros(2)}, "keys differ"),
        ({"x": np.zeros(2)}, {"x": np.zeros(3)}, "shape"),
        ({"x": np.zeros(2)}, {"x": np.zeros(2, np.float32)}, "dtype float64 in torch, float32"),
        ({"x": np.array([np.nan, 1.0])}, {"x": np.array([0.0, 1.0])}, "NaN in one twin only"),
        ({"x": [np.zeros(2)]}, {"x": [np.zeros(2), np.zeros(2)]}, "sequence lengths differ"),
    ],
)
def test_comparator_reports_structural_differences(a, b, problem):
    with pytest.raises(eq.EquivalenceError, match=problem):
        eq.assert_close_tree(a, b, atol=1.0, rtol=1.0)


def test_comparator_accepts_nan_at_the_same_places():
    eq.assert_close_tree({"x": np.array([np.nan, 1.0])}, {"x": np.array([np.nan, 1.0])})


# -- weights round trip, one spec per layer kind ---------------------------------------------------
ROUND_TRIP = {
    "dense": eq.Case("gan"),
    "dense+batch-norm-1d": eq.Case("gan", ("batch-norm",)),
    "conv+convT+batch-norm-2d": eq.Case("dcgan", ("batch-norm",)),
    "spectral-norm-conv+dense": eq.Case("dcgan", ("spectral-norm",)),
    "encoder-conditional": eq.Case("cvae"),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", list(ROUND_TRIP))
def test_weights_round_trip_bit_for_bit_and_forward_outputs_agree(backends, kind, dtype):
    torch_b, tf_b = backends
    spec = ROUND_TRIP[kind].spec(dtype)
    weights = eq.random_weights(spec, np.random.default_rng(11))
    torch_twin, tf_twin = torch_b.build(spec), tf_b.build(spec, variant="eager")
    torch_twin.set_weights(weights)
    exported = torch_twin.get_weights()
    tf_twin.set_weights(exported)
    again = tf_twin.get_weights()
    eq.assert_close_tree(weights, exported, context=f"{kind} torch export")  # atol = rtol = 0
    eq.assert_close_tree(exported, again, context=f"{kind} torch -> tensorflow -> export")
    assert all(again[k].tobytes() == exported[k].tobytes() for k in exported)
    torch_twin.set_weights(again)
    eq.assert_close_tree(exported, torch_twin.get_weights(), context=f"{kind} back into torch")
    if kind.startswith("spectral"):
        assert {k for k in exported if k.endswith(".u")} == {"D.conv0.u", "D.conv1.u", "D.fc2.u"}
    if "batch-norm" in kind:
        assert any(k.endswith(".running_var") for k in exported)
    p = eq.probes(spec)
    outputs = [eq.forward(torch_twin, spec, p), eq.forward(tf_twin, spec, p)]
    if dtype == "float32":  # the float32 rule needs each twin's float64 run from the same weights
        spec64 = spec.with_(dtype="float64")
        for twin in (torch_b.build(spec64), tf_b.build(spec64, variant="eager")):
            twin.set_weights({k: v.astype(np.float64) for k, v in exported.items()})
            outputs.append(
                eq.forward(twin, spec64, {k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in p.items()})
            )
    eq.assert_twins_close("outputs", outputs, context=f"{kind} [{dtype}] forward")


@pytest.mark.parametrize("kind", ["dense", "conv", "convT"])
def test_spectral_norm_power_iteration_agrees_for_every_layer_kind(kind):
    """convT never carries spectral norm in the catalog; the twins' code for it is checked here."""
    import tensorflow as tf
    import torch

    from impls.tensorflow import stabilizers as tf_stab
    from impls.tensorflow.weights import to_canonical, to_tf
    from impls.torch import stabilizers as torch_stab

    rng = np.random.default_rng(3)
    shape = {"dense": (6, 10), "conv": (5, 3, 4, 4), "convT": (3, 5, 4, 4)}[kind]
    w = rng.standard_normal(shape)
    rows = 5 if kind == "convT" else shape[0]
    u0 = rng.standard_normal(rows)
    u0 /= np.linalg.norm(u0)
    u_torch, u_tf = torch.tensor(u0), tf.Variable(u0)
    w_torch = torch_stab.spectral_normalize(torch.tensor(w), u_torch, kind, 3, 1e-12, update=True)
    w_tf = tf_stab.spectral_normalize(tf.constant(to_tf(kind, "weight", w)), u_tf, kind, 3, 1e-12, update=True)
    eq.assert_close_tree(
        {"u": u_torch.numpy(), "w": w_torch.numpy()},
        {"u": u_tf.numpy(), "w": to_canonical(kind, "weight", w_tf.numpy())},
        **eq.TOLERANCES["float64"]["outputs"],
        context=f"spectral norm {kind}",
    )


def test_gauge_tensors_are_the_biases_batch_norm_cancels(backends):
    """The gauge exemption is only for biases whose gradient is zero in exact arithmetic: check
    that their recorded gradient is rounding noise next to the network's largest gradient."""
    torch_b, tf_b = backends
    spec = eq.Case("dcgan").spec("float64")
    assert eq.gauge_names(spec) == {"G.deconv1.bias", "G.bn1.running_mean"}  # fc0 -> reshape -> bn0 is not
    assert eq.gauge_names(eq.Case("gan").spec()) == set()
    for backend in (torch_b, tf_b):
        twin = backend.build(spec) if backend is torch_b else backend.build(spec, variant="eager")
        twin.record_grads = True
        twin.train_step(eq.batch(spec, 0), step_noise(spec, np.random.default_rng(0)))
        g_scale = max(np.abs(v).max() for k, v in twin.last_grads.items() if k.startswith("G."))
        assert np.abs(twin.last_grads["G.deconv1.bias"]).max() < 1e-12 * g_scale  # float64 noise, ~1e-16
        assert np.abs(twin.last_grads["G.fc0.bias"]).max() > 1e-3 * g_scale  # a real gradient


# -- trajectories ------------------------------------------------------------------------------
def _log_row(row):
    """With GENBENCH_EQUIVALENCE_LOG=FILE, append the case's row as one JSON line (bench.checks.isa_sweep
    reads the worst ratio to the bound from it)."""
    path = os.environ.get("GENBENCH_EQUIVALENCE_LOG")
    if path:
        keep = (
            "case",
            "dtype",
            "steps",
            "ok",
            "worst_ratio",
            "widest_rtol",
            "own_torch",
            "own_tf",
            "float64_twins_rel",
            "not_compared",
            "error",
        )
        with open(path, "a") as f:
            f.write(json.dumps({k: row.get(k) for k in keep}) + "\n")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", eq.default_cases(), ids=lambda c: c.label)
def test_twins_train_identically(case, dtype):
    row = eq.run_case(case, dtype, steps=5, strict=False)
    _log_row(row)
    if not row["ok"]:
        raise row["exception"]  # the first tensor out of tolerance, named with its step
    assert row["steps"] == 5
    if dtype == "float32":  # every bound that was used is inside the cap; the rest is listed
        assert 0 < row["widest_rtol"] <= eq.FLOAT32_MODEL["cap"] <= eq.MAX_FLOAT32_RTOL


@pytest.mark.slow
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", eq.default_cases(full=True), ids=lambda c: c.label)
def test_twins_train_identically_full_product(case, dtype):
    eq.run_case(case, dtype, steps=5)


@pytest.mark.parametrize("case", [eq.Case("dcgan", ("gradient-penalty",)), eq.Case("vaegan")], ids=lambda c: c.label)
def test_tf_function_variant_matches_too(case):
    """The TF twin trains in tf.function by default; the suite's cases run eagerly for speed."""
    eq.run_case(case, "float64", steps=2, tf_variant="function")


def test_default_cases_cover_every_model_stabilizer_and_optimizer():
    cases = eq.default_cases()
    assert {c.model for c in cases if not c.stabilizers and not c.optimizer} == set(registry.MODELS)
    assert {s for c in cases for s in c.stabilizers} == set(registry.STABILIZERS)
    optimizers = {c.spec().g_optimizer for c in cases}
    kinds = {(o.kind, o.weight_decay > 0, o.decoupled_weight_decay) for o in optimizers}
    # both kinds, each without weight decay, with coupled L2 and with decoupled decay
    assert kinds >= {
        (k, wd, dec) for k in ("adam", "rmsprop") for wd, dec in ((False, False), (True, False), (True, True))
    }
    full = eq.default_cases(full=True)
    assert set(cases) <= set(full) and len(full) == len(set(full))


def test_case_tokens_round_trip():
    for case in eq.default_cases(full=True):
        assert eq.parse_case(case.label) == case


# -- sensitivity: a broken convention must fail the check ---------------------------------------
def _keras_bn_momentum(monkeypatch):
    """TF batch norm reading the spec's momentum 0.1 the Keras way (weight of the old value)."""
    from impls.tensorflow import stabilizers

    original = stabilizers.batch_norm
    monkeypatch.setattr(
        stabilizers,
        "batch_norm",
        lambda x, w, b, rm, rv, training, momentum, eps: original(x, w, b, rm, rv, training, 1.0 - momentum, eps),
    )


def _rmsprop_eps_inside_sqrt(monkeypatch):
    """Keras' RMSprop: g / sqrt(v + eps) instead of torch's g / (sqrt(v) + eps)."""
    import tensorflow as tf

    from impls.tensorflow.train import Optimizer

    def apply(self, grads):
        for var, grad, (v,) in zip(self.params, grads, self.slots):
            v.assign(self.o.rho * v + (1.0 - self.o.rho) * grad * grad)
            var.assign_sub(self.o.lr * grad / tf.sqrt(v + self.o.eps))

    monkeypatch.setattr(Optimizer, "apply", apply)


def _float32_leaky_slope(monkeypatch):
    """tf.nn.leaky_relu (slope stored as a float32 attribute): invisible in float32, ~3e-9 in float64."""
    import tensorflow as tf

    from impls.tensorflow import models

    monkeypatch.setattr(models, "leaky_relu", lambda x, slope: tf.nn.leaky_relu(x, alpha=slope))


def _keras_bn_epsilon(monkeypatch):
    from impls.tensorflow import stabilizers

    original = stabilizers.batch_norm
    monkeypatch.setattr(
        stabilizers,
        "batch_norm",
        lambda x, w, b, rm, rv, training, momentum, eps: original(x, w, b, rm, rv, training, momentum, 1e-3),
    )


BROKEN = {
    "keras-bn-momentum": (_keras_bn_momentum, eq.Case("dcgan"), "step 0 params", "G.bn0.running_mean"),
    "keras-bn-epsilon": (_keras_bn_epsilon, eq.Case("dcgan"), "step 0 forward", "sample"),
    # the VAE takes one optimizer step per train_step, after its loss: the parameters show it first
    "rmsprop-eps-inside-sqrt": (
        _rmsprop_eps_inside_sqrt,
        eq.Case("vae", (), "rmsprop"),
        "step 0 params",
        "G.fc0.weight",
    ),
    "float32-leaky-slope": (_float32_leaky_slope, eq.Case("gan"), "step 0 forward", "sample"),
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_a_broken_convention_fails_the_check_and_names_the_tensor(name, monkeypatch):
    patch, case, where, path = BROKEN[name]
    patch(monkeypatch)
    with pytest.raises(eq.EquivalenceError) as e:
        eq.run_case(case, "float64", steps=2)
    print(f"{name}: {e.value}")  # shown with -rP; docs/equivalence.md quotes one
    assert e.value.path == path and where in e.value.context
    assert f"{path} differs, max abs" in str(e.value)
    assert e.value.max_abs > e.value.bound


# -- the float32 rule: sound for any rounding, and tight enough to catch 1 % ------------------------
def _rounded(x, rel, rng):
    """x with a relative error of up to `rel` of max|x| per element, as float32."""
    return (x + rel * np.abs(x).max() * rng.uniform(-1, 1, x.shape)).astype(np.float32)


def test_float32_rule_holds_whatever_each_twin_rounds():
    """|t32 - f32| <= |t32 - t64| + |t64 - f64| + |f64 - f32|: whatever the two twins' float32
    errors are (1e-8 to 3e-2 of the scale, independently), the rule never fails two twins whose
    float64 runs agree; an error that would need a bound above the cap is left out instead."""
    rng = np.random.default_rng(0)
    for _ in range(300):
        x64 = rng.standard_normal(rng.integers(1, 50)) * 10.0 ** rng.uniform(-6, 3)
        t32, f32 = (_rounded(x64, 10.0 ** rng.uniform(-8, -1.5), rng) for _ in range(2))
        eq.assert_twins_close("params", [{"w": t32}, {"w": f32}, {"w": x64}, {"w": x64 + 1e-13 * x64}])


def test_float32_rule_catches_what_neither_twin_s_rounding_explains():
    rng = np.random.default_rng(1)
    x64 = rng.standard_normal(100)
    t32, f32 = _rounded(x64, 1e-6, rng), _rounded(1.01 * x64, 1e-6, rng)  # tf is 1 % off in both dtypes
    with pytest.raises(eq.EquivalenceError) as e:
        eq.assert_twins_close("params", [{"w": t32}, {"w": f32}, {"w": x64}, {"w": 1.01 * x64}], context="planted")
    assert "[float32]" in e.value.context and e.value.path == "w" and e.value.bound < 1e-5 * 1.01 * np.abs(x64).max()


def test_a_float32_bound_above_the_cap_is_not_used():
    """e = 5 % gives rtol 2.5 x 0.05 > 0.1: that tensor is not compared at that step (and listed),
    however far apart the twins are; the bounds that are used never exceed the cap."""
    assert eq.FLOAT32_MODEL["cap"] <= eq.MAX_FLOAT32_RTOL == 0.10
    x64 = np.linspace(-1.0, 1.0, 11)
    check = eq._Checker("chaotic", "float32", strict=True)
    check(
        "grads_later",
        {"g": (x64 + 0.05).astype(np.float32)},
        {"g": (x64 - 0.3).astype(np.float32)},
        "step 4 grads",
        ref=({"g": x64}, {"g": x64}),
    )
    assert [(w, q, p) for w, q, p, _ in check.not_compared] == [("step 4 grads", "grads_later", "g")]
    assert check.widest == 0.0 and eq.not_compared_summary(check.not_compared) == "grads_later 1 (step 4)"
    check(
        "grads_later",
        {"g": (x64 + 0.03).astype(np.float32)},
        {"g": x64.astype(np.float32)},
        "step 4 grads",
        ref=({"g": x64}, {"g": x64}),
    )  # 2.5 x 0.03 = 0.075: compared, and passes
    assert 0.07 < check.widest <= 0.1
    with pytest.raises(ValueError, match="10 %"):
        eq._Checker("too wide", "float32", strict=True, model={**eq.FLOAT32_MODEL, "cap": 0.2})


def _scale_tf_updates(monkeypatch, factor):
    """Every TensorFlow optimizer update (both dtypes: the twin's code is dtype-generic) x factor."""
    import tensorflow as tf

    from impls.tensorflow.train import Optimizer

    original = Optimizer.apply

    def apply(self, grads):
        before = [tf.identity(v) for v in self.params]
        original(self, grads)
        for var, old in zip(self.params, before):
            var.assign(old + factor * (var - old))

    monkeypatch.setattr(Optimizer, "apply", apply)


def _scale_torch_updates(monkeypatch, factor):
    """Every PyTorch optimizer step (both dtypes) x factor."""
    import torch

    from impls.torch import train

    original = train.make_optimizer

    def make_optimizer(params, o):
        opt = original(params, o)
        step = opt.step

        def scaled_step(closure=None):
            params = [p for g in opt.param_groups for p in g["params"] if p.grad is not None]
            before = [p.detach().clone() for p in params]
            out = step(closure)
            with torch.no_grad():
                for p, old in zip(params, before):
                    p.copy_(old + factor * (p - old))
            return out

        opt.step = scaled_step
        return opt

    monkeypatch.setattr(train, "make_optimizer", make_optimizer)


PLANTED = {"tensorflow": _scale_tf_updates, "torch": _scale_torch_updates}


@pytest.mark.parametrize("twin", list(PLANTED))
@pytest.mark.parametrize("case", eq.default_cases(), ids=lambda c: c.label)
def test_float32_bounds_catch_a_one_percent_error_in_one_twin(case, twin, monkeypatch):
    """Every optimizer update of one twin 1 % too large: the float32 comparison itself (not only
    the float64 twins that run alongside) must fail, in every default case. One step is enough
    (step 0's losses or parameters show it), so the whole set costs about a quarter of the
    five-step run."""
    PLANTED[twin](monkeypatch, 1.01)
    row = eq.run_case(case, "float32", steps=1, strict=False)
    caught = [e for e in row["errors"] if "[float32]" in e.context]
    assert caught, f"{case.label}: a 1 % error in every {twin} update passed the float32 bounds"
    assert caught[0].max_abs > caught[0].bound
    print(f"{case.label} ({twin} x 1.01): {caught[0]}")  # shown with -rP


# -- the table ---------------------------------------------------------------------------------
def test_run_equivalence_writes_the_tables_atomically(tmp_path):
    rows = eq.run_equivalence(["gan@adam"], dtypes=("float64",), steps=1, out_dir=tmp_path)
    assert len(rows) == 1 and rows[0]["ok"] and rows[0]["case"] == "gan@adam" and rows[0]["optimizer"] == "adam"
    md, csv_path = tmp_path / "equivalence.md", tmp_path / "equivalence.csv"
    assert "| gan@adam" in md.read_text() and "| float64 | outputs" in md.read_text()
    with open(csv_path) as f:
        parsed = list(csv.DictReader(f))
    assert parsed[0]["case"] == "gan@adam" and float(parsed[0]["params_abs"]) < 1e-10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["equivalence.csv", "equivalence.md"]  # no temp files


def test_run_equivalence_reports_a_failing_case_instead_of_raising(monkeypatch):
    _float32_leaky_slope(monkeypatch)
    (row,) = eq.run_equivalence([eq.Case("gan")], dtypes=("float64",), steps=1)
    assert not row["ok"] and "step 0 forward: sample differs" in row["error"]
    assert math.isfinite(row["outputs_abs"]) and row["outputs_abs"] > 1e-10


def test_ragan_output_bias_is_a_gauge_tensor(backends):
    """The relativistic average loss is unchanged when every D score shifts by a constant: the
    output layer's bias has a zero gradient in exact arithmetic, rounding noise in each twin."""
    torch_b, tf_b = backends
    spec = eq.Case("ragan").spec("float64")
    (bias,) = eq.gauge_names(spec) - eq.gauge_names(spec.with_(loss="non-saturating"))
    assert bias.startswith("D.") and bias.endswith(".bias")
    for backend in (torch_b, tf_b):
        twin = backend.build(spec) if backend is torch_b else backend.build(spec, variant="eager")
        twin.record_grads = True
        twin.train_step(eq.batch(spec, 0), step_noise(spec, np.random.default_rng(0)))
        d_scale = max(np.abs(v).max() for k, v in twin.last_grads.items() if k.startswith("D."))
        assert np.abs(twin.last_grads[bias]).max() < 1e-12 * d_scale
