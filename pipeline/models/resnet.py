"""SNGAN-style ResNet generator and discriminator (Miyato et al., 2018; Gulrajani et al., 2017, appendix), for any
power-of-two resolution ≥ 8 and any GAN loss.

Generator: z → Linear → (width, 4, 4) → [ResBlockUp ×2] → BN, ReLU, conv3×3 → tanh image.
Discriminator: image → OptimizedBlock (↓2) → [ResBlockDown ↓2 until 8×8] → 2 × ResBlock → ReLU → sum over
space → Linear → one logit; spectral norm on every conv and linear layer by default.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from pipeline.models.dcgan import num_upsamplings


class GenBlock(nn.Module):
    """Pre-activation residual block that doubles the resolution: BN-ReLU-up-conv-BN-ReLU-conv + up-conv1×1."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(c_in), nn.Conv2d(c_in, c_out, 3, 1, 1)
        self.bn2, self.conv2 = nn.BatchNorm2d(c_out), nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x)), scale_factor=2, mode="nearest")  # (B, c_in, 2H, 2W)
        h = self.conv2(F.relu(self.bn2(self.conv1(h))))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))  # (B, c_out, 2H, 2W)


class ResnetGenerator(nn.Module):
    """z (B, latent) → images (B, C, R, R) in [-1, 1]."""

    def __init__(self, *, latent_dim: int, channels: int, resolution: int, width: int) -> None:
        super().__init__()
        self.latent_dim, self.width = latent_dim, width
        self.stem = nn.Linear(latent_dim, width * 4 * 4)
        self.blocks = nn.Sequential(*(GenBlock(width, width) for _ in range(num_upsamplings(resolution))))
        self.head = nn.Sequential(nn.BatchNorm2d(width), nn.ReLU(), nn.Conv2d(width, channels, 3, 1, 1), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.stem(z).view(z.size(0), self.width, 4, 4)  # (B, width, 4, 4)
        return self.head(self.blocks(x))  # (B, C, R, R)


class DiscBlock(nn.Module):
    """ReLU-conv-ReLU-conv (+ avg-pool ↓2) with a conv1×1 shortcut; ``first``: no leading ReLU (the input image)."""

    def __init__(self, c_in: int, c_out: int, *, down: bool, first: bool, sn) -> None:
        super().__init__()
        self.down, self.first = down, first
        self.conv1, self.conv2 = sn(nn.Conv2d(c_in, c_out, 3, 1, 1)), sn(nn.Conv2d(c_out, c_out, 3, 1, 1))
        self.shortcut = sn(nn.Conv2d(c_in, c_out, 1)) if (down or c_in != c_out) else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(x if self.first else F.relu(x))
        h = self.conv2(F.relu(h))
        if self.down:
            h = F.avg_pool2d(h, 2)
        # the first block pools before its shortcut conv (cheaper, as in SNGAN's OptimizedBlock)
        s = self.shortcut(F.avg_pool2d(x, 2)) if (self.first and self.down) else self.shortcut(x)
        if self.down and not self.first:
            s = F.avg_pool2d(s, 2)
        return h + s


class ResnetDiscriminator(nn.Module):
    """Images (B, C, R, R) → one logit per sample (B,)."""

    def __init__(self, *, channels: int, resolution: int, width: int, spectral_norm: bool = True) -> None:
        super().__init__()
        sn = _spectral_norm if spectral_norm else (lambda m: m)
        n_down = max(1, num_upsamplings(resolution) - 1)  # down to 8×8 (4×4 from an 8×8 input)
        blocks = [DiscBlock(channels, width, down=True, first=True, sn=sn)]
        blocks += [DiscBlock(width, width, down=True, first=False, sn=sn) for _ in range(n_down - 1)]
        blocks += [DiscBlock(width, width, down=False, first=False, sn=sn) for _ in range(2)]
        self.blocks = nn.Sequential(*blocks)
        self.head = sn(nn.Linear(width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.blocks(x)).sum(dim=(2, 3))  # (B, width)
        return self.head(h).squeeze(1)  # (B,)


def init_resnet(module: nn.Module) -> None:
    """Xavier-uniform weights (gain √2 on 3×3 convs, 1 elsewhere), zero biases, as in the SNGAN code."""
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        weight = module.parametrizations.weight.original if hasattr(module, "parametrizations") else module.weight
        gain = math.sqrt(2) if isinstance(module, nn.Conv2d) and module.kernel_size == (3, 3) else 1.0
        nn.init.xavier_uniform_(weight, gain)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
