"""The command line end to end: a smoke run in a temporary folder, its records and tables,
the gate on the committed baseline, on its own baseline and on a doctored one, resuming,
divergence, and the clear errors for bad input."""

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from bench import cli
from bench.core import divergence
from bench.runs import records

ROOT = Path(__file__).resolve().parent.parent
SMOKE_BASELINE = ROOT / "results" / "baselines" / "smoke.json"


def genbench(*argv, capsys=None):
    code = cli.main([str(a) for a in argv])
    out = capsys.readouterr() if capsys else None
    return code, out


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke")
    code = cli.main(["run", "--profile", "smoke", "--models", "gan,vae", "--out", str(out), "--no-progress"])
    assert code == 0
    return out


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["run", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for option in (
        "--profile",
        "--dataset",
        "--framework",
        "--models",
        "--seeds",
        "--out",
        "--device",
        "--data-dir",
        "--fresh",
        "--steps",
    ):
        assert option in text


def test_list_shows_catalog(capsys):
    code, out = genbench("list", capsys=capsys)
    assert code == 0
    for name in (
        "vae",
        "cvae",
        "gan",
        "dcgan",
        "wgan",
        "wgan-gp",
        "hinge-gan",
        "vaegan",
        "spectral-norm",
        "gradient-penalty",
        "label-smoothing-one",
        "weight-decay-decoupled",
    ):
        assert name in out.out


def test_data_lists_sources(capsys):
    code, out = genbench("data", capsys=capsys)
    assert code == 0
    assert "mnist" in out.out and "fashion-mnist" in out.out


def test_data_exits_1_when_no_dataset_is_installed(capsys, monkeypatch):
    from bench.core import data

    real = data.sources

    def nothing(data_dir=None):
        return [{**r, "present": False, "used": False, "valid": False} for r in real(data_dir)]

    monkeypatch.setattr(data, "sources", nothing)
    code, out = genbench("data", capsys=capsys)
    assert code == 1 and "no image dataset has a valid source" in out.err
    assert "mnist" in out.out


def test_baseline_out_is_a_file(smoke_run, tmp_path, capsys):
    code, out = genbench("baseline", smoke_run, "--out", tmp_path, capsys=capsys)
    assert code == 2 and "is a folder" in out.err and len(out.err.strip().splitlines()) == 1


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert all(c in text for c in cli.COMMANDS) and "130 interrupted" in text


@pytest.mark.parametrize(
    "command",
    ["run", "study", "list", "data", "gate", "baseline", "tables", "report", "eval", "train-evaluator", "equivalence"],
)
def test_every_command_documents_its_exit_status(command, capsys):
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "exit status" in text and "130 interrupted" in text
    # argparse %-formats option help only: a "%%" written into a description or epilog is printed as is
    assert "%%" not in text


@pytest.mark.parametrize("command", ["run", "study", "data", "eval", "train-evaluator"])
def test_every_command_that_reads_data_takes_data_dir(command):
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    assert any("--data-dir" in a.option_strings for a in sub._actions)


def test_train_evaluator_takes_seed_or_seeds_and_passes_data_dir(tmp_path, monkeypatch):
    from bench import metrics

    calls = []
    monkeypatch.setattr(metrics, "train_evaluator_main", lambda dataset, **kw: calls.append(kw) or {})
    assert cli.main(["train-evaluator", "--dataset", "mnist", "--seeds", "3", "--data-dir", str(tmp_path)]) == 0
    assert calls[-1]["seed"] == 3 and calls[-1]["data_dir"] == tmp_path
    assert cli.main(["train-evaluator", "--dataset", "mnist", "--seed", "4"]) == 0
    assert calls[-1]["seed"] == 4 and calls[-1]["data_dir"] is None


def test_smoke_run_writes_records_grids_and_tables(smoke_run):
    recs = records.read_records(smoke_run)
    assert {(r["experiment"], r["framework"]) for r in recs} == {
        ("gan", "torch"),
        ("gan", "tensorflow"),
        ("vae", "torch"),
        ("vae", "tensorflow"),
    }
    for r in recs:
        assert r["status"] == "ok" and r["steps_done"] == 20
        assert r["spec"]["steps"] == 20 and r["versions"]["torch"] and r["git_revision"]
        exp_dir = smoke_run / r["id"]
        with open(exp_dir / "losses.csv") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == 20 and set(r["final_losses"]) <= set(rows[0])
        # the record's final losses are the mean of the last steps of the CSV
        for term, value in r["final_losses"].items():
            assert value == pytest.approx(np.mean([float(x[term]) for x in rows]), rel=1e-9)
        assert (exp_dir / "samples_final.png").stat().st_size > 0
        assert "metrics_error" not in r["metrics"], r["metrics"].get("metrics_error")
    for name in ("results.md", "results.csv", "comparison.md", "comparison.csv"):
        assert (smoke_run / name).stat().st_size > 0
    with open(smoke_run / "comparison.csv") as f:
        header = next(csv.reader(f))
    assert header[:5] == ["experiment", "dataset", "metric", "torch", "tensorflow"]


def test_smoke_twins_agree(smoke_run):
    """Same initial weights, same batches, same noise: the final losses of the two twins agree
    to float32 accumulation error over 20 steps (the equivalence suite checks this strictly)."""
    by = {(r["experiment"], r["framework"]): r for r in records.read_records(smoke_run)}
    for exp in ("gan", "vae"):
        a, b = by[(exp, "torch")]["final_losses"], by[(exp, "tensorflow")]["final_losses"]
        for term in a:
            assert a[term] == pytest.approx(b[term], rel=1e-3, abs=1e-3), (exp, term)


def test_gate_passes_on_committed_baseline(smoke_run, capsys):
    code, out = genbench("gate", smoke_run, "--baseline", SMOKE_BASELINE, capsys=capsys)
    assert code == 0, out.out
    assert "checks passed" in out.out


def test_gate_passes_on_own_baseline_and_fails_on_doctored(smoke_run, tmp_path, capsys):
    base = tmp_path / "own.json"
    # 20 steps teach nothing, so every quality band would contain the untrained value: the
    # mechanics are checked on the loss terms (suites/test_gate.py checks the untrained rule)
    assert genbench("baseline", smoke_run, "--out", base, "--losses", "--no-untrained", capsys=capsys)[0] == 0
    assert genbench("gate", smoke_run, "--baseline", base, capsys=capsys)[0] == 0
    doc = json.loads(base.read_text())
    # make the baseline better than the run by 3 tolerances on one directed metric
    check = next(c for c in doc["checks"] if c["direction"] in ("lower", "higher"))
    sign = -1 if check["direction"] == "lower" else 1
    check["value"] += sign * 3 * check["tolerance"]
    doctored = tmp_path / "doctored.json"
    doctored.write_text(json.dumps(doc))
    code, out = genbench("gate", smoke_run, "--baseline", doctored, capsys=capsys)
    assert code == 1
    assert "REGRESSED" in out.out and check["metric"] in out.out


def test_gate_fails_when_an_experiment_is_missing(smoke_run, tmp_path, capsys):
    doc = {
        "checks": [
            {
                "experiment": "wgan",
                "dataset": "mnist",
                "framework": "torch",
                "metric": "final.d_loss",
                "value": 0.0,
                "direction": "both",
                "tolerance": 1.0,
            }
        ]
    }
    path = tmp_path / "b.json"
    path.write_text(json.dumps(doc))
    code, out = genbench("gate", smoke_run, "--baseline", path, capsys=capsys)
    assert code == 1 and "missing" in out.out


@pytest.mark.parametrize(
    "content,message",
    [
        (None, "not found"),
        ("{not json", "not valid JSON"),
        ('{"checks": []}', "no 'checks'"),
        ('{"checks": [{"metric": "fid"}]}', "lacks"),
    ],
)
def test_gate_bad_baseline_is_a_clear_error(smoke_run, tmp_path, capsys, content, message):
    path = tmp_path / "b.json"
    if content is not None:
        path.write_text(content)
    code, out = genbench("gate", smoke_run, "--baseline", path, capsys=capsys)
    assert code == 2 and message in out.err


def test_rerun_reuses_finished_records(smoke_run, capsys):
    before = {p.name: p.stat().st_mtime_ns for p in (smoke_run / "records").iterdir()}
    code, out = genbench(
        "run", "--profile", "smoke", "--models", "gan,vae", "--out", smoke_run, "--no-progress", capsys=capsys
    )
    assert code == 0 and out.out.count("reused") == 4
    assert before == {p.name: p.stat().st_mtime_ns for p in (smoke_run / "records").iterdir()}


@pytest.mark.parametrize(
    "argv,message",
    [
        (["run", "--dataset", "cifar"], "--dataset 'cifar' is not one of"),
        (["run", "--models", "bigan"], "unknown model 'bigan'"),
        (["run", "--models", "vae+spectral-norm"], "does not apply to vae"),
        (["run", "--models", "gan+magic"], "unknown stabilizer 'magic'"),
        (["run", "--seeds", "a,b"], "--seeds takes integers"),
        (["run", "--convention", "tfgann"], "--convention 'tfgann' is not one of"),
        (["gate", "/nonexistent", "--baseline", "x.json"], "has no records/ folder"),
        (["equivalence", "--cases", "gan,dcgann"], "--cases 'dcgann': unknown model 'dcgann'"),
        (["equivalence", "--cases", "vae+spectral-norm"], "does not apply to vae"),
        (["equivalence", "--cases", "gan@sgd"], "optimizer 'sgd' is not one of"),
        (["equivalence", "--cases", "gan", "--full"], "--cases and --full: choose one"),
        (["equivalence", "--dtypes", "float16"], "--dtypes 'float16': each must be one of float64, float32"),
        (["equivalence", "--dtypes", "float64,float64"], "a dtype appears twice"),
        (["equivalence", "--tf-variant", "graph"], "--tf-variant 'graph' is not one of eager, function, xla"),
        (["equivalence", "--steps", "0"], "--steps must be >= 1"),
    ],
)
def test_bad_input_is_one_clear_line(capsys, argv, message):
    code, out = genbench(*argv, capsys=capsys)
    assert code == 2
    assert message in out.err and len(out.err.strip().splitlines()) == 1


def test_convention_sets_the_peer_preset_on_every_experiment_and_records_it(tmp_path, capsys):
    code, _ = genbench(
        "run",
        "--profile",
        "smoke",
        "--dataset",
        "ring8",
        "--models",
        "gan+spectral-norm,wgan-gp",
        "--framework",
        "torch",
        "--steps",
        2,
        "--no-metrics",
        "--no-progress",
        "--convention",
        "tfgan",
        "--out",
        tmp_path,
        capsys=capsys,
    )
    assert code == 0
    specs = {r["experiment"]: r["spec"] for r in records.read_records(tmp_path)}
    assert set(specs) == {"gan+spectral-norm", "wgan-gp"}
    assert all(s["convention"] == "tfgan" for s in specs.values())
    assert specs["wgan-gp"]["gp_form"] == "divide"
    assert specs["gan+spectral-norm"]["discriminator"]["sn_vector"] == "input"
    manifest = records.read_manifest(tmp_path)
    assert manifest["invocations"][-1]["options"]["convention"] == "tfgan"


def test_diverging_run_is_recorded_and_matrix_goes_on(tmp_path, monkeypatch):
    """A NaN loss at step 3 ends that experiment as 'diverged'; the next one still runs."""
    import impls

    real_load = impls.load

    class Poisoned:
        def __init__(self, framework):
            self.inner = real_load(framework)

        def build(self, spec, **kw):
            trainer = self.inner.build(spec, **kw)
            step = trainer.train_step
            count = {"n": 0}

            def train_step(batch, noise):
                count["n"] += 1
                out = step(batch, noise)
                return {k: (math.nan if count["n"] >= 3 and spec.name == "gan" else v) for k, v in out.items()}

            trainer.train_step = train_step
            return trainer

    monkeypatch.setattr(impls, "load", lambda fw: Poisoned(fw))
    code = cli.main(
        [
            "run",
            "--profile",
            "smoke",
            "--models",
            "gan,vae",
            "--framework",
            "torch",
            "--out",
            str(tmp_path),
            "--no-progress",
            "--no-metrics",
        ]
    )
    assert code == 0
    status = {r["experiment"]: (r["status"], r["steps_done"]) for r in records.read_records(tmp_path)}
    assert status == {"gan": ("diverged", 3), "vae": ("ok", 20)}
    assert "diverged" in (tmp_path / "comparison.md").read_text()


def test_records_are_written_atomically(tmp_path, monkeypatch):
    """A failure while writing leaves the previous record intact and no temporary file behind."""
    path = tmp_path / "records" / "x.json"
    records.write_record(path, {"a": 1})

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(records.os, "replace", boom)
    with pytest.raises(OSError):
        records.write_record(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in path.parent.iterdir()] == ["x.json"]


def test_nan_in_record_round_trips():
    assert not divergence.losses_diverged({"a": 1.0}) and divergence.losses_diverged({"a": float("inf")})
    assert math.isnan(records.as_float(records.jsonable(float("nan"))))


def test_equivalence_writes_a_run_folder_unless_told_otherwise(tmp_path, monkeypatch):
    """The committed tables (results/tables) are written only with an explicit --out; the flags
    reach bench.checks.equivalence.main as parsed values."""
    from bench.checks import equivalence

    calls = []
    monkeypatch.setattr(equivalence, "main", lambda **kw: calls.append(kw) or 0)
    monkeypatch.chdir(tmp_path)
    assert (
        cli.main(
            [
                "equivalence",
                "--cases",
                "gan,dcgan+batch-norm@adam",
                "--dtypes",
                "float32",
                "--tf-variant",
                "xla",
                "--steps",
                "2",
            ]
        )
        == 0
    )
    kw = calls[-1]
    assert str(kw["out"]).startswith("results/runs/equivalence-") and kw["variant"] == "xla"
    assert [c.label for c in kw["cases"]] == ["gan", "dcgan+batch-norm@adam"]
    assert kw["dtypes"] == ("float32",) and kw["steps"] == 2
    assert cli.main(["equivalence", "--out", "results/tables"]) == 0
    assert calls[-1]["out"] == Path("results/tables") and calls[-1]["cases"] is None


def test_equivalence_variants_are_the_tensorflow_twins_variants():
    from impls.tensorflow.train import VARIANTS

    assert cli.TF_VARIANTS == VARIANTS
