"""Trainer, TensorFlow twin: the same steps, in the same order, as impls/torch/train.py.

TF quirks handled here: the optimizers are written out with PyTorch's formulas (Keras
RMSprop puts eps inside the square root, Keras Adam uses "epsilon hat" and float32 beta
powers); a step runs eagerly, in tf.function, or in tf.function(jit_compile=True).
"""

import numpy as np
import tensorflow as tf

from bench.core import arch, registry
from bench.core.facts import NUM_CLASSES
from bench.core.randomness import initial_weights
from bench.core.specs import DEVICES, FLOAT32_PRECISIONS, G_NEEDS_REAL, check_choice

from . import losses, stabilizers, weights
from .models import Net, to_nchw, to_nhwc

DTYPES = {"float32": tf.float32, "float64": tf.float64}
VARIANTS = registry.VARIANTS["tensorflow"]  # eager, in tf.function, in tf.function(jit_compile=True)


class Optimizer(tf.Module):
    """torch.optim.Adam / AdamW / RMSprop (no momentum, not centered), step for step; the spec's
    peer conventions (adam_eps "epsilon_hat", rmsprop_eps_placement "inside",
    rmsprop_initial_ms 1) switch to TF1's and Keras' formulas."""

    def __init__(self, variables, o):
        o.validate()  # a misspelt style or placement would fall through to torch's formula
        super().__init__()
        self.o, self.params = o, list(variables)
        self.step_count = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.slots = [
            [tf.Variable(tf.zeros_like(v), trainable=False) for _ in range(2 if o.kind == "adam" else 1)]
            for v in self.params
        ]
        if o.kind == "rmsprop" and o.rmsprop_initial_ms:  # TF1 RMSPropOptimizer starts ms at 1
            for (v,) in self.slots:
                v.assign(tf.fill(tf.shape(v), tf.cast(o.rmsprop_initial_ms, v.dtype)))

    def apply(self, grads):
        o = self.o
        self.step_count.assign_add(1)
        t = tf.cast(self.step_count, tf.float64)  # torch keeps the step count in float64
        if o.kind == "adam":
            bc1 = 1.0 - tf.pow(tf.constant(o.beta1, tf.float64), t)
            bc2_sqrt = tf.sqrt(1.0 - tf.pow(tf.constant(o.beta2, tf.float64), t))
        for var, grad, slots in zip(self.params, grads, self.slots):
            dt = var.dtype
            if o.weight_decay and o.decoupled_weight_decay:
                var.assign(var * (1.0 - o.lr * o.weight_decay))
            elif o.weight_decay:
                grad = grad + o.weight_decay * var
            if o.kind == "adam":
                m, v = slots
                m.assign(o.beta1 * m + (1.0 - o.beta1) * grad)
                v.assign(o.beta2 * v + (1.0 - o.beta2) * grad * grad)
                if o.adam_eps == "epsilon_hat":  # TF1/Keras: lr_t = lr sqrt(1 - b2^t) / (1 - b1^t)
                    var.assign_sub(tf.cast(o.lr * bc2_sqrt / bc1, dt) * m / (tf.sqrt(v) + o.eps))
                    continue
                denom = tf.sqrt(v) / tf.cast(bc2_sqrt, dt) + o.eps
                var.assign_sub(tf.cast(o.lr / bc1, dt) * m / denom)
            else:
                (v,) = slots
                v.assign(o.rho * v + (1.0 - o.rho) * grad * grad)
                if o.rmsprop_eps_placement == "inside":  # TF/Keras: g / sqrt(v + eps)
                    var.assign_sub(o.lr * grad / tf.sqrt(v + o.eps))
                    continue
                var.assign_sub(o.lr * grad / (tf.sqrt(v) + o.eps))


def make_optimizer(params, o):
    return Optimizer(params, o)  # which refuses a misspelt option


def set_float32_precision(mode: str) -> dict:
    """Pin float32 matmul/conv precision process-wide ("full" or "tf32") and return what is set.

    TensorFlow runs float32 matmuls and convolutions in TF32 on Ampere and newer GPUs by default;
    "full" turns that off, as the PyTorch twin does with its own switches."""
    check_choice("mode", mode, FLOAT32_PRECISIONS)
    tf.config.experimental.enable_tensor_float_32_execution(mode == "tf32")
    on = tf.config.experimental.tensor_float_32_execution_enabled()
    return {"mode": mode, "tensorflow.tensor_float_32": "tf32" if on else "ieee"}


