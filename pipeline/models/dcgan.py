"""DCGAN-style generator and discriminator for any power-of-two resolution ≥ 8 (Radford et al., 2016).

The generator maps z (B, latent) to images (B, C, R, R) in [-1, 1]; the discriminator maps images to one
logit per sample. Width and resolution are parameters: channels double at every halving of resolution.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from pipeline.config import is_power_of_two


def num_upsamplings(resolution: int) -> int:
    """Stride-2 stages between the 4×4 base and ``resolution`` (32 → 3)."""
    if resolution < 8 or not is_power_of_two(resolution):
        raise ValueError(f"resolution must be a power of two >= 8, got {resolution}")
    return int(math.log2(resolution)) - 2


class Generator(nn.Module):
    """z → Linear → (c0, 4, 4) → [ConvT ×2 upsampling] → tanh image."""

    def __init__(self, *, latent_dim: int, channels: int, resolution: int, width: int) -> None:
        super().__init__()
        n_up = num_upsamplings(resolution)
        c0 = width * 2 ** (n_up - 1)
        self.latent_dim = latent_dim
        self.stem = nn.Sequential(
            nn.Linear(latent_dim, c0 * 4 * 4, bias=False), nn.Unflatten(1, (c0, 4, 4)), nn.BatchNorm2d(c0), nn.ReLU(True)
        )
        blocks: list[nn.Module] = []
        c = c0
        for _ in range(n_up - 1):
            blocks += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c // 2), nn.ReLU(True)]
            c //= 2
        blocks += [nn.ConvTranspose2d(c, channels, 4, 2, 1), nn.Tanh()]
        self.body = nn.Sequential(*blocks)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.stem(z)  # (B, c0, 4, 4)
        return self.body(x)  # (B, C, R, R)


def _norm(kind: str, channels: int, size: int) -> nn.Module:
    """Normalisation between discriminator convs; 'layer' normalises each sample over (C, H, W)."""
    factories = {
        "batch": lambda: nn.BatchNorm2d(channels),
        "layer": lambda: nn.GroupNorm(1, channels),
        "none": nn.Identity,
    }
    return factories[kind]()


class Discriminator(nn.Module):
    """Image → [Conv stride 2 ×] → (c, 4, 4) → Linear → one logit per sample."""

    def __init__(
        self, *, channels: int, resolution: int, width: int, norm: str = "batch", spectral_norm: bool = False
    ) -> None:
        super().__init__()
        sn = _spectral_norm if spectral_norm else (lambda m: m)
        n_down = num_upsamplings(resolution)
        layers: list[nn.Module] = [sn(nn.Conv2d(channels, width, 4, 2, 1)), nn.LeakyReLU(0.2, True)]
        c, size = width, resolution // 2
        for _ in range(n_down - 1):
            layers += [sn(nn.Conv2d(c, c * 2, 4, 2, 1)), _norm(norm, c * 2, size // 2), nn.LeakyReLU(0.2, True)]
            c, size = c * 2, size // 2
        layers += [nn.Flatten(), sn(nn.Linear(c * 4 * 4, 1))]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)  # (B,)


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: N(0, 0.02) convs, N(1, 0.02) norm scales."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        weight = module.parametrizations.weight.original if hasattr(module, "parametrizations") else module.weight
        nn.init.normal_(weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
