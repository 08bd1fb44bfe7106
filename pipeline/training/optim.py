"""Optimizer registry: config → ``torch.optim`` instance."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from pipeline.config import OptimizerConfig

OPTIMIZERS: dict[str, Callable[[Iterable[torch.nn.Parameter], OptimizerConfig], torch.optim.Optimizer]] = {
    "adam": lambda params, cfg: torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay),
    "rmsprop": lambda params, cfg: torch.optim.RMSprop(params, lr=cfg.lr, weight_decay=cfg.weight_decay),
}


def build_optimizer(params: Iterable[torch.nn.Parameter], cfg: OptimizerConfig) -> torch.optim.Optimizer:
    """Registry lookup; an unknown name lists the valid ones."""
    if cfg.name not in OPTIMIZERS:
        raise ValueError(f"'{cfg.name}' is not a supported optimizer; choose one of: {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[cfg.name](params, cfg)
