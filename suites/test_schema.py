"""Typed records (bench/runs/schema.py): each loader on files the project's own writers made (a
two-experiment matrix through run_matrix, a study's verdicts, a baseline from make_baseline, the
committed baselines and the committed fid-curve records); RunFolder over the same run folder;
and every kind of bad file (corrupt, empty, foreign, a required field missing, a field of the
wrong type, a newer schema) as one error line that names the file and the field."""

import json
from pathlib import Path

import pytest

from bench import cli
from bench.checks import gate
from bench.core import registry
from bench.runs import records, schema, study
from bench.runs.matrix import MatrixConfig, run_matrix
from bench.runs.pools import SerialPool

ROOT = Path(__file__).resolve().parent.parent
STEPS = 6
COMMAND = ("genbench", "run", "--profile", "smoke", "--dataset", "ring8")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """gan and gan+weight-decay on ring8, PyTorch, 6 steps, through the matrix."""
    out = tmp_path_factory.mktemp("run")
    specs = [
        registry.experiment("gan", (), dataset="ring8", profile="smoke", steps=STEPS),
        registry.experiment("gan", ("weight-decay",), dataset="ring8", profile="smoke", steps=STEPS),
    ]
    cfg = MatrixConfig(profile="smoke", progress=False, command=COMMAND, options={"profile": "smoke"})
    assert run_matrix(specs, ("torch",), out, cfg, SerialPool(progress=False)).code == 0
    return out


@pytest.fixture(scope="module")
def verdicts_path(tmp_path_factory) -> Path:
    """A study's verdicts.json written by study.write_verdicts from records of two groups."""
    run = tmp_path_factory.mktemp("study")
    fids_of = {"dcgan": [100.0, 110.0, 105.0, 108.0, 102.0], "dcgan+spectral-norm": [60.0, 64.0, 61.0, 63.0, 62.0]}
    for name, fids in fids_of.items():  # 5 seeds: the shipped claims file's minimum in PyTorch
        for fw in ("torch", "tensorflow"):
            for seed, fid in enumerate(fids):
                rid = f"{name}__mnist__{fw}__s{seed}__00000000"
                rec = {
                    "id": rid,
                    "experiment": name,
                    "dataset": "mnist",
                    "framework": fw,
                    "seed": seed,
                    "status": "ok",
                    "spec": {"steps": 6000},
                    "metrics": {"fid": fid, "class_kl": 0.1},
                    "timing": {"wall_s": 10.0, "ms_per_step": 5.0},
                    "steps_done": 6000,
                    "code_hash": "c0de" * 16,
                }
                records.write_record(run / "records" / f"{rid}.json", rec)
    study.write_verdicts(run)
    return run / "study" / "verdicts.json"


