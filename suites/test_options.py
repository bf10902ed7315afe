"""Every string option refuses a value it does not know, where it is given: the spec
dataclasses, each twin function that takes one, and a spec's peer convention.

Each misspelt value raises one SpecError (a ValueError) whose message names the option and
every allowed value, written out here by hand; every allowed value still works. A spec that
names a peer convention holds that peer's settings or is refused, and an experiment whose
label-smoothing stabilizer a peer preset changes is named after what ran.
"""

import dataclasses
import importlib
import json
import re

import numpy as np
import pytest
from helpers import as_numpy, as_tensor

from bench.core import registry
from bench.core.specs import ExperimentSpec, NetSpec, OptimizerSpec, SpecError


def module(framework, name):
    return importlib.import_module(f"impls.{framework}.{name}")


def refused(option, value, allowed):
    """pytest.raises for SpecError whose message names option=value and every allowed value."""
    return pytest.raises(SpecError, match=re.escape(f"{option}={value!r} is not one of {allowed}"))


# -- the spec dataclasses ------------------------------------------------------------------------
# (class, field, misspelt value, the allowed values as the message lists them, name in the message)
SPEC_TYPOS = [
    (OptimizerSpec, "adam_eps", "epsilon-hat", "torch, epsilon_hat", "optimizer.adam_eps"),
    (OptimizerSpec, "rmsprop_eps_placement", "insde", "outside, inside", "optimizer.rmsprop_eps_placement"),
    (OptimizerSpec, "kind", "sgd", "adam, rmsprop", "optimizer.kind"),
    (NetSpec, "sn_form", "at-most-one", "equality, at_most_one", "NetSpec.sn_form"),
    (NetSpec, "sn_vector", "inputs", "output, input", "NetSpec.sn_vector"),
    (NetSpec, "bn_variance", "biassed", "unbiased, biased", "NetSpec.bn_variance"),
    (NetSpec, "activation", "gelu", "leaky_relu, relu", "NetSpec.activation"),
    (ExperimentSpec, "gp_form", "one-sided", "subtract, divide, one_sided", "gp_form"),
    (ExperimentSpec, "label_smoothing_sides", "both", "none, one, two, tfgan, keras", "label_smoothing_sides"),
    (ExperimentSpec, "convention", "tfgann", "torch, tfgan, keras, torchgan, mimicry", "convention"),
    (ExperimentSpec, "float32_precision", "bf16", "full, tf32", "float32_precision"),
    (ExperimentSpec, "dtype", "float16", "float32, float64", "dtype"),
    (ExperimentSpec, "likelihood", "poisson", "bernoulli, gaussian", "likelihood"),
]


def _build(cls, **kw):
    return cls("x", **kw) if cls is ExperimentSpec else cls(**kw)


@pytest.mark.parametrize(
    "cls, field, bad, allowed, shown", SPEC_TYPOS, ids=[f"{c.__name__}.{f}" for c, f, *_ in SPEC_TYPOS]
)
def test_a_spec_field_refuses_a_misspelt_value_naming_the_allowed_ones(cls, field, bad, allowed, shown):
    with refused(shown, bad, allowed):
        _build(cls, **{field: bad})
    for good in allowed.split(", "):  # the planted check: every allowed value is taken
        if (cls, field) == (ExperimentSpec, "convention") and good != "torch":
            continue  # a peer's name needs its settings (test_a_convention_is_applied_by_the_spec)
        if (cls, field) == (ExperimentSpec, "label_smoothing_sides") and good != "none":
            assert _build(cls, **{field: good, "label_smoothing": 0.1}).label_smoothing_sides == good
            continue
        assert getattr(_build(cls, **{field: good}), field) == good


def test_a_misspelt_value_gets_a_suggestion():
    with pytest.raises(SpecError, match="did you mean 'epsilon_hat'"):
        OptimizerSpec(adam_eps="epsilon-hat")


def test_json_with_a_misspelt_nested_value_names_the_part():
    d = json.loads(ExperimentSpec("x").to_json())
    d["d_optimizer"]["rmsprop_eps_placement"] = "insde"
    with pytest.raises(
        SpecError, match=re.escape("d_optimizer: optimizer.rmsprop_eps_placement='insde' is not one of outside, inside")
    ):
        ExperimentSpec.from_dict(d)
    d = json.loads(ExperimentSpec("x").to_json())
    d["generator"]["sn_from"] = "equality"
    with pytest.raises(SpecError, match="unknown generator fields: sn_from"):
        ExperimentSpec.from_dict(d)
    d = json.loads(ExperimentSpec("x").to_json())
    assert ExperimentSpec.from_dict(d) == ExperimentSpec("x")


