"""The GAN update: ``n_critic`` discriminator steps, then one generator step, with optional EMA."""

from __future__ import annotations

import torch
from torch import nn

from pipeline.config import GanVariant
from pipeline.losses import get_gan_loss, gradient_penalty
from pipeline.models import ImageGenerator
from pipeline.training.ema import EMA
from pipeline.training.optim import build_optimizer


class GanTrainer:
    """Owns G, D, their optimizers and the EMA; ``step`` consumes ``n_critic`` real batches."""

    def __init__(self, cfg: GanVariant, networks: dict[str, nn.Module], device: torch.device) -> None:
        self.cfg = cfg
        self.loss = get_gan_loss(cfg.loss)
        self.generator = networks["generator"].to(device).train()
        self.discriminator = networks["discriminator"].to(device).train()
        self.opt_g = build_optimizer(self.generator.parameters(), cfg.g_optimizer)
        self.opt_d = build_optimizer(self.discriminator.parameters(), cfg.d_optimizer)
        self.ema = EMA(self.generator, decay=cfg.ema.decay, start_step=cfg.ema.start_step) if cfg.ema.enabled else None
        self.latent_dim = cfg.model.latent_dim
        self.device = device
        self.steps_done = 0

    @property
    def batches_per_step(self) -> int:
        """Real batches one ``step`` consumes."""
        return self.cfg.n_critic

    def _noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, device=self.device)  # (B, latent)

    def step(self, real_batches: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """One generator update after ``n_critic`` critic updates; returns detached scalars."""
        out: dict[str, torch.Tensor] = {}
        for real in real_batches:  # each (B, C, R, R) in [-1, 1]
            with torch.no_grad():
                fake = self.generator(self._noise(real.size(0)))
            real_logits, fake_logits = self.discriminator(real), self.discriminator(fake)  # (B,), (B,)
            loss_d = self.loss.discriminator(real_logits, fake_logits)
            if self.loss.gradient_penalty:
                penalty = gradient_penalty(self.discriminator, real, fake)
                loss_d = loss_d + self.cfg.gp_weight * penalty
                out["gradient_penalty"] = penalty.detach()
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
        out.update(loss_d=loss_d.detach(), d_real=real_logits.detach().mean(), d_fake=fake_logits.detach().mean())

        fake_logits = self.discriminator(self.generator(self._noise(real_batches[0].size(0))))
        loss_g = self.loss.generator(fake_logits)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        self.steps_done += 1
        if self.ema is not None:
            self.ema.update(self.generator, self.steps_done)
        out["loss_g"] = loss_g.detach()
        return out

    def image_generator(self) -> ImageGenerator:
        """What evaluation samples from: the EMA generator when enabled."""
        net = self.ema.shadow if self.ema is not None else self.generator
        return ImageGenerator(net, latent_dim=self.latent_dim, output="tanh")

    def num_parameters(self) -> int:
        """Parameters of the sampling network (generator)."""
        return sum(p.numel() for p in self.generator.parameters())

    def state_dict(self) -> dict:
        return {
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "steps_done": self.steps_done,
        }

    def load_state_dict(self, state: dict) -> None:
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self.steps_done = state["steps_done"]
