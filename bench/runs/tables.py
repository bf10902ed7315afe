"""Tables from records: markdown and CSV via tabulate, one table per question.

- results.md / results.csv: one row per experiment run (long form), with its status and, for
  a run that failed or whose evaluation failed, the error.
- comparison.md / comparison.csv: the cross-framework table, experiment x metric with the
  PyTorch and TensorFlow columns side by side (mean +- std over seeds, n seeds); its first row
  per experiment is the status of every seed. Values of diverged seeds (status "diverged",
  the one definition in bench/core/divergence.py) are not averaged in; the cell counts them.
- ablation.md / ablation.csv: each stabilized variant next to its bare model.
- report.md: links to the tables and every experiment's figures, frameworks side by side.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np
from tabulate import tabulate

from ..metrics.catalog import HEAD_METRICS
from .records import as_float, atomic_write_text, read_records
from .trained import cell as trained_cell

# The columns a reader looks for first (HEAD_METRICS); any other metric follows in alphabetical order.


def flat_row(rec: dict) -> dict:
    timing = rec.get("timing") or {}
    row = {
        "experiment": rec["experiment"],
        "dataset": rec["dataset"],
        "framework": rec["framework"],
        "seed": rec["seed"],
        "status": rec["status"],
        "steps": rec.get("steps_done", 0),
        "ms/step": timing.get("ms_per_step", float("nan")),
        "img/s": timing.get("images_per_s", float("nan")),
    }
    if "loop_ms_per_step" in timing:  # the whole loop iteration, for records that time it
        row["loop ms/step"], row["overhead %"] = timing["loop_ms_per_step"], timing.get("overhead_pct", float("nan"))
    for k, v in rec.get("final_losses", {}).items():
        row[f"final.{k}"] = v
    for k, v in (rec.get("metrics") or {}).items():
        if isinstance(v, (int, float, str)) and k != "metrics_error":
            row[k] = v
    return row


def metric_names(rows: list[dict]) -> list[str]:
    fixed = {"experiment", "dataset", "framework", "seed", "status", "steps", "error"}
    names = []
    for r in rows:
        names += [k for k in r if k not in fixed and k not in names]
    head = [m for m in HEAD_METRICS if m in names]
    return head + [n for n in names if n not in head]


def _fmt(v) -> str:
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        return f"{v:.4g}"
    return str(v)


def _csv(rows: list[dict], columns: list[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    return buf.getvalue()


ERROR_WIDTH = 120  # characters of an error message in a markdown cell (the CSV and the record keep it whole)


def _error(rec: dict) -> str:
    return str(rec.get("error") or "")


def _md_cell(text: str) -> str:
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= ERROR_WIDTH else text[: ERROR_WIDTH - 3] + "..."


def results_table(recs: list[dict]) -> tuple[str, str]:
    rows = [flat_row(r) for r in recs]
    for row, rec in zip(rows, recs):
        row["error"] = _error(rec)
    names = metric_names(rows)
    for row, rec in zip(rows, recs):  # the study's criterion (bench/runs/trained.py): yes, no (why), or empty
        row["trained"] = trained_cell(rec)
    cols = ["experiment", "dataset", "framework", "seed", "status", "steps"] + names + ["trained", "error"]
    md = tabulate(
        [[_md_cell(r["error"]) if c == "error" else _fmt(r.get(c, "")) for c in cols] for r in rows],
        headers=cols,
        tablefmt="github",
    )
    return md, _csv(rows, cols)


def aggregate(values: list[float], n_diverged: int = 0) -> str:
    """mean ± std (n) of the finite values of seeds that did not diverge; diverged seeds are
    counted, not averaged."""
    vals = [v for v in values if math.isfinite(v)]
    note = f"; {n_diverged} diverged" if n_diverged else ""
    if not vals:
        return "diverged" if n_diverged else "n/a"
    if len(vals) == 1 and not note:
        return _fmt(vals[0])
    spread = f" ± {np.std(vals, ddof=1):.2g}" if len(vals) > 1 else ""
    return f"{np.mean(vals):.4g}{spread} (n={len(vals)}{note})"


def status_cell(recs: list[dict]) -> str:
    """The status of each seed of one experiment in one framework: "ok" when every seed is,
    otherwise each seed's status and error."""
    if recs and all(r["status"] == "ok" for r in recs):
        return "ok" if len(recs) == 1 else f"ok (n={len(recs)})"
    parts = []
    for r in sorted(recs, key=lambda r: r["seed"]):
        err = f": {_error(r)}" if _error(r) and r["status"] != "ok" else ""
        parts.append(f"s{r['seed']} {r['status']}{err}")
    return "; ".join(parts)


