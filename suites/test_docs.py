"""The documentation works as written: README.md and docs/*.md.

- Every `genbench` line in a fenced bash block parses with the command's own parser
  (bench/cli/parser.py); a `genbench run` or `genbench study` line also passes the command's own
  option checks (models, stabilizers, datasets, seeds, executor options) up to the point where it
  would load data and train, which is stubbed out: nothing is trained, read or written.
- Every `tox -e ENV` in a fenced block names an env of tox.ini.
- Every repository path the text names (bench/..., impls/..., suites/..., results/..., docs/...,
  .ci/..., tox.ini, pyproject.toml) exists, and so does every relative link target; outputs that
  runs write (results/runs/, placeholders such as <id> or RUN_DIR) are not paths to check.
- Planted errors (an example that exits 2, an unknown option, an unknown tox env, a missing file,
  a broken link) are reported by the same checks, so a passing run means something.
- Under the `ray` marker: docs/scale.md's recipe for a cluster started with `ray start --head`
  (token authentication): joining it by HOST:PORT without RAY_AUTH_MODE=token exits 2 with the
  line naming the cause; with it, a two-experiment matrix runs through --address.
"""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from bench import cli
from bench.cli.parser import build_parser

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# -- extracting examples and paths ---------------------------------------------------------------

FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
SHELL_LANGS = ("bash", "sh", "shell", "console")
# a repository path: one of the top-level folders or files, not part of a longer path or word
PATH = re.compile(
    r"(?<![\w./~-])((?:bench|impls|suites|results|docs|\.ci)/[\w./-]*|tox\.ini|pyproject\.toml"
    r"|conftest\.py|README\.md)"
)
LINK = re.compile(r"\]\(([^)\s]+)\)")
GENERATED = ("results/runs/",)  # what runs write, ignored by git
SUITE = re.compile(r"(?<![\w/.-])(test_\w+\.py)")  # a suite named by its file name alone: suites/<name>
DRY_RUN = ("run", "study", "equivalence")  # commands checked past their parser, up to their work
TOX_GENBENCH = ("run", "study")  # tox envs whose posargs go to `genbench ENV` (tox.ini)


def shell_blocks(text: str) -> list[tuple[int, str]]:
    """(first line number, body) of every fenced bash block."""
    return [
        (text.count("\n", 0, m.start()) + 2, m.group(2))
        for m in FENCE.finditer(text)
        if m.group(1).lower() in SHELL_LANGS
    ]


def commands(text: str) -> list[tuple[int, list[str]]]:
    """(line number, argv) of every simple command in the fenced bash blocks: continuation lines
    joined, comments dropped, `&&`, `;`, `|` and a trailing `&` split off, leading VAR=value
    assignments dropped."""
    out = []
    for first, body in shell_blocks(text):
        lines = body.split("\n")
        i = 0
        while i < len(lines):
            lineno, line = first + i, lines[i]
            while line.rstrip().endswith("\\") and i + 1 < len(lines):
                i += 1
                line = line.rstrip()[:-1] + " " + lines[i]
            i += 1
            lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
            lexer.whitespace_split, lexer.commenters = True, "#"
            try:
                tokens = list(lexer)
            except ValueError as e:
                out.append((lineno, ["<unparsable>", f"{line!r}: {e}"]))
                continue
            argv: list[str] = []
            for tok in [*tokens, ";"]:
                if tok in ("&&", "||", ";", "&", "|", ";;"):
                    while argv and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", argv[0]):
                        argv.pop(0)
                    if argv:
                        out.append((lineno, argv))
                    argv = []
                else:
                    argv.append(tok)
    return out


def repo_paths(text: str) -> list[str]:
    """Repository paths named anywhere in the text (prose, tables, code)."""
    found = []
    for m in PATH.finditer(text):
        path = m.group(1).rstrip(".,;:")
        if path.startswith(GENERATED) or re.search(r"[<>{}*]|[A-Z]{2,}[A-Z_]*(?:/|$|\.)", path.split("/", 1)[-1]):
            continue  # a run's output, or a placeholder (RUN_DIR, NAME.npz, <id>)
        found.append(path)
    return sorted(set(found))


def link_targets(text: str) -> list[str]:
    """Relative link targets of markdown links and images (no URLs, no anchors)."""
    return sorted(
        {
            t.split("#")[0]
            for t in LINK.findall(text)
            if not re.match(r"[a-z]+:", t) and not t.startswith("#") and t.split("#")[0]
        }
    )


# -- running an example without training ---------------------------------------------------------


class Planned(Exception):
    """Raised by the stubs where the command, its options checked, would load data or train."""


