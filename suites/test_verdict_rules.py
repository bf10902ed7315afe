"""The study's verdict rules on planted records, each against a reference worked out here:

- the trained criterion (bench/runs/trained.py), its chance level found by minimising the BCE
  of a constant discriminator numerically, not by the closed form the code uses;
- a group that mostly failed to train is "not judged", never "contradicted";
- an effect whose interval lies inside the margin is "no practical effect";
- framework agreement on the difference of the effects (-4 and -4 agree; -4 and +4 differ);
- Holm and Benjamini-Hochberg adjust a planted borderline row exactly as by hand;
- the smallest detectable effect has 80 % power by scipy's noncentral t computed here;
- the F interval of a spread ratio, Newcombe's interval of a rate difference;
- records of mixed code versions are refused; the code hash against a hand hash of a tiny tree.
"""

import hashlib
import json
import math

import numpy as np
import pytest
from scipy import optimize, stats

from bench.cli import main as genbench
from bench.runs import claims, provenance, records, study, trained
from bench.runs import stats as bstats

CODE = "c0de" * 16
BCE_SPEC = {
    "family": "gan",
    "loss": "non-saturating",
    "label_smoothing": 0.0,
    "label_smoothing_sides": "none",
    "steps": 3000,
}


def record(run, name, fw, seed, dataset="ring8", metrics=None, d_loss=1.0, spec=None, status="ok", code=CODE):
    rid = f"{name}__{dataset}__{fw}__s{seed}__{seed:08d}"
    rec = {
        "id": rid,
        "experiment": name,
        "dataset": dataset,
        "framework": fw,
        "seed": seed,
        "status": status,
        "spec": {**BCE_SPEC, **(spec or {})},
        "final_losses": {"d_loss": d_loss, "g_loss": 1.0},
        "metrics": metrics or {},
        "timing": {"wall_s": 1.0, "ms_per_step": 1.0},
        "steps_done": 3000,
    }
    if code is not None:
        rec["code_hash"] = code
    records.write_record(run / "records" / f"{rid}.json", rec)
    return rec


def one_claim(*rows, correction="holm", min_seeds=None):
    base = {
        "kind": "diff",
        "direction": "higher",
        "datasets": ["ring8"],
        "budget": 3000,
        "margin": 0.0,
        "treatment": "gan+gradient-penalty",
        "control": "gan",
    }
    return claims.parse(
        {
            "schema": 1,
            "correction": correction,
            **({"min_seeds": min_seeds} if min_seeds else {}),
            "claim": [{"number": 1, "title": "planted", "row": [{**base, **r} for r in rows]}],
        },
        "planted.toml",
    )


# -- the trained criterion --------------------------------------------------------------------
def chance_by_minimisation(t_real, t_fake):
    def loss(p):
        return -(t_real * math.log(p) + (1 - t_real) * math.log(1 - p)) - (
            t_fake * math.log(p) + (1 - t_fake) * math.log(1 - p)
        )

    return optimize.minimize_scalar(loss, bounds=(1e-9, 1 - 1e-9), method="bounded", options={"xatol": 1e-12}).fun


def test_chance_level_of_a_bce_discriminator():
    assert trained.chance_d_loss() == pytest.approx(math.log(4), rel=1e-12)
    assert trained.chance_d_loss(0.9, 0.0) == pytest.approx(chance_by_minimisation(0.9, 0.0), abs=1e-9)
    assert trained.chance_d_loss(0.9, 0.1) == pytest.approx(chance_by_minimisation(0.9, 0.1), abs=1e-9)


def rec_of(dataset="ring8", d_loss=1.0, status="ok", **metrics):
    return {
        "status": status,
        "dataset": dataset,
        "spec": dict(BCE_SPEC),
        "final_losses": {"d_loss": d_loss},
        "metrics": metrics or {"x": 1.0},
    }


