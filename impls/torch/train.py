"""Trainer, PyTorch twin: one train_step per family, optimizers from the spec.

The step order and the noise keys are documented in bench/core/randomness.py; the TensorFlow
twin (impls/tensorflow/train.py) follows the same order line by line.
"""

import ctypes
import functools
import platform

import numpy as np
import torch

from bench.core import arch, registry
from bench.core.facts import NUM_CLASSES
from bench.core.randomness import initial_weights
from bench.core.specs import DEVICES, FLOAT32_PRECISIONS, G_NEEDS_REAL, check_choice

from . import losses, stabilizers, weights
from .models import Net

DTYPES = {"float32": torch.float32, "float64": torch.float64}
# eager: plain PyTorch; compile: every network through torch.compile (Inductor);
# channels_last: eager with conv weights and activations in NHWC memory order
VARIANTS = registry.VARIANTS["torch"]


class DecoupledRMSprop(torch.optim.RMSprop):
    """RMSprop with decoupled weight decay, p *= 1 - lr * wd before the update (as AdamW)."""

    def __init__(self, params, decoupled_weight_decay=0.0, **kw):
        super().__init__(params, **kw)
        self.decoupled_weight_decay = decoupled_weight_decay

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.mul_(1.0 - group["lr"] * self.decoupled_weight_decay)
        return super().step(closure)


class PeerOptimizer(torch.optim.Optimizer):
    """Adam or RMSprop (no momentum, not centered) with the peers' conventions that torch.optim
    lacks, in the TensorFlow twin's order: Adam with "epsilon hat" (TF1 AdamOptimizer, Keras:
    p -= lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps)), RMSprop with eps inside the square
    root (TF, Keras: g / sqrt(v + eps)) and the mean square starting at 1 (TF1). Weight decay
    coupled (g += wd p) or decoupled (p *= 1 - lr wd), as the spec says."""

    def __init__(self, params, o):
        o.validate()  # a misspelt style or placement would fall through to torch's formula
        super().__init__(params, {})
        self.o = o
        self.t = 0

    @torch.no_grad()
    def step(self, closure=None):
        o = self.o
        self.t += 1
        bc1, bc2_sqrt = 1.0 - o.beta1**self.t, (1.0 - o.beta2**self.t) ** 0.5  # float64, as torch
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad, state = p.grad, self.state[p]
                if o.weight_decay and o.decoupled_weight_decay:
                    p.mul_(1.0 - o.lr * o.weight_decay)
                elif o.weight_decay:
                    grad = grad + o.weight_decay * p
                if o.kind == "adam":
                    if not state:
                        state["m"], state["v"] = torch.zeros_like(p), torch.zeros_like(p)
                    m, v = state["m"], state["v"]
                    m.copy_(o.beta1 * m + (1.0 - o.beta1) * grad)
                    v.copy_(o.beta2 * v + (1.0 - o.beta2) * grad * grad)
                    if o.adam_eps == "epsilon_hat":
                        p.sub_(o.lr * bc2_sqrt / bc1 * m / (torch.sqrt(v) + o.eps))
                    else:
                        p.sub_(o.lr / bc1 * m / (torch.sqrt(v) / bc2_sqrt + o.eps))
                else:
                    if not state:
                        state["v"] = torch.full_like(p, o.rmsprop_initial_ms)
                    v = state["v"]
                    v.copy_(o.rho * v + (1.0 - o.rho) * grad * grad)
                    if o.rmsprop_eps_placement == "inside":
                        p.sub_(o.lr * grad / torch.sqrt(v + o.eps))
                    else:
                        p.sub_(o.lr * grad / (torch.sqrt(v) + o.eps))


def _peer_conventions(o) -> bool:
    return (
        o.adam_eps != "torch"
        if o.kind == "adam"
        else o.rmsprop_eps_placement != "outside" or o.rmsprop_initial_ms != 0.0
    )


