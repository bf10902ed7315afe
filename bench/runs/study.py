"""The study: the seven claims of the original VAE/GAN study as measured questions.

Each claim is a list of rows. A row names a metric, the group that should do better
(`treatment`) and the one it is compared with (`control`, None for a one-group question), and
how the comparison is made:

- "diff": the difference of the group means over seeds, signed so that a positive effect
  supports the claim, with a Welch t 95 % interval (unequal variances; scipy.stats.ttest_ind);
- "one":  the mean of one group (signed the same way) with a Student t 95 % interval;
- "flat": the mean of one group must lie within +-margin (an equivalence question): supported
  when the whole interval lies inside, contradicted when it lies wholly outside;
- "cv":   the difference of the seed-to-seed coefficients of variation (std / |mean|, control
  minus treatment), with a percentile bootstrap interval (scipy.stats.bootstrap, 2000
  resamples of the seeds).

Rule for "diff", "one" and "cv": supported when the interval lies above 0, contradicted when
below, inconclusive when it crosses 0 (or fewer than 2 seeds ran). A claim's verdict for one
framework and dataset is contradicted if any of its rows is, supported if all are, and
inconclusive otherwise. docs/study.md states each claim's metric, comparison and rule.

Metrics come from the records (rec["metrics"]) or, for the loss-curve questions, from the
experiment's losses.csv (`oscillation:<term>`, `drop:<term>`, `drift:<term>`, defined below).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import records
from ..core import registry

SCHEMA = 1
DATASETS = ("ring8", "grid25", "mnist", "fashion-mnist", "stacked-mnist")
MIXTURES = ("ring8", "grid25")
IMAGES = ("mnist", "fashion-mnist")
STACKED = ("stacked-mnist",)

# Steps per kind of model. "small" is what the committed results/study ran on 2 CPU cores;
# "full" is the budget at which the GANs are trained to convergence.
BUDGETS = {
    "small": {"vae": 3000, "mlp": 3000, "dcgan": 1000, "critic": 400, "mixture": 3000},
    "full": {"vae": 10000, "mlp": 10000, "dcgan": 5000, "critic": 2000, "mixture": 10000},
}
IMAGE_MODELS = (("vae", "vae"), ("gan", "mlp"), ("gan+gradient-penalty", "mlp"),
                ("gan+dropout+batch-norm", "mlp"), ("gan+weight-decay", "mlp"),
                ("dcgan", "dcgan"), ("dcgan+spectral-norm", "dcgan"),
                ("dcgan+label-smoothing-one", "dcgan"), ("wgan-gp", "critic"))
MIXTURE_MODELS = (("gan", "mixture"), ("gan+gradient-penalty", "mixture"), ("wgan-gp", "mixture"))
# the seed's DCGAN with three channels in and out: modes of 1000 for claims 3 and 4
STACKED_MODELS = (("dcgan", "dcgan"), ("dcgan+gradient-penalty", "dcgan"), ("dcgan+spectral-norm", "dcgan"))


def study_specs(datasets=DATASETS, seeds=(0, 1, 2), budget: str = "small", **overrides) -> list:
    """The study's matrix in run order: dataset, then model (cheap first), then seed."""
    if budget not in BUDGETS:
        raise registry.SpecError(f"unknown budget {budget!r}: {', '.join(BUDGETS)}")
    steps = BUDGETS[budget]
    specs = []
    for ds in datasets:
        for token, kind in (MIXTURE_MODELS if ds in MIXTURES else STACKED_MODELS if ds in STACKED else IMAGE_MODELS):
            model, stabs = registry.parse_model(token)
            specs += [registry.experiment(model, stabs, dataset=ds, profile="study", seed=s, steps=steps[kind],
                                          **overrides) for s in seeds]
    return specs


# -- metrics read from loss curves --------------------------------------------------------------
def read_losses(path) -> dict[str, np.ndarray]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {}
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0] if k not in ("step", "wall_s")}


