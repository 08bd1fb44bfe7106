"""Capture and restore every RNG state a training step touches (torch CPU/CUDA, numpy, random)."""

from __future__ import annotations

import random

import numpy as np
import torch


def rng_state() -> dict:
    """RNG states as tensors and plain values (loadable with ``weights_only=True``)."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2])},
        "python": list(random.getstate()[1]),
    }


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    keys = state["numpy"]["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, state["numpy"]["pos"], 0, 0.0))
    random.setstate((3, tuple(state["python"]), None))
