"""The study's rows again at earlier budgets, from the same runs (Lucic et al. 2018: report
results at several budgets, since a verdict can change as training goes on).

A run of the curve profile records its metrics every few hundred steps (record["curve"]). For
each share f of VIEW_FRACTIONS, every row whose arms all have curve points at f times their
working budget is judged again on those points, with the same tests and the same correction
inside each claim and framework as the main verdicts (bench/runs/study.py). Rows read from a
loss curve, and failure-rate rows, are left out (their values are not recorded per checkpoint).
The trained criterion of a viewed run reads the checkpoint's classes and FID and the run's final
losses. The main verdicts are the rows at the working budget; a view below it is for the trend.
"""

from __future__ import annotations

import dataclasses

VIEW_FRACTIONS = (0.5, 0.75)


def at_step(rec: dict, step: int) -> dict | None:
    """The record as it stood at `step`: its metrics from the curve point of that step, its step
    count that step; None without such a point."""
    for point in rec.get("curve") or []:
        if int(point.get("step", -1)) == step:
            spec = {**(rec.get("spec") or {}), "steps": step}
            return {**rec, "metrics": {k: v for k, v in point.items() if k != "step"}, "steps_done": step, "spec": spec}
    return None


def viewable(row) -> bool:
    return ":" not in row.metric and row.kind != "failure_rate"


def budget_views(cf, cells: dict, run_dir, correction: str, judge, fractions=VIEW_FRACTIONS) -> list[dict]:
    """[{"fraction": f, "rows": [row dicts as in the main verdicts, with "claim"]}] for every f at
    which some row can be read; cells: {(framework, dataset): {experiment: [records]}}; judge:
    (evaluate_row, judge_claim) of bench/runs/study.py."""
    evaluate_row, judge_claim = judge
    views = []
    for frac in fractions:
        found = []
        for claim in cf.claims:
            rows = []
            for (fw, ds), groups in sorted(cells.items()):
                for row in claim.rows:
                    if ds not in row.datasets or not viewable(row):
                        continue
                    budget = tuple(int(round(b * frac)) for b in row.budget)
                    arms = [row.treatment] + ([row.control] if row.control else [])
                    viewed = {}
                    for arm, b in zip(arms, budget):
                        recs = [v for v in (at_step(r, b) for r in groups.get(arm, [])) if v is not None]
                        if recs:
                            viewed[arm] = recs
                    if len(viewed) < len(arms):
                        continue
                    got = evaluate_row(dataclasses.replace(row, budget=budget), viewed, run_dir, None, cf, fw)
                    if got is not None:
                        rows.append({"claim": claim.number, "framework": fw, "dataset": ds, **got})
            for fw in sorted({r["framework"] for r in rows}):
                judge_claim([r for r in rows if r["framework"] == fw], correction, cf.alpha)
            for r in rows:
                r.pop("_estimate", None)
            found += rows
        if found:
            views.append({"fraction": frac, "rows": found})
    return views
