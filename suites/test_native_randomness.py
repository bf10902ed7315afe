"""The "native" randomness mode (`genbench run --randomness native`): each twin draws a step's
latents, gradient-penalty coefficients and dropout masks with its own framework's seeded
generator (impls/<fw>/noise.py). What it must keep from the NumPy stream: the keys, shapes and
dtypes step_noise gives, and the distributions (checked against closed forms with 5-sigma
bounds, each shown to reject a planted error). What it must change: the numbers, and the
experiment's identity. Reproducible within a framework: two runs give the same losses."""

import csv

import numpy as np
import pytest
from helpers import as_numpy

import impls
from bench import cli
from bench.core import registry
from bench.core.randomness import NumpyDraws, native_seed, step_noise
from bench.runs import records
from bench.runs.runner import experiment_identity, run_experiment

FRAMEWORKS = ("torch", "tensorflow")
SIGMAS = 5.0  # a false alarm once in about 1.7 million checks per bound


def _draws(framework, spec):
    return impls.load(framework).noise.NativeDraws(spec)


def _np(a):
    return a if isinstance(a, np.ndarray) else as_numpy(a)


def _flat(noise: dict) -> dict:
    out = {}
    for k, v in noise.items():
        if isinstance(v, list):
            out.update({f"{k}[{i}]": _np(m) for i, m in enumerate(v)})
        else:
            out[k] = _np(v)
    return out


def rate_within(drop_fraction: float, p: float, n: int) -> bool:
    """Binomial: the fraction of n independent Bernoulli(p) drops is within SIGMAS sd of p."""
    return abs(drop_fraction - p) <= SIGMAS * np.sqrt(p * (1 - p) / n)


def mean_within(values: np.ndarray, mean: float, var: float) -> bool:
    """The sample mean of n iid draws is within SIGMAS sd (sqrt(var / n)) of `mean`."""
    return abs(float(values.mean()) - mean) <= SIGMAS * np.sqrt(var / values.size)


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize(
    "model,dtype", [("dcgan", "float32"), ("wgan-gp", "float32"), ("vaegan", "float64"), ("cvae", "float32")]
)
def test_native_noise_has_the_streams_keys_shapes_and_dtype(framework, model, dtype):
    spec = registry.experiment(model, dtype=dtype, batch_size=8)
    reference = _flat(step_noise(spec, np.random.default_rng(0)))  # the NumPy stream: the layout to keep
    native = _flat(step_noise(spec, None, draws=_draws(framework, spec)))
    assert list(native) == list(reference)
    for key, ref in reference.items():
        assert native[key].shape == ref.shape, key
        assert native[key].dtype == np.dtype(dtype), key
        assert not np.array_equal(native[key], ref), f"{key}: the native draw repeats the NumPy stream"


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_native_draws_follow_their_distributions(framework):
    """Masks are 0 or 1/(1-p) with a drop rate p; latents N(0, 1); uniforms U[0, 1): the means
    (and the latents' variance) within 5 sd of the closed form, on about 10^6 draws each."""
    spec = registry.experiment("dcgan", batch_size=8)
    draws = _draws(framework, spec)
    for p in (0.3, 0.5):
        mask = as_numpy(draws.mask((1_000_000,), p))
        scale = np.float32(1.0 / (1.0 - p))
        assert set(np.unique(mask)) <= {np.float32(0.0), scale}
        drop = float(np.mean(mask == 0))
        assert rate_within(drop, p, mask.size), (p, drop)
        assert not rate_within(drop, p + 0.01, mask.size), "the bound would miss a 1-point rate error"
    z = as_numpy(draws.normal((1000, 1000))).astype(np.float64)
    assert mean_within(z, 0.0, 1.0)
    assert mean_within((z - z.mean()) ** 2, 1.0, 2.0)  # Var of (z - mu)^2 for a standard normal is 2
    assert not mean_within(z + 0.01, 0.0, 1.0), "the bound would miss a 0.01 shift of the latents"
    u = as_numpy(draws.uniform((1_000_000,))).astype(np.float64)
    assert u.min() >= 0.0 and u.max() < 1.0
    assert mean_within(u, 0.5, 1.0 / 12.0)
    assert not mean_within(u * 0.99, 0.5, 1.0 / 12.0), "the bound would miss a 1% scale error"


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_native_draws_repeat_for_a_seed_and_differ_between_seeds(framework):
    spec0 = registry.experiment("dcgan", batch_size=4, seed=0)
    a = _flat(step_noise(spec0, None, draws=_draws(framework, spec0)))
    b = _flat(step_noise(spec0, None, draws=_draws(framework, spec0)))
    spec1 = registry.experiment("dcgan", batch_size=4, seed=1)
    c = _flat(step_noise(spec1, None, draws=_draws(framework, spec1)))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not any(np.array_equal(a[k], c[k]) for k in a)
    assert native_seed(0) != native_seed(1) and 0 <= native_seed(0) < 2**63


