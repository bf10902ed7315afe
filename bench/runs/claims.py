"""Claims as data: the study's claims file (TOML), read into frozen dataclasses and checked.

The file (bench/runs/claims.toml is the one shipped; docs/study.md describes the format):

    schema = 1
    correction = "holm"          # multiplicity correction inside each claim: holm | bh | none
    alpha = 0.05                 # the error rate the corrected p-values are held to
    power = 0.8                  # each row states the effect its seeds detect with this power
    min_seeds = {torch = 5, tensorflow = 3}  # fewer seeds in an arm: "not judged: too few seeds"

    [[claim]]
    number = 4
    title = "Spectral normalization improves sample clarity and diversity"

    [[claim.row]]
    label = "clarity: FID"
    metric = "fid"               # a record metric, a derived one, or a loss-curve one ("drift:kl")
    direction = "lower"          # higher | lower (better for the treatment) | within (kind flat)
    kind = "diff"                # diff | one | flat | spread | failure_rate
    treatment = "dcgan+spectral-norm"
    control = "dcgan"            # required for diff, spread and failure_rate; absent otherwise
    datasets = ["mnist", "fashion-mnist"]
    budget = 6000                # working budget in steps (or {treatment = .., control = ..}); 0: any
    margin = 10.0                # the smallest effect of interest, in the metric's units
    threshold = 0.0              # kind "one": the value the group is compared with (optional)
    confound = ""                # what differs between the arms besides the treatment (optional)

Any problem (TOML syntax, an unknown or missing key, a wrong type, an unknown metric, model,
dataset, direction or kind) raises ClaimsError: one line naming the file, the key path
(claim[3].row[0].direction) and the problem.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..core import registry
from ..core.specs import DATASETS, SpecError
from .stats import CORRECTIONS

DEFAULT_FILE = Path(__file__).with_name("claims.toml")
DIRECTIONS = ("higher", "lower", "within")
KINDS = ("diff", "one", "flat", "spread", "failure_rate")
TWO_GROUP_KINDS = ("diff", "spread", "failure_rate")
# record metrics (bench/metrics) a row may name; loss statistics <term>_mean/_std/_abs_step too
RECORD_METRICS = frozenset(
    (
        "fid",
        "kid_mean",
        "isc_mean",
        "precision",
        "recall",
        "class_kl",
        "classes_covered",
        "modes_covered",
        "mode_kl",
        "high_quality_share",
        "sharpness",
        "sharpness_ratio",
        "sharpness_real",
        "test_elbo",
        "test_recon",
        "test_kl",
        "test_recon_mse",
        "knn_accuracy",
        "latent_silhouette",
        "pixel_silhouette",
        "interp_jump",
        "iwae_nll",
        "anomaly_auroc",
        "denoising_psnr",
    )
)
LOSS_STATISTIC = re.compile(r"^[a-z][a-z0-9_]*_(mean|std|abs_step)$")
CURVE_KINDS = ("oscillation", "drop", "drift")
DERIVED_METRICS = ("silhouette_gain", "sharpness_gap")
FRAMEWORKS = ("torch", "tensorflow")
FAILURE_METRIC = "trained"  # kind failure_rate counts the runs that fail bench/runs/trained.py


class ClaimsError(SpecError):
    """A claims file that cannot be used: one line naming the file, the key and the problem."""


@dataclass(frozen=True)
class Row:
    label: str
    metric: str
    direction: str
    kind: str
    treatment: str
    control: str | None
    datasets: tuple
    budget: tuple  # (treatment steps, control steps): the working budget of each arm
    margin: float
    threshold: float = 0.0
    confound: str = ""


@dataclass(frozen=True)
class Claim:
    number: int
    title: str
    rows: tuple


@dataclass(frozen=True)
class ClaimsFile:
    path: str
    claims: tuple
    correction: str = "holm"
    alpha: float = 0.05
    power: float = 0.8
    # {framework: seeds}: a row whose arm has fewer seeds at its budget in that framework is
    # "not judged: too few seeds (k of m)"; a framework not named has no minimum
    min_seeds: tuple = ()

    def seeds_needed(self, framework: str | None) -> int:
        return dict(self.min_seeds).get(framework, 0)


def known_metric(name: str) -> bool:
    if name in RECORD_METRICS or name in DERIVED_METRICS or name == FAILURE_METRIC or LOSS_STATISTIC.match(name):
        return True
    kind, sep, term = name.partition(":")
    return bool(sep) and kind in CURVE_KINDS and bool(re.match(r"^[a-z][a-z0-9_]*$", term))


class _Reader:
    def __init__(self, path):
        self.path = str(path)

    def fail(self, key: str, problem: str):
        raise ClaimsError(f"claims file {self.path}: {key}: {problem}")

    def table(self, d, key: str, required: tuple, optional: tuple) -> None:
        if not isinstance(d, dict):
            self.fail(key, f"expected a table, got {type(d).__name__}")
        for k in d:
            if k not in required and k not in optional:
                allowed = ", ".join(required + optional)
                self.fail(
                    f"{key}.{k}" if key else k,
                    f"unknown key (allowed: {allowed})" + registry.did_you_mean(k, required + optional),
                )
        for k in required:
            if k not in d:
                self.fail(f"{key}.{k}" if key else k, "missing")

    def typed(self, value, key: str, types, what: str):
        if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
            self.fail(key, f"expected {what}, got a boolean")
        if not isinstance(value, types):
            self.fail(key, f"expected {what}, got {type(value).__name__} {value!r}")
        return value

    def choice(self, value, key: str, allowed: tuple) -> str:
        self.typed(value, key, str, "a string")
        if value not in allowed:
            self.fail(key, f"{value!r} is not one of {', '.join(allowed)}" + registry.did_you_mean(value, allowed))
        return value

    def number(self, value, key: str, minimum: float | None = None) -> float:
        self.typed(value, key, (int, float), "a number")
        if not math.isfinite(value) or (minimum is not None and value < minimum):
            self.fail(key, f"{value!r} must be a finite number" + (f" >= {minimum:g}" if minimum is not None else ""))
        return float(value)

    def steps(self, value, key: str) -> int:
        self.typed(value, key, int, "a whole number of steps")
        if value < 0:
            self.fail(key, f"{value} must be >= 0")
        return value

    def model(self, value, key: str, datasets) -> str:
        """A catalog model with its stabilizers ("dcgan+spectral-norm") that builds on every dataset."""
        self.typed(value, key, str, "a model name")
        model, stabs = registry.parse_model(value)
        for ds in datasets:
            try:
                registry.experiment(model, stabs, dataset=ds)
            except SpecError as e:
                self.fail(key, f"{value!r} on {ds}: {e}")
        return value


ROW_REQUIRED = ("label", "metric", "direction", "kind", "treatment", "datasets", "budget", "margin")
ROW_OPTIONAL = ("control", "threshold", "confound")


def _row(rd: _Reader, d, key: str) -> Row:
    rd.table(d, key, ROW_REQUIRED, ROW_OPTIONAL)
    label = rd.typed(d["label"], f"{key}.label", str, "a string")
    metric = rd.typed(d["metric"], f"{key}.metric", str, "a metric name")
    if not known_metric(metric):
        rd.fail(f"{key}.metric", f"unknown metric {metric!r}" + registry.did_you_mean(metric, tuple(RECORD_METRICS)))
    direction = rd.choice(d["direction"], f"{key}.direction", DIRECTIONS)
    kind = rd.choice(d["kind"], f"{key}.kind", KINDS)
    if (kind == "flat") != (direction == "within"):
        rd.fail(
            f"{key}.direction",
            f"{direction!r} with kind {kind!r}: kind flat takes direction 'within', "
            "every other kind 'higher' or 'lower'",
        )
    if (kind == "failure_rate") != (metric == FAILURE_METRIC):
        rd.fail(f"{key}.metric", f"kind failure_rate goes with metric {FAILURE_METRIC!r} and only with it")
    datasets = rd.typed(d["datasets"], f"{key}.datasets", list, "a list of dataset names")
    if not datasets:
        rd.fail(f"{key}.datasets", "names no dataset")
    for i, ds in enumerate(datasets):
        rd.choice(ds, f"{key}.datasets[{i}]", DATASETS)
    treatment = rd.model(d["treatment"], f"{key}.treatment", datasets)
    control = None
    if kind in TWO_GROUP_KINDS:
        if "control" not in d:
            rd.fail(f"{key}.control", f"missing (kind {kind} compares two groups)")
        control = rd.model(d["control"], f"{key}.control", datasets)
    elif "control" in d:
        rd.fail(f"{key}.control", f"kind {kind} asks about one group: no control")
    b = d["budget"]
    if isinstance(b, dict):
        rd.table(b, f"{key}.budget", (), ("treatment", "control"))
        budget = (
            rd.steps(b.get("treatment", 0), f"{key}.budget.treatment"),
            rd.steps(b.get("control", 0), f"{key}.budget.control"),
        )
    else:
        steps = rd.steps(b, f"{key}.budget")
        budget = (steps, steps)
    margin = rd.number(d["margin"], f"{key}.margin", minimum=0.0)
    if kind == "flat" and margin == 0:
        rd.fail(f"{key}.margin", "kind flat needs a margin > 0 (the interval must lie inside +-margin)")
    threshold = rd.number(d.get("threshold", 0.0), f"{key}.threshold")
    if "threshold" in d and kind != "one":
        rd.fail(f"{key}.threshold", f"only kind one compares with a threshold, not kind {kind}")
    confound = rd.typed(d.get("confound", ""), f"{key}.confound", str, "a string")
    return Row(label, metric, direction, kind, treatment, control, tuple(datasets), budget, margin, threshold, confound)


def parse(doc: dict, path="<claims>") -> ClaimsFile:
    rd = _Reader(path)
    rd.table(doc, "", ("schema", "claim"), ("correction", "alpha", "power", "min_seeds"))
    if rd.typed(doc["schema"], "schema", int, "an integer") != 1:
        rd.fail("schema", f"{doc['schema']} is not a known schema (1)")
    correction = rd.choice(doc.get("correction", "holm"), "correction", tuple(CORRECTIONS))
    alpha = rd.number(doc.get("alpha", 0.05), "alpha")
    power = rd.number(doc.get("power", 0.8), "power")
    for name, v in (("alpha", alpha), ("power", power)):
        if not 0 < v < 1:
            rd.fail(name, f"{v:g} must lie between 0 and 1")
    min_seeds = doc.get("min_seeds", {})
    rd.table(min_seeds, "min_seeds", (), FRAMEWORKS)
    for fw, n in min_seeds.items():
        if rd.typed(n, f"min_seeds.{fw}", int, "a whole number of seeds") < 1:
            rd.fail(f"min_seeds.{fw}", f"{n} must be >= 1")
    claims_in = rd.typed(doc["claim"], "claim", list, "an array of tables ([[claim]])")
    if not claims_in:
        rd.fail("claim", "no claim")
    claims, numbers = [], set()
    for i, c in enumerate(claims_in):
        key = f"claim[{i}]"
        rd.table(c, key, ("number", "title", "row"), ())
        number = rd.typed(c["number"], f"{key}.number", int, "an integer")
        if number in numbers:
            rd.fail(f"{key}.number", f"claim {number} appears twice")
        numbers.add(number)
        title = rd.typed(c["title"], f"{key}.title", str, "a string")
        rows_in = rd.typed(c["row"], f"{key}.row", list, "an array of tables ([[claim.row]])")
        if not rows_in:
            rd.fail(f"{key}.row", "no row")
        claims.append(Claim(number, title, tuple(_row(rd, r, f"{key}.row[{j}]") for j, r in enumerate(rows_in))))
    return ClaimsFile(str(path), tuple(claims), correction, alpha, power, tuple(sorted(min_seeds.items())))


def load(path=None) -> ClaimsFile:
    """Read and check a claims file (None: the shipped bench/runs/claims.toml)."""
    path = Path(path) if path is not None else DEFAULT_FILE
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as e:
        raise ClaimsError(f"claims file {path}: cannot be read: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ClaimsError(f"claims file {path}: not valid TOML: {e}") from None
    return parse(doc, path)
