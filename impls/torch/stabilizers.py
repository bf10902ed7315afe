"""Stabilizers, PyTorch twin: spectral norm, gradient penalty, weight clipping, dropout, batch norm.

Formulas and conventions are in bench/core/arch.py (spectral norm) and bench/core/specs.py.
"""

import torch
import torch.nn.functional as F

from bench.core.specs import GP_EPSILON, GP_FORMS, SN_FORMS, SN_KINDS, SN_VECTORS, check_choice


def spectral_matrix(weight, kind):
    """The (rows, rest) matrix whose top singular value spectral norm divides by."""
    check_choice("kind", kind, SN_KINDS)
    if kind == "convT":  # (C_in, C_out, kh, kw): rows are output channels (torch dim=1)
        weight = weight.transpose(0, 1)
    return weight.reshape(weight.shape[0], -1)


def spectral_normalize(weight, u, kind, n_iter, eps, update, form="equality", vector="output"):
    """Return weight / sigma; with update=True run n_iter power iterations and store u.

    u and v are constants for autograd (as in torch.nn.utils.parametrizations.spectral_norm);
    the gradient flows through sigma = u . W v. vector="input": `u` is the stored right
    singular vector v (TF-GAN), the same iteration on W^T. form="at_most_one": weight /
    max(1, sigma) (TF-GAN's equality_constrained=False), no gradient through sigma below 1.
    """
    check_choice("form", form, SN_FORMS)
    check_choice("vector", vector, SN_VECTORS)
    w_mat = spectral_matrix(weight, kind)
    if vector == "input":
        w_mat = w_mat.t()
    u_new, v = _power_iteration(w_mat.detach(), u, n_iter if update else 0, eps, update)
    sigma = torch.dot(u_new, w_mat @ v)
    if form == "at_most_one":  # as tf.maximum(1., sigma): at sigma = 1 the gradient goes to the 1
        sigma = torch.where(sigma > 1.0, sigma, torch.ones_like(sigma))
    return weight / sigma


# Eager even under torch.compile: inside a compiled graph the in-place update of u, a buffer
# that the backward of an earlier D call in the same step has saved, fails autograd's version check.
@torch.compiler.disable
def _power_iteration(w_mat, u, n_iter, eps, update):
    with torch.no_grad():
        u_new = u
        for _ in range(n_iter):
            v = F.normalize(w_mat.t() @ u_new, dim=0, eps=eps)
            u_new = F.normalize(w_mat @ v, dim=0, eps=eps)
        if update:
            u.copy_(u_new)
        else:  # evaluation: the stored u, and the v it implies
            v = F.normalize(w_mat.t() @ u_new, dim=0, eps=eps)
    return u_new, v


def gradient_penalty(critic, real, fake, alpha, target=1.0, form="subtract"):
    """Gulrajani et al. 2017, eq. 3: E[(||grad_x D(x_hat)||_2 - target)^2] on
    x_hat = alpha * real + (1 - alpha) * fake, alpha ~ U[0, 1] per sample (handed in).

    The norm is sqrt(sum g^2 + GP_EPSILON) (TF-GAN's epsilon, bench/core/specs.py), finite in value
    and gradient where the critic's input gradient is exactly zero. `form` (bench/core/specs.py GP_FORMS): "divide" is TF-GAN's (||g|| / target - 1)^2,
    "one_sided" max(0, ||g|| - target)^2 (TF-GAN's one_sided=True, Petzka et al. 2018)."""
    check_choice("form", form, GP_FORMS)
    x_hat = (alpha * real + (1.0 - alpha) * fake.detach()).requires_grad_(True)
    scores = critic(x_hat)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    norm = torch.sqrt(torch.sum(grad.reshape(grad.shape[0], -1) ** 2, dim=1) + GP_EPSILON)
    return torch.mean(penalty_of_norm(norm, target, form))


def penalty_of_norm(norm, target, form="subtract"):
    """The per-example penalty of a gradient norm, in one of the GP forms."""
    check_choice("form", form, GP_FORMS)
    if form == "subtract":
        return (norm - target) ** 2
    if form == "divide":
        return (norm / target - 1.0) ** 2
    return F.relu(norm - target) ** 2  # one_sided


def clip_weights(params, clip):
    """WGAN weight clipping (Arjovsky et al. 2017, Algorithm 1): every critic parameter to [-c, c]."""
    with torch.no_grad():
        for p in params:
            p.clamp_(-clip, clip)


def dropout(x, mask):
    """Inverted dropout with a harness-supplied mask (values 0 or 1/(1-p), canonical NCHW)."""
    return x * mask


def batch_norm(x, weight, bias, running_mean, running_var, training, momentum, eps, biased_variance=False):
    """torch's own batch norm: momentum weights the new batch, running_var is unbiased.

    biased_variance=True stores the biased batch variance instead (Keras, TF's
    BatchNormalization); the output is the same (it always normalises with the biased one)."""
    if not (training and biased_variance):
        return F.batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)
    y = F.batch_norm(x, None, None, weight, bias, True, momentum, eps)
    dims = [0] + list(range(2, x.dim()))
    with torch.no_grad():
        mean = torch.mean(x, dims)
        var = torch.mean(torch.square(x - mean.reshape([1, -1] + [1] * (x.dim() - 2))), dims)
        running_mean.copy_((1.0 - momentum) * running_mean + momentum * mean)
        running_var.copy_((1.0 - momentum) * running_var + momentum * var)
    return y
