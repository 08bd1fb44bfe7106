"""Optimizer registry: config → ``torch.optim`` instance."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from pipeline.config import OptimizerConfig

Factory = Callable[[list[torch.nn.Parameter], OptimizerConfig, bool], torch.optim.Optimizer]

# ``on_gpu``: Adam's fused CUDA kernel (one launch for all parameters, and no host sync in GradScaler.step);
# RMSprop has no fused kernel and takes torch's default there (foreach). On CPU both run torch's default loop.
OPTIMIZERS: dict[str, Factory] = {
    "adam": lambda params, cfg, on_gpu: torch.optim.Adam(
        params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay, fused=on_gpu or None),
    "rmsprop": lambda params, cfg, on_gpu: torch.optim.RMSprop(params, lr=cfg.lr, weight_decay=cfg.weight_decay),
}


def build_optimizer(params: Iterable[torch.nn.Parameter], cfg: OptimizerConfig) -> torch.optim.Optimizer:
    """Registry lookup; an unknown name lists the valid ones."""
    if cfg.name not in OPTIMIZERS:
        raise ValueError(f"'{cfg.name}' is not a supported optimizer; choose one of: {', '.join(OPTIMIZERS)}")
    params = list(params)
    return OPTIMIZERS[cfg.name](params, cfg, bool(params) and params[0].is_cuda)
