"""`genbench report RUN_DIR`: RUN_DIR/report.html, one self-contained page of a run's (or a
study's) results. Every image is an embedded PNG (data: URI), the CSS is inline, nothing is
fetched; the only script is a few lines that, once the page has loaded, write into a hidden
<pre id="image-check"> how many images decoded and how many rows the verdict table has (the
browser test reads it).

Sections: header (folder, records by status, time, versions); the study's verdicts
(RUN_DIR/study/verdicts.json, schema 1, when present) with their detail rows and error bars over
seeds; per group (spec name x dataset x framework) its loss curves and seed 0's sample grids;
VAE latents (t-SNE and PCA, interpolation); unregularized vs regularized and PyTorch vs
TensorFlow final grids side by side. Figures are bounded: one loss figure per group, one
error-bar figure per claim, one latent figure per VAE group.
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from pathlib import Path

from ..core.facts import IMAGE_DATASETS, MIXTURE_DATASETS
from . import report_figures as rf
from .records import RecordError, atomic_write_text, now_iso, scan_records
from .study import SCHEMA, STUDY_DIR, VERDICTS_FILE

VERDICTS = Path(STUDY_DIR) / VERDICTS_FILE
VERDICT_SCHEMA = SCHEMA
FRAMEWORK_ORDER = ("torch", "tensorflow")
FRAMEWORK_TITLE = {"torch": "PyTorch", "tensorflow": "TensorFlow"}
DATASET_ORDER = IMAGE_DATASETS + MIXTURE_DATASETS  # images first, then the 2-D mixtures

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:1.5em auto;max-width:1200px;color:#222}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}h3{font-size:1.05em}
table{border-collapse:collapse;margin:.6em 0;font-size:.85em}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.supported{background:#c8e6c9}.contradicted{background:#ffcdd2}.inconclusive{background:#fff3c4}
.missing{color:#999}.note{color:#555;font-style:italic}
figure{display:inline-block;margin:.4em .8em .4em 0;vertical-align:top}
figcaption{font-size:.8em;color:#444;max-width:420px}
img.grid{image-rendering:pixelated;width:260px}img.interp{image-rendering:pixelated;width:360px}img.fig{max-width:100%}
.pair{display:flex;gap:1em;flex-wrap:wrap;align-items:flex-start}
#image-check{display:none}
"""

