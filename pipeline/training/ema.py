"""Exponential moving average of a model's weights (Yazıcı et al., 2019), evaluated instead of the raw generator."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """Keeps ``shadow`` ← decay·shadow + (1 − decay)·model after ``start_step``; a plain copy before it."""

    def __init__(self, model: nn.Module, *, decay: float, start_step: int = 0) -> None:
        self.decay = decay
        self.start_step = start_step
        self.shadow = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Average parameters; copy buffers (BatchNorm statistics)."""
        weight = 0.0 if step < self.start_step else self.decay
        torch._foreach_lerp_(list(self.shadow.parameters()), [p.detach() for p in model.parameters()], 1.0 - weight)
        for ema_b, b in zip(self.shadow.buffers(), model.buffers(), strict=True):
            ema_b.copy_(b)

    def state_dict(self) -> dict:
        return self.shadow.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.shadow.load_state_dict(state)
