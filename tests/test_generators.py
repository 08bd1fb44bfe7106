"""The generator file every later stage loads: each family's sampling network round-trips, and a file this version
cannot rebuild is bad input naming it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pipeline.config import ConvVaeConfig, DcganConfig, ModelConfig, ResnetConfig
from pipeline.errors import InputError
from pipeline.generators import export_generator, load_generator
from pipeline.models import ImageGenerator, build_model

META = {"channels": 1, "resolution": 16}
FAMILIES = [("gan", DcganConfig(width=4, latent_dim=8), "generator", "tanh"),
            ("gan", ResnetConfig(name="resnet", width=4, latent_dim=8), "generator", "tanh"),
            ("vae", ConvVaeConfig(width=4, latent_dim=8), "vae", "logits")]  # fmt: skip


def _export(path: Path, kind: str, model: ModelConfig, network: str, output: str) -> ImageGenerator:
    nets = build_model(model, **META)
    net = nets[network] if kind == "gan" else nets[network].decoder
    generator = ImageGenerator(net, latent_dim=model.latent_dim, output=output).eval()
    export_generator(path, generator, kind=kind, model=model.model_dump(mode="json"), meta=META)
    return generator


@pytest.mark.parametrize(("kind", "model", "network", "output"), FAMILIES)
def test_each_family_round_trips(tmp_path: Path, kind: str, model: ModelConfig, network: str, output: str) -> None:
    saved = _export(tmp_path / "generator.pt", kind, model, network, output)
    loaded, info = load_generator(tmp_path / "generator.pt")
    assert type(loaded.net) is type(saved.net) and info["model"]["name"] == model.name
    z = torch.randn(3, model.latent_dim)
    with torch.no_grad():
        torch.testing.assert_close(loaded(z), saved(z), rtol=0, atol=0)


def test_a_model_section_this_version_cannot_build_is_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "generator.pt"
    _export(path, *FAMILIES[0])
    state = torch.load(path, weights_only=True)
    state["model"] = {**state["model"], "name": "transformer"}
    torch.save(state, path)
    with pytest.raises(InputError, match=rf"{path}: its model section is not one this version builds"):
        load_generator(path)
