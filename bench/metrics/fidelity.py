"""Fidelity metrics (FID, KID, precision/recall, Inception-style score) by torch-fidelity,
on the evaluator's features instead of Inception's.

The evaluator (bench/metrics/evaluator.py) is registered with torch-fidelity as the feature
extractor ``genbench-<dataset>``. It takes what torch-fidelity feeds every extractor, uint8
tensors (N, C, H, W), here (N, 1, 28, 28), and provides two features:
- ``fc1_relu``: the 128-d penultimate layer, used for FID, KID and precision/recall;
- ``logits``: the 10 class logits, used for the Inception-style score (torch-fidelity's ISC
  applies the softmax itself, as with Inception's ``logits_unbiased``).
torch-fidelity is always called with ``feature_extractor`` set explicitly, ``cuda=False`` and
``datasets_download=False``, so nothing (Inception weights above all) is ever downloaded.

Reference features are computed once per process: the reference set is passed with an
``input2_cache_name`` that names dataset, split, size and evaluator checksum, and
torch-fidelity's own feature/statistics cache points at a private temporary directory that
is removed when the process exits. The generated samples are never cached.

Metric definitions are torch-fidelity's (0.4): FID (Heusel et al. 2017) from mean and
covariance; KID (Binkowski et al. 2018) as the unbiased MMD^2 with the cubic polynomial
kernel, mean and std over `kid_subsets` random subsets; precision and recall by k-NN balls
(Kynkaanniemi et al. 2019, k = `prc_neighborhood`), input1 = generated, input2 = real.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .evaluator import DATASETS, as_uint8_images, load_evaluator, weight_paths

EXTRACTOR_PREFIX = "genbench-"
IDENTITY_EXTRACTOR = "genbench-identity"
FEATURE_LAYER = "fc1_relu"
LOGITS_LAYER = "logits"
# torch-fidelity result keys -> genbench's flat names
RENAME = {
    "frechet_inception_distance": "fid",
    "kernel_inception_distance_mean": "kid_mean",
    "kernel_inception_distance_std": "kid_std",
    "precision": "precision",
    "recall": "recall",
    "inception_score_mean": "isc_mean",
    "inception_score_std": "isc_std",
}
DEFAULTS = {
    "batch_size": 1000,
    "kid_subsets": 100,
    "kid_subset_size": 1000,
    "prc_neighborhood": 3,
    "isc_splits": 10,
    "rng_seed": 2020,
}

_CACHE_DIR: Path | None = None


def _cache_dir() -> Path:
    global _CACHE_DIR
    if _CACHE_DIR is None:
        _CACHE_DIR = Path(tempfile.mkdtemp(prefix="genbench-fidelity-"))
        atexit.register(shutil.rmtree, _CACHE_DIR, True)
    return _CACHE_DIR


def _register() -> None:
    """Register the evaluator extractors with torch-fidelity (idempotent)."""
    import torch
    from torch_fidelity import FeatureExtractorBase, register_feature_extractor
    from torch_fidelity.helpers import vassert
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    if IDENTITY_EXTRACTOR in FEATURE_EXTRACTORS_REGISTRY:
        return

    class EvaluatorFeatureExtractor(FeatureExtractorBase):
        """The genbench evaluator CNN as a torch-fidelity feature extractor.

        ``feature_extractor_weights_path`` (a torch-fidelity kwarg) may point at an
        evaluator npz other than the committed one; its json must sit next to it.
        """

        def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
            super().__init__(name, features_list)
            dataset = name[len(EXTRACTOR_PREFIX) :]
            directory = None
            if feature_extractor_weights_path is not None:
                directory = Path(feature_extractor_weights_path).parent
            self.evaluator = load_evaluator(dataset, directory)
            self.net = self.evaluator.net
            self.requires_grad_(False)
            self.eval()

        @staticmethod
        def get_provided_features_list():
            return FEATURE_LAYER, LOGITS_LAYER

        @staticmethod
        def get_default_feature_layer_for_metric(metric):
            return LOGITS_LAYER if metric == "isc" else FEATURE_LAYER

        @staticmethod
        def can_be_compiled():
            return False

        @staticmethod
        def get_dummy_input_for_compile():
            return torch.zeros(1, 1, 28, 28, dtype=torch.uint8)

        def forward(self, x):
            vassert(
                torch.is_tensor(x) and x.dtype == torch.uint8, "Expecting image as torch.Tensor with dtype=torch.uint8"
            )
            vassert(x.dim() == 4 and tuple(x.shape[1:]) == (1, 28, 28), f"Input is not Bx1x28x28: {tuple(x.shape)}")
            feats, logits = self.net(x)
            named = {FEATURE_LAYER: feats, LOGITS_LAYER: logits}
            return tuple(named[f] for f in self.features_list)

    class IdentityFeatureExtractor(FeatureExtractorBase):
        """Passes precomputed feature vectors (N, D) through unchanged, as float64, so that
        metrics of given feature sets run through torch-fidelity's own code path."""

        def __init__(self, name, features_list, **kwargs):
            super().__init__(name, features_list)

        @staticmethod
        def get_provided_features_list():
            return ("identity",)

        @staticmethod
        def get_default_feature_layer_for_metric(metric):
            return "identity"

        @staticmethod
        def can_be_compiled():
            return False

        @staticmethod
        def get_dummy_input_for_compile():
            return torch.zeros(1, 1, dtype=torch.float64)

        def forward(self, x):
            vassert(torch.is_tensor(x) and x.dim() == 2, "Expecting features as (N, D) tensor")
            return (x.to(torch.float64),)

    for dataset in DATASETS:
        register_feature_extractor(EXTRACTOR_PREFIX + dataset, EvaluatorFeatureExtractor)
    register_feature_extractor(IDENTITY_EXTRACTOR, IdentityFeatureExtractor)


