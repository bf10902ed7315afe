"""Two processes on one run folder: an experiment is claimed (RUN_DIR/<id>/claim.json, created
exclusively) by the process that trains or evaluates it, a claim held by a live process makes
every other process skip that experiment, and a claim whose process is gone is taken over.
Live and dead processes here are real ones (a sleeping child, and one that has exited)."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from bench import cli
from bench.core import registry
from bench.runs import records
from bench.runs.executors import CLAIM_FILE, ExperimentBusy, claim, release
from bench.runs.runner import experiment_identity

RUN = [
    "run",
    "--dataset",
    "ring8",
    "--framework",
    "torch",
    "--profile",
    "smoke",
    "--steps",
    "4",
    "--no-progress",
    "--models",
    "gan,gan+weight-decay",
]


@pytest.fixture
def sleeper():
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield p.pid
    p.kill()
    p.wait()


@pytest.fixture
def dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def plant(folder, eid, **holder):
    path = folder / eid / CLAIM_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"host": socket.gethostname(), "claimed_at": "2026-01-01T00:00:00Z", **holder}))
    return path


def test_a_claim_is_exclusive_and_released_by_its_holder_only(tmp_path, sleeper):
    path = claim(tmp_path, "x")
    assert json.loads(path.read_text())["pid"] == os.getpid()
    with pytest.raises(ExperimentBusy, match=f"pid {os.getpid()}"):
        claim(tmp_path, "x")  # a second claim, even by the same process, is refused
    release(path)
    assert not path.exists()
    theirs = plant(tmp_path, "y", pid=sleeper)
    release(theirs)  # not ours: left alone
    assert theirs.exists()


def test_live_claims_are_respected_and_stale_ones_taken_over(tmp_path, sleeper, dead_pid):
    plant(tmp_path, "live", pid=sleeper)
    with pytest.raises(ExperimentBusy, match=f"pid {sleeper}"):
        claim(tmp_path, "live")
    plant(tmp_path, "gone", pid=dead_pid)
    assert json.loads(claim(tmp_path, "gone").read_text())["pid"] == os.getpid()
    plant(tmp_path, "elsewhere", pid=dead_pid, host="another-host")  # cannot be checked: live
    with pytest.raises(ExperimentBusy, match="another-host"):
        claim(tmp_path, "elsewhere")
    half = tmp_path / "half" / CLAIM_FILE
    half.parent.mkdir()
    half.write_text("")  # being written this instant
    with pytest.raises(ExperimentBusy):
        claim(tmp_path, "half")
    old = time.time() - 60
    os.utime(half, (old, old))  # ... or left half-written long ago by a crash
    assert claim(tmp_path, "half").exists()


def test_a_run_skips_an_experiment_another_process_holds_then_trains_it_once_free(tmp_path, capsys, sleeper):
    spec = registry.experiment("gan", dataset="ring8", profile="smoke", steps=4)
    eid = experiment_identity(spec, "torch", profile="smoke", n_eval=registry.PROFILES["smoke"]["n_eval"])["id"]
    held = plant(tmp_path, eid, pid=sleeper)
    assert cli.main([*RUN, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"[{eid}] skipped: claimed by pid {sleeper}" in out and "1 busy, 1 ok" in out
    assert {r["experiment"] for r in records.read_records(tmp_path)} == {"gan+weight-decay"}
    assert held.exists() and not (tmp_path / eid / "losses.csv").exists()  # nothing written into it
    assert not list(tmp_path.glob(f"*/{CLAIM_FILE}"))[1:]  # ours were given back: only theirs is left
    held.write_text(json.dumps({**json.loads(held.read_text()), "pid": 2**22 + 7}))  # its process is gone
    assert cli.main([*RUN, "--out", str(tmp_path)]) == 0
    assert {r["experiment"]: r["status"] for r in records.read_records(tmp_path)} == {
        "gan": "ok",
        "gan+weight-decay": "ok",
    }
    assert not list(tmp_path.glob(f"*/{CLAIM_FILE}"))