def _stub(monkeypatch) -> None:
    """Stub out what `genbench run/study/equivalence` would do once its options are checked:
    the data preflight, the matrix (training, records, Ray), the study's verdicts and the
    equivalence cases."""
    from bench.cli import run as cli_run
    from bench.runs import study

    names = vars(cli_run)
    for name in ("run_matrix", "_preflight_data"):
        assert name in names, (
            f"bench/cli/run.py has no {name} any more: point suites/test_docs.py's _stub at "
            "what `genbench run` now calls to load data and train"
        )

    def planned(*args, **kwargs):
        raise Planned()

    monkeypatch.setattr(cli_run, "run_matrix", planned)
    monkeypatch.setattr(cli_run, "_preflight_data", planned)
    monkeypatch.setattr(study, "write_verdicts", planned)
    from bench.checks import equivalence

    monkeypatch.setattr(equivalence, "main", planned)
    if "_resolve_device" in names:  # --device cuda examples on a machine without CUDA
        monkeypatch.setattr(cli_run, "_resolve_device", lambda device: "cpu")


def check_genbench(argv: list[str], monkeypatch, capsys) -> str | None:
    """None when `genbench ARGV` parses (and, for run, study and equivalence, passes the
    command's option checks); otherwise what went wrong, in one line."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:
        err = capsys.readouterr().err.strip().splitlines()
        return None if e.code == 0 else f"does not parse: {err[-1] if err else e.code}"
    if args.command not in DRY_RUN:
        return None
    with monkeypatch.context() as m:
        _stub(m)
        try:
            code = cli.main(argv)
        except Planned:
            return None
        except SystemExit as e:  # --help
            return None if e.code == 0 else f"exit {e.code}"
    err = capsys.readouterr().err.strip().splitlines()
    return f"exit {code}: {err[-1] if err else ''}" if code != 0 else None


def tox_envs() -> set[str]:
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(ROOT / "tox.ini")
    return {s.split(":", 1)[1] for s in cfg.sections() if s.startswith("testenv:")}


def problems(name: str, text: str, monkeypatch, capsys, root: Path = ROOT, folder: Path | None = None) -> list[str]:
    """Every problem of one document: failing genbench examples, unknown tox envs, missing
    paths and broken links; each one line naming the document and the line or path."""
    found = []
    envs = tox_envs()
    for lineno, argv in commands(text):
        if argv[0] == "<unparsable>":
            found.append(f"{name}:{lineno}: {argv[1]}")
        elif argv[0] == "genbench":
            why = check_genbench(argv[1:], monkeypatch, capsys)
            if why:
                found.append(f"{name}:{lineno}: `{shlex.join(argv)}` {why}")
        elif argv[0] == "tox" and "-e" in argv[:-1]:
            for env in argv[argv.index("-e") + 1].split(","):
                if env not in envs:
                    found.append(f"{name}:{lineno}: `tox -e {env}`: no [testenv:{env}] in tox.ini")
            env = argv[argv.index("-e") + 1]
            if env in TOX_GENBENCH and "--" in argv:  # tox.ini passes what follows -- to genbench ENV
                genbench = [env, *argv[argv.index("--") + 1 :]]
                why = check_genbench(genbench, monkeypatch, capsys)
                if why:
                    found.append(f"{name}:{lineno}: `{shlex.join(argv)}` (genbench {shlex.join(genbench)}) {why}")
    for path in repo_paths(text):
        if not (root / path).exists():
            found.append(f"{name}: names {path}, which does not exist")
    for suite in sorted(set(SUITE.findall(text))):
        if not (root / "suites" / suite).exists():
            found.append(f"{name}: names the suite {suite}, which is not in suites/")
    for target in link_targets(text):
        if not ((folder or root) / target).exists():
            found.append(f"{name}: links to {target}, which does not exist")
    return found


# -- the documents -------------------------------------------------------------------------------


@pytest.mark.parametrize("doc", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_examples_parse_and_named_files_exist(doc, monkeypatch, capsys):
    found = problems(str(doc.relative_to(ROOT)), doc.read_text(), monkeypatch, capsys, folder=doc.parent)
    assert not found, "\n".join(found)


def test_the_examples_are_found():
    """The extraction sees the examples it should (a regex that matched nothing would pass)."""
    readme = [argv for _, argv in commands((ROOT / "README.md").read_text())]
    assert ["pip", "install", "tox"] in readme and ["tox", "-e", "run"] in readme and ["tox"] in readme
    assert ["genbench", "run", "--profile", "smoke"] in readme
    every = [argv for doc in DOCS for _, argv in commands(doc.read_text()) if argv[0] == "genbench"]
    assert len(every) >= 20 and {a[1] for a in every} >= {"run", "study", "gate", "baseline", "report"}
    assert "results/baselines/ci.json" in repo_paths((ROOT / "docs" / "gate.md").read_text())


def test_readme_fits_a_screen_and_keeps_the_two_commands():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 160
    assert "pip install tox && tox -e run" in text and "pip install tox && tox  " in text


def test_study_results_state_the_study_default():
    """docs/study-results.md says which datasets `genbench study` trains without --datasets."""
    default = build_parser().parse_args(["study"]).datasets
    assert f"`{default}`" in (ROOT / "docs" / "study-results.md").read_text()


# -- planted errors: the checks can fail ---------------------------------------------------------

PLANTED = """Some text naming `bench/core/specs.py` and `results/runs/anything/ignored.json`.

