"""`genbench report`: the self-contained HTML page of a run folder and a study's verdicts.

A tiny fake run folder (records written by the project's own writer, PNG grids from
bench/runs/plots.py, losses.csv, latents.npz) and a schema-1 verdicts.json; no training. The page is
parsed with the standard library's html.parser; the browser test opens it in headless chromium
(skips without chromium, fails under GENBENCH_REQUIRE_BROWSER=1)."""

import base64
import csv
import html
import io
import json
import math
import os
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from bench import cli
from bench.core import optional
from bench.runs import plots, records, report
from bench.runs import report_figures as rf

FRAMEWORKS = ("torch", "tensorflow")
SEEDS = (0, 1, 2)
GAN_PAIR = ("dcgan+spectral-norm", "dcgan")
CLAIM_TITLES = [
    "VAE: the ELBO, reconstruction and KL converge",
    "Spectral norm lowers DCGAN's FID",
    "Spectral norm covers more classes",
    "Spectral norm steadies the discriminator loss",
    "Gradient penalty on the 2-D ring covers more modes",
    "Weight decay changes little",
    "Label smoothing lowers FID",
]


# -- the fake run folder ---------------------------------------------------------------------
def _record(
    run_dir: Path, name: str, dataset: str, fw: str, seed: int, metrics: dict, family="gan", status="ok"
) -> dict:
    rid = f"{name}__{dataset}__{fw}__s{seed}__0123abcd"
    rec = {
        "schema_version": records.SCHEMA_VERSION,
        "id": rid,
        "experiment": name,
        "dataset": dataset,
        "framework": fw,
        "seed": seed,
        "status": status,
        "steps_done": 300,
        "spec": {"name": name, "dataset": dataset, "seed": seed, "steps": 300, "family": family},
        "metrics": metrics,
        "final_losses": {},
        "timing": {"wall_s": 1.5, "ms_per_step": 5.0},
        "versions": {"genbench": "0.1.0", "python": "3.11"},
        "git_revision": "abc123def456",
    }
    records.write_record(run_dir / "records" / f"{rid}.json", rec)
    exp = run_dir / rid
    rng = np.random.default_rng(seed)
    for k in (1, 2):
        plots.save_grid(rng.integers(0, 256, (16, 8, 8), dtype=np.uint8), exp / f"samples_epoch{k}.png", nrow=4)
    plots.save_grid(rng.integers(0, 256, (16, 8, 8), dtype=np.uint8), exp / "samples_final.png", nrow=4)
    terms = ("loss", "recon", "kl") if family == "vae" else ("d_loss", "g_loss")
    with open(exp / "losses.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "wall_s", *terms])
        for step in range(300):
            w.writerow([step, 0.01 * step, *(float(np.exp(-step / 80) + 0.05 * rng.standard_normal()) for _ in terms)])
    if family == "vae":
        labels = np.repeat(np.arange(3), 20)
        means = rng.standard_normal((60, 4)) + 3.0 * labels[:, None]
        records.save_arrays(exp / "latents.npz", means=means, labels=labels)
        plots.save_grid(rng.integers(0, 256, (10, 8, 8), dtype=np.uint8), exp / "interpolation.png", nrow=10)
    return rec


def _row(fw, ds, metric, better, treatment, control, effect, ci, verdict, note=""):
    return {
        "framework": fw,
        "dataset": ds,
        "metric": metric,
        "better": better,
        "treatment": treatment,
        "control": control,
        "effect": effect,
        "ci": ci,
        "n": [3, 3 if control else 0],
        "seeds": list(SEEDS),
        "steps": 300,
        "verdict": verdict,
        "note": note,
    }


def verdicts_doc() -> dict:
    """A schema-1 verdicts.json of 7 claims, as bench/runs/study.py writes it."""
    claims = []
    effects = [(0.12, [-0.03, 0.27]), (-1.5, [-3.25, 0.25]), (0.034, [0.012, 0.056]), (2.0, [1.0, 3.0])]
    for i, title in enumerate(CLAIM_TITLES, start=1):
        rows, verdict = [], {}
        for j, fw in enumerate(FRAMEWORKS):
            effect, ci = effects[(i + j) % len(effects)]
            v = "supported" if ci[0] > 0 else "contradicted" if ci[1] < 0 else "inconclusive"
            if i == 1:
                rows.append(_row(fw, "mnist", "test_elbo", "higher", "vae", None, effect, ci, v, "one group"))
            else:
                rows.append(_row(fw, "mnist", "fid", "lower", *GAN_PAIR, effect, ci, v))
            verdict[f"{fw}/mnist"] = v
        if i == 5:
            rows.append(
                _row(
                    "torch",
                    "ring8",
                    "modes_covered",
                    "higher",
                    "gan+gradient-penalty",
                    "gan",
                    0.5,
                    [0.25, 0.75],
                    "supported",
                )
            )
            verdict["torch/ring8"] = "supported"
        claims.append(
            {
                "claim": i,
                "title": title,
                # claim 7 names ring8 but has no run of it: its ring8 cell says "not run"
                "datasets": ["mnist", "ring8"] if i in (5, 7) else ["mnist"],
                "rows": rows,
                "verdict": verdict,
                "frameworks_agree": {"mnist": verdict["torch/mnist"] == verdict["tensorflow/mnist"]},
            }
        )
    return {
        "schema": 1,
        "claims": claims,
        "budgets": {"steps": 300, "seeds": 3},
        "cost": [{"model": "dcgan", "framework": "torch", "runs": 3, "steps": 300, "wall_s_per_run": 1.5}],
    }


def make_run(run_dir: Path, verdicts: bool = True) -> Path:
    for fw in FRAMEWORKS:
        for seed in SEEDS:
            _record(run_dir, GAN_PAIR[0], "mnist", fw, seed, {"fid": 20.0 + seed, "classes_covered": 9.0})
            _record(run_dir, GAN_PAIR[1], "mnist", fw, seed, {"fid": 30.0 + 2 * seed, "classes_covered": 8.0})
            _record(run_dir, "vae", "mnist", fw, seed, {"test_elbo": -100.0 - seed}, family="vae")
    if verdicts:
        records.atomic_write_text(run_dir / "study" / "verdicts.json", json.dumps(verdicts_doc(), indent=2))
    return run_dir


# -- parsing the page ------------------------------------------------------------------------
class Page(HTMLParser):
    """Tables by id ({"head": rows, "body": rows}, a row a list of [text, class] cells), every
    <img> src, and every script src, stylesheet link or frame (there should be none)."""

    def __init__(self, text: str):
        super().__init__()
        self.tables, self.images, self.external = {}, [], []
        self.ids, self._table, self._row, self._cell = set(), None, None, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "table":
            self._table = self.tables.setdefault(a.get("id") or f"table{len(self.tables)}", {"head": [], "body": []})
            self._part = "body"
        elif tag in ("thead", "tbody"):
            self._part = tag[1:]
        elif tag == "tr" and self._table is not None:
            self._row = []
            self._table[self._part].append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = ["", a.get("class") or ""]
            self._row.append(self._cell)
        elif tag == "img":
            self.images.append(a.get("src", ""))
        if tag in ("script", "link", "iframe") and (a.get("src") or a.get("href")):
            self.external.append((tag, a.get("src") or a.get("href")))

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None
        elif tag == "tr":
            self._row = None
        elif tag in ("td", "th"):
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[0] += data

    def body_rows(self, table_id):
        return [[c[0] for c in row] for row in self.tables[table_id]["body"]]


@pytest.fixture(scope="module")
def run_with_study(tmp_path_factory):
    run_dir = make_run(tmp_path_factory.mktemp("run"))
    t0 = time.perf_counter()
    path = report.write_report(run_dir)
    return run_dir, path, time.perf_counter() - t0


@pytest.fixture(scope="module")
def page(run_with_study):
    return Page(run_with_study[1].read_text(encoding="utf-8"))


# -- the page --------------------------------------------------------------------------------
SHORT = {"torch": "PT", "tensorflow": "TF"}


def test_one_verdict_row_per_claim_datasets_as_columns_two_marks_per_cell(page):
    rows = page.tables["verdicts"]
    header = [c[0] for c in rows["head"][0]]
    assert header == ["#", "claim", "mnist", "ring8", "frameworks agree (y/n)"]  # images first, then mixtures
    body = rows["body"]
    assert len(body) == len(CLAIM_TITLES)
    for row, claim in zip(body, verdicts_doc()["claims"]):
        assert row[0][0] == str(claim["claim"]) and row[1][0] == claim["title"]
        for cell, ds in zip(row[2:-1], header[2:-1]):
            marks = [
                f"{SHORT[fw]} {claim['verdict'][f'{fw}/{ds}']}" for fw in FRAMEWORKS if f"{fw}/{ds}" in claim["verdict"]
            ]
            empty = "not run" if ds in claim["datasets"] else "not in the claim"
            assert cell[0] == ("".join(marks) or empty), (claim["claim"], ds)
    assert body[6][3][0] == "not run" and body[0][3][0] == "not in the claim"


def test_each_claim_section_carries_its_rows_as_formatted(page):
    for claim in verdicts_doc()["claims"]:
        rows = page.body_rows(f"rows-{claim['claim']}")
        assert len(rows) == len(claim["rows"])
        for cells, r in zip(rows, claim["rows"]):
            assert cells[:2] == [SHORT[r["framework"]], r["dataset"]]
            assert cells[3] == rf.effect_text(r["effect"], r["ci"])
            assert cells[5] == " / ".join(str(x) for x in r["n"] if x)
            assert cells[8] == r["verdict"]
    effects = [c[3] for n in range(1, 8) for c in page.body_rows(f"rows-{n}")]
    assert "+0.12 [\u22120.03, +0.27]" in effects
    assert "\u22121.50 [\u22123.25, +0.25]" in effects
    assert "+0.034 [+0.012, +0.056]" in effects  # small effects keep two significant digits


def test_every_image_is_an_embedded_png_that_decodes(page):
    from PIL import Image

    plt = plots._plt()
    assert len(page.images) >= 20
    for src in page.images:
        assert src.startswith("data:image/png;base64,"), src[:60]
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert data.startswith(rf.PNG_SIGNATURE)
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
        assert plt.imread(io.BytesIO(data), format="png").size > 0
    assert page.external == []  # nothing fetched: no script src, stylesheet link or frame


def test_the_page_has_every_section_and_bounded_figures(run_with_study, page):
    run_dir, path, seconds = run_with_study
    text = path.read_text(encoding="utf-8")
    for heading in ("Verdicts", "The claims, one by one", "What each group draws", "VAE latents", "Budgets", "Cost"):
        assert f">{heading}</h" in text
    for claim in verdicts_doc()["claims"]:
        section = text.split(f'id="claim-{claim["claim"]}"', 1)[1].split("</section>", 1)[0]
        assert "<img" in section, claim["claim"]  # every claim has its figure
    assert "image-check" in page.ids
    assert "not in the run folder" not in text and "no losses.csv" not in text  # no placeholder lines
    # bounded by groups and claims, not by seeds: a grid and a loss figure per group (3 models x 2
    # frameworks), per claim an effects figure and at most 4 comparisons of 2 arms x 2 frameworks,
    # a latent figure and an interpolation per VAE group
    groups = 3 * len(FRAMEWORKS)
    assert len(page.images) <= 2 * groups + len(CLAIM_TITLES) * (2 + 16) + 2 * len(FRAMEWORKS)
    assert "records</th><td>18: 18 ok" in text and "abc123def456" in text and "0.1.0" in text
    assert str(run_dir.resolve()) in text
    assert seconds < 60, f"report took {seconds:.1f} s"
    header = page.body_rows("header")
    assert [r[0] for r in header][:3] == ["run folder", "records", "generated"]
    # the figures folder: a grid and a loss figure per group, an index that names them
    index = json.loads((run_dir / "figures" / "index.json").read_text())["groups"]
    assert len(index) == groups
    for entry in index.values():
        assert (run_dir / "figures" / entry["grid"]).stat().st_size < 60_000
        assert entry["seed"] == 0 and (run_dir / "figures" / entry["losses"]).is_file()


def test_a_pair_of_arms_is_pictured_once_whichever_arm_a_row_calls_the_control(run_with_study):
    run_dir = run_with_study[0]
    index = json.loads((run_dir / "figures" / "index.json").read_text())["groups"]
    treatment, control = GAN_PAIR
    rows = [
        _row("torch", "mnist", "fid", "lower", treatment, control, 1.0, [0.5, 1.5], "supported"),
        _row("torch", "mnist", "fid_spread", "lower", control, treatment, 1.0, [0.5, 1.5], "supported"),
    ]
    one = report.claim_pictures(run_dir, index, {"claim": 7, "rows": rows[:1]})
    both = report.claim_pictures(run_dir, index, {"claim": 7, "rows": rows})
    assert one.count('<div class="pair">') == 1 and both == one


def test_figures_outlive_the_experiment_folders(tmp_path):
    """The committed study keeps only records and figures: the page drawn after the experiment
    folders are gone shows the same grids."""

    run_dir = make_run(tmp_path / "run")
    first = Page(report.write_report(run_dir).read_text(encoding="utf-8"))
    for d in run_dir.iterdir():
        if d.is_dir() and d.name not in ("records", "study", "figures"):
            shutil.rmtree(d)
    again = report.write_report(run_dir).read_text(encoding="utf-8")
    assert sorted(Page(again).images) == sorted(first.images)
    assert "No sample grid recorded" not in again


def test_figures_drawn_while_the_last_workers_run_are_not_drawn_again(tmp_path, monkeypatch):
    """matrix.predraw (called on the core that idles while the last workers of --jobs run) draws
    the finished experiments' figures; the report at the end then draws only the ones that landed
    after it, and its page is the page drawn from scratch."""
    from bench.runs import figures, matrix

    run_dir = tmp_path / "run"
    for seed in SEEDS:
        _record(run_dir, GAN_PAIR[1], "mnist", "torch", seed, {"fid": 30.0})
    before, core = os.sched_getaffinity(0), sorted(os.sched_getaffinity(0))[-1]
    pinned = []
    real_write = figures.write_figures
    monkeypatch.setattr(figures, "write_figures", lambda *a: pinned.append(os.sched_getaffinity(0)) or real_write(*a))
    matrix.predraw(run_dir, [core])
    monkeypatch.setattr(figures, "write_figures", real_write)
    assert pinned == [{core}] and os.sched_getaffinity(0) == before  # drawn on the spare core only, then let go
    _record(run_dir, "vae", "mnist", "torch", 0, {"test_elbo": -100.0}, family="vae")
    drawn = []
    real_loss_fig, real_latent_fig = rf.loss_fig, rf.latent_fig
    monkeypatch.setattr(
        rf, "loss_fig", lambda curves, title, **kw: drawn.append(title) or real_loss_fig(curves, title, **kw)
    )
    monkeypatch.setattr(rf, "latent_fig", lambda path, title: drawn.append(title) or real_latent_fig(path, title))
    page = Page(report.write_report(run_dir).read_text(encoding="utf-8"))
    assert len(drawn) == 2 and all(title.startswith("vae") for title in drawn), drawn  # the VAE's losses, latents
    fresh = tmp_path / "fresh"
    shutil.copytree(run_dir, fresh, ignore=shutil.ignore_patterns("figures", "report.html"))
    assert sorted(Page(report.write_report(fresh).read_text(encoding="utf-8")).images) == sorted(page.images)
    (run_dir / "figures" / "index.json").write_text("not json")  # best effort: the report says what is wrong
    matrix.predraw(run_dir, [core])


def test_numbers_are_rounded_to_what_they_support():
    assert rf.rounded(1234.5678, 3) == "1235" and rf.rounded(0.012345, 3) == "0.0123"
    assert rf.rounded(1.5, 3) == "1.50" and rf.rounded(float("nan")) == "" and rf.rounded(0.0) == "0"
    assert rf.rounded_text("12.3456789") == "12.35" and rf.rounded_text("ok") == "ok"


def test_binned_series_means():
    from bench.runs import figures

    steps = np.arange(1000.0)
    values = np.where(steps % 2 == 0, 1.0, 3.0)
    values[5] = np.nan
    xs, ys = figures.binned(steps, values, points=10)
    assert len(xs) == len(ys) == 10
    assert xs[0] == pytest.approx(49.5) and ys[1:] == [2.0] * 9  # independent: the mean of alternating 1, 3
    assert ys[0] == pytest.approx((50 * 1.0 + 49 * 3.0) / 99, rel=1e-4)  # step 5 (a 3.0) left out; 5 digits kept


def test_t_interval_over_seeds():
    from scipy import stats

    mean, lo, hi, n = rf.t_interval([20.0, 21.0, 22.0])
    half = stats.t.ppf(0.975, 2) * 1.0 / math.sqrt(3)
    assert (mean, n) == (21.0, 3) and lo == pytest.approx(21 - half) and hi == pytest.approx(21 + half)
    assert rf.t_interval([5.0]) == (5.0, 5.0, 5.0, 1)
    assert rf.t_interval([float("nan")])[3] == 0


def test_number_format():
    assert rf.effect_text(0.12, [-0.03, 0.27]) == "+0.12 [\u22120.03, +0.27]"
    assert rf.effect_text(12.345, [1, 20]) == "+12.35 [+1.00, +20.00]"
    assert rf.effect_text(None, None) == "n/a [n/a, n/a]"


def test_a_row_not_judged_in_one_framework_says_why_in_that_frameworks_column():
    """The reason stands in the framework's own column (x = 1 for TensorFlow on the panel's data
    axis), clear of the other framework's mark at x = 0, and is not cut short."""
    why = "not judged: failed to train (4 of 5)"
    row = {"label": "FID", "dataset": "mnist", "margin": 10.0}
    claim = {
        "rows": [
            {**row, "framework": "torch", "effect": 6.0, "ci": [0.5, 11.5], "verdict": "inconclusive"},
            {**row, "framework": "tensorflow", "effect": None, "ci": None, "verdict": why},
        ]
    }
    fig = rf.effects_fig(claim)
    try:
        (ax,) = [a for a in fig.axes if a.get_visible()]
        (note,) = ax.texts
        assert note.get_position()[0] == 1 and note.get_transform() == ax.get_xaxis_transform()
        assert note.get_text().replace("\n", " ") == why
        (bars,) = ax.containers
        assert list(bars.lines[0].get_xdata()) == [0]  # PyTorch's mark stays in its column
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def test_the_header_names_a_folder_under_the_current_one_relatively(tmp_path, monkeypatch):
    run_dir = tmp_path / "results" / "study"
    run_dir.mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert report.shown_path(Path("results/study")) == "results/study"
    assert report.shown_path(run_dir) == "results/study"  # an absolute path under the current folder too
    monkeypatch.chdir(run_dir)
    assert report.shown_path(tmp_path / "results") == str((tmp_path / "results").resolve())  # above it: absolute


# -- without a study, unreadable records, the command line -----------------------------------
def test_without_verdicts_the_page_says_so(tmp_path, capsys):
    run_dir = tmp_path / "run"
    _record(run_dir, "gan", "mnist", "torch", 0, {"fid": 40.0})
    (run_dir / "comparison.csv").write_text("experiment,dataset,metric,torch,tensorflow\ngan,mnist,fid,40.0,41.0\n")
    (run_dir / "records" / "broken__mnist__torch__s1__deadbeef.json").write_text("{trunc")
    (run_dir / "records" / "superseded").mkdir()
    (run_dir / "records" / "superseded" / "gan__mnist__torch__s0__00000000.json").write_text("{}")
    code = cli.main(["report", str(run_dir)])
    out = capsys.readouterr()
    assert code == 0
    path = run_dir / "report.html"
    assert out.out.strip() == str(path)
    text = path.read_text(encoding="utf-8")
    assert "holds no study verdicts" in text
    assert "broken__mnist__torch__s1__deadbeef.json" in text  # listed as unreadable, left out
    assert "records</th><td>1: 1 ok" in text
    p = Page(text)
    assert "verdicts" not in p.tables and p.images and all(s.startswith("data:image/png;base64,") for s in p.images)
    # it opens with the grids: the samples section comes before the comparison table
    assert 0 < text.index('<h2 id="samples">') < text.index('<h2 id="comparison">')


@pytest.mark.parametrize("case", ["missing", "empty", "bad-verdicts"])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, case):
    run_dir = tmp_path / "run"
    if case == "empty":
        (run_dir / "records").mkdir(parents=True)
    elif case == "bad-verdicts":
        _record(run_dir, "gan", "mnist", "torch", 0, {"fid": 40.0})
        records.atomic_write_text(run_dir / "study" / "verdicts.json", json.dumps({"schema": 2, "claims": []}))
    code = cli.main(["report", str(run_dir)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("genbench report: error:") and err.count("\n") == 1
    assert not (run_dir / "report.html").exists()


def test_help_explains(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["report", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "RUN_DIR" in text and "report.html" in text and "verdicts.json" in text


def test_absent_browser_skips_or_fails(monkeypatch):
    monkeypatch.setattr(optional, "browser", lambda: None)
    monkeypatch.delenv("GENBENCH_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception, match="chromium not installed: apt-get install -y chromium"):
        optional.need_browser()
    monkeypatch.setenv("GENBENCH_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="GENBENCH_REQUIRE_BROWSER=1, and chromium is not installed"):
        optional.need_browser()


# -- in a browser ----------------------------------------------------------------------------
def _chromium(*args, timeout=60):
    cmd = [optional.browser(), "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)  # stderr: harmless noise


def _page_check(path: Path, width: int = 1280, height: int = 900) -> dict:
    """The page's own check (CHECK_SCRIPT) after it loaded in chromium at width x height."""
    done = _chromium("--dump-dom", f"--window-size={width},{height}", path.resolve().as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    check_text = done.stdout.split('id="image-check">', 1)[1].split("</pre>", 1)[0]
    return json.loads(html.unescape(check_text))


def _assert_readable(check: dict, text: str, n_claims: int, empty=()) -> None:
    """`empty`: ids of claim sections with no row in this folder (their groups have not run)."""
    assert check["decoded"] == check["images"] > 0, check
    assert check["scroll_width"] <= 1280, f"the page is {check['scroll_width']} px wide at a 1280 px window"
    assert len(check["claims"]) == n_claims
    for c in check["claims"]:
        assert c["id"] in empty or c["decoded"] >= 1, f"{c['id']} shows no decoded figure"
    assert all(ok for _, ok in check["grids"]), [g for g, ok in check["grids"] if not ok]
    assert "not in the run folder" not in text


@pytest.mark.browser
def test_chromium_decodes_every_image_and_the_page_fits_1280(run_with_study, tmp_path):
    run_dir, path, _ = run_with_study
    check = _page_check(path)
    _assert_readable(check, path.read_text(encoding="utf-8"), len(CLAIM_TITLES))
    assert check["images"] == len(Page(path.read_text(encoding="utf-8")).images)
    assert check["verdict_rows"] == len(CLAIM_TITLES)
    shot = tmp_path / "report.png"
    assert report.screenshot(path, shot, run_dir) == shot
    assert report.screenshot_fingerprint(shot) == report.fingerprint(run_dir) != ""


@pytest.mark.browser
def test_chromium_planted_overflow_is_caught(run_with_study, tmp_path):
    """The width check fails on a page wider than the window (a planted 1600 px table)."""
    _, path, _ = run_with_study
    wide = tmp_path / "wide.html"
    wide.write_text(
        path.read_text(encoding="utf-8").replace(
            "<body>", '<body><table style="width:1600px"><tr><td>x</td></tr></table>', 1
        )
    )
    assert _page_check(wide)["scroll_width"] > 1280


STUDY = Path(__file__).resolve().parents[1] / "results" / "study"


@pytest.mark.browser
def test_the_committed_study_page(tmp_path):
    """The page of the committed results/study at 1280 x 900: no horizontal scroll, every claim
    with a decoded figure, every GAN group with a decoded grid, and the committed screenshot
    (results/study/study/report-top.png) is of these verdicts."""

    if not (STUDY / "study" / "verdicts.json").exists():
        pytest.skip("results/study holds no verdicts")
    run_dir = tmp_path / "study"
    for part in ("records", "study", "figures"):
        if (STUDY / part).exists():
            shutil.copytree(STUDY / part, run_dir / part, ignore=shutil.ignore_patterns("superseded", "corrupt"))
    path = report.write_report(run_dir)
    text = path.read_text(encoding="utf-8")
    doc = json.loads((run_dir / "study" / "verdicts.json").read_text())
    check = _page_check(path)
    empty = {f"claim-{c['claim']}" for c in doc["claims"] if not c["rows"]}
    _assert_readable(check, text, len(doc["claims"]), empty)
    recs, _ = report.load_run(run_dir)
    gan_groups = {
        f"{r['dataset']}/{rf.spec_name(r)}__{r['framework']}"
        for r in recs
        if (r.get("spec") or {}).get("family") == "gan"
    }
    drawn = {g for g, ok in check["grids"] if ok}
    assert gan_groups <= drawn, sorted(gan_groups - drawn)
    committed = STUDY / "study" / "report-top.png"
    assert report.screenshot_fingerprint(committed) == report.fingerprint(run_dir), (
        "results/study/study/report-top.png is older than the study's verdicts: regenerate it with "
        "`genbench report results/study --screenshot results/study/study/report-top.png`"
    )


@pytest.mark.browser
@pytest.mark.needs_data("mnist")
def test_a_smoke_run_ends_with_its_page(tmp_path, capsys):
    """`genbench run` writes report.html and prints its path; the page opens with the grids."""
    out = tmp_path / "run"
    code = cli.main(
        ["run", "--profile", "smoke", "--models", "dcgan,vae", "--out", str(out), "--no-progress", "--jobs", "1"]
    )
    printed = capsys.readouterr().out
    assert code == 0
    page = out / "report.html"
    assert f"report: {page}" in printed and page.exists()
    check = _page_check(page)
    _assert_readable(check, page.read_text(encoding="utf-8"), 0)
    assert {g for g, ok in check["grids"] if ok} >= {"mnist/dcgan__torch", "mnist/dcgan__tensorflow"}
