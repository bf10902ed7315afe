"""`genbench report RUN_DIR`: RUN_DIR/report.html, one self-contained page of a run's (or a
study's) results. Every image is an embedded PNG (data: URI), the CSS is inline, nothing is
fetched; the only script is a few lines that, once the page has loaded, write into a hidden
<pre id="image-check"> how many images decoded and how many rows the verdict table has (the
browser test reads it).

Sections: header (folder, records by status, time, versions); with a study's verdicts
(RUN_DIR/study/verdicts.json), a summary with claims as rows and datasets as columns, then per
claim its effects (small multiples), the loss curves it reads and its arms' grids, and its rows;
what every group draws (PyTorch beside TensorFlow, with loss curves); budgets, the rows at
earlier budgets, cost; VAE latents. Without verdicts: the comparison table and the groups. The
pictures come from RUN_DIR/figures (bench/runs/figures.py), drawn there first; figures are
bounded by groups and claims, not by seeds.
"""

from __future__ import annotations

import html
from collections import Counter
from pathlib import Path

from ..core.facts import IMAGE_DATASETS, MIXTURE_DATASETS
from . import figures, schema
from . import report_figures as rf
from .records import RecordError, atomic_write_text, now_iso, scan_records
from .screenshot import fingerprint, screenshot, screenshot_fingerprint  # noqa: F401  (genbench report --screenshot)
from .study import SCHEMA, STUDY_DIR, VERDICTS_FILE
from .verdicts_md import view_table

VERDICTS = Path(STUDY_DIR) / VERDICTS_FILE
VERDICT_SCHEMA = SCHEMA
FRAMEWORK_ORDER = ("torch", "tensorflow")
FRAMEWORK_TITLE = {"torch": "PyTorch", "tensorflow": "TensorFlow"}
DATASET_ORDER = IMAGE_DATASETS + MIXTURE_DATASETS  # images first, then the 2-D mixtures