def test_native_is_part_of_the_identity_and_reproducible_ids_are_unchanged():
    spec = registry.experiment("dcgan")
    repro = experiment_identity(spec, "torch")
    # the hash as the identity rule wrote it before the mode was an argument: inputs spelled out here
    inputs = {
        "identity_version": records.IDENTITY_VERSION,
        "framework": "torch",
        "variant": "eager",
        "device": "cpu",
        "profile": None,
        "n_eval": 2000,
        "randomness": "reproducible",
    }
    import hashlib

    digest = hashlib.sha256(records.canonical_json({"spec": spec.to_dict(), **inputs}).encode()).hexdigest()
    assert repro["hash"] == digest
    native = experiment_identity(spec, "torch", randomness="native")
    assert native["hash"] != repro["hash"] and native["inputs"]["randomness"] == "native"
    with pytest.raises(ValueError, match="randomness 'numpy'"):
        experiment_identity(spec, "torch", randomness="numpy")


def test_run_rejects_an_unknown_randomness_mode(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["run", "--randomness", "fast", "--out", str(tmp_path / "r")])
    assert e.value.code == 2
    assert "--randomness" in capsys.readouterr().err


def _losses(rec, run_dir):
    with open(run_dir / rec["id"] / "losses.csv") as f:
        return [{k: v for k, v in row.items() if k != "wall_s"} for row in csv.DictReader(f)]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_native_run_repeats_itself_and_differs_from_the_stream(framework, tmp_path):
    spec = registry.experiment("dcgan", steps=3, batch_size=16)
    kw = dict(progress=False, metrics=False, profile="smoke")
    a = run_experiment(spec, framework, tmp_path / "a", randomness="native", **kw)
    b = run_experiment(spec, framework, tmp_path / "b", randomness="native", **kw)
    r = run_experiment(spec, framework, tmp_path / "r", **kw)
    assert a["status"] == b["status"] == r["status"] == "ok"
    assert a["identity"]["randomness"] == "native" and r["identity"]["randomness"] == "reproducible"
    assert a["id"] == b["id"] != r["id"]
    assert _losses(a, tmp_path / "a") == _losses(b, tmp_path / "b")
    assert _losses(a, tmp_path / "a") != _losses(r, tmp_path / "r")


def test_the_numpy_draws_are_the_stream():
    """NumpyDraws through step_noise gives exactly the arrays step_noise drew before it took a
    `draws` argument: the documented order, recomputed here from the generator by hand."""
    spec = registry.experiment("dcgan", batch_size=4)
    got = step_noise(spec, np.random.default_rng(7))
    rng = np.random.default_rng(7)
    z = rng.standard_normal((4, spec.latent_dim), dtype=np.float32)
    assert np.array_equal(got["d0.z"], z)
    assert got["d0.G"] == []  # the seed's generator has no dropout
    n = 4 * 64 * 14 * 14
    bits = rng.bit_generator.random_raw((n + 3) // 4).astype("<u8").view("<u2")[:n]
    keep = (bits >= round(0.3 * 65536)).reshape(4, 64, 14, 14)
    assert np.array_equal(got["d0.D.real"][0], keep * np.float32(1 / 0.7))
    assert isinstance(NumpyDraws(rng, "float32").mask((3,), 0.3), np.ndarray)
