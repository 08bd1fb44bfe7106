"""The training loop of one grid cell: data on device, trainer steps, buffered logging, checkpoints, exports.

Outputs in ``runs/<variant>-<seed>/``: ``checkpoints/step-*.pt`` (persistent, resumable), ``samples/*.png``,
``losses.csv`` (one row per step), ``generator.pt`` (what evaluation samples from), ``snapshots/step-*.pt`` (the
sampling network every ``train.snapshot_every`` steps, for the FID-over-training curve; persistent like the
checkpoints) and ``train.json``. Under ``torchrun`` every rank trains its shard of each global batch and only
rank 0 logs and writes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from pipeline import layout
from pipeline.config import Params
from pipeline.data import load_meta, load_prepared
from pipeline.errors import InputError
from pipeline.generators import discard_snapshots_after, export_generator, snapshot_path
from pipeline.images import save_grid
from pipeline.io import atomic_write_json
from pipeline.models import ImageGenerator, build_model, to_uint8
from pipeline.seeding import seed_everything
from pipeline.tracking import CellRun, NullRun, experiment_name, git_commit
from pipeline.training import checkpoint as ckpt
from pipeline.training.code import code_fingerprint
from pipeline.training.data_order import BatchStream
from pipeline.training.distributed import World, process_group, set_cpu_threads
from pipeline.training.gan import GanTrainer
from pipeline.training.history import StepBuffer, first_divergence, write_history
from pipeline.training.rng import rng_state, set_rng_state
from pipeline.training.runtime import Runtime
from pipeline.training.signals import Interrupted, deferred_signals
from pipeline.training.vae import VaeTrainer

SAMPLE_GRID_SIZE = 64


class Trainer(Protocol):
    """What the loop needs of a family's trainer."""

    batches_per_step: int
    networks: dict[str, torch.nn.Module]

    def step(self, real_batches: list[torch.Tensor]) -> dict[str, torch.Tensor]: ...
    def image_generator(self) -> ImageGenerator: ...
    def num_parameters(self) -> int: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


TRAINERS: dict[str, type] = {"gan": GanTrainer, "vae": VaeTrainer}


@dataclass(frozen=True)
class CellPaths:
    """Files of one cell's training outputs."""

    root: Path

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    @property
    def snapshots(self) -> Path:
        return self.root / "snapshots"

    @property
    def generator(self) -> Path:
        return self.root / "generator.pt"

    @property
    def losses(self) -> Path:
        return self.root / "losses.csv"

    @property
    def summary(self) -> Path:
        return self.root / "train.json"


def weight_checksum(trainer: Trainer) -> float:
    """Sum of the networks' parameters in float64: equal on ranks that are in sync (buffers such as BatchNorm
    statistics are per rank under DDP, rank 0's are saved)."""
    with torch.no_grad():
        return float(sum(p.double().sum() for net in trainer.networks.values() for p in net.parameters()))


def _find_resume(paths: CellPaths, config: dict, *, restart: bool, on_config_change: str,
                 console: Console) -> dict | None:
    """The newest checkpoint to resume from, honouring ``--restart`` and ``--on-config-change``."""
    if restart:
        ckpt.discard_checkpoints(paths.checkpoints)
    try:
        return ckpt.find_resumable(paths.checkpoints, config)
    except ckpt.ConfigChanged as changed:
        if on_config_change != "restart":
            raise
        console.print(f"{changed}: restarting from step 0 (--on-config-change restart)")
        ckpt.discard_checkpoints(paths.checkpoints)
        return None


def _restore_rng(saved: list[dict], world: World, device: torch.device, seed: int, step: int,
                 console: Console) -> None:
    """Each rank's RNG state from the checkpoint; reseeded per rank when the process count changed."""
    if len(saved) == world.size:
        set_rng_state(saved[world.rank], device)
        return
    torch.manual_seed(world.rank_seed(seed) + step)
    if world.is_main:
        console.print(f"checkpoint written by {len(saved)} processes, resumed by {world.size}: "
                      "random streams reseeded (the run continues, but not bit-identically)")


def train_cell(params: Params, variant: str, seed: int, **options: Any) -> dict[str, Any]:
    """Train one grid cell (resuming from its newest matching checkpoint) and write its outputs.

    ``on_config_change``: ``refuse`` raises when the checkpoints were made with another config;
    ``restart`` discards them (what ``dvc repro`` wants after a params edit). ``grid_key``: a new MLflow run
    becomes a child of that grid's parent run. Under torchrun (WORLD_SIZE > 1) this is data-parallel training.
    """
    world = World.from_env()
    runtime = Runtime.create(device=params.train.device, precision=params.train.precision,
                             compile=params.train.compile, world=world)
    with process_group(world, runtime.device):
        return _train(params, variant, seed, runtime, **options)


def _train(
    params: Params,
    variant: str,
    seed: int,
    runtime: Runtime,
    *,
    restart: bool = False,
    on_config_change: str = "refuse",
    progress: bool = True,
    console: Console | None = None,
    grid_key: str | None = None,
) -> dict[str, Any]:
    world, device = runtime.world, runtime.device
    cfg = params.variant(variant)
    meta = load_meta()
    # What a checkpoint must match to be resumed: the resolved params, the prepared data and the training code.
    config = {**params.cell_config(variant, seed), "data_fingerprint": meta["fingerprint"],
              "training_code": code_fingerprint()}
    total_steps = config["steps"]
    paths = CellPaths(layout.run_dir(variant, seed))
    console = console or Console(stderr=True)

    images, _ = load_prepared("train")
    batch_size = params.train.batch_size
    if batch_size > images.size(0):
        raise InputError(f"train.batch_size: {batch_size} is larger than the prepared train split ({images.size(0)})")
    shard = world.shard(batch_size)

    threads = set_cpu_threads(world, params.train.threads) if device.type == "cpu" else None
    seed_everything(seed, deterministic=params.train.deterministic)
    networks = {name: world.sync_batch_norm(net, device, shard.stop - shard.start, what=f"{variant} {name}")
                for name, net in build_model(cfg.model, channels=meta["channels"],
                                             resolution=meta["resolution"]).items()}  # same on all ranks
    if world.rank:
        torch.manual_seed(world.rank_seed(seed))  # independent noise per rank
    trainer: Trainer = TRAINERS[cfg.kind](cfg, networks, runtime)
    stream = BatchStream(images.to(device), batch_size=batch_size, seed=seed, shard=shard,
                         memory_format=runtime.memory_format)
    fixed_noise = torch.randn(SAMPLE_GRID_SIZE, trainer.image_generator().latent_dim,
                              generator=torch.Generator().manual_seed(seed + 1))

    # looked up once the cell's set-up is known to be valid: --restart and a config change discard checkpoints
    resume = _find_resume(paths, config, restart=restart, on_config_change=on_config_change,
                          console=console) if world.is_main else None
    resume = world.broadcast(resume)  # the same checkpoint on every rank, read from rank 0's disk
    step, elapsed, history, outbox = 0, 0.0, [], None
    if resume is not None:
        trainer.load_state_dict(resume["trainer"])
        stream.load_state_dict(resume["data"])
        _restore_rng(resume["rng"], world, device, seed, resume["step"], console)
        step, elapsed, history, outbox = resume["step"], resume["elapsed"], resume["history"], resume.get("mlflow_outbox")
        if world.is_main:
            console.print(f"[{variant}-{seed}] resuming from step {step}/{total_steps}")
    if world.is_main:
        discard_snapshots_after(paths.snapshots, step)

    run = CellRun.start(
        layout.outbox_dir(variant, seed),
        experiment=experiment_name(params.tracking.experiment_prefix, meta["dataset"]),
        run_name=f"{variant}-s{seed}",
        params={**config, "world_size": world.size, "precision": runtime.precision.name,
                "device": str(device), "cpu_threads": threads},
        tags={"stage": "train", "cell": layout.cell_name(variant, seed), "variant": variant, "seed": str(seed),
              "dataset": meta["dataset"], "git_commit": git_commit() or "unknown", "kind": cfg.kind},
        resume=outbox,
        parent_key=grid_key,
        system_metrics_interval=params.tracking.system_metrics_interval,
    ) if world.is_main else NullRun()

    def save(at_step: int) -> None:  # every rank: the RNG states are gathered
        rngs = world.gather(rng_state(device))
        if world.is_main:
            ckpt.save_checkpoint(paths.checkpoints, {
                "step": at_step, "config": config, "trainer": trainer.state_dict(), "data": stream.state_dict(),
                "rng": rngs, "elapsed": elapsed, "history": history, "mlflow_outbox": run.outbox.id,
            }, keep=params.train.keep_checkpoints)

    def sample_grid(name: str) -> None:
        generator = trainer.image_generator()
        was_training = generator.training
        generator.eval()
        with torch.no_grad():
            grid = generator(fixed_noise.to(device))
        generator.train(was_training)
        path = save_grid(to_uint8(grid).cpu(), paths.samples / name)
        run.log_artifact(path, "samples")

    def snapshot(at_step: int) -> None:
        export_generator(snapshot_path(paths.snapshots, at_step), trainer.image_generator(), kind=cfg.kind,
                         model=cfg.model.model_dump(mode="json"), meta=meta,
                         extra={"step": at_step, "train_seconds": elapsed})

    steps = StepBuffer()
    status, reason = "ok", None
    images_per_step = batch_size * trainer.batches_per_step  # global: all ranks together
    every = (params.train.log_every, params.train.checkpoint_every, params.train.sample_every,
             params.train.snapshot_every)
    bar = Progress(TextColumn(f"{variant}-s{seed}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                   TimeRemainingColumn(), console=console, disable=not (progress and world.is_main),
                   refresh_per_second=2)
    with deferred_signals() as pending, bar:
        task = bar.add_task("train", total=total_steps, completed=step, info="")
        tick = time.perf_counter()  # elapsed: the whole loop, with its logging, samples, snapshots and checkpoints
        if step == 0 and world.is_main:
            snapshot(0)
        while step < total_steps:
            steps.add(step + 1, trainer.step([stream.next() for _ in range(trainer.batches_per_step)]))
            step += 1
            bar.update(task, advance=1)
            boundary = step == total_steps or any(step % n == 0 for n in every)
            if not world.enabled:  # one process: react to a signal at once
                signum = pending()
                boundary = boundary or signum is not None
            elif boundary:  # ranks agree at boundaries only, so there is no collective per step
                signum = world.max_int(pending() or 0, device) or None
            if not boundary:
                continue
            n_steps = len(steps)
            rows = steps.drain(world)  # the one device sync of the interval
            now = time.perf_counter()
            interval, tick = now - tick, now  # this boundary's own work counts towards the next interval
            elapsed += interval
            for row in rows:
                row["images_per_second"] = n_steps * images_per_step / max(interval, 1e-9)
            history.extend(rows)
            run.log_history(rows)
            bad = first_divergence(rows, params.train.max_abs_value)  # rows are equal on every rank
            if bad is not None:
                status, reason = "diverged", bad[1]
                break
            run.flush()
            bar.update(task, info=" ".join(f"{k}={v:.3g}" for k, v in rows[-1].items() if k.startswith("loss")))
            if world.is_main and (step % params.train.sample_every == 0 or step == total_steps):
                sample_grid(f"step-{step:08d}.png")
            if world.is_main and (step % params.train.snapshot_every == 0 or step == total_steps):
                snapshot(step)
            if step % params.train.checkpoint_every == 0 or step == total_steps or signum is not None:
                save(step)
            if signum is not None:
                run.finish("KILLED", wait=min(params.tracking.delivery_timeout, 5.0))
                raise Interrupted(signum, step)
        elapsed += time.perf_counter() - tick  # the last boundary's work

    checksums = world.gather(weight_checksum(trainer))
    summary = {
        "variant": variant, "seed": seed, "status": status, "reason": reason, "steps": step,
        "train_seconds": elapsed, "images_per_second": len(history) * images_per_step / elapsed if elapsed else None,
        "num_parameters": trainer.num_parameters(), "device": str(device), "precision": runtime.precision.name,
        "world_size": world.size, "cpu_threads": threads, "rank_weight_checksums": checksums,
    }
    if not world.is_main:
        return summary
    if status == "diverged":
        console.print(f"[{variant}-{seed}] diverged: {reason}; keeping the last good checkpoint")
        good = ckpt.list_checkpoints(paths.checkpoints)
        if good:
            trainer.load_state_dict(ckpt.load_checkpoint(good[-1][1])["trainer"])
    sample_grid("final.png")
    export_generator(paths.generator, trainer.image_generator(), kind=cfg.kind, model=cfg.model.model_dump(mode="json"),
                     meta=meta)
    write_history(paths.losses, history)
    if status == "ok" and params.tracking.log_models:
        run.log_model(paths.generator)
    run.log_metrics({"train_seconds": elapsed}, step=step)
    if status == "diverged":
        run.set_tags({"failure_reason": reason or ""})
    undelivered = run.finish("FINISHED" if status == "ok" else "FAILED", wait=params.tracking.delivery_timeout)
    if undelivered:
        console.print(f"[{variant}-{seed}] {undelivered} MLflow operations not delivered yet: kept in "
                      f"{run.outbox.folder}; `python -m stages sync` sends them")
    summary.update(mlflow_run_id=run.run_id, mlflow_model_uri=run.model_uri, mlflow_outbox=str(run.outbox.folder))
    atomic_write_json(paths.summary, summary)
    return summary
