"""The claims file: the shipped one reads and holds the seven claims; a user's own file runs
through `genbench study --claims` and gets verdicts computed here by hand; a bad file is exit 2
with one line naming the file, the key and the problem."""

import json
import math

import numpy as np
import pytest
from scipy import stats

from bench.cli import main as genbench
from bench.runs import claims, records

CODE = "ab" * 32

USER_FILE = """
schema = 1

[[claim]]
number = 1
title = "Spectral norm lowers FID on Fashion-MNIST by at least 10"

[[claim.row]]
label = "FID"
metric = "fid"
direction = "lower"
kind = "diff"
treatment = "dcgan+spectral-norm"
control = "dcgan"
datasets = ["fashion-mnist"]
budget = 2000
margin = 10

[[claim.row]]
label = "class KL"
metric = "class_kl"
direction = "lower"
kind = "diff"
treatment = "dcgan+spectral-norm"
control = "dcgan"
datasets = ["fashion-mnist"]
budget = 2000
margin = 0.02
"""

FID = {"dcgan": [160.0, 165.0, 158.0, 162.0, 161.0], "dcgan+spectral-norm": [140.0, 146.0, 143.0, 139.0, 144.0]}
CLASS_KL = {"dcgan": [0.100, 0.104, 0.098, 0.101, 0.102], "dcgan+spectral-norm": [0.099, 0.103, 0.100, 0.097, 0.101]}


def planted(run, steps=2000):
    for name in FID:
        for fw in ("torch", "tensorflow"):
            for seed in range(5):
                rid = f"{name}__fashion-mnist__{fw}__s{seed}__0000000{seed}"
                rec = {
                    "id": rid,
                    "experiment": name,
                    "dataset": "fashion-mnist",
                    "framework": fw,
                    "seed": seed,
                    "status": "ok",
                    "code_hash": CODE,
                    "spec": {
                        "steps": steps,
                        "family": "gan",
                        "loss": "non-saturating",
                        "label_smoothing": 0.0,
                        "label_smoothing_sides": "none",
                    },
                    "final_losses": {"d_loss": 1.0, "g_loss": 1.5},
                    "metrics": {"fid": FID[name][seed], "class_kl": CLASS_KL[name][seed], "classes_covered": 10.0},
                    "timing": {"wall_s": 1.0, "ms_per_step": 1.0},
                    "steps_done": steps,
                }
                records.write_record(run / "records" / f"{rid}.json", rec)
    return run


def test_the_shipped_file_holds_the_seven_claims():
    cf = claims.load()
    assert [c.number for c in cf.claims] == [1, 2, 3, 4, 5, 6, 7]
    assert cf.correction == "holm" and cf.alpha == 0.05 and cf.power == 0.8
    rows = [r for c in cf.claims for r in c.rows]
    assert all(r.margin > 0 for r in rows)  # every row declares its smallest effect of interest
    c1 = cf.claims[0]
    assert {r.metric for r in c1.rows} == {"drift:loss", "drift:recon", "drift:kl"} and {r.kind for r in c1.rows} == {
        "flat"
    }
    assert any(r.kind == "failure_rate" for r in cf.claims[6].rows)  # the stability claim's own row
    c4 = {r.label.split(":")[0] for r in cf.claims[3].rows if "stacked-mnist" in r.datasets}
    assert c4 == {"diversity", "clarity (fidelity)"}  # clarity beside diversity on Stacked MNIST
    with pytest.raises(AttributeError):
        rows[0].margin = 1.0  # frozen


def test_a_users_two_row_file_gets_verdicts_computed_by_hand(tmp_path, capsys):
    path = tmp_path / "mine.toml"
    path.write_text(USER_FILE)
    run = planted(tmp_path / "run")
    assert genbench(["study", "--verdicts-only", "--claims", str(path), "--out", str(run)]) == 0
    doc = json.loads((run / "study" / "verdicts.json").read_text())
    assert doc["claims_file"] == str(path) and [c["claim"] for c in doc["claims"]] == [1]
    rows = doc["claims"][0]["rows"]
    assert len(rows) == 4  # two rows x two frameworks
    # FID: control minus treatment (lower is better), Welch by hand
    c, t = np.array(FID["dcgan"]), np.array(FID["dcgan+spectral-norm"])
    va, vb = c.var(ddof=1) / 5, t.var(ddof=1) / 5
    df = (va + vb) ** 2 / (va**2 / 4 + vb**2 / 4)
    d, se = c.mean() - t.mean(), math.sqrt(va + vb)
    half = stats.t.ppf(0.975, df) * se
    p = 2 * stats.t.sf(abs(d) / se, df)
    assert d == pytest.approx(18.8) and d - half > 10  # the whole interval past the margin of 10
    for r in (r for r in rows if r["metric"] == "fid"):
        assert r["effect"] == pytest.approx(d) and r["ci"] == pytest.approx([d - half, d + half])
        # Holm over the claim's two rows in one framework: the smaller p times 2
        assert r["p"] == pytest.approx(p) and r["p_adjusted"] == pytest.approx(min(1, 2 * p))
        assert r["verdict"] == "supported" and r["n"] == [5, 5] and r["steps"] == 2000
    # class KL: a difference of 0.001 with an interval inside +-0.02: no practical effect
    kc, kt = np.array(CLASS_KL["dcgan"]), np.array(CLASS_KL["dcgan+spectral-norm"])
    va, vb = kc.var(ddof=1) / 5, kt.var(ddof=1) / 5
    df = (va + vb) ** 2 / (va**2 / 4 + vb**2 / 4)
    half = stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    assert -0.02 < kc.mean() - kt.mean() - half and kc.mean() - kt.mean() + half < 0.02
    assert {r["verdict"] for r in rows if r["metric"] == "class_kl"} == {"no practical effect"}
    assert doc["claims"][0]["verdict"] == {
        "tensorflow/fashion-mnist": "inconclusive",
        "torch/fashion-mnist": "inconclusive",
    }
    out = capsys.readouterr().out
    assert "Holm" in out and str(path) in out


