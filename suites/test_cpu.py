"""bench/core/cpu.py: the CPU's ISA level, the choice of TensorFlow's oneDNN kernels (made before
TensorFlow loads, obeying TF_ENABLE_ONEDNN_OPTS when set) and what a record says about it.

References: planted /proc/cpuinfo texts and environments for the rule; for what a process
really runs on, TensorFlow's own report (IsMklEnabled) in a fresh process, which genbench's
code does not compute.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.core import cpu

ROOT = Path(__file__).resolve().parent.parent
AMD_AVX2 = (
    "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c "
    "avx2 bmi2 sha_ni\n"
)
XEON_AVX512 = "flags : sse4_1 sse4_2 avx avx2 fma avx512f avx512dq avx512cd avx512bw avx512vl amx_tile\n"
OLD_AVX = "flags : sse4_1 sse4_2 avx\n"
SSE_ONLY = "flags : sse sse2 sse4_1 sse4_2\n"


@pytest.mark.parametrize(
    "cpuinfo, level",
    [
        (AMD_AVX2, "avx2"),
        (XEON_AVX512, "avx512"),
        (OLD_AVX, "avx"),
        (SSE_ONLY, "sse4.1"),
        ("no flags line\n", "unknown"),
    ],
)
def test_isa_level_from_planted_cpuinfo(cpuinfo, level):
    assert cpu.isa_level(cpu.cpu_flags(cpuinfo)) == level


def test_avx2_needs_fma_too():
    assert cpu.isa_level(cpu.cpu_flags("flags : sse4_1 avx avx2\n")) == "avx"


@pytest.mark.parametrize(
    "environ, cpuinfo, machine, setting",
    [
        ({}, AMD_AVX2, "x86_64", "on"),
        ({}, XEON_AVX512, "x86_64", "on"),
        ({}, OLD_AVX, "x86_64", "on"),
        ({}, SSE_ONLY, "x86_64", "tensorflow default"),
        ({}, AMD_AVX2, "aarch64", "tensorflow default"),
        ({"TF_ENABLE_ONEDNN_OPTS": "0"}, AMD_AVX2, "x86_64", "off"),
        ({"TF_ENABLE_ONEDNN_OPTS": "1"}, SSE_ONLY, "x86_64", "on"),
    ],
)
def test_the_onednn_rule(environ, cpuinfo, machine, setting):
    choice = cpu.tf_onednn_choice(environ, cpu.cpu_flags(cpuinfo), machine)
    assert choice["setting"] == setting
    if environ:
        assert choice["source"].startswith("TF_ENABLE_ONEDNN_OPTS=") and "environment" in choice["source"]


PROBE = """
import json, sys
import impls  # applies the choice before TensorFlow loads, as every genbench entry point does
import tensorflow as tf
from tensorflow.python.util import _pywrap_util_port
from bench.core import cpu
print(json.dumps({"mkl": bool(_pywrap_util_port.IsMklEnabled()), "choice": cpu.tf_onednn_choice(),
                  "settings": cpu.compute_settings("tensorflow")}))
"""


@functools.cache
def _probe(onednn_env: str | None = None) -> dict:
    """TensorFlow's report in a fresh process, with TF_ENABLE_ONEDNN_OPTS unset or set to onednn_env."""
    env = {} if onednn_env is None else {"TF_ENABLE_ONEDNN_OPTS": onednn_env}
    environ = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    environ.update(env, TF_CPP_MIN_LOG_LEVEL="2")
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=environ, cwd=ROOT, timeout=300
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_tensorflow_runs_what_the_rule_chose():
    """TensorFlow's own report in a fresh process: oneDNN on where genbench's rule says on
    (here: any x86 CPU with AVX), and the record's settings say the same."""
    got = _probe()
    expected = cpu.tf_onednn_choice({}, None, None)["setting"]
    if expected == "on":
        assert got["mkl"] is True
    assert got["settings"]["onednn"] == got["mkl"]


def test_the_environment_variable_wins():
    got = _probe("0")
    assert got["mkl"] is False and got["settings"]["onednn"] is False
    assert got["settings"]["onednn_source"] == "TF_ENABLE_ONEDNN_OPTS=0 in the environment"


def test_a_record_names_its_kernels(tmp_path):
    """A two-step TensorFlow run with oneDNN forced off and the same with the default: each record
    says what TensorFlow reported in its process."""
    from bench.runs import records

    for name, env in (("off", {"TF_ENABLE_ONEDNN_OPTS": "0"}), ("default", {})):
        environ = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
        environ.update(env, TF_CPP_MIN_LOG_LEVEL="2")
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.cli",
                "run",
                "--profile",
                "smoke",
                "--dataset",
                "ring8",
                "--models",
                "gan",
                "--framework",
                "tensorflow",
                "--steps",
                "2",
                "--no-metrics",
                "--no-progress",
                "--out",
                str(tmp_path / name),
            ],
            capture_output=True,
            text=True,
            env=environ,
            cwd=ROOT,
            timeout=300,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        (rec,) = records.read_records(tmp_path / name)
        assert rec["compute"]["isa"] == cpu.isa_level()
        if name == "off":
            assert rec["compute"]["onednn"] is False
        else:
            assert rec["compute"]["onednn"] == _probe()["mkl"]


def test_a_cap_on_the_isa_is_named_where_the_environment_sets_one(monkeypatch):
    """A run that imitates an older CPU (ONEDNN_MAX_CPU_ISA and friends) says so in its record
    and its timing row's kernels line; one without a cap carries no isa_cap."""
    from bench.timing.timing_table import kernels_line

    planted = {
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "MKL_ENABLE_INSTRUCTIONS": "",
        "PATH": "/bin",
        "ATEN_CPU_CAPABILITY": "avx2",
    }
    assert cpu.isa_caps(planted) == {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
    assert cpu.isa_caps({}) == {}
    for name in cpu.CAP_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert "isa_cap" not in cpu.compute_settings("torch")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    settings = cpu.compute_settings("torch")
    assert settings["isa_cap"] == {"ONEDNN_MAX_CPU_ISA": "AVX2"} and settings["isa"] == cpu.isa_level()
    line = kernels_line({"isa": "avx512", "isa_cap": "ONEDNN_MAX_CPU_ISA=AVX2", "torch_onednn": True})
    assert line == "ISA avx512 capped by ONEDNN_MAX_CPU_ISA=AVX2, PyTorch oneDNN on"
    assert kernels_line({"isa": "avx2"}) == "ISA avx2"
