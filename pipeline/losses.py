"""GAN losses as pure functions of discriminator logits, their registry, the gradient penalties, and the VAE terms
(likelihoods, KL, the IWAE bound) that `pipeline.training.vae` assembles into its objectives.

Conventions: ``real``/``fake`` are (B,) logits of the discriminator (critic) on real and generated images;
every function returns a scalar to *minimise*.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def minimax_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """−log D(x) − log(1 − D(G(z))) with D = sigmoid(logit) (Goodfellow et al., 2014)."""
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def minimax_g(fake: torch.Tensor) -> torch.Tensor:
    """The saturating generator loss log(1 − D(G(z)))."""
    return -F.softplus(fake).mean()


def ns_g(fake: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss −log D(G(z))."""
    return F.softplus(-fake).mean()


def lsgan_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """½(D(x) − 1)² + ½D(G(z))² (Mao et al., 2017, a=0, b=c=1)."""
    return 0.5 * ((real - 1) ** 2).mean() + 0.5 * (fake**2).mean()


def lsgan_g(fake: torch.Tensor) -> torch.Tensor:
    """½(D(G(z)) − 1)²."""
    return 0.5 * ((fake - 1) ** 2).mean()


def wasserstein_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Critic loss E[D(G(z))] − E[D(x)] (Arjovsky et al., 2017); the penalty is added separately."""
    return fake.mean() - real.mean()


def wasserstein_g(fake: torch.Tensor) -> torch.Tensor:
    """−E[D(G(z))]."""
    return -fake.mean()


def hinge_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """E[max(0, 1 − D(x))] + E[max(0, 1 + D(G(z)))] (Lim & Ye, 2017; Miyato et al., 2018)."""
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """E[(‖∇D(x̂)‖₂ − 1)²] at random interpolates x̂ of real and fake (Gulrajani et al., 2017)."""
    alpha = torch.rand(real.size(0), 1, 1, 1, device=real.device)  # (B, 1, 1, 1)
    return _unit_gradient_penalty(critic, alpha * real.detach().float() + (1 - alpha) * fake.detach().float())


def dragan_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """E[(‖∇D(x̂)‖₂ − 1)²] at x̂ = x + δ, points around the real data only (Kodali et al., 2017):
    δ = α·(x_noisy − x) with x_noisy = x + 0.5·std(x)·u, u ~ U[0, 1), α ~ U[0, 1) per sample."""
    x = real.detach().float()
    noisy = x + 0.5 * x.std() * torch.rand_like(x)
    alpha = torch.rand(x.size(0), 1, 1, 1, device=x.device)  # (B, 1, 1, 1)
    return _unit_gradient_penalty(critic, x + alpha * (noisy - x))


@contextmanager
def ieee_fp32() -> Iterator[None]:
    """IEEE fp32 for CUDA matmuls and cuDNN convolutions inside the block (TF32 off), the previous setting after."""
    backends = [torch.backends.cuda.matmul, torch.backends.cudnn.conv]
    saved = [backend.fp32_precision for backend in backends]
    for backend in backends:
        backend.fp32_precision = "ieee"
    try:
        yield
    finally:
        for backend, value in zip(backends, saved):
            backend.fp32_precision = value


def _unit_gradient_penalty(critic: nn.Module, points: torch.Tensor) -> torch.Tensor:
    """Mean squared deviation of ‖∇ₓD(x)‖₂ from 1 at ``points`` (B, C, H, W); computed in fp32 so it stays
    correct under autocast."""
    points = points.requires_grad_(True)
    # forward, gradient and norm in fp32: no autocast, and no TF32 convolutions/matmuls on Ampere+ GPUs
    with torch.autocast(device_type=points.device.type, enabled=False), ieee_fp32():
        scores = critic(points)
        (grad,) = torch.autograd.grad(scores.sum(), points, create_graph=True)
        return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


PENALTIES: dict[str, Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "interpolates": gradient_penalty,
    "perturbed-real": dragan_penalty,
}


@dataclass(frozen=True)
class GanLoss:
    """A loss pair and the critic's regulariser: ``penalty`` names a :data:`PENALTIES` entry added to the critic
    loss (weighted by ``gp_weight``); ``weight_clip`` clips the critic's weights after each update (WGAN)."""

    discriminator: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    generator: Callable[[torch.Tensor], torch.Tensor]
    penalty: str | None = None
    weight_clip: bool = False

    @property
    def gradient_penalty(self) -> bool:
        """Whether the critic update differentiates through a gradient (double backward)."""
        return self.penalty is not None


