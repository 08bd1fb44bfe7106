"""Model registry: architecture name → builder of the networks a variant trains.

A builder takes the variant's model config plus the data's ``channels`` and ``resolution`` and returns a
dict of named modules (``generator``/``discriminator`` for GANs, ``vae`` for VAEs). ``ImageGenerator``
wraps whatever maps a latent code to an image so evaluation and export treat every family alike.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from pipeline.config import ConvVaeConfig, DcganConfig, ModelConfig, ResnetConfig
from pipeline.losses import LIKELIHOODS
from pipeline.models.dcgan import Discriminator, Generator, init_weights
from pipeline.models.resnet import ResnetDiscriminator, ResnetGenerator, init_resnet
from pipeline.models.vae import ConvVAE

Builder = Callable[..., dict[str, nn.Module]]


def build_dcgan(cfg: DcganConfig, *, channels: int, resolution: int) -> dict[str, nn.Module]:
    """DCGAN generator + discriminator, DCGAN-initialised."""
    generator = Generator(latent_dim=cfg.latent_dim, channels=channels, resolution=resolution, width=cfg.width)
    discriminator = Discriminator(
        channels=channels, resolution=resolution, width=cfg.width, norm=cfg.d_norm, spectral_norm=cfg.spectral_norm
    )
    generator.apply(init_weights)
    discriminator.apply(init_weights)
    return {"generator": generator, "discriminator": discriminator}


def build_resnet(cfg: ResnetConfig, *, channels: int, resolution: int) -> dict[str, nn.Module]:
    """SNGAN-style ResNet generator + discriminator (spectral norm on D unless disabled)."""
    generator = ResnetGenerator(latent_dim=cfg.latent_dim, channels=channels, resolution=resolution, width=cfg.width)
    discriminator = ResnetDiscriminator(channels=channels, resolution=resolution, width=cfg.width,
                                        spectral_norm=cfg.spectral_norm)
    generator.apply(init_resnet)
    discriminator.apply(init_resnet)
    return {"generator": generator, "discriminator": discriminator}


def build_conv_vae(cfg: ConvVaeConfig, *, channels: int, resolution: int) -> dict[str, nn.Module]:
    """Convolutional VAE; its decoder outputs the parameters of ``cfg.likelihood`` (default Bernoulli)."""
    per_channel = LIKELIHOODS[getattr(cfg, "likelihood", "bernoulli")].channels_per_channel
    return {"vae": ConvVAE(channels=channels, resolution=resolution, width=cfg.width, latent_dim=cfg.latent_dim,
                           out_channels=channels * per_channel)}


MODELS: dict[str, Builder] = {"dcgan": build_dcgan, "resnet": build_resnet, "conv-vae": build_conv_vae}


def build_model(cfg: ModelConfig, *, channels: int, resolution: int) -> dict[str, nn.Module]:
    """Look up ``cfg.name`` in the registry; an unknown name lists the valid ones."""
    if cfg.name not in MODELS:
        raise ValueError(f"'{cfg.name}' is not a supported model; choose one of: {', '.join(sorted(MODELS))}")
    return MODELS[cfg.name](cfg, channels=channels, resolution=resolution)


def _logistic_mean(x: torch.Tensor) -> torch.Tensor:
    """A discretised-logistic decoder's (B, 2C, R, R) parameters → its means (B, C, R, R), clamped to [-1, 1]."""
    return x[:, : x.size(1) // 2].clamp(-1, 1)


# How a sampling network's output becomes an image in [-1, 1].
OUTPUT_MAPS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": lambda x: x,  # a GAN generator ends in tanh
    "logits": lambda x: torch.sigmoid(x) * 2 - 1,  # a Bernoulli decoder: the likelihood's mean
    "logistic-mean": _logistic_mean,
}


class ImageGenerator(nn.Module):
    """z (B, latent) → images (B, C, R, R) in [-1, 1], for a GAN generator or a VAE decoder (see OUTPUT_MAPS)."""

    OUTPUTS = tuple(OUTPUT_MAPS)

    def __init__(self, net: nn.Module, *, latent_dim: int, output: str) -> None:
        super().__init__()
        if output not in self.OUTPUTS:
            raise ValueError(f"output must be one of {self.OUTPUTS}, got {output!r}")
        self.net = net
        self.latent_dim = latent_dim
        self.output = output

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return OUTPUT_MAPS[self.output](self.net(z))

    @torch.inference_mode()
    def sample(self, n: int, *, generator: torch.Generator, batch_size: int = 500) -> torch.Tensor:
        """``n`` uint8 images (n, C, R, R) on the CPU, from noise drawn with ``generator`` (CPU).

        All noise is drawn at once, so the images do not depend on ``batch_size``.
        """
        device = next(self.parameters()).device
        noise = torch.randn(n, self.latent_dim, generator=generator)  # (n, latent)
        return torch.cat([to_uint8(self(z.to(device))).cpu() for z in noise.split(batch_size)])


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] → uint8 in [0, 255]."""
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 images → float in [-1, 1] (one tensor op)."""
    return x.float().div_(127.5).sub_(1.0)
