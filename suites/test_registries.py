"""One registry per fact: the datasets and model families (bench/core/facts.py), the metrics
(bench/metrics/catalog.py), the execution variants (bench/core/registry.py VARIANTS). What
used to be written in several places is read from them, with the values it had (written out
here by hand), and `genbench list` shows the registries as they are.
"""

import ast
from pathlib import Path

import pytest

from bench import cli
from bench.core import data, facts, registry
from bench.core.specs import DATASETS, FAMILIES, ExperimentSpec
from bench.metrics import catalog

ROOT = Path(__file__).resolve().parent.parent


# -- datasets and families -------------------------------------------------------------------------
def test_the_dataset_names_and_their_derived_groups():
    assert DATASETS == facts.DATASETS == ("mnist", "fashion-mnist", "ring8", "grid25", "stacked-mnist")
    assert facts.IMAGE_DATASETS == ("mnist", "fashion-mnist", "stacked-mnist")  # what a spec treats as images
    assert data.IMAGE_DATASETS == ("mnist", "fashion-mnist")  # what bench.core.data reads files for
    assert data.MIXTURE_DATASETS == ("ring8", "grid25")
    assert facts.EVALUATED_DATASETS == ("mnist", "fashion-mnist")  # a classifier of their own
    assert facts.NUM_CLASSES == data.N_CLASSES == 10 and data.IMAGE_SHAPE == (28, 28)


@pytest.mark.parametrize(
    "dataset, shape, source, family_ok",
    [
        ("mnist", (1, 28, 28), "mnist", "vae"),
        ("fashion-mnist", (1, 28, 28), "fashion-mnist", "cvae"),
        ("ring8", (2,), "ring8", "gan"),
        ("grid25", (2,), "grid25", "gan"),
        ("stacked-mnist", (3, 28, 28), "mnist", "gan"),
    ],
)
def test_a_spec_reads_its_shape_and_source_from_the_dataset_registry(dataset, shape, source, family_ok):
    spec = registry.experiment("gan", dataset=dataset, profile="smoke")
    assert spec.data_shape == shape and spec.source_dataset == source
    assert spec.is_image == (len(shape) == 3)
    assert family_ok in facts.DATASET_FACTS[dataset].families


@pytest.mark.parametrize(
    "family, discriminator, encoder, conditional, data_range",
    [
        ("gan", True, False, False, (-1.0, 1.0)),
        ("vae", False, True, False, (0.0, 1.0)),
        ("cvae", False, True, True, (0.0, 1.0)),
        ("vaegan", True, True, False, (-1.0, 1.0)),
    ],
)
def test_a_spec_reads_its_family_from_the_family_registry(family, discriminator, encoder, conditional, data_range):
    assert FAMILIES == ("gan", "vae", "cvae", "vaegan")
    spec = ExperimentSpec("x", family=family, loss="elbo" if family in ("vae", "cvae") else "non-saturating")
    assert (spec.has_discriminator, spec.has_encoder, spec.conditional, spec.data_range) == (
        discriminator,
        encoder,
        conditional,
        data_range,
    )


# -- metrics ----------------------------------------------------------------------------------------
def test_the_gate_and_the_tables_read_the_metrics_registry():
    from bench.checks import gate
    from bench.runs import tables

    assert gate.DIRECTIONS is catalog.DIRECTIONS and tables.HEAD_METRICS is catalog.HEAD_METRICS
    assert gate.DIRECTIONS == {  # the values they had when each kept its own copy
        "fid": "lower",
        "kid_mean": "lower",
        "class_kl": "lower",
        "mode_kl": "lower",
        "classes_covered": "higher",
        "modes_covered": "higher",
        "high_quality_share": "higher",
        "precision": "higher",
        "recall": "higher",
        "isc_mean": "higher",
        "test_elbo": "higher",
        "knn_accuracy": "higher",
        "iwae_nll": "lower",
    }
    assert tables.HEAD_METRICS == (
        "fid",
        "kid_mean",
        "classes_covered",
        "class_kl",
        "modes_covered",
        "high_quality_share",
        "test_elbo",
        "test_recon",
        "test_kl",
        "test_recon_mse",
        "knn_accuracy",
        "d_loss_std",
    )
    assert len(catalog.BY_NAME) == len(catalog.METRICS)
    assert all(m.direction in (None, "lower", "higher") for m in catalog.METRICS)
    assert all(m.function is None or callable(m.function) for m in catalog.METRICS)


