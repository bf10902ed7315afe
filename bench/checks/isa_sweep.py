"""The equivalence suite once per instruction-set level: `python -m bench.checks.isa_sweep` (`tox -e isa`).

The float32 bounds must hold on any x86 CPU, not only on the one the tables were written on.
The kernels that decide float32 rounding pick their code path at run time from what the CPU
offers, and each library can be capped below that:

| level       | ONEDNN_MAX_CPU_ISA | MKL_ENABLE_INSTRUCTIONS | ATEN_CPU_CAPABILITY | TF_ENABLE_ONEDNN_OPTS | needs (/proc/cpuinfo) |
|-------------|--------------------|-------------------------|---------------------|-----------------------|-----------------------|
| SSE41       | SSE41              | SSE4_2                  | default             | (unset)               | sse4_1 sse4_2         |
| AVX2        | AVX2               | AVX2                    | avx2                | (unset)               | avx2 fma              |
| AVX512_CORE | AVX512_CORE        | AVX512                  | avx512              | (unset)               | avx512f bw vl dq cd   |
| default     | (unset)            | (unset)                 | (unset)             | (unset)               | -                     |
| tf-eigen    | (unset)            | (unset)                 | (unset)             | 0                     | -                     |

oneDNN (PyTorch's convolutions, and TensorFlow's whole graph when its oneDNN options are on),
MKL (PyTorch's matrix products) and ATen's own vectorised kernels (PyTorch's elementwise ops and
reductions) each honour their variable; the default level is what this CPU picks by itself
(AVX-512 and AMX here), and `tf-eigen` turns TensorFlow's oneDNN graph rewrites off. A level
whose instructions the CPU lacks is skipped, with the missing flags as the reason.

Each level runs `pytest suites/test_equivalence.py` (the default cases, both dtypes, and the
planted-error tests) in a subprocess with those variables, and a small probe that reports the
instruction set each library actually chose (ONEDNN_VERBOSE / MKL_VERBOSE / ATen). The cases
append their rows to GENBENCH_EQUIVALENCE_LOG, from which the table takes the worst ratio of a
difference to its bound. Prints one markdown table (and writes it with --out); exit status 1
when any level that ran has a failure.

    python -m bench.checks.isa_sweep                       # every level
    python -m bench.checks.isa_sweep --levels AVX2,default --out docs/isa.md -- -k float32
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUITE = "suites/test_equivalence.py"
ISA_VARIABLES = (
    "ONEDNN_MAX_CPU_ISA",
    "DNNL_MAX_CPU_ISA",
    "MKL_ENABLE_INSTRUCTIONS",
    "ATEN_CPU_CAPABILITY",
    "TF_ENABLE_ONEDNN_OPTS",
    "ONEDNN_DEFAULT_FPMATH_MODE",
)

# name -> (variables, /proc/cpuinfo flags it needs)
LEVELS = {
    "SSE41": (
        {"ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "ATEN_CPU_CAPABILITY": "default"},
        ("sse4_1", "sse4_2"),
    ),
    "AVX2": (
        {"ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"},
        ("avx2", "fma"),
    ),
    "AVX512_CORE": (
        {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE", "MKL_ENABLE_INSTRUCTIONS": "AVX512", "ATEN_CPU_CAPABILITY": "avx512"},
        ("avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"),
    ),
    "default": ({}, ()),
    "tf-eigen": ({"TF_ENABLE_ONEDNN_OPTS": "0"}, ()),
}

PROBE = """
import numpy as np, torch
x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
w = np.random.default_rng(1).standard_normal((4, 3, 3, 3)).astype(np.float32)
torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w))
a = torch.from_numpy(x.reshape(6, 64))
a @ a.T
print("ATEN capability:", torch.backends.cpu.get_cpu_capability(), flush=True)
print("-- tensorflow --", flush=True)
import tensorflow as tf
tf.nn.conv2d(tf.constant(x.transpose(0, 2, 3, 1)), tf.constant(w.transpose(2, 3, 1, 0)), 1, "VALID")
"""


def cpu_flags(path="/proc/cpuinfo") -> set[str]:
    try:
        text = Path(path).read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def level_env(name: str, base=None) -> dict:
    """The environment for one level: the caller's, without any ISA variable, plus the level's."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in ISA_VARIABLES}
    env.update(LEVELS[name][0])
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def _short_isa(text: str) -> str:
    t = text.lower()
    for key, short in (
        ("amx", "AMX"),
        ("avx10", "AVX10"),
        ("avx-512", "AVX512"),
        ("avx512", "AVX512"),
        ("avx2", "AVX2"),
        ("avx", "AVX"),
        ("sse4.2", "SSE4.2"),
        ("sse4.1", "SSE4.1"),
    ):
        if key in t:
            return short
    return text.strip()[:20]


