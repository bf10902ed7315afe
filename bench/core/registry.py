"""The catalog: model families, stabilizer toggles, budget profiles and the default matrix.

A model is a base ExperimentSpec; a stabilizer is a named transformation of a spec with a
rule saying where it applies. `experiment(model, stabilizers, dataset, profile, seed)`
resolves one row of any table into a full spec, which every record stores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .specs import SMOOTHED_SIDES, ExperimentSpec, NetSpec, OptimizerSpec, SpecError, did_you_mean

# The study's optimizers: RMSprop for GANs, Adam for VAEs; every value explicit.
RMSPROP_GAN = OptimizerSpec(kind="rmsprop", lr=2e-4, rho=0.99, eps=1e-8)
ADAM_VAE = OptimizerSpec(kind="adam", lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8)
ADAM_GAN = OptimizerSpec(kind="adam", lr=2e-4, beta1=0.5, beta2=0.999, eps=1e-8)
ADAM_WGAN_GP = OptimizerSpec(kind="adam", lr=1e-4, beta1=0.5, beta2=0.9, eps=1e-8)  # Gulrajani 2017, Alg. 1
RMSPROP_WGAN = OptimizerSpec(kind="rmsprop", lr=5e-5, rho=0.99, eps=1e-8)  # Arjovsky 2017, Alg. 1

MLP_G = NetSpec(hidden=(256, 512), activation="leaky_relu", leaky_slope=0.2)
MLP_D = NetSpec(hidden=(512, 256), activation="leaky_relu", leaky_slope=0.2)
DCGAN_G = NetSpec(hidden=(128, 64), activation="leaky_relu", leaky_slope=0.2, batch_norm=True)
DCGAN_D = NetSpec(hidden=(64, 128), activation="leaky_relu", leaky_slope=0.2, dropout=0.3)
VAE_E = NetSpec(hidden=(512, 256), activation="relu")
VAE_DEC = NetSpec(hidden=(256, 512), activation="relu")

MODELS: dict[str, ExperimentSpec] = {
    "vae": ExperimentSpec(
        "vae",
        family="vae",
        loss="elbo",
        latent_dim=20,
        encoder=VAE_E,
        generator=VAE_DEC,
        g_optimizer=ADAM_VAE,
        d_optimizer=ADAM_VAE,
        batch_size=64,
    ),
    "cvae": ExperimentSpec(
        "cvae",
        family="cvae",
        loss="elbo",
        latent_dim=20,
        encoder=VAE_E,
        generator=VAE_DEC,
        g_optimizer=ADAM_VAE,
        d_optimizer=ADAM_VAE,
        batch_size=64,
    ),
    "gan": ExperimentSpec(
        "gan",
        family="gan",
        loss="non-saturating",
        latent_dim=64,
        generator=MLP_G,
        discriminator=MLP_D,
        g_optimizer=RMSPROP_GAN,
        d_optimizer=RMSPROP_GAN,
    ),
    "gan-minimax": ExperimentSpec(
        "gan-minimax",
        family="gan",
        loss="minimax",
        latent_dim=64,
        generator=MLP_G,
        discriminator=MLP_D,
        g_optimizer=RMSPROP_GAN,
        d_optimizer=RMSPROP_GAN,
    ),
    "dcgan": ExperimentSpec(
        "dcgan",
        family="gan",
        architecture="dcgan",
        loss="non-saturating",
        latent_dim=100,
        generator=DCGAN_G,
        discriminator=DCGAN_D,
        g_optimizer=RMSPROP_GAN,
        d_optimizer=RMSPROP_GAN,
    ),
    "wgan": ExperimentSpec(
        "wgan",
        family="gan",
        architecture="dcgan",
        loss="wasserstein",
        latent_dim=100,
        generator=DCGAN_G,
        discriminator=NetSpec(hidden=(64, 128), leaky_slope=0.2),
        g_optimizer=RMSPROP_WGAN,
        d_optimizer=RMSPROP_WGAN,
        n_critic=5,
        weight_clip=0.01,
    ),
    "wgan-gp": ExperimentSpec(
        "wgan-gp",
        family="gan",
        architecture="dcgan",
        loss="wgan-gp",
        latent_dim=100,
        generator=DCGAN_G,
        discriminator=NetSpec(hidden=(64, 128), leaky_slope=0.2),
        g_optimizer=ADAM_WGAN_GP,
        d_optimizer=ADAM_WGAN_GP,
        n_critic=5,
        gp_lambda=10.0,
        gp_target=1.0,
    ),
    "hinge-gan": ExperimentSpec(
        "hinge-gan",
        family="gan",
        architecture="dcgan",
        loss="hinge",
        latent_dim=100,
        generator=DCGAN_G,
        discriminator=NetSpec(hidden=(64, 128), leaky_slope=0.2),
        g_optimizer=ADAM_GAN,
        d_optimizer=ADAM_GAN,
    ),
    # Mao et al. 2017 and Jolicoeur-Martineau 2018 both train DCGANs with Adam(2e-4, 0.5, 0.999)
    "lsgan": ExperimentSpec(
        "lsgan",
        family="gan",
        architecture="dcgan",
        loss="lsgan",
        latent_dim=100,
        generator=DCGAN_G,
        discriminator=NetSpec(hidden=(64, 128), leaky_slope=0.2),
        g_optimizer=ADAM_GAN,
        d_optimizer=ADAM_GAN,
    ),
    "ragan": ExperimentSpec(
        "ragan",
        family="gan",
        architecture="dcgan",
        loss="ragan",
        latent_dim=100,
        generator=DCGAN_G,
        discriminator=NetSpec(hidden=(64, 128), leaky_slope=0.2),
        g_optimizer=ADAM_GAN,
        d_optimizer=ADAM_GAN,
    ),
    "vaegan": ExperimentSpec(
        "vaegan",
        family="vaegan",
        loss="non-saturating",
        latent_dim=32,
        encoder=VAE_E,
        generator=MLP_G,
        discriminator=MLP_D,
        g_optimizer=ADAM_GAN,
        d_optimizer=ADAM_GAN,
        vaegan_gamma=1e-2,
    ),
}

MODEL_HELP = {
    "vae": "MLP VAE, Bernoulli decoder, ELBO, Adam",
    "cvae": "conditional MLP VAE (one-hot label into encoder and decoder)",
    "gan": "MLP GAN, BCE discriminator, non-saturating generator, RMSprop",
    "gan-minimax": "MLP GAN with the original minimax generator loss",
    "dcgan": "DCGAN: transposed-conv G with batch norm + LeakyReLU, conv D with dropout",
    "wgan": "DCGAN with a Wasserstein critic and weight clipping (n_critic 5)",
    "wgan-gp": "DCGAN with a Wasserstein critic and gradient penalty (n_critic 5, Adam)",
    "hinge-gan": "DCGAN with the hinge loss",
    "lsgan": "DCGAN with the least-squares loss (Mao 2017, TF-GAN's halves), Adam",
    "ragan": "DCGAN with the relativistic average BCE loss (Jolicoeur-Martineau 2018), Adam",
    "vaegan": "VAE-GAN (Larsen 2016): VAE decoder as generator, feature-matching reconstruction",
}


@dataclass(frozen=True)
class Stabilizer:
    name: str
    help: str
    applies: Callable[[ExperimentSpec], bool]
    apply: Callable[[ExperimentSpec], ExperimentSpec]
    # the stabilizer a finished spec amounts to, where a peer preset can change what this one
    # does (None: the name always holds)
    ran_as: Callable[[ExperimentSpec], str] | None = None


def _smoothing_ran_as(spec: ExperimentSpec) -> str:
    """label-smoothing-one or -two: the one smoothing as many sides as the spec's style does."""
    return "label-smoothing-" + {1: "one", 2: "two"}[SMOOTHED_SIDES[spec.label_smoothing_sides]]


