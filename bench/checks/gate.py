"""The regression gate: compare a run's metrics with a committed baseline.

A baseline (results/baselines/*.json) lists checks:
  {"experiment", "dataset", "framework", "metric", "value", "direction", "tolerance",
   "untrained", "steps"}
direction "lower" (lower is better: regressed if current > value + tolerance), "higher"
(regressed if current < value - tolerance) or "both" (regressed if |current - value| >
tolerance). The current value is the mean over the run's seeds; a check whose experiment is
missing from the run, whose metric is missing from any of its runs (a diverged run records no
quality metrics), or whose value is NaN/inf, fails.

`make_baseline` derives each tolerance from the spread over seeds: a one-sided prediction
interval for one new run (t quantile x the seed standard deviation pooled over both twins x
sqrt(1 + 1/n), alpha 1e-3 per check), floored at rel_floor * |mean| and abs_floor. It scores
the same experiments untrained (their initial weights, the same metric code and sample seeds):
a check whose band contains the untrained model's value cannot tell a trained model from an
untrained one, so it is left out and reported.

A baseline also names its profile, the genbench version and each experiment's step budget; a
run of another profile or budget, or a baseline of another genbench version, is bad input
(BaselineError, exit code 2), not a regression. `gate` results can be written as JSON and as
JUnit XML (one testcase per check) for CI systems.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from tabulate import tabulate

from ..metrics.catalog import DIRECTIONS  # which way each gated metric is better
from ..runs.records import as_float, atomic_write_text, jsonable, read_records, versions
from ..runs.schema import BASELINE_SCHEMA, Baseline, RecordError
from ..runs.schema import load_baseline as load_baseline_file
from ..runs.tables import flat_row

GATED_PREFIXES = ("final.",)  # loss terms: "both", only with make_baseline(losses=True)


class BaselineError(ValueError):
    pass


def _key(row) -> tuple:
    return row["experiment"], row["dataset"], row["framework"]


def current_values(run_dir) -> dict[tuple, dict[str, list[float]]]:
    out: dict[tuple, dict[str, list[float]]] = {}
    for rec in read_records(run_dir):
        row = flat_row(rec)
        vals = out.setdefault(_key(row), {})
        for k, v in row.items():
            if k not in ("experiment", "dataset", "framework"):
                vals.setdefault(k, []).append(v if k == "status" else as_float(v))
        vals.setdefault("spec.steps", []).append(float(rec["spec"]["steps"]))
    return out


def _genbench_version() -> str:
    return versions().get("genbench", "unknown")


def check_compatible(run_dir, baseline: Baseline, path) -> None:
    """A baseline judges runs of its own profile, budgets and genbench version, nothing else."""
    want = baseline.genbench_version
    have = _genbench_version()
    if want and want != have:
        raise BaselineError(
            f"baseline {path} was made by genbench {want}, this is {have}: refresh it "
            f"on purpose with `genbench baseline RUN_DIR --out {path}`"
        )
    current = current_values(run_dir)
    for c in baseline.checks:
        key = (c.experiment, c.dataset, c.framework)
        steps = current.get(key, {}).get("spec.steps")
        if steps and c.steps is not None and any(s != c.steps for s in steps):
            raise BaselineError(
                f"{'/'.join(key)} ran {int(steps[0])} steps, baseline {path} was made at {c.steps} "
                f"(profile {baseline.profile}): gate a run of the baseline's own profile"
            )


def load_baseline(path) -> Baseline:
    """The baseline at `path`, every check's fields typed (bench/runs/schema.py); BaselineError
    (one line naming the file, and the field where one is wrong) when it is missing or not one."""
    path = Path(path)
    if not path.exists():
        raise BaselineError(f"baseline {path} not found; make one with `genbench baseline RUN_DIR --out {path}`")
    try:
        return load_baseline_file(path)
    except RecordError as e:
        raise BaselineError(f"baseline {e}") from None


def evaluate(run_dir, baseline: dict) -> list[dict]:
    current = current_values(run_dir)
    rows = []
    for c in baseline["checks"]:
        key = (c["experiment"], c["dataset"], c["framework"])
        vals = current.get(key, {}).get(c["metric"])
        runs = len(current.get(key, {}).get("status", []))
        value, tol, direction = float(c["value"]), float(c["tolerance"]), c["direction"]
        if vals is None:
            now, ok, why = float("nan"), False, "missing from run"
        elif len(vals) < runs:  # a diverged run records no quality metrics: the others cannot stand in
            now, ok, why = float("nan"), False, f"missing in {runs - len(vals)} of {runs} runs (diverged?)"
        else:
            finite = [v for v in vals if isinstance(v, float) and math.isfinite(v)]
            now = float(np.mean(finite)) if len(finite) == len(vals) else float("nan")
            if not math.isfinite(now):
                ok, why = False, "not finite (diverged?)"
            else:
                ok = band_contains(c, now)
                why = {"lower": "worse (higher)", "higher": "worse (lower)", "both": "changed"}[direction]
        rows.append(
            {
                **key_dict(key),
                "metric": c["metric"],
                "baseline": value,
                "current": now,
                "delta": now - value,
                "tolerance": tol,
                "direction": direction,
                "untrained": c.get("untrained"),
                "result": "ok" if ok else f"REGRESSED: {why}",
            }
        )
    return rows


def band(check: dict) -> tuple[float, float]:
    """(lowest, highest) value that passes a check; -inf / inf on the side that is better."""
    value, tol = float(check["value"]), float(check["tolerance"])
    return {"lower": (-math.inf, value + tol), "higher": (value - tol, math.inf), "both": (value - tol, value + tol)}[
        check["direction"]
    ]


def band_contains(check: dict, x: float) -> bool:
    lo, hi = band(check)
    return lo <= x <= hi


def key_dict(key) -> dict:
    return dict(zip(("experiment", "dataset", "framework"), key))


def format_report(rows: list[dict]) -> str:
    cols = [
        "experiment",
        "dataset",
        "framework",
        "metric",
        "baseline",
        "current",
        "delta",
        "tolerance",
        "direction",
        "untrained",
        "result",
    ]
    return tabulate(
        [["-" if r[c] is None else r[c] for c in cols] for r in rows], headers=cols, tablefmt="github", floatfmt=".4g"
    )


def check_name(r: dict) -> str:
    return f"{r['experiment']}/{r['dataset']}/{r['framework']}/{r['metric']}"


def to_json(rows: list[dict], baseline_path) -> str:
    failed = [check_name(r) for r in rows if r["result"] != "ok"]
    doc = {
        "baseline": str(baseline_path),
        "passed": not failed,
        "n_checks": len(rows),
        "n_failed": len(failed),
        "failed": failed,
        "checks": [{**r, "name": check_name(r)} for r in rows],
    }
    return json.dumps(jsonable(doc), indent=2) + "\n"


def to_junit(rows: list[dict], baseline_path) -> str:
    """JUnit XML: one testsuite, one testcase per check (classname experiment.dataset.framework)."""
    failed = [r for r in rows if r["result"] != "ok"]
    suite = ET.Element(
        "testsuite", name="genbench gate", tests=str(len(rows)), failures=str(len(failed)), errors="0", skipped="0"
    )
    ET.SubElement(ET.SubElement(suite, "properties"), "property", name="baseline", value=str(baseline_path))
    for r in rows:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"{r['experiment']}.{r['dataset']}.{r['framework']}",
            name=r["metric"],
            time="0",
        )
        detail = (
            f"current {r['current']:.6g}, baseline {r['baseline']:.6g}, tolerance {r['tolerance']:.6g}, "
            f"direction {r['direction']}"
        )
        if r["result"] != "ok":
            ET.SubElement(case, "failure", message=f"{r['result']}: {detail}", type="regression").text = detail
        else:
            ET.SubElement(case, "system-out").text = detail
    root = ET.Element("testsuites", tests=str(len(rows)), failures=str(len(failed)))
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def gate(run_dir, baseline_path, json_path=None, junit_path=None) -> tuple[bool, str]:
    baseline = load_baseline(baseline_path)
    check_compatible(run_dir, baseline, baseline_path)
    rows = evaluate(run_dir, baseline.raw)
    failed = [r for r in rows if r["result"] != "ok"]
    if json_path:
        atomic_write_text(json_path, to_json(rows, baseline_path))
    if junit_path:
        atomic_write_text(junit_path, to_junit(rows, baseline_path))
    summary = f"{len(rows) - len(failed)}/{len(rows)} checks passed"
    if failed:
        summary += "; regressed: " + ", ".join(check_name(r) for r in failed)
    return not failed, format_report(rows) + "\n\n" + summary


def baseline_table(doc: dict) -> str:
    """Each check with its untrained value, trained value and band (markdown)."""
    rows = []
    for c in doc["checks"]:
        lo, hi = band(c)
        passes = f"<= {hi:.4g}" if lo == -math.inf else f">= {lo:.4g}" if hi == math.inf else f"{lo:.4g} .. {hi:.4g}"
        rows.append(
            [
                c["experiment"],
                c["dataset"],
                c["framework"],
                c["metric"],
                c.get("steps"),
                "-" if c.get("untrained") is None else f"{c['untrained']:.4g}",
                f"{c['value']:.4g} ± {c.get('std', 0.0):.2g} ({c.get('seeds', '?')} seeds)",
                passes,
            ]
        )
    return tabulate(
        rows,
        headers=[
            "experiment",
            "dataset",
            "framework",
            "metric",
            "steps",
            "untrained",
            "trained (mean ± std)",
            "passes when",
        ],
        tablefmt="github",
    )


def untrained_values(run_dir) -> dict[tuple, dict[str, float]]:
    """Every metric of each experiment in the run, scored on its untrained model: the initial
    weights of the recorded spec and seed, with the runner's own metric code and sample seed."""
    import impls

    from ..core.data import open_dataset
    from ..core.specs import ExperimentSpec
    from ..metrics import metrics_for
    from ..runs.runner import EVAL_SEED_KEY

    out: dict[tuple, dict[str, list[float]]] = {}
    seen = set()
    datasets = {}  # one Dataset per dataset name, shared by the experiments on it
    for rec in read_records(run_dir):
        spec = ExperimentSpec.from_dict(rec["spec"])
        key = (rec["experiment"], rec["dataset"], rec["framework"])
        if (key, spec.seed) in seen:
            continue
        seen.add((key, spec.seed))
        trainer = impls.load(rec["framework"]).build(spec)
        dataset = datasets.setdefault(spec.dataset, open_dataset(spec.dataset))
        got = metrics_for(
            spec,
            trainer,
            np.random.default_rng([spec.seed, EVAL_SEED_KEY]),
            n_samples=rec.get("n_eval", 2000),
            dataset=dataset,
        )
        for k, v in got.items():
            out.setdefault(key, {}).setdefault(k, []).append(float(v))
    return {key: {k: float(np.mean(v)) for k, v in vals.items()} for key, vals in out.items()}


