"""The package layout is the architecture: these tests hold it.

bench/core is what every run needs and imports nothing else from bench; the metrics read only
core; the runs, checks and timing tools sit above them; only the CLI imports the CLI; the twins
(impls/<framework>) read bench.core and nothing else of bench; and no module grows past the
size at which it stops being read whole. bench/ reaches a twin only as impls.load(framework)
and its PARTS. The import graph is read from the source with `ast`, so the tests need neither
framework.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# in ruff-format lines (one argument a line once a call wraps): the modules that were at most 420
# lines in the denser hand wrapping came out at most 1.3 times as long
MAX_LINES = 560

# package -> the bench/impls packages it may import (besides itself)
ALLOWED = {
    "bench.core": set(),
    "bench.metrics": {"bench.core"},
    "bench.runs": {"bench.core", "bench.metrics", "impls"},
    "bench.timing": {"bench.core", "bench.runs", "impls"},
    "bench.checks": {"bench.core", "bench.metrics", "bench.runs", "impls"},
    "bench.cli": {"bench.core", "bench.metrics", "bench.runs", "bench.checks", "bench.timing"},
    "impls.torch": {"bench.core", "impls"},
    "impls.tensorflow": {"bench.core", "impls"},
}


def _modules():
    for p in sorted([*ROOT.glob("bench/**/*.py"), *ROOT.glob("impls/**/*.py")]):
        yield p, ".".join(p.relative_to(ROOT).with_suffix("").parts)


def _imports(path: Path, module: str) -> list[str]:
    """Absolute names of every bench/impls module or package that `path` imports."""
    package = module.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target in ("bench", "impls") or not node.module and node.level:
                out += [f"{target}.{a.name}" for a in node.names]  # from bench import x
            else:
                out.append(target)
        elif isinstance(node, ast.Import):
            out += [a.name for a in node.names]
    return [t for t in out if t.split(".")[0] in ("bench", "impls")]


def _group(name: str) -> str:
    parts = name.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else parts[0]


def _violations(allowed=ALLOWED) -> list[str]:
    bad = []
    for path, module in _modules():
        own = _group(module)
        if own not in allowed:
            continue
        for target in _imports(path, module):
            group = _group(target)
            if group != own and group not in allowed[own] and target != "impls":
                bad.append(f"{module} imports {target} ({own} may import {sorted(allowed[own]) or 'nothing of bench'})")
    return bad


# what bench/ may touch of the package `impls` (the contract: impls/__init__.py)
IMPLS_API = {"load", "FRAMEWORKS"}


def _twin_reaches(source: str) -> list[str]:
    """Ways around the import scan to a twin's module: an attribute of `impls` other than
    IMPLS_API (impls.tensorflow.models after a load), or a twin module named in a string
    (importlib.import_module("impls.torch.models"))."""
    bad = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "impls"
            and node.attr not in IMPLS_API
        ):
            bad.append((node.lineno, f"impls.{node.attr}"))
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and node.value.startswith(("impls.torch", "impls.tensorflow"))
        ):
            bad.append((node.lineno, repr(node.value)))
    return [f"line {line}: {what}" for line, what in sorted(bad)]


def test_bench_reaches_the_twins_only_through_impls_load():
    bad = [
        f"{path.relative_to(ROOT)} {b}"
        for path, module in _modules()
        if module.startswith("bench.")
        for b in _twin_reaches(path.read_text())
    ]
    assert bad == [], "use impls.load(framework).<part> (impls/__init__.py, PARTS): " + "; ".join(bad)


def test_the_twin_reach_check_catches_the_ways_around_imports():
    planted = (
        "import importlib\nimport impls\nimpls.load('torch')\nnet = impls.torch.models.Net\n"
        "m = importlib.import_module('impls.tensorflow.weights')\nok = impls.load('torch').models\n"
    )
    assert _twin_reaches(planted) == ["line 4: impls.torch", "line 5: 'impls.tensorflow.weights'"]
    # and the import scan catches the plain imports of a twin module from bench
    assert _group("impls.tensorflow.models") not in ALLOWED["bench.checks"]


def test_every_bench_module_lives_in_a_role_folder():
    flat = [p.name for p in (ROOT / "bench").glob("*.py") if p.name != "__init__.py"]
    assert flat == [], f"modules directly under bench/: {flat}"
    groups = {_group(m) for _, m in _modules() if m.startswith("bench.")} - {"bench.__init__", "bench.evaluators"}
    assert groups <= set(ALLOWED), groups - set(ALLOWED)


def test_imports_only_go_down_the_layers():
    assert _violations() == []


def test_the_layer_check_catches_an_upward_import():
    """A planted edge: if core were allowed nothing and metrics nothing either, metrics'
    real imports of core must show up as violations."""
    strict = dict(ALLOWED, **{"bench.metrics": set()})
    assert any(v.startswith("bench.metrics.") and "bench.core" in v for v in _violations(strict))


@pytest.mark.parametrize("path", [p for p, _ in _modules()], ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_is_longer_than_it_can_be_read(path):
    n = len(path.read_text().splitlines())
    assert n <= MAX_LINES, f"{path.relative_to(ROOT)}: {n} lines > {MAX_LINES}; split it by responsibility"


def _import_graph() -> dict[str, set[str]]:
    """module -> the bench/impls modules it imports (at module level or inside a function; a
    package stands for its __init__)."""
    modules = {m for _, m in _modules()}

    def node(target: str) -> str | None:
        for name in (target, f"{target}.__init__"):
            if name in modules:
                return name
        return None

    return {
        module: {n for t in _imports(path, module) if (n := node(t)) and n != module} for path, module in _modules()
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_in_bench_or_the_twins():
    assert _cycles(_import_graph()) == []


def test_the_cycle_check_catches_a_planted_cycle():
    """Two modules that import each other, as a CLI module and its executor helper once did,
    and a three-module ring beside a module that is only imported."""
    graph = {"a": {"b"}, "b": {"a", "c"}, "c": set(), "x": {"y"}, "y": {"z"}, "z": {"x"}}
    assert _cycles(graph) == [["a", "b"], ["x", "y", "z"]]
    real = _import_graph()
    assert "bench.runs.records" in real["bench.runs.matrix"]  # the graph sees `from . import records`
