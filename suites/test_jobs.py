"""`genbench run --jobs N`: the matrix in N worker processes on this machine (bench/runs/pools.py),
collected by the same path as the serial and Ray executors (bench/runs/matrix.py).

Reference: a serial run of the same matrix with one thread, an independent execution in
another process. Each worker of `--jobs 2` on two cores is pinned to one core and runs one
thread, so training runs the same float32 arithmetic in the same order as the serial run;
runfolders._first_difference allows only what its error model allows (a logged total of k
terms associated differently: 2 (k - 1) u sum|terms| per step) and shows elsewhere
(test_ray.py) that it rejects a trajectory moved by 1e-5 at one step.

By default: the options, the core split, a lost worker's record and one small matrix against
the serial run. Behind the `jobs` marker (`tox -e executors`, which CI runs): a worker killed
with SIGKILL, and Ctrl-C followed by --resume.
"""

from __future__ import annotations

import os
import signal

import pytest
from runfolders import RING, _first_difference, _genbench, _ids, _losses, _records, _start, _wait_for, _worker

from bench import cli
from bench.core import registry
from bench.runs import matrix, pools, records
from bench.runs.executors import make_job
from bench.runs.runner import experiment_identity

TWO_CORES = len(os.sched_getaffinity(0)) >= 2


def test_core_slots_split_the_cores_by_hand():
    assert pools.core_slots(2, [0, 1]) == [[0], [1]]
    assert pools.core_slots(1, [0, 1]) == [[0, 1]]
    assert pools.core_slots(2, [0, 1, 2, 3, 4]) == [[0, 1], [2, 3]]  # C // N each; the fifth core unused
    assert pools.core_slots(3, [4, 5]) == [[4], [5], [4]]  # more jobs than cores: shared round-robin


def test_one_job_gets_every_core_and_two_share_them():
    pool = pools.ProcessPool(2, cores=[0, 1])
    pool.submit([{"id": "a"}])
    assert pool.slots == [[0, 1]]  # a single experiment is not left on half the machine
    pool = pools.ProcessPool(2, cores=[0, 1])
    pool.submit([{"id": "a"}, {"id": "b"}, {"id": "c"}])
    assert pool.slots == [[0], [1]]


class _Proc:
    """A stand-in worker process: running until the test ends it."""

    def __init__(self, argv, **_):
        self.argv, self.returncode = argv, None

    def poll(self):
        return self.returncode


def test_a_freed_core_takes_the_next_job_before_the_outcome_is_handled(tmp_path, monkeypatch):
    """The outcome of a finished job (its record read, the tables rendered by the caller) is
    handled after the next queued job has started on the freed core; once nothing is queued and
    fewer workers run than there are slots, spare_cores names the idle ones."""
    monkeypatch.setattr(pools.subprocess, "Popen", _Proc)
    pool = pools.ProcessPool(2, cores=[0, 1])
    jobs = [{"id": name, "run_dir": str(tmp_path), "spec": {"steps": 1}, "action": "train"} for name in "abc"]
    pool.submit(jobs)
    pool._launch()
    assert sorted(job["id"] for _, job in pool.procs.values()) == ["a", "b"] and pool.spare_cores() == []
    seen = []

    def outcome(job, returncode):
        seen.append((job["id"], sorted(j["id"] for _, j in pool.procs.values())))
        return job, {"status": "ok"}, None

    monkeypatch.setattr(pool, "_outcome", outcome)
    pool.procs[0][0].returncode = 0  # a ends
    assert pool.next_done(timeout=0)[0]["id"] == "a"
    assert seen == [("a", ["b", "c"])]  # c was running when a's outcome was handled
    assert pool.spare_cores() == []  # both cores busy
    pool.procs[1][0].returncode = 0  # b ends: nothing is queued, one core idles while c runs
    assert pool.next_done(timeout=0)[0]["id"] == "b" and pool.spare_cores() == [1]  # b's core
    pool.procs[0][0].returncode = 0
    assert pool.next_done(timeout=0)[0]["id"] == "c" and pool.spare_cores() == []  # nothing runs
    assert pools.SerialPool().spare_cores() == []


