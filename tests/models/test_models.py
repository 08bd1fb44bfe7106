"""Tiny-width shape tests of every architecture and the generator wrapper."""

from __future__ import annotations

import pytest
import torch

from pipeline.config import ConvVaeConfig, DcganConfig
from pipeline.models import ImageGenerator, build_model, to_float, to_uint8


@pytest.mark.parametrize("resolution", [8, 16, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("d_norm", ["batch", "layer", "none"])
def test_dcgan_shapes(resolution: int, channels: int, d_norm: str) -> None:
    nets = build_model(DcganConfig(width=4, latent_dim=5, d_norm=d_norm, spectral_norm=d_norm == "none"),
                       channels=channels, resolution=resolution)
    images = nets["generator"](torch.randn(3, 5))
    assert images.shape == (3, channels, resolution, resolution)
    assert images.min() >= -1 and images.max() <= 1
    assert nets["discriminator"](images).shape == (3,)


def test_spectral_norm_is_applied() -> None:
    nets = build_model(DcganConfig(width=4, spectral_norm=True, d_norm="none"), channels=1, resolution=16)
    convs = [m for m in nets["discriminator"].modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert convs and all(hasattr(m, "parametrizations") for m in convs)


@pytest.mark.parametrize("resolution", [8, 32])
def test_vae_shapes(resolution: int) -> None:
    vae = build_model(ConvVaeConfig(width=4, latent_dim=6), channels=3, resolution=resolution)["vae"]
    logits, mu, logvar = vae(torch.rand(2, 3, resolution, resolution) * 2 - 1)
    assert logits.shape == (2, 3, resolution, resolution)
    assert mu.shape == logvar.shape == (2, 6)


def test_unsupported_resolution() -> None:
    with pytest.raises(ValueError, match="power of two"):
        build_model(DcganConfig(width=4), channels=1, resolution=24)


def test_image_generator_sample_is_seeded_uint8() -> None:
    vae = build_model(ConvVaeConfig(width=4, latent_dim=3), channels=1, resolution=8)["vae"].eval()
    generator = ImageGenerator(vae.decoder, latent_dim=3, output="logits")
    a = generator.sample(10, generator=torch.Generator().manual_seed(1), batch_size=4)
    b = generator.sample(10, generator=torch.Generator().manual_seed(1), batch_size=10)
    assert a.dtype == torch.uint8 and a.shape == (10, 1, 8, 8)
    assert torch.equal(a, b)


def test_uint8_round_trip() -> None:
    x = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    assert torch.equal(to_uint8(to_float(x)), x)