def probe(env: dict) -> str:
    """'torch oneDNN AVX2, MKL AVX2, ATen AVX2; TF oneDNN AVX2': what each library chose."""
    env = {**env, "ONEDNN_VERBOSE": "1", "MKL_VERBOSE": "1", "OMP_NUM_THREADS": "1"}
    try:
        out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=300).stdout
    except subprocess.TimeoutExpired:
        return "probe timed out"
    torch_part, _, tf_part = out.partition("-- tensorflow --")
    onednn = lambda s: next((_short_isa(m) for m in re.findall(r"info,cpu,isa:(.*)", s)), "-")  # noqa: E731
    mkl = re.search(r"MKL_VERBOSE oneMKL.*? for Intel\(R\) 64 architecture (.*)", torch_part)
    aten = re.search(r"ATEN capability: (\S+)", torch_part)
    return (
        f"torch oneDNN {onednn(torch_part)}, MKL {_short_isa(mkl.group(1)) if mkl else '-'}, "
        f"ATen {aten.group(1) if aten else '-'}; TF oneDNN {onednn(tf_part)}"
    )


def _junit_counts(path: Path) -> dict:
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return counts
    for suite in [root] if root.tag == "testsuite" else root.iter("testsuite"):
        for k in counts:
            counts[k] += int(suite.get(k, 0))
    return counts


def _worst(rows, dtype) -> float:
    ratios = [r.get("worst_ratio") for r in rows if r.get("dtype") == dtype]
    ratios = [math.inf if r is None else float(r) for r in ratios]
    return max(ratios, default=math.nan)


def run_level(name: str, pytest_args=(), flags=None) -> dict:
    """Run the suite at one level; a dict with the counts, the worst ratios and the probe."""
    variables, needs = LEVELS[name]
    flags = cpu_flags() if flags is None else flags
    row = {"level": name, "settings": " ".join(f"{k}={v}" for k, v in variables.items()) or "(none)"}
    missing = [f for f in needs if f not in flags]
    if missing:
        return {**row, "status": f"skipped: the CPU lacks {' '.join(missing)}"}
    env = level_env(name)
    row["isa"] = probe(env)
    with tempfile.TemporaryDirectory() as tmp:
        log, junit = Path(tmp) / "rows.jsonl", Path(tmp) / "junit.xml"
        env["GENBENCH_EQUIVALENCE_LOG"] = str(log)
        start = time.perf_counter()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                SUITE,
                "-q",
                "-p",
                "no:cacheprovider",
                f"--junitxml={junit}",
                *pytest_args,
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        row["minutes"] = (time.perf_counter() - start) / 60
        counts = _junit_counts(junit)
        rows = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    failed = counts["failures"] + counts["errors"]
    row.update(
        passed=counts["tests"] - failed - counts["skipped"],
        failed=failed,
        skipped=counts["skipped"],
        worst_float32=_worst(rows, "float32"),
        worst_float64=_worst(rows, "float64"),
        status="ok" if proc.returncode == 0 else f"pytest exit {proc.returncode}",
        failures=[r["error"] for r in rows if not r.get("ok")],
        not_compared=sorted({f"{r['case']}: {r['not_compared']}" for r in rows if r.get("not_compared")}),
    )
    if proc.returncode != 0:
        row["tail"] = proc.stdout[-3000:]
    return row


def _fmt(v, spec=".2f"):
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def table(rows) -> str:
    lines = [
        "| level | settings | what the libraries chose | passed | failed | skipped | worst float32 ratio "
        "| worst float64 ratio | minutes | status |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['level']} | {r['settings']} | {r.get('isa', '-')} | {r.get('passed', '-')} | "
            f"{r.get('failed', '-')} | {r.get('skipped', '-')} | {_fmt(r.get('worst_float32'), '.3f')} | "
            f"{_fmt(r.get('worst_float64'), '.2g')} | {_fmt(r.get('minutes'), '.1f')} | {r['status']} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.checks.isa_sweep", description=__doc__.split("\n")[0])
    p.add_argument("--levels", default=",".join(LEVELS), help=f"comma-separated, of {', '.join(LEVELS)}")
    p.add_argument("--out", type=Path, help="also write the table (markdown) here")
    p.add_argument("pytest_args", nargs="*", help="after --: passed on to pytest")
    a = p.parse_args(argv)
    names = [n.strip() for n in a.levels.split(",") if n.strip()]
    unknown = [n for n in names if n not in LEVELS]
    if unknown:
        p.error(f"unknown level {unknown[0]!r}: choose from {', '.join(LEVELS)}")
    flags, rows = cpu_flags(), []
    for name in names:
        print(f"== {name}", flush=True)
        row = run_level(name, a.pytest_args, flags)
        rows.append(row)
        print(
            f"   {row['status']}; {row.get('isa', '')}; passed {row.get('passed', '-')}, failed "
            f"{row.get('failed', '-')}, worst float32 ratio {_fmt(row.get('worst_float32'), '.3f')}",
            flush=True,
        )
        for err in row.get("failures", []):
            print(f"   FAIL {err}", flush=True)
        if row.get("tail"):
            print(row["tail"], flush=True)
    text = table(rows)
    levels_of: dict = {}  # "case: what was not compared" -> the levels where it happened
    for r in rows:
        for n in r.get("not_compared", []):
            levels_of.setdefault(n, []).append(r["level"])
    notes = [f"- {n} ({', '.join(levels)})" for n, levels in sorted(levels_of.items())]
    print("\n" + text)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        body = [text, "", "float32 tensors not compared (bound above the cap), and at which levels:", ""]
        a.out.write_text("\n".join(body + notes + [""]))
    return 1 if any(r.get("failed") or r["status"].startswith("pytest") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