class Trainer:
    framework = "tensorflow"

    def __init__(self, spec, device="cpu", variant="function"):
        check_choice("variant", variant, VARIANTS)
        check_choice("device", device, DEVICES)
        self.spec, self.variant = spec, variant
        self.device = "/GPU:0" if device == "cuda" else "/CPU:0"
        self.precision = set_float32_precision(spec.float32_precision)
        self.dtype = DTYPES[spec.dtype]
        with tf.device(self.device):
            self.nets = {
                name: Net(
                    layers,
                    self.dtype,
                    self._net_spec(name).sn_power_iterations,
                    self._net_spec(name).sn_eps,
                    name=name,
                    sn_form=self._net_spec(name).sn_form,
                )
                for name, layers in arch.networks(spec).items()
            }
            self.set_weights(initial_weights(spec, np.random.default_rng(spec.seed)))
            g_vars = self.nets["G"].trainable
            if spec.family in ("vae", "cvae"):
                g_vars = self.nets["E"].trainable + g_vars
            self.g_opt = make_optimizer(g_vars, spec.g_optimizer)
            if spec.family == "vaegan":
                self.e_opt = make_optimizer(self.nets["E"].trainable, spec.g_optimizer)
            if spec.has_discriminator:
                self.d_opt = make_optimizer(self.nets["D"].trainable, spec.d_optimizer)
        self.record_grads, self.last_grads = False, None
        step = {"gan": self._gan_step, "vaegan": self._vaegan_step}.get(spec.family, self._vae_step)
        if variant == "eager":
            self._step = step
        else:
            self._step = tf.function(step, jit_compile=(variant == "xla"), reduce_retracing=True)

    def _net_spec(self, name):
        return {"G": self.spec.generator, "D": self.spec.discriminator, "E": self.spec.encoder}[name]

    def train_mode(self, on):
        for net in self.nets.values():
            net.training = on

    # -- conversions -------------------------------------------------------------------
    def _t(self, a):
        if tf.is_tensor(a):  # native randomness: drawn on the device already
            return tf.cast(a, self.dtype)
        return tf.convert_to_tensor(np.asarray(a), dtype=self.dtype)

    def _image_in(self, a):
        return to_nhwc(self._t(a))

    def _noise_in(self, noise):
        return {k: [self._t(m) for m in v] if isinstance(v, list) else self._t(v) for k, v in noise.items()}

    def _onehot(self, y):
        if y is None or not self.spec.conditional:
            return None
        return tf.one_hot(np.asarray(y), NUM_CLASSES, dtype=self.dtype)

    def _grads(self, net_name, grads):
        return {f"{net_name}.{n}": g for n, g in zip(self.nets[net_name].trainable_names, grads)}

    # -- training ----------------------------------------------------------------------
    def train_step(self, batch, noise):
        self.train_mode(True)
        with tf.device(self.device):
            args = [self._image_in(batch["x"]), self._noise_in(noise)]
            if self.spec.conditional:
                args.append(self._onehot(batch["y"]))
            out, grads = self._step(*args)
        if self.record_grads:
            self.last_grads = weights.gradients_to_canonical({k: g.numpy() for k, g in grads.items()}, self.nets)
        return {k: float(v) for k, v in out.items()}

    def _gan_step(self, x_all, noise):
        spec, b = self.spec, self.spec.batch_size
        real_t, fake_t = spec.targets
        loss_fn = losses.GAN_LOSSES[spec.loss]
        G, D = self.nets["G"], self.nets["D"]
        sums, grads = {}, {}
        for i in range(spec.n_critic):
            x = x_all[i * b : (i + 1) * b]
            fake = tf.stop_gradient(G(noise[f"d{i}.z"], noise.get(f"d{i}.G"))[0])
            with tf.GradientTape() as tape:
                d_real, _ = D(x, noise.get(f"d{i}.D.real"))
                d_fake, _ = D(fake, noise.get(f"d{i}.D.fake"))
                d_loss, d_loss_real, d_loss_fake, _ = loss_fn(d_real[:, 0], d_fake[:, 0], real_t, fake_t)
                terms = {"d_loss": d_loss, "d_loss_real": d_loss_real, "d_loss_fake": d_loss_fake}
                total = d_loss
                if spec.uses_gp:
                    gp_masks = noise.get(f"d{i}.D.gp")
                    gp = stabilizers.gradient_penalty(
                        lambda t: D(t, gp_masks)[0],  # noqa: B023 - called in this iteration
                        x,
                        fake,
                        noise[f"d{i}.alpha"],
                        spec.gp_target,
                        form=spec.gp_form,
                    )
                    terms["gp"] = gp
                    total = d_loss + spec.gp_lambda * gp
            d_grads = tape.gradient(total, D.trainable)
            grads.update(self._grads("D", d_grads))
            self.d_opt.apply(d_grads)
            if spec.weight_clip > 0:
                stabilizers.clip_weights(D.trainable, spec.weight_clip)
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + v
        out = {k: v / spec.n_critic for k, v in sums.items()}
        with tf.GradientTape() as tape:
            fake, _ = G(noise["g.z"], noise.get("g.G"))
            d_fake, _ = D(fake, noise.get("g.D.fake"))
            if spec.loss in G_NEEDS_REAL:
                d_real, _ = D(x, noise.get("g.D.real"))
                g_loss = loss_fn(d_real[:, 0], d_fake[:, 0], real_t, fake_t)[3]
            else:
                g_loss = loss_fn(d_fake[:, 0], d_fake[:, 0], real_t, fake_t)[3]
        g_grads = tape.gradient(g_loss, G.trainable)
        grads.update(self._grads("G", g_grads))
        self.g_opt.apply(g_grads)
        out["g_loss"] = g_loss
        return out, grads

    def _encode_sample(self, x, cond, noise):
        h, _ = self.nets["E"](x, noise.get("E"), cond)
        mean, logvar = tf.split(h, 2, axis=1)
        z = mean + tf.exp(0.5 * logvar) * noise["eps"]
        return mean, logvar, z

    def _recon_nll(self, out, x):
        if self.spec.likelihood == "gaussian":
            return losses.gaussian_nll(out, x, self.spec.decoder_sigma)
        return losses.bernoulli_nll(out, x)

    def _vae_step(self, x, noise, cond=None):
        variables = self.nets["E"].trainable + self.nets["G"].trainable
        with tf.GradientTape() as tape:
            mean, logvar, z = self._encode_sample(x, cond, noise)
            out, _ = self.nets["G"](z, noise.get("G"), cond)
            loss, recon, kl = losses.elbo_terms(self._recon_nll(out, x), mean, logvar)
        g = tape.gradient(loss, variables)
        self.g_opt.apply(g)
        n_e = len(self.nets["E"].trainable)
        grads = {**self._grads("E", g[:n_e]), **self._grads("G", g[n_e:])}
        return {"loss": loss, "recon": recon, "kl": kl, "elbo": -loss}, grads

    def _vaegan_step(self, x, noise):
        spec = self.spec
        real_t, fake_t = spec.targets
        G, D = self.nets["G"], self.nets["D"]
        loss_fn = losses.GAN_LOSSES[spec.loss]
        with tf.GradientTape(persistent=True) as tape:
            mean, logvar, z = self._encode_sample(x, None, noise)
            x_rec, _ = G(z, noise.get("G.rec"))
            x_prior, _ = G(noise["z_prior"], noise.get("G.prior"))
            d_real, f_real = D(x, noise.get("D.real"))
            d_rec, f_rec = D(x_rec, noise.get("D.rec"))
            d_prior, _ = D(x_prior, noise.get("D.prior"))
            _, d_loss_real, d_loss_rec, g_rec = loss_fn(d_real[:, 0], d_rec[:, 0], real_t, fake_t)
            _, _, d_loss_prior, g_prior = loss_fn(d_real[:, 0], d_prior[:, 0], real_t, fake_t)
            d_loss = d_loss_real + d_loss_rec + d_loss_prior
            kl = tf.reduce_mean(losses.kl_standard_normal(mean, logvar))
            diff = tf.reshape(to_nchw(f_real - f_rec), (tf.shape(x)[0], -1))
            llike = tf.reduce_mean(0.5 * tf.reduce_sum(diff**2, axis=1))
            enc_loss = kl + llike
            dec_loss = spec.vaegan_gamma * llike + g_rec + g_prior
        groups = (("E", enc_loss, self.e_opt), ("G", dec_loss, self.g_opt), ("D", d_loss, self.d_opt))
        all_grads = [tape.gradient(loss, self.nets[name].trainable) for name, loss, _ in groups]
        del tape
        grads = {}
        for (name, _, opt), g in zip(groups, all_grads):
            grads.update(self._grads(name, g))
            opt.apply(g)
        return {
            "d_loss": d_loss,
            "g_loss": g_rec + g_prior,
            "kl": kl,
            "llike": llike,
            "enc_loss": enc_loss,
            "dec_loss": dec_loss,
        }, grads

    # -- inference (evaluation mode, NumPy in and out, NCHW) ---------------------------------
    def _eval(self, name, x, cond=None):
        self.train_mode(False)
        try:
            with tf.device(self.device):
                return self.nets[name](x, None, cond)
        finally:
            self.train_mode(True)

    def _output_to_data(self, out):
        if self.spec.has_encoder and self.spec.family != "vaegan" and self.spec.likelihood == "bernoulli":
            out = tf.sigmoid(out)
        return to_nchw(out).numpy()

    def sample(self, z, y=None):
        return self._output_to_data(self._eval("G", self._t(z), self._onehot(y))[0])

    decode = sample

    def discriminate(self, x):
        return self._eval("D", self._image_in(x))[0][:, 0].numpy()

    def encode(self, x, y=None):
        h = self._eval("E", self._image_in(x), self._onehot(y))[0]
        mean, logvar = tf.split(h, 2, axis=1)
        return mean.numpy(), logvar.numpy()

    def reconstruct(self, x, y=None):
        return self.decode(self.encode(x, y)[0], y)

    def reconstruction_nll(self, x, z, y=None):
        out = self._eval("G", self._t(z), self._onehot(y))[0]
        return self._recon_nll(out, self._image_in(x)).numpy()

    # -- weights -----------------------------------------------------------------------------
    def get_weights(self):
        return weights.get_weights(self.nets)

    def set_weights(self, w):
        weights.set_weights(self.nets, w)
