"""Mixed precision: ``train.precision`` → an autocast context and a gradient scaler per optimizer."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch

from pipeline.errors import InputError

DTYPES: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Precision:
    """The resolved precision of one training run on ``device_type``."""

    name: str  # fp32 | bf16 | fp16
    device_type: str  # cpu | cuda

    @property
    def dtype(self) -> torch.dtype | None:
        """Autocast's compute dtype; None for plain fp32."""
        return DTYPES[self.name]

    def autocast(self) -> AbstractContextManager:
        """Forward passes run under this: lower-precision matmuls/convolutions, fp32 reductions and losses."""
        return torch.autocast(self.device_type, dtype=self.dtype, enabled=self.dtype is not None)

    def scaler(self) -> torch.amp.GradScaler:
        """A loss scaler, active for fp16 only (bf16 has fp32's exponent range and needs none)."""
        return torch.amp.GradScaler(self.device_type, enabled=self.name == "fp16")


def resolve_precision(name: str, device: torch.device) -> Precision:
    """``auto`` → bf16 on GPUs that support it, else fp32; asking for bf16 on a GPU without it is bad input."""
    if name == "auto":
        name = "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    if name not in DTYPES:
        raise InputError(f"train.precision: '{name}' is not one of auto, {', '.join(DTYPES)}")
    if name == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise InputError("train.precision: 'bf16' requested but this GPU does not support bfloat16; use fp16 or fp32")
    return Precision(name, device.type)
