"""Records that never lose or mix up a result: the identity hash, the record's states (trained
state saved before evaluation), failures in training and evaluation, Ctrl-C, --resume, and
every kind of bad input (corrupt records, partial folders, truncated data, NaN losses, a full
disk, unknown names, bad budgets). Tiny runs: ring8, PyTorch, a few steps."""

import errno
import hashlib
import json
import math
import re
import stat
import struct
from pathlib import Path

import numpy as np
import pytest

from bench import cli
from bench.core import registry
from bench.core.divergence import DIVERGENCE_LIMIT, FINAL_WINDOW
from bench.runs import records, runner

STEPS = 6
BASE = [
    "run",
    "--dataset",
    "ring8",
    "--framework",
    "torch",
    "--profile",
    "smoke",
    "--steps",
    str(STEPS),
    "--no-progress",
]
REUSED = "exists, reused"
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def genbench(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def run(capsys, out, *extra, models="gan,gan+weight-decay"):
    return genbench(capsys, *BASE, "--models", models, "--out", out, *extra)


def by_experiment(run_dir) -> dict:
    return {r["experiment"]: r for r in records.read_records(run_dir)}


def snapshot(folder: Path) -> dict:
    """Every file under a folder with the SHA-256 of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def one_error_line(err: str, *needles):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    """Two finished experiments: gan and gan+weight-decay."""
    out = tmp_path_factory.mktemp("base")
    assert cli.main([*BASE, "--models", "gan,gan+weight-decay", "--out", str(out)]) == 0
    return out


def poison(monkeypatch, *, experiment="gan", at_step=3, value=math.nan, exc=None):
    """Trainers of `experiment` return `value` for every loss from step index `at_step` on (or
    raise `exc` there); other experiments train normally."""
    import impls

    real_load = impls.load

    class Backend:
        def __init__(self, framework):
            self.inner = real_load(framework)

        def build(self, spec, **kw):
            trainer = self.inner.build(spec, **kw)
            if spec.name != experiment:
                return trainer
            step, count = trainer.train_step, {"n": 0}

            def train_step(batch, noise):
                i = count["n"]
                count["n"] += 1
                losses = step(batch, noise)
                if i >= at_step:
                    if exc is not None:
                        raise exc
                    return {k: value for k in losses}
                return losses

            trainer.train_step = train_step
            return trainer

    monkeypatch.setattr(impls, "load", lambda fw: Backend(fw))


# -- identity -------------------------------------------------------------------------------
def test_identity_hash_covers_spec_and_everything_that_changes_the_result():
    spec = registry.experiment("gan", (), dataset="ring8", profile="smoke", seed=0)
    kw = dict(device="cpu", variant="eager", profile="smoke", n_eval=500)
    base = records.identity(spec, "torch", **kw)
    assert re.fullmatch(r"gan__ring8__torch__s0__[0-9a-f]{8}", base["id"]) and len(base["hash"]) == 64
    assert records.identity(spec, "torch", **kw) == base  # deterministic
    changed = [
        records.identity(spec.with_(steps=3000), "torch", **kw),
        records.identity(spec.with_(dtype="float64"), "torch", **kw),
        records.identity(spec.with_(gp_lambda=5.0), "torch", **kw),  # any field, nested or not
        records.identity(spec.with_(**{"discriminator.leaky_slope": 0.1}), "torch", **kw),
        records.identity(spec.with_(seed=1), "torch", **kw),
        records.identity(spec, "tensorflow", **{**kw, "variant": "function"}),
        records.identity(spec, "torch", **{**kw, "variant": "compile"}),
        records.identity(spec, "torch", **{**kw, "device": "cuda"}),
        records.identity(spec, "torch", **{**kw, "profile": "quick"}),
        records.identity(spec, "torch", **{**kw, "n_eval": 2000}),
    ]
    hashes = {base["hash"]} | {c["hash"] for c in changed}
    assert len(hashes) == len(changed) + 1


def test_a_record_is_reused_only_with_the_same_hash(tmp_path, capsys):
    """A smoke run, then a run of another budget and another profile into the same folder:
    nothing is reused, the tables show only the newest configuration of each experiment, and
    the older records are kept under records/superseded/, byte for byte."""
    code, out, _ = run(capsys, tmp_path, models="gan")
    assert code == 0
    first = records.record_paths(tmp_path)[0]
    first_bytes = first.read_bytes()
    code, out, _ = genbench(capsys, *BASE[:-3], "--steps", "9", "--no-progress", "--models", "gan", "--out", tmp_path)
    assert code == 0 and REUSED not in out
    (rec,) = records.read_records(tmp_path)
    assert rec["steps_done"] == 9 and rec["spec"]["steps"] == 9
    assert (tmp_path / "records" / "superseded" / first.name).read_bytes() == first_bytes
    # the same budget under another profile (another evaluation budget) is another identity
    code, out, _ = genbench(
        capsys,
        *[a if a != "smoke" else "quick" for a in BASE[:-3]],
        "--steps",
        "9",
        "--no-progress",
        "--models",
        "gan",
        "--out",
        tmp_path,
    )
    assert code == 0 and REUSED not in out
    (rec2,) = records.read_records(tmp_path)
    assert rec2["profile"] == "quick" and rec2["spec_hash"] != rec["spec_hash"]
    assert sum(1 for line in (tmp_path / "results.csv").read_text().splitlines()[1:] if line) == 1
    # back to the first configuration: its record comes back from superseded/ and is reused
    code, out, _ = run(capsys, tmp_path, models="gan")
    assert code == 0 and REUSED in out
    assert first.read_bytes() == first_bytes


def test_a_finished_record_stores_the_trained_criterion(base_run):
    """What bench/runs/trained.py (tested on planted records in test_verdict_rules.py) says of
    the finished record is stored in it, beside the metrics it was judged on."""
    from bench.runs.trained import check

    for rec in records.read_records(base_run):
        assert rec["status"] == "ok" and rec["trained"]["ok"] is not None
        assert rec["trained"] == dict(zip(("ok", "why"), check(rec)))


def test_record_carries_schema_command_timestamps_and_files_are_0644(base_run):
    for rec in records.read_records(base_run):
        assert rec["schema_version"] == records.SCHEMA_VERSION
        assert rec["status"] == "ok" and rec["phase"] == "done" and rec["metrics_evaluated"]
        assert "run" in rec["command"] and "--out" in rec["command"]
        for key in ("started_at", "trained_at", "ended_at"):
            assert ISO_UTC.match(rec[key]), (key, rec[key])
        assert rec["started_at"] <= rec["trained_at"] <= rec["ended_at"]
        assert rec["git_revision"] and len(rec["spec_hash"]) == 64 and rec["identity"]["randomness"] == "reproducible"
        state = base_run / rec["id"] / rec["state"]["file"]
        assert hashlib.sha256(state.read_bytes()).hexdigest() == rec["state"]["sha256"]
    files = [
        *records.record_paths(base_run),
        base_run / "results.md",
        base_run / "comparison.csv",
        base_run / "run.json",
        *base_run.glob("*/state.npz"),
        *base_run.glob("*/samples_final.png"),
    ]
    assert len(files) >= 8
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o644, f


def test_saved_state_evaluates_to_the_same_metrics(framework, tmp_path):
    """The state saved before evaluation is the whole trained model: evaluating it again in a
    fresh trainer of the same twin gives the same samples and metrics."""
    spec = registry.experiment("gan", (), dataset="ring8", profile="smoke", steps=4)
    rec = runner.run_experiment(spec, framework, tmp_path, profile="smoke", n_eval=500, progress=False)
    assert rec["status"] == "ok"
    grid = (tmp_path / rec["id"] / "samples_final.png").read_bytes()
    again = runner.evaluate_saved(spec, framework, tmp_path, {**rec, "status": "trained"}, n_eval=500)
    assert again["status"] == "ok" and again["evaluated_from_state"]
    assert again["metrics"] == rec["metrics"]
    assert (tmp_path / rec["id"] / "samples_final.png").read_bytes() == grid


# -- states: failures in evaluation and training, Ctrl-C ------------------------------------
def test_a_failing_metric_is_recorded_shown_exits_1_and_is_evaluated_again_from_state(tmp_path, capsys, monkeypatch):
    import bench.metrics

    real = bench.metrics.metrics_for

    def metrics_for(spec, *a, **k):
        if spec.name == "gan":
            raise ValueError("boom in a metric")
        return real(spec, *a, **k)

    monkeypatch.setattr(bench.metrics, "metrics_for", metrics_for)
    code, out, _ = run(capsys, tmp_path)
    assert code == 1
    recs = by_experiment(tmp_path)
    gan = recs["gan"]
    assert gan["status"] == "metrics_failed" and "ValueError: boom in a metric" in gan["error"]
    assert gan["errors"] == {"metrics": "ValueError: boom in a metric"} and gan["steps_done"] == STEPS
    assert recs["gan+weight-decay"]["status"] == "ok"  # the matrix went on
    assert (tmp_path / gan["id"] / "state.npz").exists() and (tmp_path / gan["id"] / "samples_final.png").exists()
    for table in ("results.md", "comparison.md", "results.csv"):
        text = (tmp_path / table).read_text()
        assert "metrics_failed" in text and "boom in a metric" in text, table
    # the metric is fixed: the next run evaluates from the saved state, without retraining
    monkeypatch.setattr(bench.metrics, "metrics_for", real)
    losses = tmp_path / gan["id"] / "losses.csv"
    before = losses.stat().st_mtime_ns
    code, out, _ = run(capsys, tmp_path)
    assert code == 0 and "evaluating from the saved state" in out
    assert losses.stat().st_mtime_ns == before
    gan2 = by_experiment(tmp_path)["gan"]
    assert gan2["status"] == "ok" and gan2["evaluated_from_state"] and "modes_covered" in gan2["metrics"]
    assert gan2["error"] is None and gan2["trained_at"] == gan["trained_at"]


def test_an_exception_in_training_fails_that_experiment_only(tmp_path, capsys, monkeypatch):
    poison(monkeypatch, at_step=2, exc=RuntimeError("CUDA out of nothing"))
    code, out, _ = run(capsys, tmp_path)
    assert code == 1
    recs = by_experiment(tmp_path)
    assert recs["gan"]["status"] == "failed" and "RuntimeError: CUDA out of nothing" in recs["gan"]["error"]
    assert recs["gan"]["steps_done"] == 2 and recs["gan"]["state"] is None
    assert recs["gan+weight-decay"]["status"] == "ok"
    assert "failed" in (tmp_path / "comparison.md").read_text()


def test_ctrl_c_in_evaluation_keeps_the_state_stops_the_matrix_and_resume_continues(tmp_path, capsys, monkeypatch):
    import bench.metrics

    real = bench.metrics.metrics_for

    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(bench.metrics, "metrics_for", interrupt)
    code, out, _ = run(capsys, tmp_path)
    assert code == 130 and "--resume" in out
    (rec,) = records.read_records(tmp_path)  # the second experiment did not start
    assert rec["experiment"] == "gan" and rec["status"] == "interrupted" and rec["phase"] == "evaluation"
    assert "during evaluation (metrics)" in rec["error"] and (tmp_path / rec["id"] / "state.npz").exists()
    assert (tmp_path / "results.md").exists()  # tables of what there is
    monkeypatch.setattr(bench.metrics, "metrics_for", real)
    code, out, _ = genbench(capsys, "run", "--resume", tmp_path, "--no-progress")
    assert code == 0 and "evaluating from the saved state" in out
    recs = by_experiment(tmp_path)
    assert {k: r["status"] for k, r in recs.items()} == {"gan": "ok", "gan+weight-decay": "ok"}
    assert recs["gan"]["trained_at"] == rec["trained_at"]


def test_ctrl_c_in_training_records_interrupted_and_retrains(tmp_path, capsys, monkeypatch):
    poison(monkeypatch, at_step=2, exc=KeyboardInterrupt())
    code, _, _ = run(capsys, tmp_path)
    assert code == 130
    (rec,) = records.read_records(tmp_path)
    assert rec["status"] == "interrupted" and rec["phase"] == "training" and rec["steps_done"] == 2
    monkeypatch.undo()
    code, out, _ = genbench(capsys, "run", "--resume", tmp_path, "--no-progress")
    assert code == 0
    assert {r["status"] for r in records.read_records(tmp_path)} == {"ok"}


def test_no_metrics_then_metrics_evaluates_from_state(tmp_path, capsys):
    assert run(capsys, tmp_path, "--no-metrics", models="gan")[0] == 0
    (rec,) = records.read_records(tmp_path)
    assert rec["status"] == "ok" and not rec["metrics_evaluated"] and "modes_covered" not in rec["metrics"]
    code, out, _ = run(capsys, tmp_path, models="gan")
    assert code == 0 and "evaluating from the saved state" in out
    (rec,) = records.read_records(tmp_path)
    assert rec["metrics_evaluated"] and "modes_covered" in rec["metrics"]


# -- divergence: one definition ---------------------------------------------------------------
@pytest.mark.parametrize("value", [math.nan, math.inf, 10 * DIVERGENCE_LIMIT], ids=["nan", "inf", "huge"])
def test_a_bad_loss_at_step_k_is_diverged_with_k_plus_1_steps(tmp_path, capsys, monkeypatch, value):
    k = 3
    poison(monkeypatch, at_step=k, value=value)
    code, out, _ = run(capsys, tmp_path)
    assert code == 0  # divergence is a result, not a failure
    recs = by_experiment(tmp_path)
    gan = recs["gan"]
    assert gan["status"] == "diverged" and gan["steps_done"] == k + 1
    assert gan["metrics"]["diverged"] == 1.0 and gan["metrics"]["diverged_step"] == k  # the same definition
    assert gan["state"] is None and recs["gan+weight-decay"]["status"] == "ok"
    assert gan["trained"] == {"ok": False, "why": "diverged"}  # stored: a diverged run did not train
    comparison = (tmp_path / "comparison.md").read_text()
    assert "s0 diverged" in comparison
    # a diverged record is a result of its hash: reused, not retrained
    monkeypatch.undo()
    code, out, _ = run(capsys, tmp_path)
    assert code == 0 and out.count(REUSED) == 2


def test_final_losses_and_stability_summary_share_one_window(tmp_path, capsys):
    steps = FINAL_WINDOW + 7
    code, _, _ = genbench(
        capsys, *BASE[:-3], "--steps", steps, "--no-progress", "--models", "gan", "--no-metrics", "--out", tmp_path
    )
    assert code == 0
    (rec,) = records.read_records(tmp_path)
    for term, value in rec["final_losses"].items():
        assert value == pytest.approx(rec["metrics"][f"{term}_mean"], rel=1e-12)
    import csv

    with open(tmp_path / rec["id"] / "losses.csv") as f:
        rows = list(csv.DictReader(f))
    tail = [float(r["d_loss"]) for r in rows[-FINAL_WINDOW:]]
    assert rec["final_losses"]["d_loss"] == pytest.approx(sum(tail) / len(tail), rel=1e-9)


# -- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "content", [None, b"", b"[1, 2]", b'{"id": "x"}'], ids=["truncated", "empty", "list", "lacks-fields"]
)
def test_a_corrupt_record_is_one_line_for_tables_and_retrained_by_run(base_run, tmp_path, capsys, content):
    folder = tmp_path / "run"
    folder.mkdir()
    for src in base_run.rglob("*"):  # a copy of the finished run
        dest = folder / src.relative_to(base_run)
        if src.is_dir():
            dest.mkdir(exist_ok=True)
        else:
            dest.write_bytes(src.read_bytes())
    gan = folder / "records" / f"{by_experiment(base_run)['gan']['id']}.json"
    other = folder / "records" / f"{by_experiment(base_run)['gan+weight-decay']['id']}.json"
    bad = gan.read_bytes()[: gan.stat().st_size // 2] if content is None else content
    gan.write_bytes(bad)
    other_bytes = other.read_bytes()
    for cmd in (["tables", folder], ["gate", folder, "--baseline", "results/baselines/smoke.json"]):
        code, _, err = genbench(capsys, *cmd)
        assert code == 2
        one_error_line(err, str(gan), "--resume")
    assert gan.read_bytes() == bad  # reading never changes anything
    code, out, err = genbench(capsys, "run", "--resume", folder, "--no-progress")
    assert code == 0
    one_error_line(err, "warning", gan.name, "corrupt")
    assert (folder / "records" / "corrupt" / gan.name).read_bytes() == bad  # kept, not deleted
    assert other.read_bytes() == other_bytes  # untouched, reused
    assert {r["status"] for r in records.read_records(folder)} == {"ok"}


def test_a_partial_run_folder_is_trained_again(tmp_path, capsys):
    """An experiment folder without a record (a run killed hard mid-training) is not a result."""
    spec = registry.experiment("gan", (), dataset="ring8", profile="smoke", steps=STEPS)
    eid = runner.experiment_identity(spec, "torch", profile="smoke", n_eval=500)["id"]
    (tmp_path / eid).mkdir()
    (tmp_path / eid / "losses.csv").write_text("step,wall_s,d_loss\n1,0.1,0.7\n")
    (tmp_path / eid / "state.npz").write_bytes(b"half a zip")
    code, out, _ = run(capsys, tmp_path, models="gan")
    assert code == 0 and REUSED not in out
    (rec,) = records.read_records(tmp_path)
    assert rec["id"] == eid and rec["status"] == "ok" and rec["steps_done"] == STEPS
    assert len((tmp_path / eid / "losses.csv").read_text().splitlines()) == STEPS + 1


def test_a_trained_record_with_a_damaged_state_is_trained_again(base_run, tmp_path, capsys):
    folder = tmp_path / "run"
    code, _, _ = run(capsys, folder, "--no-metrics", models="gan")
    (rec,) = records.read_records(folder)
    (folder / rec["id"] / "state.npz").write_bytes(b"not the saved weights")
    code, out, _ = run(capsys, folder, models="gan")
    assert code == 0 and "does not match the SHA-256" in out and "retraining" in out
    (rec2,) = records.read_records(folder)
    assert rec2["status"] == "ok" and rec2["metrics_evaluated"] and not rec2.get("evaluated_from_state")


def _idx(magic: int, *dims: int, payload: bytes) -> bytes:
    return struct.pack(">I", magic) + struct.pack(f">{len(dims)}I", *dims) + payload


def test_a_truncated_idx_file_in_data_dir_is_one_line_and_nothing_is_written(tmp_path, capsys):
    data_dir = tmp_path / "idx"
    data_dir.mkdir()
    n = 10
    for prefix in ("train", "t10k"):
        (data_dir / f"{prefix}-images-idx3-ubyte").write_bytes(_idx(2051, n, 28, 28, payload=bytes(n * 784)))
        (data_dir / f"{prefix}-labels-idx1-ubyte").write_bytes(_idx(2049, n, payload=bytes(n)))
    images = data_dir / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-500])
    out = tmp_path / "out"
    code, _, err = genbench(
        capsys,
        "run",
        "--dataset",
        "mnist",
        "--models",
        "gan",
        "--framework",
        "torch",
        "--steps",
        "2",
        "--data-dir",
        data_dir,
        "--out",
        out,
        "--no-progress",
    )
    assert code == 2
    one_error_line(err, str(images), "truncated")
    assert not out.exists()


@pytest.mark.parametrize("target", ["record", "state", "table"])
def test_disk_full_is_one_line_exit_1_and_the_previous_file_is_intact(tmp_path, capsys, monkeypatch, target):
    """ENOSPC while writing: one line naming the file, exit 1, the file's previous content
    intact, no temporary file left, every earlier record kept."""
    assert run(capsys, tmp_path, "--no-metrics")[0] == 0  # both ok, metrics still to compute
    before = snapshot(tmp_path)
    real_write = records._write

    def full(f, data, path):
        hit = {
            "record": path.parent.name == "records",
            "state": path.name == "state.npz",
            "table": path.name == "results.md",
        }[target]
        if hit:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(f, data, path)

    monkeypatch.setattr(records, "_write", full)
    extra = ("--fresh",) if target == "state" else ()
    code, out, err = run(capsys, tmp_path, *extra)
    assert code == 1
    line = one_error_line(err, "cannot write", "No space left on device")
    after = snapshot(tmp_path)
    assert not [p for p in after if p.endswith(".tmp")]
    if target == "record":  # the evaluation could not be recorded: the trained record is as it was
        (path,) = [p for p in before if p.startswith("records/gan__")]
        assert path.split("/")[-1] in line and after[path] == before[path]
    elif target == "state":  # --fresh retrains; the previous records are kept under superseded/
        assert "state.npz" in line
        kept = [p for p in after if p.startswith("records/superseded/")]
        assert kept and all(after[p] == before["records/" + p.split("/")[-1]] for p in kept)
    else:
        assert "results.md" in line and after["results.md"] == before["results.md"]
        assert {r["status"] for r in records.read_records(tmp_path)} == {"ok"}
    monkeypatch.undo()
    assert run(capsys, tmp_path)[0] == 0  # and the run completes once there is room


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--models", "dcgna"], "unknown model 'dcgna'; did you mean 'dcgan'?"),
        (["--models", "gan+spectral-nrom"], "unknown stabilizer 'spectral-nrom'; did you mean 'spectral-norm'?"),
        (["--models", "vae"], "only the GANs apply"),
        (["--models", "gan+label-smoothing-one+magic"], "unknown stabilizer 'magic'"),
        (["--dataset", "ring9"], "did you mean 'ring8'?"),
        (["--steps", "0"], "--steps must be >= 1, got 0"),
        (["--steps", "-5"], "--steps must be >= 1, got -5"),
        (["--steps", "many"], "--steps takes a positive integer"),
        (["--seeds", "3-1"], "3-1 is an empty range"),
        (["--seeds", "0,0"], "seed 0 appears twice"),
        (["--seeds", "x"], "--seeds takes integers"),
    ],
    ids=lambda v: v if isinstance(v, str) else "_".join(v),
)
def test_bad_input_is_one_line_exit_2_and_nothing_written_is_lost(base_run, capsys, argv, message):
    before = snapshot(base_run)
    code, _, err = genbench(
        capsys, "run", "--dataset", "ring8", "--framework", "torch", "--out", base_run, "--no-progress", *argv
    )
    assert code == 2
    one_error_line(err, "genbench run: error:", message)
    assert snapshot(base_run) == before


def test_resume_needs_a_recorded_run_and_takes_no_other_options(base_run, tmp_path, capsys):
    code, _, err = genbench(capsys, "run", "--resume", tmp_path)
    assert code == 2
    one_error_line(err, "no run.json")
    code, _, err = genbench(capsys, "run", "--resume", base_run, "--steps", "50")
    assert code == 2
    one_error_line(err, "drop --steps")
    before = snapshot(base_run)
    code, out, _ = genbench(capsys, "run", "--resume", base_run, "--no-progress")
    assert code == 0 and out.count(REUSED) == 2
    recorded = json.loads((base_run / "run.json").read_text())["invocations"]
    assert recorded[-1]["options"] == recorded[0]["options"]
    assert {k: v for k, v in snapshot(base_run).items() if k.startswith("records/")} == {
        k: v for k, v in before.items() if k.startswith("records/")
    }


def test_help_documents_resume_and_exit_codes(capsys):
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for needle in (
        "--resume RUN_DIR",
        "identity hash",
        "exit status",
        "1 an experiment failed",
        "2 bad input",
        "130 interrupted",
        "metrics_failed",
    ):
        assert needle in text, needle


def test_the_curve_profile_evaluates_during_training(framework, tmp_path, monkeypatch):
    """With a profile's eval_every, the record's `curve` and curve.csv hold the metrics at every
    eval_every steps and at the end. Reference for a mid-run point: a separate run that stops
    at that step (same seed, so the same stream), its saved state loaded into a fresh trainer
    and evaluated with the point's sample seed."""
    import csv

    import impls
    from bench import metrics

    monkeypatch.setitem(registry.PROFILES, "curve", {**registry.PROFILES["curve"], "eval_every": 2})
    spec = registry.experiment("gan", (), dataset="ring8", profile="curve", steps=6)
    rec = runner.run_experiment(spec, framework, tmp_path / "a", profile="curve", n_eval=500, progress=False)
    assert rec["status"] == "ok" and [p["step"] for p in rec["curve"]] == [2, 4, 6]
    with open(tmp_path / "a" / rec["id"] / "curve.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [2, 4, 6]
    final = rec["curve"][-1]
    assert all(final[k] == rec["metrics"][k] for k in final if k != "step")

    short = runner.run_experiment(
        spec.with_(steps=2), framework, tmp_path / "b", profile="smoke", n_eval=500, progress=False
    )
    trainer = impls.load(framework).build(spec)
    trainer.set_weights(records.load_state(tmp_path / "b" / short["id"] / short["state"]["file"]))
    want = metrics.metrics_for(
        spec, trainer, np.random.default_rng([spec.seed, runner.EVAL_SEED_KEY, 2]), n_samples=500
    )
    assert {k: rec["curve"][0][k] for k in want} == want

    # evaluated again from its state: the final point is replaced, not repeated
    again = runner.evaluate_saved(spec, framework, tmp_path / "a", {**rec, "status": "trained"}, n_eval=500)
    assert [p["step"] for p in again["curve"]] == [2, 4, 6]
    with open(tmp_path / "a" / rec["id"] / "curve.csv", newline="") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [2, 4, 6]
