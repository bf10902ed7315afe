"""The study: the claims of the original VAE/GAN study as measured questions.

The claims live in a data file (bench/runs/claims.toml, or any user's file of that format:
bench/runs/claims.py reads and checks it). Each claim is a list of rows; a row names a metric,
the group that should do better (`treatment`) and the one it is compared with (`control`, none
for a one-group question), the datasets, the working budget in steps, the smallest effect of
interest (`margin`) and how the comparison is made:

- "diff": the difference of the group means over seeds, signed so that a positive effect
  supports the claim, Welch t interval;
- "one": the mean of one group minus a threshold, signed the same way, Student t interval;
- "flat": the mean of one group must lie within +-margin (an equivalence question);
- "spread": log(sd(control) / sd(treatment)) of the log metric over seeds, F interval;
- "failure_rate": the control's minus the treatment's share of runs that failed to train
  (bench/runs/trained.py), Newcombe interval, Fisher's exact test.

Only runs that trained enter an effect; each arm's failures are counted. Inside each claim
and framework the p-values are corrected for multiplicity (Holm by default, or
Benjamini-Hochberg; the output names it). The verdicts (bench/runs/stats.py for the tests):

- not judged at this budget: an arm has no run of at least its working budget, or none at all
  because the working plan leaves it out on that dataset (study_plan.left_out: the DCGANs on
  Fashion-MNIST, WGAN-GP on images, on 2 CPU cores);
- not judged: too few seeds (k of m): an arm has k seeds at its working budget in a framework
  for which the claims file's min_seeds asks for m (the shipped file: 5 in PyTorch, the primary
  framework, and 3 in TensorFlow);
- not judged: failed to train (k of n): most runs of an arm failed to train;
- no practical effect: the equivalence test against +-margin passes (corrected p < alpha;
  uncorrected, the 95 % interval lies inside +-margin);
- supported / contradicted: the test of no effect passes (corrected p < alpha) with a
  positive / negative effect; inconclusive otherwise. A "flat" row is supported when its
  equivalence test passes and contradicted when the interval lies wholly outside +-margin.

A claim's verdict for one framework and dataset combines its judged rows: contradicted if any
is, supported if all are, no practical effect if all are, otherwise inconclusive. The two
frameworks are compared on the difference of their effects with its interval (agree: inside
+-margin; differ: excluding 0; consistent: neither). Records from more than one code version
(`code_hash`, bench/runs/provenance.py; none recorded: "unknown") are refused unless
allow_mixed_code. docs/study.md states each claim's rows, margins and budgets.

Metrics come from the records (rec["metrics"]) or, for the loss-curve questions, from the
experiment's losses.csv (`oscillation:<term>`, `drop:<term>`, `drift:<term>`, defined below).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np

from ..core.specs import SpecError
from . import claims as claims_mod
from . import records, stats, study_views, trained
from .study_metrics import CURVES_FILE, cache_all_curves, metric_value
from .study_plan import (  # noqa: F401  the matrix, re-exported as study.DATASETS, study.study_plan, ...
    BUDGETS,
    CURVE_PROFILE,
    DATASETS,
    IMAGE_MODELS,
    IMAGES,
    KIND_ORDER,
    MIXTURE_GP_LAMBDA,
    MIXTURE_MODELS,
    MIXTURES,
    MLP_RECIPE,
    PLAN_SEEDS,
    PLAN_SKIP,
    RECIPES,
    STACKED,
    STACKED_MODELS,
    STACKED_N_EVAL,
    STACKED_PROFILE,
    STUDY_PROFILE,
    by_profile,
    expected_modes,
    left_out,
    profile_of,
    split_plan,
    study_plan,
    study_specs,
    with_recipe,
)
from .verdicts_md import verdicts_markdown

SCHEMA = 1
STUDY_DIR, VERDICTS_FILE = "study", "verdicts.json"  # RUN_DIR/study/verdicts.json


# -- code versions ------------------------------------------------------------------------------
class MixedCodeError(SpecError):
    """Records of one study folder trained by more than one version of the code (or by an
    unknown one): one line naming the hashes and their counts."""


def code_versions(recs: list[dict]) -> dict[str, int]:
    """{code hash (first 12 hex) or "unknown": number of records}, most common first."""
    counts = Counter((r.get("code_hash") or "unknown")[:12] for r in recs)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def check_code_versions(recs: list[dict], run_dir, allow_mixed: bool = False) -> dict:
    versions = code_versions(recs)
    mixed = len(versions) > 1 or "unknown" in versions
    if mixed and not allow_mixed:
        listing = ", ".join(f"{h}: {n}" for h, n in versions.items())
        raise MixedCodeError(
            f"{run_dir}: records of {len(versions)} code version(s) ({listing}; 'unknown': no "
            "code_hash recorded); retrain them with one version, or judge them together with "
            "--allow-mixed-code"
        )
    return {"versions": versions, "mixed": mixed, "allowed": bool(mixed and allow_mixed)}


# -- one row ------------------------------------------------------------------------------------
def _steps(rec: dict) -> int:
    return int((rec.get("spec") or {}).get("steps", rec.get("steps_done", 0)) or 0)


def at_budget(recs: list[dict], budget: int) -> tuple[list[dict], int | None]:
    """The records of one arm at its working budget: those of at least `budget` steps, and of
    them the step count most records share (ties: the larger). ([], None) if none reach it."""
    eligible = [r for r in recs if _steps(r) >= budget]
    if not eligible:
        return [], None
    counts = Counter(_steps(r) for r in eligible)
    steps = max(counts, key=lambda s: (counts[s], s))
    return [r for r in eligible if _steps(r) == steps], steps


def _split_trained(recs: list[dict]) -> tuple[list[dict], int, int]:
    """(runs that trained, failures to train, runs judged by the criterion)."""
    checks = [trained.trained(r) for r in recs]
    return (
        [r for r, ok in zip(recs, checks) if ok],
        sum(ok is False for ok in checks),
        sum(ok is not None for ok in checks),
    )


def _estimate(row, t_vals, c_vals, fails) -> stats.Estimate:
    sign = -1.0 if row.direction == "lower" else 1.0
    if row.kind == "diff":
        return stats.welch(t_vals, c_vals).signed(sign)
    if row.kind == "one":
        return stats.one_sample(t_vals, row.threshold).signed(sign)
    if row.kind == "flat":
        return stats.one_sample(t_vals, 0.0)
    if row.kind == "spread":  # positive when the arm claimed steadier (lower: the treatment) varies less
        return stats.spread_ratio(c_vals, t_vals) if sign < 0 else stats.spread_ratio(t_vals, c_vals)
    (kt, nt), (kc, nc) = fails["treatment"], fails["control"]
    return stats.rate_difference(kc, nc, kt, nt) if sign < 0 else stats.rate_difference(kt, nt, kc, nc)


def _detectable(row, t_vals, c_vals, cf) -> tuple[float, str]:
    if row.kind == "diff" and len(t_vals) > 1 and len(c_vals) > 1:
        return (
            stats.detectable_effect(stats.pooled_sd(t_vals, c_vals), len(t_vals), len(c_vals), cf.alpha, cf.power),
            "two-sample t, noncentral t, pooled sd",
        )
    if row.kind in ("one", "flat") and len(t_vals) > 1:
        return (
            stats.detectable_effect(float(np.std(t_vals, ddof=1)), len(t_vals), None, cf.alpha, cf.power),
            "one-sample t, noncentral t",
        )
    return float("nan"), ""


def evaluate_row(
    row,
    groups: dict,
    run_dir,
    curves: dict | None = None,
    cf=None,
    framework: str | None = None,
    dataset: str | None = None,
) -> dict | None:
    """One row on the records of one framework and dataset (groups: {spec name: [records]}),
    before the multiplicity correction. None if an arm's group is absent (not part of this run),
    unless the working plan leaves that arm out on `dataset`: then the row is not judged at this
    budget and says so."""
    cf = cf or claims_mod.load()
    arms = {"treatment": groups.get(row.treatment, []), "control": groups.get(row.control, []) if row.control else []}
    names = ("treatment", "control") if row.control else ("treatment",)
    absent = [arm for arm in names if not arms[arm]]
    if absent and not (dataset and all(left_out(getattr(row, arm), dataset) for arm in absent)):
        return None
    out = {
        "label": row.label,
        "metric": row.metric,
        "better": row.direction,
        "kind": row.kind,
        "treatment": row.treatment,
        "control": row.control,
        "margin": row.margin,
        "budget": {"treatment": row.budget[0], "control": row.budget[1] if row.control else None},
        "confound": row.confound,
        "effect": float("nan"),
        "ci": [float("nan"), float("nan")],
        "n": [0, 0],
        "p": float("nan"),
        "p_equivalence": float("nan"),
        "detectable_effect": float("nan"),
        "power_method": "",
        "treatment_mean": float("nan"),
        "control_mean": float("nan"),
        "note": "",
    }
    if absent:
        out.update(
            verdict="not judged at this budget",
            seeds=[],
            steps=[],
            failed_to_train={},
            note="; ".join(
                f"{arm} {getattr(row, arm)}: the working plan does not train it on {dataset} "
                f"(docs/study.md, Compute; working budget {row.budget[names.index(arm)]} steps)"
                for arm in absent
            ),
        )
        return out
    chosen, steps, notes = {}, {}, []
    for i, arm in enumerate(names):
        chosen[arm], steps[arm] = at_budget(arms[arm], row.budget[i])
        if steps[arm] is None:
            ran = sorted({_steps(r) for r in arms[arm]})
            out.update(
                verdict="not judged at this budget",
                seeds=sorted({r["seed"] for r in arms[arm]}),
                steps=ran,
                note=f"{arm} {getattr(row, arm)} ran {'/'.join(map(str, ran))} steps; working budget {row.budget[i]}",
            )
            out["failed_to_train"] = {}
            return out
    fails, vals = {}, {}
    for arm in names:
        ok, k, n = _split_trained(chosen[arm])
        fails[arm] = [k, n]
        if row.kind == "failure_rate":  # it counts runs and reads no metric value
            vals[arm] = []
            continue
        vals[arm] = [v for v in (metric_value(r, row.metric, run_dir, curves) for r in ok) if math.isfinite(v)]
        missing = len(ok) - len(vals[arm])
        if missing:
            notes.append(f"{arm}: {missing} trained run(s) without a value")
    if not row.control:
        fails["control"], vals["control"] = [0, 0], []
    out["failed_to_train"] = {arm: fails[arm] for arm in names}
    out["seeds"] = sorted({r["seed"] for arm in names for r in chosen[arm]})
    out["steps"] = steps["treatment"] if len(set(steps.values())) == 1 else [steps[a] for a in names]
    need = cf.seeds_needed(framework)
    few = {arm: len({r["seed"] for r in chosen[arm]}) for arm in names}
    few = {arm: k for arm, k in few.items() if k < need}
    if few:
        out["n"] = [len(chosen[arm]) for arm in names] + ([0] if not row.control else [])
        out.update(
            verdict=f"not judged: too few seeds ({min(few.values())} of {need})",
            note="; ".join(f"{arm} {getattr(row, arm)}: {k} seed(s) at the working budget" for arm, k in few.items())
            + f"; the claims file asks for {need} in {framework}",
        )
        return out
    t_vals, c_vals = vals["treatment"], vals["control"]
    out["n"] = [len(t_vals), len(c_vals)]
    out["treatment_mean"] = float(np.mean(t_vals)) if t_vals else float("nan")
    out["control_mean"] = float(np.mean(c_vals)) if c_vals else float("nan")
    if row.kind != "failure_rate":
        for arm in names:
            k, n = fails[arm]
            if n and k > n / 2:
                out.update(
                    verdict=f"not judged: failed to train ({k} of {n})",
                    note=f"{arm} {getattr(row, arm)}: {k} of {n} runs failed to train (bench/runs/trained.py)",
                )
                return out
        empty = [arm for arm in names if not vals[arm]]
        if empty:
            out.update(
                verdict="not judged: no values",
                note=f"{', '.join(empty)}: no trained run has a value of {row.metric} (not recorded, or "
                "its loss log is not kept)",
            )
            return out
    else:
        out["n"] = [fails["treatment"][1], fails["control"][1]]
        out["treatment_mean"] = fails["treatment"][0] / fails["treatment"][1] if fails["treatment"][1] else float("nan")
        out["control_mean"] = fails["control"][0] / fails["control"][1] if fails["control"][1] else float("nan")
    est = _estimate(row, t_vals, c_vals, fails)
    out["effect"], out["ci"] = est.effect, [est.lo, est.hi]
    if row.kind == "flat":
        out["p"], out["p_equivalence"] = est.p_out(row.margin), est.p_eq(row.margin)
    else:
        out["p"], out["p_equivalence"] = est.p0(), est.p_eq(row.margin)
    out["detectable_effect"], out["power_method"] = _detectable(row, t_vals, c_vals, cf)
    if row.confound:
        notes.append(f"confound: {row.confound}")
    out["note"] = "; ".join(notes)
    out["verdict"] = None  # set after the correction (judge_claim)
    out["_estimate"] = est
    return out


def row_verdict(
    kind: str,
    effect: float,
    p: float,
    p_eq: float,
    alpha: float = 0.05,
    lo: float = float("nan"),
    hi: float = float("nan"),
    margin: float = 0.0,
) -> str:
    """The verdict of one row from its (corrected) p-values; see the module's docstring. A
    failure-rate row has no equivalence test: its 95 % interval inside +-margin stands for it."""
    if kind == "flat":
        if p_eq < alpha:
            return "supported"
        return "contradicted" if p < alpha else "inconclusive"
    if not math.isfinite(effect):
        return "inconclusive"
    if p_eq < alpha or (kind == "failure_rate" and margin > 0 and -margin < lo and hi < margin):
        return "no practical effect"
    if p < alpha:
        return "supported" if effect > 0 else "contradicted"
    return "inconclusive"


def judge_claim(rows: list[dict], correction: str, alpha: float) -> None:
    """Correct the rows' p-values inside one claim and framework (tests of an effect, and the
    equivalence tests, each as one family), then set each row's verdict."""
    open_rows = [r for r in rows if r.get("verdict") is None]
    p_adj = stats.adjust([r["p"] for r in open_rows], correction)
    eq_adj = stats.adjust([r["p_equivalence"] for r in open_rows], correction)
    for r, p, q in zip(open_rows, p_adj, eq_adj):
        r["p_adjusted"], r["p_equivalence_adjusted"], r["correction"] = p, q, correction
        r["verdict"] = row_verdict(r["kind"], r["effect"], p, q, alpha, r["ci"][0], r["ci"][1], r["margin"])


