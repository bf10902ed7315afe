"""Stacked MNIST (Metz et al. 2017; VEEGAN): three MNIST digits as the channels of one image,
1000 modes. The spec, the three-channel DCGAN, the training batches, the grids, the twins'
agreement on three channels, and the mode count against the digits the images were made of."""

import numpy as np
import pytest

from bench.core import arch, registry
from bench.core.specs import SpecError


def stacked(model="dcgan", stabilizers=(), **kw):
    return registry.experiment(model, stabilizers, dataset="stacked-mnist", profile="smoke", **kw)


def test_the_spec_is_a_three_channel_image_for_gans_only():
    spec = stacked()
    assert spec.is_image and spec.data_shape == (3, 28, 28) and spec.data_dim == 3 * 784
    assert spec.source_dataset == "mnist" and spec.data_range == (-1.0, 1.0)
    for model in ("vae", "cvae", "vaegan"):
        with pytest.raises(SpecError, match=f"dataset stacked-mnist is for family gan only, not {model}"):
            registry.experiment(model, dataset="stacked-mnist")


def test_the_dcgan_takes_and_makes_three_channels():
    g, d = arch.generator_layers(stacked()), arch.discriminator_layers(stacked())
    assert g[-1].out_shape == (3, 28, 28) and g[-2].kind == "convT" and g[-2].out_shape == (3, 28, 28)
    assert d[0].kind == "conv" and d[0].in_shape == (3, 28, 28)
    # conv0 weight (C_out, C_in, k, k) and deconv2 weight (C_in, C_out, k, k), torch's layouts
    shapes = arch.weight_shapes(stacked())
    assert shapes["D.conv0.weight"] == (64, 3, 4, 4) and shapes["G.deconv2.weight"] == (64, 3, 4, 4)
    assert shapes["G.deconv2.bias"] == (3,)
    # the MNIST DCGAN is unchanged: one channel
    assert arch.weight_shapes(registry.experiment("dcgan"))["D.conv0.weight"] == (64, 1, 4, 4)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_twins_train_identically_on_three_channels(dtype):
    from bench.checks import equivalence as eq

    case = eq.Case("dcgan", ("gradient-penalty",))
    spec = case.spec(dtype).with_(dataset="stacked-mnist", name="dcgan+gradient-penalty@stacked")
    row = eq.run_case(case, dtype, steps=3, spec=spec, strict=False)
    if not row["ok"]:
        raise row["exception"]
    assert row["steps"] == 3


@pytest.mark.needs_data("mnist")
def test_training_batches_are_triples_of_mnist_train_digits():
    from bench.core import data
    from bench.runs.runner import TrainingData

    spec = stacked(batch_size=16)
    batch = TrainingData(spec).next(2)
    x, y = batch["x"], batch["y"]
    assert x.shape == (32, 3, 28, 28) and x.dtype == np.float32 and y.shape == (32,)
    assert x.min() >= -1.0 and x.max() <= 1.0
    train = data.load("mnist", "train")
    index = {img.tobytes(): int(label) for img, label in zip(train.images, train.labels)}
    u8 = data.from_model_range(x, spec.data_range)
    for img, mode in zip(u8, y):
        digits = [index[img[c].tobytes()] for c in range(3)]  # every channel is a train image
        assert mode == 100 * digits[0] + 10 * digits[1] + digits[2]
    # the stream is the spec's: the same seed gives the same batches, another seed others
    np.testing.assert_array_equal(TrainingData(spec).next(2)["x"], x)
    assert not np.array_equal(TrainingData(spec.with_(seed=1)).next(2)["x"], x)


class _Replay:
    """A 'generator' that returns given images (in the model range) whatever the latents."""

    def __init__(self, spec, images):
        self.spec, self.images, self.i = spec, images, 0

    def sample(self, z, y=None):
        out = self.images[self.i : self.i + len(z)]
        self.i += len(z)
        return out


@pytest.mark.needs_data("mnist")
def test_modes_covered_counts_the_digit_triples_the_images_were_made_of():
    """Real Stacked MNIST images with known triples: the metric's modes must be the triples'
    up to the evaluator's error (each of the three digits read right with probability ~0.99)."""
    from bench.core import data
    from bench.metrics import metrics_for

    spec = stacked()
    images, modes = data.stacked_mnist(2000, np.random.default_rng(0), "test")
    x = data.to_model_range(images, spec.data_range)
    got = metrics_for(spec, _Replay(spec, x), np.random.default_rng(1), n_samples=2000)
    want = len(np.unique(modes))  # ~865 for 2000 uniform draws of 1000 modes
    assert abs(got["modes_covered"] - want) <= 0.05 * want
    counts = np.bincount(modes, minlength=1000)
    p = counts / counts.sum()
    kl = float(np.sum(p[p > 0] * np.log(p[p > 0] * 1000)))
    assert abs(got["mode_kl"] - kl) < 0.1
    # a collapsed generator: one triple repeated covers one mode (or a few misreads)
    collapsed = np.repeat(x[:1], 2000, axis=0)
    low = metrics_for(spec, _Replay(spec, collapsed), np.random.default_rng(1), n_samples=2000)
    assert low["modes_covered"] <= 2 and low["mode_kl"] > np.log(1000) - 0.1
    assert 0 < got["sharpness"] and 0 < low["sharpness"]


def test_grids_tile_three_channels_as_rgb():
    from bench.runs.plots import tile

    imgs = np.zeros((3, 3, 2, 2), np.uint8)
    imgs[1, 2] = 200  # second image, blue channel
    out = tile(imgs, nrow=2)
    assert out.shape == (2 * 3 + 1, 2 * 3 + 1, 3)
    np.testing.assert_array_equal(out[1:3, 4:6], [[[0, 0, 200]] * 2] * 2)
    assert out.sum() == 200 * 4
    assert tile(imgs[:, :1], nrow=2).shape == (7, 7)  # grey images stay 2-D
