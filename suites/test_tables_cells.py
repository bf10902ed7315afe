"""Tables, report and gate, checked cell by cell against numbers computed here.

The harness's own outputs have no twin to be compared with. The records are written by hand
(the fields bench/runs/runner.py writes: id, experiment, dataset, framework, seed, status,
steps_done, spec, final_losses, metrics, timing), with a value that differs for every
experiment, framework, seed and metric, and one seed that diverged. Every table that
bench.runs.tables.render writes (results, comparison, ablation, report) and every gate verdict is
then compared with NumPy means and sample standard deviations over seeds, cell by cell: the
PyTorch column must hold PyTorch's numbers, a worse value in each direction must fail the gate
and a better one pass. CSVs give the exact numbers; markdown cells are compared to their
printed precision (4 significant digits, 2 for a standard deviation).
"""

from __future__ import annotations

import csv
import json
import math
import re

import numpy as np
import pytest

from bench.checks import gate
from bench.core import registry
from bench.runs import tables

FRAMEWORKS = ("torch", "tensorflow")
SEEDS = (0, 1, 2)
EXPERIMENTS = ("gan", "gan+dropout", "vae")
DIVERGED = ("gan+dropout", "tensorflow", 2)  # this run's losses turned NaN at step 7
GAN_METRICS = ("fid", "kid_mean", "classes_covered", "class_kl", "precision", "recall")
VAE_METRICS = ("test_elbo", "test_recon", "test_kl", "knn_accuracy", "fid", "classes_covered", "class_kl")
LOSSES = {"gan": ("d_loss", "g_loss"), "vae": ("loss", "recon", "kl", "elbo")}


def family(exp):
    return exp.split("+")[0]


def make_values():
    """{(experiment, framework, seed): {"metrics": ..., "final_losses": ..., "timing": ...}}:
    every number distinct; frameworks far apart, so that a swapped column cannot pass."""
    rng = np.random.default_rng(2024)
    base_fid = {"gan": 300.0, "gan+dropout": 250.0, "vae": 120.0}
    out = {}
    for exp in EXPERIMENTS:
        for fw in FRAMEWORKS:
            shift = 1.0 if fw == "torch" else 1.6
            for seed in SEEDS:
                m = {
                    "fid": base_fid[exp] * shift + rng.normal(0, 10),
                    "classes_covered": float(rng.integers(6, 11)),
                    "class_kl": shift * rng.uniform(0.02, 0.4),
                }
                if family(exp) == "gan":
                    m.update(
                        kid_mean=shift * rng.uniform(0.05, 0.3),
                        precision=rng.uniform(0.2, 0.9) / shift,
                        recall=rng.uniform(0.1, 0.8) / shift,
                    )
                else:
                    m.update(
                        test_elbo=-100.0 * shift - rng.uniform(0, 20),
                        test_recon=80.0 * shift + rng.uniform(0, 9),
                        test_kl=20.0 + rng.uniform(0, 5) * shift,
                        knn_accuracy=rng.uniform(0.8, 0.95) / shift,
                    )
                losses = {t: shift * rng.uniform(0.2, 2.0) for t in LOSSES[family(exp)]}
                for t in losses:  # the loss summary the runner puts among the metrics
                    m.update(
                        {
                            f"{t}_mean": losses[t] + 0.01,
                            f"{t}_std": shift * rng.uniform(0.01, 0.3),
                            f"{t}_abs_step": rng.uniform(0.01, 0.1),
                        }
                    )
                m.update(diverged=0.0, diverged_step=-1.0)
                ms = shift * rng.uniform(5.0, 50.0)
                timing = {
                    "ms_per_step": ms,
                    "images_per_s": 64 * 1000.0 / ms,
                    "train_s": 20 * ms / 1000.0,
                    "first_step_ms": 10 * ms,
                }
                if (exp, fw, seed) == DIVERGED:  # what the runner records for a diverged run
                    losses = {t: float("nan") for t in losses}
                    m = {
                        **{f"{t}_{s}": float("nan") for t in losses for s in ("mean", "std", "abs_step")},
                        "diverged": 1.0,
                        "diverged_step": 7.0,
                    }
                out[(exp, fw, seed)] = {"metrics": m, "final_losses": losses, "timing": timing}
    return out