def _tensor_dataset(array: np.ndarray):
    import torch

    class TensorRows(torch.utils.data.Dataset):
        def __init__(self, t):
            self.t = t

        def __len__(self):
            return len(self.t)

        def __getitem__(self, i):
            return self.t[i]

    return TensorRows(torch.from_numpy(np.array(array, order="C")))  # a writable copy


def _calculate(
    input1,
    input2,
    feature_extractor: str,
    *,
    fid=True,
    kid=True,
    prc=True,
    isc=True,
    input2_cache_name=None,
    weights_path=None,
    **options,
) -> dict:
    """One torch_fidelity.calculate_metrics call with genbench's fixed, offline settings."""
    import torch_fidelity

    _register()
    opts = {**DEFAULTS, **options}
    n = min(len(input1), len(input2)) if input2 is not None else len(input1)
    opts["kid_subset_size"] = min(opts["kid_subset_size"], n)
    kwargs = dict(
        input1=input1,
        input2=input2,
        cuda=False,
        fid=fid,
        kid=kid,
        prc=prc,
        isc=isc,
        feature_extractor=feature_extractor,
        feature_extractor_weights_path=weights_path,
        datasets_download=False,
        verbose=False,
        save_cpu_ram=True,
        samples_shuffle=True,
        cache=input2_cache_name is not None,
        input2_cache_name=input2_cache_name,
        cache_root=str(_cache_dir()) if input2_cache_name is not None else None,
        **opts,
    )
    raw = torch_fidelity.calculate_metrics(**kwargs)
    return {RENAME[k]: float(v) for k, v in raw.items() if k in RENAME}


def reference_images(dataset, reference: str = "test", n_reference: int | None = None, data_dir=None):
    """uint8 (N, 1, 28, 28) real images of the reference split (first n_reference) and the
    split's SHA-256. `dataset`: a bench.core.data.Dataset, or a name opened with `data_dir`."""
    from ..core.data import as_dataset

    split = as_dataset(dataset, data_dir).split(reference)
    images = as_uint8_images(split.images)
    if n_reference is not None:
        images = images[:n_reference]
    return images, split.sha256


def laplacian_sharpness(images_uint8) -> float:
    """Mean over images of the variance of the discrete Laplacian (scipy.ndimage.laplace,
    reflect borders) of the image scaled to [0, 1]: the variance-of-Laplacian focus measure
    (Pech-Pacheco et al. 2000). Blur removes high frequencies and lowers it."""
    from scipy import ndimage

    x = np.asarray(images_uint8, np.float64) / 255.0
    x = x.reshape((-1,) + x.shape[-2:])
    return float(np.mean([ndimage.laplace(img).var() for img in x]))


