"""The VAE update: one optimizer step on the negative β-ELBO."""

from __future__ import annotations

import torch
from torch import nn

from pipeline.config import VaeVariant
from pipeline.losses import vae_elbo
from pipeline.models import ImageGenerator
from pipeline.training.optim import build_optimizer
from pipeline.training.runtime import Runtime


class VaeTrainer:
    """Owns the VAE, its optimizer and loss scaler; ``step`` consumes one real batch."""

    batches_per_step = 1

    def __init__(self, cfg: VaeVariant, networks: dict[str, nn.Module], runtime: Runtime) -> None:
        self.cfg = cfg
        self.vae = runtime.place(networks["vae"])
        self.model = runtime.parallel(self.vae)  # what the forward pass calls
        self.networks = {"vae": self.vae}
        self.opt = build_optimizer(self.vae.parameters(), cfg.optimizer)
        self.scaler = runtime.precision.scaler()
        self.autocast = runtime.precision.autocast
        self.steps_done = 0

    def step(self, real_batches: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """One ELBO step on a batch in [-1, 1]; returns detached fp32 scalars."""
        (real,) = real_batches  # (B, C, R, R)
        with self.autocast():
            logits, mu, logvar = self.model(real)
        terms = vae_elbo(logits.float(), (real + 1) / 2, mu.float(), logvar.float(), beta=self.cfg.beta)
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(terms["loss"]).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        self.steps_done += 1
        return {name: value.detach() for name, value in terms.items()}

    def image_generator(self) -> ImageGenerator:
        """The decoder, mapping prior samples to the likelihood's mean image."""
        return ImageGenerator(self.vae.decoder, latent_dim=self.vae.latent_dim, output="logits")

    def num_parameters(self) -> int:
        """Parameters of the sampling network (decoder)."""
        return sum(p.numel() for p in self.vae.decoder.parameters())

    def state_dict(self) -> dict:
        return {"vae": self.vae.state_dict(), "opt": self.opt.state_dict(), "scaler": self.scaler.state_dict(),
                "steps_done": self.steps_done}

    def load_state_dict(self, state: dict) -> None:
        self.vae.load_state_dict(state["vae"])
        self.opt.load_state_dict(state["opt"])
        self.scaler.load_state_dict(state["scaler"])
        self.steps_done = state["steps_done"]