def oscillation_index(x) -> float:
    """How jagged a loss curve looks on its own axes: the standard deviation of the final 10 %
    of steps around their linear trend (np.polyfit), over the spread of the whole curve (the
    5th to 95th percentile of its moving average, window n/50). Scale-free: a BCE loss that
    jitters around a constant scores high; a Wasserstein estimate that moves a long way and
    smoothly scores low."""
    x = np.asarray(x, np.float64)
    n = len(x)
    if n < 50 or not np.all(np.isfinite(x)):
        return float("nan")
    tail = x[-max(n // 10, 20):]
    t = np.arange(len(tail))
    noise = float(np.std(tail - np.polyval(np.polyfit(t, tail, 1), t)))
    w = max(n // 50, 5)
    smooth = np.convolve(x, np.ones(w) / w, mode="valid")
    spread = float(np.percentile(smooth, 95) - np.percentile(smooth, 5))
    return noise / spread if spread > 0 else float("nan")


def relative_drop(x) -> float:
    """(mean of the first 1 % of steps - mean of the last 10 %) / |first|: the share by which a
    loss fell over training (negative when it rose)."""
    x = np.asarray(x, np.float64)
    first, last = np.mean(x[:max(len(x) // 100, 5)]), np.mean(x[-max(len(x) // 10, 20):])
    return float((first - last) / abs(first)) if first != 0 else float("nan")


def relative_drift(x) -> float:
    """(mean of the last 10 % - mean of the 10 % before) / |mean of the first 1 % - mean of the
    last 10 %|: the share of the whole change still happening at the end (0 when flat)."""
    x = np.asarray(x, np.float64)
    k = max(len(x) // 10, 20)
    first, last, before = np.mean(x[:max(len(x) // 100, 5)]), np.mean(x[-k:]), np.mean(x[-2 * k:-k])
    total = abs(first - last)
    return float((last - before) / total) if total > 0 else float("nan")


CURVE_METRICS = {"oscillation": oscillation_index, "drop": relative_drop, "drift": relative_drift}
DERIVED = {
    "silhouette_gain": lambda m: m["latent_silhouette"] - m["pixel_silhouette"],
    # |log(sharpness / real sharpness)|: 0 when samples are as sharp as real images; blur (< 1)
    # and speckle noise (> 1) both move it up, so "clearer" means lower
    "sharpness_gap": lambda m: abs(math.log(m["sharpness_ratio"])),
}


STUDY_DIR, VERDICTS_FILE = "study", "verdicts.json"  # RUN_DIR/study/verdicts.json
CURVES_FILE = "curves.json"  # study/curves.json: the loss-curve metrics, kept with the records


def metric_value(rec: dict, metric: str, run_dir, curves: dict | None = None) -> float:
    """One record's value of a study metric: a record metric, a derived one (DERIVED), or a
    loss-curve one ("oscillation:d_loss") read from the experiment's losses.csv. `curves`
    ({record id: {metric: value}}, study/curves.json) caches the loss-curve values, so that a
    study's verdicts can be recomputed from its committed records without the loss logs."""
    if rec.get("status") not in ("ok", "diverged"):
        return float("nan")
    if ":" in metric:
        cached = (curves or {}).get(rec["id"], {})
        if metric in cached:
            return float(cached[metric])
        kind, term = metric.split(":", 1)
        path = Path(run_dir) / rec["id"] / "losses.csv"
        if not path.exists():
            return float("nan")
        series = read_losses(path)
        value = CURVE_METRICS[kind](series[term]) if term in series else float("nan")
        if curves is not None:
            curves.setdefault(rec["id"], {})[metric] = value
        return value
    m = rec.get("metrics") or {}
    try:
        return float(DERIVED[metric](m)) if metric in DERIVED else float(m.get(metric, float("nan")))
    except (KeyError, TypeError, ValueError):
        return float("nan")


# -- the claims ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    metric: str
    better: str  # "lower" | "higher" (for the treatment) | "within" (flat: |value| <= margin)
    treatment: str
    control: str | None = None
    kind: str = "diff"
    datasets: tuple = IMAGES
    margin: float = 0.0
    label: str = ""


@dataclass(frozen=True)
class Claim:
    number: int
    title: str
    rows: tuple = field(default_factory=tuple)


def _regularized(metric: str, better: str, label: str) -> tuple:
    pairs = (("dcgan+label-smoothing-one", "dcgan"), ("dcgan+spectral-norm", "dcgan"),
             ("gan+gradient-penalty", "gan"), ("gan+dropout+batch-norm", "gan"), ("gan+weight-decay", "gan"))
    return tuple(Row(metric, better, t, c, label=label) for t, c in pairs)


CLAIMS = (
    Claim(1, "VAE: the ELBO, the reconstruction loss and the KL converge (decrease, then stay flat)", tuple(
        r for term in ("loss", "recon", "kl") for r in (
            Row(f"drop:{term}", "higher", "vae", kind="one", label=f"{term} decreased"),
            Row(f"drift:{term}", "within", "vae", kind="flat", margin=0.05, label=f"{term} flat at the end"),
        ))),
    Claim(2, "BCE GAN losses oscillate; Wasserstein losses are smoother", (
        Row("oscillation:d_loss", "lower", "wgan-gp", "dcgan", label="D loss oscillation, images"),
        Row("oscillation:d_loss", "lower", "wgan-gp", "gan", datasets=MIXTURES, label="D loss oscillation, 2-D"),
    )),
    Claim(3, "The gradient penalty reduces mode collapse", (
        Row("modes_covered", "higher", "gan+gradient-penalty", "gan", datasets=MIXTURES, label="modes covered"),
        Row("mode_kl", "lower", "gan+gradient-penalty", "gan", datasets=MIXTURES, label="KL(modes || uniform)"),
        Row("modes_covered", "higher", "dcgan+gradient-penalty", "dcgan", datasets=STACKED,
            label="Stacked MNIST: modes covered of 1000"),
        Row("mode_kl", "lower", "dcgan+gradient-penalty", "dcgan", datasets=STACKED,
            label="Stacked MNIST: KL(modes || uniform)"),
        Row("classes_covered", "higher", "gan+gradient-penalty", "gan", label="classes covered"),
        Row("class_kl", "lower", "gan+gradient-penalty", "gan", label="KL(classes || uniform)"),
    )),
    Claim(4, "Spectral normalization improves sample clarity and diversity", (
        Row("fid", "lower", "dcgan+spectral-norm", "dcgan", label="clarity: FID"),
        Row("sharpness_gap", "lower", "dcgan+spectral-norm", "dcgan", label="clarity: |log(sharpness / real)|"),
        Row("class_kl", "lower", "dcgan+spectral-norm", "dcgan", label="diversity: KL(classes || uniform)"),
        Row("modes_covered", "higher", "dcgan+spectral-norm", "dcgan", datasets=STACKED,
            label="diversity: Stacked MNIST modes covered of 1000"),
    )),
    Claim(5, "Regularized GANs beat unregularized ones in diversity and fidelity",
          _regularized("fid", "lower", "fidelity: FID") + _regularized("class_kl", "lower", "diversity: class KL")),
    Claim(6, "The VAE latent space forms well-separated class clusters, with smooth interpolations", (
        Row("silhouette_gain", "higher", "vae", kind="one", label="silhouette of latent means minus pixel PCA's"),
        Row("interp_jump", "lower", "vae", kind="one", margin=2.0,
            label="interpolation: largest step / mean step below 2"),
    )),
    Claim(7, "VAE samples are blurrier than GAN samples, while VAE training is more stable", (
        Row("sharpness_ratio", "higher", "dcgan", "vae", label="GAN sharper than VAE (sharpness / real)"),
        Row("fid", "lower", "vae", "dcgan", kind="cv", label="VAE's FID varies less over seeds (CV)"),
    )),
)


# -- statistics ---------------------------------------------------------------------------------
def _t_interval(values) -> tuple[float, float, float]:
    """mean and its Student t 95 % interval (NaN bounds with one value)."""
    from ..metrics.stability import seed_spread

    got = seed_spread(values, confidence=0.95)
    return got["mean"], got["mean"] - got["ci_half_width"], got["mean"] + got["ci_half_width"]


def _welch(a, b) -> tuple[float, float, float]:
    """mean(a) - mean(b) and its Welch t 95 % interval."""
    from scipy import stats

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    diff = float(np.mean(a) - np.mean(b))
    if len(a) < 2 or len(b) < 2:
        return diff, float("nan"), float("nan")
    if np.ptp(a) == 0 and np.ptp(b) == 0:  # no spread at all: the difference is exact
        return diff, diff, diff
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    return diff, float(ci.low), float(ci.high)


def _cv_interval(control, treatment) -> tuple[float, float, float]:
    """CV(control) - CV(treatment) and its percentile bootstrap 95 % interval."""
    from scipy import stats

    def cv(x, axis=-1):
        return np.std(x, axis=axis, ddof=1) / np.abs(np.mean(x, axis=axis))

    c, t = np.asarray(control, np.float64), np.asarray(treatment, np.float64)
    effect = float(cv(c) - cv(t)) if len(c) > 1 and len(t) > 1 else float("nan")
    if len(c) < 3 or len(t) < 3:
        return effect, float("nan"), float("nan")
    res = stats.bootstrap((c, t), lambda x, y, axis=-1: cv(x, axis) - cv(y, axis), n_resamples=2000,
                          method="percentile", random_state=0, vectorized=True)
    return effect, float(res.confidence_interval.low), float(res.confidence_interval.high)


def row_verdict(kind: str, effect: float, lo: float, hi: float, margin: float = 0.0) -> str:
    if not all(map(math.isfinite, (effect, lo, hi))):
        return "inconclusive"
    if kind == "flat":
        if -margin < lo and hi < margin:
            return "supported"
        return "contradicted" if hi < -margin or lo > margin else "inconclusive"
    return "supported" if lo > 0 else "contradicted" if hi < 0 else "inconclusive"


def evaluate_row(row: Row, groups: dict, run_dir, curves: dict | None = None) -> dict | None:
    """groups: {spec name: [records]} of one framework and dataset. None if the row's groups
    are absent (not part of this run)."""
    treat = groups.get(row.treatment, [])
    ctrl = groups.get(row.control, []) if row.control else []
    if not treat or (row.control and not ctrl):
        return None
    tv = [metric_value(r, row.metric, run_dir, curves) for r in treat]
    cv = [metric_value(r, row.metric, run_dir, curves) for r in ctrl]
    t_ok, c_ok = [v for v in tv if math.isfinite(v)], [v for v in cv if math.isfinite(v)]
    sign = -1.0 if row.better == "lower" else 1.0
    if row.kind == "diff":
        diff, lo, hi = _welch(t_ok, c_ok) if t_ok and c_ok else (float("nan"),) * 3
        effect, lo, hi = (sign * diff, *sorted((sign * lo, sign * hi)))
    elif row.kind == "cv":
        effect, lo, hi = _cv_interval(c_ok, t_ok)
    else:
        mean, lo, hi = _t_interval(t_ok) if t_ok else (float("nan"),) * 3
        if row.kind == "one":
            mean, lo, hi = mean - row.margin, lo - row.margin, hi - row.margin
            effect, lo, hi = (sign * mean, *sorted((sign * lo, sign * hi)))
        else:
            effect = mean
    verdict = row_verdict(row.kind, effect, lo, hi, row.margin)
    missing = (len(tv) - len(t_ok)) + (len(cv) - len(c_ok))
    note = f"{missing} run(s) without a value (failed, diverged or not evaluated)" if missing else ""
    if row.kind == "flat":
        note = (note + "; " if note else "") + f"supported when the interval lies within +-{row.margin:g}"
    steps = sorted({r["spec"]["steps"] for r in treat + ctrl if r.get("spec")})
    return {"label": row.label, "metric": row.metric, "better": row.better, "kind": row.kind,
            "treatment": row.treatment, "control": row.control, "effect": effect, "ci": [lo, hi],
            "n": [len(t_ok), len(c_ok)], "seeds": sorted({r["seed"] for r in treat + ctrl}),
            "steps": steps[0] if len(steps) == 1 else steps,
            "treatment_mean": float(np.mean(t_ok)) if t_ok else float("nan"),
            "control_mean": float(np.mean(c_ok)) if c_ok else float("nan"), "verdict": verdict, "note": note}


def claim_verdict(verdicts: list[str]) -> str:
    if "contradicted" in verdicts:
        return "contradicted"
    return "supported" if verdicts and all(v == "supported" for v in verdicts) else "inconclusive"


def read_curves(run_dir) -> dict:
    path = Path(run_dir) / STUDY_DIR / CURVES_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def verdicts(run_dir, curves: dict | None = None) -> dict:
    """Every claim's rows and verdicts from the records of a study run folder."""
    recs = records.read_records(run_dir)
    curves = read_curves(run_dir) if curves is None else curves
    cells: dict[tuple, dict[str, list]] = {}
    for r in recs:
        cells.setdefault((r["framework"], r["dataset"]), {}).setdefault(r["experiment"], []).append(r)
    out = []
    for claim in CLAIMS:
        rows, per_cell = [], {}
        for (fw, ds), groups in sorted(cells.items()):
            cell_rows = []
            for row in claim.rows:
                if ds not in row.datasets:
                    continue
                got = evaluate_row(row, groups, run_dir, curves)
                if got is not None:
                    cell_rows.append({"framework": fw, "dataset": ds, **got})
            if cell_rows:
                rows += cell_rows
                per_cell[f"{fw}/{ds}"] = claim_verdict([r["verdict"] for r in cell_rows])
        agree = {}
        for ds in sorted({k.split("/")[1] for k in per_cell}):
            pair = [per_cell.get(f"{fw}/{ds}") for fw in ("torch", "tensorflow")]
            if None not in pair:
                agree[ds] = pair[0] == pair[1]
        out.append({"claim": claim.number, "title": claim.title, "rows": rows, "verdict": per_cell,
                    "frameworks_agree": agree})
    return {"schema": SCHEMA, "claims": out, "cost": cost_table(recs)}


def cost_table(recs: list[dict]) -> list[dict]:
    """Per model, dataset and framework: runs, steps, median wall time per run, ms per step."""
    groups: dict[tuple, list] = {}
    for r in recs:
        groups.setdefault((r["experiment"], r["dataset"], r["framework"]), []).append(r)
    rows = []
    for (exp, ds, fw), rs in sorted(groups.items()):
        t = [r.get("timing") or {} for r in rs]
        rows.append({"model": exp, "dataset": ds, "framework": fw, "runs": len(rs),
                     "steps": int(np.median([r.get("steps_done", 0) for r in rs])),
                     "wall_s_per_run": float(np.median([x.get("wall_s", float("nan")) for x in t])),
                     "ms_per_step": float(np.median([x.get("ms_per_step", float("nan")) for x in t])),
                     "wall_s_total": float(np.nansum([x.get("wall_s", float("nan")) for x in t]))})
    return rows


# -- writing ------------------------------------------------------------------------------------
def _fmt(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:+.3g}"


def verdicts_markdown(result: dict) -> str:
    cells = sorted({k for c in result["claims"] for k in c["verdict"]})
    lines = ["# Study verdicts", "", "| claim | " + " | ".join(cells) + " | frameworks agree |",
             "|---|" + "---|" * (len(cells) + 1)]
    for c in result["claims"]:
        agree = ", ".join(f"{ds}: {'yes' if ok else 'no'}" for ds, ok in c["frameworks_agree"].items())
        lines.append(f"| {c['claim']}. {c['title']} | " + " | ".join(c["verdict"].get(k, "not run") for k in cells)
                     + f" | {agree} |")
    lines += ["", "Effects are signed so that a positive value supports the claim; intervals are 95 %.", ""]
    for c in result["claims"]:
        lines += [f"## Claim {c['claim']}: {c['title']}", "",
                  "| framework | dataset | question | treatment | control | effect [95 % CI] | n | steps | verdict |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in c["rows"]:
            lines.append(f"| {r['framework']} | {r['dataset']} | {r['label']} | {r['treatment']} | "
                         f"{r['control'] or '-'} | {_fmt(r['effect'])} [{_fmt(r['ci'][0])}, {_fmt(r['ci'][1])}] | "
                         f"{'/'.join(map(str, r['n']))} | {r['steps']} | {r['verdict']} |")
        lines.append("")
    lines += ["## Cost", "", "| model | dataset | framework | runs | steps | s per run | ms per step | total s |",
              "|---|---|---|---|---|---|---|---|"]
    for r in result["cost"]:
        lines.append(f"| {r['model']} | {r['dataset']} | {r['framework']} | {r['runs']} | {r['steps']} | "
                     f"{r['wall_s_per_run']:.0f} | {r['ms_per_step']:.1f} | {r['wall_s_total']:.0f} |")
    total = sum(r["wall_s_total"] for r in result["cost"])
    lines += ["", f"Total: {sum(r['runs'] for r in result['cost'])} runs, {total / 3600:.2f} h of training "
              f"and evaluation.", ""]
    return "\n".join(lines)


def write_verdicts(run_dir) -> dict:
    """run_dir/study/verdicts.json and verdicts.md, atomically; returns the result."""
    curves = read_curves(run_dir)
    result = verdicts(run_dir, curves)
    folder = Path(run_dir) / STUDY_DIR
    records.atomic_write_text(folder / CURVES_FILE, json.dumps(records.jsonable(curves), indent=0, sort_keys=True))
    records.atomic_write_text(folder / VERDICTS_FILE, json.dumps(records.jsonable(result), indent=1) + "\n")
    records.atomic_write_text(folder / "verdicts.md", verdicts_markdown(result))
    return result