GAN_LOSSES: dict[str, GanLoss] = {
    "minimax": GanLoss(minimax_d, minimax_g),
    "ns": GanLoss(minimax_d, ns_g),
    "lsgan": GanLoss(lsgan_d, lsgan_g),
    "wgan": GanLoss(wasserstein_d, wasserstein_g, weight_clip=True),
    "wgan-gp": GanLoss(wasserstein_d, wasserstein_g, penalty="interpolates"),
    "dragan": GanLoss(minimax_d, ns_g, penalty="perturbed-real"),
    "hinge": GanLoss(hinge_d, wasserstein_g),
}


def get_gan_loss(name: str) -> GanLoss:
    """Registry lookup; an unknown name lists the valid ones."""
    if name not in GAN_LOSSES:
        raise ValueError(f"'{name}' is not a supported GAN loss; choose one of: {', '.join(GAN_LOSSES)}")
    return GAN_LOSSES[name]


# --- VAEs: per-image negative log-likelihoods of images x in [-1, 1] (B, C, H, W) → (B,) nats, and the bounds.

HALF_BIN = 1.0 / 255.0  # half the width of one 8-bit intensity level on the [-1, 1] scale


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """−log p(x | logits) of intensities (x + 1)/2 ∈ [0, 1] under per-pixel Bernoulli likelihoods, summed."""
    return F.binary_cross_entropy_with_logits(logits, (x + 1) / 2, reduction="none").flatten(1).sum(1)


def discretized_logistic_nll(params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """−log p(x) under a per-pixel logistic discretised to the 256 levels of 8-bit data (Kingma et al., 2016;
    Salimans et al., 2017): P(x) = σ((x + ½bin − μ)/s) − σ((x − ½bin − μ)/s), with the edge levels taking the
    tails. ``params`` is (B, 2C, H, W): means μ, then log-scales log s."""
    mean, log_scale = params.chunk(2, dim=1)  # (B, C, H, W) each
    log_scale = log_scale.clamp(min=-7.0)
    inv_scale = torch.exp(-log_scale)
    plus, minus = inv_scale * (x - mean + HALF_BIN), inv_scale * (x - mean - HALF_BIN)
    log_cdf_plus = plus - F.softplus(plus)  # log σ(plus): level 0 takes the lower tail
    log_survival_minus = -F.softplus(minus)  # log(1 − σ(minus)): level 255 takes the upper tail
    delta = torch.sigmoid(plus) - torch.sigmoid(minus)
    mid = inv_scale * (x - mean)
    log_density_mid = mid - log_scale - 2 * F.softplus(mid) + math.log(2 * HALF_BIN)  # when delta underflows
    log_mid = torch.where(delta > 1e-5, torch.log(delta.clamp(min=1e-12)), log_density_mid)
    log_prob = torch.where(x < -1 + HALF_BIN, log_cdf_plus, torch.where(x > 1 - HALF_BIN, log_survival_minus, log_mid))
    return -log_prob.flatten(1).sum(1)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) ‖ N(0, I)) per row: (B, L) → (B,)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)


def iwae_bound(log_likelihood: torch.Tensor, z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """The importance-weighted bound log (1/k) Σᵢ p(x, zᵢ) / q(zᵢ | x) per image (Burda et al., 2016).

    ``log_likelihood`` is log p(x | zᵢ), (k, B); ``z`` the k samples (k, B, L) drawn from q = N(mu, exp(logvar)),
    mu and logvar (B, L). k = 1 is the single-sample ELBO; the bound tightens as k grows.
    """
    log_prior = -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(-1)  # (k, B)
    log_posterior = -0.5 * ((z - mu).pow(2) / logvar.exp() + logvar + math.log(2 * math.pi)).sum(-1)  # (k, B)
    log_weights = log_likelihood + log_prior - log_posterior  # (k, B)
    return torch.logsumexp(log_weights, dim=0) - math.log(z.size(0))  # (B,)


@dataclass(frozen=True)
class Likelihood:
    """A decoder likelihood: its NLL, how many output channels it needs per image channel, and the
    :class:`~pipeline.models.ImageGenerator` output mode that maps its parameters to an image."""

    nll: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    channels_per_channel: int
    output: str


LIKELIHOODS: dict[str, Likelihood] = {
    "bernoulli": Likelihood(bernoulli_nll, 1, "logits"),
    "logistic": Likelihood(discretized_logistic_nll, 2, "logistic-mean"),
}