def summary_keys(recs: list[dict]) -> set[str]:
    """Per-term loss statistics (mean/std/abs_step); results.csv keeps them, comparisons skip all
    but the discriminator's oscillation."""
    keys = set()
    for r in recs:
        for term in r.get("final_losses", {}):
            keys |= {f"{term}_mean", f"{term}_std", f"{term}_abs_step"}
    return (keys - {"d_loss_std"}) | {"diverged_step"}


def comparison_table(recs: list[dict]) -> tuple[str, str]:
    """experiment/dataset/metric rows, one column per framework, plus the torch/TF ratio; the
    first row of each experiment is its status."""
    rows = [flat_row(r) for r in recs]
    present = {r["framework"] for r in rows}
    frameworks = [f for f in ("torch", "tensorflow") if f in present] + sorted(present - {"torch", "tensorflow"})
    groups: dict[tuple, dict[str, list[dict]]] = {}
    by_rec: dict[tuple, dict[str, list[dict]]] = {}
    for r, rec in zip(rows, recs):
        groups.setdefault((r["experiment"], r["dataset"]), {}).setdefault(r["framework"], []).append(r)
        by_rec.setdefault((r["experiment"], r["dataset"]), {}).setdefault(r["framework"], []).append(rec)
    out = []
    for (exp, ds), by_fw in groups.items():
        status_line = {"experiment": exp, "dataset": ds, "metric": "status"}
        for fw in frameworks:
            status_line[fw] = status_cell(by_rec[(exp, ds)].get(fw, []))
        out.append(status_line)
        names = [n for n in metric_names([r for rs in by_fw.values() for r in rs]) if n not in summary_keys(recs)]
        for name in names:
            line = {"experiment": exp, "dataset": ds, "metric": name}
            means = {}
            for fw in frameworks:
                with_name = [r for r in by_fw.get(fw, []) if name in r]
                n_div = sum(r["status"] == "diverged" for r in with_name)
                vals = [as_float(r.get(name)) for r in with_name if r["status"] != "diverged"]
                line[fw] = aggregate(vals, n_div) if with_name else ""
                finite = [v for v in vals if math.isfinite(v)]
                means[fw] = float(np.mean(finite)) if finite else float("nan")
            if len(frameworks) == 2:
                a, b = (means[f] for f in frameworks)
                ratio = a / b if b and math.isfinite(a) and math.isfinite(b) else float("nan")
                line[f"{frameworks[0]}/{frameworks[1]}"] = _fmt(ratio) if math.isfinite(ratio) else ""
            out.append(line)
    cols = (
        ["experiment", "dataset", "metric"]
        + frameworks
        + ([f"{frameworks[0]}/{frameworks[1]}"] if len(frameworks) == 2 else [])
    )
    md = tabulate(
        [[_md_cell(r.get(c, "")) if r["metric"] == "status" else r.get(c, "") for c in cols] for r in out],
        headers=cols,
        tablefmt="github",
    )
    return md, _csv(out, cols)


ABLATION_METRICS = (
    "fid",
    "classes_covered",
    "class_kl",
    "modes_covered",
    "high_quality_share",
    "test_elbo",
    "d_loss_std",
    "diverged",
)


