"""The GAN update: ``n_critic`` discriminator steps, then one generator step, with optional EMA."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from pipeline.config import GanVariant
from pipeline.losses import PENALTIES, get_gan_loss
from pipeline.models import ImageGenerator
from pipeline.training.distributed import no_sync
from pipeline.training.ema import EMA
from pipeline.training.optim import build_optimizer
from pipeline.training.runtime import Runtime


@contextmanager
def frozen(parameters: list[nn.Parameter]) -> Iterator[None]:
    """Autograd computes no gradients for ``parameters`` inside the block (their inputs' gradients still flow)."""
    for parameter in parameters:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter in parameters:
            parameter.requires_grad_(True)


class GanTrainer:
    """Owns G, D, their optimizers, loss scalers and the EMA; ``step`` consumes ``n_critic`` real batches.

    ``generator``/``discriminator`` are the plain modules (saved, exported, averaged); ``g``/``d`` what the
    forward passes call (DDP-wrapped under torchrun, compiled when asked).
    """

    def __init__(self, cfg: GanVariant, networks: dict[str, nn.Module], runtime: Runtime) -> None:
        self.cfg = cfg
        self.loss = get_gan_loss(cfg.loss)
        self.generator = runtime.place(networks["generator"])
        self.discriminator = runtime.place(networks["discriminator"])
        self.g = runtime.parallel(self.generator)
        # Compiled double backward (the gradient penalty's) is unsupported: such a critic runs eagerly.
        self.d = runtime.parallel(self.discriminator, compile=not self.loss.gradient_penalty)
        self.networks = {"generator": self.generator, "discriminator": self.discriminator}
        self._critic_weights = list(self.discriminator.parameters())
        self.opt_g = build_optimizer(self.generator.parameters(), cfg.g_optimizer)
        self.opt_d = build_optimizer(self.discriminator.parameters(), cfg.d_optimizer)
        self.scaler_g, self.scaler_d = runtime.precision.scaler(), runtime.precision.scaler()
        self.autocast = runtime.precision.autocast
        self.ema = EMA(self.generator, decay=cfg.ema.decay, start_step=cfg.ema.start_step) if cfg.ema.enabled else None
        self.latent_dim = cfg.model.latent_dim
        self.device = runtime.device
        self.steps_done = 0

    @property
    def batches_per_step(self) -> int:
        """Real batches one ``step`` consumes."""
        return self.cfg.n_critic

    def _noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, device=self.device)  # (B, latent)

    def step(self, real_batches: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """One generator update after ``n_critic`` critic updates; returns detached fp32 scalars."""
        out: dict[str, torch.Tensor] = {}
        for real in real_batches:  # each (B, C, R, R) in [-1, 1]
            with torch.no_grad(), self.autocast():
                fake = self.g(self._noise(real.size(0)))
            with self.autocast():
                real_logits, fake_logits = self.d(real).float(), self.d(fake).float()  # (B,), (B,)
                loss_d = self.loss.discriminator(real_logits, fake_logits)
            if self.loss.penalty is not None:
                penalty = PENALTIES[self.loss.penalty](self.d, real, fake)  # fp32, outside autocast
                loss_d = loss_d + self.cfg.gp_weight * penalty
                out["gradient_penalty"] = penalty.detach()
            self.opt_d.zero_grad(set_to_none=True)
            self.scaler_d.scale(loss_d).backward()
            self.scaler_d.step(self.opt_d)
            self.scaler_d.update()
            if self.loss.weight_clip:  # WGAN's crude Lipschitz constraint (Arjovsky et al., 2017)
                with torch.no_grad():
                    torch._foreach_clamp_min_(self._critic_weights, -self.cfg.clip_value)
                    torch._foreach_clamp_max_(self._critic_weights, self.cfg.clip_value)
        out.update(loss_d=loss_d.detach(), d_real=real_logits.detach().mean(), d_fake=fake_logits.detach().mean())

        # the critic's weights get no gradients in the generator's step (they would be discarded), nor averaged
        with no_sync(self.d), frozen(self._critic_weights):
            with self.autocast():
                fake_logits = self.d(self.g(self._noise(real_batches[0].size(0)))).float()
                loss_g = self.loss.generator(fake_logits)
            self.opt_g.zero_grad(set_to_none=True)
            self.scaler_g.scale(loss_g).backward()
        self.scaler_g.step(self.opt_g)
        self.scaler_g.update()
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
            "scaler_g": self.scaler_g.state_dict(),
            "scaler_d": self.scaler_d.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "steps_done": self.steps_done,
        }

    def load_state_dict(self, state: dict) -> None:
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.scaler_g.load_state_dict(state["scaler_g"])
        self.scaler_d.load_state_dict(state["scaler_d"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self.steps_done = state["steps_done"]
