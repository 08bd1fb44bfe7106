"""One rank of the DDP checks in tests/training/test_ddp.py, run under ``torchrun`` (not a test module itself).

``grads OUT``: one VaeTrainer step on this rank's shard of a fixed global batch through the library's DDP path
(World.from_env, process_group over gloo, World.shard, Runtime.parallel); writes the gradient the step left on
every parameter and, computed beside it on an unwrapped copy with the same random stream, this rank's own local
gradient. Averaging ranks means the first equals the mean over ranks of the second.

``train OUT``: the real training loop (``train_cell``) of params.yaml in the working directory; each rank writes
its final parameters, as ``weight_checksum`` sees them at the end of the run, to ``OUT/rank-<rank>.pt``.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import torch

from pipeline.config import load_params, parse_params
from pipeline.models import build_model
from pipeline.training import loop
from pipeline.training.distributed import World, process_group
from pipeline.training.runtime import Runtime
from pipeline.training.vae import VaeTrainer
from tests.conftest import tiny_params

GLOBAL_BATCH = 32  # 16 rows a rank: enough for BatchNorm on CPU ranks


def gradients(out: Path) -> None:
    world = World.from_env()
    runtime = Runtime.create(device="cpu", precision="fp32", compile=False, world=world)
    cfg = parse_params(tiny_params()).variant("vae")
    with process_group(world, runtime.device):
        torch.manual_seed(0)  # the same networks on every rank (DDP would broadcast rank 0's anyway)
        trainer = VaeTrainer(cfg, build_model(cfg.model, channels=1, resolution=8), runtime)
        reference = copy.deepcopy(trainer.vae)  # not wrapped: gradients of this rank's rows only
        batch = torch.rand(GLOBAL_BATCH, 1, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1
        local = batch[world.shard(GLOBAL_BATCH)]
        torch.manual_seed(world.rank_seed(7))  # the reparameterisation noise: its own on each rank
        noise = torch.get_rng_state()
        trainer.step([local])
        torch.set_rng_state(noise)
        terms = trainer.objective(reference, local, trainer.likelihood, trainer.cfg)
        terms["loss"].backward()
        torch.save({
            "rows": int(local.size(0)),
            "ddp": {name: p.grad.clone() for name, p in trainer.vae.named_parameters()},
            "local": {name: p.grad.clone() for name, p in reference.named_parameters()},
        }, out / f"rank-{world.rank}.pt")


def train(out: Path) -> None:
    world = World.from_env()
    real = loop.weight_checksum

    def recording(trainer: loop.Trainer) -> float:
        parameters = {f"{net}.{name}": p.detach().clone() for net, module in trainer.networks.items()
                      for name, p in module.named_parameters()}
        torch.save(parameters, out / f"rank-{world.rank}.pt")
        return real(trainer)

    loop.weight_checksum = recording  # _finish calls it on every rank, at the end of the run
    params = load_params(Path("params.yaml"))
    loop.train_cell(params, sys.argv[3], 0, progress=False)


if __name__ == "__main__":
    mode, folder = sys.argv[1], Path(sys.argv[2])
    folder.mkdir(parents=True, exist_ok=True)
    {"grads": gradients, "train": train}[mode](folder)
