"""The zoo beyond the default grid trains end to end: WGAN (clipping), DRAGAN, the ResNet backbone with any loss,
IWAE and the discretised-logistic VAE; their configs are validated with clear errors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from pipeline.config import ResnetConfig, load_params, parse_params
from pipeline.errors import ConfigError
from pipeline.generators import load_generator
from pipeline.layout import list_steps
from pipeline.training import checkpoint as ckpt
from pipeline.training.loop import train_cell
from tests.conftest import tiny_params, write_params, write_prepared

VARIANTS = {
    "wgan": {"kind": "gan", "loss": "wgan", "n_critic": 2, "clip_value": 0.02, "model": {"width": 4, "latent_dim": 8},
             "g_optimizer": {"name": "rmsprop", "lr": 5.0e-5}, "d_optimizer": {"name": "rmsprop", "lr": 5.0e-5}},
    "dragan": {"kind": "gan", "loss": "dragan", "model": {"width": 4, "latent_dim": 8, "d_norm": "layer"}},
    "resnet-hinge": {"kind": "gan", "loss": "hinge", "model": {"name": "resnet", "width": 8, "latent_dim": 8},
                     "g_optimizer": {"lr": 2.0e-4, "betas": [0.0, 0.9]}, "d_optimizer": {"lr": 4.0e-4, "betas": [0.0, 0.9]},
                     "ema": {"enabled": True, "decay": 0.9}},
    "resnet-wgan-gp": {"kind": "gan", "loss": "wgan-gp", "model": {"name": "resnet", "width": 8, "latent_dim": 8}},
    "iwae": {"kind": "vae", "objective": "iwae", "k": 3, "model": {"width": 4, "latent_dim": 4}},
    "vae-logistic": {"kind": "vae", "model": {"width": 4, "latent_dim": 4, "likelihood": "logistic"}},
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variant_trains_and_exports_a_sampler(workdir: Path, variant: str) -> None:
    write_prepared(workdir)
    raw = tiny_params(grid={"variants": [variant], "seeds": [0]}, variants={variant: VARIANTS[variant]})
    params = load_params(write_params(workdir / "params.yaml", raw))
    summary = train_cell(params, variant, 0, progress=False)
    assert summary.status == "ok", summary.reason
    generator, _ = load_generator(Path(f"runs/{variant}-0/generator.pt"))
    images = generator(torch.randn(5, generator.latent_dim))
    assert images.shape == (5, 1, 8, 8) and images.min() >= -1 and images.max() <= 1
    history = ckpt.load_checkpoint(list_steps(Path(f"runs/{variant}-0/checkpoints"))[-1][1])["history"]
    if VARIANTS[variant].get("loss") in ("dragan", "wgan-gp"):
        # logged every step and computed: a real critic's input gradients never have norm exactly 1 everywhere
        penalties = [row["gradient_penalty"] for row in history]
        assert len(penalties) == 6 and all(math.isfinite(v) and v > 0 for v in penalties)
    if variant == "wgan":  # every critic weight inside the clipping box after training
        critic = ckpt.load_checkpoint(list_steps(Path("runs/wgan-0/checkpoints"))[-1][1])["trainer"]
        assert all(t.abs().max() <= 0.02 + 1e-7 for t in critic["discriminator"].values() if t.is_floating_point())


def test_model_sections_pick_the_backbone() -> None:
    raw = tiny_params(variants={"a": {"kind": "gan", "loss": "ns", "model": {"width": 4}},
                                "b": {"kind": "gan", "loss": "hinge", "model": {"name": "resnet"}}},
                      grid={"variants": ["a", "b"], "seeds": [0]})
    params = parse_params(raw)
    assert params.variant("a").model.name == "dcgan" and isinstance(params.variant("b").model, ResnetConfig)
    assert params.variant("b").model.width == 128 and params.variant("b").model.spectral_norm


@pytest.mark.parametrize(("section", "message"), [
    ({"kind": "gan", "loss": "ns", "model": {"name": "stylegan"}}, "variants.x.model"),
    ({"kind": "gan", "loss": "dragan"}, "batch norm mixes samples and breaks the per-sample gradient penalty of dragan"),
    ({"kind": "vae", "objective": "iwae", "beta": 4.0}, "the IWAE bound has no KL weight"),
    ({"kind": "vae", "model": {"likelihood": "gaussian"}}, "variants.x.model.likelihood"),
    ({"kind": "gan", "loss": "wgan", "clip_value": 0}, "variants.x.clip_value: Input should be greater than 0"),
])
def test_bad_variant_sections_are_refused(section: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        parse_params(tiny_params(variants={"x": section}, grid={"variants": ["x"], "seeds": [0]}))


def test_gpu_grid_file_is_valid_and_covers_the_zoo() -> None:
    from pipeline.losses import GAN_LOSSES, LIKELIHOODS
    from tests.conftest import REPO

    params = load_params(REPO / "params-gpu.yaml")
    assert len(params.grid.seeds) == 3 and params.train.device == "cuda"
    assert params.evaluate.extractors[0] == "inception-v3-compat"
    variants = [params.variant(v) for v in params.grid.variants]
    losses = {v.loss for v in variants if v.kind == "gan"}
    assert losses >= set(GAN_LOSSES) - {"minimax"}  # minimax (saturating) only as a didactic baseline
    assert {v.model.name for v in variants if v.kind == "gan"} == {"dcgan", "resnet"}
    assert {v.model.likelihood for v in variants if v.kind == "vae"} == set(LIKELIHOODS)
    assert {v.objective for v in variants if v.kind == "vae"} == {"elbo", "iwae"}


@pytest.mark.parametrize("variant", ["gan", "resnet-wgan-gp"])
def test_the_generator_step_skips_critic_gradients_with_identical_weights(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variant: str) -> None:
    from contextlib import nullcontext

    from pipeline.training import gan

    calls = []
    real_frozen = gan.frozen

    def spy(parameters):
        calls.append(len(parameters))
        return real_frozen(parameters)

    weights = {}
    for name, context in (("frozen", spy), ("reference", lambda parameters: nullcontext())):
        folder = tmp_path / name
        folder.mkdir()
        monkeypatch.chdir(folder)
        monkeypatch.setattr(gan, "frozen", context)
        write_prepared(folder)
        variants = {variant: VARIANTS[variant]} if variant in VARIANTS else None
        raw = tiny_params(grid={"variants": [variant], "seeds": [0]}, **({"variants": variants} if variants else {}))
        params = load_params(write_params(folder / "params.yaml", raw))
        assert train_cell(params, variant, 0, progress=False).status == "ok"
        weights[name] = torch.load(folder / f"runs/{variant}-0/generator.pt", weights_only=True)["state_dict"]
    assert calls and all(n > 0 for n in calls)  # used at every generator step
    assert all(torch.equal(weights["frozen"][k], weights["reference"][k]) for k in weights["reference"])