def make_optimizer(params, o):
    """torch.optim from an OptimizerSpec; every hyperparameter passed explicitly."""
    o.validate()
    if _peer_conventions(o):
        return PeerOptimizer(params, o)
    coupled_wd = 0.0 if o.decoupled_weight_decay else o.weight_decay
    if o.kind == "adam":
        cls = torch.optim.AdamW if o.decoupled_weight_decay else torch.optim.Adam
        return cls(
            params,
            lr=o.lr,
            betas=(o.beta1, o.beta2),
            eps=o.eps,
            weight_decay=o.weight_decay if o.decoupled_weight_decay else coupled_wd,
        )
    kw = dict(lr=o.lr, alpha=o.rho, eps=o.eps, weight_decay=coupled_wd, momentum=0.0, centered=False)
    if o.decoupled_weight_decay:
        return DecoupledRMSprop(params, decoupled_weight_decay=o.weight_decay, **kw)
    return torch.optim.RMSprop(params, **kw)


def set_float32_precision(mode: str) -> dict:
    """Pin float32 matmul/conv precision process-wide ("full" or "tf32") and return what is set.

    PyTorch runs cuDNN float32 convolutions in TF32 by default (torch.backends.cudnn.conv), and
    matmuls in full float32; oneDNN on CPU in full float32 unless told otherwise. "full" pins all
    of them to IEEE float32, "tf32" allows TF32 on CUDA (CPU kernels stay IEEE in both modes)."""
    check_choice("mode", mode, FLOAT32_PRECISIONS)
    b = torch.backends
    cuda = "tf32" if mode == "tf32" else "ieee"
    if hasattr(b.cuda.matmul, "fp32_precision"):  # torch >= 2.9
        b.cuda.matmul.fp32_precision = cuda
        b.cudnn.conv.fp32_precision = cuda
        b.mkldnn.matmul.fp32_precision = "ieee"
        b.mkldnn.conv.fp32_precision = "ieee"
        return {
            "mode": mode,
            "torch.cuda.matmul": b.cuda.matmul.fp32_precision,
            "torch.cudnn.conv": b.cudnn.conv.fp32_precision,
            "torch.mkldnn.matmul": b.mkldnn.matmul.fp32_precision,
            "torch.mkldnn.conv": b.mkldnn.conv.fp32_precision,
        }
    b.cuda.matmul.allow_tf32 = b.cudnn.allow_tf32 = mode == "tf32"  # pragma: no cover - older torch
    return {
        "mode": mode,
        "torch.cuda.matmul": "tf32" if b.cuda.matmul.allow_tf32 else "ieee",
        "torch.cudnn.conv": "tf32" if b.cudnn.allow_tf32 else "ieee",
    }


@functools.cache
def _keep_freed_memory():
    """Let glibc's malloc reuse freed activation buffers instead of returning them to the OS.

    By default a buffer of a few MB (a DCGAN activation at batch 64 is 3.2 MB) is mmap-ed
    fresh and unmapped on free, or the heap top is trimmed, so every step page-faults its
    activations in again: about 4,600 minor faults and 7% of a DCGAN step on one core, more on
    two (faults serialise in the kernel). Serving allocations up to 16 MB from the heap and
    trimming it only above 64 MB free takes that to under 100 faults a step (PyTorch's CPU
    tuning guide gets the same from jemalloc or tcmalloc). Process-wide; TensorFlow's own
    allocator does not fault like this. A no-op where the C library is not glibc."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # pragma: no cover
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    libc.mallopt(m_mmap_threshold, 16 << 20)
    libc.mallopt(m_trim_threshold, 64 << 20)


def _to_host(terms: dict) -> dict:
    """Loss terms (0-d tensors) -> Python floats with one device-to-host copy for all of them
    (on a GPU, one synchronisation per step rather than one per term). Each value is rounded
    to the term's own dtype first, as .item() would give it."""
    values = torch.stack([t.detach().to(torch.float64) for t in terms.values()]).tolist()
    return dict(zip(terms, values))