def test_the_users_file_below_its_budget_is_not_judged(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(USER_FILE.replace("budget = 2000", "budget = 5000"))
    run = planted(tmp_path / "run")
    assert genbench(["study", "--verdicts-only", "--claims", str(path), "--out", str(run)]) == 0
    rows = json.loads((run / "study" / "verdicts.json").read_text())["claims"][0]["rows"]
    assert {r["verdict"] for r in rows} == {"not judged at this budget"}


BAD = [
    ("margin = 10\n", 'margin = 10\ncolour = "red"\n', "claim[0].row[0].colour", "unknown key"),
    ("margin = 10\n", 'margin = "ten"\n', "claim[0].row[0].margin", "expected a number"),
    ('metric = "fid"', 'metric = "fidd"', "claim[0].row[0].metric", "unknown metric 'fidd'"),
    (
        (
            'direction = "lower"\nkind = "diff"\ntreatment = "dcgan+spectral-norm"\ncontrol = "dcgan"\n'
            'datasets = ["fashion-mnist"]\nbudget = 2000\nmargin = 10'
        ),
        (
            'direction = "lowr"\nkind = "diff"\ntreatment = "dcgan+spectral-norm"\ncontrol = "dcgan"\n'
            'datasets = ["fashion-mnist"]\nbudget = 2000\nmargin = 10'
        ),
        "claim[0].row[0].direction",
        "'lowr' is not one of",
    ),
    (
        'treatment = "dcgan+spectral-norm"',
        'treatment = "dcgan+spectral-nrom"',
        "claim[0].row[0].treatment",
        "unknown stabilizer",
    ),
    ('control = "dcgan"', 'control = "dcgann"', "claim[0].row[0].control", "unknown model"),
    (
        'datasets = ["fashion-mnist"]',
        'datasets = ["fashion"]',
        "claim[0].row[0].datasets[0]",
        "'fashion' is not one of",
    ),
    ("budget = 2000\n", "", "claim[0].row[0].budget", "missing"),
    ("schema = 1", "schema = 1\nalpha = 2", "alpha", "between 0 and 1"),
    ('kind = "diff"', 'kind = "ratio"', "claim[0].row[0].kind", "'ratio' is not one of"),
    ('label = "FID"', 'label = "FID', "", "not valid TOML"),
    ("number = 1", "numbr = 1", "claim[0].numbr", "unknown key"),
    ("schema = 1", "schema = 1\nmin_seeds = {jax = 5}", "min_seeds.jax", "unknown key"),
    ("schema = 1", "schema = 1\nmin_seeds = {torch = 0}", "min_seeds.torch", "must be >= 1"),
    ("schema = 1", 'schema = 1\nmin_seeds = {torch = "5"}', "min_seeds.torch", "expected a whole number"),
]


@pytest.mark.parametrize("old,new,key,problem", BAD)
def test_a_bad_file_is_exit_2_with_one_line_naming_the_key(tmp_path, capsys, old, new, key, problem):
    assert old in USER_FILE
    path = tmp_path / "bad.toml"
    path.write_text(USER_FILE.replace(old, new, 1))
    run = planted(tmp_path / "run")
    assert genbench(["study", "--verdicts-only", "--claims", str(path), "--out", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert str(path) in err and problem in err and (not key or f": {key}: " in err), err
    assert not (run / "study" / "verdicts.json").exists()
    with pytest.raises(claims.ClaimsError, match="bad.toml"):
        claims.load(path)


def test_a_missing_file_is_exit_2(tmp_path, capsys):
    assert genbench(["study", "--verdicts-only", "--claims", str(tmp_path / "none.toml"), "--out", str(tmp_path)]) == 2
    assert "none.toml: cannot be read" in capsys.readouterr().err
