"""Quality metrics: fidelity, mode coverage, VAE likelihoods, stability.

Small flat modules, each with functions that return a flat ``dict[str, float]``:
- evaluator.py: the per-dataset CNN judge (committed weights, checksum-verified);
- fidelity.py:  FID, KID, precision/recall, ISC by torch-fidelity on the evaluator's features,
                and sharpness (variance of the Laplacian) against real images;
- modes.py:     classes covered, mixture modes covered, Stacked MNIST modes, KL to uniform;
- vae.py:       test ELBO, IWAE NLL, latent k-NN accuracy, latent silhouette and interpolation
                jump, anomaly AUROC, denoising PSNR;
- stability.py: loss oscillation, divergence, spread over seeds.
`metrics_for` picks what applies to one experiment; `eval_samples_file` judges a file of
samples (``genbench eval``); `train_evaluator_main` backs ``genbench train-evaluator``.
No module here imports TensorFlow; models are reached through the duck-typed Trainer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.facts import EVALUATED_DATASETS, IMAGE_DATASETS
from .evaluator import ACCURACY_TARGETS, Evaluator, EvaluatorError, load_evaluator, train_evaluator
from .fidelity import feature_metrics, fidelity_metrics, laplacian_sharpness, sharpness_metrics
from .modes import class_coverage, kl_to_uniform, mixture_metrics, stacked_mnist_metrics
from .stability import is_diverged, loss_summary, mean_abs_step, oscillation, seed_spread
from .vae import anomaly_auroc, denoising_psnr, iwae_nll, latent_knn_accuracy, latent_structure, test_elbo

__all__ = [
    "Evaluator",
    "EvaluatorError",
    "load_evaluator",
    "train_evaluator",
    "train_evaluator_main",
    "fidelity_metrics",
    "feature_metrics",
    "laplacian_sharpness",
    "sharpness_metrics",
    "latent_structure",
    "class_coverage",
    "kl_to_uniform",
    "mixture_metrics",
    "stacked_mnist_metrics",
    "test_elbo",
    "iwae_nll",
    "latent_knn_accuracy",
    "anomaly_auroc",
    "denoising_psnr",
    "oscillation",
    "mean_abs_step",
    "is_diverged",
    "loss_summary",
    "seed_spread",
    "metrics_for",
    "eval_samples_file",
    "generate",
    "to_uint8",
    "SamplesFileError",
]

# Quick mode (after every experiment, a few seconds): no precision/recall (its k-NN over
# all pairs is the slow part), KID over 20 subsets instead of 100.
QUICK_FIDELITY = {"prc": False, "kid_subsets": 20}
SAMPLE_BATCH = 1000


class SamplesFileError(ValueError):
    """A samples file that `genbench eval` cannot read."""


def to_uint8(images, data_range) -> np.ndarray:
    """Float images in data_range (0, 1) or (-1, 1) -> uint8 (N, 1, 28, 28), rounded."""
    from ..core.data import from_model_range

    return from_model_range(np.asarray(images), data_range)


def generate(trainer, n: int, rng: np.random.Generator, labels=None) -> np.ndarray:
    """n samples from the prior, z ~ N(0, I) drawn from rng, in batches; for a conditional
    model with no labels given, the labels cycle through 0..9 (an even class split)."""
    spec = trainer.spec
    z = rng.standard_normal((n, spec.latent_dim)).astype(np.dtype(spec.dtype))
    if spec.conditional and labels is None:
        labels = np.arange(n) % 10
    out = []
    for i in range(0, n, SAMPLE_BATCH):
        y = None if labels is None else np.asarray(labels)[i : i + SAMPLE_BATCH]
        out.append(np.asarray(trainer.sample(z[i : i + SAMPLE_BATCH], y)))
    return np.concatenate(out)


def _image_sample_metrics(trainer, spec, rng, n_samples, data_split, quick, dataset) -> dict:
    samples = to_uint8(generate(trainer, n_samples, rng), spec.data_range)
    opts = QUICK_FIDELITY if quick else {}
    out = fidelity_metrics(samples, dataset, reference=data_split, **opts)
    out.update(class_coverage(samples, spec.dataset))
    out.update(sharpness_metrics(samples, dataset, data_split))
    return out


def _vae_metrics(trainer, spec, rng, n_samples, data_split, quick, dataset) -> dict:
    from ..core.data import to_model_range

    test, train = dataset.split(data_split), dataset.train
    n_test = min(n_samples, len(test))
    n_train = min(2 * n_samples if quick else 10 * n_samples, len(train))
    x_test = to_model_range(test.images[:n_test], spec.data_range)
    y_test = np.array(test.labels[:n_test])  # writable copies: the twins wrap them as tensors
    out = {}
    if spec.family in ("vae", "cvae"):
        elbo = test_elbo(trainer, x_test, y_test if spec.conditional else None, rng)
        out.update({f"test_{k}": v for k, v in elbo.items()})  # test_elbo, test_recon, test_kl
    else:
        # VAE-GAN learns its reconstruction in the discriminator's feature space, so a
        # pixel likelihood (and with it an ELBO) is not defined; report pixel MSE and KL.
        mean, logvar = trainer.encode(x_test)
        rec = trainer.reconstruct(x_test)
        out["test_recon_mse"] = float(np.mean((np.asarray(rec) - x_test) ** 2))
        out["test_kl"] = float(np.mean(0.5 * np.sum(mean**2 + np.exp(logvar) - 1 - logvar, axis=1)))
    x_train = to_model_range(train.images[:n_train], spec.data_range)
    out.update(
        latent_knn_accuracy(
            trainer, x_train, np.array(train.labels[:n_train]), x_test, y_test, conditional_labels=spec.conditional
        )
    )
    out.update(latent_structure(trainer, x_test, y_test, conditional_labels=spec.conditional))
    return out


def metrics_for(
    spec,
    trainer,
    rng: np.random.Generator,
    n_samples: int = 2000,
    data_split: str = "test",
    quick: bool = True,
    data_dir=None,
    *,
    dataset=None,
) -> dict[str, float]:
    """Every metric that applies to the experiment, as one flat dict.

    - GAN on images: fidelity (FID, KID, ISC; precision/recall unless quick) of n_samples
      against the `data_split` split, plus class coverage;
    - GAN on ring8 / grid25: mixture metrics of n_samples;
    - GAN on Stacked MNIST: modes covered of 1000 and the mode KL (each channel read by the
      MNIST evaluator), and the sharpness of n_samples;
    - VAE / CVAE: test ELBO (n_samples test images), latent k-NN accuracy, and the fidelity
      and class coverage of prior samples;
    - VAE-GAN: the GAN image metrics plus reconstruction MSE, KL and k-NN accuracy.
    Quick mode costs a few seconds on 2 CPU cores at the default 2000 samples. The real images
    come from `dataset`, the experiment's bench.core.data.Dataset (the runner passes the one it
    trained on); without it, spec.dataset is opened here from `data_dir` (a user's own copy of
    the dataset, as for bench.core.data.load; None: the built-in source).
    """
    from ..core.data import as_dataset

    dataset = as_dataset(spec.source_dataset if dataset is None else dataset, data_dir)
    if dataset.name != spec.source_dataset:
        raise ValueError(f"metrics_for: the spec trains on {spec.source_dataset}, the dataset given is {dataset.name}")
    out: dict[str, float] = {}
    if not spec.is_image:
        points = generate(trainer, n_samples, rng)
        out.update(mixture_metrics(points, spec.dataset))
        return out
    if spec.dataset == "stacked-mnist":
        samples = to_uint8(generate(trainer, n_samples, rng), spec.data_range)
        out.update(stacked_mnist_metrics(samples))
        out["sharpness"] = laplacian_sharpness(samples)  # over every channel of every sample
        return out
    if spec.has_encoder:
        out.update(_vae_metrics(trainer, spec, rng, n_samples, data_split, quick, dataset))
    out.update(_image_sample_metrics(trainer, spec, rng, n_samples, data_split, quick, dataset))
    return out


def _read_images(path: Path, data_range=None) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as z:
            if "images" not in z.files:
                raise SamplesFileError(
                    f"{path}: no 'images' array (found: {', '.join(z.files) or 'none'}); save "
                    f"samples with np.savez(path, images=...)"
                )
            a = z["images"]
    except (OSError, ValueError) as e:
        if isinstance(e, SamplesFileError):
            raise
        raise SamplesFileError(f"{path}: not a readable .npz file ({e})") from None
    if a.ndim == 4 and a.shape[-1] in (1, 3) and a.shape[1] not in (1, 3):
        a = np.moveaxis(a, -1, 1)  # NHWC -> NCHW
    if a.dtype == np.uint8:
        return a
    if not np.issubdtype(a.dtype, np.floating):
        raise SamplesFileError(f"{path}: images must be uint8 or float, got {a.dtype}")
    if not np.all(np.isfinite(a)):
        raise SamplesFileError(f"{path}: images contain NaN or infinite values")
    lo, hi = float(a.min()), float(a.max())
    if data_range is None:
        # The rule: floats with any negative value are in [-1, 1], otherwise in [0, 1].
        data_range = (-1.0, 1.0) if lo < 0 else (0.0, 1.0)
    if lo < data_range[0] - 1e-3 or hi > data_range[1] + 1e-3:
        raise SamplesFileError(
            f"{path}: float images span [{lo:.3g}, {hi:.3g}], outside {tuple(data_range)}; "
            f"store uint8 images or floats in [0, 1] or [-1, 1]"
        )
    return to_uint8(a, data_range)


def eval_samples_file(
    path, dataset: str, reference: str = "test", quick: bool = False, data_range=None, data_dir=None
) -> dict[str, float]:
    """Metrics of a samples file, for ``genbench eval SAMPLES.npz --dataset mnist``.

    The .npz holds an ``images`` array: uint8 (N, 28, 28), (N, 1, 28, 28) or (N, 28, 28, 1),
    used as is; or floats in [0, 1] or [-1, 1] (any negative value means [-1, 1]; pass
    `data_range` to override), scaled to bytes by rounding. For dataset "stacked-mnist",
    uint8 (N, 3, 28, 28) images and the Stacked MNIST mode metrics.
    """
    path = Path(path)
    if not path.exists():
        raise SamplesFileError(f"{path}: no such file")
    images = _read_images(path, data_range)
    if dataset == "stacked-mnist":
        if images.ndim != 4 or images.shape[1:] != (3, 28, 28):
            raise SamplesFileError(f"{path}: Stacked MNIST images must be (N, 3, 28, 28), got {images.shape}")
        return stacked_mnist_metrics(images)
    if dataset not in EVALUATED_DATASETS:
        raise SamplesFileError(f"unknown dataset {dataset!r}: choose one of {', '.join(IMAGE_DATASETS)}")
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4 or images.shape[1:] != (1, 28, 28):
        raise SamplesFileError(f"{path}: images must be (N, 28, 28) or (N, 1, 28, 28), got {images.shape}")
    if len(images) < 2:
        raise SamplesFileError(f"{path}: need at least 2 images, got {len(images)}")
    out = fidelity_metrics(images, dataset, reference, data_dir=data_dir, **(QUICK_FIDELITY if quick else {}))
    out.update(class_coverage(images, dataset))
    out["n_samples"] = float(len(images))
    return out


def train_evaluator_main(dataset: str, epochs: int | None = None, seed: int = 0, out_dir=None, data_dir=None) -> dict:
    """``genbench train-evaluator``: train, save weights + json, report against the target.

    Returns the json record plus "meets_target" (bool)."""
    meta = train_evaluator(dataset, epochs=epochs, seed=seed, out_dir=out_dir, data_dir=data_dir)
    target = ACCURACY_TARGETS[dataset]
    ok = meta["test_accuracy"] >= target
    print(
        f"{dataset}: test accuracy {meta['test_accuracy']:.4f} ({'meets' if ok else 'BELOW'} the target {target:.2f})"
    )
    return {**meta, "meets_target": ok}
