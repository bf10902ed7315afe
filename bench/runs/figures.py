"""The pictures of a run folder, kept beside its records: RUN_DIR/figures/.

A run folder's per-experiment folders (weights, sample grids, loss logs) stay on the machine
that trained them; the committed study keeps only its records. So that a page can show what
every group draws after those folders are gone, `write_figures` copies from them, per group
(spec name x dataset x framework), small PNGs and the data of its loss curves:

- ``<dataset>/<name>__<framework>__grid.png``: the final sample grid of the group's lowest seed
  that has one, at most GRID_SIDE pixels a side (about 30 KB);
- ``<dataset>/<name>__<framework>__losses.png``: the loss curves of every seed there, the final
  window shaded;
- for VAEs, ``__latents.png`` (t-SNE and PCA of the latent means) and ``__interp.png``;
- ``index.json``: per group the files above, the seed and record they come from, the seeds of
  the loss figure and ``series``: the representative seed's loss curves in SERIES_POINTS bin
  means per term and the final 10 % of steps unbinned, from which the claim figures draw the
  loss curves (claims 1 and 2).

A group whose experiment folders are absent keeps what an earlier call wrote; a group is
redrawn only when the records it would be drawn from changed. Every file is written
atomically.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from . import report_figures as rf
from .records import RecordError, atomic_write_bytes, atomic_write_text

FIG_DIR = "figures"
INDEX_FILE = "index.json"
INDEX_SCHEMA = 1
GRID_SIDE = 240  # pixels: a grid of 8 x 8 MNIST digits stays legible
SERIES_POINTS = 240  # bin means per loss term in index.json
TAIL_SHARE, TAIL_POINTS = 0.1, 600  # and the last 10 % of steps unbinned


def group_key(name: str, dataset: str, framework: str) -> str:
    return f"{dataset}/{name}__{framework}"


def groups_of(records: list[dict]) -> dict[tuple[str, str, str], dict[int, dict]]:
    """{(spec name, dataset, framework): {seed: record}}, seeds sorted."""
    out: dict[tuple, dict[int, dict]] = {}
    for r in records:
        key = (rf.spec_name(r), str(r.get("dataset")), str(r.get("framework")))
        out.setdefault(key, {})[int(r.get("seed", 0))] = r
    return {k: dict(sorted(v.items())) for k, v in out.items()}


def read_index(run_dir) -> dict:
    """RUN_DIR/figures/index.json's groups ({} when absent); RecordError when unreadable."""
    path = Path(run_dir) / FIG_DIR / INDEX_FILE
    if not path.exists():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RecordError(f"{path} cannot be read: {e}") from None
    if not isinstance(doc, dict) or doc.get("schema") != INDEX_SCHEMA or not isinstance(doc.get("groups"), dict):
        raise RecordError(f"{path}: field 'schema': not a schema-{INDEX_SCHEMA} figures index with a 'groups' object")
    return doc["groups"]


def figure_path(run_dir, entry: dict, kind: str) -> Path | None:
    """The file of one of a group's figures ('grid', 'losses', 'latents', 'interp'), or None."""
    rel = (entry or {}).get(kind)
    path = Path(run_dir) / FIG_DIR / rel if rel else None
    return path if path is not None and path.is_file() else None


# -- drawing ---------------------------------------------------------------------------------
def small_png(path: Path) -> bytes | None:
    """A PNG at most GRID_SIDE a side, grey when the image has no colour, else a 64-colour
    palette; None when `path` is not a readable image."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            rgb = im.convert("RGB")
    except (OSError, ValueError):
        return None
    rgb.thumbnail((GRID_SIDE, GRID_SIDE), Image.Resampling.NEAREST if max(rgb.size) < 2 * GRID_SIDE else Image.LANCZOS)
    a = np.asarray(rgb, dtype=np.int16)
    grey = bool(np.abs(a[..., 0] - a[..., 1]).max() <= 2 and np.abs(a[..., 1] - a[..., 2]).max() <= 2)
    out = rgb.convert("L") if grey else rgb.quantize(colors=64)
    buf = io.BytesIO()
    out.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def binned(steps: np.ndarray, values: np.ndarray, points: int = SERIES_POINTS) -> tuple[list, list]:
    """(bin centres, bin means) of a curve in at most `points` equal bins; non-finite values
    are left out of their bin's mean (a bin with none is dropped)."""
    n = len(steps)
    edges = np.linspace(0, n, min(points, n) + 1).astype(int)
    xs, ys = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        v = values[lo:hi]
        v = v[np.isfinite(v)]
        if hi > lo and len(v):
            xs.append(round(float(np.mean(steps[lo:hi])), 1))
            ys.append(float(f"{float(np.mean(v)):.5g}"))
    return xs, ys