def test_trained_criterion_on_planted_records():
    log4 = math.log(4)
    assert trained.trained(rec_of(d_loss=log4 - 1e-4, high_quality_share=0.5)) is True
    assert trained.trained(rec_of(d_loss=log4 + 1e-4, high_quality_share=0.5)) is False  # worse than chance
    assert trained.trained(rec_of(d_loss=float("nan"), high_quality_share=0.5)) is False
    # one-sided label smoothing: chance is 1.3763, so 1.38 (< log 4) already fails
    smoothed = rec_of(d_loss=1.38, high_quality_share=0.5)
    smoothed["spec"].update(label_smoothing=0.1, label_smoothing_sides="one")
    assert trained.trained(smoothed) is False
    # a Wasserstein critic's loss has no chance level
    wgan = rec_of(d_loss=5.0, high_quality_share=0.5)
    wgan["spec"]["loss"] = "wgan-gp"
    assert trained.trained(wgan) is True
    # 2-D mixtures: some samples of high quality
    assert trained.trained(rec_of(high_quality_share=0.009)) is False
    assert trained.trained(rec_of(high_quality_share=0.011)) is True
    # MNIST: 9 classes and FID at most half of the untrained 660
    assert trained.trained(rec_of("mnist", classes_covered=9.0, fid=329.0)) is True
    assert trained.trained(rec_of("mnist", classes_covered=8.0, fid=100.0)) is False
    assert trained.trained(rec_of("mnist", classes_covered=10.0, fid=331.0)) is False
    assert trained.trained(rec_of("fashion-mnist", classes_covered=10.0, fid=400.0)) is True  # no untrained FID there
    vae = rec_of("mnist", classes_covered=10.0, fid=400.0)
    vae["spec"] = {"family": "vae", "loss": "elbo"}
    assert trained.trained(vae) is True  # the FID rule is for GANs
    assert trained.trained(rec_of(status="diverged")) is False
    assert trained.trained(rec_of(status="failed")) is None  # no evaluation: neither
    assert trained.cell(rec_of(d_loss=2.0, high_quality_share=0.0)).startswith("no (final D loss 2 worse than chance")


# -- verdicts -----------------------------------------------------------------------------------
def test_a_group_that_failed_to_train_is_not_judged_never_contradicted(tmp_path):
    for fw in ("torch", "tensorflow"):
        for s in range(3):
            record(tmp_path, "gan", fw, s, metrics={"modes_covered": 8.0, "high_quality_share": 0.5})
            # the treatment covers no mode (a contradiction if counted) and 2 of 3 runs fail to train
            record(
                tmp_path,
                "gan+gradient-penalty",
                fw,
                s,
                d_loss=2.0 if s < 2 else 1.0,
                metrics={"modes_covered": 0.0 if s < 2 else 1.0, "high_quality_share": 0.5},
            )
    cf = one_claim({"label": "modes", "metric": "modes_covered", "margin": 1.0})
    c = study.verdicts(tmp_path, claims_file=cf)["claims"][0]
    assert {r["verdict"] for r in c["rows"]} == {"not judged: failed to train (2 of 3)"}
    assert all(r["failed_to_train"] == {"treatment": [2, 3], "control": [0, 3]} for r in c["rows"])
    assert set(c["verdict"].values()) == {"not judged"}
    # planted check: the same records counted without the criterion would contradict the claim
    est = bstats.welch([0.0, 0.0, 1.0], [8.0, 8.0, 8.0])
    assert est.hi < 0


def test_an_arm_with_fewer_seeds_than_the_file_asks_is_not_judged(tmp_path):
    # an effect of +4 over seeds with sd 1.6: supported at any n >= 3 (checked below), so only the
    # seed count can keep the row from being judged
    ctrl, treat = [10.0, 12.0, 11.0, 13.0, 9.0], [14.0, 16.0, 15.0, 17.0, 13.0]
    for s in range(5):
        record(tmp_path, "gan", "torch", s, metrics={"high_quality_share": ctrl[s]})
        if s < 3:
            record(tmp_path, "gan+gradient-penalty", "torch", s, metrics={"high_quality_share": treat[s]})
    for s in range(3):
        record(tmp_path, "gan", "tensorflow", s, metrics={"high_quality_share": ctrl[s]})
        record(tmp_path, "gan+gradient-penalty", "tensorflow", s, metrics={"high_quality_share": treat[s]})
    row = {"label": "hq", "metric": "high_quality_share", "margin": 1.0}
    out = study.verdicts(tmp_path, claims_file=one_claim(row, min_seeds={"torch": 5, "tensorflow": 3}))
    by_fw = {r["framework"]: r for r in out["claims"][0]["rows"]}
    assert by_fw["torch"]["verdict"] == "not judged: too few seeds (3 of 5)"
    assert by_fw["torch"]["n"] == [3, 5] and "treatment gan+gradient-penalty: 3 seed(s)" in by_fw["torch"]["note"]
    assert by_fw["tensorflow"]["verdict"] == "supported"  # 3 of 3 in TensorFlow
    assert out["claims"][0]["verdict"]["torch/ring8"] == "not judged"
    # the same records without a minimum: the torch row is judged (Welch t by hand: +4, excludes 0)
    assert bstats.welch(treat[:3], ctrl).lo > 0
    plain = study.verdicts(tmp_path, claims_file=one_claim(row))["claims"][0]["rows"]
    assert {r["verdict"] for r in plain} == {"supported"}
    # and the shipped file asks for 5 and 3
    assert dict(claims.load().min_seeds) == {"torch": 5, "tensorflow": 3}


