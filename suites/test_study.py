"""The study's statistics and rules (bench/runs/study.py), against references computed here.

- The Welch interval from its textbook formula (Welch-Satterthwaite degrees of freedom, NumPy
  moments, the t quantile from scipy.stats.t), not from scipy's ttest_ind that the code uses;
- the loss-curve metrics from curves whose answer is known in closed form;
- the verdict rules on effects whose intervals sit above, below and across zero;
- `verdicts` on a fake run folder of records written with the project's own record writer,
  whose groups differ by construction.
"""

import json
import math
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from bench.cli import main as genbench
from bench.runs import records, study, study_metrics
from bench.runs import stats as bstats


def welch_by_hand(a, b, level=0.95):
    a, b = np.asarray(a, float), np.asarray(b, float)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = stats.t.ppf(0.5 + level / 2, dof) * math.sqrt(va + vb)
    d = a.mean() - b.mean()
    return d, d - half, d + half


def test_welch_interval_equals_the_textbook_formula():
    a, b = [1.0, 2.5, 2.0, 3.1], [0.2, 0.9, 0.4]
    got = bstats.welch(a, b)
    assert (got.effect, got.lo, got.hi) == pytest.approx(welch_by_hand(a, b), rel=1e-10)
    # and its p-value is scipy's Welch test, which the code does not call
    assert got.p0() == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-10)


def test_t_interval_equals_the_textbook_formula():
    v = [0.3, 0.5, 0.45, 0.2, 0.35]
    got = bstats.one_sample(v)
    half = stats.t.ppf(0.975, 4) * np.std(v, ddof=1) / math.sqrt(5)
    assert (got.effect, got.lo, got.hi) == pytest.approx((np.mean(v), np.mean(v) - half, np.mean(v) + half), rel=1e-12)


@pytest.mark.parametrize(
    "kind,effect,p,p_eq,want",
    [
        ("diff", 1.0, 0.01, float("nan"), "supported"),
        ("diff", -1.0, 0.01, float("nan"), "contradicted"),
        ("diff", 0.5, 0.2, float("nan"), "inconclusive"),
        ("diff", 0.5, 0.2, 0.01, "no practical effect"),
        ("diff", 0.01, 0.01, 0.01, "no practical effect"),  # real but smaller than the margin
        ("one", float("nan"), float("nan"), float("nan"), "inconclusive"),  # one seed: no test
        ("flat", 0.01, 1.0, 0.01, "supported"),
        ("flat", 0.2, 0.01, 1.0, "contradicted"),
        ("flat", 0.04, 0.5, 0.3, "inconclusive"),
    ],
)
def test_verdict_rules(kind, effect, p, p_eq, want):
    assert study.row_verdict(kind, effect, p, p_eq, 0.05) == want


def test_claim_verdict_combines_rows():
    assert study.claim_verdict(["supported", "supported"]) == "supported"
    assert study.claim_verdict(["supported", "inconclusive"]) == "inconclusive"
    assert study.claim_verdict(["supported", "contradicted"]) == "contradicted"
    assert study.claim_verdict(["no practical effect", "no practical effect"]) == "no practical effect"
    assert study.claim_verdict(["supported", "not judged: failed to train (3 of 3)"]) == "supported"
    assert study.claim_verdict(["not judged at this budget"]) == "not judged"
    assert study.claim_verdict([]) == "inconclusive"


