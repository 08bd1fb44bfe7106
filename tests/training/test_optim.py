"""The optimizer registry: Adam takes its fused kernel for parameters on a GPU, torch's default loop on CPU."""

from __future__ import annotations

import pytest
import torch

from pipeline.config import OptimizerConfig
from pipeline.training import optim


class _OnGpu(torch.nn.Parameter):
    is_cuda = True  # what build_optimizer looks at; the fake optimizer below never touches the data


@pytest.mark.parametrize(("parameter", "fused"), [(torch.nn.Parameter(torch.zeros(2)), None),
                                                  (_OnGpu(torch.zeros(2)), True)])
def test_adam_is_fused_on_gpu_only(monkeypatch: pytest.MonkeyPatch, parameter: torch.nn.Parameter,
                                   fused: bool | None) -> None:
    seen = {}
    monkeypatch.setattr(torch.optim, "Adam", lambda params, **kwargs: seen.update(kwargs) or "adam")
    assert optim.build_optimizer([parameter], OptimizerConfig(name="adam", lr=1e-3)) == "adam"
    assert seen["fused"] is fused and seen["lr"] == 1e-3


def test_rmsprop_and_an_unknown_name() -> None:
    parameter = torch.nn.Parameter(torch.zeros(2))
    assert isinstance(optim.build_optimizer([parameter], OptimizerConfig(name="rmsprop", lr=1e-3)), torch.optim.RMSprop)
    with pytest.raises(ValueError, match="adam, rmsprop"):
        optim.build_optimizer([parameter], OptimizerConfig.model_construct(name="sgd", lr=1e-3))
