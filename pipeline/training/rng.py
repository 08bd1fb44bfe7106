"""Capture and restore every RNG state a training step touches (torch CPU, the cell's GPU, numpy, random)."""

from __future__ import annotations

import random

import numpy as np
import torch


def rng_state(device: torch.device) -> dict:
    """RNG states as tensors and plain values (loadable with ``weights_only=True``).

    Of the GPUs only the cell's own: a resume may see fewer or other GPUs (``CUDA_VISIBLE_DEVICES=k``, Ray).
    """
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": [torch.cuda.get_rng_state(device)] if device.type == "cuda" else [],
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2])},
        "python": list(random.getstate()[1]),
    }


def set_rng_state(state: dict, device: torch.device) -> None:
    """Restore what :func:`rng_state` captured; the GPU state goes to the cell's device, whichever index it has now.

    Checkpoints of earlier versions hold one state per visible GPU: the cell's device index picks its own.
    """
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and state["cuda"]:
        saved = state["cuda"]
        index = 0 if len(saved) == 1 else min(device.index or 0, len(saved) - 1)
        torch.cuda.set_rng_state(saved[index], device)
    keys = state["numpy"]["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, state["numpy"]["pos"], 0, 0.0))
    random.setstate((3, tuple(state["python"]), None))
