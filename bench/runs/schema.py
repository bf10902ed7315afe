"""Typed views of the JSON files genbench writes, and one accessor for a run folder's files.

Four kinds of file, each a frozen dataclass with one loader that parses the JSON and checks the
type of every field it knows:

- Record (``RUN_DIR/records/<id>.json``, written by bench/runs/runner.py): ``load_record``;
- Manifest (``RUN_DIR/run.json``, bench/runs/records.py append_invocation): ``load_manifest``;
- Verdicts (``RUN_DIR/study/verdicts.json``, bench/runs/study.py): ``load_verdicts``;
- Baseline (results/baselines/*.json, bench/checks/gate.py make_baseline): ``load_baseline``.

Every object keeps the whole parsed document as ``raw`` (``extra``: the keys it has no field
for), so nothing a file holds is lost. A file that cannot be read, is not valid JSON, is not a
JSON object, lacks a required field, holds a field of the wrong type or was written by a newer
schema than this code reads raises RecordError (FieldError, NewerSchemaError): one line that
names the file, and the field where there is one::

    RUN_DIR/records/a.json: field 'seed': expected int, got 'zero'

This module imports nothing else of genbench (bench/runs/records.py builds on it).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

SCHEMA_VERSION = 2  # records and run.json ("schema_version")
BASELINE_SCHEMA = 2  # results/baselines/*.json ("schema")
VERDICTS_SCHEMA = 1  # RUN_DIR/study/verdicts.json ("schema"); bench/runs/study.py SCHEMA
STATUSES = ("trained", "ok", "diverged", "metrics_failed", "failed", "interrupted")
DIRECTIONS = ("lower", "higher", "both")
MANIFEST = "run.json"
STATE_FILE = "state.npz"
LOSSES_FILE = "losses.csv"
VERDICTS_PATH = Path("study") / "verdicts.json"


class RecordError(ValueError):
    """A record (or another file of a run folder) that cannot be read: one line that names the file."""


class FieldError(RecordError):
    """A field that is missing or of the wrong type: one line naming the file and the field."""

    def __init__(self, path, name: str, problem: str):
        super().__init__(f"{path}: field '{name}': {problem}")
        self.path, self.field = Path(path), name


class NewerSchemaError(FieldError):
    """A file written by a newer schema than this code reads."""


# -- the kinds of file -----------------------------------------------------------------------------
def _items(kind) -> dict:
    """Field metadata: each element of a list field is an object of this kind (a dataclass, or dict)."""
    return {"items": kind}


@dataclass(frozen=True)
class Record:
    """One experiment run: its identity, status, spec, losses, metrics, timings and provenance."""

    KIND: ClassVar[str] = "record"
    VERSION_KEY: ClassVar[str] = "schema_version"
    VERSION: ClassVar[int] = SCHEMA_VERSION

    id: str
    experiment: str
    dataset: str
    framework: str
    seed: int
    status: str = field(metadata={"choices": STATUSES})
    schema_version: int | None = None
    spec_hash: str | None = None
    code_hash: str | None = None
    identity: dict | None = None
    spec: dict = field(default_factory=dict)
    device: str | None = None
    variant: str | None = None
    profile: str | None = None
    n_eval: int | None = None
    phase: str | None = None
    steps_done: int | None = None
    final_losses: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    metrics_evaluated: bool = False
    evaluated_from_state: bool = False
    timing: dict = field(default_factory=dict)
    trained: dict | None = None
    state: dict | None = None
    curve: list | None = None
    error: str | None = None
    errors: dict = field(default_factory=dict)
    float32_precision: dict | None = None
    compute: dict | None = None
    compute_evaluation: dict | None = None
    command: list | None = None
    git_revision: str | None = None
    versions: dict | None = None
    host: dict | None = None
    started_at: str | None = None
    trained_at: str | None = None
    ended_at: str | None = None
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def key(self) -> tuple:
        """What two configurations of one experiment share: (experiment, dataset, framework, seed)."""
        return self.experiment, self.dataset, self.framework, self.seed

    @property
    def extra(self) -> dict:
        return _extra(self)


@dataclass(frozen=True)
class Invocation:
    """One `genbench run` into a folder: its command and resolved options."""

    KIND: ClassVar[str] = "invocation"

    command: list | None = None
    options: dict = field(default_factory=dict)
    device_used: str | None = None
    executor: str | None = None
    started_at: str | None = None
    git_revision: str | None = None
    raw: dict = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Manifest:
    """RUN_DIR/run.json: every `genbench run` into the folder, newest last."""

    KIND: ClassVar[str] = "run manifest"
    VERSION_KEY: ClassVar[str] = "schema_version"
    VERSION: ClassVar[int] = SCHEMA_VERSION

    invocations: tuple = field(metadata={**_items(Invocation), "nonempty": True})
    schema_version: int | None = None
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def latest(self) -> Invocation:
        """The newest invocation (the one `genbench run --resume` repeats)."""
        return self.invocations[-1]

    @property
    def extra(self) -> dict:
        return _extra(self)


@dataclass(frozen=True)
class Check:
    """One check of a baseline: the value an experiment's metric had, and its tolerance."""

    KIND: ClassVar[str] = "baseline check"

    experiment: str
    dataset: str
    framework: str
    metric: str
    value: float
    direction: str = field(metadata={"choices": DIRECTIONS})
    tolerance: float
    untrained: float | None = None
    steps: int | None = None
    seeds: int | None = None
    std: float | None = None
    pooled_std: float | None = None
    dof: int | None = None
    raw: dict = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Baseline:
    """A gate baseline: its profile, the genbench version that made it, and its checks."""

    KIND: ClassVar[str] = "baseline"
    VERSION_KEY: ClassVar[str] = "schema"
    VERSION: ClassVar[int] = BASELINE_SCHEMA

    checks: tuple = field(metadata={**_items(Check), "nonempty": True})
    schema: int | None = None
    profile: str | None = None
    genbench_version: str | None = None
    command: str | None = None
    rule: str | None = None
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def extra(self) -> dict:
        return _extra(self)