def test_a_failure_rate_row(tmp_path):
    for fw in ("torch",):
        for s in range(5):
            record(tmp_path, "gan", fw, s, metrics={"high_quality_share": 0.5})
            record(tmp_path, "gan+gradient-penalty", fw, s, d_loss=2.0, metrics={"high_quality_share": 0.5})
    cf = one_claim({"label": "fails", "metric": "trained", "kind": "failure_rate", "direction": "lower", "margin": 0.2})
    r = study.verdicts(tmp_path, claims_file=cf)["claims"][0]["rows"][0]
    # the treatment fails 5 of 5, the control 0 of 5: rate(control) - rate(treatment) = -1
    assert r["effect"] == -1.0 and r["n"] == [5, 5]
    assert r["p"] == pytest.approx(2 / math.comb(10, 5))  # Fisher, both margins fixed: 1 of 252 tables, twice
    assert r["verdict"] == "contradicted"
    assert "without a value" not in r["note"]  # it counts runs and reads no metric value


def test_an_effect_inside_the_margin_is_no_practical_effect(tmp_path):
    ctrl, treat = [0.500, 0.510, 0.505, 0.495, 0.502], [0.503, 0.512, 0.500, 0.499, 0.506]
    for s in range(5):
        record(tmp_path, "gan", "torch", s, metrics={"high_quality_share": ctrl[s]})
        record(tmp_path, "gan+gradient-penalty", "torch", s, metrics={"high_quality_share": treat[s]})
    cf = one_claim({"label": "hq", "metric": "high_quality_share", "margin": 0.05})
    r = study.verdicts(tmp_path, claims_file=cf)["claims"][0]["rows"][0]
    a, b = np.array(treat), np.array(ctrl)
    va, vb = a.var(ddof=1) / 5, b.var(ddof=1) / 5
    df = (va + vb) ** 2 / (va**2 / 4 + vb**2 / 4)
    half = stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    d = a.mean() - b.mean()
    assert -0.05 < d - half and d + half < 0.05
    assert r["ci"] == pytest.approx([d - half, d + half]) and r["verdict"] == "no practical effect"
    # planted: with a margin smaller than the interval's reach it is only inconclusive
    cf = one_claim({"label": "hq", "metric": "high_quality_share", "margin": 0.004})
    assert study.verdicts(tmp_path, claims_file=cf)["claims"][0]["rows"][0]["verdict"] == "inconclusive"


