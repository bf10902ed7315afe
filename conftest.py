"""Shared pytest options and fixtures for the genbench suites.

Optional data and GPUs (bench/core/optional.py): a test that needs a dataset names it with the
``needs_data("fashion-mnist")`` marker or takes a ``dataset`` parameter; a test that needs CUDA
is marked ``gpu``; one that drives headless chromium is marked ``browser``. Where the thing is
absent the test skips with the line that says how to get it, or fails under
GENBENCH_REQUIRE_DATA=1 / GENBENCH_REQUIRE_GPU=1 / GENBENCH_REQUIRE_BROWSER=1 (CI sets the first
and the last).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of reports
# genbench run/study default to worker processes (--jobs); the suites run the matrix in-process
# (monkeypatched twins, captured output) unless a test asks for --jobs itself
os.environ.setdefault("GENBENCH_JOBS", "1")

import numpy as np
import pytest

from bench.core import optional
from impls import FRAMEWORKS


def pytest_addoption(parser):
    group = parser.getgroup("genbench")
    group.addoption(
        "--device",
        default="cpu",
        choices=("cpu", "cuda", "auto"),
        help="device for model tests and benchmarks (cuda tests skip without a GPU)",
    )
    group.addoption(
        "--threads",
        type=int,
        default=None,
        help="timing suite: run on this many cores and threads, as one `genbench run --jobs` worker "
        "does (this process pinned to the first N cores, PyTorch, TensorFlow and BLAS at N threads); "
        "the GEMM peak is measured the same way. Default: every core, each library's own threads",
    )


def pytest_configure(config):
    config.addinivalue_line("markers", "needs_data(*datasets): the test reads these image datasets")


@pytest.fixture(scope="session", autouse=True)
def decoded_data_cache(tmp_path_factory):
    """The decoded MNIST that processes share (bench/core/data/readers.py) lives in a folder of
    this session, not in the user's cache, unless GENBENCH_CACHE_DIR says otherwise; worker and
    CLI subprocesses inherit it."""
    if not os.environ.get("GENBENCH_CACHE_DIR"):
        os.environ["GENBENCH_CACHE_DIR"] = str(tmp_path_factory.mktemp("genbench-cache"))
    return os.environ["GENBENCH_CACHE_DIR"]


@pytest.fixture(scope="session")
def device(request):
    want = request.config.getoption("--device")
    if want == "auto":
        return "cpu" if optional.missing_gpu() else "cuda"
    if want == "cuda":
        optional.need_gpu()
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


def datasets_needed(item) -> list[str]:
    """Image datasets a test reads: its needs_data markers and its `dataset` parameter."""
    out = [d for m in item.iter_markers("needs_data") for d in m.args]
    param = getattr(item, "callspec", None) and item.callspec.params.get("dataset")
    if isinstance(param, str):
        out.append(param)
    return list(dict.fromkeys(out))


def pytest_runtest_setup(item):
    for dataset in datasets_needed(item):
        optional.need_dataset(dataset)
    if "gpu" in item.keywords:
        optional.need_gpu()
    if "browser" in item.keywords:
        optional.need_browser()


def pytest_terminal_summary(terminalreporter):
    """One line per kind of absence, so a green run says what it did not cover."""
    skipped = terminalreporter.stats.get("skipped", [])
    for prefix, variable in (
        (optional.SKIP_PREFIX_DATA, "GENBENCH_REQUIRE_DATA"),
        (optional.SKIP_PREFIX_GPU, "GENBENCH_REQUIRE_GPU"),
        (optional.SKIP_PREFIX_BROWSER, "GENBENCH_REQUIRE_BROWSER"),
    ):
        reasons = [
            r.longrepr[2]
            for r in skipped
            if isinstance(r.longrepr, tuple) and str(r.longrepr[2]).startswith("Skipped: " + prefix)
        ]
        if reasons:
            kinds = sorted({r.removeprefix("Skipped: ") for r in reasons})
            terminalreporter.write_line(
                f"genbench: {len(reasons)} test(s) skipped, {prefix[:-1]} ({variable}=1 makes that a "
                f"failure): " + " | ".join(kinds)
            )
