"""The machine's measured fp32 GEMM peak: the yardstick for "percent of peak" in timing tables.

Square float32 matrix products (1024 and 2048, 2 n^3 FLOPs each) are timed with every GEMM
at hand: NumPy's BLAS (OpenBLAS in the NumPy wheels), PyTorch's oneDNN matmul (the library
the convolutions of both twins run on) and PyTorch's BLAS (MKL, which takes a slower generic
path on AMD CPUs), each on the threads it uses by default, best of `repeats` runs after a
warm-up. The fastest of all is the peak. NumPy goes first and each library gets a pause
before it: an OpenMP pool that has just worked spins for a while and steals the cores from
the next library. The result is cached for the process, so one pytest session measures it
once, next to the benchmarks it is compared with, under the same load.

    python -m bench.timing.peak          # prints the measurement as JSON
"""

from __future__ import annotations

import functools
import json
import time

import numpy as np

SIZES = (1024, 2048)
PAUSE_S = 0.2  # lets the previous library's spinning threads go to sleep


def _best_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: thread pools, page faults, library dispatch
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _operands(n: int):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)


def _numpy_gemm(n: int, device: str):
    if device != "cpu":
        return None
    a, b = _operands(n)
    out = np.empty((n, n), np.float32)
    return lambda: np.matmul(a, b, out=out)


def _torch_gemm(n: int, device: str, onednn: bool = False):
    try:
        import torch
    except ImportError:  # the harness runs without torch installed
        return None
    a, b = (torch.from_numpy(m).to(device) for m in _operands(n))
    if onednn:
        if device != "cpu" or not torch.backends.mkldnn.is_available():
            return None
        a_blocked, b_t = a.to_mkldnn(), b.t().contiguous()
        return lambda: torch._C._nn.mkldnn_linear(a_blocked, b_t)  # a @ b, in oneDNN
    out = torch.empty(n, n, device=device)
    if device == "cpu":
        return lambda: torch.mm(a, b, out=out)

    def gemm():  # a GPU launch returns at once: wait for it before the clock is read
        torch.mm(a, b, out=out)
        torch.cuda.synchronize()

    return gemm


LIBRARIES = {
    "numpy": _numpy_gemm,
    "torch-onednn": lambda n, device: _torch_gemm(n, device, onednn=True),
    "torch": _torch_gemm,
}


@functools.cache
def gemm_peak(sizes: tuple = SIZES, repeats: int = 20, device: str = "cpu") -> dict:
    """{"gflops": best GFLOP/s, "library": which one at which n, "by_library": {...}}.

    device "cuda" times torch.mm on the GPU (TF32 as torch leaves it: off for matmul)."""
    by_library = {}
    for name, make in LIBRARIES.items():
        for n in sizes:
            try:
                fn = make(n, device)
            except RuntimeError:  # a library without this device or build
                fn = None
            if fn is None:
                continue
            time.sleep(PAUSE_S)
            by_library[f"{name} n={n}"] = 2.0 * n**3 / _best_seconds(fn, repeats) / 1e9
    if not by_library:
        raise RuntimeError(f"no GEMM library can run on {device}")
    library = max(by_library, key=by_library.get)
    return {
        "gflops": by_library[library],
        "library": library,
        "repeats": repeats,
        "device": device,
        "by_library": {k: round(v, 1) for k, v in by_library.items()},
    }


def main() -> None:  # pragma: no cover - a convenience for people
    print(json.dumps(gemm_peak(), indent=2))


if __name__ == "__main__":  # pragma: no cover
    main()
