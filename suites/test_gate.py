"""The regression gate: machine-readable results, bad input, and proof that it fails when a model
gets worse.

The default run checks the gate's mechanics on a tiny run (a few seconds). The planted faults
(marked ``gate``; `tox -e gate`, which CI runs) train the CI profile's experiments in the
PyTorch twin with one training fault each and assert that `genbench gate` against the committed
results/baselines/ci.json exits 1 and names a failing check of that experiment; the same
experiments trained without a fault pass.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bench import cli
from bench.checks import gate
from bench.core import registry
from bench.core.specs import ExperimentSpec
from bench.runs.runner import run_experiment

ROOT = Path(__file__).resolve().parent.parent
CI_BASELINE = ROOT / "results" / "baselines" / "ci.json"


def genbench(*args) -> int:
    return cli.main([str(a) for a in args])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """Two seeds of a 5-step ring GAN in the PyTorch twin: a run folder in seconds."""
    out = tmp_path_factory.mktemp("tiny")
    for seed in (0, 1):
        spec = registry.experiment("gan", dataset="ring8", profile="smoke", seed=seed, steps=5)
        run_experiment(spec, "torch", out, progress=False, n_eval=500, profile="smoke")
    return out


@pytest.fixture(scope="module")
def tiny_baseline(tiny_run, tmp_path_factory):
    path = tmp_path_factory.mktemp("base") / "tiny.json"
    gate.make_baseline(tiny_run, path, losses=True, untrained=False)
    return path


def test_json_and_junit_hold_every_check(tiny_run, tiny_baseline, tmp_path, capsys):
    j, x = tmp_path / "gate.json", tmp_path / "gate.xml"
    assert genbench("gate", tiny_run, "--baseline", tiny_baseline, "--json", j, "--junit", x) == 0
    checks = json.loads(tiny_baseline.read_text())["checks"]
    doc = json.loads(j.read_text())
    assert doc["passed"] is True and doc["n_checks"] == len(checks) and doc["failed"] == []
    assert [c["metric"] for c in doc["checks"]] == [c["metric"] for c in checks]
    root = ET.parse(x).getroot()
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == len(checks) and root.get("failures") == "0"
    assert {c.get("classname") for c in cases} == {"gan.ring8.torch"}
    assert [c.get("name") for c in cases] == [c["metric"] for c in checks]


def test_a_worse_value_in_each_direction_fails_and_is_named(tiny_run, tiny_baseline, tmp_path, capsys):
    doc = json.loads(tiny_baseline.read_text())
    by_dir = {}
    for c in doc["checks"]:
        by_dir.setdefault(c["direction"], c)
    assert {"higher", "both"} <= set(by_dir)  # modes_covered / high_quality_share and the losses
    for c in by_dir.values():  # the baseline claims a better model than the run by 3 tolerances
        c["value"] += {"higher": 3, "lower": -3, "both": 3}[c["direction"]] * c["tolerance"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    j, x = tmp_path / "gate.json", tmp_path / "gate.xml"
    assert genbench("gate", tiny_run, "--baseline", bad, "--json", j, "--junit", x) == 1
    failed = json.loads(j.read_text())["failed"]
    assert sorted(failed) == sorted(f"gan/ring8/torch/{c['metric']}" for c in by_dir.values())
    junit_failed = [c.get("name") for c in ET.parse(x).getroot().iter("testcase") if c.find("failure") is not None]
    assert sorted(junit_failed) == sorted(c["metric"] for c in by_dir.values())
    assert "regressed: " in capsys.readouterr().out


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("genbench_version", "0.0.1", "was made by genbench 0.0.1"),
        ("steps", 3000, "ran 5 steps, baseline .* was made at 3000"),
    ],
)
def test_a_baseline_of_another_version_or_profile_is_bad_input(
    tiny_run, tiny_baseline, tmp_path, capsys, field, value, message
):
    doc = json.loads(tiny_baseline.read_text())
    if field == "steps":
        for c in doc["checks"]:
            c["steps"] = value
    else:
        doc[field] = value
    path = tmp_path / "other.json"
    path.write_text(json.dumps(doc))
    assert genbench("gate", tiny_run, "--baseline", path) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    import re

    assert re.search(message, err), err


def test_checks_that_cannot_tell_untrained_from_trained_are_left_out(tiny_run, tmp_path):
    """Five steps teach a GAN nothing: every quality band contains the untrained value."""
    logged = []
    with pytest.raises(gate.BaselineError, match="no gated metrics"):
        gate.make_baseline(tiny_run, tmp_path / "b.json", log=logged.append)
    assert any("modes_covered" in line and "contains the untrained value" in line for line in logged)


def test_band_contains_by_direction():
    c = {"value": 10.0, "tolerance": 2.0}
    assert gate.band_contains({**c, "direction": "lower"}, 3.0)  # better than the baseline: inside
    assert not gate.band_contains({**c, "direction": "lower"}, 12.5)
    assert gate.band_contains({**c, "direction": "higher"}, 8.5)
    assert not gate.band_contains({**c, "direction": "higher"}, 7.5)
    assert not gate.band_contains({**c, "direction": "both"}, 12.5)


def test_committed_ci_baseline_excludes_every_untrained_value():
    doc = json.loads(CI_BASELINE.read_text())
    assert doc["profile"] == "ci" and doc["checks"]
    ci = {(m, ds): n for m, _, ds, n in registry.CI_MATRIX}
    for c in doc["checks"]:
        assert c["untrained"] is not None and not gate.band_contains(c, c["untrained"]), c
        assert c["steps"] == ci[(c["experiment"], c["dataset"])]
    assert {(c["experiment"], c["dataset"]) for c in doc["checks"]} == set(ci)
    assert {c["framework"] for c in doc["checks"]} == {"torch", "tensorflow"}


# -- planted faults -----------------------------------------------------------------------------
def ci_spec(model: str, dataset: str) -> ExperimentSpec:
    return next(s for s in registry.profile_experiments("ci") if s.name == model and s.dataset == dataset)


def train_and_gate(tmp_path, model, dataset, spec_changes=None) -> dict:
    """Train one CI experiment (PyTorch, seed 0) and gate it on its own checks of ci.json."""
    spec = ci_spec(model, dataset).with_(**(spec_changes or {}))
    run_dir = tmp_path / "run"
    run_experiment(spec, "torch", run_dir, progress=False, n_eval=registry.PROFILES["ci"]["n_eval"], profile="ci")
    doc = json.loads(CI_BASELINE.read_text())
    doc["checks"] = [
        c for c in doc["checks"] if (c["experiment"], c["dataset"], c["framework"]) == (model, dataset, "torch")
    ]
    assert doc["checks"], f"ci.json has no checks for {model}/{dataset}/torch"
    base = tmp_path / "base.json"
    base.write_text(json.dumps(doc))
    out = tmp_path / "gate.json"
    code = genbench("gate", run_dir, "--baseline", base, "--json", out)
    return {"code": code, **json.loads(out.read_text())}


def _untrained(monkeypatch):
    """One real step, then every later step returns the first step's losses without training."""
    from impls.torch.train import Trainer

    step = Trainer.train_step

    def first_then_frozen(self, batch, noise):
        if not hasattr(self, "_fault_losses"):
            self._fault_losses = step(self, batch, noise)
        return self._fault_losses

    monkeypatch.setattr(Trainer, "train_step", first_then_frozen)