def ablation_table(recs: list[dict]) -> tuple[str, str] | None:
    """Stabilizer ablation: each 'model+stabilizer' row next to its bare 'model' (same dataset,
    framework), metric by metric, mean over the seeds that did not diverge (a diverged seed's
    metrics are NaN or absent: it is counted in the `diverged` column, never averaged)."""
    rows = [flat_row(r) for r in recs]
    means: dict[tuple, dict[str, list]] = {}
    for r in rows:
        key = (r["experiment"], r["dataset"], r["framework"])
        for m in ABLATION_METRICS:
            if m in r and (m == "diverged" or r["status"] != "diverged"):
                means.setdefault(key, {}).setdefault(m, []).append(as_float(r[m]))

    def mean(values) -> float:
        finite = [v for v in values if math.isfinite(v)]
        return float(np.mean(finite)) if finite else float("nan")

    out = []
    for (exp, ds, fw), vals in sorted(means.items()):
        base = (exp.split("+")[0], ds, fw)
        if "+" not in exp or base not in means:
            continue
        line = {"experiment": exp, "dataset": ds, "framework": fw}
        for m in ABLATION_METRICS:
            if m in vals and m in means[base]:
                line[m] = f"{_fmt(mean(vals[m]))} (bare {_fmt(mean(means[base][m]))})"
        out.append(line)
    if not out:
        return None
    cols = ["experiment", "dataset", "framework"] + [m for m in ABLATION_METRICS if any(m in r for r in out)]
    md = tabulate([[r.get(c, "") for c in cols] for r in out], headers=cols, tablefmt="github")
    return md, _csv(out, cols)


def render(run_dir) -> dict[str, Path]:
    """Write report.md, results.{md,csv}, comparison.{md,csv} and (when the run pairs a model with
    its stabilized variants) ablation.{md,csv} into run_dir from its records."""
    run_dir = Path(run_dir)
    recs = read_records(run_dir)
    if not recs:
        raise FileNotFoundError(f"no records under {run_dir / 'records'}: run `genbench run --out {run_dir}` first")
    written = {"report.md": atomic_write_text(run_dir / "report.md", report(run_dir, recs))}
    tables = {"results": results_table(recs), "comparison": comparison_table(recs), "ablation": ablation_table(recs)}
    for name, table in tables.items():
        if table is None:
            continue
        md, csv_text = table
        written[f"{name}.md"] = atomic_write_text(run_dir / f"{name}.md", md + "\n")
        written[f"{name}.csv"] = atomic_write_text(run_dir / f"{name}.csv", csv_text)
    return written


FIGURES = (
    ("samples_final.png", "samples (fixed noise)"),
    ("loss_curves.png", "loss curves"),
    ("latent_pca.png", "latent PCA"),
    ("interpolation.png", "interpolation"),
)


def report(run_dir: Path, recs: list[dict]) -> str:
    """A page that links the tables and shows each experiment's figures, frameworks side by side."""
    lines = [
        f"# genbench run: {run_dir.name}",
        "",
        "Tables: [comparison](comparison.md) ([csv](comparison.csv)), [results](results.md) "
        "([csv](results.csv)), and where the run pairs a model with its stabilized variants, "
        "[ablation](ablation.md).",
        "",
    ]
    groups: dict[tuple, list[dict]] = {}
    for r in recs:
        groups.setdefault((r["experiment"], r["dataset"], r["seed"]), []).append(r)
    for (exp, ds, seed), rs in groups.items():
        rs = sorted(rs, key=lambda r: r["framework"] != "torch")
        lines += [
            f"## {exp} on {ds}, seed {seed}",
            "",
            "| figure | " + " | ".join(f"{r['framework']} ({r['status']})" for r in rs) + " |",
            "|---|" + "---|" * len(rs),
        ]
        for fname, title in FIGURES:
            if any((run_dir / r["id"] / fname).exists() for r in rs):
                cells = [f"![{title}]({r['id']}/{fname})" if (run_dir / r["id"] / fname).exists() else "" for r in rs]
                lines.append(f"| {title} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines) + "\n"
