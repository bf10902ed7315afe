"""The facts every layer reads, each written once: the datasets and the model families.

Everything else derives from these two tables: the spec's choices and shapes
(bench/core/specs.py), the files bench.core.data reads, the evaluators bench.metrics loads,
which families `genbench list` offers on which dataset. Adding a dataset or a family starts
here.
"""

from __future__ import annotations

from dataclasses import dataclass

NUM_CLASSES = 10  # the digit and garment classes: a CVAE's labels, an evaluator's outputs


@dataclass(frozen=True)
class Family:
    name: str
    discriminator: bool  # trains a discriminator (a GAN loss)
    encoder: bool
    conditional: bool  # encoder and decoder read a one-hot label
    unit_range: bool  # images in [0, 1] (Bernoulli/sigmoid decoder), not [-1, 1] (tanh generator)


FAMILY_FACTS: dict[str, Family] = {
    f.name: f
    for f in (
        Family("gan", discriminator=True, encoder=False, conditional=False, unit_range=False),
        Family("vae", discriminator=False, encoder=True, conditional=False, unit_range=True),
        Family("cvae", discriminator=False, encoder=True, conditional=True, unit_range=True),
        # Larsen et al. 2016: a VAE whose decoder is a GAN's generator
        Family("vaegan", discriminator=True, encoder=True, conditional=False, unit_range=False),
    )
}
FAMILIES = tuple(FAMILY_FACTS)


@dataclass(frozen=True)
class Dataset:
    name: str
    shape: tuple[int, ...]  # one sample, NCHW for images
    source: str | None  # the dataset whose image files it is made from; None: drawn, no files
    evaluator: str | None  # the dataset whose classifier scores it (bench/evaluators/<name>.npz)
    classes: int  # the labels a sample carries: digit or garment, digit triple, mixture component
    families: tuple[str, ...]  # the families that train on it
    help: str

    @property
    def is_image(self) -> bool:
        return self.source is not None

    @property
    def own_files(self) -> bool:
        """Read from image files of its own (not built from another dataset's, not drawn)."""
        return self.source == self.name


DATASET_FACTS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset("mnist", (1, 28, 28), "mnist", "mnist", NUM_CLASSES, FAMILIES, "handwritten digits, 28x28 grey"),
        Dataset(
            "fashion-mnist",
            (1, 28, 28),
            "fashion-mnist",
            "fashion-mnist",
            NUM_CLASSES,
            FAMILIES,
            "Zalando's garments, 28x28 grey",
        ),
        Dataset("ring8", (2,), None, None, 8, ("gan",), "8 Gaussians on a circle (2-D)"),
        Dataset("grid25", (2,), None, None, 25, ("gan",), "25 Gaussians on a 5x5 grid (2-D)"),
        # Stacked MNIST (Metz et al. 2017; VEEGAN): three MNIST digits as the channels of one image,
        # 1000 modes; GANs only (its metric is the number of modes, bench/metrics/modes.py, which
        # scores each channel with MNIST's classifier)
        Dataset(
            "stacked-mnist",
            (3, 28, 28),
            "mnist",
            "mnist",
            NUM_CLASSES**3,
            ("gan",),
            "three MNIST digits as channels, 1000 modes",
        ),
    )
}
DATASETS = tuple(DATASET_FACTS)
IMAGE_DATASETS = tuple(d for d, f in DATASET_FACTS.items() if f.is_image)  # stacked-mnist included
FILE_DATASETS = tuple(d for d, f in DATASET_FACTS.items() if f.own_files)  # mnist, fashion-mnist
MIXTURE_DATASETS = tuple(d for d, f in DATASET_FACTS.items() if not f.is_image)
EVALUATED_DATASETS = tuple(d for d, f in DATASET_FACTS.items() if f.evaluator == d)  # a classifier of their own