def test_loss_curve_metrics_known_answers():
    n = 1000
    t = np.arange(n, dtype=float)
    # exponential decay to a floor: dropped by (first - floor)/first, flat at the end
    curve = 100.0 + 400.0 * np.exp(-t / 50.0)
    first, last = curve[:10].mean(), curve[-100:].mean()
    assert study_metrics.relative_drop(curve) == pytest.approx((first - last) / first, rel=1e-12)
    assert abs(study_metrics.relative_drift(curve)) < 1e-6
    # a straight line still moving: the last tenth's mean is 100 below the tenth before, against
    # |mean(first 10) - mean(last 100)| = |-4.5 + 949.5| = 945 overall
    assert study_metrics.relative_drift(-t) == pytest.approx(-100.0 / 945.0, rel=1e-12)
    assert study_metrics.relative_drop(np.exp(t / n)) < 0  # a rising curve "dropped" by a negative share
    # oscillation: a smooth ramp has none; a ramp plus +-1 alternation over a spread of 10
    ramp = np.linspace(0.0, 10.0, n)
    assert study_metrics.oscillation_index(ramp) < 1e-9
    jag = ramp + np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    w = n // 50
    smooth = np.convolve(jag, np.ones(w) / w, mode="valid")
    spread = np.percentile(smooth, 95) - np.percentile(smooth, 5)
    assert study_metrics.oscillation_index(jag) == pytest.approx(1.0 / spread, rel=1e-3)
    assert study_metrics.oscillation_index(3.0 * jag) == pytest.approx(
        study_metrics.oscillation_index(jag), rel=1e-12
    )  # scale-free


CODE = "c0de" * 16
# five seeds a group: the shipped claims file judges no PyTorch row on fewer (min_seeds)
DCGAN_FID, SN_FID = [100.0, 110.0, 105.0, 108.0, 102.0], [60.0, 64.0, 61.0, 63.0, 62.0]


def fake_study(tmp_path, values, metric="fid", steps=6000, dataset="mnist"):
    """records for {spec name: [metric value per seed]}, both frameworks, one code version."""
    for name, vals in values.items():
        for fw in ("torch", "tensorflow"):
            for seed, v in enumerate(vals):
                rid = f"{name}__{dataset}__{fw}__s{seed}__00000000"
                rec = {
                    "id": rid,
                    "experiment": name,
                    "dataset": dataset,
                    "framework": fw,
                    "seed": seed,
                    "status": "ok",
                    "spec": {"steps": steps},
                    "metrics": {metric: v, "class_kl": 0.1},
                    "timing": {"wall_s": 10.0, "ms_per_step": 5.0},
                    "steps_done": steps,
                    "code_hash": CODE,
                }
                records.write_record(tmp_path / "records" / f"{rid}.json", rec)
    return tmp_path


def test_verdicts_on_a_fake_study(tmp_path):
    run = fake_study(tmp_path, {"dcgan": DCGAN_FID, "dcgan+spectral-norm": SN_FID})
    result = study.write_verdicts(run)
    c4 = next(c for c in result["claims"] if c["claim"] == 4)
    fid = [r for r in c4["rows"] if r["metric"] == "fid"]
    assert len(fid) == 2 and {r["framework"] for r in fid} == {"torch", "tensorflow"}
    d, lo, hi = welch_by_hand(DCGAN_FID, SN_FID)  # control - treatment: lower is better
    for r in fid:
        assert r["effect"] == pytest.approx(d) and r["ci"] == pytest.approx([lo, hi])
        assert r["verdict"] == "supported" and r["n"] == [5, 5] and r["seeds"] == [0, 1, 2, 3, 4]
        assert r["failed_to_train"] == {"treatment": [0, 5], "control": [0, 5]} and r["correction"] == "holm"
    # equal class KL in both groups: exactly no difference, inside the margin: no practical effect;
    # the sharpness gap is not recorded: not judged; so the claim is inconclusive
    kl = [r for r in c4["rows"] if r["metric"] == "class_kl"]
    assert {r["verdict"] for r in kl} == {"no practical effect"}
    assert {r["verdict"] for r in c4["rows"] if r["metric"] == "sharpness_gap"} == {"not judged: no values"}
    assert c4["verdict"] == {"tensorflow/mnist": "inconclusive", "torch/mnist": "inconclusive"}
    assert c4["frameworks_agree"] == {"mnist": True}
    claims_toml = Path(__file__).resolve().parents[1] / "bench" / "runs" / "claims.toml"
    shipped = tomllib.loads(claims_toml.read_text())["claim"][3]["row"]
    assert c4["datasets"] == list(dict.fromkeys(d for row in shipped for d in row["datasets"]))
    saved = json.loads((run / "study" / "verdicts.json").read_text())
    assert saved["schema"] == study.SCHEMA and len(saved["claims"]) == 7 and saved["correction"] == "holm"
    assert saved["claims_file"] == "bench/runs/claims.toml (shipped)"  # no machine's path in a committed file
    assert saved["code"]["versions"] == {CODE[:12]: 20} and not saved["code"]["mixed"]
    md = (run / "study" / "verdicts.md").read_text()
    assert "| 4. Spectral normalization" in md and "Holm" in md
    assert_tables_keep_their_columns(md)  # labels such as |log(sharpness / real)| hold a '|'
    # a planted swap of treatment and control turns the verdict round
    worse = fake_study(tmp_path / "swap", {"dcgan+spectral-norm": DCGAN_FID, "dcgan": SN_FID})
    rows = [r for c in study.verdicts(worse)["claims"] if c["claim"] == 4 for r in c["rows"] if r["metric"] == "fid"]
    assert {r["verdict"] for r in rows} == {"contradicted"}
    # below the working budget (6000 steps for the DCGAN) the rows are not judged
    short = fake_study(tmp_path / "short", {"dcgan": DCGAN_FID, "dcgan+spectral-norm": SN_FID}, steps=1000)
    rows = [r for c in study.verdicts(short)["claims"] if c["claim"] == 4 for r in c["rows"]]
    assert {r["verdict"] for r in rows} == {"not judged at this budget"}
    assert "working budget 6000" in rows[0]["note"]