def _bce(spec: ExperimentSpec) -> bool:
    return spec.has_discriminator and spec.loss in ("minimax", "non-saturating")


def _all_opts(spec: ExperimentSpec, **kw) -> ExperimentSpec:
    return spec.with_(**{f"{o}.{k}": v for o in ("g_optimizer", "d_optimizer") for k, v in kw.items()})


def _dropout(spec: ExperimentSpec) -> ExperimentSpec:
    if spec.has_discriminator:
        return spec.with_(**{"discriminator.dropout": 0.3})
    return spec.with_(**{"encoder.dropout": 0.2})


def _no_dropout_yet(spec: ExperimentSpec) -> bool:
    """dcgan's D has dropout 0.3 of its own: "dcgan+dropout" would be dcgan under another name."""
    net = spec.discriminator if spec.has_discriminator else spec.encoder
    return spec.family != "vaegan" and net.dropout == 0.0


def _batch_norm(spec: ExperimentSpec) -> ExperimentSpec:
    nets = ("generator", "discriminator") if spec.has_discriminator else ("encoder", "generator")
    return spec.with_(**{f"{n}.batch_norm": True for n in nets})


STABILIZERS: dict[str, Stabilizer] = {
    s.name: s
    for s in (
        Stabilizer(
            "weight-decay",
            "coupled L2 (g += 1e-4 p) on every optimizer",
            lambda s: True,
            lambda s: _all_opts(s, weight_decay=1e-4, decoupled_weight_decay=False),
        ),
        Stabilizer(
            "weight-decay-decoupled",
            "decoupled decay (p *= 1 - lr 1e-2), AdamW-style",
            lambda s: True,
            lambda s: _all_opts(s, weight_decay=1e-2, decoupled_weight_decay=True),
        ),
        Stabilizer("dropout", "dropout p=0.3 in D (GANs) or p=0.2 in the encoder (VAEs)", _no_dropout_yet, _dropout),
        Stabilizer(
            "batch-norm",
            "batch norm in G and D (GANs) or encoder and decoder (VAEs)",
            lambda s: s.family != "vaegan",
            _batch_norm,
        ),
        Stabilizer(
            "label-smoothing-one",
            "one-sided: real target 0.9, fake 0 (Salimans 2016)",
            _bce,
            lambda s: s.with_(label_smoothing=0.1, label_smoothing_sides="one"),
            _smoothing_ran_as,
        ),
        Stabilizer(
            "label-smoothing-two",
            "two-sided: real 0.9, fake 0.1",
            _bce,
            lambda s: s.with_(label_smoothing=0.1, label_smoothing_sides="two"),
            _smoothing_ran_as,
        ),
        Stabilizer(
            "spectral-norm",
            "spectral normalization of every D layer, 1 power iteration (Miyato 2018)",
            lambda s: s.has_discriminator,
            lambda s: s.with_(**{"discriminator.spectral_norm": True}),
        ),
        Stabilizer(
            "gradient-penalty",
            "GP lambda 10, target 1 on real/fake interpolates (Gulrajani 2017)",
            lambda s: s.family == "gan" and not s.uses_gp,
            lambda s: s.with_(gradient_penalty=True, weight_clip=0.0),
        ),
    )
}