```bash
genbench run --profile smoke --models gan,vae,dcgan+spectral-norm+dropout   # dropout does not apply to dcgan
genbench run --profile smoke --models gan --seeds 4-1
genbench run --no-such-option
genbench gate                                  # RUN_DIR and --baseline missing
genbench study --datasets mnist,mnits
genbench equivalence --cases gan,dcgan+dropout
genbench run --profile smoke --models gan,vae  # fine
tox -e nosuchenv
tox -e run -- --profile smoke --models dcgan+dropout
```
"""


def test_planted_bad_examples_are_reported(monkeypatch, capsys):
    found = problems("planted.md", PLANTED, monkeypatch, capsys)
    joined = "\n".join(found)
    assert len(found) == 8, joined
    assert "planted.md:4: `genbench run --profile smoke --models gan,vae,dcgan+spectral-norm+dropout` exit 2" in joined
    assert "stabilizer dropout does not apply to dcgan" in joined
    assert "--seeds 4-1` exit 2" in joined
    assert "--no-such-option` does not parse" in joined
    assert "`genbench gate` does not parse" in joined
    assert "mnits" in joined and "did you mean" in joined.lower()
    assert "`genbench equivalence --cases gan,dcgan+dropout` exit 2" in joined
    assert "`tox -e nosuchenv`: no [testenv:nosuchenv] in tox.ini" in joined
    assert "(genbench run --profile smoke --models dcgan+dropout) exit 2" in joined
    assert "--models gan,vae`" not in joined
    assert "bench/core/specs.py" not in joined and "results/runs" not in joined


def test_a_planted_missing_path_and_link_are_reported(monkeypatch, capsys):
    text = (
        "See `bench/runs/no_such_module.py`, suites/test_docs.py, [gate](gate.md) and "
        "[gone](no-such-page.md#part), RUN_DIR/report.html and `bench/evaluators/NAME.npz`; "
        "`test_cli.py` and `test_nothing_here.py`.\n"
    )
    found = problems("planted.md", text, monkeypatch, capsys, folder=ROOT / "docs")
    assert found == [
        "planted.md: names bench/runs/no_such_module.py, which does not exist",
        "planted.md: names the suite test_nothing_here.py, which is not in suites/",
        "planted.md: links to no-such-page.md, which does not exist",
    ], found


def test_continuations_comments_and_operators_are_split():
    text = (
        "```bash\nFOO=1 genbench run --profile smoke \\\n    --models gan   # trailing comment\n"
        "genbench study --shard 0/2 & genbench study --shard 1/2 &\n"
        "pip install tox && tox -e run\n```\n"
    )
    assert [argv for _, argv in commands(text)] == [
        ["genbench", "run", "--profile", "smoke", "--models", "gan"],
        ["genbench", "study", "--shard", "0/2"],
        ["genbench", "study", "--shard", "1/2"],
        ["pip", "install", "tox"],
        ["tox", "-e", "run"],
    ]


# -- docs/scale.md against a real `ray start --head` --------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, head: subprocess.Popen, timeout: float) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if head.poll() is not None:
            raise AssertionError(f"ray start --head exited with {head.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"nothing answers on 127.0.0.1:{port} after {timeout} s")


@pytest.mark.ray
def test_scale_docs_cluster_recipe_against_ray_start_head(tmp_path):
    """A head node as users start one (`ray start --head`, with a token: token authentication
    on), on loopback: genbench joins it by HOST:PORT only with RAY_AUTH_MODE=token, and says so
    when it cannot; with it, a two-experiment smoke matrix runs and both records are ok."""
    pytest.importorskip("ray", reason="ray is not installed (pip install 'genbench[ray]')")
    ray_cli = Path(sys.executable).with_name("ray")
    if not ray_cli.exists():
        pytest.skip(f"no `ray` command next to {sys.executable}")
    token = tmp_path / "token"
    token.write_text(uuid.uuid4().hex)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_AUTH", "RAY_ADDRESS"))}
    env.update(
        RAY_AUTH_TOKEN_PATH=str(token),
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
    )
    port = _free_port()
    ray_tmp = tempfile.mkdtemp(prefix="gbray", dir="/tmp")  # short: Ray's socket paths have a length limit
    log_path = tmp_path / "head.log"
    with log_path.open("w") as log:
        head = subprocess.Popen(
            [
                str(ray_cli),
                "start",
                "--head",
                "--block",
                f"--port={port}",
                "--node-ip-address=127.0.0.1",
                "--num-cpus=2",
                "--include-dashboard=false",
                f"--temp-dir={ray_tmp}",
                "--disable-usage-stats",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for_port(port, head, timeout=120)
        argv = [
            sys.executable,
            "-m",
            "bench.cli",
            "run",
            "--executor",
            "ray",
            "--address",
            f"127.0.0.1:{port}",
            "--profile",
            "smoke",
            "--dataset",
            "ring8",
            "--models",
            "gan",
            "--framework",
            "torch",
            "--seeds",
            "0-1",
            "--no-progress",
        ]

        refused = subprocess.run(
            [*argv, "--out", str(tmp_path / "without")],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert refused.returncode == 2, refused.stdout + refused.stderr
        line = [x for x in refused.stderr.splitlines() if x.startswith("genbench run: error:")]
        assert len(line) == 1 and "cannot start or join Ray" in line[0], refused.stderr
        assert "token authentication" in line[0] and "RAY_AUTH_MODE=token" in line[0], line[0]
        assert not (tmp_path / "without" / "records").exists()

        joined = subprocess.run(
            [*argv, "--out", str(tmp_path / "with")],
            env={**env, "RAY_AUTH_MODE": "token"},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert joined.returncode == 0, joined.stdout[-3000:] + joined.stderr[-3000:]
        from bench.runs import records

        recs = [records.read_record(p) for p in records.record_paths(tmp_path / "with")]
        assert sorted((r["seed"], r["status"]) for r in recs) == [(0, "ok"), (1, "ok")]
        assert all(r["steps_done"] == 20 for r in recs)
    finally:
        try:
            os.killpg(head.pid, signal.SIGTERM)
            head.wait(timeout=60)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(head.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(ray_tmp, ignore_errors=True)


# -- the catalog tables of docs/cli.md against the registries ---------------------------------
def _md_table(text: str, first_header: str) -> list[list[str]]:
    """The body rows of the markdown table whose header row starts with `first_header`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