def test_the_default_jobs(monkeypatch):
    from bench.cli.options import UsageError
    from bench.cli.run import DEFAULT_JOBS, default_jobs

    monkeypatch.delenv("GENBENCH_JOBS", raising=False)
    assert default_jobs() == min(DEFAULT_JOBS, len(os.sched_getaffinity(0)))
    monkeypatch.setenv("GENBENCH_JOBS", "3")
    assert default_jobs() == 3
    for bad in ("0", "two"):
        monkeypatch.setenv("GENBENCH_JOBS", bad)
        with pytest.raises(UsageError, match="GENBENCH_JOBS"):
            default_jobs()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--jobs", "0"], "--jobs must be >= 1, got 0"),
        (["--jobs", "2", "--executor", "ray"], "--jobs runs worker processes on this machine"),
    ],
)
def test_bad_jobs_is_one_line_and_exit_2(argv, message, tmp_path, capsys):
    code = cli.main(["run", *RING, "--models", "gan", "--framework", "torch", "--out", str(tmp_path / "r"), *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r").exists()


def test_a_lost_worker_under_native_randomness_fails_under_its_own_id(tmp_path):
    """The failed record of a job whose worker died (Ray past its retries, or a killed process
    worker) is filed under the job's identity, native randomness included: no phantom failure
    under the reproducible-mode id."""
    spec = registry.experiment("gan", dataset="ring8", profile="smoke")
    n_eval = registry.PROFILES["smoke"]["n_eval"]
    native = experiment_identity(spec, "torch", profile="smoke", n_eval=n_eval, randomness="native")["id"]
    plain = experiment_identity(spec, "torch", profile="smoke", n_eval=n_eval)["id"]
    assert native != plain
    job = make_job(
        "train",
        spec,
        "torch",
        tmp_path,
        native,
        device="cpu",
        profile="smoke",
        n_eval=n_eval,
        data_dir=None,
        metrics=False,
        command=["genbench"],
        prev=None,
        randomness="native",
    )
    matrix.lost(job, "its worker process died", tmp_path)
    assert [p.stem for p in records.record_paths(tmp_path)] == [native]
    rec = records.read_record(tmp_path / "records" / f"{native}.json")
    assert rec["status"] == "failed" and rec["identity"]["randomness"] == "native"


@pytest.mark.skipif(not TWO_CORES, reason="needs two cores to pin two workers")
def test_jobs_2_gives_the_serial_records(tmp_path):
    common = ["run", *RING, "--models", "gan,wgan-gp", "--framework", "both"]
    serial = _genbench(*common, "--out", tmp_path / "serial", "--threads", "1")
    assert serial.returncode == 0, serial.stdout + serial.stderr
    parallel = _genbench(*common, "--out", tmp_path / "jobs", "--jobs", "2")
    assert parallel.returncode == 0, parallel.stdout + parallel.stderr
    assert "2 worker processes at once, each pinned to 1 core(s), 1 thread(s) each" in parallel.stdout
    a, b = _records(tmp_path / "serial"), _records(tmp_path / "jobs")
    assert sorted(a) == sorted(b) == sorted(_ids("gan,wgan-gp", ("torch", "tensorflow")))
    for eid in a:
        assert a[eid]["status"] == "ok"
        assert b[eid]["compute"]["threads"] == 1
        difference = _first_difference(tmp_path / "serial", tmp_path / "jobs", eid)
        assert difference is None, difference
        assert not (tmp_path / "jobs" / eid / "worker.json").exists()
        assert not (tmp_path / "jobs" / eid / "claim.json").exists()


@pytest.mark.jobs
@pytest.mark.skipif(not TWO_CORES, reason="needs two cores to pin two workers")
def test_a_killed_worker_fails_its_experiment_and_the_other_finishes(tmp_path):
    out = tmp_path / "run"
    killed, other = _ids("gan", ("torch", "tensorflow"), steps=3000)
    proc = _start(
        "run",
        *RING,
        "--models",
        "gan",
        "--framework",
        "both",
        "--steps",
        "3000",
        "--no-metrics",
        "--out",
        out,
        "--jobs",
        "2",
    )
    try:
        os.kill(_wait_for(lambda: _worker(out, killed), 120, "the torch worker's first steps")["pid"], signal.SIGKILL)
        stdout, _ = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 1, stdout
    assert f"[{killed}] failed: its worker process was killed by signal 9" in stdout
    recs = _records(out)
    assert recs[killed]["status"] == "failed" and "killed by signal 9" in recs[killed]["error"]
    assert recs[other]["status"] == "ok" and recs[other]["steps_done"] == 3000


@pytest.mark.jobs
@pytest.mark.skipif(not TWO_CORES, reason="needs two cores to pin two workers")
def test_ctrl_c_keeps_finished_records_and_resume_skips_exactly_them(tmp_path):
    """Two short GANs finish while two WGAN-GPs (about four times slower per step) still run in
    the two workers; Ctrl-C to the command only (as a terminal's would reach it: the workers run
    in their own sessions) must stop both workers with interrupted records and exit 130;
    --resume reuses exactly the finished records, untouched, and trains the rest."""
    out = tmp_path / "run"
    steps = 1500
    gans, wgans = _ids("gan", seeds=(0, 1), steps=steps), _ids("wgan-gp", seeds=(0, 1), steps=steps)
    proc = _start(
        "run",
        *RING,
        "--models",
        "gan,wgan-gp",
        "--framework",
        "torch",
        "--seeds",
        "0-1",
        "--steps",
        steps,
        "--no-metrics",
        "--out",
        out,
        "--jobs",
        "2",
    )
    try:
        _wait_for(lambda: all((out / "records" / f"{e}.json").exists() for e in gans), 180, "the GANs' records")
        _wait_for(lambda: all(_worker(out, e) for e in wgans), 120, "both WGAN-GP workers training")
        proc.send_signal(signal.SIGINT)
        stdout, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, stdout
    assert f"`genbench run --resume {out} --jobs 2` continues" in stdout
    finished = {e: (out / "records" / f"{e}.json").stat().st_mtime_ns for e in gans}
    for e in wgans:  # stopped in training: an interrupted record each, the worker gone
        rec = records.read_record(out / "records" / f"{e}.json")
        assert rec["status"] == "interrupted" and rec["phase"] == "training" and 0 < rec["steps_done"] < steps
        assert not (out / e / "worker.json").exists() and not (out / e / "claim.json").exists()

    again = _genbench("run", "--resume", out, "--jobs", "2", "--no-progress")
    assert again.returncode == 0, again.stdout + again.stderr
    reused = {line.split("]")[0].strip(" [") for line in again.stdout.splitlines() if "reused" in line}
    assert reused == set(gans)
    assert {e: (out / "records" / f"{e}.json").stat().st_mtime_ns for e in gans} == finished
    recs = _records(out)
    assert all(recs[e]["status"] == "ok" and recs[e]["steps_done"] == steps for e in wgans)
    assert all([int(r["step"]) for r in _losses(out, e)] == list(range(1, steps + 1)) for e in wgans)


def test_pin_process_puts_this_process_and_both_frameworks_on_n_cores():
    """`--threads N` of the timing suite and the timing tools: checked in a fresh process, as
    it changes the process's cores and TensorFlow's pools for good."""
    import subprocess
    import sys

    code = (
        "import os, torch, tensorflow as tf\n"
        "from bench.runs.executors import pin_process\n"
        "for bad in (0, len(os.sched_getaffinity(0)) + 1):\n"
        "    try:\n"
        "        pin_process(bad)\n"
        "    except ValueError as e:\n"
        "        assert 'threads' in str(e)\n"
        "    else:\n"
        "        raise SystemExit('accepted %d' % bad)\n"
        "cores = pin_process(1)\n"
        "assert os.sched_getaffinity(0) == set(cores) and len(cores) == 1, cores\n"
        "assert torch.get_num_threads() == 1\n"
        "assert tf.config.threading.get_intra_op_parallelism_threads() == 1\n"
        "assert tf.config.threading.get_inter_op_parallelism_threads() == 1\n"
        "print('pinned', cores)\n"
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "pinned [" in out.stdout