# -- a spec's convention ----------------------------------------------------------------------------
def test_a_convention_is_applied_by_the_spec_or_refused():
    with pytest.raises(
        SpecError,
        match=r"convention='tfgan' does not match the spec's fields: "
        r"gp_form='subtract' \(the preset sets 'divide'\)",
    ):
        ExperimentSpec("x", convention="tfgan")
    with pytest.raises(SpecError, match="convention='keras' does not match"):
        ExperimentSpec("x", g_optimizer=OptimizerSpec(kind="adam"), convention="keras")
    # from JSON: a record that names a peer without its settings is refused as well
    d = json.loads(ExperimentSpec("x").to_json())
    d["convention"] = "tfgan"
    with pytest.raises(SpecError, match="convention='tfgan' does not match"):
        ExperimentSpec.from_dict(d)
    # applied by the spec: TF-GAN's divided penalty, its RMSprop, its smoothing by 0.25
    tfgan = ExperimentSpec("x", d_optimizer=OptimizerSpec(kind="rmsprop")).with_convention("tfgan")
    assert tfgan.convention == "tfgan" and tfgan.gp_form == "divide"
    assert (tfgan.d_optimizer.rmsprop_eps_placement, tfgan.d_optimizer.rmsprop_initial_ms) == ("inside", 1.0)
    assert (tfgan.label_smoothing_sides, tfgan.label_smoothing) == ("tfgan", 0.25)
    assert ExperimentSpec.from_dict(json.loads(tfgan.to_json())) == tfgan
    assert tfgan.with_convention("tfgan") == tfgan
    # a field the preset sets, changed afterwards, no longer matches the name
    with pytest.raises(SpecError, match=r"gp_form='subtract' \(the preset sets 'divide'\)"):
        tfgan.with_(gp_form="subtract")
    with pytest.raises(SpecError, match="follows convention 'tfgan' already"):
        tfgan.with_convention("keras")
    with refused("convention", "jax", "torch, tfgan, keras, torchgan, mimicry"):
        ExperimentSpec("x").with_convention("jax")
    # torchgan's and mimicry's settings are genbench's own where no smoothing is on
    for name in ("torch", "torchgan", "mimicry"):
        assert ExperimentSpec("x", convention=name).convention == name


@pytest.mark.parametrize(
    "convention, stabilizer, named",
    [
        ("tfgan", "label-smoothing-two", "label-smoothing-one"),
        ("torchgan", "label-smoothing-two", "label-smoothing-one"),
        ("mimicry", "label-smoothing-two", "label-smoothing-one"),
        ("keras", "label-smoothing-one", "label-smoothing-two"),
        ("tfgan", "label-smoothing-one", "label-smoothing-one"),
        ("keras", "label-smoothing-two", "label-smoothing-two"),
        ("torch", "label-smoothing-two", "label-smoothing-two"),
        ("torch", "label-smoothing-one", "label-smoothing-one"),
    ],
)
def test_a_stabilizer_a_preset_changes_is_named_after_what_ran(convention, stabilizer, named):
    spec = registry.experiment("gan", (stabilizer,), profile="smoke", convention=convention)
    assert spec.name == f"gan+{named}"
    real, fake = spec.targets
    assert real < 1.0 and (fake > 0.0) == (named == "label-smoothing-two")  # the sides the name says
    # the same experiment as asking for the stabilizer it is named after
    assert spec == registry.experiment("gan", (named,), profile="smoke", convention=convention)


# -- the twins' functions ---------------------------------------------------------------------------
def _sn_args(framework, kind="dense"):
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(4, 6))
    if framework == "tensorflow":
        weight = weight.T  # Keras dense kernels are (in, out)
    u = rng.normal(size=4)
    return as_tensor(framework, weight), as_tensor(framework, u / np.linalg.norm(u))


def test_spectral_normalize_refuses_a_misspelt_form_or_vector(framework):
    stab = module(framework, "stabilizers")
    w, u = _sn_args(framework)
    with refused("form", "at-most-one", "equality, at_most_one"):
        stab.spectral_normalize(w, u, "dense", 1, 1e-12, update=False, form="at-most-one")
    with refused("vector", "inputs", "output, input"):
        stab.spectral_normalize(w, u, "dense", 1, 1e-12, update=False, vector="inputs")
    with refused("kind", "linear", "dense, conv, convT"):
        stab.spectral_matrix(w, "linear")
    # every allowed pair still runs
    for form in ("equality", "at_most_one"):
        for vector in ("output", "input"):
            ws, us = _sn_args(framework)
            if vector == "input":
                us = as_tensor(framework, np.ones(6) / np.sqrt(6))
            out = stab.spectral_normalize(ws, us, "dense", 50, 1e-12, update=False, form=form, vector=vector)
            assert np.all(np.isfinite(as_numpy(out)))


