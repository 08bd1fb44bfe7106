"""On-device mini-batches from a seeded permutation, with a resumable state (no DataLoader, no per-sample Python)."""

from __future__ import annotations

import torch

from pipeline.models import to_float


class BatchStream:
    """Yields float batches in [-1, 1] from a uint8 (N, C, H, W) tensor kept on the training device.

    Each epoch is a fresh permutation drawn from a dedicated CPU generator; the last incomplete batch of
    an epoch is dropped. ``state_dict`` captures generator, permutation and position. Under torchrun every
    rank draws the same global batches and takes its ``shard`` of rows.
    """

    def __init__(self, images: torch.Tensor, *, batch_size: int, seed: int, shard: slice = slice(None),
                 memory_format: torch.memory_format = torch.contiguous_format) -> None:
        if batch_size > images.size(0):
            raise ValueError(f"batch size {batch_size} is larger than the dataset ({images.size(0)} images)")
        self.images = images
        self.batch_size = batch_size
        self.shard = shard
        self.memory_format = memory_format
        self.generator = torch.Generator().manual_seed(seed)
        self.permutation = self._new_permutation()
        self.position = 0

    def _new_permutation(self) -> torch.Tensor:
        return torch.randperm(self.images.size(0), generator=self.generator).to(self.images.device)

    def next(self) -> torch.Tensor:
        """This rank's rows (B / world size, C, H, W) of the next global batch, as float in [-1, 1] on the images'
        device."""
        if self.position + self.batch_size > self.permutation.numel():
            self.permutation, self.position = self._new_permutation(), 0
        index = self.permutation[self.position : self.position + self.batch_size][self.shard]
        self.position += self.batch_size
        return to_float(self.images.index_select(0, index)).contiguous(memory_format=self.memory_format)

    def state_dict(self) -> dict:
        return {
            "generator": self.generator.get_state(),
            "permutation": self.permutation.cpu(),
            "position": self.position,
        }

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.permutation = state["permutation"].to(self.images.device)
        self.position = state["position"]
