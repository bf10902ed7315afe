"""Many cases, the equivalence table (equivalence.md and equivalence.csv) and the
`genbench equivalence` entry."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

from ...runs.records import atomic_write_text
from .bounds import FLOAT32_MODEL, TOLERANCES
from .cases import default_cases, parse_case
from .running import run_case


def run_equivalence(
    cases, dtypes=("float64", "float32"), steps=5, out_dir=None, tf_variant="eager", progress=None
) -> list[dict]:
    """One row per case x dtype (never raises for a disagreement: `ok` and `error` say it);
    with out_dir, also write the tables there."""
    rows = []
    for case in cases:
        case = parse_case(case) if isinstance(case, str) else case
        for dtype in dtypes:
            try:
                row = run_case(case, dtype, steps, tf_variant, strict=False)
            except Exception as e:  # a twin that cannot even run the case is a failed row
                row = {
                    "case": case.label,
                    "model": case.model,
                    "dtype": dtype,
                    "steps": steps,
                    "ok": False,
                    "error": f"{type(e).__name__}: {e}",
                }
            rows.append(row)
            if progress:
                progress(row)
    if out_dir is not None:
        write_table(rows, out_dir)
    return rows


COLUMNS = (
    "case",
    "optimizer",
    "dtype",
    "steps",
    "outputs_abs",
    "outputs_rel",
    "losses_abs",
    "losses_rel",
    "grads_abs",
    "grads_rel",
    "params_abs",
    "params_rel",
    "gauge_abs",
    "own_torch",
    "own_tf",
    "widest_rtol",
    "worst_ratio",
    "float64_twins_rel",
    "not_compared",
    "ok",
    "closest",
    "error",
)


def _fmt(v):
    if isinstance(v, float) and not isinstance(v, bool):
        return f"{v:.1e}" if v else "0"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    return "" if v is None else str(v)


def tolerance_rows() -> list[dict]:
    m = FLOAT32_MODEL
    rows = [
        {"dtype": d, "quantity": q, "atol": f"{t['atol']:g}", "rtol": f"{t['rtol']:g}"}
        for d, per in TOLERANCES.items()
        for q, t in per.items()
    ]
    rows.append(
        {
            "dtype": "float32",
            "quantity": "all others",
            "atol": "0",
            "rtol": f"{m['factor']:g} x max(e_torch, e_tf) + {m['floor_eps']:g} eps32; "
            f"above {m['cap']:g}: not compared",
        }
    )
    return rows


def write_table(rows, out_dir="results/tables") -> list[Path]:
    """Write equivalence.md (tolerances + one row per case x dtype) and equivalence.csv into
    out_dir, each atomically (records.atomic_write_text). Returns [md path, csv path]."""
    from tabulate import tabulate

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = [[_fmt(r.get(c)) for c in COLUMNS] for r in rows]
    failed = sum(not r.get("ok") for r in rows)
    m = FLOAT32_MODEL
    md = [
        "# PyTorch vs TensorFlow: step-by-step equivalence",
        "",
        "Each row trains both twins of a case from the same canonical weights on the same harness "
        "randomness and reports the largest difference (abs, and relative to the tensor's largest "
        "magnitude) over all steps and every tensor that was compared. A float32 case also trains both "
        "twins in float64 from the same weights and inputs: `own_torch` and `own_tf` are each twin's "
        "largest float32-vs-float64 error, `float64_twins_rel` how far those two float64 runs are apart, "
        "`widest_rtol` the widest float32 bound that was used, `worst_ratio` the largest difference as "
        "a fraction of its bound, and `not_compared` the tensors whose bound would have exceeded "
        f"{m['cap']:g} (quantity, count, steps). {len(rows)} rows, {failed} outside tolerance. "
        "`closest` names the tensor nearest to its bound. Written by `genbench equivalence` "
        "(bench/checks/equivalence/).",
        "",
        "## Tolerances",
        "",
        "float64: a tensor passes when max abs <= atol + rtol x max |tf|; `gauge` tensors (biases that "
        "feed batch norm, and its running mean) scale with how far the optimizer can move a parameter "
        "instead. float32: a tensor passes when max abs <= rtol x max |tf| with rtol = "
        f"{m['factor']:g} x max(e_torch, e_tf) + {m['floor_eps']:g} x float32 epsilon, where e_x = "
        "max|x32 - x64| / max |tf| is twin x's own float32 error at that step; a tensor whose rtol "
        f"would exceed {m['cap']:g} is not compared at that step. bench/checks/equivalence/__init__.py derives each "
        "number.",
        "",
        tabulate(tolerance_rows(), headers="keys", tablefmt="github"),
        "",
        "## Cases",
        "",
        tabulate(table, headers=list(COLUMNS), tablefmt="github"),
        "",
    ]
    md_path, csv_path = out / "equivalence.md", out / "equivalence.csv"
    atomic_write_text(md_path, "\n".join(md))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(COLUMNS), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({c: r.get(c, "") for c in COLUMNS})
    atomic_write_text(csv_path, buf.getvalue())
    return [md_path, csv_path]


def main(args=None, **kwargs) -> int:
    """`genbench equivalence`: args is an argparse Namespace or None; keyword arguments win.
    Options: full, cases (tokens like 'dcgan+spectral-norm@adam'), dtypes, steps, out
    (or out_dir; default results/runs/equivalence-<timestamp>: the committed reference tables in
    results/tables are written only when asked for), variant. Prints the table; exit code 1
    when any row is out of tolerance."""
    opts = {**(vars(args) if args is not None else {}), **kwargs}
    cases = opts.get("cases") or default_cases(full=bool(opts.get("full")))
    dtypes = tuple(opts.get("dtypes") or ("float64", "float32"))
    out = (
        opts.get("out_dir") or opts.get("out") or Path("results/runs") / f"equivalence-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    rows = run_equivalence(
        cases,
        dtypes,
        int(opts.get("steps") or 5),
        tf_variant=opts.get("variant", "eager"),
        progress=lambda r: print(
            f"{'ok ' if r['ok'] else 'FAIL'} {r['case']} [{r['dtype']}]" + (f": {r['error']}" if r["error"] else ""),
            flush=True,
        ),
    )
    md_path, _ = write_table(rows, out)
    print(md_path.read_text())
    return 0 if all(r["ok"] for r in rows) else 1
