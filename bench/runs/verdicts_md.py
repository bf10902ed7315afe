"""The study's verdicts as markdown (study/verdicts.md): the claims table, each claim's rows with
effect, interval, corrected p-values, detectable effect, n and failures, the frameworks'
agreement, and the cost of the runs."""

from __future__ import annotations

import math


def _fmt(x: float) -> str:
    return "n/a" if not isinstance(x, (int, float)) or not math.isfinite(x) else f"{x:+.3g}"


def _p(x) -> str:
    return "-" if not isinstance(x, (int, float)) or not math.isfinite(x) else f"{x:.3g}"


def _steps(steps) -> str:
    """A row's steps: one number, or the arms' (or the runs') step counts, '-' for none."""
    if isinstance(steps, list):
        return "/".join(map(str, steps)) or "-"
    return str(steps)


def _cell(text) -> str:
    """A Markdown table cell: a '|' in it (|log(a / b)|, KL(p || q)) escaped, so it does not end the cell."""
    return str(text).replace("|", "\\|")


def _failed(r: dict) -> str:
    f = r.get("failed_to_train") or {}
    return " / ".join(f"{k}/{n}" for k, n in f.values()) or "-"


def verdicts_markdown(result: dict) -> str:
    cells = sorted({k for c in result["claims"] for k in c["verdict"]})
    code = result.get("code") or {}
    versions = ", ".join(f"{h}: {n}" for h, n in (code.get("versions") or {}).items())
    lines = [
        "# Study verdicts",
        "",
        f"Claims file: `{result.get('claims_file', '')}`. Multiplicity correction inside each claim and "
        f"framework: {result.get('correction_name', '')}, alpha {result.get('alpha', 0.05):g}. "
        f"Code versions of the records: {versions or 'none'}"
        + (" (mixed: judged together with --allow-mixed-code)." if code.get("allowed") else "."),
        "",
        "| claim | " + " | ".join(cells) + " | frameworks agree |",
        "|---|" + "---|" * (len(cells) + 1),
    ]
    for c in result["claims"]:
        agree = ", ".join(f"{ds}: {'yes' if ok else 'no'}" for ds, ok in c["frameworks_agree"].items())
        lines.append(
            f"| {c['claim']}. {_cell(c['title'])} | "
            + " | ".join(c["verdict"].get(k, "not run") for k in cells)
            + f" | {agree} |"
        )
    lines += [
        "",
        (
            "Effects are signed so that a positive value supports the claim; intervals are 95 % "
            "(uncorrected); p: the test of no effect (flat rows: of lying outside the margin), p eq: the "
            "equivalence test against +-margin, both after the correction; detectable: the smallest effect "
            "the row's seeds detect with the stated power (noncentral t); failed: runs that failed to train "
            "of those judged, treatment / control."
        ),
        "",
    ]
    for c in result["claims"]:
        lines += [
            f"## Claim {c['claim']}: {c['title']}",
            "",
            (
                "| framework | dataset | question | treatment | control | effect [95 % CI] | margin | p | p eq | "
                "detectable | n | failed | steps | verdict |"
            ),
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in c["rows"]:
            lines.append(
                f"| {r['framework']} | {r['dataset']} | {_cell(r['label'])} | {r['treatment']} | "
                f"{r['control'] or '-'} | {_fmt(r['effect'])} [{_fmt(r['ci'][0])}, {_fmt(r['ci'][1])}] | "
                f"{r['margin']:g} | {_p(r.get('p_adjusted'))} | {_p(r.get('p_equivalence_adjusted'))} | "
                f"{_p(r.get('detectable_effect'))} | {'/'.join(map(str, r['n']))} | {_failed(r)} | "
                f"{_steps(r['steps'])} | {r['verdict']} |"
            )
        notes = [f"- {r['framework']}/{r['dataset']}, {r['label']}: {r['note']}" for r in c["rows"] if r.get("note")]
        if notes:
            lines += [""] + notes
        if c.get("agreement"):
            lines += [
                "",
                "| dataset | question | PyTorch minus TensorFlow [95 % CI] | margin | frameworks |",
                "|---|---|---|---|---|",
            ]
            lines += [
                f"| {a['dataset']} | {_cell(a['label'])} | {_fmt(a['difference'])} [{_fmt(a['ci'][0])}, "
                f"{_fmt(a['ci'][1])}] | {a['margin']:g} | {a['agreement']} |"
                for a in c["agreement"]
            ]
        lines.append("")
    lines += views_markdown(result)
    lines += [
        "## Cost",
        "",
        "| model | dataset | framework | runs | steps | s per run | ms per step | total s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["cost"]:
        lines.append(
            f"| {r['model']} | {r['dataset']} | {r['framework']} | {r['runs']} | {r['steps']} | "
            f"{r['wall_s_per_run']:.0f} | {r['ms_per_step']:.1f} | {r['wall_s_total']:.0f} |"
        )
    total = sum(r["wall_s_total"] for r in result["cost"])
    lines += [
        "",
        (f"Total: {sum(r['runs'] for r in result['cost'])} runs, {total / 3600:.2f} h of training and evaluation."),
        "",
    ]
    return "\n".join(lines)


def view_table(result: dict) -> tuple[list, list[dict]]:
    """The rows read at earlier budgets beside their main verdict: (fractions, [{claim, framework,
    dataset, label, metric, cells: {fraction: row}, main: row}]), in the claims' order."""
    views = result.get("budget_views") or []
    if not views:
        return [], []
    fractions = [v["fraction"] for v in views]
    main = {(c["claim"], r["framework"], r["dataset"], r.get("label")): r for c in result["claims"] for r in c["rows"]}
    table: dict[tuple, dict] = {}
    for v in views:
        for r in v["rows"]:
            key = (r["claim"], r["framework"], r["dataset"], r["label"])
            entry = table.setdefault(
                key,
                {
                    "claim": r["claim"],
                    "framework": r["framework"],
                    "dataset": r["dataset"],
                    "label": r["label"],
                    "cells": {},
                    "main": main.get(key),
                },
            )
            entry["cells"][v["fraction"]] = r
    return fractions, [table[k] for k in sorted(table, key=lambda k: (k[0], k[2], k[1], k[3]))]


def views_markdown(result: dict) -> list[str]:
    fractions, rows = view_table(result)
    if not rows:
        return []
    head = " | ".join(f"at {f:.0%} of the budget" for f in fractions)
    lines = [
        "## As training goes on",
        "",
        "The rows whose runs recorded their metrics during training (the curve profile), read again at "
        "earlier budgets from the same runs, with the same tests and correction; below the working "
        "budget a verdict shows the trend, not the claim's verdict.",
        "",
        f"| claim | framework | dataset | question | {head} | at the working budget |",
        "|---|---|---|---|" + "---|" * (len(fractions) + 1),
    ]
    for e in rows:
        cells = []
        for f in fractions:
            r = e["cells"].get(f)
            cells.append("-" if r is None else f"{_fmt(r['effect'])} at {r['steps']}: {r['verdict']}")
        m = e["main"]
        cells.append("-" if m is None else f"{_fmt(m['effect'])} at {m['steps']}: {m['verdict']}")
        lines.append(
            f"| {e['claim']} | {e['framework']} | {e['dataset']} | {_cell(e['label'])} | " + " | ".join(cells) + " |"
        )
    return lines + [""]