VALUES = make_values()


def record_id(exp, fw, seed, dataset="mnist"):
    return f"{exp}__{dataset}__{fw}__s{seed}"


def jsonable(x):
    """NaN as the string "nan", as bench.runs.records writes it."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {k: jsonable(v) for k, v in x.items()}
    return x


def write_run(run_dir, keys):
    (run_dir / "records").mkdir(parents=True)
    for exp, fw, seed in keys:
        model, stabs = registry.parse_model(exp)
        spec = registry.experiment(model, stabs, profile="smoke", seed=seed)
        v = VALUES[(exp, fw, seed)]
        diverged = (exp, fw, seed) == DIVERGED
        rec = {
            "id": record_id(exp, fw, seed),
            "experiment": exp,
            "dataset": "mnist",
            "framework": fw,
            "seed": seed,
            "status": "diverged" if diverged else "ok",
            "steps_done": 8 if diverged else 20,
            "spec": spec.to_dict(),
            "final_losses": v["final_losses"],
            "metrics": v["metrics"],
            "timing": v["timing"],
            "variant": {"torch": "eager", "tensorflow": "function"}[fw],
            "device": "cpu",
            "profile": "smoke",
            "n_eval": 500,
        }
        (run_dir / "records" / f"{rec['id']}.json").write_text(json.dumps(jsonable(rec), indent=2))
    return run_dir


ALL_KEYS = [(e, f, s) for e in EXPERIMENTS for f in FRAMEWORKS for s in SEEDS]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run_dir = write_run(tmp_path_factory.mktemp("run"), ALL_KEYS)
    # figures for one group: samples from both twins, loss curves from PyTorch only
    for fw in FRAMEWORKS:
        (run_dir / record_id("gan", fw, 0)).mkdir()
        (run_dir / record_id("gan", fw, 0) / "samples_final.png").write_bytes(b"png")
    (run_dir / record_id("gan", "torch", 0) / "loss_curves.png").write_bytes(b"png")
    written = tables.render(run_dir)
    return run_dir, written


def read_csv(path):
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def read_md(path):
    lines = [ln for ln in path.read_text().splitlines() if ln.startswith("|")]
    cells = lambda ln: [c.strip() for c in ln.strip().strip("|").split("|")]  # noqa: E731
    header = cells(lines[0])
    assert set(lines[1].replace("|", "").replace(":", "").strip()) <= {"-", " "}
    return header, [dict(zip(header, cells(ln))) for ln in lines[2:]]


def value_of(exp, fw, seed, column):
    v = VALUES[(exp, fw, seed)]
    if column == "ms/step":
        return v["timing"]["ms_per_step"]
    if column == "img/s":
        return v["timing"]["images_per_s"]
    if column.startswith("final."):
        return v["final_losses"].get(column[len("final.") :])
    return v["metrics"].get(column)


def per_seed(exp, fw, column):
    """The values over seeds that exist (a diverged run has no quality metrics)."""
    vals = [value_of(exp, fw, s, column) for s in SEEDS]
    return np.array([x for x in vals if x is not None], float)


# -- results ------------------------------------------------------------------------------------
def test_render_writes_every_table(run):
    run_dir, written = run
    assert set(written) == {
        "report.md",
        "results.md",
        "results.csv",
        "comparison.md",
        "comparison.csv",
        "ablation.md",
        "ablation.csv",
    }
    assert all(p.parent == run_dir and p.exists() for p in written.values())


def test_results_has_one_row_per_run_and_every_cell_is_that_runs_number(run):
    run_dir, _ = run
    columns, rows = read_csv(run_dir / "results.csv")
    assert columns[:6] == ["experiment", "dataset", "framework", "seed", "status", "steps"]
    # the metrics a reader looks for first, in this order, then everything else
    assert columns[6:12] == ["fid", "kid_mean", "classes_covered", "class_kl", "test_elbo", "test_recon"]
    assert {
        "ms/step",
        "img/s",
        "final.d_loss",
        "final.g_loss",
        "final.loss",
        "final.elbo",
        "precision",
        "recall",
        "knn_accuracy",
        "d_loss_std",
        "diverged",
    } <= set(columns)
    assert sorted((r["experiment"], r["framework"], int(r["seed"])) for r in rows) == sorted(ALL_KEYS)
    checked = 0
    for r in rows:
        key = (r["experiment"], r["framework"], int(r["seed"]))
        assert r["dataset"] == "mnist"
        assert r["status"] == ("diverged" if key == DIVERGED else "ok")
        assert int(r["steps"]) == (8 if key == DIVERGED else 20)
        # the study's trained criterion (bench/runs/trained.py, tested in suites/test_verdict_rules.py)
        assert r["trained"] == ("no (diverged)" if key == DIVERGED else "") or r["trained"].startswith(("yes", "no ("))
        for col in columns[6:]:
            if col == "trained":
                continue
            want = value_of(*key, col)
            if want is None:
                assert r[col] == "", (key, col)  # a metric this run does not have stays empty
            elif math.isnan(want):
                assert math.isnan(float(r[col])), (key, col)
            else:
                assert float(r[col]) == want, (key, col)  # the CSV carries the exact float
                checked += 1
    assert checked > 300
    # the markdown holds the same numbers to its 4 significant digits
    header, md_rows = read_md(run_dir / "results.md")
    assert header == columns
    for r in md_rows:
        key = (r["experiment"], r["framework"], int(r["seed"]))
        for col in ("fid", "class_kl", "ms/step", "final.d_loss", "test_elbo", "precision"):
            want = value_of(*key, col)
            if want is not None and math.isfinite(want):
                assert float(r[col]) == pytest.approx(want, rel=5e-4), (key, col)


# -- comparison ---------------------------------------------------------------------------------
AGG = re.compile(r"(?P<mean>\S+) ± (?P<std>\S+) \(n=(?P<n>\d+)(?P<note>; .*)?\)")


def parse_aggregate(cell):
    m = AGG.fullmatch(cell)
    assert m, f"not 'mean ± std (n=k)': {cell!r}"
    return float(m["mean"]), float(m["std"]), int(m["n"])


def test_comparison_columns_hold_each_frameworks_mean_and_std_over_seeds(run):
    run_dir, _ = run
    columns, rows = read_csv(run_dir / "comparison.csv")
    assert columns == ["experiment", "dataset", "metric", "torch", "tensorflow", "torch/tensorflow"]
    by_key = {(r["experiment"], r["metric"]): r for r in rows}
    assert len(by_key) == len(rows)
    checked = 0
    for exp in EXPERIMENTS:
        for metric in GAN_METRICS if family(exp) == "gan" else VAE_METRICS:
            row = by_key[(exp, metric)]
            assert row["dataset"] == "mnist"
            means = {}
            for fw in FRAMEWORKS:
                vals = per_seed(exp, fw, metric)
                mean, std, n = parse_aggregate(row[fw])
                assert n == len(vals), (exp, metric, fw)
                assert mean == pytest.approx(np.mean(vals), rel=5e-4), (exp, metric, fw)  # 4 significant digits
                assert std == pytest.approx(np.std(vals, ddof=1), rel=5e-2), (exp, metric, fw)  # sample std, 2 digits
                means[fw] = np.mean(vals)
                checked += 1
            assert float(row["torch/tensorflow"]) == pytest.approx(means["torch"] / means["tensorflow"], rel=5e-4)
    assert checked == 2 * (2 * len(GAN_METRICS) + len(VAE_METRICS))
    # the diverged seed has no quality metrics, and its NaN loss summary is not averaged in:
    # n = 2 in the TensorFlow column, whose mean is that of the two finished seeds
    for metric in ("fid", "d_loss_std"):
        mean, _, n = parse_aggregate(by_key[("gan+dropout", metric)]["tensorflow"])
        finished = [value_of("gan+dropout", "tensorflow", s, metric) for s in (0, 1)]
        assert (mean, n) == (pytest.approx(np.mean(finished), rel=5e-4), 2), metric
    # loss summaries are left out but D's oscillation; timing and final losses are compared too
    metrics = {m for _, m in by_key}
    assert "d_loss_std" in metrics and not metrics & {"d_loss_mean", "g_loss_std", "d_loss_abs_step", "diverged_step"}
    for exp in ("gan", "vae"):
        for col in ("ms/step", "final." + LOSSES[exp][0]):
            for fw in FRAMEWORKS:
                mean, std, n = parse_aggregate(by_key[(exp, col)][fw])
                vals = per_seed(exp, fw, col)
                assert (mean, n) == (pytest.approx(np.mean(vals), rel=5e-4), 3)
                assert std == pytest.approx(np.std(vals, ddof=1), rel=5e-2)


def test_comparison_markdown_matches_its_csv(run):
    run_dir, _ = run
    columns, rows = read_csv(run_dir / "comparison.csv")
    header, md_rows = read_md(run_dir / "comparison.md")
    assert header == columns
    assert [[r[c] for c in columns] for r in md_rows] == [[r[c] for c in columns] for r in rows]


# -- ablation -----------------------------------------------------------------------------------
BARE = re.compile(r"(?P<v>\S+) \(bare (?P<bare>\S+)\)")


def test_ablation_puts_each_stabilized_variant_next_to_its_bare_model(run):
    run_dir, _ = run
    columns, rows = read_csv(run_dir / "ablation.csv")
    assert columns[:3] == ["experiment", "dataset", "framework"]
    assert {"fid", "classes_covered", "class_kl", "d_loss_std", "diverged"} <= set(columns)
    assert "test_elbo" not in columns  # no VAE variant in this run
    assert sorted((r["experiment"], r["framework"]) for r in rows) == [
        ("gan+dropout", "tensorflow"),
        ("gan+dropout", "torch"),
    ]

    def kept(exp, fw, metric):  # a diverged seed is counted under "diverged", never averaged elsewhere
        vals = [value_of(exp, fw, s, metric) for s in SEEDS if metric == "diverged" or (exp, fw, s) != DIVERGED]
        return np.array([v for v in vals if v is not None], float)

    for r in rows:
        fw = r["framework"]
        for metric in ("fid", "classes_covered", "class_kl", "diverged", "d_loss_std"):
            m = BARE.fullmatch(r[metric])
            assert m, r[metric]
            assert float(m["v"]) == pytest.approx(np.mean(kept("gan+dropout", fw, metric)), rel=5e-4), (fw, metric)
            assert float(m["bare"]) == pytest.approx(np.mean(kept("gan", fw, metric)), rel=5e-4), (fw, metric)


# -- report -------------------------------------------------------------------------------------
def test_report_shows_each_run_with_pytorch_first_and_its_own_figures(run):
    run_dir, _ = run
    text = (run_dir / "report.md").read_text()
    for exp in EXPERIMENTS:
        for seed in SEEDS:
            assert f"## {exp} on mnist, seed {seed}" in text
    section = text.split("## gan on mnist, seed 0")[1].split("##")[0]
    lines = [ln for ln in section.splitlines() if ln.startswith("|")]
    assert lines[0] == "| figure | torch (ok) | tensorflow (ok) |"
    samples = [ln for ln in lines if ln.startswith("| samples (fixed noise)")]
    assert samples == [
        f"| samples (fixed noise) | ![samples (fixed noise)]({record_id('gan', 'torch', 0)}/samples_final.png)"
        f" | ![samples (fixed noise)]({record_id('gan', 'tensorflow', 0)}/samples_final.png) |"
    ]
    curves = [ln for ln in lines if ln.startswith("| loss curves")]
    assert curves == [f"| loss curves | ![loss curves]({record_id('gan', 'torch', 0)}/loss_curves.png) |  |"]
    diverged = text.split("## gan+dropout on mnist, seed 2")[1].split("##")[0]
    assert "| figure | torch (ok) | tensorflow (diverged) |" in diverged
    for name in ("comparison.md", "results.md", "ablation.md"):
        assert f"]({name})" in text


# -- gate ---------------------------------------------------------------------------------------
def check(exp, fw, metric, value, direction, tolerance):
    return {
        "experiment": exp,
        "dataset": "mnist",
        "framework": fw,
        "metric": metric,
        "value": value,
        "direction": direction,
        "tolerance": tolerance,
    }


def current(exp, fw, metric):
    return float(np.mean(per_seed(exp, fw, metric)))


def gate_cases():
    """(check, expected verdict): for each direction a value just inside the band, just outside
    it on the worse side, and far on the better side; each framework's check from its own mean."""
    cases = []
    for exp, fw, metric, direction in (
        ("gan", "torch", "fid", "lower"),
        ("gan", "tensorflow", "fid", "lower"),
        ("gan", "torch", "class_kl", "lower"),
        ("vae", "tensorflow", "test_elbo", "higher"),
        ("gan", "torch", "classes_covered", "higher"),
        ("gan", "tensorflow", "recall", "higher"),
        ("vae", "torch", "knn_accuracy", "higher"),
        ("gan", "torch", "final.d_loss", "both"),
        ("vae", "tensorflow", "final.kl", "both"),
    ):
        now = current(exp, fw, metric)
        tol = 0.05 * abs(now) + 0.01
        worse = {"lower": 1.0, "higher": -1.0, "both": 1.0}[direction]  # the sign of "now is worse"
        # value = now - worse * d: now sits d beyond the baseline on the worse side
        cases += [
            (check(exp, fw, metric, now - worse * 0.9 * tol, direction, tol), "ok"),
            (check(exp, fw, metric, now - worse * 1.1 * tol, direction, tol), "REGRESSED"),
            (
                check(exp, fw, metric, now + worse * 5.0 * tol, direction, tol),
                "REGRESSED" if direction == "both" else "ok",
            ),
        ]
        if direction == "both":
            cases.append((check(exp, fw, metric, now + 0.9 * tol, direction, tol), "ok"))
    return cases