@dataclass(frozen=True)
class Claim:
    """One claim of the study: its rows (one per framework, dataset and measure) and verdicts."""

    KIND: ClassVar[str] = "claim"

    claim: int
    title: str
    rows: tuple = field(metadata=_items(dict))
    datasets: tuple = ()  # every dataset its rows name (absent from verdicts written before it)
    verdict: dict = field(default_factory=dict)
    frameworks_agree: dict = field(default_factory=dict)
    agreement: tuple = field(default=(), metadata=_items(dict))
    raw: dict = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Verdicts:
    """RUN_DIR/study/verdicts.json: every claim's rows and verdicts, the test settings, the cost."""

    KIND: ClassVar[str] = "verdicts file"
    VERSION_KEY: ClassVar[str] = "schema"
    VERSION: ClassVar[int] = VERDICTS_SCHEMA

    schema: int
    claims: tuple = field(metadata=_items(Claim))
    claims_file: str | None = None
    correction: str | None = None
    correction_name: str | None = None
    alpha: float | None = None
    power: float | None = None
    code: dict | None = None
    cost: tuple = field(default=(), metadata=_items(dict))
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def extra(self) -> dict:
        return _extra(self)


REQUIRED = tuple(
    f.name
    for f in dataclasses.fields(Record)
    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
)


# -- parsing and checking --------------------------------------------------------------------------
_TYPE_NAMES = {int: "int", float: "number", str: "str", bool: "bool", dict: "object", list: "list", tuple: "list"}


def _extra(obj) -> dict:
    known = {f.name for f in dataclasses.fields(obj)}
    return {k: v for k, v in obj.raw.items() if k not in known}


def _is(value, t) -> bool:
    if t is type(None):
        return value is None
    if t in (int, float) and isinstance(value, bool):
        return False
    if t is float:
        return isinstance(value, (int, float))
    if t is tuple:
        return isinstance(value, list)
    return isinstance(value, t)


def _show(value) -> str:
    """A value for an error line: short, on one line."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


@functools.cache
def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _build(cls, doc: dict, path: Path, prefix: str = ""):
    """An instance of dataclass `cls` from the JSON object `doc`, every known field checked."""
    hints, kw = _hints(cls), {}
    for f in dataclasses.fields(cls):
        if f.name == "raw":
            continue
        name = prefix + f.name
        if f.name not in doc:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise FieldError(path, name, f"missing (the {cls.KIND} lacks it)")
            continue
        value = doc[f.name]
        allowed = typing.get_args(hints[f.name]) or (hints[f.name],)
        if not any(_is(value, t) for t in allowed):
            want = " or ".join(_TYPE_NAMES.get(t, "null") for t in allowed)
            raise FieldError(path, name, f"expected {want}, got {_show(value)}")
        choices = f.metadata.get("choices")
        if choices and value not in choices:
            raise FieldError(path, name, f"expected one of {', '.join(choices)}, got {_show(value)}")
        if isinstance(value, list) and "items" in f.metadata:
            if f.metadata.get("nonempty") and not value:
                raise FieldError(path, name, f"an empty list; the {cls.KIND} has no {f.name!r} to go by")
            value = tuple(_item(f.metadata["items"], v, path, f"{name}[{i}]") for i, v in enumerate(value))
        kw[f.name] = value
    return cls(**kw, raw=doc)


def _item(kind, value, path: Path, name: str):
    if not isinstance(value, dict):
        raise FieldError(path, name, f"expected object, got {_show(value)}")
    return value if kind is dict else _build(kind, value, path, name + ".")


def read_json(path) -> object:
    """The parsed JSON of a file; RecordError (one line naming it) when it cannot be read or parsed."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecordError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise RecordError(f"{path}: cannot be read: {getattr(e, 'strerror', None) or e}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        what = "empty" if not text.strip() else f"not valid JSON (truncated or corrupt: {e})"
        raise RecordError(f"{path}: {what}") from None