def sharpness_metrics(samples_uint8, dataset, reference: str = "test", data_dir=None) -> dict[str, float]:
    """sharpness of the samples, of as many real images of the reference split, and their ratio
    (1 = as sharp as real). `dataset`: a Dataset, or a name opened with `data_dir`."""
    samples = np.asarray(samples_uint8)
    real, _ = reference_images(dataset, reference, n_reference=len(samples), data_dir=data_dir)
    s, r = laplacian_sharpness(samples), laplacian_sharpness(real)
    return {"sharpness": s, "sharpness_real": r, "sharpness_ratio": s / r}


def fidelity_metrics(
    samples_uint8,
    dataset,
    reference: str = "test",
    *,
    n_reference: int | None = None,
    fid: bool = True,
    kid: bool = True,
    prc: bool = True,
    isc: bool = True,
    evaluator_dir: str | Path | None = None,
    data_dir=None,
    **options,
) -> dict[str, float]:
    """FID, KID, precision/recall and ISC of uint8 samples against a real split.

    samples_uint8: (N, 28, 28) or (N, 1, 28, 28) uint8. dataset: a bench.core.data.Dataset
    (the runner's, read once per experiment), or a name, opened with data_dir (a user's copy of
    the dataset, as for bench.core.data.load). reference: "test" or "train".
    n_reference: the first n images of the split (all by default). evaluator_dir: evaluator
    weights other than the committed ones. options: torch-fidelity knobs from DEFAULTS
    (kid_subset_size, kid_subsets, prc_neighborhood, isc_splits, rng_seed, batch_size);
    kid_subset_size is capped at the smaller set's size. Returns {"fid", "kid_mean",
    "kid_std", "precision", "recall", "isc_mean", "isc_std"} for the metrics asked for.

    Cost on 2 CPU cores, 10k samples against the 10k test set: about 12 s for FID, KID
    (100 subsets of 1000) and precision/recall once the reference is cached (+ a few s the
    first time). Precision/recall is the largest part: torch-fidelity's k-NN radii need all
    pairwise distances (10k x 10k, twice); ``save_cpu_ram`` (on here) computes them in
    ``prc_batch_size`` blocks instead of holding three 10k x 10k matrices.
    """
    from ..core.data import Dataset, as_dataset

    name = dataset.name if isinstance(dataset, Dataset) else dataset
    if name not in DATASETS:
        raise ValueError(f"fidelity needs an image dataset ({', '.join(DATASETS)}), got {name!r}")
    dataset = as_dataset(dataset, data_dir)
    samples = as_uint8_images(samples_uint8)
    if len(samples) < 2:
        raise ValueError("fidelity metrics need at least 2 samples")
    evaluator = load_evaluator(name, evaluator_dir)  # fails early with the retrain hint
    real, real_sha = reference_images(dataset, reference, n_reference)
    cache_name = f"{name}-{reference}-{real_sha[:12]}-n{len(real)}-ev{evaluator.sha256[:12]}"
    weights = None if evaluator_dir is None else str(weight_paths(name, evaluator_dir)[0])
    return _calculate(
        _tensor_dataset(samples),
        _tensor_dataset(real),
        EXTRACTOR_PREFIX + name,
        fid=fid,
        kid=kid,
        prc=prc,
        isc=isc,
        input2_cache_name=cache_name,
        weights_path=weights,
        **options,
    )


def feature_metrics(
    features1, features2=None, *, fid: bool = True, kid: bool = True, prc: bool = False, isc: bool = False, **options
) -> dict[str, float]:
    """The same torch-fidelity metrics on precomputed feature sets (N, D), e.g. features of
    another extractor; features1 is the generated set. ISC treats features1 as logits."""
    f1 = np.asarray(features1, np.float64)
    f2 = None if features2 is None else _tensor_dataset(np.asarray(features2, np.float64))
    return _calculate(_tensor_dataset(f1), f2, IDENTITY_EXTRACTOR, fid=fid, kid=kid, prc=prc, isc=isc, **options)
