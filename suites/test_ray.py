"""`genbench run --executor ray`: the matrix as Ray tasks (bench/runs/executors.py,
bench/runs/matrix.py, bench/runs/pools.py).

By default only the quick checks run: the command-line errors (no Ray, a bad or dead
--address, Ray options without --executor ray) and one tiny experiment as a task on a local
Ray, whose losses must equal those of the same experiment trained here, serially. The rest
is marked `ray` (`pytest -m ray`, `tox -e ray`): a matrix run serially and on Ray compared
record by record, a worker killed with SIGKILL (retried, or past its retries a failed record
while the other experiments finish), and Ctrl-C followed by --resume.

Reference: the Ray path is checked against the serial path, an independent execution of the
same experiment in another process; both pin one thread, so training runs the same float32
arithmetic in the same order. The comparison allows only what the error model below allows
(a logged total of several loss terms associated differently, seen at 1 ulp in TensorFlow's
WGAN-GP d_loss while every term was equal); everything else must be equal bit for bit.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time

import pytest
from runfolders import RING, _first_difference, _genbench, _ids, _losses, _records, _start, _wait_for, _worker

from bench import cli
from bench.core import registry
from bench.runs import records

try:
    import ray  # noqa: F401

    NO_RAY = None
except ImportError:
    NO_RAY = "ray is not installed (pip install 'genbench[ray]'; tox -e ray installs it)"

needs_ray = pytest.mark.skipif(NO_RAY is not None, reason=NO_RAY or "")


# -- default run: the command line's errors and one tiny task ---------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed on return: nothing listens there


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--address", "auto"], "--address is an option of the Ray executor: add --executor ray"),
        (["--ray-cpus-per-task", "2"], "--ray-cpus-per-task is an option of the Ray executor"),
        (["--executor", "ray", "--ray-cpus-per-task", "0"], "--ray-cpus-per-task must be >= 1, got 0"),
        (["--executor", "ray", "--address", "not an address"], "expected auto, HOST:PORT"),
        (["--executor", "ray", "--address", "ray://127.0.0.1:FREEPORT"], "nothing answers at 127.0.0.1:FREEPORT"),
        (["--executor", "ray", "--address", "127.0.0.1:FREEPORT"], "nothing answers at 127.0.0.1:FREEPORT"),
    ],
)
def test_bad_executor_options_are_one_line_and_exit_2(argv, message, tmp_path, capsys):
    port = str(_free_port())
    argv = [a.replace("FREEPORT", port) for a in argv]
    t0 = time.perf_counter()
    code = cli.main(["run", *RING, "--models", "gan", "--framework", "torch", "--out", str(tmp_path / "r"), *argv])
    err = capsys.readouterr().err
    assert code == 2 and message.replace("FREEPORT", port) in err and len(err.strip().splitlines()) == 1, err
    assert time.perf_counter() - t0 < 15  # a dead address is found by its own connect, not Ray's minutes of retries
    assert not (tmp_path / "r" / "records").exists()


def test_executor_ray_without_ray_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as where it is absent
    code = cli.main(
        [
            "study",
            "--datasets",
            "ring8",
            "--seeds",
            "0",
            "--framework",
            "torch",
            "--out",
            str(tmp_path),
            "--no-progress",
            "--executor",
            "ray",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == "genbench study: --executor ray needs Ray: pip install 'genbench[ray]'"


def test_run_help_lists_the_executor_options(capsys):
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for option in (
        "--executor {serial,ray}",
        "--address ADDR",
        "--ray-cpus-per-task N",
        "--ray-max-retries N",
        "--threads N",
    ):
        assert option in text
    assert "ray://HOST:PORT" in text and "an --address where no cluster answers" in text


@needs_ray
def test_one_task_on_local_ray_equals_the_serial_experiment(tmp_path, capsys):
    """One 20-step GAN as a Ray task (own process, one thread), and the same experiment here."""
    import torch

    from bench.runs.runner import run_experiment

    (eid,) = _ids("gan")
    code = cli.main(
        [
            "run",
            *RING,
            "--models",
            "gan",
            "--framework",
            "torch",
            "--no-metrics",
            "--out",
            str(tmp_path / "ray"),
            "--executor",
            "ray",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Ray " in out and "1 CPU and 1 thread(s) per task" in out
    rec = records.read_record(tmp_path / "ray" / "records" / f"{eid}.json")
    assert rec["status"] == "ok" and rec["steps_done"] == 20
    assert not (tmp_path / "ray" / eid / "worker.json").exists()  # removed when the task ended

    spec = registry.experiment("gan", dataset="ring8", profile="smoke")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        serial = run_experiment(
            spec,
            "torch",
            tmp_path / "serial",
            profile="smoke",
            progress=False,
            metrics=False,
            n_eval=registry.PROFILES["smoke"]["n_eval"],
        )
    finally:
        torch.set_num_threads(before)
    assert serial["id"] == eid
    difference = _first_difference(tmp_path / "ray", tmp_path / "serial", eid)
    assert difference is None, difference


def test_scale_projection_against_a_hand_schedule():
    """Six runs of 5, 4, 3, 3, 2, 1 s on 2 workers, scheduled by hand: longest first, each to
    the first free worker: {5, 3, 1} and {4, 3, 2}, 9 s each; 3 waves of 5 s; bound 18 / 2 = 9."""
    from bench.runs import scale

    (row,) = scale.projection([3, 1, 5, 2, 4, 3], workers=(2,))
    assert row == {"workers": 2, "waves_s": 15.0, "greedy_s": 9.0, "bound_s": 9.0}
    one, many = scale.projection([3, 1, 5, 2, 4, 3], workers=(1, 10), speedup=2)
    assert one["greedy_s"] == one["bound_s"] == 9.0 and many["greedy_s"] == many["waves_s"] == 2.5


# -- behind the `ray` marker ---------------------------------------------------------------------------
MATRICES = {
    "ring8": ["--dataset", "ring8", "--models", "gan,wgan-gp"],
    "mnist": pytest.param(["--dataset", "mnist", "--models", "gan,vae"], marks=pytest.mark.needs_data("mnist")),
}


@pytest.mark.ray
@needs_ray
@pytest.mark.parametrize("matrix", list(MATRICES.values()), ids=list(MATRICES))
def test_matrix_on_ray_gives_the_serial_records(matrix, tmp_path):
    common = ["run", "--profile", "smoke", "--framework", "both", "--no-progress", *matrix]
    serial = _genbench(*common, "--out", tmp_path / "serial", "--threads", "1")
    assert serial.returncode == 0, serial.stdout + serial.stderr
    on_ray = _genbench(*common, "--out", tmp_path / "ray", "--executor", "ray")  # 1 CPU, so 1 thread, per task
    assert on_ray.returncode == 0, on_ray.stdout + on_ray.stderr
    a, b = _records(tmp_path / "serial"), _records(tmp_path / "ray")
    dataset, models = matrix[1], matrix[3]
    assert sorted(a) == sorted(b) == sorted(_ids(models, ("torch", "tensorflow"), dataset=dataset))
    for eid in a:
        assert a[eid]["status"] == "ok"
        difference = _first_difference(tmp_path / "serial", tmp_path / "ray", eid)
        assert difference is None, difference


def test_the_error_model_rejects_another_trajectory(tmp_path):
    """The comparator's tolerance is not so loose that another run passes: the same GAN with
    another seed's stream would, and must, be rejected at its first step. Here: one loss of a
    written record and losses.csv moved by 1e-5 relative at step 5, as a slightly different
    trajectory would be."""
    eid = "x"
    for name, bump in (("a", 0.0), ("b", 1e-5)):
        run = tmp_path / name
        (run / eid).mkdir(parents=True)
        rows = [
            {"step": s, "wall_s": 0.1 * s, "d_loss": 1.3 - 0.01 * s + (bump * 1.3 if s == 5 else 0.0), "g_loss": 0.7}
            for s in range(1, 9)
        ]
        (run / eid / "losses.csv").write_text(
            "step,wall_s,d_loss,g_loss\n"
            + "".join(f"{r['step']},{r['wall_s']},{r['d_loss']!r},{r['g_loss']!r}\n" for r in rows)
        )
        records.write_record(
            run / "records" / f"{eid}.json",
            {
                "id": eid,
                "experiment": "gan",
                "dataset": "ring8",
                "framework": "torch",
                "seed": 0,
                "status": "ok",
                "spec_hash": "h",
                "steps_done": 8,
                "metrics_evaluated": False,
                "final_losses": {"d_loss": 1.25, "g_loss": 0.7},
                "metrics": {"d_loss_mean": 1.25},
            },
        )
    assert _first_difference(tmp_path / "a", tmp_path / "a", eid) is None
    assert _first_difference(tmp_path / "a", tmp_path / "b", eid).startswith(f"{eid}: step 5 d_loss")


@pytest.mark.ray
@needs_ray
def test_a_killed_worker_is_retried_and_the_run_finishes(tmp_path):
    out = tmp_path / "run"
    (eid,) = _ids("gan", steps=3000)
    proc = _start(
        "run",
        *RING,
        "--models",
        "gan",
        "--framework",
        "torch",
        "--steps",
        "3000",
        "--no-metrics",
        "--out",
        out,
        "--executor",
        "ray",
        "--ray-max-retries",
        "1",
    )
    try:
        first = _wait_for(lambda: _worker(out, eid), 120, "the task's worker.json and its first steps")
        os.kill(first["pid"], signal.SIGKILL)
        second = _wait_for(lambda: _worker(out, eid, not_pid=first["pid"]), 120, "the retried task")
        stdout, _ = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0, stdout
    assert second["pid"] != first["pid"]
    rec = records.read_record(out / "records" / f"{eid}.json")
    assert rec["status"] == "ok" and rec["steps_done"] == 3000
    assert [int(r["step"]) for r in _losses(out, eid)] == list(range(1, 3001))  # trained again from step 1


@pytest.mark.ray
@needs_ray
def test_a_worker_killed_past_its_retries_fails_its_experiment_and_the_others_finish(tmp_path):
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
        "--executor",
        "ray",
        "--ray-max-retries",
        "0",
    )
    try:
        os.kill(_wait_for(lambda: _worker(out, killed), 120, "the torch task's first steps")["pid"], signal.SIGKILL)
        stdout, _ = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 1, stdout
    assert f"[{killed}] failed: its worker process died" in stdout and "0 retries did not finish it" in stdout
    recs = _records(out)
    assert recs[killed]["status"] == "failed" and "worker process died" in recs[killed]["error"]
    assert recs[other]["status"] == "ok" and recs[other]["steps_done"] == 3000
    assert "1 ok, 1 failed" in stdout or "1 failed, 1 ok" in stdout


@pytest.mark.ray
@needs_ray
def test_ctrl_c_keeps_finished_records_and_resume_skips_exactly_them(tmp_path):
    """Two short GANs finish while two WGAN-GPs (about four times slower per step) still run;
    Ctrl-C then; --resume must reuse exactly the finished ones, untouched, and train the rest."""
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
        "--executor",
        "ray",
    )
    try:
        _wait_for(lambda: all((out / "records" / f"{e}.json").exists() for e in gans), 180, "the GANs' records")
        _wait_for(lambda: any(_worker(out, e) for e in wgans), 120, "a WGAN-GP task training")
        assert not any((out / "records" / f"{e}.json").exists() for e in wgans), "the WGAN-GPs ended too soon"
        proc.send_signal(signal.SIGINT)
        stdout, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, stdout
    assert f"`genbench run --resume {out} --executor ray` continues" in stdout
    finished = {e: (out / "records" / f"{e}.json").stat().st_mtime_ns for e in gans}
    for e in wgans:  # cancelled: an interrupted record (stopped in training) or none (never started)
        path = out / "records" / f"{e}.json"
        assert not path.exists() or records.read_record(path)["status"] == "interrupted"

    again = _genbench("run", "--resume", out, "--executor", "ray", "--no-progress")
    assert again.returncode == 0, again.stdout + again.stderr
    reused = {line.split("]")[0].strip(" [") for line in again.stdout.splitlines() if "reused" in line}
    assert reused == set(gans)
    assert {e: (out / "records" / f"{e}.json").stat().st_mtime_ns for e in gans} == finished
    recs = _records(out)
    assert all(recs[e]["status"] == "ok" and recs[e]["steps_done"] == steps for e in wgans)
