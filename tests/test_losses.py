"""GAN losses and the ELBO against hand-computed values."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from pipeline.config import PENALISED_LOSSES
from pipeline.losses import (
    GAN_LOSSES,
    LIKELIHOODS,
    bernoulli_nll,
    discretized_logistic_nll,
    dragan_penalty,
    gaussian_kl,
    get_gan_loss,
    gradient_penalty,
    iwae_bound,
)
from pipeline.training.vae import elbo_terms

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
        ("wgan", (0.5 - 3.0) / 2 - (2.0 - 1.0) / 2, -(0.5 - 3.0) / 2),
        ("wgan-gp", (0.5 - 3.0) / 2 - (2.0 - 1.0) / 2, -(0.5 - 3.0) / 2),
        ("dragan", (sp(-2) + sp(1)) / 2 + (sp(0.5) + sp(-3)) / 2, (sp(-0.5) + sp(3)) / 2),
        ("hinge", (0.0 + 2.0) / 2 + (1.5 + 0.0) / 2, -(0.5 - 3.0) / 2),
    ],
)
def test_loss_values(name: str, d_expected: float, g_expected: float) -> None:
    loss = get_gan_loss(name)
    assert_close(loss.discriminator(REAL, FAKE), torch.tensor(d_expected))
    assert_close(loss.generator(FAKE), torch.tensor(g_expected))


def test_regularisers_of_the_losses() -> None:
    assert {name: loss.penalty for name, loss in GAN_LOSSES.items() if loss.penalty} == {
        "wgan-gp": "interpolates", "dragan": "perturbed-real"}
    assert set(PENALISED_LOSSES) == {name for name, loss in GAN_LOSSES.items() if loss.penalty}  # config agrees
    assert [name for name, loss in GAN_LOSSES.items() if loss.weight_clip] == ["wgan"]


def test_unknown_loss_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="'began' is not a supported GAN loss; choose one of: minimax, ns"):
        get_gan_loss("began")


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
    """The training objective: Bernoulli NLL summed over pixels + β·KL, means over the batch."""
    logits = torch.zeros(2, 1, 2, 2)  # p = 0.5 everywhere: BCE = log 2 per pixel
    real = torch.rand(2, 1, 2, 2) * 2 - 1
    mu = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)], [0.0, 0.0]])
    model = lambda images: (logits, mu, logvar, None)  # noqa: E731 - the encoder/decoder's outputs, fixed
    out = elbo_terms(model, real, LIKELIHOODS["bernoulli"], SimpleNamespace(beta=3.0))
    kl = torch.tensor([0.5 * (1 + 0 + (2 - 1 - math.log(2.0))), 0.5 * 4.0]).mean()
    assert_close(out["recon"], torch.tensor(4 * math.log(2.0)))
    assert_close(out["kl"], kl)
    assert_close(out["loss"], out["recon"] + 3.0 * kl)


def _linear_critic() -> torch.nn.Module:
    critic = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 1, bias=False))
    with torch.no_grad():
        critic[1].weight.copy_(torch.tensor([[0.6, 0.0, 0.0, 0.8]]))  # norm 1: zero penalty anywhere
    return critic


def test_dragan_penalty_of_linear_and_quadratic_critics() -> None:
    real, fake = torch.rand(5, 1, 2, 2), torch.rand(5, 1, 2, 2)
    assert_close(dragan_penalty(_linear_critic(), real, fake), torch.tensor(0.0))

    # D(x) = ½‖x‖²: the gradient at x̂ is x̂ itself, so the penalty is mean((‖x̂‖ − 1)²) at the drawn points
    class Quadratic(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 0.5 * x.flatten(1).pow(2).sum(1)

    torch.manual_seed(0)
    penalty = dragan_penalty(Quadratic(), real, fake)
    torch.manual_seed(0)
    noisy = real + 0.5 * real.std() * torch.rand_like(real)
    alpha = torch.rand(5, 1, 1, 1)
    points = real + alpha * (noisy - real)  # within [x, x + ½·std·u]: around the real data, never at the fakes
    assert_close(penalty, ((points.flatten(1).norm(dim=1) - 1) ** 2).mean())


def _logistic_probability(x: float, mean: float, log_scale: float) -> float:
    """P(x) of one 8-bit level under a discretised logistic, written out with math."""
    sigmoid = lambda t: 1 / (1 + math.exp(-t))
    s, half = math.exp(log_scale), 1 / 255
    upper = 1.0 if x > 1 - half else sigmoid((x + half - mean) / s)
    lower = 0.0 if x < -1 + half else sigmoid((x - half - mean) / s)
    return upper - lower


@pytest.mark.parametrize(("level", "mean", "log_scale"), [(128, 0.0, -2.0), (0, -0.9, -1.0), (255, 0.95, -3.0),
                                                          (60, 0.3, 0.5)])
def test_discretized_logistic_nll_by_hand(level: int, mean: float, log_scale: float) -> None:
    x = level / 127.5 - 1
    params = torch.tensor([mean, log_scale], dtype=torch.float64).view(1, 2, 1, 1)
    nll = discretized_logistic_nll(params, torch.tensor(x, dtype=torch.float64).view(1, 1, 1, 1))
    assert_close(nll, torch.tensor([-math.log(_logistic_probability(x, mean, log_scale))], dtype=torch.float64))


def test_discretized_logistic_is_a_distribution_over_the_256_levels() -> None:
    levels = torch.arange(256, dtype=torch.float64).view(256, 1, 1, 1) / 127.5 - 1
    params = torch.tensor([0.2, -2.5], dtype=torch.float64).view(1, 2, 1, 1).expand(256, 2, 1, 1)
    total = torch.exp(-discretized_logistic_nll(params, levels)).sum()
    assert_close(total, torch.tensor(1.0, dtype=torch.float64))


def test_bernoulli_nll_is_the_binary_cross_entropy_of_the_pixels_in_unit_range() -> None:
    logits, x = torch.randn(3, 1, 2, 2), torch.rand(3, 1, 2, 2) * 2 - 1
    bce = F.binary_cross_entropy_with_logits(logits, (x + 1) / 2, reduction="none").flatten(1).sum(1)
    assert_close(bernoulli_nll(logits, x), bce)
    assert_close(gaussian_kl(torch.zeros(3, 2), torch.zeros(3, 2)), torch.zeros(3))


def test_iwae_bound_by_hand() -> None:
    # one image, 1-d latent, q = N(0.5, 1), two samples with known log p(x|z)
    mu, logvar = torch.tensor([[0.5]]), torch.tensor([[0.0]])
    z = torch.tensor([[[1.0]], [[-1.0]]])  # (k=2, B=1, L=1)
    log_lik = torch.tensor([[-3.0], [-5.0]])  # (k, B)
    log_normal = lambda v, m: -0.5 * ((v - m) ** 2 + math.log(2 * math.pi))
    weights = [log_lik[i, 0].item() + log_normal(z[i].item(), 0.0) - log_normal(z[i].item(), 0.5) for i in range(2)]
    expected = math.log((math.exp(weights[0]) + math.exp(weights[1])) / 2)
    assert_close(iwae_bound(log_lik, z, mu, logvar), torch.tensor([expected]))
    # k = 1 is the single-sample ELBO estimate, and the k-sample bound is at least the mean of the k ELBO estimates
    assert_close(iwae_bound(log_lik[:1], z[:1], mu, logvar), torch.tensor([weights[0]]))
    assert iwae_bound(log_lik, z, mu, logvar).item() >= sum(weights) / 2


def test_the_penalty_runs_without_tf32_and_restores_the_setting() -> None:
    from pipeline.losses import ieee_fp32

    seen = []

    class Spy(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append((torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision))
            return x.sum(dim=(1, 2, 3))

    before = (torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision)
    gradient_penalty(Spy(), torch.randn(2, 1, 2, 2), torch.randn(2, 1, 2, 2))
    assert seen == [("ieee", "ieee")]
    assert (torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision) == before
    with pytest.raises(RuntimeError), ieee_fp32():
        raise RuntimeError("restored also when the block fails")
    assert torch.backends.cudnn.conv.fp32_precision == before[0]
