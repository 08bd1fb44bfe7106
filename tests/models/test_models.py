"""Tiny-width shape tests of every architecture and the generator wrapper."""

from __future__ import annotations

import pytest
import torch

from pipeline.config import ConvVaeConfig, DcganConfig, ResnetConfig
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
    logits, mu, logvar, z = vae(torch.rand(2, 3, resolution, resolution) * 2 - 1)
    assert logits.shape == (2, 3, resolution, resolution)
    assert mu.shape == logvar.shape == (2, 6) and z.shape == (1, 2, 6)


def test_vae_with_k_samples_and_a_logistic_decoder() -> None:
    vae = build_model(ConvVaeConfig(width=4, latent_dim=6, likelihood="logistic"), channels=3, resolution=16)["vae"]
    params, mu, _, z = vae(torch.rand(2, 3, 16, 16) * 2 - 1, samples=5)
    assert params.shape == (10, 6, 16, 16) and z.shape == (5, 2, 6) and mu.shape == (2, 6)  # means + log-scales
    images = ImageGenerator(vae.decoder, latent_dim=6, output="logistic-mean")(torch.randn(4, 6))
    assert images.shape == (4, 3, 16, 16) and images.min() >= -1 and images.max() <= 1


@pytest.mark.parametrize("resolution", [8, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_resnet_shapes(resolution: int, channels: int) -> None:
    nets = build_model(ResnetConfig(name="resnet", width=8, latent_dim=5), channels=channels, resolution=resolution)
    images = nets["generator"](torch.randn(3, 5))
    assert images.shape == (3, channels, resolution, resolution)
    assert images.min() >= -1 and images.max() <= 1
    assert nets["discriminator"](images).shape == (3,)
    up_blocks = sum(1 for m in nets["generator"].modules() if type(m).__name__ == "GenBlock")
    assert 4 * 2**up_blocks == resolution


def test_resnet_discriminator_is_spectrally_normalised() -> None:
    nets = build_model(ResnetConfig(name="resnet", width=8), channels=1, resolution=32)
    layers = [m for m in nets["discriminator"].modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert layers and all(hasattr(m, "parametrizations") for m in layers)
    plain = build_model(ResnetConfig(name="resnet", width=8, spectral_norm=False), channels=1, resolution=32)
    assert not any(hasattr(m, "parametrizations") for m in plain["discriminator"].modules())


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


def test_the_vae_decoder_head_stays_fp32_under_bf16_autocast() -> None:
    from pipeline.models.vae import Decoder

    torch.manual_seed(0)
    decoder = Decoder(out_channels=2, resolution=8, width=8, latent_dim=4).eval()
    z = torch.randn(3, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = decoder(z)
        body = decoder.net[:-1](z)
    assert body.dtype == torch.bfloat16 and out.dtype == torch.float32  # the body is lowered, the head is not
    assert torch.equal(out, decoder.net[-1](body.float()))
    assert torch.equal(decoder(z), decoder.net(z))  # without autocast: the plain fp32 network
