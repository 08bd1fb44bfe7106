"""One seed for ``random``, ``numpy`` and ``torch``, and the determinism switch."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int, *, deterministic: bool = True) -> torch.Generator:
    """Seed every RNG; with ``deterministic`` ask torch for deterministic kernels (warn where there is none).
    Returns a seeded CPU generator.

    ``torch.set_deterministic_debug_mode`` sets the same flag as ``torch.use_deterministic_algorithms(...,
    warn_only=True)`` without importing Inductor's config (~2 s of every stage's start-up on 2 cores); a compiled
    model gets Inductor's flag from :meth:`pipeline.training.runtime.Runtime.parallel`.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.set_deterministic_debug_mode("warn" if deterministic else "default")
    if torch.backends.cudnn.is_available():
        torch.backends.cudnn.benchmark = not deterministic
        torch.backends.cudnn.deterministic = deterministic
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator
