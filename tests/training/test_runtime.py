"""Runtime choices of a cell: torch.compile, CPU threads, the DDP batch shard, device/precision resolution."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pipeline.config import load_params
from pipeline.errors import InputError
from pipeline.generators import load_generator
from pipeline.training.distributed import World, set_cpu_threads
from pipeline.training.loop import train_cell
from pipeline.training.runtime import Runtime
from tests.conftest import tiny_params, write_params, write_prepared


@pytest.mark.slow  # Inductor compiles the networks
def test_compiled_training_exports_a_plain_generator(workdir: Path) -> None:
    write_prepared(workdir)
    raw = tiny_params()
    raw["train"]["compile"] = True
    params = load_params(write_params(workdir / "params.yaml", raw))
    assert train_cell(params, "gan", 0, progress=False).status == "ok"
    generator, _ = load_generator(Path("runs/gan-0/generator.pt"))  # no "_orig_mod." keys
    assert generator(torch.randn(2, generator.latent_dim)).shape == (2, 1, 8, 8)


def test_shards_split_the_global_batch_disjointly() -> None:
    rows = [World(rank=r, size=4).shard(32) for r in range(4)]
    assert [list(range(32))[s] for s in rows] == [list(range(8 * r, 8 * r + 8)) for r in range(4)]
    with pytest.raises(InputError, match="train.batch_size: 30 does not split evenly over 4 processes"):
        World(rank=0, size=4).shard(30)


def test_rank_seeds_are_distinct_and_rank_0_keeps_the_cell_seed() -> None:
    seeds = [World(rank=r, size=3).rank_seed(7) for r in range(3)]
    assert seeds[0] == 7 and len(set(seeds)) == 3
    assert World(rank=1, size=3).rank_seed(7) != World(rank=1, size=3).rank_seed(8)


def test_cpu_threads_follow_the_cores_shared_by_local_ranks(monkeypatch: pytest.MonkeyPatch) -> None:
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3})
    try:
        assert set_cpu_threads(World(local_size=2)) == 2
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        torch.set_num_threads(3)
        assert set_cpu_threads(World(local_size=2)) == 3  # the user's OMP_NUM_THREADS setting wins
        assert set_cpu_threads(World(local_size=2), 1) == 1 == torch.get_num_threads()  # ... unless train.threads
    finally:
        torch.set_num_threads(before)


def test_cpu_runtime_is_fp32_contiguous_and_cuda_without_a_gpu_is_bad_input() -> None:
    runtime = Runtime.create(device="cpu", precision="auto", compile=False)
    assert runtime.precision.name == "fp32" and runtime.memory_format == torch.contiguous_format
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="train.device: 'cuda' requested"):
            Runtime.create(device="cuda", precision="auto", compile=False)


@pytest.mark.parametrize("deterministic", [True, False])
def test_compiling_passes_the_deterministic_flag_to_inductor(deterministic: bool) -> None:
    """Seeding sets torch's flag without importing Inductor; the compile path hands it on to Inductor."""
    import torch._inductor.config as inductor_config

    from pipeline.seeding import seed_everything

    before = inductor_config.deterministic
    try:
        seed_everything(0, deterministic=deterministic)
        runtime = Runtime.create(device="cpu", precision="auto", compile=True)
        runtime.parallel(torch.nn.Linear(2, 2))  # Module.compile is lazy: nothing is compiled here
        assert inductor_config.deterministic is deterministic
    finally:
        inductor_config.deterministic = before
        torch.set_deterministic_debug_mode("default")


def _dcgan_generator() -> torch.nn.Module:
    from pipeline.models.dcgan import Generator

    return Generator(latent_dim=8, channels=1, resolution=8, width=8)


def test_batch_norm_is_synchronised_on_gpus_under_ddp() -> None:
    """On CUDA every BatchNorm becomes SyncBatchNorm with the same parameters and state-dict keys (so exported
    generators load into plain BatchNorm); the conversion itself needs no GPU."""
    plain = _dcgan_generator()
    keys = list(plain.state_dict())
    converted = World(rank=0, size=8).sync_batch_norm(plain, torch.device("cuda"), 8, what="g")
    norms = [m for m in converted.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert norms and all(isinstance(m, torch.nn.SyncBatchNorm) for m in norms)
    assert list(converted.state_dict()) == keys
    one_process = _dcgan_generator()
    assert World().sync_batch_norm(one_process, torch.device("cuda"), 1, what="g") is one_process


def test_batch_norm_on_cpu_ranks_needs_the_documented_minimum() -> None:
    world = World(rank=1, size=4)
    enough = _dcgan_generator()
    assert world.sync_batch_norm(enough, torch.device("cpu"), 16, what="g") is enough  # each rank its own 16
    with pytest.raises(InputError, match=r"train.batch_size: 60 over 4 processes is 15 samples a rank, but the "
                                         r"dcgan generator uses BatchNorm.*at least 16 \(use a batch of at least 64"):
        world.sync_batch_norm(_dcgan_generator(), torch.device("cpu"), 15, what="dcgan generator")
    no_norm = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.LayerNorm(4))
    assert world.sync_batch_norm(no_norm, torch.device("cpu"), 1, what="d") is no_norm
