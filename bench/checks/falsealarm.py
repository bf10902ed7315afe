"""How often does the gate fail unchanged code? Rerun the CI profile N times and gate each rerun.

Every rerun is a fresh process with the same code, seeds and baseline; what changes is how the
process starts, cycling through settings that change float32 rounding the way another user's
machine would: the number of threads (summation order), oneDNN's instruction set
(ONEDNN_MAX_CPU_ISA, MKL_ENABLE_INSTRUCTIONS) and TensorFlow's oneDNN ops on or off. A gate
whose tolerances come from the spread over seeds should pass all of them.

    python -m bench.checks.falsealarm --runs 20 --out results/runs/false-alarm

`--jobs N` runs N reruns at once, each pinned to one core with one thread (PyTorch's OpenMP
threads slow down 10-20x when processes compete for cores; one pinned thread does not).

prints one row per rerun (settings, checks passed, failed checks) and the false-alarm count,
and writes false_alarm.md in the output folder.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tabulate import tabulate

from ..runs.records import atomic_write_text

SETTINGS = [  # (threads, oneDNN ISA cap, TF oneDNN ops)
    ("2", "", "1"),
    ("1", "", "1"),
    ("2", "AVX2", "1"),
    ("1", "AVX512_CORE", "1"),
    ("2", "", "0"),
    ("1", "SSE41", "1"),
    ("2", "AVX512_CORE", "0"),
    ("1", "AVX2", "0"),
]
MKL = {"AVX2": "AVX2", "AVX512_CORE": "AVX512", "SSE41": "SSE4_2"}


def settings_env(i: int, pinned: bool = False) -> tuple[dict, str]:
    """The environment of rerun i and its label; pinned reruns run one thread each."""
    threads, isa, tf_onednn = SETTINGS[i % len(SETTINGS)]
    if pinned:
        threads = "1"
    env = {"OMP_NUM_THREADS": threads, "TF_ENABLE_ONEDNN_OPTS": tf_onednn, "PYTHONHASHSEED": str(1000 + i)}
    if pinned:
        env.update(TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1")
    if isa:
        env.update(ONEDNN_MAX_CPU_ISA=isa, MKL_ENABLE_INSTRUCTIONS=MKL[isa])
    label = f"threads {threads}, ISA {isa or 'default'}, TF oneDNN {'on' if tf_onednn == '1' else 'off'}"
    return env, label


def rerun(i: int, a, pinned: bool) -> list:
    env, label = settings_env(i, pinned)
    run_dir = a.out / f"rerun{i:02d}"
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "bench.cli"]
    if pinned:
        cmd = ["taskset", "-c", str(i % a.jobs % (os.cpu_count() or 1))] + cmd
    full = {**os.environ, **env}
    subprocess.run(
        cmd + ["run", "--profile", "ci", "--out", str(run_dir), "--fresh", "--no-progress"],
        env=full,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    gate = subprocess.run(
        cmd + ["gate", str(run_dir), "--baseline", str(a.baseline), "--json", str(run_dir / "gate.json")],
        env=full,
        stdout=subprocess.DEVNULL,
    )
    doc = json.loads((run_dir / "gate.json").read_text()) if (run_dir / "gate.json").exists() else {}
    row = [
        i,
        label,
        gate.returncode,
        f"{doc.get('n_checks', 0) - doc.get('n_failed', 0)}/{doc.get('n_checks', '?')}",
        ", ".join(doc.get("failed", [])) or "-",
        f"{time.perf_counter() - t0:.0f}",
    ]
    print(tabulate([row], tablefmt="plain"), flush=True)
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.checks.falsealarm", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--jobs", type=int, default=1, help="reruns at once, each pinned to one core (default 1)")
    p.add_argument("--out", type=Path, default=Path("results/runs/false-alarm"))
    p.add_argument("--baseline", type=Path, default=Path("results/baselines/ci.json"))
    a = p.parse_args(argv)
    if a.runs < 1 or a.jobs < 1:
        print("python -m bench.checks.falsealarm: error: --runs and --jobs must be >= 1", file=sys.stderr)
        return 2
    with ThreadPoolExecutor(a.jobs) as pool:
        rows = list(pool.map(lambda i: rerun(i, a, a.jobs > 1), range(a.runs)))
    alarms = sum(r[2] != 0 for r in rows)
    table = tabulate(
        rows, headers=["rerun", "process settings", "exit", "checks passed", "failed", "s"], tablefmt="github"
    )
    summary = f"false alarms: {alarms}/{a.runs} (baseline {a.baseline})"
    atomic_write_text(a.out / "false_alarm.md", table + "\n\n" + summary + "\n")
    print(table + "\n\n" + summary)
    return 1 if alarms else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