FRAMEWORK_SHORT = {"torch": "PT", "tensorflow": "TF"}
LEGEND = (
    "supported (green), contradicted (red), no practical effect (blue), inconclusive (amber), "
    "not judged (grey: below the working budget, too few seeds, failed to train, or no values)"
)

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:1.2em auto;max-width:1200px;padding:0 1em;
color:#222;box-sizing:border-box}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}h3{font-size:1.05em}
table{border-collapse:collapse;margin:.6em 0;font-size:.85em}
table.fit{table-layout:fixed;width:100%}table.fit td,table.fit th{overflow-wrap:anywhere}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
.supported{background:#c8e6c9}.contradicted{background:#ffcdd2}.inconclusive{background:#fff3c4}
.nopractical{background:#cfe3f7}.notjudged{background:#eee;color:#555}
.mark{display:inline-block;min-width:1.9em;text-align:center;border-radius:3px;font-weight:600;font-size:.8em;
padding:0 .2em;border:1px solid #999}.v{font-size:.8em}
.missing{color:#999}.note{color:#555;font-style:italic}
figure{display:inline-block;margin:.3em .6em .3em 0;vertical-align:top;max-width:100%}
figcaption{font-size:.75em;color:#444;max-width:360px}
img.grid{image-rendering:pixelated;width:200px}img.interp{image-rendering:pixelated;width:300px}
img.fig{max-width:100%}img.curves{width:260px}
table.samples td{width:33%}
.pair{display:flex;gap:.6em;flex-wrap:wrap;align-items:flex-start}
section.claim{margin-bottom:2em}
#image-check{display:none}
"""

CHECK_SCRIPT = """
window.addEventListener("load", function () {
  function ok(i) { return i.complete && i.naturalWidth > 0; }
  var imgs = Array.prototype.slice.call(document.images);
  var claims = Array.prototype.slice.call(document.querySelectorAll("section.claim")).map(function (s) {
    var im = Array.prototype.slice.call(s.querySelectorAll("img"));
    return {id: s.id, images: im.length, decoded: im.filter(ok).length};
  });
  var grids = Array.prototype.slice.call(document.querySelectorAll("figure.drawn[data-kind=grid] img"));
  document.getElementById("image-check").textContent = JSON.stringify({
    images: imgs.length, decoded: imgs.filter(ok).length,
    verdict_rows: document.querySelectorAll("table#verdicts tbody tr").length,
    scroll_width: document.documentElement.scrollWidth, claims: claims,
    grids: grids.map(function (i) { return [i.parentNode.getAttribute("data-group"), ok(i)]; })
  });
});
"""


def esc(x) -> str:
    return html.escape(str(x), quote=True)


def _sort_key(name: str, dataset: str, framework: str):
    return (
        name,
        DATASET_ORDER.index(dataset) if dataset in DATASET_ORDER else 99,
        dataset,
        FRAMEWORK_ORDER.index(framework) if framework in FRAMEWORK_ORDER else 9,
        framework,
    )


# -- input -----------------------------------------------------------------------------------
def load_run(run_dir) -> tuple[list[dict], list[str]]:
    """The current records of RUN_DIR (records/*.json; superseded/ and corrupt/ are not read)
    and one line per unreadable record, which the page lists and leaves out. RecordError when
    the folder is missing or holds no readable record."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RecordError(f"{run_dir}: no such run folder (pass the --out folder of a `genbench run`)")
    good, bad = scan_records(run_dir)
    if not good:
        raise RecordError(f"{run_dir} holds no records (records/*.json): pass the --out folder of a `genbench run`")
    return list(good.values()), [why for _, why in bad]


def load_verdicts(run_dir) -> dict | None:
    """RUN_DIR/study/verdicts.json (schema 1, read by bench/runs/schema.py), or None when the
    folder has none. RecordError (one line naming the file and the field) when it exists but is
    not a verdicts file this genbench reads."""
    path = Path(run_dir) / VERDICTS
    if not path.exists():
        return None
    doc = schema.load_verdicts(path)
    if doc.schema != VERDICT_SCHEMA:
        raise RecordError(f"{path}: field 'schema': expected {VERDICT_SCHEMA}, got {doc.schema}")
    return doc.raw


def groups_of(records: list[dict]) -> dict[tuple[str, str, str], dict[int, dict]]:
    """{(spec name, dataset, framework): {seed: record}}, sorted."""
    out = figures.groups_of(records)
    return {k: out[k] for k in sorted(out, key=lambda k: _sort_key(*k))}


# -- pieces of HTML --------------------------------------------------------------------------
def img(uri: str | None, caption: str, cls: str = "grid", attrs: str = "") -> str:
    """A figure with its caption; empty when there is no picture (the page states what is
    absent once, in the section's text, never as a placeholder per picture)."""
    if not uri:
        return ""
    return (
        f'<figure{attrs}><img class="{cls}" src="{uri}" alt="{esc(caption)}">'
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


def table(headers: list[str] | None, rows: list[list[str]], attrs: str = "", widths=None) -> str:
    """Rows are lists of ready <td>/<th> cells; no header row when `headers` is None; `widths`:
    the columns' shares of the table in percent."""
    cols = "" if not widths else "<colgroup>" + "".join(f'<col style="width:{w}%">' for w in widths) + "</colgroup>"
    head = "" if headers is None else "<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in headers) + "</tr></thead>"
    body = "".join("<tr>" + "".join(cells) + "</tr>" for cells in rows)
    return f"<table{attrs}>{cols}{head}<tbody>{body}</tbody></table>"


def verdict_class(v) -> str:
    return {"no practical effect": "nopractical", "not judged": "notjudged"}.get(
        "not judged" if str(v).startswith("not judged") else str(v), str(v) if v else "missing"
    )


def verdict_cell(v) -> str:
    if v is None:
        return '<td class="missing">\u2014</td>'
    return f'<td class="{esc(verdict_class(v))}">{esc(v)}</td>'


def fig_img(fig, caption: str) -> str:
    return "" if fig is None else img(rf.fig_uri(fig), caption, "fig")


def index_img(run_dir: Path, index: dict, name: str, ds: str, fw: str, kind: str, caption: str, cls="grid") -> str:
    entry = index.get(figures.group_key(name, ds, fw)) or {}
    path = figures.figure_path(run_dir, entry, kind)
    if path is None:
        return ""
    seed = f", seed {entry['seed']}" if kind == "grid" and "seed" in entry else ""
    attrs = f' class="drawn" data-group="{esc(figures.group_key(name, ds, fw))}" data-kind="{esc(kind)}"'
    return img(rf.file_uri(path), caption + seed, cls, attrs)


def _datasets_of(claims: list[dict]) -> list[str]:
    found = {r.get("dataset") for c in claims for r in c.get("rows", [])}
    return sorted(found, key=lambda d: DATASET_ORDER.index(d) if d in DATASET_ORDER else 99)


def _no_marks(claim: dict, ds: str) -> str:
    """A summary cell without verdicts: the claim names the dataset but no run of it is here, or
    the claim does not name it (verdicts written before claims listed their datasets: no rows)."""
    if "datasets" not in claim:
        return "<span class=missing>no rows</span>"
    return f"<span class=missing>{'not run' if ds in claim['datasets'] else 'not in the claim'}</span>"


def summary_section(doc: dict) -> str:
    """Claims as rows, datasets as columns, the two frameworks as two marks in each cell; the
    rows' effects on hover and in each claim's section below."""
    claims = doc["claims"]
    datasets = _datasets_of(claims)
    rows = []
    for c in claims:
        cells = [
            f'<td class="num">{esc(c.get("claim", ""))}</td>',
            f'<td><a href="#claim-{esc(c.get("claim", ""))}">{esc(c.get("title", ""))}</a></td>',
        ]
        for ds in datasets:
            marks = []
            for fw in FRAMEWORK_ORDER:
                v = (c.get("verdict") or {}).get(f"{fw}/{ds}")
                if v is None:
                    continue
                hover = "; ".join(
                    f"{r.get('label') or r.get('metric')}: {rf.effect_text(r.get('effect'), r.get('ci'))} "
                    f"({r.get('verdict')})"
                    for r in c.get("rows", [])
                    if r.get("framework") == fw and r.get("dataset") == ds
                )
                marks.append(
                    f'<span class="mark {esc(verdict_class(v))}" title="{esc(FRAMEWORK_TITLE[fw])}: {esc(v)}. '
                    f'{esc(hover)}">{esc(FRAMEWORK_SHORT[fw])}</span> <span class="v">{esc(v)}</span>'
                )
            cells.append(f"<td>{'<br>'.join(marks) or _no_marks(c, ds)}</td>")
        agree = c.get("frameworks_agree") or {}
        cells.append(f"<td>{esc(', '.join(f'{d}: ' + ('y' if ok else 'n') for d, ok in agree.items()))}</td>")
        rows.append(cells)
    code = doc.get("code") or {}
    versions = ", ".join(f"{h} ({n} records)" for h, n in (code.get("versions") or {}).items())
    return "\n".join(
        [
            '<h2 id="summary">Verdicts</h2>',
            f"<p>Per claim, dataset and framework (PT: PyTorch, TF: TensorFlow): {esc(LEGEND)}. Multiplicity "
            f"correction inside each claim: {esc(doc.get('correction_name') or doc.get('correction') or 'none')}. "
            f"Code version: {esc(versions or 'not recorded')}. Hover a mark for its rows' effects.</p>",
            table(
                ["#", "claim", *datasets, "frameworks agree (y/n)"],
                rows,
                ' id="verdicts" class="fit"',
                [3, 25, *[60 / max(1, len(datasets))] * len(datasets), 12],
            ),
        ]
    )


def rows_table(claim: dict) -> str:
    body = []
    for r in claim.get("rows", []):
        n = r.get("n") or []
        failed = r.get("failed_to_train") or {}
        fail_text = " / ".join(f"{k}/{m}" for k, m in (failed.get(a) or (0, 0) for a in ("treatment", "control")) if m)
        steps = r.get("steps")
        body.append(
            [
                f"<td>{esc(FRAMEWORK_SHORT.get(r.get('framework'), r.get('framework')))}</td>",
                f"<td>{esc(r.get('dataset'))}</td>",
                f"<td>{esc(r.get('label') or r.get('metric'))}<br><small>{esc(r.get('treatment'))}"
                f"{' vs ' + esc(r.get('control')) if r.get('control') else ''}</small></td>",
                f'<td class="num effect">{esc(rf.effect_text(r.get("effect"), r.get("ci")))}</td>',
                f'<td class="num">{esc(rf.signed(r.get("margin"), 3).lstrip("+"))}</td>',
                f'<td class="num n">{esc(" / ".join(str(x) for x in n if x))}</td>',
                f'<td class="num">{esc(fail_text)}</td>',
                f'<td class="num">{esc(" / ".join(map(str, steps)) if isinstance(steps, list) else steps or "")}</td>',
                verdict_cell(r.get("verdict")),
                f'<td class="note">{esc(r.get("note") or "")}</td>',
            ]
        )
    return table(
        ["fw", "dataset", "question", "effect [95% interval]", "margin", "n", "failed", "steps", "verdict", "note"],
        body,
        f' class="fit rows" id="rows-{esc(claim.get("claim", ""))}"',
        [4, 9, 22, 13, 6, 6, 7, 7, 11, 15],
    )


def claim_pictures(run_dir: Path, index: dict, claim: dict, limit: int = 4) -> str:
    """Control beside treatment, both frameworks, for the claim's first `limit` image or mixture
    comparisons whose grids are in the figures folder."""
    seen, out = [], []
    for r in claim.get("rows", []):
        # one picture pair per pair of arms and dataset, whichever arm a row calls the control
        key = (frozenset((r.get("control") or "", r.get("treatment"))), r.get("dataset"))
        if key in seen or len(seen) >= limit:
            continue
        arms = [a for a in (r.get("control"), r.get("treatment")) if a]
        pics = [
            index_img(run_dir, index, a, key[1], fw, "grid", f"{a} ({FRAMEWORK_SHORT[fw]}, {key[1]})")
            for a in arms
            for fw in FRAMEWORK_ORDER
        ]
        if any(pics):
            seen.append(key)
            out.append(f'<div class="pair">{"".join(pics)}</div>')
    return "\n".join(out)


def claim_section(run_dir: Path, index: dict, claim: dict) -> str:
    n = claim.get("claim", "")
    head = f'<section class="claim" id="claim-{esc(n)}"><h3>Claim {esc(n)}: {esc(claim.get("title", ""))}</h3>'
    if not claim.get("rows"):
        return head + '<p class="note">None of its groups is in this folder.</p></section>'
    parts = [
        head,
        "<p>Each panel: one question on one dataset; the marks are the effect and its 95% interval in "
        "PyTorch (circle) and TensorFlow (square), coloured by verdict; a positive effect supports the "
        "claim; the grey band is the smallest effect of interest.</p>",
        fig_img(rf.effects_fig(claim), f"claim {n}: effects by question and dataset"),
        fig_img(
            rf.series_fig(claim, index),
            f"claim {n}: the loss curves its questions read, one seed per group: bin means, then step by step "
            "over the shaded final 10 % that the metric reads",
        ),
        claim_pictures(run_dir, index, claim),
        rows_table(claim),
        "</section>",
    ]
    return "\n".join(p for p in parts if p)


def budgets_section(records: list[dict], groups: dict) -> str:
    """Per model and dataset: steps, seeds per framework and runs that trained."""
    from . import trained

    by: dict[tuple, dict] = {}
    for (name, ds, fw), seeds in groups.items():
        recs = list(seeds.values())
        checks = [trained.trained(r) for r in recs]
        steps = sorted({int(r.get("steps_done") or 0) for r in recs})
        by.setdefault((name, ds), {})[fw] = (len(recs), sum(c is True for c in checks), steps)
    rows = []
    for (name, ds), fws in by.items():
        cells = [f"<td>{esc(name)}</td>", f"<td>{esc(ds)}</td>"]
        steps = sorted({s for _, _, st in fws.values() for s in st})
        cells.append(f'<td class="num">{esc(", ".join(map(str, steps)))}</td>')
        for fw in FRAMEWORK_ORDER:
            n, ok, _ = fws.get(fw, (0, 0, []))
            cells.append(f'<td class="num">{esc(f"{ok} of {n}" if n else "")}</td>')
        rows.append(cells)
    return (
        '<h2 id="budgets">Budgets</h2><p>Steps of each model\'s runs, and per framework the runs that '
        "trained (bench/runs/trained.py) of those run. A question is judged only at or past its working "
        "budget (docs/study.md).</p>"
        + table(
            ["model", "dataset", "steps", "PyTorch: trained of runs", "TensorFlow: trained of runs"],
            rows,
            ' class="fit"',
        )
    )


def views_section(doc: dict) -> str:
    """The rows read again at earlier budgets from the same runs (bench/runs/study_views.py)."""
    fractions, rows = view_table(doc)
    if not rows:
        return ""
    body = []
    for e in rows:
        cells = [
            f'<td class="num">{esc(e["claim"])}</td>',
            f"<td>{esc(FRAMEWORK_SHORT.get(e['framework'], e['framework']))}</td>",
            f"<td>{esc(e['dataset'])}</td>",
            f"<td>{esc(e['label'])}</td>",
        ]
        for r in [e["cells"].get(f) for f in fractions] + [e["main"]]:
            if r is None:
                cells.append('<td class="missing">\u2014</td>')
            else:
                cells.append(
                    f'<td class="{esc(verdict_class(r.get("verdict")))}">{esc(rf.effect_text(r.get("effect"), r.get("ci")))}'
                    f"<br><small>{esc(r.get('steps'))} steps: {esc(r.get('verdict'))}</small></td>"
                )
        body.append(cells)
    heads = [f"at {f:.0%} of the budget" for f in fractions] + ["at the working budget"]
    return (
        '<h3 id="views">As training goes on</h3><p>Rows whose runs recorded their metrics during training, '
        "read again at earlier budgets from the same runs, with the same tests and correction; below the "
        "working budget a verdict shows the trend, not the claim's verdict.</p>"
        + table(["#", "fw", "dataset", "question", *heads], body, ' class="fit" id="views"')
    )


def cost_section(cost: list[dict]) -> str:
    if not cost:
        return ""
    rows = [
        [
            f"<td>{esc(c.get('model'))}</td>",
            f"<td>{esc(c.get('dataset'))}</td>",
            f"<td>{esc(FRAMEWORK_SHORT.get(c.get('framework'), c.get('framework')))}</td>",
            f'<td class="num">{esc(c.get("runs"))}</td>',
            f'<td class="num">{esc(c.get("steps"))}</td>',
            f'<td class="num">{esc(rf.rounded(c.get("ms_per_step"), 3))}</td>',
            f'<td class="num">{esc(rf.rounded(c.get("wall_s_per_run"), 3))}</td>',
            f'<td class="num">{esc(rf.rounded(as_minutes(c.get("wall_s_total")), 3))}</td>',
        ]
        for c in cost
    ]
    return "<h3>Cost</h3>" + table(
        ["model", "dataset", "fw", "runs", "steps", "ms/step", "s per run", "minutes in all"], rows, ' class="fit"'
    )


def as_minutes(seconds) -> float:
    return rf.as_float(seconds) / 60.0


def samples_section(run_dir: Path, index: dict, groups: dict) -> str:
    """What every group draws: per dataset a row per model, PyTorch's grid beside
    TensorFlow's, and the loss curves of each."""
    names: dict[str, list[str]] = {}
    for name, ds, _ in groups:
        if name not in names.setdefault(ds, []):
            names[ds].append(name)
    parts = [
        '<h2 id="samples">What each group draws</h2><p>The final sample grid of each group\'s lowest seed, '
        "PyTorch beside TensorFlow, and the loss curves of its seeds (shaded: the final window the final "
        "losses and the oscillation metric read).</p>"
    ]
    absent = []
    for ds in sorted(names, key=lambda d: DATASET_ORDER.index(d) if d in DATASET_ORDER else 99):
        rows = []
        for name in names[ds]:
            cells = [f"<td><b>{esc(name)}</b></td>"]
            for fw in FRAMEWORK_ORDER:
                pic = index_img(run_dir, index, name, ds, fw, "grid", f"{name}, {FRAMEWORK_TITLE[fw]}")
                curves = index_img(run_dir, index, name, ds, fw, "losses", "losses", "curves")
                if (name, ds, fw) in groups and not pic:
                    absent.append(f"{name} ({FRAMEWORK_SHORT[fw]}, {ds})")
                cells.append(f"<td>{pic}{curves}</td>")
            rows.append(cells)
        parts += [f"<h3>{esc(ds)}</h3>", table(["model", "PyTorch", "TensorFlow"], rows, ' class="fit samples"')]
    if absent:
        parts.append(f'<p class="note">No sample grid recorded for: {esc(", ".join(absent))}.</p>')
    return "\n".join(parts)


def latent_section(run_dir: Path, index: dict, groups: dict) -> str:
    parts = []
    for name, ds, fw in groups:
        entry = index.get(figures.group_key(name, ds, fw)) or {}
        if "latents" not in entry and "interp" not in entry:
            continue
        parts += [
            f"<h3>{esc(name)} \u00b7 {esc(ds)} \u00b7 {esc(FRAMEWORK_TITLE.get(fw, fw))}, seed {esc(entry.get('seed'))}</h3>",
            '<div class="pair">',
            index_img(run_dir, index, name, ds, fw, "latents", "latent means coloured by class: t-SNE, PCA", "fig"),
            index_img(run_dir, index, name, ds, fw, "interp", "decoded interpolations between test images", "interp"),
            "</div>",
        ]
    return ('<h2 id="latents">VAE latents</h2>' + "\n".join(parts)) if parts else ""


def comparison_section(run_dir: Path) -> str:
    """The run's comparison table (comparison.csv: a metric per row, PyTorch beside TensorFlow)."""
    import csv

    path = run_dir / "comparison.csv"
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except OSError:
        return ""
    if len(rows) < 2:
        return ""
    body = [[f"<td>{esc(rf.rounded_text(x))}</td>" for x in r] for r in rows[1:]]
    return '<h2 id="comparison">PyTorch against TensorFlow</h2>' + table(rows[0], body, ' class="fit"')


def shown_path(run_dir: Path) -> str:
    """The run folder as the page names it: relative to the current directory where it lies
    under it (`results/study`, so a committed page does not carry one machine's folders), the
    absolute path otherwise."""
    folder, here = run_dir.resolve(), Path.cwd().resolve()
    return folder.relative_to(here).as_posix() if folder.is_relative_to(here) and folder != here else str(folder)


def header(run_dir: Path, records: list[dict], unreadable: list[str], generated: str) -> str:
    status = Counter(str(r.get("status")) for r in records)
    versions = sorted(
        {str((r.get("versions") or {}).get("genbench")) for r in records if (r.get("versions") or {}).get("genbench")}
    )
    revisions = sorted({str(r["git_revision"]) for r in records if r.get("git_revision")})
    rows = [
        ["run folder", shown_path(run_dir)],
        ["records", f"{len(records)}: " + ", ".join(f"{n} {s}" for s, n in status.most_common())],
        ["generated", generated],
    ]
    if versions:
        rows.append(["genbench version", ", ".join(versions)])
    if revisions:
        rows.append(["git revision", ", ".join(revisions)])
    out = "<h1>genbench report</h1>" + table(
        None, [[f"<th>{esc(a)}</th>", f"<td>{esc(b)}</td>"] for a, b in rows], ' id="header"'
    )
    if unreadable:
        out += "<p>Unreadable records, left out:</p><ul>" + "".join(f"<li>{esc(u)}</li>" for u in unreadable) + "</ul>"
    return out


def render(run_dir) -> str:
    """The whole page as a string (draws the run folder's figures first: bench/runs/figures.py)."""
    run_dir = Path(run_dir)
    records, unreadable = load_run(run_dir)
    doc = load_verdicts(run_dir)
    groups = groups_of(records)
    index = figures.write_figures(run_dir, records)
    body = [header(run_dir, records, unreadable, now_iso())]
    if doc is None:
        body.append(
            '<p class="note" id="no-verdicts">This folder holds no study verdicts '
            f"({esc(VERDICTS)}): the page shows the run's records.</p>"
        )
        # a run's page opens with what its models draw, then the numbers
        body.append(samples_section(run_dir, index, groups))
        body.append(comparison_section(run_dir))
    else:
        body.append(summary_section(doc))
        body.append('<h2 id="claims">The claims, one by one</h2>')
        body += [claim_section(run_dir, index, c) for c in doc["claims"]]
        body.append(samples_section(run_dir, index, groups))
        body.append(budgets_section(records, groups))
        body.append(views_section(doc))
        body.append(cost_section(doc.get("cost") or []))
    body.append(latent_section(run_dir, index, groups))
    body.append('<pre id="image-check"></pre>')
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>genbench report: '
        f"{esc(run_dir.name)}</title><style>{CSS}</style><script>{CHECK_SCRIPT}</script></head>"
        "<body>\n" + "\n".join(b for b in body if b) + "\n</body></html>\n"
    )


def write_report(run_dir) -> Path:
    """Render and write RUN_DIR/report.html atomically; returns its path."""
    text = render(run_dir)
    return atomic_write_text(Path(run_dir) / "report.html", text)
