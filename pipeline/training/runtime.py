"""Where and how a cell trains: device, precision, data-parallel world, memory format, compilation."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from pipeline.errors import InputError
from pipeline.training.distributed import World
from pipeline.training.precision import Precision, resolve_precision


def resolve_device(name: str) -> torch.device:
    """``auto`` → cuda when available, else cpu; asking for cuda without one is bad input."""
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("train.device: 'cuda' requested but no CUDA device is available")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


@dataclass(frozen=True)
class Runtime:
    """What the trainers need to place, wrap and run their networks."""

    device: torch.device
    precision: Precision
    world: World
    compile: bool = False

    @classmethod
    def create(cls, *, device: str, precision: str, compile: bool, world: World | None = None) -> Runtime:
        world = world or World()
        resolved = world.device(resolve_device(device))
        return cls(resolved, resolve_precision(precision, resolved), world, compile)

    @property
    def memory_format(self) -> torch.memory_format:
        """channels_last on GPU (tensor-core friendly convolutions), the default layout on CPU."""
        return torch.channels_last if self.device.type == "cuda" else torch.contiguous_format

    def place(self, module: nn.Module) -> nn.Module:
        """``module`` on the device in the training memory format, in train mode (the object that is saved)."""
        return module.to(self.device, memory_format=self.memory_format).train()

    def parallel(self, module: nn.Module, *, compile: bool = True) -> nn.Module:
        """What forward passes call: DDP around ``module`` under torchrun, compiled when asked (and ``compile``)."""
        wrapped = self.world.wrap(module)
        if self.compile and compile:
            import torch._inductor.config as inductor_config  # imported only when compiling (slow)

            inductor_config.deterministic = torch.are_deterministic_algorithms_enabled()
            wrapped.compile()
        return wrapped
