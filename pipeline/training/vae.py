"""The VAE update: one optimizer step on a bound of the log-likelihood (β-ELBO or IWAE) under the decoder's
likelihood (Bernoulli or discretised logistic)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from pipeline.config import VaeVariant
from pipeline.losses import LIKELIHOODS, Likelihood, gaussian_kl, iwae_bound
from pipeline.models import ImageGenerator
from pipeline.training.optim import build_optimizer
from pipeline.training.runtime import Runtime

Objective = Callable[[nn.Module, torch.Tensor, Likelihood, VaeVariant], dict[str, torch.Tensor]]


def elbo_terms(model: nn.Module, real: torch.Tensor, likelihood: Likelihood, cfg: VaeVariant) -> dict[str, torch.Tensor]:
    """Negative β-ELBO with one reparameterised sample: reconstruction NLL + β·KL (means over the batch)."""
    params, mu, logvar, _ = model(real)
    recon = likelihood.nll(params.float(), real)  # (B,)
    kl = gaussian_kl(mu.float(), logvar.float())  # (B,)
    return {"loss": (recon + cfg.beta * kl).mean(), "recon": recon.mean(), "kl": kl.mean()}


def iwae_terms(model: nn.Module, real: torch.Tensor, likelihood: Likelihood, cfg: VaeVariant) -> dict[str, torch.Tensor]:
    """Negative IWAE bound with ``cfg.k`` samples per image (Burda et al., 2016); recon and kl are logged for
    comparison with the ELBO variants."""
    params, mu, logvar, z = model(real, cfg.k)  # params (k·B, …), z (k, B, L)
    k, batch = z.shape[:2]
    log_likelihood = -likelihood.nll(params.float(), real.repeat(k, 1, 1, 1)).view(k, batch)  # (k, B)
    bound = iwae_bound(log_likelihood, z.float(), mu.float(), logvar.float())  # (B,)
    kl = gaussian_kl(mu.float(), logvar.float())  # (B,)
    return {"loss": -bound.mean(), "recon": -log_likelihood.mean(), "kl": kl.mean()}


OBJECTIVES: dict[str, Objective] = {"elbo": elbo_terms, "iwae": iwae_terms}


class VaeTrainer:
    """Owns the VAE, its optimizer and loss scaler; ``step`` consumes one real batch."""

    batches_per_step = 1

    def __init__(self, cfg: VaeVariant, networks: dict[str, nn.Module], runtime: Runtime) -> None:
        self.cfg = cfg
        self.likelihood = LIKELIHOODS[cfg.model.likelihood]
        self.objective = OBJECTIVES[cfg.objective]
        self.vae = runtime.place(networks["vae"])
        self.model = runtime.parallel(self.vae)  # what the forward pass calls
        self.networks = {"vae": self.vae}
        self.opt = build_optimizer(self.vae.parameters(), cfg.optimizer)
        self.scaler = runtime.precision.scaler()
        self.autocast = runtime.precision.autocast
        self.steps_done = 0

    def step(self, real_batches: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """One step on a batch in [-1, 1]; returns detached fp32 scalars."""
        (real,) = real_batches  # (B, C, R, R)
        with self.autocast():
            terms = self.objective(self.model, real, self.likelihood, self.cfg)
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(terms["loss"]).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        self.steps_done += 1
        return {name: value.detach() for name, value in terms.items()}

    def image_generator(self) -> ImageGenerator:
        """The decoder, mapping prior samples to the likelihood's mean image."""
        return ImageGenerator(self.vae.decoder, latent_dim=self.vae.latent_dim, output=self.likelihood.output)

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
