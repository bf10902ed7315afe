"""Shared pytest options and fixtures for the genbench suites."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of reports

import numpy as np
import pytest

from impls import FRAMEWORKS


def pytest_addoption(parser):
    group = parser.getgroup("genbench")
    group.addoption("--device", default="cpu", choices=("cpu", "cuda", "auto"),
                    help="device for model tests and benchmarks (cuda tests skip without a GPU)")


def _cuda_available():
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    return torch.cuda.is_available()


@pytest.fixture(scope="session")
def device(request):
    want = request.config.getoption("--device")
    if want == "auto":
        return "cuda" if _cuda_available() else "cpu"
    if want == "cuda" and not _cuda_available():
        pytest.skip("--device cuda: no CUDA device on this machine")
    return want


@pytest.fixture(params=FRAMEWORKS)
def framework(request):
    """Every test that takes `framework` runs once per twin."""
    return request.param


@pytest.fixture
def backend(framework):
    import impls

    return impls.load(framework)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def pytest_collection_modifyitems(config, items):
    if not _cuda_available():
        skip = pytest.mark.skip(reason="needs a CUDA device; none is present on this machine")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)
