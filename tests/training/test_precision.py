"""train.precision: autocast on CPU (bf16, fp16 with a loss scaler), the fp32 gradient penalty, resolution rules."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from pipeline.config import load_params
from pipeline.errors import InputError
from pipeline.layout import list_steps
from pipeline.losses import gradient_penalty
from pipeline.training import checkpoint as ckpt
from pipeline.training.loop import train_cell
from pipeline.training.precision import resolve_precision
from tests.conftest import tiny_params, write_params, write_prepared


def test_auto_is_fp32_on_cpu_and_names_are_checked() -> None:
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu).name == "fp32"
    assert resolve_precision("auto", cpu).dtype is None
    assert resolve_precision("bf16", cpu).dtype is torch.bfloat16
    assert resolve_precision("fp16", cpu).scaler().is_enabled()
    assert not resolve_precision("bf16", cpu).scaler().is_enabled()
    with pytest.raises(InputError, match="train.precision: 'fp8'"):
        resolve_precision("fp8", cpu)


@pytest.mark.parametrize("name", ["bf16", "fp16"])
def test_gradient_penalty_is_computed_in_fp32_under_autocast(name: str) -> None:
    critic = nn.Sequential(nn.Conv2d(1, 8, 4, 2, 1), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(8 * 4 * 4, 1))
    real, fake = torch.randn(16, 1, 8, 8), torch.randn(16, 1, 8, 8)
    torch.manual_seed(3)
    reference = gradient_penalty(critic, real, fake)
    torch.manual_seed(3)
    with resolve_precision(name, torch.device("cpu")).autocast():
        mixed = gradient_penalty(critic, real, fake)
        assert critic(real).dtype == resolve_precision(name, torch.device("cpu")).dtype  # autocast is active here
    assert mixed.dtype == torch.float32
    assert torch.equal(mixed, reference)


@pytest.mark.parametrize(("variant", "loss", "precision"),
                         [("gan", "wgan-gp", "bf16"), ("gan", "ns", "fp16"), ("vae", None, "bf16"), ("vae", None, "fp16")])
def test_cells_train_under_autocast(workdir: Path, variant: str, loss: str | None, precision: str) -> None:
    write_prepared(workdir)
    raw = tiny_params()
    raw["train"]["precision"] = precision
    if loss:
        raw["variants"]["gan"]["loss"] = loss
        raw["variants"]["gan"]["model"]["d_norm"] = "layer" if loss == "wgan-gp" else "batch"
    params = load_params(write_params(workdir / "params.yaml", raw))
    summary = train_cell(params, variant, 0, progress=False)
    assert summary.status == "ok" and summary.precision == precision
    history = ckpt.load_checkpoint(list_steps(Path(f"runs/{variant}-0/checkpoints"))[-1][1])
    assert all(math.isfinite(v) for row in history["history"] for v in row.values())
    scalers = {k: v for k, v in history["trainer"].items() if k.startswith("scaler")}
    assert scalers and all(bool(s) == (precision == "fp16") for s in scalers.values())  # fp16 keeps a loss scale
