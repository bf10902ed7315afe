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


def fig_png(fig, dpi: int = 90) -> bytes:
    """A matplotlib figure as PNG bytes (the figure is closed)."""
    plt = _plt()
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    return buf.getvalue()


def fig_uri(fig) -> str:
    return png_uri(fig_png(fig))


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


def spec_name(rec: dict) -> str:
    return str((rec.get("spec") or {}).get("name") or rec.get("experiment"))


# -- figures ---------------------------------------------------------------------------------
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


def robust_limits(series: list[np.ndarray], skip: float = 0.02) -> tuple[float, float] | None:
    """y limits that show a curve's course, not its first steps: the 0.5th to 99.5th percentile
    of the values after the first `skip` share of steps, widened by 10 %; None without values."""
    vals = [np.asarray(v, float)[int(len(v) * skip) :] for v in series]
    vals = np.concatenate([v[np.isfinite(v)] for v in vals]) if vals else np.array([])
    if not len(vals):
        return None
    lo, hi = np.percentile(vals, [0.5, 99.5])
    pad = 0.1 * (hi - lo) or 0.05 * (abs(hi) or 1.0)
    return float(lo - pad), float(hi + pad)


def loss_fig(curves: dict[int, tuple[np.ndarray, dict]], title: str, small: bool = False):
    """One figure for a group: a panel per loss term, a line per seed, the last FINAL_WINDOW steps
    of each seed shaded (the window of the final losses and the oscillation metric); None when
    there is no curve. `small`: a thumbnail for the figures folder."""
    curves = {s: c for s, c in curves.items() if c is not None and len(c[0])}
    if not curves:
        return None
    terms = list(dict.fromkeys(t for _, (_, ts) in sorted(curves.items()) for t in ts))
    plt = _plt()
    w, h0, h = (4.2, 0.8, 0.75) if small else (7, 1.5, 1.3)
    fig, axes = plt.subplots(len(terms), 1, figsize=(w, h0 + h * len(terms)), sharex=True, squeeze=False)
    for ax, term in zip(axes[:, 0], terms):
        for seed, (steps, ts) in sorted(curves.items()):
            if term not in ts:
                continue
            every = max(1, len(steps) // MAX_CURVE_POINTS)
            ax.plot(steps[::every], ts[term][::every], lw=0.7, label=f"seed {seed}")
        ax.set_ylabel(term, fontsize=8)
        lim = robust_limits([ts[term] for _, ts in curves.values() if term in ts])
        if lim is not None:
            ax.set_ylim(*lim)
    last = max(float(np.nanmax(steps)) for steps, _ in curves.values())
    first = min(float(np.nanmin(steps)) for steps, _ in curves.values())
    for ax in axes[:, 0]:
        ax.axvspan(
            max(first, last - FINAL_WINDOW + 1), last, color="0.85", zorder=0, label=f"final {FINAL_WINDOW} steps"
        )
    if not small:
        axes[0, 0].legend(fontsize=7, ncol=min(6, len(curves) + 1))
    for ax in axes[:, 0]:
        ax.tick_params(labelsize=7 if small else 8)
    axes[0, 0].set_title(title + (f" ({len(curves)} seeds)" if small else ""), fontsize=8 if small else 9)
    axes[-1, 0].set_xlabel("step", fontsize=8)
    return fig


def latent_fig(npz_path, title: str):
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
    fig.suptitle(title, fontsize=9)
    for ax, xy, name in ((axes[0], tsne, "t-SNE"), (axes[1], pca, "PCA")):
        sc = ax.scatter(xy[:, 0], xy[:, 1], c=labels, cmap="tab10", s=4, vmin=0, vmax=9)
        ax.set_title(f"{name} of {len(means)} latent means", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(sc, ax=axes, label="class")
    return fig


# -- the claims' figures ----------------------------------------------------------------------
VERDICT_COLOURS = {
    "supported": "#2e7d32",
    "contradicted": "#c62828",
    "no practical effect": "#1565c0",
    "inconclusive": "#b8860b",
}
FRAMEWORK_MARKS = (("torch", "o", "PyTorch"), ("tensorflow", "s", "TensorFlow"))


def _wrap(text: str, width: int = 34, lines: int = 3) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(str(text), width)[:lines])


def effects_fig(claim: dict, ncols: int = 4):
    """Small multiples of one claim: a panel per row and dataset, one scale per panel, the two
    frameworks as two marks (effect and 95 % interval, coloured by the row's verdict), the
    smallest effect of interest as a grey band around 0. A positive effect supports the claim.
    A row not judged shows why in its panel. None when the claim has no rows."""
    panels: dict[tuple, dict] = {}
    for r in claim.get("rows", []):
        panels.setdefault((r.get("label") or r.get("metric"), r.get("dataset")), {})[r.get("framework")] = r
    if not panels:
        return None
    plt = _plt()
    n = len(panels)
    cols = min(ncols, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.9 * cols, 2.3 * rows), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    for ax, ((label, ds), by_fw) in zip(axes.ravel(), panels.items()):
        first = next(iter(by_fw.values()))
        margin = as_float(first.get("margin"))
        ax.set_title(_wrap(f"{label} \u00b7 {ds}"), fontsize=7)
        ax.axhline(0, color="0.3", lw=0.6)
        if math.isfinite(margin) and margin > 0:
            ax.axhspan(-margin, margin, color="0.9", zorder=0)
        for x, (fw, marker, _name) in enumerate(FRAMEWORK_MARKS):
            r = by_fw.get(fw)
            if r is None:
                continue
            effect, ci = as_float(r.get("effect")), [as_float(v) for v in (r.get("ci") or [math.nan, math.nan])]
            verdict = str(r.get("verdict") or "")
            if math.isfinite(effect) and all(math.isfinite(v) for v in ci):
                colour = VERDICT_COLOURS.get(verdict, "0.5")
                ax.errorbar(
                    [x], [effect], yerr=[[effect - ci[0]], [ci[1] - effect]], fmt=marker, color=colour, capsize=3, ms=5
                )
            else:  # why, in the framework's own column, clear of the other's mark
                ax.text(
                    x,
                    0.5,
                    _wrap(verdict, 14, 5),
                    transform=ax.get_xaxis_transform(),
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="0.35",
                )
        ax.set_xticks([0, 1], ["PyTorch", "TensorFlow"], fontsize=7)
        ax.set_xlim(-0.6, 1.6)
        ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    return fig


def series_fig(claim: dict, index: dict):
    """The loss curves behind a claim's loss-curve rows (metrics 'oscillation:<term>',
    'drift:<term>', 'drop:<term>'): a panel per term and dataset, a line per arm and framework
    from the figures index's series (one seed per group), the final 10 % of steps shaded (the
    window those metrics read). None when no row reads a loss curve or no series is there."""
    wanted: dict[tuple, set] = {}
    for r in claim.get("rows", []):
        metric = str(r.get("metric") or "")
        if ":" not in metric:
            continue
        term = metric.split(":", 1)[1]
        arms = [a for a in (r.get("treatment"), r.get("control")) if a]
        wanted.setdefault((term, r.get("dataset")), set()).update(arms)
    panels = []
    for (term, ds), arms in wanted.items():
        lines = []
        for arm in sorted(arms):
            for fw, _, name in FRAMEWORK_MARKS:
                s = ((index.get(f"{ds}/{arm}__{fw}") or {}).get("series") or {}).get(term)
                if s and s.get("value"):
                    x, y = np.asarray(s["step"], float), np.asarray(s["value"], float)
                    if s.get("tail"):  # the final window step by step, as the metric reads it
                        tail = np.asarray([np.nan if v is None else v for v in s["tail"]], float)
                        keep = x < float(s["tail_start"])
                        x = np.concatenate([x[keep], float(s["tail_start"]) + np.arange(len(tail))])
                        y = np.concatenate([y[keep], tail])
                    lines.append((f"{arm}, {name}", x, y))
        if lines:
            panels.append((term, ds, lines))
    if not panels:
        return None
    plt = _plt()
    cols = min(2, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.6 * cols, 2.4 * rows), squeeze=False)
    for ax in axes.ravel()[len(panels) :]:
        ax.set_visible(False)
    for ax, (term, ds, lines) in zip(axes.ravel(), panels):
        for label, x, y in lines:
            ax.plot(x, y, lw=0.8, label=label, ls="-" if "PyTorch" in label else "--")
        last = max(float(x[-1]) for _, x, _ in lines)
        ax.axvspan(0.9 * last, last, color="0.88", zorder=0)
        lim = robust_limits([y for _, _, y in lines])
        if lim is not None:
            ax.set_ylim(*lim)
        ax.set_title(f"{term} \u00b7 {ds}", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("step", fontsize=7)
        ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    return fig


def rounded(x, sig: int = 3) -> str:
    """A number to `sig` significant digits, without exponent below 10^7; '' when not finite."""
    v = as_float(x)
    if not math.isfinite(v):
        return ""
    if v == 0:
        return "0"
    digits = max(0, sig - 1 - int(math.floor(math.log10(abs(v)))))
    return f"{round(v, digits):.{digits}f}"


def rounded_text(x: str, sig: int = 4) -> str:
    """A table cell: a number rounded to `sig` significant digits, any other text as it is."""
    try:
        float(x)
    except (TypeError, ValueError):
        return str(x)
    return rounded(x, sig)