def _load(cls, path):
    path = Path(path)
    doc = read_json(path)
    if not isinstance(doc, dict):
        got = "a list" if isinstance(doc, list) else f"a JSON {type(doc).__name__}"
        raise RecordError(f"{path}: not a {cls.KIND}: {got}, not a JSON object")
    key = cls.VERSION_KEY
    version = doc.get(key)
    if version is not None and _is(version, int) and version > cls.VERSION:
        raise NewerSchemaError(
            path, key, f"version {version} is newer than this genbench reads (up to {cls.VERSION}): update genbench"
        )
    return _build(cls, doc, path)


def load_record(path) -> Record:
    """RUN_DIR/records/<id>.json as a Record; RecordError (one line) when it is not one."""
    return _load(Record, path)


def load_manifest(path) -> Manifest:
    """RUN_DIR/run.json as a Manifest; RecordError (one line) when it is not one."""
    return _load(Manifest, path)


def load_verdicts(path) -> Verdicts:
    """RUN_DIR/study/verdicts.json as Verdicts; RecordError (one line) when it is not one."""
    return _load(Verdicts, path)


def load_baseline(path) -> Baseline:
    """A gate baseline (results/baselines/*.json) as a Baseline; RecordError (one line) when it is not one."""
    return _load(Baseline, path)


# -- a run folder ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Figures:
    """The pictures (and figure data) of one experiment's folder; None (or empty) where absent."""

    samples_final: Path | None
    samples_epochs: tuple  # samples_epoch<k>.png, by k
    loss_curves: Path | None
    latents: Path | None  # latents.npz: encoder means and labels
    latent_pca: Path | None
    interpolation: Path | None


class RunFolder:
    """The files of one run folder (`genbench run --out`), by name, typed where they are JSON.

    Reading never changes anything; a missing optional file is None, an unreadable one a
    RecordError naming it (records(): left out and listed by unreadable() instead)."""

    def __init__(self, path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    @property
    def records_dir(self) -> Path:
        return self.path / "records"

    def record_path(self, eid: str) -> Path:
        return self.records_dir / f"{eid}.json"

    def record_paths(self) -> list[Path]:
        """records/*.json, sorted (not the records moved to records/corrupt/ or records/superseded/)."""
        return sorted(self.records_dir.glob("*.json"))

    def scan(self) -> tuple[list[Record], list[tuple[Path, str]]]:
        """(the readable records, in file order; [(path, one-line error)] of the unreadable ones)."""
        good, bad = [], []
        for p in self.record_paths():
            try:
                good.append(load_record(p))
            except RecordError as e:
                bad.append((p, str(e)))
        return good, bad

    def records(self) -> list[Record]:
        """Every readable current record, sorted by id; the unreadable ones are in unreadable()."""
        return sorted(self.scan()[0], key=lambda r: r.id)

    def unreadable(self) -> list[tuple[Path, str]]:
        """[(path, one-line error)] of the records that cannot be read."""
        return self.scan()[1]

    def record(self, eid: str) -> Record:
        return load_record(self.record_path(eid))

    def experiment_dir(self, eid: str) -> Path:
        return self.path / eid

    def _file(self, eid: str, name: str) -> Path | None:
        path = self.experiment_dir(eid) / name
        return path if path.is_file() else None

    def state(self, eid: str) -> Path | None:
        """The trained weights (state.npz), or None before training finished."""
        return self._file(eid, STATE_FILE)

    def losses(self, eid: str) -> dict[str, list[float]] | None:
        """losses.csv as {column: values} (step, wall_s and every loss term; 'nan' and 'inf'
        as floats), or None when there is none; RecordError when it is not a losses table."""
        path = self._file(eid, LOSSES_FILE)
        if path is None:
            return None
        try:
            with open(path, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
        except (OSError, UnicodeDecodeError, csv.Error) as e:
            raise RecordError(f"{path}: cannot be read: {e}") from None
        if rows and "step" not in rows[0]:
            raise FieldError(path, "step", "missing (not a losses table: no step column)")
        columns = list(rows[0]) if rows else []
        return {c: [_float(r.get(c)) for r in rows] for c in columns}

    def figures(self, eid: str) -> Figures:
        exp = self.experiment_dir(eid)
        epochs = [(int(m.group(1)), p) for p in exp.glob("samples_epoch*.png") if (m := _EPOCH.fullmatch(p.name))]
        return Figures(
            samples_final=self._file(eid, "samples_final.png"),
            samples_epochs=tuple(p for _, p in sorted(epochs)),
            loss_curves=self._file(eid, "loss_curves.png"),
            latents=self._file(eid, "latents.npz"),
            latent_pca=self._file(eid, "latent_pca.png"),
            interpolation=self._file(eid, "interpolation.png"),
        )

    def manifest(self) -> Manifest | None:
        """run.json, or None when the folder has none."""
        path = self.path / MANIFEST
        return load_manifest(path) if path.exists() else None

    def verdicts(self) -> Verdicts | None:
        """study/verdicts.json, or None when the folder has none."""
        path = self.path / VERDICTS_PATH
        return load_verdicts(path) if path.exists() else None


_EPOCH = re.compile(r"samples_epoch(\d+)\.png")


def _float(x) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")