def test_study_matrix_and_budgets():
    specs = study.study_specs(("ring8", "mnist"), seeds=(0, 1), budget="small")
    names = [(s.dataset, s.name) for s in specs]
    assert len(specs) == 2 * (len(study.MIXTURE_MODELS) + len(study.IMAGE_MODELS))
    assert names[0] == ("ring8", "gan") and names[-1] == ("mnist", "wgan-gp")
    steps = {s.name: s.steps for s in specs if s.dataset == "mnist"}
    assert steps["dcgan"] == study.BUDGETS["small"]["dcgan"] and steps["vae"] == study.BUDGETS["small"]["vae"]
    with pytest.raises(Exception, match="unknown budget"):
        study.study_specs(budget="huge")


def test_the_working_budget_reaches_every_row_of_the_shipped_claims():
    from bench.runs import claims

    specs = study.study_specs(seeds=(0,), budget="working")
    steps = {(s.name, s.dataset): s.steps for s in specs}
    small = {(s.name, s.dataset): s.steps for s in study.study_specs(seeds=(0,), budget="small")}
    judged_small = 0
    for claim in claims.load().claims:
        for row in claim.rows:
            for ds in row.datasets:
                for arm, budget in zip((row.treatment, row.control), row.budget):
                    if arm is None:
                        continue
                    assert (arm, ds) in steps, (claim.number, row.label, arm, ds)  # the matrix trains every arm
                    assert steps[(arm, ds)] >= budget, (claim.number, row.label, arm, ds)
                    judged_small += small[(arm, ds)] >= budget
    # planted check: the small budget leaves DCGAN and WGAN-GP arms below their working budget
    assert small[("dcgan", "mnist")] < 6000 and judged_small < sum(
        1 for c in claims.load().claims for r in c.rows for _ in r.datasets for a in (r.treatment, r.control) if a
    )


def test_stacked_mnist_counts_modes_from_at_least_10000_samples():
    from bench.core import registry

    specs = study.study_specs(("mnist", "stacked-mnist"), seeds=(0,))
    parts = dict(study.by_profile(specs))
    assert {s.dataset for s in parts[study.STACKED_PROFILE]} == {"stacked-mnist"}
    assert {s.dataset for s in parts[study.STUDY_PROFILE]} == {"mnist"}
    assert registry.PROFILES[study.STACKED_PROFILE]["n_eval"] >= 10000
    # the reachable count: distinct modes hit by n uniform draws over 1000, by simulation here
    rng = np.random.default_rng(0)
    for n, lo, hi in ((2000, 855, 875), (10000, 999, 1000)):
        sims = [len(np.unique(rng.integers(0, 1000, n))) for _ in range(200)]
        assert abs(np.mean(sims) - study.expected_modes(n)) < 4 * np.std(sims) / math.sqrt(200) + 1e-9
        assert lo < study.expected_modes(n) <= hi
    # 2000 samples cannot show a uniform generator's 1000 modes: on average it reaches 865
    assert study.expected_modes(registry.PROFILES["study"]["n_eval"]) < 866
    assert study.expected_modes(study.STACKED_N_EVAL) > 999.9


