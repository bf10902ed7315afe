"""Did a run train? One pure function of a record: its status, metrics, final losses, model
family and dataset. The study counts the runs that fail it per group (a failure rate) and
leaves them out of its effects; the results table shows it per run.

The rules (each applies where the record has what it reads):

- the run diverged (status "diverged"): not trained;
- a GAN with a BCE discriminator (loss minimax or non-saturating): the final D loss, the sum
  of its real and fake BCE terms (impls/*/losses.py; the gradient penalty is logged apart),
  is not worse than chance. A discriminator that cannot tell real from fake does best with a
  constant output p; its loss -[t_r log p + (1 - t_r) log(1 - p)] - [t_f log p + (1 - t_f)
  log(1 - p)] is smallest at p = (t_r + t_f) / 2, where it equals 2 H((t_r + t_f) / 2), H the
  binary entropy in nats: log 4 = 1.386 for targets (1, 0), 2 H(0.45) = 1.376 for one-sided
  label smoothing 0.1;
- a GAN on MNIST or Fashion-MNIST: its samples cover at least MIN_CLASSES of the 10 classes,
  and on MNIST its FID is at most UNTRAINED_FID_SHARE of an untrained generator's
  (UNTRAINED_FID; no untrained value is measured for Fashion-MNIST, so there the class rule
  alone applies);
- a GAN on a 2-D mixture: at least MIN_HIGH_QUALITY of its samples lie within the high-quality
  radius of a mode (bench/metrics/modes.py), i.e. some samples are good;
- a VAE on images: its prior samples cover at least MIN_CLASSES classes.

A record that never reached an evaluation (failed, interrupted, not yet evaluated) has no
verdict (None): it is neither counted as trained nor as a failure to train.
"""

from __future__ import annotations

import math

MIN_CLASSES = 9
# FID of an untrained generator (initial weights, 2000 samples against the test split, the
# evaluator's features): measured once for the MNIST DCGAN (672) and MLP GAN (661) of the study,
# PyTorch, seed 0; the smaller is kept
UNTRAINED_FID = {"mnist": 660.0}
UNTRAINED_FID_SHARE = 0.5  # "well below": at most half the untrained value
MIN_HIGH_QUALITY = 0.01
BCE_LOSSES = ("minimax", "non-saturating")
IMAGE_DATASETS = ("mnist", "fashion-mnist")
MIXTURES = ("ring8", "grid25")


def binary_entropy(p: float) -> float:
    """H(p) in nats (0 at p = 0 or 1)."""
    return -sum(q * math.log(q) for q in (p, 1.0 - p) if q > 0)


def chance_d_loss(real_target: float = 1.0, fake_target: float = 0.0) -> float:
    """The summed real + fake BCE of the best constant discriminator: 2 H((t_r + t_f) / 2)."""
    return 2.0 * binary_entropy((real_target + fake_target) / 2.0)


def _targets(spec: dict) -> tuple[float, float]:
    from ..core.specs import smoothed_targets

    return smoothed_targets(spec.get("label_smoothing", 0.0) or 0.0, spec.get("label_smoothing_sides", "none"))


def _num(d: dict, key: str) -> float:
    try:
        return float(d.get(key, float("nan")))
    except (TypeError, ValueError):
        return float("nan")


def check(rec: dict) -> tuple[bool | None, str]:
    """(trained, why): True, False, or None when the record has no evaluation to judge."""
    status = rec.get("status")
    if status == "diverged":
        return False, "diverged"
    if status != "ok" or not rec.get("metrics"):
        return None, f"status {status}, no evaluation"
    spec, metrics, losses = rec.get("spec") or {}, rec.get("metrics") or {}, rec.get("final_losses") or {}
    family, dataset = spec.get("family", ""), rec.get("dataset", spec.get("dataset", ""))
    failed = []
    if family == "gan" and spec.get("loss") in BCE_LOSSES:
        d_loss, chance = _num(losses, "d_loss"), chance_d_loss(*_targets(spec))
        if not d_loss <= chance:
            failed.append(f"final D loss {d_loss:.3g} worse than chance {chance:.3g}")
    if dataset in IMAGE_DATASETS:
        classes = _num(metrics, "classes_covered")
        if math.isfinite(classes) and classes < MIN_CLASSES:
            failed.append(f"{classes:g} classes < {MIN_CLASSES}")
        fid, untrained = _num(metrics, "fid"), UNTRAINED_FID.get(dataset)
        if family == "gan" and untrained and math.isfinite(fid) and fid > UNTRAINED_FID_SHARE * untrained:
            failed.append(f"FID {fid:.0f} > {UNTRAINED_FID_SHARE:g} x untrained {untrained:.0f}")
    if dataset in MIXTURES:
        hq = _num(metrics, "high_quality_share")
        if math.isfinite(hq) and hq < MIN_HIGH_QUALITY:
            failed.append(f"high-quality share {hq:.3g} < {MIN_HIGH_QUALITY:g}")
    return (False, "; ".join(failed)) if failed else (True, "")


def trained(rec: dict) -> bool | None:
    return check(rec)[0]


def cell(rec: dict) -> str:
    """The results table's `trained` column: yes, no (why), or empty without an evaluation."""
    ok, why = check(rec)
    return "" if ok is None else "yes" if ok else f"no ({why})"
