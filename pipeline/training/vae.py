"""The VAE update: one optimizer step on the negative β-ELBO."""

from __future__ import annotations

import torch
from torch import nn

from pipeline.config import VaeVariant
from pipeline.losses import vae_elbo
from pipeline.models import ImageGenerator
from pipeline.training.optim import build_optimizer


class VaeTrainer:
    """Owns the VAE and its optimizer; ``step`` consumes one real batch."""

    batches_per_step = 1

    def __init__(self, cfg: VaeVariant, networks: dict[str, nn.Module], device: torch.device) -> None:
        self.cfg = cfg
        self.vae = networks["vae"].to(device).train()
        self.opt = build_optimizer(self.vae.parameters(), cfg.optimizer)
        self.steps_done = 0

    def step(self, real_batches: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """One ELBO step on a batch in [-1, 1]; returns detached scalars."""
        (real,) = real_batches  # (B, C, R, R)
        logits, mu, logvar = self.vae(real)
        terms = vae_elbo(logits, (real + 1) / 2, mu, logvar, beta=self.cfg.beta)
        self.opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        self.opt.step()
        self.steps_done += 1
        return {name: value.detach() for name, value in terms.items()}

    def image_generator(self) -> ImageGenerator:
        """The decoder, mapping prior samples to the likelihood's mean image."""
        return ImageGenerator(self.vae.decoder, latent_dim=self.vae.latent_dim, output="logits")

    def num_parameters(self) -> int:
        """Parameters of the sampling network (decoder)."""
        return sum(p.numel() for p in self.vae.decoder.parameters())

    def state_dict(self) -> dict:
        return {"vae": self.vae.state_dict(), "opt": self.opt.state_dict(), "steps_done": self.steps_done}

    def load_state_dict(self, state: dict) -> None:
        self.vae.load_state_dict(state["vae"])
        self.opt.load_state_dict(state["opt"])
        self.steps_done = state["steps_done"]
