"""The machine's measured fp32 GEMM peak: the yardstick for "percent of peak" in timing tables.

A square float32 matrix product (default 2048 x 2048, 2 n^3 FLOPs) is timed with every
available library (PyTorch's MKL/oneDNN, NumPy's BLAS), on the threads they use by default,
best of `repeats` runs after a warm-up; the fastest library's best run is the peak. The
result is cached for the process, so one pytest session measures it once, next to the
benchmarks it is compared with, under the same load.

    python -m bench.peak          # prints the measurement as JSON
"""

from __future__ import annotations

import functools
import json
import time

import numpy as np


def _best_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: thread pools, page faults, library dispatch
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _numpy_gemm(n: int):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    out = np.empty((n, n), np.float32)
    return lambda: np.matmul(a, b, out=out)


def _torch_gemm(n: int, device: str = "cpu"):
    try:
        import torch
    except ImportError:  # the harness runs without torch installed
        return None
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device)
    b = torch.randn(n, n, generator=g).to(device)
    out = torch.empty(n, n, device=device)
    if device == "cpu":
        return lambda: torch.mm(a, b, out=out)

    def gemm():  # a GPU launch returns at once: wait for it before the clock is read
        torch.mm(a, b, out=out)
        torch.cuda.synchronize()

    return gemm


@functools.lru_cache(maxsize=None)
def gemm_peak(n: int = 2048, repeats: int = 20, device: str = "cpu") -> dict:
    """{"gflops": best GFLOP/s, "library": which one, "n": n, "by_library": {...}}.

    device "cuda" times torch on the GPU (TF32 stays as torch leaves it: off for matmul)."""
    flops = 2.0 * n**3
    by_library = {}
    makers = (("torch", _torch_gemm), ("numpy", _numpy_gemm)) if device == "cpu" else (
        (f"torch-{device}", lambda n: _torch_gemm(n, device)),)
    for name, make in makers:
        fn = make(n)
        if fn is not None:
            by_library[name] = flops / _best_seconds(fn, repeats) / 1e9
    library = max(by_library, key=by_library.get)
    return {"gflops": by_library[library], "library": library, "n": n, "repeats": repeats,
            "device": device, "by_library": by_library}


def main() -> None:  # pragma: no cover - a convenience for people
    print(json.dumps(gemm_peak(), indent=2))


if __name__ == "__main__":  # pragma: no cover
    main()