def claim_verdict(verdicts: list[str]) -> str:
    judged = [v for v in verdicts if not v.startswith("not judged")]
    if not judged:
        return "not judged" if verdicts else "inconclusive"
    if "contradicted" in judged:
        return "contradicted"
    for v in ("supported", "no practical effect"):
        if all(x == v for x in judged):
            return v
    return "inconclusive"


def read_curves(run_dir) -> dict:
    path = Path(run_dir) / STUDY_DIR / CURVES_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def _agreement(rows: list[dict], claim) -> tuple[list[dict], dict]:
    """Per row and dataset judged in both frameworks: the difference of the two effects
    (PyTorch minus TensorFlow) with its interval and whether they agree."""
    by_key: dict[tuple, dict] = {}
    for r in rows:
        by_key.setdefault((r["_row"], r["dataset"]), {})[r["framework"]] = r
    out, per_ds = [], {}
    for (i, ds), pair in by_key.items():
        if "torch" not in pair or "tensorflow" not in pair:
            continue
        a, b = pair["torch"].get("_estimate"), pair["tensorflow"].get("_estimate")
        if a is None or b is None:
            continue
        d = stats.difference(a, b)
        verdict = stats.agreement(d, claim.rows[i].margin)
        out.append(
            {
                "dataset": ds,
                "label": claim.rows[i].label,
                "difference": d.effect,
                "ci": [d.lo, d.hi],
                "margin": claim.rows[i].margin,
                "agreement": verdict,
            }
        )
        if verdict != "n/a":
            per_ds[ds] = per_ds.get(ds, True) and verdict != "differ"
    return out, dict(sorted(per_ds.items()))