class Trainer:
    framework = "torch"

    def __init__(self, spec, device="cpu", variant="eager"):
        check_choice("variant", variant, VARIANTS)
        check_choice("device", device, DEVICES)
        self.spec, self.variant = spec, variant
        self.device = torch.device(device)
        self.precision = set_float32_precision(spec.float32_precision)
        if self.device.type == "cpu":
            _keep_freed_memory()
        self.dtype = DTYPES[spec.dtype]
        self.memory_format = torch.channels_last if variant == "channels_last" else torch.contiguous_format
        self.nets = {
            name: Net(
                layers,
                self.dtype,
                self._net_spec(name).sn_power_iterations,
                self._net_spec(name).sn_eps,
                self.memory_format,
                sn_form=self._net_spec(name).sn_form,
            ).to(self.device)
            for name, layers in arch.networks(spec).items()
        }
        if variant == "channels_last":  # set_weights copies into these, keeping their layout
            for net in self.nets.values():
                for p in net.parameters():
                    if p.dim() == 4:
                        p.data = p.data.contiguous(memory_format=torch.channels_last)
        self.set_weights(initial_weights(spec, np.random.default_rng(spec.seed)))
        self.record_grads, self.last_grads = False, None
        g_params = list(self.nets["G"].parameters())
        if spec.family in ("vae", "cvae"):
            g_params = list(self.nets["E"].parameters()) + g_params
        self.g_opt = make_optimizer(g_params, spec.g_optimizer)
        if spec.family == "vaegan":
            self.e_opt = make_optimizer(self.nets["E"].parameters(), spec.g_optimizer)
        if spec.has_discriminator:
            self.d_opt = make_optimizer(self.nets["D"].parameters(), spec.d_optimizer)
        self._forward = {name: self._compiled(net) for name, net in self.nets.items()}
        self.train_mode(True)

    def _net_spec(self, name):
        return {"G": self.spec.generator, "D": self.spec.discriminator, "E": self.spec.encoder}[name]

    def _compiled(self, net):
        return torch.compile(net) if self.variant == "compile" else net

    def train_mode(self, on):
        for net in self.nets.values():
            net.train(on)

    # -- conversions -------------------------------------------------------------------
    def _t(self, a):
        if isinstance(a, torch.Tensor):  # native randomness: drawn on the device already
            return a.to(device=self.device, dtype=self.dtype)
        return torch.as_tensor(np.asarray(a), dtype=self.dtype, device=self.device)

    def _masks(self, noise, key):
        return [
            self._t(m).contiguous(memory_format=self.memory_format) if np.ndim(m) == 4 else self._t(m)
            for m in noise.get(key, [])
        ]

    def _onehot(self, y):
        if y is None or not self.spec.conditional:
            return None
        y = torch.as_tensor(np.asarray(y), dtype=torch.long, device=self.device)
        return torch.nn.functional.one_hot(y, NUM_CLASSES).to(self.dtype)

    def _run(self, name, x, masks=None, cond=None):
        return self._forward[name](x, masks, cond)

    def _record(self, net_name):
        """Keep this net's gradients (canonical names) when record_grads is on."""
        if self.record_grads:
            grads = {
                f"{net_name}.{n}": p.grad for n, p in self.nets[net_name].state.named_parameters() if p.grad is not None
            }
            self.last_grads = {**(self.last_grads or {}), **weights.gradients_to_canonical(grads, self.nets)}

    # -- training ----------------------------------------------------------------------
    def train_step(self, batch, noise):
        self.train_mode(True)
        self.last_grads = None
        x = self._t(batch["x"])
        if self.spec.family == "gan":
            return self._gan_step(x, noise)
        if self.spec.family == "vaegan":
            if self.variant == "compile":
                # three gradients from one graph (retain_graph=True): AOTAutograd must not
                # donate the forward's buffers to the first backward
                import torch._functorch.config

                with torch._functorch.config.patch(donated_buffer=False):
                    return self._vaegan_step(x, noise)
            return self._vaegan_step(x, noise)
        return self._vae_step(x, noise, self._onehot(batch.get("y")))

    def _gan_step(self, x_all, noise):
        spec, b = self.spec, self.spec.batch_size
        real_t, fake_t = spec.targets
        loss_fn = losses.GAN_LOSSES[spec.loss]
        D = self.nets["D"]
        sums = {}
        for i in range(spec.n_critic):
            x = x_all[i * b : (i + 1) * b]
            with torch.no_grad():
                fake, _ = self._run("G", self._t(noise[f"d{i}.z"]), self._masks(noise, f"d{i}.G"))
            d_real, _ = self._run("D", x, self._masks(noise, f"d{i}.D.real"))
            d_fake, _ = self._run("D", fake, self._masks(noise, f"d{i}.D.fake"))
            d_loss, d_loss_real, d_loss_fake, _ = loss_fn(d_real[:, 0], d_fake[:, 0], real_t, fake_t)
            terms = {"d_loss": d_loss, "d_loss_real": d_loss_real, "d_loss_fake": d_loss_fake}
            total = d_loss
            if spec.uses_gp:
                gp_masks = self._masks(noise, f"d{i}.D.gp")
                # the uncompiled D: AOTAutograd graphs do not support the double backward
                gp = stabilizers.gradient_penalty(
                    lambda t: self.nets["D"](t, gp_masks)[0],  # noqa: B023 - called in this iteration
                    x,
                    fake,
                    self._t(noise[f"d{i}.alpha"]),
                    spec.gp_target,
                    form=spec.gp_form,
                )
                terms["gp"] = gp
                total = d_loss + spec.gp_lambda * gp
            self.d_opt.zero_grad(set_to_none=True)
            total.backward()
            self._record("D")
            self.d_opt.step()
            if spec.weight_clip > 0:
                stabilizers.clip_weights(D.parameters(), spec.weight_clip)
            for k, v in terms.items():  # summed on the device in float64: no host sync per term
                v = v.detach().to(torch.float64)
                sums[k] = sums[k] + v if k in sums else v
        fake, _ = self._run("G", self._t(noise["g.z"]), self._masks(noise, "g.G"))
        d_fake, _ = self._run("D", fake, self._masks(noise, "g.D.fake"))
        if spec.loss in G_NEEDS_REAL:  # relativistic: G's loss reads D on the last real batch
            d_real, _ = self._run("D", x, self._masks(noise, "g.D.real"))
            g_loss = loss_fn(d_real[:, 0], d_fake[:, 0], real_t, fake_t)[3]
        else:
            g_loss = loss_fn(d_fake[:, 0], d_fake[:, 0], real_t, fake_t)[3]
        self.g_opt.zero_grad(set_to_none=True)
        # gradients for G only: D's weight gradients (a full backward GEMM per D layer) are
        # not needed here, and backward() would compute them
        g_params = list(self.nets["G"].parameters())
        for p, g in zip(g_params, torch.autograd.grad(g_loss, g_params)):
            p.grad = g
        self._record("G")
        self.g_opt.step()
        means = {k: v / spec.n_critic for k, v in sums.items()}
        return _to_host({**means, "g_loss": g_loss})

    def _encode_sample(self, x, cond, noise):
        h, _ = self._run("E", x, self._masks(noise, "E"), cond)
        mean, logvar = torch.chunk(h, 2, dim=1)
        z = mean + torch.exp(0.5 * logvar) * self._t(noise["eps"])
        return mean, logvar, z

    def _recon_nll(self, out, x):
        if self.spec.likelihood == "gaussian":
            return losses.gaussian_nll(out, x, self.spec.decoder_sigma)
        return losses.bernoulli_nll(out, x)

    def _vae_step(self, x, noise, cond=None):
        mean, logvar, z = self._encode_sample(x, cond, noise)
        out, _ = self._run("G", z, self._masks(noise, "G"), cond)
        loss, recon, kl = losses.elbo_terms(self._recon_nll(out, x), mean, logvar)
        self.g_opt.zero_grad(set_to_none=True)
        loss.backward()
        self._record("E")
        self._record("G")
        self.g_opt.step()
        return _to_host({"loss": loss, "recon": recon, "kl": kl, "elbo": -loss})

    def _vaegan_step(self, x, noise):
        """Larsen et al. 2016, Algorithm 1: one forward pass, three losses, three updates."""
        spec = self.spec
        real_t, fake_t = spec.targets
        E, G, D = self.nets["E"], self.nets["G"], self.nets["D"]
        mean, logvar, z = self._encode_sample(x, None, noise)
        x_rec, _ = self._run("G", z, self._masks(noise, "G.rec"))
        x_prior, _ = self._run("G", self._t(noise["z_prior"]), self._masks(noise, "G.prior"))
        d_real, f_real = self._run("D", x, self._masks(noise, "D.real"))
        d_rec, f_rec = self._run("D", x_rec, self._masks(noise, "D.rec"))
        d_prior, _ = self._run("D", x_prior, self._masks(noise, "D.prior"))
        loss_fn = losses.GAN_LOSSES[spec.loss]
        _, d_loss_real, d_loss_rec, g_rec = loss_fn(d_real[:, 0], d_rec[:, 0], real_t, fake_t)
        _, _, d_loss_prior, g_prior = loss_fn(d_real[:, 0], d_prior[:, 0], real_t, fake_t)
        d_loss = d_loss_real + d_loss_rec + d_loss_prior
        kl = torch.mean(losses.kl_standard_normal(mean, logvar))
        # Gaussian log-likelihood of D's features with unit variance, constants dropped
        llike = torch.mean(0.5 * torch.sum((f_real - f_rec).reshape(x.shape[0], -1) ** 2, dim=1))
        enc_loss = kl + llike
        dec_loss = spec.vaegan_gamma * llike + g_rec + g_prior
        groups = ((E, enc_loss, self.e_opt), (G, dec_loss, self.g_opt), (D, d_loss, self.d_opt))
        grads = [torch.autograd.grad(loss, list(net.parameters()), retain_graph=True) for net, loss, _ in groups]
        for (net, _, opt), gs in zip(groups, grads):
            opt.zero_grad(set_to_none=True)
            for p, g in zip(net.parameters(), gs):
                p.grad = g
        for name in ("E", "G", "D"):
            self._record(name)
        for _, _, opt in groups:
            opt.step()
        return _to_host(
            {
                "d_loss": d_loss,
                "g_loss": g_rec + g_prior,
                "kl": kl,
                "llike": llike,
                "enc_loss": enc_loss,
                "dec_loss": dec_loss,
            }
        )

    # -- inference (evaluation mode, NumPy in and out, NCHW) ---------------------------------
    @torch.no_grad()
    def _eval(self, name, x, cond=None):
        self.train_mode(False)
        try:
            return self._run(name, x, None, cond)
        finally:
            self.train_mode(True)

    def _output_to_data(self, out):
        if self.spec.has_encoder and self.spec.family != "vaegan" and self.spec.likelihood == "bernoulli":
            out = torch.sigmoid(out)
        return out.cpu().numpy()

    def sample(self, z, y=None):
        """Generator / decoder output in the data range (Bernoulli VAEs: the mean image)."""
        return self._output_to_data(self._eval("G", self._t(z), self._onehot(y))[0])

    decode = sample

    def discriminate(self, x):
        return self._eval("D", self._t(x))[0][:, 0].cpu().numpy()

    def encode(self, x, y=None):
        h = self._eval("E", self._t(x), self._onehot(y))[0]
        mean, logvar = torch.chunk(h, 2, dim=1)
        return mean.cpu().numpy(), logvar.cpu().numpy()

    def reconstruct(self, x, y=None):
        return self.decode(self.encode(x, y)[0], y)

    def reconstruction_nll(self, x, z, y=None):
        """-log p(x | z) per sample in nats (VAE decoders)."""
        out = self._eval("G", self._t(z), self._onehot(y))[0]
        with torch.no_grad():
            return self._recon_nll(out, self._t(x)).cpu().numpy()

    # -- weights -----------------------------------------------------------------------------
    def get_weights(self):
        return weights.get_weights(self.nets)

    def set_weights(self, w):
        weights.set_weights(self.nets, w)