def test_effects_of_minus_4_in_both_frameworks_agree(tmp_path):
    ctrl, treat = [10.0, 12.0, 11.0, 13.0, 9.0], [6.0, 8.0, 7.0, 9.0, 5.0]  # effect -4 (higher is better)
    for fw in ("torch", "tensorflow"):
        for s in range(5):
            record(tmp_path, "gan", fw, s, metrics={"high_quality_share": ctrl[s]})
            record(tmp_path, "gan+gradient-penalty", fw, s, metrics={"high_quality_share": treat[s]})
    cf = one_claim({"label": "hq", "metric": "high_quality_share", "margin": 1.0})
    c = study.verdicts(tmp_path, claims_file=cf)["claims"][0]
    assert [r["effect"] for r in c["rows"]] == pytest.approx([-4.0, -4.0])
    # the difference of the effects: 0, se = sqrt(4 s^2 / 5) with s^2 = 2.5 (each group), df by hand
    (a,) = c["agreement"]
    se = math.sqrt(4 * 2.5 / 5)
    df = (4 * 0.5) ** 2 / (4 * 0.5**2 / 4)  # Welch-Satterthwaite over four equal variances of the mean
    assert a["difference"] == pytest.approx(0.0, abs=1e-12)
    assert a["ci"] == pytest.approx([-stats.t.ppf(0.975, df) * se, stats.t.ppf(0.975, df) * se], rel=1e-9)
    assert a["agreement"] == "consistent" and c["frameworks_agree"] == {"ring8": True}
    # with a margin wider than the interval they agree; -4 against +4 differ
    cf = one_claim({"label": "hq", "metric": "high_quality_share", "margin": 5.0})
    c = study.verdicts(tmp_path, claims_file=cf)["claims"][0]
    assert c["agreement"][0]["agreement"] == "agree" and c["frameworks_agree"] == {"ring8": True}
    for s in range(5):
        record(tmp_path, "gan+gradient-penalty", "tensorflow", s, metrics={"high_quality_share": treat[s] + 8.0})
    c = study.verdicts(tmp_path, claims_file=cf)["claims"][0]
    assert c["agreement"][0]["difference"] == pytest.approx(-8.0)
    assert c["agreement"][0]["agreement"] == "differ" and c["frameworks_agree"] == {"ring8": False}


def holm_by_hand(p):
    # three p-values: sorted p1 <= p2 <= p3 -> 3 p1, max(., 2 p2), max(., p3)
    order = sorted(range(3), key=lambda i: p[i])
    adj, running = [0.0] * 3, 0.0
    for k, i in enumerate(order):
        running = max(running, (3 - k) * p[i])
        adj[i] = min(1.0, running)
    return adj


def bh_by_hand(p):
    order = sorted(range(3), key=lambda i: p[i])
    adj, running = [0.0] * 3, 1.0
    for k in (2, 1, 0):
        running = min(running, 3 * p[order[k]] / (k + 1))
        adj[order[k]] = running
    return adj


def test_holm_and_bh_change_a_planted_borderline_row_as_by_hand(tmp_path):
    base = np.array([0.0, 1.0, 2.0, 3.0, 4.0])  # sd sqrt(2.5): the Welch se of a shift is 1, df 8
    shifts = {"m1": 3.4, "m2": 2.6, "m3": 2.4}
    for s in range(5):
        record(
            tmp_path, "gan", "torch", s, metrics={"high_quality_share": 0.5, **{f"{m}_mean": base[s] for m in shifts}}
        )
        record(
            tmp_path,
            "gan+gradient-penalty",
            "torch",
            s,
            metrics={"high_quality_share": 0.5, **{f"{m}_mean": base[s] + d for m, d in shifts.items()}},
        )
    p = [2 * stats.t.sf(d, 8) for d in shifts.values()]  # t = shift / 1 on 8 df
    assert p[0] < 0.05 / 3 and 0.025 < p[1] < 0.05 and 0.025 < p[2] < 0.05  # borderline rows 2 and 3
    holm, bh = holm_by_hand(p), bh_by_hand(p)
    assert holm[1] > 0.05 and holm[2] > 0.05 and max(bh) < 0.05
    rows = [{"label": m, "metric": f"{m}_mean"} for m in shifts]
    for method, want_p, want in (
        ("holm", holm, ["supported", "inconclusive", "inconclusive"]),
        ("bh", bh, ["supported", "supported", "supported"]),
        ("none", p, ["supported", "supported", "supported"]),
    ):
        result = study.verdicts(tmp_path, claims_file=one_claim(*rows), correction=method)
        got = result["claims"][0]["rows"]
        assert [r["p"] for r in got] == pytest.approx(p, rel=1e-9)
        assert [r["p_adjusted"] for r in got] == pytest.approx(want_p, rel=1e-9)
        assert [r["verdict"] for r in got] == want, method
        assert result["correction"] == method and bstats.CORRECTIONS[method] == result["correction_name"]


