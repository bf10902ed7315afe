"""Render the timing tables from a pytest-benchmark JSON file (never from a second timer).

    python -m bench.timing.timing_table results/runs/benchmark.json results/tables/timing.md

writes timing.md and timing.csv next to it, atomically. The markdown has one table per
question: train step (model x framework x variant: median ms/step, images/s, achieved
GFLOP/s, percent of the session's measured fp32 GEMM peak), sampling, metrics, and a
"Targets" section that says whether each performance target is met on the DCGAN step.
Every number comes from the `stats` and `extra_info` that suites/test_timing.py records.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

from tabulate import tabulate

from ..core.registry import DEFAULT_VARIANT, VARIANTS
from ..runs.records import atomic_write_text

TARGET_MODEL = "dcgan"
TARGET_PERCENT_OF_PEAK = 60.0  # each framework's best variant, DCGAN step, batch 64
TARGET_TORCH_OVER_TF = 1.2  # PyTorch's best step time / TensorFlow's best
TARGET_LOOP_OVERHEAD = 5.0  # percent: the runner's loop around the default variant's step
TARGET_OVER_PLAIN = 1.1  # genbench's default-variant DCGAN step / the plain loop's step

CSV_FIELDS = (
    "kind",
    "model",
    "framework",
    "variant",
    "device",
    "batch",
    "median_ms",
    "iqr_ms",
    "min_ms",
    "rounds",
    "items_per_s",
    "gflops_per_s",
    "percent_of_peak",
    "flops",
    "first_call_s",
    "threads",
    "load_avg_1m",
    "name",
)


def rows_from_json(data: dict) -> list[dict]:
    """One flat row per benchmark that suites/test_timing.py recorded."""
    rows = []
    for b in data.get("benchmarks", []):
        info, stats = b.get("extra_info", {}), b.get("stats", {})
        if "kind" not in info or "median" not in stats:
            continue
        rows.append(
            {
                "kind": info["kind"],
                "model": info.get("model", ""),
                "framework": info.get("framework", ""),
                "variant": info.get("variant", ""),
                "device": info.get("device", ""),
                "batch": info.get("batch"),
                "median_ms": 1e3 * stats["median"],
                "iqr_ms": 1e3 * stats.get("iqr", float("nan")),
                "min_ms": 1e3 * stats["min"],
                "rounds": stats.get("rounds"),
                "items_per_s": info.get("items_per_s"),
                "gflops_per_s": info.get("gflops_per_s"),
                "percent_of_peak": info.get("percent_of_peak"),
                "flops": info.get("flops"),
                "first_call_s": info.get("first_call_s"),
                "threads": info.get("threads"),
                "cores": info.get("cores"),
                "peak_gflops": info.get("peak_gflops"),
                "peak_library": info.get("peak_library"),
                "load_avg_1m": info.get("load_avg_1m"),
                "step_ms": info.get("step_ms"),
                "draw_ms": info.get("draw_ms"),
                "randomness": info.get("randomness", "reproducible"),
                "kernels": info.get("kernels") or {},
                "name": b.get("name", ""),
            }
        )
    return rows


def _variant_order(framework: str, variant: str) -> int:
    order = VARIANTS.get(framework, ())
    return order.index(variant) if variant in order else len(order)


def _sorted(rows: list[dict]) -> list[dict]:
    models = []
    for r in rows:
        if r["model"] not in models:
            models.append(r["model"])
    return sorted(
        rows,
        key=lambda r: (
            models.index(r["model"]),
            r["framework"] != "torch",
            _variant_order(r["framework"], r["variant"]),
        ),
    )


def _num(value, digits=1):
    if value is None or value == "":
        return ""
    return f"{value:,.{digits}f}"


def best_by_framework(rows: list[dict], model: str) -> dict[str, dict]:
    """{framework: the fastest train-step row of `model`} (median step time)."""
    best: dict[str, dict] = {}
    for r in rows:
        if r["kind"] == "train_step" and r["model"] == model:
            if r["framework"] not in best or r["median_ms"] < best[r["framework"]]["median_ms"]:
                best[r["framework"]] = r
    return best


def targets(rows: list[dict]) -> list[dict]:
    """Each target on the DCGAN step: what it asks, the measured value, met or not."""
    best = best_by_framework(rows, TARGET_MODEL)
    out = []
    for framework in ("torch", "tensorflow"):
        r = best.get(framework)
        value = r["percent_of_peak"] if r else None
        out.append(
            {
                "target": f"{framework}: best variant >= {TARGET_PERCENT_OF_PEAK:.0f}% of the GEMM peak",
                "measured": f"{value:.1f}% ({r['variant']}, {r['median_ms']:.1f} ms)"
                if value is not None
                else "not measured",
                "met": None if value is None else value >= TARGET_PERCENT_OF_PEAK,
            }
        )
    if "torch" in best and "tensorflow" in best:
        ratio = best["torch"]["median_ms"] / best["tensorflow"]["median_ms"]
        out.append(
            {
                "target": f"torch best within {TARGET_TORCH_OVER_TF}x of tensorflow best",
                "measured": f"{ratio:.2f}x ({best['torch']['median_ms']:.1f} / "
                f"{best['tensorflow']['median_ms']:.1f} ms)",
                "met": ratio <= TARGET_TORCH_OVER_TF,
            }
        )
    else:
        out.append(
            {
                "target": f"torch best within {TARGET_TORCH_OVER_TF}x of tensorflow best",
                "measured": "not measured",
                "met": None,
            }
        )
    for o in loop_overhead(rows):
        if o["model"] == TARGET_MODEL and o["randomness"] == "reproducible":
            out.append(
                {
                    "target": f"{o['framework']}: loop overhead <= {TARGET_LOOP_OVERHEAD:.0f}%",
                    "measured": f"{o['overhead_pct']:.1f}% ({o['step_ms']:.1f} -> {o['loop_ms']:.1f} ms)",
                    "met": o["overhead_pct"] <= TARGET_LOOP_OVERHEAD,
                }
            )
    for o in plain_ratios(rows):
        out.append(
            {
                "target": f"{o['framework']}: {o['variant']} step within {TARGET_OVER_PLAIN}x of the plain loop",
                "measured": f"{o['ratio']:.2f}x ({o['genbench_ms']:.1f} / {o['plain_ms']:.1f} ms)",
                "met": o["ratio"] <= TARGET_OVER_PLAIN,
            }
        )
    return out


def _default_step(rows: list[dict], model: str, framework: str) -> dict | None:
    return next(
        (
            r
            for r in rows
            if r["kind"] == "train_step"
            and r["model"] == model
            and r["framework"] == framework
            and r["variant"] == DEFAULT_VARIANT.get(framework)
        ),
        None,
    )


def _with_default_step(rows: list[dict], kind: str):
    """(row of `kind`, the default variant's train_step row of its model and framework) pairs."""
    for r in rows:
        step = _default_step(rows, r["model"], r["framework"]) if r["kind"] == kind else None
        if step is not None:
            yield r, step


def loop_overhead(rows: list[dict]) -> list[dict]:
    """Per model, framework and randomness mode: the default variant's step alone (timed inside
    the loop's own iterations when the benchmark recorded it, else the train_step benchmark's),
    the runner's loop around it (next batch, random inputs, the step, a CSV row), the overhead in
    percent, and the time the random inputs took (None where the benchmark did not record it)."""
    out = []
    for r, step in _with_default_step(rows, "train_loop"):
        step_ms = r.get("step_ms") or step["median_ms"]
        out.append(
            {
                "model": r["model"],
                "framework": r["framework"],
                "randomness": r["randomness"],
                "variant": r["variant"] + (" + native randomness" if r["randomness"] == "native" else ""),
                "step_ms": step_ms,
                "loop_ms": r["median_ms"],
                "draw_ms": r.get("draw_ms"),
                "overhead_pct": 100.0 * (r["median_ms"] / step_ms - 1.0),
            }
        )
    return out


def plain_ratios(rows: list[dict]) -> list[dict]:
    """Per framework: genbench's default-variant DCGAN step over the plain loop's (anchors.py)."""
    return [
        {
            "model": r["model"],
            "framework": r["framework"],
            "variant": step["variant"],
            "genbench_ms": step["median_ms"],
            "plain_ms": r["median_ms"],
            "ratio": step["median_ms"] / r["median_ms"],
        }
        for r, step in _with_default_step(rows, "plain_step")
    ]


def defaults(rows: list[dict]) -> list[dict]:
    """registry.DEFAULT_VARIANT next to the fastest variant measured on the DCGAN step."""
    best = best_by_framework(rows, TARGET_MODEL)
    out = []
    for framework, default in DEFAULT_VARIANT.items():
        mine = [
            r
            for r in rows
            if r["kind"] == "train_step"
            and r["model"] == TARGET_MODEL
            and r["framework"] == framework
            and r["variant"] == default
        ]
        if framework in best and mine:
            out.append(
                {
                    "framework": framework,
                    "default": default,
                    "default_ms": mine[0]["median_ms"],
                    "fastest": best[framework]["variant"],
                    "fastest_ms": best[framework]["median_ms"],
                }
            )
    return out


def kernels_line(kernels: dict) -> str:
    """'ISA avx2, PyTorch oneDNN on, TensorFlow oneDNN on (why)' from a row's kernels ('ISA avx512
    capped by ONEDNN_MAX_CPU_ISA=AVX2, ...' where the row ran under a cap)."""
    parts = [f"ISA {kernels.get('isa', '?')}"]
    if kernels.get("isa_cap"):
        parts[0] += f" capped by {kernels['isa_cap']}"
    for fw, name in (("torch", "PyTorch"), ("tensorflow", "TensorFlow")):
        if f"{fw}_onednn" in kernels:
            why = kernels.get(f"{fw}_onednn_source")
            parts.append(f"{name} oneDNN {'on' if kernels[f'{fw}_onednn'] else 'off'}" + (f" ({why})" if why else ""))
    return ", ".join(parts)


def render_markdown(data: dict, rows: list[dict], source: str = "") -> str:
    machine, commit = data.get("machine_info", {}), data.get("commit_info", {})
    cpu = machine.get("cpu", {})
    peak = next((r for r in rows if r.get("peak_gflops")), None)
    lines = ["# Timing", ""]
    lines.append(
        f"Rendered by `python -m bench.timing.timing_table` from {source or 'a pytest-benchmark JSON file'} "
        f"(pytest-benchmark {data.get('version', '?')}, {data.get('datetime', '?')})."
    )
    lines.append(
        f"Machine: {cpu.get('brand_raw', machine.get('processor', '?'))}, "
        f"{cpu.get('count', '?')} logical CPUs; Python {machine.get('python_version', '?')}; "
        f"commit {str(commit.get('id', '?'))[:10]}{' (dirty)' if commit.get('dirty') else ''}."
    )
    kernel_lines = sorted({kernels_line(r["kernels"]) for r in rows if r.get("kernels")})
    if kernel_lines:
        lines.append("Kernels: " + "; or ".join(kernel_lines) + ".")
    threads = sorted({f"{r['framework']} {r['threads']}" for r in rows if r.get("threads") and r.get("framework")})
    cores = sorted({r["cores"] for r in rows if r.get("cores")})
    if threads or cores:
        lines.append(
            "Threads: "
            + (", ".join(threads) or "?")
            + (f"; on {'/'.join(map(str, cores))} of {cpu.get('count', '?')} logical CPUs" if cores else "")
            + (
                " (`--threads`: one `genbench run --jobs` worker's share; the peak is of the same cores)"
                if cores and cores[-1] != cpu.get("count")
                else ""
            )
            + "."
        )
    if peak:
        lines.append(
            f"fp32 GEMM peak measured in the same session (bench/timing/peak.py): "
            f"**{peak['peak_gflops']:.0f} GFLOP/s** ({peak['peak_library']})."
        )
    loads = [r["load_avg_1m"] for r in rows if r.get("load_avg_1m") is not None]
    if loads:
        lines.append(
            f"1-minute load average after each benchmark: {min(loads):.2f} to {max(loads):.2f} "
            f"(median {sorted(loads)[len(loads) // 2]:.2f}; the benchmark's own threads count in it); "
            "other processes' load slows the rows it overlaps."
        )
    lines += [
        "",
        "FLOPs are the dense and conv GEMMs of one step, forward and backward, as "
        "bench/timing/flops.py counts them (D weight gradients are not credited in the generator "
        "step; elementwise work is not counted). Times are medians of the timed rounds; "
        "the first call (tracing, compilation) is reported apart.",
        "",
    ]

    steps = _sorted([r for r in rows if r["kind"] == "train_step"])
    if steps:
        lines += [f"## Train step (batch {steps[0]['batch']})", ""]
        fastest = {
            (m, f): best_by_framework(steps, m)[f]["name"]
            for m in {r["model"] for r in steps}
            for f in best_by_framework(steps, m)
        }
        table = [
            [
                r["model"],
                r["framework"],
                r["variant"] + (" **(fastest)**" if fastest.get((r["model"], r["framework"])) == r["name"] else ""),
                _num(r["median_ms"], 2),
                _num(r["iqr_ms"], 2),
                _num(r["items_per_s"], 0),
                _num(r["gflops_per_s"], 1),
                _num(r["percent_of_peak"], 1),
                _num(r["first_call_s"], 2),
            ]
            for r in steps
        ]
        lines.append(
            tabulate(
                table,
                headers=[
                    "model",
                    "framework",
                    "variant",
                    "ms/step",
                    "IQR ms",
                    "images/s",
                    "GFLOP/s",
                    "% of peak",
                    "first call s",
                ],
                tablefmt="github",
                disable_numparse=True,
            )
        )
        lines.append("")
    samples = _sorted([r for r in rows if r["kind"] == "sample"])
    if samples:
        lines += ["## Sampling (1000 latents, default variant)", ""]
        table = [
            [
                r["model"],
                r["framework"],
                r["variant"],
                _num(r["median_ms"], 2),
                _num(r["items_per_s"], 0),
                _num(r["gflops_per_s"], 1),
                _num(r["percent_of_peak"], 1),
            ]
            for r in samples
        ]
        lines.append(
            tabulate(
                table,
                headers=["model", "framework", "variant", "ms", "samples/s", "GFLOP/s", "% of peak"],
                tablefmt="github",
                disable_numparse=True,
            )
        )
        lines.append("")
    metrics = [r for r in rows if r["kind"] == "metric"]
    if metrics:
        lines += ["## Metrics (1000 items)", ""]
        table = [[r["model"], r["framework"], _num(r["median_ms"], 2), _num(r["items_per_s"], 0)] for r in metrics]
        lines.append(
            tabulate(table, headers=["metric", "by", "ms", "items/s"], tablefmt="github", disable_numparse=True)
        )
        lines.append("")
    sections = (
        (
            "The loop around the step (default variant)",
            "`genbench run` times each step alone and the whole iteration (next batch, the step's random "
            "inputs, the step, a CSV row); records carry both (`ms_per_step`, `loop_ms_per_step`, "
            '`overhead_pct`). Here the step is timed inside the loop\'s own iterations, and "draws ms" is the '
            "random inputs' part of the loop (the NumPy stream, or the twin's own generator with native randomness):",
            loop_overhead(rows),
            ("step_ms", "loop_ms", "overhead_pct", "draw_ms"),
            ("step ms", "loop ms", "overhead %", "draws ms"),
        ),
        (
            "Against a plain loop",
            "The DCGAN step as a user writes it in each framework (bench/timing/anchors.py: nn.Sequential + "
            "torch.optim; keras.Sequential + a tf.function step), same architecture, batch and work per step:",
            plain_ratios(rows),
            ("genbench_ms", "plain_ms", "ratio"),
            ("genbench ms", "plain ms", "ratio"),
        ),
    )
    for title, intro, found, keys, names in sections:
        if found:
            table = [[o["model"], o["framework"], o["variant"], *(_num(o[k], 2) for k in keys)] for o in found]
            lines += [
                f"## {title}",
                "",
                intro,
                "",
                tabulate(
                    table, headers=["model", "framework", "variant", *names], tablefmt="github", disable_numparse=True
                ),
                "",
            ]
    lines += [f"## Targets ({TARGET_MODEL} train step)", ""]
    verdict = {True: "met", False: "**not met**", None: "not measured"}
    lines.append(
        tabulate(
            [[t["target"], t["measured"], verdict[t["met"]]] for t in targets(rows)],
            headers=["target", "measured", "verdict"],
            tablefmt="github",
            disable_numparse=True,
        )
    )
    lines.append("")
    chosen = defaults(rows)
    if chosen:
        lines += [
            "Default variants (`registry.DEFAULT_VARIANT`, what `genbench run` trains with) "
            f"against the fastest measured here on the {TARGET_MODEL} step:",
            "",
        ]
        lines.append(
            tabulate(
                [
                    [d["framework"], d["default"], _num(d["default_ms"], 2), d["fastest"], _num(d["fastest_ms"], 2)]
                    for d in chosen
                ],
                headers=["framework", "default", "ms/step", "fastest", "ms/step"],
                tablefmt="github",
                disable_numparse=True,
            )
        )
        lines.append("")
    return "\n".join(lines)


def render_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in _sorted(rows):
        writer.writerow({k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()


def write_tables(json_path, md_path) -> tuple[Path, Path]:
    json_path, md_path = Path(json_path), Path(md_path)
    data = json.loads(json_path.read_text())
    rows = rows_from_json(data)
    if not rows:
        raise SystemExit(
            f"{json_path}: no benchmark carries the extra_info of suites/test_timing.py "
            f"(was it written with --benchmark-enable?)"
        )
    csv_path = md_path.with_suffix(".csv")
    atomic_write_text(md_path, render_markdown(data, rows, source=f"`{json_path.as_posix()}`"))
    atomic_write_text(csv_path, render_csv(rows))
    return md_path, csv_path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", help="pytest-benchmark JSON (--benchmark-json=...)")
    parser.add_argument("markdown", help="output .md; the .csv is written next to it")
    args = parser.parse_args(argv)
    for path in write_tables(args.json, args.markdown):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
