"""Twin implementations: one package per framework, same module names in each.

`bench/` reaches them only through `impls.load(framework)`, so importing the harness
never imports a framework.
"""

import importlib

FRAMEWORKS = ("torch", "tensorflow")


def load(framework: str):
    """Return the backend package (`impls.torch` or `impls.tensorflow`)."""
    if framework not in FRAMEWORKS:
        raise ValueError(f"unknown framework {framework!r}; choose one of {', '.join(FRAMEWORKS)}")
    return importlib.import_module(f"impls.{framework}")