def verdicts(
    run_dir, curves: dict | None = None, claims_file=None, correction: str | None = None, allow_mixed_code: bool = False
) -> dict:
    """Every claim's rows and verdicts from the records of a study run folder. claims_file: a
    ClaimsFile, a path, or None (the shipped file); correction overrides the file's."""
    cf = claims_file if isinstance(claims_file, claims_mod.ClaimsFile) else claims_mod.load(claims_file)
    correction = correction or cf.correction
    recs = records.read_records(run_dir)
    code = check_code_versions(recs, run_dir, allow_mixed_code)
    curves = read_curves(run_dir) if curves is None else curves
    cells: dict[tuple, dict[str, list]] = {}
    for r in recs:
        cells.setdefault((r["framework"], r["dataset"]), {}).setdefault(r["experiment"], []).append(r)
    out = []
    for claim in cf.claims:
        rows = []
        for (fw, ds), groups in sorted(cells.items()):
            for i, row in enumerate(claim.rows):
                if ds not in row.datasets:
                    continue
                got = evaluate_row(row, groups, run_dir, curves, cf, fw, ds)
                if got is not None:
                    rows.append({"framework": fw, "dataset": ds, **got, "_row": i})
        for fw in sorted({r["framework"] for r in rows}):
            judge_claim([r for r in rows if r["framework"] == fw], correction, cf.alpha)
        per_cell: dict[str, str] = {}
        for key in sorted({f"{r['framework']}/{r['dataset']}" for r in rows}):
            per_cell[key] = claim_verdict([r["verdict"] for r in rows if f"{r['framework']}/{r['dataset']}" == key])
        agreement, agree = _agreement(rows, claim)
        for r in rows:
            r.pop("_estimate", None)
            r.pop("_row", None)
        out.append(
            {
                "claim": claim.number,
                "title": claim.title,
                # every dataset a row names, in the file's order: a cell without rows is then "not run"
                "datasets": list(dict.fromkeys(d for row in claim.rows for d in row.datasets)),
                "rows": rows,
                "verdict": per_cell,
                "frameworks_agree": agree,
                "agreement": agreement,
            }
        )
    shipped = Path(cf.path).resolve() == claims_mod.DEFAULT_FILE.resolve()
    return {
        "schema": SCHEMA,
        "claims_file": "bench/runs/claims.toml (shipped)" if shipped else str(cf.path),
        "correction": correction,
        "correction_name": stats.CORRECTIONS[correction],
        "alpha": cf.alpha,
        "power": cf.power,
        "code": code,
        "claims": out,
        "cost": cost_table(recs),
        "budget_views": study_views.budget_views(cf, cells, run_dir, correction, (evaluate_row, judge_claim)),
    }