# The 2-D mixtures (ring8, grid25) take the classic small setup of the mode-collapse literature
# (VEEGAN, PacGAN, the WGAN-GP toy experiments): MLPs of 128 units, a 2-D latent, batch 256,
# Adam 1e-3; critics (Wasserstein, hinge) learn 10x faster than G (TTUR, Heusel et al. 2017),
# since with equal rates the critic lags and G's samples wander for thousands of steps.
MIXTURE_G = NetSpec(hidden=(128, 128), activation="relu")
MIXTURE_D = NetSpec(hidden=(128, 128), activation="leaky_relu", leaky_slope=0.2)
ADAM_MIXTURE = OptimizerSpec(kind="adam", lr=1e-3, beta1=0.5, beta2=0.999, eps=1e-8)
ADAM_MIXTURE_CRITIC = OptimizerSpec(kind="adam", lr=1e-3, beta1=0.5, beta2=0.9, eps=1e-8)
ADAM_MIXTURE_G_TTUR = OptimizerSpec(kind="adam", lr=1e-4, beta1=0.5, beta2=0.9, eps=1e-8)


def for_mixture(spec: ExperimentSpec, dataset: str) -> ExperimentSpec:
    """A GAN of the catalog, moved to a 2-D mixture: same loss, n_critic, GP and clipping."""
    if spec.family != "gan":
        gans = ", ".join(m for m, s in MODELS.items() if s.family == "gan")
        raise SpecError(f"dataset {dataset} is 2-D: only the GANs apply ({gans})")
    critic = spec.loss in ("wasserstein", "wgan-gp", "hinge")
    return spec.with_(
        dataset=dataset,
        architecture="mlp",
        latent_dim=2,
        batch_size=256,
        generator=MIXTURE_G,
        discriminator=MIXTURE_D,
        g_optimizer=ADAM_MIXTURE_G_TTUR if critic else ADAM_MIXTURE,
        d_optimizer=ADAM_MIXTURE_CRITIC if critic else ADAM_MIXTURE,
    )