# -- execution variants -----------------------------------------------------------------------------
def _assigned(framework, name):
    """The source of the value a twin's train.py assigns to `name` (read, not imported)."""
    tree = ast.parse((ROOT / "impls" / framework / "train.py").read_text())
    (node,) = [
        n for n in tree.body if isinstance(n, ast.Assign) and [getattr(t, "id", None) for t in n.targets] == [name]
    ]
    return ast.unparse(node.value)


def test_the_variant_lists_are_read_from_the_registry():
    assert registry.VARIANTS == {
        "torch": ("eager", "compile", "channels_last"),
        "tensorflow": ("eager", "function", "xla"),
    }
    for framework in registry.VARIANTS:
        assert _assigned(framework, "VARIANTS") == f"registry.VARIANTS['{framework}']"
    assert cli.TF_VARIANTS is registry.VARIANTS["tensorflow"]


# -- `genbench list` shows the registries -----------------------------------------------------------
def _tables(text: str) -> dict[str, list[dict]]:
    """The github-format tables of `genbench list`, by the first header of each."""
    out, lines = {}, text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|") and i + 1 < len(lines) and lines[i + 1].startswith("|--"):
            head = [c.strip() for c in line.strip("|").split("|")]
            rows = []
            for row in lines[i + 2 :]:
                if not row.startswith("|"):
                    break
                rows.append(dict(zip(head, (c.strip() for c in row.strip("|").split("|")))))
            out[head[0]] = rows
    return out


def list_mismatches(tables: dict[str, list[dict]]) -> list[str]:
    """Where the tables of `genbench list` differ from the registries (empty: none)."""
    bad = []

    def same(what, shown, want):
        if shown != want:
            bad.append(f"{what}: shown {shown}, registry {want}")

    same(
        "models",
        [(r["model"], r["description"], r["stabilizers"]) for r in tables.get("model", [])],
        [(m, registry.MODEL_HELP[m], ", ".join(registry.applicable(m))) for m in registry.MODELS],
    )
    same(
        "stabilizers",
        [(r["stabilizer"], r["what"]) for r in tables.get("stabilizer", [])],
        [(s.name, s.help) for s in registry.STABILIZERS.values()],
    )
    same(
        "datasets",
        [(r["dataset"], r["shape"], r["families"], r["evaluator"], r["what"]) for r in tables.get("dataset", [])],
        [
            (d.name, "x".join(map(str, d.shape)), ", ".join(d.families), d.evaluator or "-", d.help)
            for d in facts.DATASET_FACTS.values()
        ],
    )
    same(
        "metrics",
        [(r["metric"], r["better"], r["unit"], r["head"]) for r in tables.get("metric", [])],
        [(m.name, m.direction or "-", m.unit or "-", "yes" if m.head else "-") for m in catalog.METRICS],
    )
    return bad


def _listed(capsys) -> dict[str, list[dict]]:
    assert cli.main(["list"]) == 0
    return _tables(capsys.readouterr().out)


def test_genbench_list_shows_every_registry_as_it_is(capsys):
    tables = _listed(capsys)
    assert list_mismatches(tables) == []
    # and the registries hold what the catalog is known to have
    assert [r["dataset"] for r in tables["dataset"]] == ["mnist", "fashion-mnist", "ring8", "grid25", "stacked-mnist"]
    assert len(tables["model"]) == 11 and len(tables["stabilizer"]) == 8 and len(tables["metric"]) == 17


@pytest.mark.parametrize("plant", ["drop a dataset", "flip a direction", "rename a stabilizer", "edit a help"])
def test_the_list_check_catches_a_planted_difference(capsys, plant):
    tables = _listed(capsys)
    if plant == "drop a dataset":
        tables["dataset"].pop(2)
    elif plant == "flip a direction":
        tables["metric"][0]["better"] = "higher"
    elif plant == "rename a stabilizer":
        tables["stabilizer"][0]["stabilizer"] = "weight-decay-coupled"
    else:
        tables["model"][2]["description"] = "an MLP GAN described by hand"
    assert len(list_mismatches(tables)) == 1


def test_the_report_orders_datasets_from_the_registry():
    from bench.runs import report

    assert report.DATASET_ORDER == ("mnist", "fashion-mnist", "stacked-mnist", "ring8", "grid25")
