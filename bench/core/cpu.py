"""Which CPU kernels the twins run on, chosen before a framework is imported, and recorded.

TensorFlow 2.21 turns its oneDNN graph rewrites on by default only on CPUs with AVX-512
VNNI/BF16 or AMX; everywhere else (most AMD CPUs, older Intel ones) its convolutions run on
Eigen's kernels, which the pip wheel builds for AVX without FMA. Measured on a 2-core AMD EPYC
(AVX2, no AVX-512), DCGAN step, batch 64 (docs/timing.md, "oneDNN on every x86 CPU"):

| TensorFlow kernels                   | ms/step |
|--------------------------------------|---------|
| Eigen (TF's default on this CPU)     | 178-202 |
| oneDNN capped at AVX                 | 157     |
| oneDNN at AVX2 (this CPU's best)     | 101-111 |
| oneDNN capped at SSE4.1              | 326     |

so genbench turns TensorFlow's oneDNN on whenever the CPU has AVX (which TensorFlow's wheel
needs anyway), unless TF_ENABLE_ONEDNN_OPTS is already set, which is then obeyed. PyTorch needs
no choice: its oneDNN convolutions are on by default (switching them off made the same step 3x
slower: 330 against 110 ms).

`apply_tf_onednn()` must run before TensorFlow is imported (the variable is read once, when
its library loads); genbench calls it from `impls` and the CLI, before any twin is built. It
only sets a variable of this process's environment while no framework is loaded, when no
other thread can be reading the environment. `compute_settings(framework)` says what a process
actually runs on, for records and timing rows.
"""

from __future__ import annotations

import os
import platform
import sys

ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
# the ISA levels genbench names, highest first, each with the /proc/cpuinfo flags it needs
ISA_LEVELS = (
    ("avx512", ("avx512f", "avx512bw", "avx512vl", "avx512dq")),
    ("avx2", ("avx2", "fma")),
    ("avx", ("avx",)),
    ("sse4.1", ("sse4_1",)),
)
# Variables that cap the instructions of oneDNN (PyTorch's and TensorFlow's), MKL and ATen's
# vectorized kernels below the CPU's own: how a run imitates an older CPU (bench.checks.isa_sweep,
# docs/timing.md). A record names the CPU's level (`isa`) and, where one is set, the cap.
CAP_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "ATEN_CPU_CAPABILITY")
_applied: dict | None = None


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The instruction-set flags of this CPU (Linux /proc/cpuinfo; empty elsewhere)."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as f:
                cpuinfo = f.read()
        except OSError:
            return frozenset()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def isa_level(flags: frozenset[str] | None = None) -> str:
    """The highest level of ISA_LEVELS this CPU has ("unknown" off x86 or without /proc)."""
    flags = cpu_flags() if flags is None else flags
    for name, needs in ISA_LEVELS:
        if all(f in flags for f in needs):
            return name
    return "unknown"


def isa_caps(environ=None) -> dict[str, str]:
    """The CAP_VARIABLES set (non-empty) in the environment, {name: value}; {} when none is."""
    environ = os.environ if environ is None else environ
    return {v: environ[v] for v in CAP_VARIABLES if environ.get(v)}


def tf_onednn_choice(environ=None, flags: frozenset[str] | None = None, machine: str | None = None) -> dict:
    """{"setting": "on" | "off" | "tensorflow default", "source": why}: what genbench asks of TensorFlow."""
    environ = os.environ if environ is None else environ
    given = environ.get(ONEDNN_VARIABLE)
    if given is not None:
        on = given.strip().lower() in ("1", "true", "on", "yes")
        return {"setting": "on" if on else "off", "source": f"{ONEDNN_VARIABLE}={given} in the environment"}
    machine = (machine or platform.machine()).lower()
    if machine not in ("x86_64", "amd64"):
        return {"setting": "tensorflow default", "source": f"not an x86-64 CPU ({machine})"}
    level = isa_level(flags)
    if level in ("avx512", "avx2", "avx"):
        return {"setting": "on", "source": f"genbench: faster than Eigen on {level} (docs/timing.md)"}
    return {"setting": "tensorflow default", "source": f"genbench: CPU level {level}, no measured gain"}


def apply_tf_onednn() -> dict:
    """Set TF_ENABLE_ONEDNN_OPTS=1 where tf_onednn_choice says "on" and the variable is unset,
    if TensorFlow is not loaded yet; the choice (also when it came too late to apply)."""
    global _applied
    if _applied is not None:
        return _applied
    choice = tf_onednn_choice()
    if choice["setting"] == "on" and ONEDNN_VARIABLE not in os.environ:
        if "tensorflow" in sys.modules:
            choice = {"setting": "tensorflow default", "source": "TensorFlow was imported before genbench could set it"}
        else:
            os.environ[ONEDNN_VARIABLE] = "1"
    _applied = choice
    return choice


def compute_settings(framework: str) -> dict:
    """The kernels this process runs `framework` on: the CPU's ISA level, the cap on it where
    the environment sets one (`isa_cap`, isa_caps), and whether the framework's oneDNN path is
    on (read from the loaded framework itself)."""
    out = {"isa": isa_level(), "threads": None}
    caps = isa_caps()
    if caps:
        out["isa_cap"] = caps
    if framework == "tensorflow" and "tensorflow" in sys.modules:
        from tensorflow.python.util import _pywrap_util_port

        out["onednn"] = bool(_pywrap_util_port.IsMklEnabled())
        out["onednn_source"] = (_applied or tf_onednn_choice())["source"]
        import tensorflow as tf

        out["threads"] = tf.config.threading.get_intra_op_parallelism_threads() or None
    elif framework == "torch" and "torch" in sys.modules:
        import torch

        out["onednn"] = bool(torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled)
        out["onednn_source"] = "PyTorch default" if torch.backends.mkldnn.enabled else "switched off in this process"
        out["threads"] = torch.get_num_threads()
    return out