def _g_frozen(monkeypatch):
    from impls.torch.train import Trainer

    init = Trainer.__init__

    def init_without_g_updates(self, *a, **k):
        init(self, *a, **k)
        self.g_opt.step = lambda *args, **kw: None

    monkeypatch.setattr(Trainer, "__init__", init_without_g_updates)


def _labels_swapped(monkeypatch):
    monkeypatch.setattr(ExperimentSpec, "targets", property(lambda s: (0.0, 1.0)))


def _kl_dropped(monkeypatch):
    import torch

    from impls.torch import losses

    elbo_terms = losses.elbo_terms

    def without_kl(recon_nll, mean, logvar):
        loss, recon, kl = elbo_terms(recon_nll, mean, logvar)
        return torch.mean(recon_nll), recon, kl

    monkeypatch.setattr(losses, "elbo_terms", without_kl)


def _lr_x100(spec: ExperimentSpec) -> dict:
    return {"g_optimizer.lr": spec.g_optimizer.lr * 100, "d_optimizer.lr": spec.d_optimizer.lr * 100}


# fault -> (experiment, dataset, monkeypatch or None, spec changes or None, metrics expected to fail)
FAULTS = {
    "untrained (1 step)": ("gan", "ring8", _untrained, None, {"modes_covered", "high_quality_share"}),
    "generator never updated": ("gan", "ring8", _g_frozen, None, {"modes_covered", "high_quality_share"}),
    "learning rate x100": ("gan", "ring8", None, _lr_x100, {"modes_covered", "high_quality_share"}),
    "real/fake labels swapped": ("gan", "ring8", _labels_swapped, None, {"modes_covered", "high_quality_share"}),
    "gradient penalty sign flipped": (
        "wgan-gp",
        "ring8",
        None,
        lambda s: {"gp_lambda": -s.gp_lambda},
        {"modes_covered", "high_quality_share", "mode_kl"},
    ),
    "VAE KL term dropped": ("vae", "mnist", _kl_dropped, None, {"test_elbo"}),
}


@pytest.mark.gate
@pytest.mark.parametrize("fault", list(FAULTS))
def test_planted_fault_fails_the_gate(fault, monkeypatch, tmp_path):
    model, dataset, patch, changes, expected = FAULTS[fault]
    if patch:
        patch(monkeypatch)
    got = train_and_gate(tmp_path, model, dataset, changes(ci_spec(model, dataset)) if changes else None)
    print(f"\n{fault}: exit {got['code']}, failed {got['failed']}")
    assert got["code"] == 1
    failed_metrics = {name.split("/")[-1] for name in got["failed"]}
    assert failed_metrics & expected, got["failed"]


@pytest.mark.gate
@pytest.mark.parametrize("model,dataset", sorted({(m, d) for m, d, *_ in FAULTS.values()}))
def test_unchanged_training_passes_the_gate(model, dataset, tmp_path):
    got = train_and_gate(tmp_path, model, dataset)
    assert got["code"] == 0, got["failed"]