# -- peer conventions ----------------------------------------------------------------------------
# The presets are the spec's own (bench/core/specs.py CONVENTION_PRESETS): a spec that names a
# peer holds that peer's settings or is refused. Under a preset a label-smoothing stabilizer
# takes the peer's style; where that style smooths the other number of sides (TF-GAN's, torchgan's
# and mimicry's one, Keras' two), the experiment is named after the stabilizer that smooths as many
# sides as ran: both give the same spec (`_named_under`).
def with_convention(spec: ExperimentSpec, convention: str) -> ExperimentSpec:
    """The spec with a peer's conventions set together, and the preset's name recorded."""
    return spec.with_convention(convention)


PROFILES = {
    # steps per experiment; metric sample count (n_eval) for the runner; eval_every: also
    # evaluate every that many steps during training (the record's `curve`, curve.csv)
    "smoke": {"steps": 20, "n_eval": 500},
    "ci": {"steps": 1000, "n_eval": 2000},
    "quick": {"steps": 3000, "n_eval": 2000},
    "full": {"steps": 20000, "n_eval": 10000},
    # `genbench study`: each model's steps come from the study's budget (bench/runs/study.py)
    "study": {"steps": 3000, "n_eval": 2000},
    # the study's Stacked MNIST part: modes of 1000 counted from 10,000 samples (bench/runs/study.py)
    "study-stacked": {"steps": 1000, "n_eval": 10000},
    # quality against steps: the metrics every 500 steps of a 6000-step run
    "curve": {"steps": 6000, "n_eval": 2000, "eval_every": 500},
}

# The CI profile's own matrix (`genbench run --profile ci` without --models/--dataset): small
# problems on which a few hundred to two thousand steps move every gated metric far from the
# untrained model's value, so that results/baselines/ci.json can fail (docs/gate.md).
# (model, stabilizers, dataset, steps)
CI_MATRIX = (
    ("gan", (), "ring8", 2000),
    ("wgan-gp", (), "ring8", 1000),
    ("gan", (), "mnist", 1500),
    ("vae", (), "mnist", 1000),
)

DEFAULT_MODELS = ("dcgan", "vae")  # the original study's conv GAN and its VAE

# How each twin can execute a step (each twin's train.VARIANTS is its row here), and the
# one `genbench run` trains with when none is asked for: the fastest on the DCGAN step that
# gives the reference variant's losses (suites/test_timing.py, results/tables/timing.md).
VARIANTS = {"torch": ("eager", "compile", "channels_last"), "tensorflow": ("eager", "function", "xla")}
DEFAULT_VARIANT = {"torch": "eager", "tensorflow": "function"}