def _catalog_rows(text: str) -> dict[str, set[str]]:
    rows = _md_table(text, "model")
    out: dict[str, set[str]] = {}
    for model, _what, stabs in rows:
        out[model] = (
            set(out[stabs[3:]]) if stabs.startswith("as ") else {s.strip() for s in stabs.split(",") if s.strip()}
        )
    return out


def test_the_catalog_tables_match_the_registries():
    from bench.core import registry
    from bench.core.facts import DATASET_FACTS

    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    documented = _catalog_rows(text)
    assert set(documented) == set(registry.MODELS)  # every model, no other
    for model, stabs in documented.items():
        applies = {n for n, s in registry.STABILIZERS.items() if s.applies(registry.MODELS[model])}
        assert stabs == applies, (model, sorted(stabs ^ applies))
    assert {r[0] for r in _md_table(text, "stabilizer")} == set(registry.STABILIZERS)
    names = {n.strip().lower().replace(" ", "-") for r in _md_table(text, "dataset") for n in r[0].split(",")}
    assert names - {"your-copy"} == set(DATASET_FACTS)  # every dataset, no other


def test_a_planted_catalog_error_is_caught():
    from bench.core import registry

    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    planted = text.replace("| dcgan | dense", "| dcgan2 | dense", 1)
    assert set(_catalog_rows(planted)) != set(registry.MODELS)
    planted = text.replace(
        "label-smoothing-one, label-smoothing-two, spectral-norm, gradient-penalty |\n| gan-minimax",
        "label-smoothing-one, spectral-norm, gradient-penalty |\n| gan-minimax",
        1,
    )
    gan = {n for n, s in registry.STABILIZERS.items() if s.applies(registry.MODELS["gan"])}
    assert _catalog_rows(planted)["gan"] != gan