def _series(curve) -> dict:
    """Per term the binned curve and, unbinned, its final TAIL_SHARE of steps (at most TAIL_POINTS
    values, 4 digits): the window the oscillation and drift metrics read, step to step."""
    steps, terms = curve
    out = {}
    for term, values in terms.items():
        xs, ys = binned(steps, values)
        if ys:
            k = min(TAIL_POINTS, max(1, int(round(len(steps) * TAIL_SHARE))))
            tail = [float(f"{v:.4g}") if np.isfinite(v) else None for v in values[-k:]]
            out[term] = {"step": xs, "value": ys, "tail_start": float(steps[-k]), "tail": tail}
    return out


def _source(seeds: dict[int, dict]) -> list:
    return sorted([r.get("id"), r.get("status")] for r in seeds.values())


def draw_group(run_dir: Path, key: tuple, seeds: dict[int, dict], entry: dict) -> dict:
    """One group's figures from its experiment folders into RUN_DIR/figures; returns its index
    entry (the old one, where nothing is there to draw from)."""
    name, ds, fw = key
    base = group_key(name, ds, fw)
    folder = run_dir / FIG_DIR
    have = {s: r for s, r in seeds.items() if (run_dir / str(r.get("id")) / "samples_final.png").is_file()}
    curves = {s: rf.read_losses(run_dir / str(r.get("id")) / "losses.csv") for s, r in seeds.items()}
    curves = {s: c for s, c in curves.items() if c is not None and len(c[0])}
    if not have and not curves:
        return entry
    if entry.get("source") == _source(seeds) and all(
        figure_path(run_dir, entry, k) for k in ("grid", "losses") if k in entry
    ):
        return entry
    new = {"name": name, "dataset": ds, "framework": fw, "source": _source(seeds)}
    if have:
        seed, rec = next(iter(have.items()))
        exp = run_dir / str(rec["id"])
        data = small_png(exp / "samples_final.png")
        if data:
            atomic_write_bytes(folder / f"{base}__grid.png", data)
            new.update(grid=f"{base}__grid.png", seed=seed, record=rec["id"], steps=rec.get("steps_done"))
        interp = small_png(exp / "interpolation.png") if (exp / "interpolation.png").is_file() else None
        if interp:
            atomic_write_bytes(folder / f"{base}__interp.png", interp)
            new["interp"] = f"{base}__interp.png"
        if (exp / "latents.npz").is_file():
            fig = rf.latent_fig(exp / "latents.npz", f"{name}, {ds}, {fw}, seed {seed}")
            if fig is not None:
                atomic_write_bytes(folder / f"{base}__latents.png", rf.fig_png(fig, dpi=72))
                new["latents"] = f"{base}__latents.png"
    if curves:
        fig = rf.loss_fig(curves, f"{name} \u00b7 {ds} \u00b7 {fw}", small=True)
        if fig is not None:
            atomic_write_bytes(folder / f"{base}__losses.png", rf.fig_png(fig, dpi=72))
            new.update(losses=f"{base}__losses.png", loss_seeds=sorted(curves))
        rep = new.get("seed", min(curves))
        new["series"] = _series(curves.get(rep) or curves[min(curves)])
        new["series_seed"] = rep if rep in curves else min(curves)
    return {**{k: v for k, v in entry.items() if k not in new or not new.get(k)}, **new}


def write_figures(run_dir, records: list[dict]) -> dict:
    """Draw every group of `records` whose experiment folders are here into RUN_DIR/figures and
    rewrite its index.json; returns the index's groups."""
    run_dir = Path(run_dir)
    index = read_index(run_dir)
    changed = False
    for key, seeds in groups_of(records).items():
        k = group_key(*key)
        entry = draw_group(run_dir, key, seeds, index.get(k, {}))
        if entry and entry != index.get(k):
            index[k], changed = entry, True
    if changed:
        atomic_write_text(
            run_dir / FIG_DIR / INDEX_FILE,
            json.dumps({"schema": INDEX_SCHEMA, "groups": dict(sorted(index.items()))}, indent=1, sort_keys=True),
        )
    return index