@pytest.fixture(scope="module")
def baseline_path(run_dir, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("baseline") / "baseline.json"
    gate.make_baseline(run_dir, path, losses=True, untrained=False, log=lambda *a: None)
    return path


def one_line(error: pytest.ExceptionInfo, *needles) -> str:
    text = str(error.value)
    assert len(text.splitlines()) == 1, text
    for n in needles:
        assert n in text, (n, text)
    return text


# -- each loader on a real file ------------------------------------------------------------------
def test_load_record_types_every_field_and_keeps_the_rest(run_dir):
    paths = records.record_paths(run_dir)
    assert len(paths) == 2
    for p in paths:
        rec = schema.load_record(p)
        raw = json.loads(p.read_text())
        assert rec.raw == raw  # nothing written is lost
        assert (rec.id, rec.experiment, rec.dataset, rec.framework, rec.seed) == (
            p.stem,
            raw["experiment"],
            "ring8",
            "torch",
            0,
        )
        assert rec.status == "ok" and rec.steps_done == STEPS and rec.schema_version == schema.SCHEMA_VERSION
        assert rec.spec["steps"] == STEPS and rec.spec_hash.startswith(p.stem.rsplit("__", 1)[1])
        assert rec.metrics == raw["metrics"] and rec.timing["ms_per_step"] > 0 and rec.trained["ok"] in (True, False)
        assert isinstance(rec.code_hash, str) and rec.error is None and rec.state["file"] == schema.STATE_FILE
        assert rec.key == records.experiment_key(raw)
        known = {f for f in rec.__dataclass_fields__ if f != "raw"}
        assert set(rec.extra) == set(raw) - known  # every key is either a field or in extra


def test_read_record_still_hands_back_the_file_as_written(run_dir):
    for p in records.record_paths(run_dir):
        assert records.read_record(p) == json.loads(p.read_text())


def test_load_manifest_on_a_matrix_run(run_dir):
    m = schema.load_manifest(run_dir / "run.json")
    assert m.schema_version == schema.SCHEMA_VERSION and len(m.invocations) == 1
    assert m.latest.command == list(COMMAND) and m.latest.options == {"profile": "smoke"}
    assert (
        m.latest.executor == "serial"
        and m.latest.started_at
        and m.raw == json.loads((run_dir / "run.json").read_text())
    )


def test_load_verdicts_on_a_study(verdicts_path):
    v = schema.load_verdicts(verdicts_path)
    assert schema.VERDICTS_SCHEMA == study.SCHEMA == v.schema
    assert len(v.claims) == 7 and v.correction == "holm" and v.alpha > 0 and v.code["versions"]
    c4 = next(c for c in v.claims if c.claim == 4)
    assert c4.title and c4.rows and all(isinstance(r, dict) for r in c4.rows)
    assert c4.verdict == c4.raw["verdict"] and c4.frameworks_agree == {"mnist": True}
    assert v.cost and v.raw == json.loads(verdicts_path.read_text())


def test_load_baseline_on_make_baseline_and_the_committed_ones(baseline_path):
    made = schema.load_baseline(baseline_path)
    assert made.schema == schema.BASELINE_SCHEMA and made.profile == "smoke" and made.checks
    for c in made.checks:
        assert c.direction in schema.DIRECTIONS and c.steps == STEPS and c.seeds == 1 and c.raw in made.raw["checks"]
    for path in sorted((ROOT / "results" / "baselines").glob("*.json")):
        if path.name.startswith("timing"):  # a pytest-benchmark file, not a gate baseline
            continue
        base = schema.load_baseline(path)
        assert len(base.checks) == len(base.raw["checks"]) and base.rule  # smoke.json: older, no schema


def test_every_committed_fid_curve_record_loads():
    paths = sorted((ROOT / "results" / "fid-curve" / "records").glob("*.json"))
    assert len(paths) == 2
    for p in paths:
        rec = schema.load_record(p)
        assert rec.id == p.stem and rec.status == "ok" and rec.experiment == "dcgan" and rec.metrics["fid"] > 0
        assert rec.curve and rec.float32_precision is not None


# -- RunFolder -----------------------------------------------------------------------------------
def test_run_folder_reads_each_file_of_a_run(run_dir):
    folder = schema.RunFolder(run_dir)
    recs = folder.records()
    assert [r.id for r in recs] == sorted(p.stem for p in records.record_paths(run_dir))
    assert folder.unreadable() == [] and folder.verdicts() is None
    assert folder.manifest() == schema.load_manifest(run_dir / "run.json")
    for rec in recs:
        assert folder.record(rec.id) == rec
        losses = folder.losses(rec.id)
        assert losses["step"] == [float(s) for s in range(1, STEPS + 1)] and "d_loss" in losses
        assert folder.state(rec.id) == run_dir / rec.id / "state.npz"
        figs = folder.figures(rec.id)
        assert figs.samples_final.is_file() and figs.loss_curves.is_file()
        assert figs.samples_epochs == () and figs.latents is None  # 6 steps end no epoch; ring8: no encoder
    assert folder.losses("no-such-id") is None and folder.state("no-such-id") is None


def test_run_folder_figures_in_epoch_order(tmp_path):
    exp = tmp_path / "vae__mnist__torch__s0__00000000"
    exp.mkdir()
    for name in ("samples_epoch10.png", "samples_epoch2.png", "samples_epoch1.png", "latents.npz", "notes.png"):
        (exp / name).write_bytes(b"")
    figs = schema.RunFolder(tmp_path).figures(exp.name)
    assert [p.name for p in figs.samples_epochs] == ["samples_epoch1.png", "samples_epoch2.png", "samples_epoch10.png"]
    assert figs.latents == exp / "latents.npz" and figs.samples_final is None and figs.loss_curves is None


def test_run_folder_reports_an_unreadable_record_and_reads_the_rest(run_dir, tmp_path):
    (tmp_path / "records").mkdir()
    for p in records.record_paths(run_dir):
        (tmp_path / "records" / p.name).write_bytes(p.read_bytes())
    bad = tmp_path / "records" / "broken__ring8__torch__s0__deadbeef.json"
    bad.write_text('{"id": "broken"')
    folder = schema.RunFolder(tmp_path)
    assert len(folder.records()) == 2
    ((path, why),) = folder.unreadable()
    assert path == bad and bad.name in why and len(why.splitlines()) == 1
    assert len(records.scan_records(tmp_path)[0]) == 2
    with pytest.raises(schema.RecordError) as e:
        records.read_records(tmp_path)
    one_line(e, bad.name, "--resume")


def test_run_folder_verdicts(verdicts_path):
    assert schema.RunFolder(verdicts_path.parent.parent).verdicts() == schema.load_verdicts(verdicts_path)


# -- bad files -----------------------------------------------------------------------------------
LOADERS = {
    "record": schema.load_record,
    "manifest": schema.load_manifest,
    "verdicts": schema.load_verdicts,
    "baseline": schema.load_baseline,
}


@pytest.fixture
def real_file(run_dir, verdicts_path, baseline_path):
    """kind -> (path of a real file of that kind, its parsed JSON)."""
    paths = {
        "record": records.record_paths(run_dir)[0],
        "manifest": run_dir / "run.json",
        "verdicts": verdicts_path,
        "baseline": baseline_path,
    }
    return {k: (p, json.loads(p.read_text())) for k, p in paths.items()}


def write(tmp_path, name: str, doc) -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


@pytest.mark.parametrize("kind", LOADERS)
def test_a_corrupt_or_empty_file_is_one_line_naming_it(kind, real_file, tmp_path):
    path, _ = real_file[kind]
    text = path.read_text()
    for name, content, problem in (
        ("truncated.json", text[: len(text) // 2], "not valid JSON"),
        ("empty.json", "", "empty"),
    ):
        with pytest.raises(schema.RecordError) as e:
            LOADERS[kind](write(tmp_path, name, content))
        one_line(e, str(tmp_path / name), problem)


@pytest.mark.parametrize("kind", LOADERS)
def test_a_json_list_is_one_line_naming_the_file(kind, tmp_path):
    with pytest.raises(schema.RecordError) as e:
        LOADERS[kind](write(tmp_path, "list.json", [1, 2]))
    one_line(e, str(tmp_path / "list.json"), "a list, not a JSON object")


@pytest.mark.parametrize(
    "kind,other,field",
    [
        ("record", "verdicts", "'id'"),
        ("verdicts", "record", "'schema'"),
        ("baseline", "manifest", "'checks'"),
        ("manifest", "baseline", "'invocations'"),
        ("record", "manifest", "'id'"),
    ],
)
def test_a_foreign_file_is_one_line_naming_the_file_and_the_field(kind, other, field, real_file):
    path, _ = real_file[other]
    with pytest.raises(schema.FieldError) as e:
        LOADERS[kind](path)
    one_line(e, str(path), f"field {field}", "missing")


@pytest.mark.parametrize(
    "kind,key,field",
    [
        ("record", ["seed"], "'seed'"),
        ("record", ["status"], "'status'"),
        ("verdicts", ["claims"], "'claims'"),
        ("verdicts", ["claims", 0, "rows"], "'claims[0].rows'"),
        ("baseline", ["checks", 0, "tolerance"], "'checks[0].tolerance'"),
        ("manifest", ["invocations"], "'invocations'"),
    ],
)
def test_a_missing_required_field_is_one_line_naming_the_file_and_the_field(kind, key, field, real_file, tmp_path):
    _, doc = real_file[kind]
    inner = doc
    for k in key[:-1]:
        inner = inner[k]
    del inner[key[-1]]
    path = write(tmp_path, f"{kind}.json", doc)
    with pytest.raises(schema.FieldError) as e:
        LOADERS[kind](path)
    one_line(e, str(path), f"field {field}", "missing")


@pytest.mark.parametrize(
    "kind,key,value,field,problem",
    [
        ("record", ["seed"], "zero", "'seed'", "expected int, got 'zero'"),
        ("record", ["seed"], True, "'seed'", "expected int, got True"),
        ("record", ["metrics"], [1.0], "'metrics'", "expected object, got a list"),
        ("record", ["status"], "done", "'status'", "expected one of trained, ok"),
        ("record", ["error"], 3, "'error'", "expected str or null, got 3"),
        ("manifest", ["invocations", 0], "genbench run", "'invocations[0]'", "expected object"),
        ("manifest", ["invocations", 0, "options"], None, "'invocations[0].options'", "expected object, got null"),
        ("verdicts", ["claims", 0, "claim"], "4", "'claims[0].claim'", "expected int, got '4'"),
        ("baseline", ["checks", 0, "value"], "high", "'checks[0].value'", "expected number, got 'high'"),
        ("baseline", ["checks", 0, "direction"], "up", "'checks[0].direction'", "expected one of lower, higher, both"),
        ("baseline", ["checks"], [], "'checks'", "no 'checks'"),
    ],
)
def test_a_wrong_type_is_one_line_naming_the_file_and_the_field(kind, key, value, field, problem, real_file, tmp_path):
    _, doc = real_file[kind]
    inner = doc
    for k in key[:-1]:
        inner = inner[k]
    inner[key[-1]] = value
    path = write(tmp_path, f"{kind}.json", doc)
    with pytest.raises(schema.FieldError) as e:
        LOADERS[kind](path)
    one_line(e, str(path), f"field {field}", problem)


@pytest.mark.parametrize(
    "kind,key",
    [("record", "schema_version"), ("manifest", "schema_version"), ("verdicts", "schema"), ("baseline", "schema")],
)
def test_a_newer_schema_is_one_line_saying_so(kind, key, real_file, tmp_path):
    _, doc = real_file[kind]
    doc[key] = 99
    path = write(tmp_path, f"{kind}.json", doc)
    with pytest.raises(schema.NewerSchemaError) as e:
        LOADERS[kind](path)
    one_line(e, str(path), f"field '{key}'", "version 99 is newer", "update genbench")


def test_extra_keys_are_kept(real_file, tmp_path):
    _, doc = real_file["record"]
    doc["written_by_a_later_version"] = {"x": 1}
    rec = schema.load_record(write(tmp_path, "r.json", doc))
    assert rec.extra["written_by_a_later_version"] == {"x": 1} and rec.raw == doc


def test_a_newer_manifest_is_kept_whole_when_a_run_appends(real_file, tmp_path):
    _, doc = real_file["manifest"]
    doc["schema_version"] = 99
    write(tmp_path, "run.json", doc)
    records.append_invocation(tmp_path, {"command": ["genbench", "run"]})
    after = json.loads((tmp_path / "run.json").read_text())
    assert after["schema_version"] == 99 and after["invocations"] == [
        *doc["invocations"],
        {"command": ["genbench", "run"]},
    ]


def test_gate_on_a_baseline_of_the_wrong_type_is_one_line(run_dir, baseline_path, tmp_path, capsys):
    doc = json.loads(baseline_path.read_text())
    doc["checks"][1]["tolerance"] = "wide"
    path = write(tmp_path, "b.json", doc)
    assert cli.main(["gate", str(run_dir), "--baseline", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and "field 'checks[1].tolerance'" in err, err