def test_gate_judges_each_check_by_its_frameworks_mean_and_direction(run):
    run_dir, _ = run
    cases = gate_cases()
    rows = gate.evaluate(run_dir, {"checks": [c for c, _ in cases]})
    assert len(rows) == len(cases)
    for row, (c, verdict) in zip(rows, cases):
        what = f"{c['experiment']}/{c['framework']}/{c['metric']} {c['direction']} value {c['value']:.6g}"
        assert row["current"] == pytest.approx(current(c["experiment"], c["framework"], c["metric"]), rel=1e-12), what
        assert row["delta"] == pytest.approx(row["current"] - c["value"], rel=1e-9, abs=1e-12), what
        assert row["result"].startswith(verdict), (what, row["result"])
        if verdict == "REGRESSED" and c["direction"] != "both":
            assert row["result"] == "REGRESSED: worse (" + ("higher" if c["direction"] == "lower" else "lower") + ")"


def test_gate_fails_on_a_missing_experiment_or_a_diverged_seed(run, tmp_path):
    run_dir, _ = run
    tf_fid = current("gan+dropout", "tensorflow", "fid")  # the two seeds that finished
    checks = [
        check("gan", "torch", "fid", current("gan", "torch", "fid"), "lower", 1.0),
        check("dcgan", "torch", "fid", 100.0, "lower", 1.0),  # not in the run
        check("gan+dropout", "torch", "fid", current("gan+dropout", "torch", "fid"), "lower", 1.0),
        # seed 2 diverged: its two finished seeds alone must not pass for three
        check("gan+dropout", "tensorflow", "fid", tf_fid, "lower", 1e6),
        check("gan+dropout", "tensorflow", "final.d_loss", 1.0, "both", 1e6),
    ]
    rows = gate.evaluate(run_dir, {"checks": checks})
    assert [r["result"] == "ok" for r in rows] == [True, False, True, False, False]
    assert rows[1]["result"] == "REGRESSED: missing from run"
    assert rows[3]["result"] == "REGRESSED: missing in 1 of 3 runs (diverged?)"
    path = tmp_path / "base.json"
    path.write_text(json.dumps({"checks": checks}))
    ok, report = gate.gate(run_dir, path)
    assert not ok and "2/5 checks passed" in report