def test_study_command_bad_input_and_verdicts_only(tmp_path, capsys):
    assert genbench(["study", "--datasets", "mnistt", "--out", str(tmp_path)]) == 2
    assert "did you mean 'mnist'" in capsys.readouterr().err
    assert genbench(["study", "--shard", "2/2", "--out", str(tmp_path)]) == 2
    assert genbench(["study", "--verdicts-only", "--out", str(tmp_path / "empty")]) == 2
    run = fake_study(tmp_path / "run", {"vae": [1.0, 2.0, 3.0]})
    assert genbench(["study", "--verdicts-only", "--out", str(run)]) == 0
    assert (run / "study" / "verdicts.json").exists()


def test_loss_curve_rows_are_kept_in_curves_json_and_recomputed_without_the_logs(tmp_path):
    run = fake_study(tmp_path, {"dcgan": [1.0] * 5, "wgan-gp": [1.0] * 5})
    rng = np.random.default_rng(0)
    for rec in records.read_records(run):
        n = 400
        if rec["experiment"] == "dcgan":  # BCE: jitter around a constant
            d = 1.2 + 0.1 * rng.standard_normal(n)
        else:  # Wasserstein: a long smooth move with a little noise
            d = -np.linspace(0, 5, n) + 0.01 * rng.standard_normal(n)
        (run / rec["id"]).mkdir()
        rows = "\n".join(f"{i + 1},{0.01 * i},{v}" for i, v in enumerate(d))
        (run / rec["id"] / "losses.csv").write_text("step,wall_s,d_loss\n" + rows + "\n")
    first = study.write_verdicts(run)
    c2 = next(c for c in first["claims"] if c["claim"] == 2)
    assert c2["verdict"] == {"tensorflow/mnist": "supported", "torch/mnist": "supported"}
    for rec in records.read_records(run):
        (run / rec["id"] / "losses.csv").unlink()
    again = study.verdicts(run)
    assert json.dumps(records.jsonable(again)) == json.dumps(records.jsonable(first))


def test_a_record_written_by_another_shard_after_the_scan_is_reused(tmp_path):
    from bench.runs.matrix import current_record as _current_record

    run = fake_study(tmp_path, {"vae": [1.0]})
    rid = "vae__mnist__torch__s0__00000000"
    rec = _current_record(run, rid, existing={})  # not in the start-of-run scan, but on disk now
    assert rec is not None and rec["id"] == rid
    assert _current_record(run, "vae__mnist__torch__s9__00000000", existing={}) is None


