"""Plain DCGAN training steps, written as a user of each framework would write them: the anchors
genbench's own step is timed against.

Same architecture as the catalog's `dcgan` (bench/core/arch.py: dense -> 7x7, two stride-2
transposed convs with batch norm and LeakyReLU 0.2, tanh; a conv discriminator with LeakyReLU
and dropout 0.3 and no batch norm, one logit), same batch, the non-saturating BCE loss
and RMSprop at the spec's learning rates, and the same work per step as genbench's: one
discriminator step on a real batch and a fresh fake batch, then one generator step on a second
fresh batch of latents (the Keras DCGAN example's order). What the plain loops do not have is
what genbench adds: weights in a canonical layout shared with the other framework, random
inputs drawn by the harness, loss terms returned as floats every step. Each twin builds the
network from the `ExperimentSpec`; these build it from the framework's own layers.

    step = torch_dcgan_step(spec)   # or keras_dcgan_step(spec)
    step(real_batch_nchw)           # one D step + one G step; returns nothing
"""

from __future__ import annotations

import numpy as np

from ..core.specs import ExperimentSpec


def _check(spec: ExperimentSpec) -> tuple[int, int, int, int, float]:
    if spec.architecture != "dcgan" or spec.family != "gan" or spec.data_shape != (1, 28, 28):
        raise ValueError(f"the plain anchors are the 28x28 DCGAN; got {spec.name} ({spec.architecture})")
    g1, g2 = spec.generator.hidden
    d1, d2 = spec.discriminator.hidden
    return g1, g2, d1, d2, spec.discriminator.dropout


def torch_dcgan_step(spec: ExperimentSpec, device: str = "cpu", seed: int = 0):
    """A plain PyTorch DCGAN step: nn.Sequential models, BCEWithLogitsLoss, torch.optim.RMSprop."""
    import torch
    from torch import nn

    g1, g2, d1, d2, p = _check(spec)
    torch.manual_seed(seed)
    slope = spec.generator.leaky_slope
    G = nn.Sequential(
        nn.Linear(spec.latent_dim, g1 * 49),
        nn.Unflatten(1, (g1, 7, 7)),
        nn.BatchNorm2d(g1),
        nn.LeakyReLU(slope),
        nn.ConvTranspose2d(g1, g2, 4, 2, 1),
        nn.BatchNorm2d(g2),
        nn.LeakyReLU(slope),
        nn.ConvTranspose2d(g2, 1, 4, 2, 1),
        nn.Tanh(),
    ).to(device)
    D = nn.Sequential(
        nn.Conv2d(1, d1, 4, 2, 1),
        nn.LeakyReLU(slope),
        nn.Dropout(p),
        nn.Conv2d(d1, d2, 4, 2, 1),
        nn.LeakyReLU(slope),
        nn.Dropout(p),
        nn.Flatten(),
        nn.Linear(d2 * 49, 1),
    ).to(device)
    opt_g = torch.optim.RMSprop(G.parameters(), lr=spec.g_optimizer.lr, alpha=spec.g_optimizer.rho)
    opt_d = torch.optim.RMSprop(D.parameters(), lr=spec.d_optimizer.lr, alpha=spec.d_optimizer.rho)
    bce = nn.BCEWithLogitsLoss()
    b = spec.batch_size
    ones, zeros = torch.ones(b, 1, device=device), torch.zeros(b, 1, device=device)

    def step(real: np.ndarray) -> None:
        x = torch.from_numpy(real).to(device)
        fake = G(torch.randn(b, spec.latent_dim, device=device))
        loss_d = bce(D(x), ones) + bce(D(fake.detach()), zeros)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        loss_g = bce(D(G(torch.randn(b, spec.latent_dim, device=device))), ones)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()

    step.models = (G, D)
    return step


def keras_dcgan_step(spec: ExperimentSpec, seed: int = 0):
    """A plain Keras 3 DCGAN step: keras.Sequential models (channels_last), a tf.function step
    with two GradientTapes, BinaryCrossentropy(from_logits=True), keras.optimizers.RMSprop."""
    import keras
    import tensorflow as tf
    from keras import layers

    g1, g2, d1, d2, p = _check(spec)
    keras.utils.set_random_seed(seed)
    slope = spec.generator.leaky_slope
    G = keras.Sequential(
        [
            keras.Input((spec.latent_dim,)),
            layers.Dense(g1 * 49),
            layers.Reshape((7, 7, g1)),
            layers.BatchNormalization(),
            layers.LeakyReLU(slope),
            layers.Conv2DTranspose(g2, 4, 2, padding="same"),
            layers.BatchNormalization(),
            layers.LeakyReLU(slope),
            layers.Conv2DTranspose(1, 4, 2, padding="same", activation="tanh"),
        ]
    )
    D = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(d1, 4, 2, padding="same"),
            layers.LeakyReLU(slope),
            layers.Dropout(p),
            layers.Conv2D(d2, 4, 2, padding="same"),
            layers.LeakyReLU(slope),
            layers.Dropout(p),
            layers.Flatten(),
            layers.Dense(1),
        ]
    )
    opt_g = keras.optimizers.RMSprop(spec.g_optimizer.lr, rho=spec.g_optimizer.rho)
    opt_d = keras.optimizers.RMSprop(spec.d_optimizer.lr, rho=spec.d_optimizer.rho)
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    b = spec.batch_size

    @tf.function
    def train_step(x):
        with tf.GradientTape() as tape:
            fake = G(tf.random.normal((b, spec.latent_dim)), training=True)
            loss_d = bce(tf.ones((b, 1)), D(x, training=True)) + bce(tf.zeros((b, 1)), D(fake, training=True))
        opt_d.apply_gradients(zip(tape.gradient(loss_d, D.trainable_weights), D.trainable_weights))
        with tf.GradientTape() as tape:
            loss_g = bce(tf.ones((b, 1)), D(G(tf.random.normal((b, spec.latent_dim)), training=True), training=True))
        opt_g.apply_gradients(zip(tape.gradient(loss_g, G.trainable_weights), G.trainable_weights))
        return loss_d, loss_g

    def step(real: np.ndarray) -> None:
        loss_d, _ = train_step(tf.constant(np.transpose(real, (0, 2, 3, 1))))
        loss_d.numpy()  # wait for the step

    step.models = (G, D)
    return step


def parameter_count(step) -> int:
    """Trainable parameters of an anchor's two models (for the architecture check)."""
    total = 0
    for m in step.models:
        if hasattr(m, "trainable_weights"):
            total += sum(int(np.prod(w.shape)) for w in m.trainable_weights)
        else:
            total += sum(p.numel() for p in m.parameters() if p.requires_grad)
    return total