def cost_table(recs: list[dict]) -> list[dict]:
    """Per model, dataset and framework: runs, steps, median wall time per run, ms per step."""
    groups: dict[tuple, list] = {}
    for r in recs:
        groups.setdefault((r["experiment"], r["dataset"], r["framework"]), []).append(r)
    rows = []
    for (exp, ds, fw), rs in sorted(groups.items()):
        t = [r.get("timing") or {} for r in rs]
        rows.append(
            {
                "model": exp,
                "dataset": ds,
                "framework": fw,
                "runs": len(rs),
                "steps": int(np.median([r.get("steps_done", 0) for r in rs])),
                "wall_s_per_run": float(np.median([x.get("wall_s", float("nan")) for x in t])),
                "ms_per_step": float(np.median([x.get("ms_per_step", float("nan")) for x in t])),
                "wall_s_total": float(np.nansum([x.get("wall_s", float("nan")) for x in t])),
            }
        )
    return rows


def write_verdicts(run_dir, claims_file=None, correction: str | None = None, allow_mixed_code: bool = False) -> dict:
    """run_dir/study/verdicts.json and verdicts.md, atomically; returns the result."""
    curves = read_curves(run_dir)
    cache_all_curves(records.read_records(run_dir), run_dir, curves)
    result = verdicts(run_dir, curves, claims_file, correction, allow_mixed_code)
    folder = Path(run_dir) / STUDY_DIR
    records.atomic_write_text(folder / CURVES_FILE, json.dumps(records.jsonable(curves), indent=0, sort_keys=True))
    records.atomic_write_text(folder / VERDICTS_FILE, json.dumps(records.jsonable(result), indent=1) + "\n")
    records.atomic_write_text(folder / "verdicts.md", verdicts_markdown(result))
    return result