def test_the_working_plan_seeds_recipe_and_order():
    from collections import Counter

    from bench.core import registry

    pairs = study.study_plan(budget="working")
    n = Counter((s.dataset, s.name, fw) for s, fw in pairs)
    # at least 5 seeds per group in the primary framework and 3 in the other; 10 / 5 for the cheap ones
    for (ds, name, fw), k in n.items():
        assert k >= (5 if fw == "torch" else 3), (ds, name, fw, k)
    assert n[("mnist", "vae", "torch")] == 10 and n[("mnist", "vae", "tensorflow")] == 5
    assert n[("mnist", "dcgan", "torch")] == 5 and n[("mnist", "dcgan", "tensorflow")] == 3
    # the parts left out on the CPU: the DCGANs on Fashion-MNIST and WGAN-GP on images at 6000 steps
    assert not any(s.dataset == "fashion-mnist" and s.architecture == "dcgan" for s, _ in pairs)
    assert not any(s.name == "wgan-gp" and s.dataset in study.IMAGES for s, _ in pairs)
    # cheap kinds first: every mixture and MLP run is planned before the first DCGAN
    first_dcgan = next(i for i, (s, _) in enumerate(pairs) if s.architecture == "dcgan")
    assert all(s.architecture != "dcgan" for s, _ in pairs[:first_dcgan])
    assert all(s.architecture == "dcgan" for s, _ in pairs[first_dcgan:])
    # the MLP GAN recipe: lr and batch size only; the weight-decay stabilizer's decay is kept
    wd = next(s for s, _ in pairs if s.name == "gan+weight-decay" and s.dataset == "mnist")
    catalog_wd = registry.experiment("gan", ("weight-decay",), dataset="mnist")
    assert (wd.g_optimizer.lr, wd.d_optimizer.lr, wd.batch_size) == (1e-3, 1e-3, 128)
    assert wd.g_optimizer.weight_decay == catalog_wd.g_optimizer.weight_decay > 0
    assert wd.g_optimizer.kind == catalog_wd.g_optimizer.kind
    ring = next(s for s, _ in pairs if s.name == "gan" and s.dataset == "ring8")
    assert ring == registry.experiment("gan", (), dataset="ring8", profile="study", seed=ring.seed, steps=ring.steps)
    # the gradient penalty on the mixtures at weight 1; on images the catalog's 10
    gp = {(s.dataset, s.gp_lambda) for s, _ in pairs if "gradient-penalty" in s.name}
    catalog_gp = registry.experiment("gan", ("gradient-penalty",), dataset="ring8")
    assert catalog_gp.gp_lambda == 10.0 and catalog_gp.gradient_penalty
    assert gp == {("ring8", 1.0), ("grid25", 1.0), ("mnist", 10.0), ("fashion-mnist", 10.0), ("stacked-mnist", 10.0)}
    # split for the matrix: each spec once, with the frameworks it runs in
    specs, fws = study.split_plan(pairs)
    assert len(specs) == len(set(specs)) == n.total() - sum(1 for s, fw in pairs if fw == "tensorflow") and sum(
        len(fws(s)) for s in specs
    ) == len(pairs)
    # --seeds replaces the plan: the same seeds everywhere, nothing skipped
    given = Counter((s.dataset, fw) for s, fw in study.study_plan(("fashion-mnist",), [0, 1], "working"))
    assert given[("fashion-mnist", "torch")] == given[("fashion-mnist", "tensorflow")] == 2 * len(study.IMAGE_MODELS)


def test_the_dcgans_on_images_run_under_the_curve_profile():
    from bench.core import registry

    specs = study.study_specs(("ring8", "mnist", "stacked-mnist"), seeds=(0,), budget="working")
    parts = dict(study.by_profile(specs))
    curve = parts[study.CURVE_PROFILE]
    assert {(s.dataset, s.architecture) for s in curve} == {("mnist", "dcgan")}
    assert {s.name for s in curve} >= {"dcgan", "dcgan+spectral-norm", "dcgan+label-smoothing-one"}
    assert all(s.dataset != "mnist" or s.architecture != "dcgan" for s in parts[study.STUDY_PROFILE])
    every = registry.PROFILES[study.CURVE_PROFILE]["eval_every"]
    # checkpoints at the working budget's steps, scored as the other groups are (same sample count)
    assert every > 0 and study.BUDGETS["working"]["dcgan"] % every == 0
    assert registry.PROFILES[study.CURVE_PROFILE]["n_eval"] == registry.PROFILES[study.STUDY_PROFILE]["n_eval"]
    # pairs keep their frameworks through the split
    pairs = study.study_plan(("mnist",), budget="working")
    split = dict(study.by_profile(pairs))
    assert sum(len(v) for v in split.values()) == len(pairs)
    assert {fw for s, fw in split[study.CURVE_PROFILE]} == {"torch", "tensorflow"}


