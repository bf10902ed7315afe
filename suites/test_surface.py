"""The twins expose the same surface: same files, same public names in the same order, the
same signatures for the functional API, the same Trainer methods, the same loss registry, and
the same contract PARTS (what a checking tool may use beside build()), loaded lazily.

Names and signatures are read from the source with `ast` (the STYLE guide's
`diff <(grep '^def \\|^class ' ...)`), so a drifting twin is caught even where importing
it would fail; only the loss registries are imported.
"""

import ast
import importlib
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.core.specs import GAN_LOSSES
from impls import FRAMEWORKS

IMPLS = Path(__file__).resolve().parent.parent / "impls"
MODULES = ("__init__", "losses", "stabilizers", "models", "train", "weights", "noise")

# Public names that exist in one twin only, each for a reason of its framework. Anything
# else public must be in both, in the same order; a name listed here that disappears or
# appears in the other twin fails the test too, so this table stays true.
TWIN_ONLY = {
    "models": {
        # torch keeps each layer's tensors in an nn.Module under canonical names; TF Net
        # keeps a flat dict of tf.Variables
        "torch": ("LayerState",),
        # Keras kernel shapes; a leaky ReLU whose slope keeps x's dtype (tf.nn.leaky_relu's
        # alpha is a float32 attribute); NCHW <-> NHWC at the network's edges
        "tensorflow": ("tf_shape", "leaky_relu", "to_nhwc", "to_nchw"),
    },
    "train": {
        # torch.optim has no RMSprop with decoupled decay, nor the peers' epsilon placements
        "torch": ("DecoupledRMSprop", "PeerOptimizer"),
        # the torch formulas written out (both twins name their execution VARIANTS)
        "tensorflow": ("Optimizer",),
    },
    "weights": {
        "torch": (),  # the canonical layout is torch's own: no conversion
        "tensorflow": ("TO_TF", "TO_CANONICAL", "to_canonical", "to_tf"),
    },
}


def source_tree(framework, name):
    return ast.parse((IMPLS / framework / f"{name}.py").read_text())


def public_names(body):
    """Top-level public functions, classes and assigned names (constants, aliases), in order."""
    names = []
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [t.id for t in targets if isinstance(t, ast.Name)]
    return [n for n in names if not n.startswith("_")]


def test_same_files_in_each_twin():
    files = {fw: sorted(p.name for p in (IMPLS / fw).glob("*.py")) for fw in FRAMEWORKS}
    assert files["torch"] == files["tensorflow"]
    assert {f"{m}.py" for m in MODULES} <= set(files["torch"])


@pytest.mark.parametrize("name", MODULES)
def test_same_public_names_in_the_same_order(name):
    names = {fw: public_names(source_tree(fw, name).body) for fw in FRAMEWORKS}
    torch_names, tf_names = names["torch"], names["tensorflow"]
    only = TWIN_ONLY.get(name, {"torch": (), "tensorflow": ()})
    for fw, other in (("torch", "tensorflow"), ("tensorflow", "torch")):
        extra = [n for n in names[fw] if n not in names[other]]
        assert sorted(extra) == sorted(only[fw]), (
            f"{name}.py: names only in the {fw} twin {extra}, expected {list(only[fw])} "
            f"(add a name to both twins, or to TWIN_ONLY with its reason)")
    shared_torch = [n for n in torch_names if n in tf_names]
    shared_tf = [n for n in tf_names if n in torch_names]
    assert shared_torch == shared_tf, f"{name}.py: shared names in a different order"


def _function_defs(tree):
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}


def _shape(fn: ast.FunctionDef):
    """(number of positional parameters, defaults as source, keyword-only names)."""
    a = fn.args
    return (len(a.posonlyargs) + len(a.args), [ast.unparse(d) for d in a.defaults],
            [k.arg for k in a.kwonlyargs], a.vararg is not None, a.kwarg is not None)


