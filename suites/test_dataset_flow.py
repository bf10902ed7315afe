"""One experiment, one dataset: the runner opens the data once and hands the same object to the
training batches, the latent figures and the metrics. The source is resolved once and each
split is read once per experiment, from the --data-dir copy when one is given; and metrics
computed from the object equal those computed from a data_dir or the built-in copy.

Tiny runs: a VAE on MNIST (it reads both splits: training, latent figures, test ELBO, k-NN on
train latents, fidelity and sharpness against test), PyTorch, two steps."""

import numpy as np
import pytest
from helpers import count_calls

from bench.core import data, registry
from bench.runs import runner

pytestmark = pytest.mark.needs_data("mnist")

N_EVAL = 200


@pytest.fixture(scope="module")
def keras_copy(tmp_path_factory):
    """A user's copy of MNIST in the Keras cache layout (a folder with mnist.npz)."""
    folder = tmp_path_factory.mktemp("keras")
    train, test = data.load("mnist", "train"), data.load("mnist", "test")
    np.savez(
        folder / "mnist.npz",
        x_train=train.images,
        y_train=train.labels.astype(np.uint8),
        x_test=test.images,
        y_test=test.labels.astype(np.uint8),
    )
    return folder


def vae_spec():
    return registry.experiment("vae", (), dataset="mnist", profile="smoke", steps=2)


def test_an_experiment_resolves_its_data_once_and_reads_each_split_once(tmp_path, monkeypatch, keras_copy):
    resolved = count_calls(monkeypatch, data.loading, "_resolve")
    reads = count_calls(monkeypatch, data.loading, "_load_from")
    spec = vae_spec()
    rec = runner.run_experiment(
        spec, "torch", tmp_path, profile="smoke", n_eval=N_EVAL, progress=False, data_dir=keras_copy
    )
    assert rec["status"] == "ok", rec["error"]
    # every consumer ran: training, latent figures, the VAE metrics and the image metrics
    assert (tmp_path / rec["id"] / "latent_pca.png").exists()
    assert {"test_elbo", "knn_accuracy", "fid", "sharpness_real"} <= set(rec["metrics"])
    assert resolved == [("mnist", keras_copy)]
    assert [(src.label, str(src.path), split) for src, split, _ in reads] == [
        ("keras npz", str(keras_copy / "mnist.npz"), "train"),
        ("keras npz", str(keras_copy / "mnist.npz"), "test"),
    ]

    # evaluating from the saved state opens the data once more and reads each split once
    # (test: figures, ELBO, fidelity; train: the k-NN reference latents)
    resolved.clear()
    reads.clear()
    again = runner.evaluate_saved(
        spec, "torch", tmp_path, {**rec, "status": "trained"}, n_eval=N_EVAL, data_dir=keras_copy
    )
    assert again["status"] == "ok" and again["metrics"] == rec["metrics"]
    assert resolved == [("mnist", keras_copy)]
    assert sorted(split for _, split, _ in reads) == ["test", "train"]


def test_metrics_from_the_object_equal_metrics_from_data_dir(monkeypatch, keras_copy):
    """The same numbers whichever way the data arrives: the Dataset object (from the copy),
    data_dir (the copy), and the built-in source (byte-identical once verified)."""
    import impls
    from bench.metrics import metrics_for

    spec = vae_spec()
    trainer = impls.load("torch").build(spec)

    def metrics(**where):
        return metrics_for(spec, trainer, np.random.default_rng(0), n_samples=N_EVAL, **where)

    by_dir, builtin = metrics(data_dir=keras_copy), metrics()
    resolved = count_calls(monkeypatch, data.loading, "_resolve")
    dataset = data.open_dataset("mnist", keras_copy)
    by_object = metrics(dataset=dataset)
    assert resolved == [("mnist", keras_copy)] and dataset.source.startswith("keras npz: ")
    assert {"test_elbo", "knn_accuracy", "fid", "kid_mean", "sharpness_ratio"} <= set(by_object)
    assert by_object == by_dir == builtin


def test_metrics_refuse_a_dataset_of_another_experiment(tmp_path):
    from bench.metrics import metrics_for

    spec = vae_spec()
    with pytest.raises(ValueError, match="trains on mnist, the dataset given is fashion-mnist"):
        metrics_for(spec, None, np.random.default_rng(0), dataset=data.open_dataset("fashion-mnist"))
    with pytest.raises(ValueError, match="not both"):
        metrics_for(spec, None, np.random.default_rng(0), dataset=data.open_dataset("mnist"), data_dir=tmp_path)
