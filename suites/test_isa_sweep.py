"""bench/checks/isa_sweep.py without running the suite: each level's environment, the skip on a CPU
that lacks a level's instructions, the junit counts and the table."""

from bench.checks import isa_sweep


def test_each_level_sets_its_variables_and_clears_the_callers():
    caller = {
        "PATH": "/bin",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
        "ATEN_CPU_CAPABILITY": "avx2",
        "TF_ENABLE_ONEDNN_OPTS": "0",
        "OMP_NUM_THREADS": "1",
    }
    default = isa_sweep.level_env("default", caller)
    assert default["PATH"] == "/bin" and default["OMP_NUM_THREADS"] == "1"
    assert not set(isa_sweep.ISA_VARIABLES) & set(default)
    sse = isa_sweep.level_env("SSE41", caller)
    assert (sse["ONEDNN_MAX_CPU_ISA"], sse["MKL_ENABLE_INSTRUCTIONS"], sse["ATEN_CPU_CAPABILITY"]) == (
        "SSE41",
        "SSE4_2",
        "default",
    )
    assert "TF_ENABLE_ONEDNN_OPTS" not in sse
    assert isa_sweep.level_env("tf-eigen", caller)["TF_ENABLE_ONEDNN_OPTS"] == "0"


def test_a_level_the_cpu_lacks_is_skipped_with_the_missing_flags():
    row = isa_sweep.run_level("AVX512_CORE", flags={"sse4_1", "sse4_2", "avx2", "fma", "avx512f"})
    assert row["status"] == "skipped: the CPU lacks avx512bw avx512vl avx512dq avx512cd"
    assert "| AVX512_CORE |" in isa_sweep.table([row]) and "skipped" in isa_sweep.table([row])


def test_cpu_flags_and_junit_counts(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse4_1 sse4_2 avx2\n")
    assert isa_sweep.cpu_flags(str(cpuinfo)) == {"fpu", "sse4_1", "sse4_2", "avx2"}
    junit = tmp_path / "junit.xml"
    junit.write_text('<testsuites><testsuite tests="5" failures="1" errors="1" skipped="1"/></testsuites>')
    assert isa_sweep._junit_counts(junit) == {"tests": 5, "failures": 1, "errors": 1, "skipped": 1}
    assert isa_sweep._worst(
        [
            {"dtype": "float32", "worst_ratio": 0.5},
            {"dtype": "float32", "worst_ratio": None},
            {"dtype": "float64", "worst_ratio": 2.0},
        ],
        "float32",
    ) == float("inf")
