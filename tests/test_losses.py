"""GAN losses and the ELBO against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from pipeline.losses import GAN_LOSSES, get_gan_loss, gradient_penalty, vae_elbo

REAL = torch.tensor([2.0, -1.0])
FAKE = torch.tensor([0.5, -3.0])


def sp(x: float) -> float:
    return math.log1p(math.exp(x))


@pytest.mark.parametrize(
    ("name", "d_expected", "g_expected"),
    [
        ("minimax", (sp(-2) + sp(1)) / 2 + (sp(0.5) + sp(-3)) / 2, -(sp(0.5) + sp(-3)) / 2),
        ("ns", (sp(-2) + sp(1)) / 2 + (sp(0.5) + sp(-3)) / 2, (sp(-0.5) + sp(3)) / 2),
        ("lsgan", 0.5 * ((1.0 + 4.0) / 2) + 0.5 * ((0.25 + 9.0) / 2), 0.5 * ((0.25 + 16.0) / 2)),
        ("wgan-gp", (0.5 - 3.0) / 2 - (2.0 - 1.0) / 2, -(0.5 - 3.0) / 2),
        ("hinge", (0.0 + 2.0) / 2 + (1.5 + 0.0) / 2, -(0.5 - 3.0) / 2),
    ],
)
def test_loss_values(name: str, d_expected: float, g_expected: float) -> None:
    loss = get_gan_loss(name)
    assert_close(loss.discriminator(REAL, FAKE), torch.tensor(d_expected))
    assert_close(loss.generator(FAKE), torch.tensor(g_expected))


def test_only_wgan_gp_uses_the_penalty() -> None:
    assert [name for name, loss in GAN_LOSSES.items() if loss.gradient_penalty] == ["wgan-gp"]


def test_unknown_loss_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="'wgan' is not a supported GAN loss; choose one of: minimax, ns"):
        get_gan_loss("wgan")


def test_gradient_penalty_of_a_linear_critic() -> None:
    # D(x) = sum(w * x): gradient is w everywhere, so the penalty is (|w| - 1)^2 exactly.
    critic = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 1, bias=False))
    with torch.no_grad():
        critic[1].weight.copy_(torch.tensor([[3.0, 0.0, 4.0, 0.0]]))  # norm 5
    real, fake = torch.randn(6, 1, 2, 2), torch.randn(6, 1, 2, 2)
    assert_close(gradient_penalty(critic, real, fake), torch.tensor(16.0))


def test_gradient_penalty_is_differentiable_for_the_critic() -> None:
    critic = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 1))
    gradient_penalty(critic, torch.randn(3, 1, 2, 2), torch.randn(3, 1, 2, 2)).backward()
    assert critic[1].weight.grad is not None and critic[1].weight.grad.abs().sum() > 0


def test_elbo_terms() -> None:
    logits = torch.zeros(2, 1, 2, 2)  # p = 0.5 everywhere: BCE = log 2 per pixel
    target = torch.rand(2, 1, 2, 2)
    mu = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)], [0.0, 0.0]])
    out = vae_elbo(logits, target, mu, logvar, beta=3.0)
    kl = torch.tensor([0.5 * (1 + 0 + (2 - 1 - math.log(2.0))), 0.5 * 4.0]).mean()
    assert_close(out["recon"], torch.tensor(4 * math.log(2.0)))
    assert_close(out["kl"], kl)
    assert_close(out["loss"], out["recon"] + 3.0 * kl)