# The study's matrix: each row is (model, stabilizers); run on MNIST and Fashion-MNIST.
SEED_MATRIX = (
    ("vae", ()),
    ("cvae", ()),
    ("gan", ()),
    ("wgan", ()),
    ("wgan-gp", ()),
    ("dcgan", ()),
    ("dcgan", ("label-smoothing-one",)),
    ("dcgan", ("spectral-norm",)),
    ("gan", ("dropout", "batch-norm")),
    ("gan", ("weight-decay",)),
    ("vaegan", ()),
)


def parse_model(token: str) -> tuple[str, tuple[str, ...]]:
    """'dcgan+spectral-norm+dropout' -> ('dcgan', ('spectral-norm', 'dropout'))."""
    model, *stabs = token.strip().split("+")
    return model, tuple(stabs)


def experiment(
    model: str,
    stabilizers=(),
    dataset: str | None = None,
    profile: str = "quick",
    seed: int = 0,
    steps: int | None = None,
    convention: str | None = None,
    **overrides,
) -> ExperimentSpec:
    if model not in MODELS:
        hint = did_you_mean(model, MODELS) or f"; one of {', '.join(MODELS)}"
        raise SpecError(f"unknown model {model!r}{hint} (`genbench list` shows the catalog)")
    if profile not in PROFILES:
        raise SpecError(f"unknown profile {profile!r}: {', '.join(PROFILES)}")
    spec = MODELS[model]
    if dataset in ("ring8", "grid25"):
        spec = for_mixture(spec, dataset)
    for name in stabilizers:
        if name not in STABILIZERS:
            hint = did_you_mean(name, STABILIZERS) or f"; one of {', '.join(STABILIZERS)}"
            raise SpecError(f"unknown stabilizer {name!r}{hint} (`genbench list` shows the catalog)")
        if not STABILIZERS[name].applies(spec):
            raise SpecError(f"stabilizer {name} does not apply to {model} (see `genbench list`)")
        spec = STABILIZERS[name].apply(spec)
    if convention is not None:
        spec = with_convention(spec, convention)
    label = "+".join((model,) + tuple(_named_under(name, spec) for name in stabilizers))
    changes = dict(name=label, seed=seed, steps=steps or PROFILES[profile]["steps"], **overrides)
    if dataset:
        changes["dataset"] = dataset
    return spec.with_(**changes)


def _named_under(name: str, spec: ExperimentSpec) -> str:
    """The name of stabilizer `name` in an experiment's name: itself, or under a peer preset
    that changes it, the stabilizer the finished spec amounts to."""
    ran_as = STABILIZERS[name].ran_as
    return ran_as(spec) if ran_as is not None and spec.convention != "torch" else name


def profile_experiments(
    profile: str, models=None, datasets=None, seeds=(0,), steps=None, **overrides
) -> list[ExperimentSpec]:
    """The specs of a run: models x datasets x seeds, or the CI profile's own matrix when neither
    models nor datasets are given. Specs come out in run order (dataset, model, seed); one asked
    for twice (under a peer preset, label-smoothing-one and -two can be the same experiment) once."""
    if profile == "ci" and models is None and datasets is None:
        specs = [
            experiment(m, stabs, dataset=ds, profile=profile, seed=seed, steps=steps or n, **overrides)
            for m, stabs, ds, n in CI_MATRIX
            for seed in seeds
        ]
    else:
        models = models if models is not None else [(m, ()) for m in DEFAULT_MODELS]
        specs = [
            experiment(m, stabs, dataset=ds, profile=profile, seed=seed, steps=steps, **overrides)
            for ds in (datasets or ["mnist"])
            for m, stabs in models
            for seed in seeds
        ]
    return list(dict.fromkeys(specs))


def applicable(model: str) -> list[str]:
    return [name for name, s in STABILIZERS.items() if s.applies(MODELS[model])]


def catalog_rows() -> list[dict]:
    """One row per model: what it is and which stabilizers apply (for `genbench list`)."""
    return [{"model": m, "description": MODEL_HELP[m], "stabilizers": ", ".join(applicable(m))} for m in MODELS]
