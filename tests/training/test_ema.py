"""Generator EMA: the averaging rule and that evaluation exports the EMA weights."""

from __future__ import annotations

from pathlib import Path

import torch

from pipeline.config import parse_params
from pipeline.training.ema import EMA
from pipeline.training.loop import train_cell
from tests.conftest import tiny_params, write_prepared


def test_ema_update_rule() -> None:
    model = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema = EMA(model, decay=0.9, start_step=2)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model, step=1)  # before start_step: a plain copy
    assert ema.shadow.weight.item() == 1.0
    with torch.no_grad():
        model.weight.fill_(3.0)
    ema.update(model, step=2)  # 0.9 * 1 + 0.1 * 3
    torch.testing.assert_close(ema.shadow.weight, torch.tensor([[1.2]]))
    assert not ema.shadow.weight.requires_grad


def test_enabled_ema_is_what_gets_exported(workdir: Path) -> None:
    write_prepared(workdir)
    raw = tiny_params()
    raw["variants"]["gan"]["ema"] = {"enabled": True, "decay": 0.5}
    train_cell(parse_params(raw), "gan", 0, progress=False)
    exported = torch.load("runs/gan-0/generator.pt", weights_only=True)["state_dict"]
    checkpoint = sorted(Path("runs/gan-0/checkpoints").iterdir())[-1]
    trainer = torch.load(checkpoint, weights_only=True)["trainer"]
    assert all(torch.equal(exported[k], trainer["ema"][k]) for k in exported)
    assert not all(torch.equal(exported[k], trainer["generator"][k]) for k in exported)