def test_gate_passes_when_every_check_is_met(run, tmp_path):
    run_dir, _ = run
    checks = [c for c, verdict in gate_cases() if verdict == "ok"]
    path = tmp_path / "base.json"
    path.write_text(json.dumps({"checks": checks}))
    ok, report = gate.gate(run_dir, path)
    assert ok, report
    assert f"{len(checks)}/{len(checks)} checks passed" in report


# What "better" means for each metric, stated from its definition (not read from the code).
LOWER_IS_BETTER = {"fid", "kid_mean", "class_kl", "mode_kl", "iwae_nll"}
HIGHER_IS_BETTER = {
    "classes_covered",
    "modes_covered",
    "high_quality_share",
    "precision",
    "recall",
    "isc_mean",
    "test_elbo",
    "knn_accuracy",
}


def test_baseline_checks_each_metric_in_its_direction_with_the_seed_spread(tmp_path):
    run_dir = write_run(tmp_path / "run", [k for k in ALL_KEYS if k[0] != "gan+dropout"])  # clean runs only
    path = tmp_path / "base.json"
    gate.make_baseline(run_dir, path, losses=True, untrained=False, log=lambda *a: None)
    checks = json.loads(path.read_text())["checks"]
    got = {(c["experiment"], c["framework"], c["metric"]): c for c in checks}
    want = set()
    for exp in ("gan", "vae"):
        for fw in FRAMEWORKS:
            names = set(VALUES[(exp, fw, 0)]["metrics"]) | {f"final.{t}" for t in LOSSES[exp]}
            for name in names:
                if name in LOWER_IS_BETTER | HIGHER_IS_BETTER or name.startswith("final."):
                    want.add((exp, fw, name))
    assert set(got) == want
    for (exp, fw, name), c in got.items():
        direction = "lower" if name in LOWER_IS_BETTER else "higher" if name in HIGHER_IS_BETTER else "both"
        vals = per_seed(exp, fw, name)
        mean, std = np.mean(vals), np.std(vals, ddof=1)
        assert c["direction"] == direction, name
        assert c["value"] == pytest.approx(mean, rel=1e-12)
        assert c["std"] == pytest.approx(std, rel=1e-12) and c["seeds"] == 3
        # one-sided 99.9 % prediction interval for one new run, seed spread pooled over both twins
        twins = [np.asarray(per_seed(exp, f, name), float) for f in FRAMEWORKS]
        dof = sum(len(t) - 1 for t in twins)
        s_p = np.sqrt(sum(((t - t.mean()) ** 2).sum() for t in twins) / dof)
        assert dof == 4 and c["dof"] == 4 and c["pooled_std"] == pytest.approx(s_p, rel=1e-12)
        t_999_4 = 7.173  # Student's t, 4 degrees of freedom, one-sided 0.999 (printed tables)
        half = t_999_4 * s_p * np.sqrt(1 + 1 / 3)
        assert c["tolerance"] == pytest.approx(max(half, 0.1 * abs(mean), 0.05), rel=1e-4)
    ok, report = gate.gate(run_dir, path)  # a run passes its own baseline
    assert ok, report


# -- the checks can fail -------------------------------------------------------------------------
def test_swapped_framework_columns_are_caught(tmp_path, monkeypatch):
    """A comparison table whose PyTorch column holds TensorFlow's numbers (and the reverse)."""
    original = tables.flat_row
    other = {"torch": "tensorflow", "tensorflow": "torch"}
    monkeypatch.setattr(tables, "flat_row", lambda rec: {**original(rec), "framework": other[rec["framework"]]})
    run_dir = write_run(tmp_path / "run", ALL_KEYS)
    with pytest.raises(AssertionError):
        test_comparison_columns_hold_each_frameworks_mean_and_std_over_seeds((run_dir, tables.render(run_dir)))