CHECK_SCRIPT = """
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var decoded = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  var rows = document.querySelectorAll("table#verdicts tbody tr").length;
  document.getElementById("image-check").textContent =
    JSON.stringify({images: imgs.length, decoded: decoded, verdict_rows: rows});
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
    """RUN_DIR/study/verdicts.json (schema 1), or None when the folder has none. RecordError
    (one line) when it exists but is not a schema-1 verdicts file."""
    path = Path(run_dir) / VERDICTS
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RecordError(f"{path} cannot be read: {e}") from None
    if not isinstance(doc, dict) or doc.get("schema") != VERDICT_SCHEMA or not isinstance(doc.get("claims"), list):
        raise RecordError(
            f"{path} is not a schema-{VERDICT_SCHEMA} verdicts file (needs 'schema': 1 and a 'claims' list)"
        )
    for c in doc["claims"]:
        if not isinstance(c, dict) or not isinstance(c.get("rows", []), list):
            raise RecordError(f"{path}: every claim must be an object with a 'rows' list")
    return doc


def groups_of(records: list[dict]) -> dict[tuple[str, str, str], dict[int, dict]]:
    """{(spec name, dataset, framework): {seed: record}}, sorted."""
    out: dict[tuple, dict[int, dict]] = {}
    for r in records:
        key = (rf.spec_name(r), str(r.get("dataset")), str(r.get("framework")))
        out.setdefault(key, {})[int(r.get("seed", 0))] = r
    return {k: dict(sorted(out[k].items())) for k in sorted(out, key=lambda k: _sort_key(*k))}


# -- pieces of HTML --------------------------------------------------------------------------
def img(uri: str | None, caption: str, cls: str = "grid") -> str:
    if not uri:
        return f'<figure><p class="missing">{esc(caption)}: not in the run folder</p></figure>'
    return (
        f'<figure><img class="{cls}" src="{uri}" alt="{esc(caption)}"><figcaption>{esc(caption)}</figcaption></figure>'
    )


def table(headers: list[str] | None, rows: list[list[str]], attrs: str = "") -> str:
    """Rows are lists of ready <td>/<th> cells; no header row when `headers` is None."""
    head = "" if headers is None else "<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in headers) + "</tr></thead>"
    body = "".join("<tr>" + "".join(cells) + "</tr>" for cells in rows)
    return f"<table{attrs}>{head}<tbody>{body}</tbody></table>"


def verdict_cell(v) -> str:
    if v is None:
        return '<td class="missing">\u2014</td>'
    return f'<td class="{esc(v) if v in ("supported", "contradicted", "inconclusive") else ""}">{esc(v)}</td>'


def verdict_columns(claims: list[dict]) -> list[str]:
    keys = list(dict.fromkeys(k for c in claims for k in (c.get("verdict") or {})))

    def order(k):
        fw, _, ds = k.partition("/")
        return _sort_key("", ds, fw)[1:]

    return sorted(keys, key=order)


def verdict_section(doc: dict, records: list[dict]) -> str:
    claims = doc["claims"]
    cols = verdict_columns(claims)
    rows = []
    for c in claims:
        agree = c.get("frameworks_agree") or {}
        agree_text = ", ".join(f"{ds}: {'yes' if ok else 'no'}" for ds, ok in agree.items()) or "\u2014"
        rows.append(
            [
                f'<td class="num">{esc(c.get("claim", ""))}</td>',
                f"<td>{esc(c.get('title', ''))}</td>",
                *(verdict_cell((c.get("verdict") or {}).get(k)) for k in cols),
                f"<td>{esc(agree_text)}</td>",
            ]
        )
    parts = ["<h2>Verdicts</h2>", table(["claim", "title", *cols, "frameworks agree"], rows, ' id="verdicts"')]
    detail = []
    for c in claims:
        for r in c.get("rows", []):
            n = r.get("n") or []
            detail.append(
                [
                    f'<td class="num">{esc(c.get("claim", ""))}</td>',
                    f"<td>{esc(r.get('framework'))}</td>",
                    f"<td>{esc(r.get('dataset'))}</td>",
                    f"<td>{esc(r.get('metric'))} ({esc(r.get('better'))} is better)</td>",
                    f"<td>{esc(r.get('treatment'))}</td>",
                    f"<td>{esc(r.get('control') or '(one group)')}</td>",
                    f'<td class="num effect">{esc(rf.effect_text(r.get("effect"), r.get("ci")))}</td>',
                    f'<td class="num n">{esc(" / ".join(str(x) for x in n))}</td>',
                    f'<td class="num">{esc(",".join(str(s) for s in r.get("seeds") or []))}</td>',
                    f'<td class="num">{esc(r.get("steps", ""))}</td>',
                    verdict_cell(r.get("verdict")),
                    f'<td class="note">{esc(r.get("note") or "")}</td>',
                ]
            )
    parts += [
        "<h3>Comparisons</h3><p>Effect: treatment minus control, signed so that a positive effect supports "
        "the claim, with its 95% interval; n: seeds of treatment / control.</p>",
        table(
            [
                "claim",
                "framework",
                "dataset",
                "metric",
                "treatment",
                "control",
                "effect [95% interval]",
                "n",
                "seeds",
                "steps",
                "verdict",
                "note",
            ],
            detail,
            ' id="verdict-rows"',
        ),
    ]
    parts.append(
        "<h3>Means over seeds</h3><p>Each group's mean with its 95% t interval over seeds, from this "
        "folder's records (status ok, finite value).</p>"
    )
    for c in claims:
        uri = rf.claim_errorbars(c, records)
        caption = f"claim {c.get('claim', '')}: {c.get('title', '')}"
        parts.append(
            img(uri, caption, "fig") if uri else f'<p class="missing">{esc(caption)}: no records of its groups here</p>'
        )
    budgets, cost = doc.get("budgets"), doc.get("cost") or []
    if budgets:
        parts.append(f"<h3>Budgets</h3><pre>{esc(json.dumps(budgets, indent=2))}</pre>")
    if cost:
        keys = list(dict.fromkeys(k for row in cost for k in row))
        parts += ["<h3>Cost</h3>", table(keys, [[f"<td>{esc(row.get(k, ''))}</td>" for k in keys] for row in cost])]
    return "\n".join(parts)


def _epoch_grids(exp_dir: Path) -> list[tuple[str, Path]]:
    def epoch(p):
        m = re.fullmatch(r"samples_epoch(\d+)\.png", p.name)
        return int(m.group(1)) if m else None

    grids = sorted((epoch(p), p) for p in exp_dir.glob("samples_epoch*.png") if epoch(p) is not None)
    out = [(f"epoch {k}", p) for k, p in grids]
    if (exp_dir / "samples_final.png").exists():
        out.append(("final", exp_dir / "samples_final.png"))
    return out


def group_section(run_dir: Path, key: tuple, seeds: dict[int, dict]) -> str:
    name, ds, fw = key
    title = f"{name} \u00b7 {ds} \u00b7 {FRAMEWORK_TITLE.get(fw, fw)}"
    statuses = ", ".join(f"seed {s}: {r.get('status')}" for s, r in seeds.items())
    parts = [f'<h3 id="{esc(f"{name}__{ds}__{fw}")}">{esc(title)}</h3><p>{esc(statuses)}</p>']
    curves = {s: rf.read_losses(run_dir / r["id"] / "losses.csv") for s, r in seeds.items()}
    uri = rf.loss_figure(curves, f"{title}: losses")
    parts.append(
        img(
            uri,
            f"loss curves of seeds {', '.join(map(str, seeds))}; shaded: the final window (the last "
            f"{rf.FINAL_WINDOW} steps, which the final losses and the oscillation metric use)",
            "fig",
        )
        if uri
        else '<p class="missing">no losses.csv</p>'
    )
    first_seed, first = next(iter(seeds.items()))
    exp_dir = run_dir / first["id"]
    grids = _epoch_grids(exp_dir)
    if grids:
        parts.append(
            '<div class="pair">'
            + "".join(img(rf.file_uri(p), f"seed {first_seed}, {label}") for label, p in grids)
            + "</div>"
        )
    return "\n".join(parts)


def latent_section(run_dir: Path, groups: dict) -> str:
    parts = []
    for key, seeds in groups.items():
        seed, rec = next(iter(seeds.items()))
        exp_dir = run_dir / rec["id"]
        if not (exp_dir / "latents.npz").exists() and not (exp_dir / "interpolation.png").exists():
            continue
        title = f"{key[0]} \u00b7 {key[1]} \u00b7 {FRAMEWORK_TITLE.get(key[2], key[2])}, seed {seed}"
        uri = rf.latent_figure(exp_dir / "latents.npz", key[0])
        parts += [
            f"<h3>{esc(title)}</h3>",
            '<div class="pair">',
            img(uri, "latent means coloured by class", "fig") if uri else '<p class="missing">no latents.npz</p>',
            img(rf.file_uri(exp_dir / "interpolation.png"), "interpolation between two test images", "interp"),
            "</div>",
        ]
    return "<h2>VAE latents</h2>" + ("\n".join(parts) or '<p class="missing">no VAE latents in this folder</p>')


def final_grid(run_dir: Path, groups: dict, name, ds, fw) -> tuple[str | None, str]:
    seeds = groups.get((name, ds, fw))
    if not seeds:
        return None, f"{name} ({fw}, {ds}): not in this folder"
    seed, rec = next(iter(seeds.items()))
    return rf.file_uri(
        run_dir / rec["id"] / "samples_final.png"
    ), f"{name} ({FRAMEWORK_TITLE.get(fw, fw)}, {ds}, seed {seed})"


def pairs_section(run_dir: Path, groups: dict, doc: dict | None) -> str:
    parts = ["<h2>Unregularized vs regularized</h2>"]
    pairs: dict[tuple, list] = {}  # (control, treatment, framework, dataset) -> the claims comparing them
    for c in (doc or {}).get("claims", []):
        for r in c.get("rows", []):
            if r.get("control"):
                claims = pairs.setdefault((r["control"], r.get("treatment"), r.get("framework"), r.get("dataset")), [])
                claims += [] if c.get("claim") in claims else [c.get("claim")]
    for (control, treatment, fw, ds), claims in pairs.items():
        pics = [img(*final_grid(run_dir, groups, n, ds, fw)) for n in (control, treatment)]
        parts.append(
            f"<h3>{esc(control)} vs {esc(treatment)}, {esc(FRAMEWORK_TITLE.get(fw, fw))}, {esc(ds)} "
            f'({"claims" if len(claims) > 1 else "claim"} {esc(", ".join(map(str, claims)))})</h3><div class="pair">'
            + "".join(pics)
            + "</div>"
        )
    if not pairs:
        parts.append('<p class="missing">no study comparisons with a control in this folder</p>')
    parts.append("<h2>PyTorch vs TensorFlow</h2>")
    both = sorted({(n, d) for n, d, _ in groups}, key=lambda k: _sort_key(k[0], k[1], ""))
    for name, ds in both:
        pics = [img(*final_grid(run_dir, groups, name, ds, fw)) for fw in FRAMEWORK_ORDER]
        parts.append(f'<h3>{esc(name)} \u00b7 {esc(ds)}</h3><div class="pair">' + "".join(pics) + "</div>")
    return "\n".join(parts)


def header(run_dir: Path, records: list[dict], unreadable: list[str], generated: str) -> str:
    status = Counter(str(r.get("status")) for r in records)
    versions = sorted(
        {str((r.get("versions") or {}).get("genbench")) for r in records if (r.get("versions") or {}).get("genbench")}
    )
    revisions = sorted({str(r["git_revision"]) for r in records if r.get("git_revision")})
    rows = [
        ["run folder", str(run_dir.resolve())],
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
    """The whole page as a string."""
    run_dir = Path(run_dir)
    records, unreadable = load_run(run_dir)
    doc = load_verdicts(run_dir)
    groups = groups_of(records)
    body = [header(run_dir, records, unreadable, now_iso())]
    if doc is None:
        body.append(
            f'<h2>Verdicts</h2><p class="missing" id="no-verdicts">no study verdicts in this folder '
            f"({esc(VERDICTS)} is absent): the sections below show the run's records only</p>"
        )
    else:
        body.append(verdict_section(doc, records))
    body.append("<h2>Experiments</h2>")
    body += [group_section(run_dir, key, seeds) for key, seeds in groups.items()]
    body.append(latent_section(run_dir, groups))
    body.append(pairs_section(run_dir, groups, doc))
    body.append('<pre id="image-check"></pre>')
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>genbench report: '
        f"{esc(run_dir.name)}</title><style>{CSS}</style><script>{CHECK_SCRIPT}</script></head>"
        "<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def write_report(run_dir) -> Path:
    """Render and write RUN_DIR/report.html atomically; returns its path."""
    text = render(run_dir)
    return atomic_write_text(Path(run_dir) / "report.html", text)
