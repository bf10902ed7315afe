"""The figures and numbers of `genbench report` (bench/runs/report.py): every figure is a PNG in
memory, returned as a data: URI, so the page needs no file beside it.

- Intervals over seeds: mean and the two-sided 95% t interval of a metric over the seeds of one
  group (spec name x dataset x framework), from records with status ok and a finite value.
- Loss curves: one figure per group, one line per seed, the final window (FINAL_WINDOW steps of
  bench/core/divergence.py, which the final losses and the oscillation metric use) shaded.
- Latents: t-SNE (sklearn, fixed random_state, at most TSNE_POINTS points) and PCA of a VAE's
  latent means, coloured by class.
"""

from __future__ import annotations

import base64
import csv
import io
import math
from pathlib import Path

import numpy as np

from ..core.divergence import FINAL_WINDOW
from .plots import _plt
from .records import as_float

TSNE_POINTS = 1000  # t-SNE on at most this many latent means (seconds, not minutes)
LATENT_SEED = 0  # random_state of t-SNE and of the subsample
MAX_CURVE_POINTS = 2000  # loss curves are thinned to about this many points per seed
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def file_uri(path) -> str | None:
    """An existing PNG as a data: URI; None when it is missing or not a PNG."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    return png_uri(data) if data.startswith(PNG_SIGNATURE) else None


def fig_uri(fig) -> str:
    plt = _plt()
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    finally:
        plt.close(fig)
    return png_uri(buf.getvalue())


# -- numbers ---------------------------------------------------------------------------------
def signed(x, decimals: int = 2) -> str:
    """+0.12 / −0.03 (a true minus sign); n/a for None or non-finite."""
    x = as_float(x)
    if not math.isfinite(x):
        return "n/a"
    text = f"{x:+.{decimals}f}"
    return text.replace("-", "\u2212")


def interval_decimals(*values) -> int:
    """2 decimals, more when every value is below 0.1 in magnitude (two significant digits)."""
    finite = [abs(as_float(v)) for v in values if math.isfinite(as_float(v))]
    top = max(finite, default=0.0)
    if top == 0.0:
        return 2
    return int(min(6, max(2, 1 - math.floor(math.log10(top)))))


def effect_text(effect, ci) -> str:
    """'+0.12 [−0.03, +0.27]': the effect and its 95% interval, one number format for all three."""
    lo, hi = ci if isinstance(ci, (list, tuple)) and len(ci) == 2 else (None, None)
    d = interval_decimals(effect, lo, hi)
    return f"{signed(effect, d)} [{signed(lo, d)}, {signed(hi, d)}]"


def t_interval(values) -> tuple[float, float, float, int]:
    """(mean, lo, hi, n) of the finite values: the two-sided 95% t interval of the mean
    (metrics.stability.seed_spread); lo = hi = mean when n = 1."""
    from ..metrics.stability import seed_spread

    v = [x for x in values if math.isfinite(x)]
    if not v:
        return float("nan"), float("nan"), float("nan"), 0
    got = seed_spread(v, confidence=0.95)
    half = 0.0 if len(v) == 1 else got["ci_half_width"]
    return got["mean"], got["mean"] - half, got["mean"] + half, len(v)


def group_metric(records: list[dict], name: str, dataset: str, framework: str, metric: str) -> list[float]:
    """The metric over the seeds of one group (records with status ok and a finite value)."""
    out = []
    for r in records:
        if (spec_name(r), r.get("dataset"), r.get("framework")) == (name, dataset, framework) and r.get(
            "status"
        ) == "ok":
            x = as_float((r.get("metrics") or {}).get(metric))
            if math.isfinite(x):
                out.append(x)
    return out


def spec_name(rec: dict) -> str:
    return str((rec.get("spec") or {}).get("name") or rec.get("experiment"))


# -- figures ---------------------------------------------------------------------------------
def claim_errorbars(claim: dict, records: list[dict]) -> str | None:
    """One figure per claim: per row (framework/dataset), the treatment's and the control's mean
    with its 95% t interval over seeds; one panel per metric. None when no row has data."""
    panels: dict[str, list] = {}
    for row in claim.get("rows", []):
        fw, ds, metric = row.get("framework"), row.get("dataset"), row.get("metric")
        groups = [("treatment", row.get("treatment"))] + ([("control", row["control"])] if row.get("control") else [])
        stats = [(role, name, t_interval(group_metric(records, name, ds, fw, metric))) for role, name in groups]
        if any(s[2][3] for s in stats):
            panels.setdefault(str(metric), []).append((f"{fw}\n{ds}", stats, row.get("better")))
    if not panels:
        return None
    plt = _plt()
    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(max(4.0, 2.2 * max(len(p) for p in panels.values())) * min(len(panels), 2), 3.0),
        squeeze=False,
    )
    colours = {"treatment": "tab:blue", "control": "tab:orange"}
    for ax, (metric, entries) in zip(axes[0], panels.items()):
        seen = set()
        for i, (label, stats, _better) in enumerate(entries):
            for role, name, (mean, lo, hi, n) in stats:
                if not n:
                    continue
                x = i + (-0.12 if role == "treatment" else 0.12)
                label = f"{role}: {name}"
                ax.errorbar(
                    [x],
                    [mean],
                    yerr=[[mean - lo], [hi - mean]],
                    fmt="o",
                    capsize=4,
                    color=colours[role],
                    label=None if label in seen else label,
                    ms=5,
                )
                seen.add(label)
        ax.set_xticks(range(len(entries)), [e[0] for e in entries], fontsize=7)
        better = entries[0][2]
        ax.set_title(f"{metric}" + (f" ({better} is better)" if better else ""), fontsize=9)
        ax.set_xlim(-0.6, len(entries) - 0.4)
        ax.legend(fontsize=7)
    return fig_uri(fig)


def read_losses(csv_path) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
    """(steps, {term: values}) of a losses.csv; None when it is missing, empty or unreadable."""
    try:
        with open(csv_path, newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, csv.Error, UnicodeDecodeError):
        return None
    if not rows or "step" not in rows[0]:
        return None
    steps = np.array([as_float(r["step"]) for r in rows])
    terms = {k: np.array([as_float(r.get(k)) for r in rows]) for k in rows[0] if k not in ("step", "wall_s")}
    return steps, terms


def loss_figure(curves: dict[int, tuple[np.ndarray, dict]], title: str) -> str | None:
    """One figure for a group: a panel per loss term, a line per seed, the last FINAL_WINDOW steps
    of each seed shaded (the window of the final losses and the oscillation metric)."""
    curves = {s: c for s, c in curves.items() if c is not None and len(c[0])}
    if not curves:
        return None
    terms = list(dict.fromkeys(t for _, (_, ts) in sorted(curves.items()) for t in ts))
    plt = _plt()
    fig, axes = plt.subplots(len(terms), 1, figsize=(7, 1.5 + 1.3 * len(terms)), sharex=True, squeeze=False)
    for ax, term in zip(axes[:, 0], terms):
        for seed, (steps, ts) in sorted(curves.items()):
            if term not in ts:
                continue
            every = max(1, len(steps) // MAX_CURVE_POINTS)
            ax.plot(steps[::every], ts[term][::every], lw=0.7, label=f"seed {seed}")
        ax.set_ylabel(term, fontsize=8)
    last = max(float(np.nanmax(steps)) for steps, _ in curves.values())
    first = min(float(np.nanmin(steps)) for steps, _ in curves.values())
    for ax in axes[:, 0]:
        ax.axvspan(
            max(first, last - FINAL_WINDOW + 1), last, color="0.85", zorder=0, label=f"final {FINAL_WINDOW} steps"
        )
    axes[0, 0].legend(fontsize=7, ncol=min(6, len(curves) + 1))
    axes[0, 0].set_title(title, fontsize=9)
    axes[-1, 0].set_xlabel("step")
    return fig_uri(fig)


def latent_figure(npz_path, title: str) -> str | None:
    """t-SNE and PCA of latents.npz ('means' (N, L), 'labels' (N,)) side by side, coloured by
    class; None when the file is missing or malformed."""
    try:
        with np.load(npz_path, allow_pickle=False) as z:
            means, labels = np.asarray(z["means"], np.float64), np.asarray(z["labels"]).ravel()
    except (OSError, KeyError, ValueError, EOFError):
        return None
    if means.ndim != 2 or len(means) != len(labels) or len(means) < 5:
        return None
    rng = np.random.default_rng(LATENT_SEED)
    if len(means) > TSNE_POINTS:
        keep = np.sort(rng.choice(len(means), TSNE_POINTS, replace=False))
        means, labels = means[keep], labels[keep]
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    pca = (
        PCA(n_components=2, random_state=LATENT_SEED).fit_transform(means)
        if means.shape[1] >= 2
        else np.c_[means[:, 0], np.zeros(len(means))]
    )
    tsne = TSNE(
        n_components=2, perplexity=min(30.0, (len(means) - 1) / 3), init="pca", random_state=LATENT_SEED
    ).fit_transform(means)
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for ax, xy, name in ((axes[0], tsne, "t-SNE"), (axes[1], pca, "PCA")):
        sc = ax.scatter(xy[:, 0], xy[:, 1], c=labels, cmap="tab10", s=4, vmin=0, vmax=9)
        ax.set_title(f"{title}: {name} of {len(means)} latent means", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(sc, ax=axes, label="class")
    return fig_uri(fig)