def test_rows_are_read_again_at_earlier_budgets_from_the_runs_curves(tmp_path):
    """A run of the curve profile carries its metrics every few hundred steps; the verdicts are
    recomputed at half and three quarters of each row's working budget from those points. Planted:
    spectral norm is worse at 3000 steps and better at 6000."""
    early = {"dcgan": [100.0, 104.0, 102.0, 101.0, 103.0], "dcgan+spectral-norm": [130.0, 128.0, 133.0, 131.0, 129.0]}
    final = {"dcgan": DCGAN_FID, "dcgan+spectral-norm": SN_FID}
    run = fake_study(tmp_path, final)
    for path in (run / "records").glob("*.json"):
        rec = json.loads(path.read_text())
        v = early[rec["experiment"]][rec["seed"]]
        rec["curve"] = [
            {"step": 3000, "fid": v, "class_kl": 0.1, "classes_covered": 10.0},
            {"step": 4500, "fid": v - 1.0, "class_kl": 0.1, "classes_covered": 10.0},
        ]
        records.write_record(path, rec)
    result = study.write_verdicts(run)
    main = [r for c in result["claims"] if c["claim"] == 4 for r in c["rows"] if r["metric"] == "fid"]
    assert {r["verdict"] for r in main} == {"supported"} and {r["steps"] for r in main} == {6000}
    views = {v["fraction"]: v["rows"] for v in result["budget_views"]}
    assert set(views) == {0.5, 0.75}
    half = [r for r in views[0.5] if r["claim"] == 4 and r["metric"] == "fid"]
    assert len(half) == 2 and {r["steps"] for r in half} == {3000}
    d, lo, hi = welch_by_hand(early["dcgan"], early["dcgan+spectral-norm"])  # control - treatment
    for r in half:
        assert r["effect"] == pytest.approx(d) and r["ci"] == pytest.approx([lo, hi])
        assert d < 0 and r["verdict"] == "contradicted"
    three_quarters = [r for r in views[0.75] if r["claim"] == 4 and r["metric"] == "fid"]
    assert {r["steps"] for r in three_quarters} == {4500}
    # no loss-curve rows and no failure-rate rows in a view; without curves, no view at all
    assert all(":" not in r["metric"] and r["kind"] != "failure_rate" for v in views.values() for r in v)
    plain = study.write_verdicts(fake_study(tmp_path / "plain", final))
    assert plain["budget_views"] == []
    # verdicts.md and the page show them beside the main verdict
    md = (run / "study" / "verdicts.md").read_text()
    assert "## As training goes on" in md and "at 3000: contradicted" in md and "at 6000: supported" in md
    from bench.runs import report

    page = report.write_report(run).read_text(encoding="utf-8")
    table = page.split('id="views"', 2)[2].split("</table>", 1)[0]
    assert table.count("<tr>") == 1 + len({(r["claim"], r["framework"], r["label"]) for v in views.values() for r in v})


def test_the_grids_behind_the_study_settings_contain_the_chosen_settings():
    """tools/study_grids.py reruns the two grids of docs/study.md; the settings the study uses
    (MLP_RECIPE, MIXTURE_GP_LAMBDA) are points of those grids, and the catalog's defaults too."""
    import importlib.util

    from bench.core import registry

    path = Path(__file__).resolve().parents[1] / "tools" / "study_grids.py"
    spec = importlib.util.spec_from_file_location("study_grids", path)
    grids = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(grids)
    mlp = [s for _, s in grids.mlp_grid()]
    assert len(mlp) == 6 and all(s.steps == 3000 and s.seed == 0 and s.dataset == "mnist" for s in mlp)
    points = {(s.g_optimizer.kind, s.g_optimizer.lr, s.batch_size) for s in mlp}
    catalog = registry.experiment("gan", (), dataset="mnist")
    assert (catalog.g_optimizer.kind, catalog.g_optimizer.lr, catalog.batch_size) in points
    assert (catalog.g_optimizer.kind, study.MLP_RECIPE["lr"], study.MLP_RECIPE["batch_size"]) in points
    gp = [s for _, s in grids.gp_grid()]
    assert len(gp) == 24 and {s.dataset for s in gp} == {"ring8", "grid25"}
    assert {s.gp_lambda for s in gp} == {0.1, 1.0, 10.0} and study.MIXTURE_GP_LAMBDA in {s.gp_lambda for s in gp}
    ring = registry.experiment("gan", ("gradient-penalty",), dataset="ring8")
    assert ring.g_optimizer.lr in {s.g_optimizer.lr for s in gp}  # the mixtures' own learning rate is a point