def prediction_tolerance(groups: list[np.ndarray], alpha: float) -> tuple[float, float, int]:
    """Half-width of a one-sided (1 - alpha) prediction interval for one new run, from the seed
    spread of one experiment in each twin: t_{nu, 1-alpha} * s_p * sqrt(1 + 1/n).

    The twins are one model built from one spec; their seed-to-seed spread is one distribution,
    so the standard deviation is pooled over both (s_p, nu = sum(n_i - 1) degrees of freedom).
    A new run on another machine is another draw from it: float32 GAN training is chaotic, and a
    change of rounding moves a run about as far as a change of seed. Returns (half-width, s_p, nu)."""
    from scipy import stats

    nu = sum(len(g) - 1 for g in groups)
    if nu < 1:
        return 0.0, 0.0, 0
    s_p = float(np.sqrt(sum(((g - g.mean()) ** 2).sum() for g in groups) / nu))
    n = min(len(g) for g in groups)
    return float(stats.t.ppf(1.0 - alpha, nu) * s_p * np.sqrt(1.0 + 1.0 / n)), s_p, nu


def make_baseline(
    run_dir,
    out_path,
    *,
    alpha=1e-3,
    rel_floor=0.1,
    abs_floor=0.05,
    profile=None,
    command=None,
    losses=False,
    untrained=True,
    log=print,
) -> Path:
    """A baseline from a run with several seeds: every directed quality metric (and with losses=True
    every final loss term, direction "both"). The tolerance is the larger of the prediction
    half-width (prediction_tolerance, pooled over the twins) and the floors rel_floor * |mean|
    and abs_floor. With untrained=True (the default) each check also stores the untrained
    model's value, and a check whose band contains it is left out."""
    checks = []
    profiles = {r.get("profile") for r in read_records(run_dir)} - {None}
    profile = profile or (profiles.pop() if len(profiles) == 1 else None)
    current = current_values(run_dir)
    for key, vals in sorted(current.items()):
        if vals.get("status") and any(s != "ok" for s in vals["status"]):
            raise BaselineError(f"{key} did not finish ok in {run_dir}; a baseline needs clean runs")
    for key, vals in sorted(current.items()):
        for metric, vs in sorted(vals.items()):
            direction = DIRECTIONS.get(metric)
            if direction is None and losses and metric.startswith(GATED_PREFIXES):
                direction = "both"
            if direction is None:
                continue
            arr = np.asarray(vs, dtype=float)
            if not np.all(np.isfinite(arr)):
                continue
            twins = [
                np.asarray(v[metric], dtype=float)
                for k, v in sorted(current.items())
                if k[:2] == key[:2] and metric in v and np.all(np.isfinite(np.asarray(v[metric], float)))
            ]
            half, s_p, nu = prediction_tolerance(twins, alpha)
            mean = float(arr.mean())
            std = float(arr.std(ddof=1)) if len(arr) > 1 else 0.0
            tol = max(half, rel_floor * abs(mean), abs_floor)
            checks.append(
                {
                    **key_dict(key),
                    "metric": metric,
                    "value": mean,
                    "direction": direction,
                    "tolerance": tol,
                    "seeds": len(arr),
                    "std": std,
                    "pooled_std": s_p,
                    "dof": nu,
                    "steps": int(vals["spec.steps"][0]),
                    "untrained": None,
                }
            )
    if untrained:
        base = untrained_values(run_dir)
        kept = []
        for c in checks:
            u = base.get((c["experiment"], c["dataset"], c["framework"]), {}).get(c["metric"])
            c["untrained"] = u
            if u is not None and band_contains(c, u):
                log(
                    f"left out {check_name(c)}: band {c['value']:.4g} +- {c['tolerance']:.4g} ({c['direction']} "
                    f"is better) contains the untrained value {u:.4g}"
                )
                continue
            kept.append(c)
        checks = kept
    if not checks:
        raise BaselineError(f"no gated metrics found under {run_dir}")
    doc = {
        "schema": BASELINE_SCHEMA,
        "profile": profile,
        "genbench_version": _genbench_version(),
        "command": command,
        "rule": f"tolerance = max(t(dof, 1 - {alpha:g}) * pooled std over seeds and twins * sqrt(1 + 1/seeds), "
        f"{rel_floor} |mean|, {abs_floor}); checks whose band contains the untrained model's value "
        f"are left out",
        "checks": checks,
    }
    return atomic_write_text(out_path, json.dumps(doc, indent=2) + "\n")
