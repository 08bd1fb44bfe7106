"""Convolutional VAE (Kingma & Welling, 2014): a DCGAN-shaped encoder and decoder.

The encoder maps images in [-1, 1] to (mu, logvar); the decoder maps z to the parameters of a per-pixel likelihood
(``out_channels`` per image: C logits for a Bernoulli, 2C means and log-scales for a discretised logistic; see
``pipeline.losses.LIKELIHOODS``).
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.models.dcgan import Generator, num_upsamplings


class Encoder(nn.Module):
    """Image (B, C, R, R) → (mu, logvar), each (B, latent)."""

    def __init__(self, *, channels: int, resolution: int, width: int, latent_dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        c = width
        for _ in range(num_upsamplings(resolution) - 1):
            layers += [nn.Conv2d(c, c * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c * 2), nn.LeakyReLU(0.2, True)]
            c *= 2
        self.body = nn.Sequential(*layers, nn.Flatten())  # (B, c * 16)
        self.head = nn.Linear(c * 16, 2 * latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.head(self.body(x)).chunk(2, dim=1)  # (B, latent) each
        return mu, logvar.clamp(-30.0, 20.0)


class Decoder(nn.Module):
    """z (B, latent) → likelihood parameters (B, out_channels, R, R); the generator body without its tanh."""

    def __init__(self, *, out_channels: int, resolution: int, width: int, latent_dim: int) -> None:
        super().__init__()
        generator = Generator(latent_dim=latent_dim, channels=out_channels, resolution=resolution, width=width)
        self.latent_dim = latent_dim
        self.net = nn.Sequential(generator.stem, *list(generator.body)[:-1])  # drop Tanh: logits

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Body under the caller's autocast; the head in fp32: a bf16 mean's spacing on [0.5, 1) is 1/256, the
        discretised logistic's half bin, so a bf16 head would hand the likelihood rounded means."""
        x = self.net[:-1](z)
        with torch.autocast(device_type=x.device.type, enabled=False):
            return self.net[-1](x.float())  # (B, out_channels, R, R), fp32


class ConvVAE(nn.Module):
    """Encoder + reparameterisation + decoder."""

    def __init__(self, *, channels: int, resolution: int, width: int, latent_dim: int, out_channels: int) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = Encoder(channels=channels, resolution=resolution, width=width, latent_dim=latent_dim)
        self.decoder = Decoder(out_channels=out_channels, resolution=resolution, width=width, latent_dim=latent_dim)

    def forward(
        self, x: torch.Tensor, samples: int = 1
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """For images x (B, C, R, R) in [-1, 1] and k = ``samples`` codes per image: (likelihood parameters
        (k·B, out_channels, R, R), mu (B, L), logvar (B, L), codes z (k, B, L))."""
        mu, logvar = self.encoder(x)
        z = mu + torch.randn(samples, *mu.shape, device=mu.device, dtype=mu.dtype) * (0.5 * logvar).exp()  # (k, B, L)
        return self.decoder(z.flatten(0, 1)), mu, logvar, z