def test_a_row_without_a_test_does_not_count_in_the_correction(tmp_path):
    base = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    for s in range(5):
        record(tmp_path, "gan", "torch", s, metrics={"high_quality_share": 0.5, "a_mean": base[s]})
        record(
            tmp_path,
            "gan+gradient-penalty",
            "torch",
            s,
            metrics={"high_quality_share": 0.5, "a_mean": base[s] + 2.6, **({"b_mean": 1.0} if s == 0 else {})},
        )
    record(tmp_path, "gan", "torch", 0, metrics={"high_quality_share": 0.5, "a_mean": base[0], "b_mean": 0.0})
    rows = study.verdicts(
        tmp_path, claims_file=one_claim({"label": "a", "metric": "a_mean"}, {"label": "b", "metric": "b_mean"})
    )["claims"][0]["rows"]
    # b has one seed per arm: no test, so the family is {a} alone and a keeps its raw p (about 0.032)
    assert math.isnan(rows[1]["p"]) and rows[1]["verdict"] == "inconclusive"
    assert rows[0]["p_adjusted"] == pytest.approx(2 * stats.t.sf(2.6, 8)) and rows[0]["verdict"] == "supported"


def test_adjusted_p_values_against_a_worked_example():
    p = [0.01, 0.04, 0.03, 0.005, float("nan")]
    # Holm, m = 4: sorted 0.005, 0.01, 0.03, 0.04 -> 0.02, 0.03, 0.06, 0.06
    assert bstats.holm(p)[:4] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # BH, m = 4: 0.04 * 4/4 = 0.04, 0.03 * 4/3 = 0.04, 0.01 * 4/2 = 0.02, 0.005 * 4 = 0.02
    assert bstats.benjamini_hochberg(p)[:4] == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert math.isnan(bstats.holm(p)[4])


# -- power, spreads, rates ----------------------------------------------------------------------
@pytest.mark.parametrize("n1,n2", [(3, 3), (5, 5), (5, None), (10, 8)])
def test_detectable_effect_has_80_percent_power(n1, n2):
    sd = 2.0
    delta = bstats.detectable_effect(sd, n1, n2)
    df = n1 - 1 if n2 is None else n1 + n2 - 2
    scale = sd / math.sqrt(n1) if n2 is None else sd * math.sqrt(1 / n1 + 1 / n2)
    tc = stats.t.ppf(0.975, df)
    power = stats.nct.sf(tc, df, delta / scale) + stats.nct.cdf(-tc, df, delta / scale)
    assert power == pytest.approx(0.8, abs=1e-6)
    low = 0.9 * delta / scale  # planted: 10 % less effect has visibly less power
    assert stats.nct.sf(tc, df, low) + stats.nct.cdf(-tc, df, low) < 0.77