@pytest.mark.parametrize("name", ["losses", "stabilizers"])
def test_functional_api_has_the_same_signatures(name):
    """Same arity and defaults; the first argument may be named after the layout (torch
    `weight`, TF `kernel`)."""
    defs = {fw: _function_defs(source_tree(fw, name)) for fw in FRAMEWORKS}
    for fn in public_names(source_tree("torch", name).body):
        if fn in defs["torch"]:
            assert _shape(defs["torch"][fn]) == _shape(defs["tensorflow"][fn]), f"{name}.{fn}"


def test_build_takes_the_same_arguments():
    defs = {fw: _function_defs(source_tree(fw, "__init__"))["build"] for fw in FRAMEWORKS}
    args = {fw: [a.arg for a in d.args.args] for fw, d in defs.items()}
    assert args["torch"] == args["tensorflow"] == ["spec", "device", "variant"]


def _trainer_members(framework):
    (cls,) = [n for n in source_tree(framework, "train").body if isinstance(n, ast.ClassDef) and n.name == "Trainer"]
    methods = {n.name: [a.arg for a in n.args.args] for n in cls.body if isinstance(n, ast.FunctionDef)}
    return public_names(cls.body), methods


def test_trainer_has_the_same_public_methods():
    (torch_names, torch_methods), (tf_names, tf_methods) = (_trainer_members(fw) for fw in FRAMEWORKS)
    assert torch_names == tf_names
    for method in torch_names:
        if method in torch_methods:
            assert torch_methods[method] == tf_methods[method], f"Trainer.{method}"
    contract = {"train_step", "sample", "encode", "decode", "reconstruct", "get_weights", "set_weights"}
    assert contract <= set(torch_names)  # the backend contract in impls/__init__.py
    assert torch_methods["__init__"] == tf_methods["__init__"] == ["self", "spec", "device", "variant"]


def test_loss_registries_name_the_same_losses():
    registries = {fw: importlib.import_module(f"impls.{fw}.losses").GAN_LOSSES for fw in FRAMEWORKS}
    assert list(registries["torch"]) == list(registries["tensorflow"]) == list(GAN_LOSSES)
    for key in GAN_LOSSES:
        fns = [registries[fw][key] for fw in FRAMEWORKS]
        assert fns[0].__name__ == fns[1].__name__, key  # wgan-gp is wasserstein in both
        # the compare_gan signature: (d_real, d_fake, real_target, fake_target), then the
        # keyword-only peer options, the same in both twins
        params = [inspect.signature(fn).parameters for fn in fns]
        positional = [n for n, p in params[0].items() if p.kind != p.KEYWORD_ONLY]
        assert positional == ["d_real", "d_fake", "real_target", "fake_target"]
        assert {n: p.default for n, p in params[0].items()} == {n: p.default for n, p in params[1].items()}, key


# -- the contract for checking tools: PARTS (impls/__init__.py) --------------------------------
def _declared_parts(framework):
    """PARTS as the twin's __init__ writes it (read from the source, not imported)."""
    for node in source_tree(framework, "__init__").body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["PARTS"]:
            return ast.literal_eval(node.value)
    return None


def test_both_twins_declare_the_same_parts():
    parts = {fw: _declared_parts(fw) for fw in FRAMEWORKS}
    # the list impls/__init__.py documents, one module of each twin per role
    assert parts["torch"] == parts["tensorflow"] == ("losses", "stabilizers", "models", "train", "weights", "noise")
    assert set(parts["torch"]) <= set(MODULES)


def test_importing_the_twins_loads_no_framework():
    """The parts are imported on first access: impls.load() alone costs no framework import."""
    code = ("import sys, impls\nfor fw in impls.FRAMEWORKS:\n    impls.load(fw).PARTS\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'tensorflow', 'keras')\n"
            "      or m.count('.') > 1 and m.startswith('impls.')))")
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(root)})
    assert out.stdout.strip() == "[]", out.stdout


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_each_part_is_the_twin_module_of_that_name(framework):
    import impls

    twin = impls.load(framework)
    for part in twin.PARTS:
        assert getattr(twin, part) is importlib.import_module(f"impls.{framework}.{part}")
        assert part in dir(twin)
    with pytest.raises(AttributeError, match="its parts: losses, stabilizers"):
        twin.evaluator
