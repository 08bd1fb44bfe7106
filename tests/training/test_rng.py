"""RNG capture/restore: a resume on fewer or other visible GPUs restores the cell's own GPU state (faked on CPU)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from pipeline.training.distributed import World
from pipeline.training.rng import rng_state, set_rng_state


def test_cpu_round_trip_and_no_gpu_state() -> None:
    state = rng_state(torch.device("cpu"))
    assert state["cuda"] == []
    expected = (torch.rand(3), np.random.rand(), random.random())
    set_rng_state(state, torch.device("cpu"))
    actual = (torch.rand(3), np.random.rand(), random.random())
    assert torch.equal(expected[0], actual[0]) and expected[1:] == actual[1:]


@pytest.mark.parametrize(("saved", "index", "picked"), [
    (1, 0, 0),  # this version: the cell's device only, restored to whichever index it has now
    (4, 2, 2),  # an older checkpoint with every visible GPU: the cell's device picks its own
    (4, 0, 0),  # ... resumed with CUDA_VISIBLE_DEVICES=k: one GPU visible, cuda:0 (was IndexError)
    (2, 5, 1),  # more GPUs now than then: the last saved one, not an IndexError
])
def test_gpu_state_goes_to_the_cells_device(monkeypatch: pytest.MonkeyPatch, saved: int, index: int,
                                            picked: int) -> None:
    restored = []
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device: restored.append((int(state[0]), device)))
    state = rng_state(torch.device("cpu"))
    state["cuda"] = [torch.tensor([i], dtype=torch.uint8) for i in range(saved)]
    set_rng_state(state, torch.device("cuda", index))
    assert restored == [(picked, torch.device("cuda", index))]


def test_gpu_state_is_ignored_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda *a: pytest.fail("no GPU state on a CPU resume"))
    state = rng_state(torch.device("cpu"))
    state["cuda"] = [torch.zeros(4, dtype=torch.uint8)]
    set_rng_state(state, torch.device("cpu"))


@pytest.mark.parametrize(("visible", "local_rank", "expected"), [(8, 3, 3), (1, 3, 0), (2, 3, 1)])
def test_each_rank_uses_a_gpu_it_can_see(monkeypatch: pytest.MonkeyPatch, visible: int, local_rank: int,
                                         expected: int) -> None:
    monkeypatch.setattr(torch.cuda, "device_count", lambda: visible)
    world = World(rank=local_rank, size=4, local_rank=local_rank, local_size=4)
    assert world.device(torch.device("cuda")) == torch.device("cuda", expected)
    assert world.device(torch.device("cpu")) == torch.device("cpu")
