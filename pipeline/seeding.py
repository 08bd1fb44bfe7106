"""One seed for ``random``, ``numpy`` and ``torch``, and the determinism switch."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int, *, deterministic: bool = True) -> torch.Generator:
    """Seed every RNG; with ``deterministic`` ask torch for deterministic kernels. Returns a seeded CPU generator."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    if torch.backends.cudnn.is_available():
        torch.backends.cudnn.benchmark = not deterministic
        torch.backends.cudnn.deterministic = deterministic
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator
