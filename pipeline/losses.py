"""GAN losses as pure functions of discriminator logits, their registry, the gradient penalty, and the VAE ELBO.

Conventions: ``real``/``fake`` are (B,) logits of the discriminator (critic) on real and generated images;
every function returns a scalar to *minimise*.
"""

from __future__ import annotations

from collections.abc import Callable
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


@dataclass(frozen=True)
class GanLoss:
    """A loss pair; ``gradient_penalty`` says whether the critic update adds :func:`gradient_penalty`."""

    discriminator: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    generator: Callable[[torch.Tensor], torch.Tensor]
    gradient_penalty: bool = False


GAN_LOSSES: dict[str, GanLoss] = {
    "minimax": GanLoss(minimax_d, minimax_g),
    "ns": GanLoss(minimax_d, ns_g),
    "lsgan": GanLoss(lsgan_d, lsgan_g),
    "wgan-gp": GanLoss(wasserstein_d, wasserstein_g, gradient_penalty=True),
    "hinge": GanLoss(hinge_d, wasserstein_g),
}


def get_gan_loss(name: str) -> GanLoss:
    """Registry lookup; an unknown name lists the valid ones."""
    if name not in GAN_LOSSES:
        raise ValueError(f"'{name}' is not a supported GAN loss; choose one of: {', '.join(GAN_LOSSES)}")
    return GAN_LOSSES[name]


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """E[(‖∇D(x̂)‖₂ − 1)²] at random interpolates x̂ of real and fake (Gulrajani et al., 2017).

    Computed in fp32 so it stays correct under autocast.
    """
    alpha = torch.rand(real.size(0), 1, 1, 1, device=real.device)  # (B, 1, 1, 1)
    mixed = (alpha * real.detach().float() + (1 - alpha) * fake.detach().float()).requires_grad_(True)
    with torch.autocast(device_type=real.device.type, enabled=False):  # forward, gradient and norm in fp32
        scores = critic(mixed)
        (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
        return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def vae_elbo(
    logits: torch.Tensor, target01: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, *, beta: float = 1.0
) -> dict[str, torch.Tensor]:
    """Negative β-ELBO per image: Bernoulli reconstruction NLL (summed over pixels) + β·KL(q(z|x) ‖ N(0, I)).

    ``logits`` and ``target01`` are (B, C, H, W) with targets in [0, 1]; returns loss, recon, kl (means over B).
    """
    recon = F.binary_cross_entropy_with_logits(logits, target01, reduction="none").flatten(1).sum(1)  # (B,)
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)  # (B,)
    return {"loss": (recon + beta * kl).mean(), "recon": recon.mean(), "kl": kl.mean()}
