"""The twins expose the same surface: same files, same public names in the same order, the
same signatures for every function and method both define, the same Trainer methods, the
same loss registry, and the same contract PARTS (what a checking tool may use beside
build()), loaded lazily.

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
            f"(add a name to both twins, or to TWIN_ONLY with its reason)"
        )
    shared_torch = [n for n in torch_names if n in tf_names]
    shared_tf = [n for n in tf_names if n in torch_names]
    assert shared_torch == shared_tf, f"{name}.py: shared names in a different order"


def _function_defs(tree):
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}


# Functions and methods whose signatures differ between the twins, each for a reason of its
# framework, written out as each twin's source has them. Every other function or method that
# both twins define (top-level or in a class of the same name, public or private) takes the
# same parameters, in the same order, with the same defaults; an entry here that stops being
# true fails the test too.
SIGNATURE_DIFFERENCES = {
    # each twin's default is its own fastest variant (bench/core/registry.py DEFAULT_VARIANT)
    "__init__.build": ("spec, device='cpu', variant='eager'", "spec, device='cpu', variant='function'"),
    "train.Trainer.__init__": (
        "self, spec, device='cpu', variant='eager'",
        "self, spec, device='cpu', variant='function'",
    ),
    # the weight is named after its layout: a torch weight, a Keras kernel
    "stabilizers.spectral_matrix": ("weight, kind", "kernel, kind"),
    "stabilizers.spectral_normalize": (
        "weight, u, kind, n_iter, eps, update, form='equality', vector='output'",
        "kernel, u, kind, n_iter, eps, update, form='equality', vector='output'",
    ),
    # the framework's dtype, and a torch memory format where TensorFlow names its variables
    "models.Net.__init__": (
        "self, layers, dtype=torch.float32, sn_iterations=1, sn_eps=1e-12, "
        "memory_format=torch.contiguous_format, sn_form='equality'",
        "self, layers, dtype=tf.float32, sn_iterations=1, sn_eps=1e-12, name=None, sn_form='equality'",
    ),
    # torch reads a layer's weight from its state module, TensorFlow from its variables by name
    "models.Net._weight": ("self, layer, s", "self, layer"),
}


def callables(tree) -> dict:
    """{name or Class.method: signature as source} of every top-level function and every
    method of a top-level class."""
    out = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            out[node.name] = ast.unparse(node.args)
        elif isinstance(node, ast.ClassDef):
            out.update(
                {f"{node.name}.{m.name}": ast.unparse(m.args) for m in node.body if isinstance(m, ast.FunctionDef)}
            )
    return out


def signature_differences(module_name, torch_tree, tf_tree) -> dict:
    """{module.name: (torch signature, TensorFlow signature)} where the twins differ."""
    torch_defs, tf_defs = callables(torch_tree), callables(tf_tree)
    return {
        f"{module_name}.{name}": (sig, tf_defs[name])
        for name, sig in torch_defs.items()
        if name in tf_defs and sig != tf_defs[name]
    }


@pytest.mark.parametrize("name", sorted(p.stem for p in (IMPLS / "torch").glob("*.py")))
def test_every_function_and_method_has_the_same_signature_in_both_twins(name):
    got = signature_differences(name, source_tree("torch", name), source_tree("tensorflow", name))
    want = {k: v for k, v in SIGNATURE_DIFFERENCES.items() if k.split(".")[0] == name}
    assert got == want, (
        f"{name}.py: signatures that differ between the twins {got}, expected {want} "
        f"(make them the same, or list the difference in SIGNATURE_DIFFERENCES with its reason)"
    )


@pytest.mark.parametrize(
    "module_name, old, new",
    [
        # a private method's arguments in another order (as the VAE step once was)
        ("train", "def _vae_step(self, x, noise, cond=None):", "def _vae_step(self, x, cond, noise):"),
        # a public function that takes one argument fewer
        ("weights", "def gradients_to_canonical(named_grads, nets):", "def gradients_to_canonical(named_grads):"),
        # another default in a functional API
        (
            "losses",
            'def reduce(per_example, weights=None, reduction="mean"):',
            'def reduce(per_example, weights=None, reduction="sum"):',
        ),
        # a public method's keyword
        ("train", "    def sample(self, z, y=None):", "    def sample(self, z, labels=None):"),
    ],
)
def test_a_planted_signature_difference_is_caught(module_name, old, new):
    source = (IMPLS / "torch" / f"{module_name}.py").read_text()
    assert source.count(old) == 1
    planted = ast.parse(source.replace(old, new))
    real = signature_differences(module_name, source_tree("torch", module_name), source_tree("tensorflow", module_name))
    assert signature_differences(module_name, planted, source_tree("tensorflow", module_name)) != real


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
    code = (
        "import sys, impls\nfor fw in impls.FRAMEWORKS:\n    impls.load(fw).PARTS\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'tensorflow', 'keras')\n"
        "      or m.count('.') > 1 and m.startswith('impls.')))"
    )
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert out.stdout.strip() == "[]", out.stdout


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_each_part_is_the_twin_module_of_that_name(framework):
    import impls

    twin = impls.load(framework)
    for part in twin.PARTS:
        assert getattr(twin, part) is importlib.import_module(f"impls.{framework}.{part}")
        assert part in dir(twin)
    with pytest.raises(AttributeError, match="its parts: losses, stabilizers"):
        twin.evaluator  # noqa: B018