def test_every_loss_curve_metric_is_kept_for_claims_written_later(tmp_path):
    """write_verdicts stores every loss-curve metric of every term (study/curves.json), so a
    claims file that reads a loss curve judges the committed records after the logs are gone."""
    import shutil

    from bench.runs import study_metrics

    run = fake_study(tmp_path, {"dcgan": [100.0, 110.0, 105.0]})
    rng = np.random.default_rng(0)
    for path in (run / "records").glob("*.json"):
        rid = path.stem
        (run / rid).mkdir()
        x = np.linspace(0, 1, 400)
        with open(run / rid / "losses.csv", "w") as f:
            f.write("step,wall_s,d_loss,g_loss\n")
            for i, v in enumerate(x):
                f.write(f"{i},{i * 0.01},{1 - v + 0.01 * rng.standard_normal()},{v}\n")
    study.write_verdicts(run)
    cached = json.loads((run / "study" / study_metrics.CURVES_FILE).read_text())
    assert len(cached) == 6
    for rid, entry in cached.items():
        assert set(entry) == {f"{k}:{t}" for k in study_metrics.CURVE_METRICS for t in ("d_loss", "g_loss")}
        series = study_metrics.read_losses(run / rid / "losses.csv")
        assert entry["drop:g_loss"] == pytest.approx(study_metrics.relative_drop(series["g_loss"]))
    for rid in cached:
        shutil.rmtree(run / rid)
    again = study.write_verdicts(run)  # the logs are gone: the cache answers
    assert json.loads((run / "study" / study_metrics.CURVES_FILE).read_text()) == cached
    assert again["claims"]


def assert_tables_keep_their_columns(md: str) -> None:
    """Every row of every Markdown table has its header's number of cells (a '|' inside a cell
    escaped as '\\|')."""
    table: list[int] = []
    for line in md.splitlines() + [""]:
        if line.startswith("|"):
            table.append(len(re.split(r"(?<!\\)\|", line)))
        elif table:
            assert len(set(table)) == 1, f"a Markdown table with {sorted(set(table))} cells a row"
            table = []


def test_a_planted_pipe_in_a_cell_is_caught():
    with pytest.raises(AssertionError, match="cells a row"):
        assert_tables_keep_their_columns("| a | b |\n|---|---|\n| KL(p || q) | 1 |\n")
    assert_tables_keep_their_columns("| a | b |\n|---|---|\n| KL(p \\|\\| q) | 1 |\n")


def test_an_arm_the_working_plan_leaves_out_is_not_judged_at_this_budget(tmp_path):
    """The working plan trains no DCGAN on Fashion-MNIST and no WGAN-GP on images (2 CPU cores):
    their rows say so instead of vanishing; an arm the plan trains but the folder lacks stays
    absent (not part of this run)."""
    # the plan by hand: PLAN_SKIP and the kinds with no seeds
    assert study.left_out("dcgan+spectral-norm", "fashion-mnist") and study.left_out("wgan-gp", "mnist")
    assert not study.left_out("dcgan", "mnist") and not study.left_out("gan", "fashion-mnist")
    assert not study.left_out("dcgan", "stacked-mnist") and not study.left_out("gan", "ring8")
    run = fake_study(tmp_path, {"vae": [200.0] * 5, "gan": [80.0] * 5}, dataset="fashion-mnist")
    result = study.write_verdicts(run)
    c5 = next(c for c in result["claims"] if c["claim"] == 5)
    dcgan_rows = [r for r in c5["rows"] if r["treatment"].startswith("dcgan")]
    assert len(dcgan_rows) == 8  # label smoothing and spectral norm x FID and class KL x 2 frameworks
    for r in dcgan_rows:
        assert r["verdict"] == "not judged at this budget" and r["n"] == [0, 0]
        assert "does not train it on fashion-mnist" in r["note"] and "working budget 6000" in r["note"]
    # the MLP rows whose treatment has no records are absent, as before
    assert not [r for r in c5["rows"] if r["treatment"] == "gan+weight-decay"]
    md = (run / "study" / "verdicts.md").read_text()
    assert "| - | not judged at this budget |" in md
    # on MNIST the plan trains the DCGAN: a folder without it has no DCGAN row there
    run = fake_study(tmp_path / "mnist", {"vae": [200.0] * 5, "gan": [80.0] * 5})
    c5 = next(c for c in study.verdicts(run)["claims"] if c["claim"] == 5)
    assert not [r for r in c5["rows"] if r["treatment"].startswith("dcgan")]
