"""tools/gpu_check.py, the GPU checks in one run, exercised here as a CPU dry run: the same code
path (the CPU-vs-GPU test collected, the DCGAN timed with native randomness, the batch sweep,
the table written atomically), with two timed steps. The timings themselves are not asserted
(a shared machine's times say nothing); what is checked is that the table holds every row
asked for and that each images/s agrees with its own ms/step and batch."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tools" / "gpu_check.py"


def _run(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, cwd=ROOT, timeout=600
    )


def test_cpu_dry_run_writes_every_row(tmp_path):
    out = tmp_path / "timing-gpu.md"
    got = _run("--device", "cpu", "--dry-run", "--batches", "64,96", "--out", out)
    assert got.returncode == 0, got.stdout + got.stderr
    text = out.read_text()
    assert "CPU-vs-GPU training test" in text and "tests collected" in text
    step_rows = re.findall(r"^\| (eager|compile|cudagraphs) \| ([\d.]+) \| ([\d.]+) \| (\d+) \| <= 3.0 ms", text, re.M)
    assert [r[0] for r in step_rows] == ["eager"]
    sweep = re.findall(r"^\| (\d+) \| ([\d.]+) \| (\d+) \|$", text, re.M)
    assert [int(b) for b, _, _ in sweep] == [64, 96]
    for batch, ms, per_s in sweep:
        assert abs(int(batch) * 1e3 / float(ms) - int(per_s)) <= 1 + 1e-3 * int(per_s)
    assert not out.with_name(out.name + ".tmp").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--device", "cpu", "--variants", "graphs"], "unknown variant 'graphs'"),
        (["--device", "cpu", "--batches", "64,x"], "--batches takes integers"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(args, message, tmp_path):
    got = _run(*args, "--out", tmp_path / "t.md")
    assert got.returncode == 2 and message in got.stderr and len(got.stderr.strip().splitlines()) == 1, got.stderr


def test_cuda_without_a_gpu_says_so(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the refusal cannot be shown here")
    got = _run("--device", "cuda", "--out", tmp_path / "t.md")
    assert got.returncode == 2 and "PyTorch sees no CUDA device" in got.stderr