def test_gradient_penalty_refuses_a_misspelt_form(framework):
    stab = module(framework, "stabilizers")
    real = as_tensor(framework, np.ones((3, 2)))
    fake = as_tensor(framework, np.zeros((3, 2)))
    alpha = as_tensor(framework, np.full((3, 1), 0.5))

    def critic(x):  # linear: the input gradient is (2, 0) everywhere, its norm 2
        return 2.0 * x[:, :1]

    with refused("form", "two_sided", "subtract, divide, one_sided"):
        stab.gradient_penalty(critic, real, fake, alpha, 1.0, form="two_sided")
    with refused("form", "Subtract", "subtract, divide, one_sided"):
        stab.penalty_of_norm(as_tensor(framework, np.array([2.0])), 1.0, "Subtract")
    # every allowed form still runs: ||g|| = sqrt(4 + GP_EPSILON) against the target 0.5
    for form, want in (("subtract", 1.5**2), ("divide", 3.0**2), ("one_sided", 1.5**2)):
        got = float(as_numpy(stab.gradient_penalty(critic, real, fake, alpha, 0.5, form=form)))
        np.testing.assert_allclose(got, want, rtol=1e-9)


def test_loss_reduction_refuses_a_misspelt_name(framework):
    losses = module(framework, "losses")
    x = as_tensor(framework, np.array([1.0, 3.0]))
    with refused("reduction", "average", "mean, sum, none, sum_by_nonzero_weights"):
        losses.reduce(x, reduction="average")
    for reduction, want in (("mean", 2.0), ("sum", 4.0), ("none", [1.0, 3.0]), ("sum_by_nonzero_weights", 2.0)):
        np.testing.assert_allclose(as_numpy(losses.reduce(x, reduction=reduction)), want)


def _unchecked(o, **changes):
    """A frozen OptimizerSpec with fields set past its own check (as a stale object could hold)."""
    o = dataclasses.replace(o)
    for k, v in changes.items():
        object.__setattr__(o, k, v)
    return o


@pytest.mark.parametrize(
    "changes, option, allowed",
    [
        ({"adam_eps": "epsilon-hat"}, "optimizer.adam_eps", "torch, epsilon_hat"),
        ({"kind": "rmsprop", "rmsprop_eps_placement": "insde"}, "optimizer.rmsprop_eps_placement", "outside, inside"),
    ],
)
def test_make_optimizer_refuses_a_misspelt_style_or_placement(framework, changes, option, allowed):
    train = module(framework, "train")
    p = module_variable(framework)
    bad = _unchecked(OptimizerSpec(), **changes)
    value = changes.get("adam_eps", changes.get("rmsprop_eps_placement"))
    with refused(option, value, allowed):
        train.make_optimizer([p], bad)
    for kind, key, values in (
        ("adam", "adam_eps", ("torch", "epsilon_hat")),
        ("rmsprop", "rmsprop_eps_placement", ("outside", "inside")),
    ):
        for good in values:
            train.make_optimizer([module_variable(framework)], OptimizerSpec(kind=kind, **{key: good}))


def module_variable(framework):
    if framework == "torch":
        import torch

        return torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    import tensorflow as tf

    return tf.Variable(np.zeros(3))


def test_precision_and_device_refuse_misspelt_names(framework):
    train = module(framework, "train")
    with refused("mode", "bf16", "full, tf32"):
        train.set_float32_precision("bf16")
    assert train.set_float32_precision("full")["mode"] == "full"
    spec = ExperimentSpec("x", dataset="ring8", steps=1)
    with refused("device", "gpu", "cpu, cuda"):
        train.Trainer(spec, device="gpu")
    allowed = {"torch": "eager, compile, channels_last", "tensorflow": "eager, function, xla"}[framework]
    with refused("variant", "graph", allowed):
        train.Trainer(spec, variant="graph")
    with refused("device", "gpu", "cpu, cuda"):
        module(framework, "noise").NativeDraws(spec, "gpu")
    assert module(framework, "noise").NativeDraws(spec, "cpu").normal((2,)).shape[0] == 2


def test_a_run_asking_for_the_same_experiment_under_two_names_trains_it_once():
    models = [("gan", ("label-smoothing-one",)), ("gan", ("label-smoothing-two",))]
    assert [s.name for s in registry.profile_experiments("smoke", models=models, convention="torchgan")] == [
        "gan+label-smoothing-one"
    ]
    assert [s.name for s in registry.profile_experiments("smoke", models=models)] == [
        "gan+label-smoothing-one",
        "gan+label-smoothing-two",
    ]