def test_detectable_effect_approaches_the_normal_formula():
    n, sd = 400, 1.0
    normal = (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * sd * math.sqrt(2 / n)
    assert bstats.detectable_effect(sd, n, n) == pytest.approx(normal, rel=5e-3)
    # 3 seeds per group: the t quantiles make it far larger than the normal formula says
    assert bstats.detectable_effect(sd, 3, 3) > 1.3 * (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * math.sqrt(2 / 3)


def test_spread_ratio_f_interval():
    c, t = [100.0, 130.0, 80.0, 120.0], [50.0, 52.0, 49.0, 51.0]
    est = bstats.spread_ratio(c, t)
    vc, vt = np.var(np.log(c), ddof=1), np.var(np.log(t), ddof=1)
    r = vc / vt
    assert est.effect == pytest.approx(0.5 * math.log(r))
    assert est.lo == pytest.approx(0.5 * math.log(r / stats.f.ppf(0.975, 3, 3)))
    assert est.hi == pytest.approx(0.5 * math.log(r / stats.f.ppf(0.025, 3, 3)))
    assert est.p0() == pytest.approx(2 * stats.f.sf(r, 3, 3))  # the two-sided F test


def test_rate_difference_newcombe_interval():
    # 1 of 10 against 6 of 10 failures: Wilson by hand with z = 1.96
    z = stats.norm.ppf(0.975)

    def wilson(k, n):
        p = k / n
        c = (p + z * z / (2 * n)) / (1 + z * z / n)
        h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return c - h, c + h

    (l1, u1), (l2, u2) = wilson(6, 10), wilson(1, 10)
    est = bstats.rate_difference(6, 10, 1, 10)
    d = 0.6 - 0.1
    assert est.effect == pytest.approx(d)
    assert est.lo == pytest.approx(d - math.sqrt((0.6 - l1) ** 2 + (u2 - 0.1) ** 2))
    assert est.hi == pytest.approx(d + math.sqrt((u1 - 0.6) ** 2 + (0.1 - l2) ** 2))
    assert est.p_greater(0.0) == pytest.approx(stats.hypergeom.sf(5, 20, 7, 10))  # P(>= 6 of the 7 failures in control)


# -- code versions ------------------------------------------------------------------------------
def test_mixed_code_hashes_are_refused_unless_allowed(tmp_path, capsys):
    for s in range(3):
        record(tmp_path, "gan", "torch", s, metrics={"high_quality_share": 0.5}, code="a" * 64)
        record(
            tmp_path,
            "gan+gradient-penalty",
            "torch",
            s,
            metrics={"high_quality_share": 0.5},
            code="b" * 64 if s else None,
        )
    assert genbench(["study", "--verdicts-only", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "aaaaaaaaaaaa: 3" in err and "bbbbbbbbbbbb: 2" in err and "unknown: 1" in err and "--allow-mixed-code" in err
    assert not (tmp_path / "study" / "verdicts.json").exists()
    assert genbench(["study", "--verdicts-only", "--allow-mixed-code", "--out", str(tmp_path)]) == 0
    assert "mixed code versions (--allow-mixed-code)" in capsys.readouterr().err
    doc = json.loads((tmp_path / "study" / "verdicts.json").read_text())
    assert doc["code"] == {
        "versions": {"aaaaaaaaaaaa": 3, "bbbbbbbbbbbb": 2, "unknown": 1},
        "mixed": True,
        "allowed": True,
    }


def test_one_code_hash_is_judged_without_the_option(tmp_path):
    for s in range(3):
        record(tmp_path, "gan", "torch", s, metrics={"high_quality_share": 0.5})
    assert genbench(["study", "--verdicts-only", "--out", str(tmp_path)]) == 0


def test_code_hash_of_a_tiny_tree_by_hand(tmp_path):
    (tmp_path / "impls" / "torch").mkdir(parents=True)
    (tmp_path / "bench" / "core").mkdir(parents=True)
    (tmp_path / "bench" / "cli").mkdir(parents=True)
    (tmp_path / "impls" / "torch" / "train.py").write_bytes(b"step = 1\n")
    (tmp_path / "bench" / "core" / "specs.py").write_bytes(b"lr = 2e-4\n")
    (tmp_path / "bench" / "cli" / "run.py").write_bytes(b"not training code\n")
    h = hashlib.sha256()
    for rel, data in (("bench/core/specs.py", b"lr = 2e-4\n"), ("impls/torch/train.py", b"step = 1\n")):
        h.update(len(rel).to_bytes(8, "big") + rel.encode() + len(data).to_bytes(8, "big") + data)
    got = provenance.hash_files(provenance.source_files(tmp_path), tmp_path)
    assert got == h.hexdigest()
    (tmp_path / "bench" / "cli" / "run.py").write_bytes(b"changed, still not training code\n")
    assert provenance.hash_files(provenance.source_files(tmp_path), tmp_path) == got
    (tmp_path / "impls" / "torch" / "train.py").write_bytes(b"step = 2\n")  # planted: a training change
    assert provenance.hash_files(provenance.source_files(tmp_path), tmp_path) != got


def test_records_carry_the_code_hash_outside_their_identity(monkeypatch):
    from bench.core import registry
    from bench.runs import runner

    assert provenance.code_hash() == provenance.code_hash() and len(provenance.code_hash()) == 64
    spec = registry.experiment("vae", (), dataset="mnist", profile="study", seed=0, steps=3000)
    ident = runner.experiment_identity(spec, "torch", profile="study", n_eval=2000)
    rec = runner._base_record(spec, "torch", ident, "cpu", ident["id"])
    assert rec["code_hash"] == provenance.code_hash() and rec["spec_hash"] == ident["hash"]
    # planted: another code version changes the record's code_hash, never the identity
    monkeypatch.setattr(runner, "code_hash", lambda: "f" * 64)
    monkeypatch.setattr(provenance, "code_hash", lambda: "f" * 64)
    again = runner.experiment_identity(spec, "torch", profile="study", n_eval=2000)
    assert again == ident and runner._base_record(spec, "torch", again, "cpu", again["id"])["code_hash"] == "f" * 64
