"""The training loop of one grid cell: data on device, trainer steps, buffered logging, checkpoints, exports.

Outputs are the :class:`~pipeline.layout.Cell`'s files under ``runs/<variant>-<seed>/``: ``checkpoints/step-*.pt``
(persistent, resumable), ``samples/*.png``, ``losses.csv`` (one row per step), ``generator.pt`` (what evaluation
samples from), ``snapshots/step-*.pt`` (the sampling network every ``train.snapshot_every`` steps, for the
FID-over-training curve; persistent like the checkpoints) and ``train.json`` (a
:class:`~pipeline.records.TrainSummary`). Under ``torchrun`` every rank trains its shard of each global batch and
only rank 0 logs and writes.

A run is four named steps: :func:`_set_up` (data, networks, trainer), :func:`_resume` (the newest matching
checkpoint into a :class:`LoopState`), :func:`_run` (steps, with the work of each :class:`Schedule` boundary) and
:func:`_finish` (exports and the summary).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from pipeline.config import GanVariant, Params, TrainConfig, VaeVariant
from pipeline.data import load_meta, load_prepared
from pipeline.errors import InputError
from pipeline.generators import discard_snapshots_after, export_generator
from pipeline.images import save_grid
from pipeline.layout import PREPARED_DIR, Cell, list_steps, step_file
from pipeline.models import ImageGenerator, build_model, to_uint8
from pipeline.records import TrainSummary, write_record
from pipeline.seeding import seed_everything
from pipeline.tracking import CellRun, NullRun, experiment_name, git_commit, warn_undelivered
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
DATASET_DIGEST = 16  # hex digits of the data fingerprint MLflow shows (its stores keep at most 36)


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
class Schedule:
    """When the loop does what: every ``N`` steps of ``train`` and always at the last step."""

    total: int
    log_every: int
    checkpoint_every: int
    sample_every: int
    snapshot_every: int

    @classmethod
    def of(cls, train: TrainConfig, total: int) -> Schedule:
        return cls(total, train.log_every, train.checkpoint_every, train.sample_every, train.snapshot_every)

    def _due(self, every: int, step: int) -> bool:
        return step % every == 0 or step == self.total

    def boundary(self, step: int) -> bool:
        """Any of the periodic work is due: the steps' outputs are synced, logged and checked for divergence."""
        return any(self._due(n, step) for n in (self.log_every, self.checkpoint_every, self.sample_every,
                                                self.snapshot_every))

    def sample(self, step: int) -> bool:
        return self._due(self.sample_every, step)

    def snapshot(self, step: int) -> bool:
        return self._due(self.snapshot_every, step)

    def checkpoint(self, step: int) -> bool:
        return self._due(self.checkpoint_every, step)


@dataclass
class LoopState:
    """What a checkpoint restores: where the run is, how long it took, its history and its MLflow outbox."""

    step: int = 0
    elapsed: float = 0.0  # seconds of the whole loop, boundary work included
    history: list[dict[str, float]] = field(default_factory=list)
    outbox: str | None = None
    status: str = "ok"
    reason: str | None = None


@dataclass
class CellTraining:
    """One cell being trained: its config, data stream, trainer and MLflow run (a NullRun off rank 0)."""

    params: Params
    cfg: GanVariant | VaeVariant
    cell: Cell
    runtime: Runtime
    meta: dict[str, Any]
    config: dict[str, Any]  # what a checkpoint must match to be resumed
    trainer: Trainer
    stream: BatchStream
    fixed_noise: torch.Tensor  # (SAMPLE_GRID_SIZE, latent_dim): the sample grids' noise
    threads: int | None
    console: Console
    run: CellRun | NullRun = field(default_factory=NullRun)

    @property
    def world(self) -> World:
        return self.runtime.world

    @property
    def images_per_step(self) -> int:  # global: all ranks together
        return self.params.train.batch_size * self.trainer.batches_per_step

    def save(self, state: LoopState) -> None:
        """A checkpoint of ``state`` (collective: every rank's RNG state is gathered)."""
        rngs = self.world.gather(rng_state(self.runtime.device))
        if self.world.is_main:
            ckpt.save_checkpoint(self.cell.checkpoints, {
                "step": state.step, "config": self.config, "trainer": self.trainer.state_dict(),
                "data": self.stream.state_dict(), "rng": rngs, "elapsed": state.elapsed, "history": state.history,
                "mlflow_outbox": self.run.outbox.id,
            }, keep=self.params.train.keep_checkpoints)

    def sample_grid(self, name: str) -> None:
        generator = self.trainer.image_generator()
        was_training = generator.training
        generator.eval()
        with torch.no_grad():
            grid = generator(self.fixed_noise.to(self.runtime.device))
        generator.train(was_training)
        self.run.log_artifact(save_grid(to_uint8(grid).cpu(), self.cell.samples / name), "samples")

    def export(self, path: Any, **extra: Any) -> None:
        export_generator(path, self.trainer.image_generator(), kind=self.cfg.kind,
                         model=self.cfg.model.model_dump(mode="json"), meta=self.meta, extra=extra or None)


def weight_checksum(trainer: Trainer) -> float:
    """Sum of the networks' parameters in float64: equal on ranks that are in sync (buffers such as BatchNorm
    statistics are per rank under DDP, rank 0's are saved)."""
    with torch.no_grad():
        return float(sum(p.double().sum() for net in trainer.networks.values() for p in net.parameters()))


def train_cell(params: Params, variant: str, seed: int, **options: Any) -> TrainSummary | None:
    """Train one grid cell (resuming from its newest matching checkpoint) and write its outputs; the summary on
    rank 0, None on the other ranks of a torchrun.

    ``on_config_change``: ``refuse`` raises when the checkpoints were made with another config;
    ``restart`` discards them (what ``dvc repro`` wants after a params edit). ``grid_key``: a new MLflow run
    becomes a child of that grid's parent run. Under torchrun (WORLD_SIZE > 1) this is data-parallel training.
    """
    world = World.from_env()
    runtime = Runtime.create(device=params.train.device, precision=params.train.precision,
                             compile=params.train.compile, world=world)
    with process_group(world, runtime.device):
        return _train(params, Cell(variant, seed), runtime, **options)


def _train(params: Params, cell: Cell, runtime: Runtime, *, restart: bool = False, on_config_change: str = "refuse",
           progress: bool = True, console: Console | None = None, grid_key: str | None = None) -> TrainSummary | None:
    training = _set_up(params, cell, runtime, console or Console(stderr=True))
    state = _resume(training, restart=restart, on_config_change=on_config_change)
    if training.world.is_main:
        training.run = _start_run(training, state, grid_key)
    _run(training, state, progress=progress)
    return _finish(training, state)


def _set_up(params: Params, cell: Cell, runtime: Runtime, console: Console) -> CellTraining:
    """Data on the device, networks (same on all ranks), trainer, data stream and the sample grids' noise."""
    world, device, cfg, meta = runtime.world, runtime.device, params.variant(cell.variant), load_meta()
    config = {**params.cell_config(cell.variant, cell.seed), "data_fingerprint": meta["fingerprint"],
              "training_code": code_fingerprint()}  # the resolved params, the prepared data and the training code
    images, _ = load_prepared("train")
    batch_size = params.train.batch_size
    if batch_size > images.size(0):
        raise InputError(f"train.batch_size: {batch_size} is larger than the prepared train split ({images.size(0)})")
    shard = world.shard(batch_size)
    threads = set_cpu_threads(world, params.train.threads) if device.type == "cpu" else None
    seed_everything(cell.seed, deterministic=params.train.deterministic)
    networks = {name: world.sync_batch_norm(net, device, shard.stop - shard.start, what=f"{cell.variant} {name}")
                for name, net in build_model(cfg.model, channels=meta["channels"],
                                             resolution=meta["resolution"]).items()}
    if world.rank:
        torch.manual_seed(world.rank_seed(cell.seed))  # independent noise per rank
    trainer: Trainer = TRAINERS[cfg.kind](cfg, networks, runtime)
    stream = BatchStream(images.to(device), batch_size=batch_size, seed=cell.seed, shard=shard,
                         memory_format=runtime.memory_format)
    fixed_noise = torch.randn(SAMPLE_GRID_SIZE, trainer.image_generator().latent_dim,
                              generator=torch.Generator().manual_seed(cell.seed + 1))
    return CellTraining(params, cfg, cell, runtime, meta, config, trainer, stream, fixed_noise, threads, console)


def _find_resume(training: CellTraining, *, restart: bool, on_config_change: str) -> dict | None:
    """The newest checkpoint to resume from, honouring ``--restart`` and ``--on-config-change``."""
    folder = training.cell.checkpoints
    if restart:
        ckpt.discard_checkpoints(folder)
    try:
        return ckpt.find_resumable(folder, training.config)
    except ckpt.ConfigChanged as changed:
        if on_config_change != "restart":
            raise
        training.console.print(f"{changed}: restarting from step 0 (--on-config-change restart)")
        ckpt.discard_checkpoints(folder)
        return None


def _restore_rng(saved: list[dict], training: CellTraining, step: int) -> None:
    """Each rank's RNG state from the checkpoint; reseeded per rank when the process count changed."""
    world = training.world
    if len(saved) == world.size:
        set_rng_state(saved[world.rank], training.runtime.device)
        return
    torch.manual_seed(world.rank_seed(training.cell.seed) + step)
    if world.is_main:
        training.console.print(f"checkpoint written by {len(saved)} processes, resumed by {world.size}: "
                               "random streams reseeded (the run continues, but not bit-identically)")


def _resume(training: CellTraining, *, restart: bool, on_config_change: str) -> LoopState:
    """The state of the newest matching checkpoint (read on rank 0, the same on every rank), or a fresh one.
    Looked up once the set-up is known to be valid: ``--restart`` and a config change discard checkpoints."""
    world = training.world
    resume = _find_resume(training, restart=restart, on_config_change=on_config_change) if world.is_main else None
    resume = world.broadcast(resume)
    state = LoopState()
    if resume is not None:
        training.trainer.load_state_dict(resume["trainer"])
        training.stream.load_state_dict(resume["data"])
        _restore_rng(resume["rng"], training, resume["step"])
        state = LoopState(resume["step"], resume["elapsed"], resume["history"], resume.get("mlflow_outbox"))
        if world.is_main:
            training.console.print(f"[{training.cell}] resuming from step {state.step}/{training.config['steps']}")
    if world.is_main:
        discard_snapshots_after(training.cell.snapshots, state.step)
    return state


def _start_run(training: CellTraining, state: LoopState, grid_key: str | None) -> CellRun:
    """The cell's MLflow run (resumed from the checkpoint's outbox), a child of the grid's parent run; a new run
    records the prepared training split as its dataset input."""
    cell, meta, tracking = training.cell, training.meta, training.params.tracking
    runtime = training.runtime
    run = CellRun.start(
        cell.outbox,
        experiment=experiment_name(tracking.experiment_prefix, meta["dataset"]),
        run_name=cell.name,
        params={**training.config, "world_size": runtime.world.size, "precision": runtime.precision.name,
                "device": str(runtime.device), "cpu_threads": training.threads},
        tags={"stage": "train", "cell": cell.name, "variant": cell.variant, "seed": str(cell.seed),
              "dataset": meta["dataset"], "git_commit": git_commit() or "unknown", "kind": training.cfg.kind},
        resume=state.outbox,
        parent_key=grid_key,
        system_metrics_interval=tracking.system_metrics_interval,
    )
    if state.outbox is None:
        run.log_dataset(name=f"{meta['dataset']}-train", digest=meta["fingerprint"][:DATASET_DIGEST],
                        source=str(PREPARED_DIR.resolve()),
                        profile={"images": meta["counts"]["train"], "test_images": meta["counts"]["test"],
                                 "shape": meta["shape"], "num_classes": meta["num_classes"],
                                 "fingerprint": meta["fingerprint"]})
    return run


def _progress_bar(training: CellTraining, *, enabled: bool) -> Progress:
    return Progress(TextColumn(training.cell.name), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[info]}"), TimeRemainingColumn(), console=training.console,
                    disable=not (enabled and training.world.is_main), refresh_per_second=2)


def _run(training: CellTraining, state: LoopState, *, progress: bool) -> None:
    """Step until the budget is spent or the run diverges; a signal saves a checkpoint and raises Interrupted."""
    world, trainer, stream = training.world, training.trainer, training.stream
    schedule = Schedule.of(training.params.train, training.config["steps"])
    steps = StepBuffer()
    with deferred_signals() as pending, _progress_bar(training, enabled=progress) as bar:
        task = bar.add_task("train", total=schedule.total, completed=state.step, info="")
        tick = time.perf_counter()  # elapsed: the whole loop, with its logging, samples, snapshots and checkpoints
        if state.step == 0 and world.is_main:
            training.export(step_file(training.cell.snapshots, 0), step=0, train_seconds=0.0)
        while state.step < schedule.total:
            steps.add(state.step + 1, trainer.step([stream.next() for _ in range(trainer.batches_per_step)]))
            state.step += 1
            bar.update(task, advance=1)
            boundary = schedule.boundary(state.step)
            if not world.enabled:  # one process: react to a signal at once
                signum = pending()
                boundary = boundary or signum is not None
            elif boundary:  # ranks agree at boundaries only, so there is no collective per step
                signum = world.max_int(pending() or 0, training.runtime.device) or None
            if not boundary:
                continue
            now = time.perf_counter()
            rows = _close_interval(training, state, steps, now - tick)
            tick = now  # this boundary's own work counts towards the next interval
            if state.status != "ok":
                break
            bar.update(task, info=" ".join(f"{k}={v:.3g}" for k, v in rows[-1].items() if k.startswith("loss")))
            _boundary_work(training, state, schedule, interrupted=signum is not None)
            if signum is not None:
                training.run.finish("KILLED", wait=min(training.params.tracking.delivery_timeout, 5.0))
                raise Interrupted(signum, state.step)
        state.elapsed += time.perf_counter() - tick  # the last boundary's work


def _close_interval(training: CellTraining, state: LoopState, steps: StepBuffer, seconds: float) -> list[dict]:
    """The interval's step outputs (its one device sync) into the history and MLflow; a divergence ends the run."""
    n_steps = len(steps)
    rows = steps.drain(training.world)
    state.elapsed += seconds
    for row in rows:
        row["images_per_second"] = n_steps * training.images_per_step / max(seconds, 1e-9)
    state.history.extend(rows)
    training.run.log_history(rows)
    bad = first_divergence(rows, training.params.train.max_abs_value)  # rows are equal on every rank
    if bad is not None:
        state.status, state.reason = "diverged", bad[1]
    else:
        training.run.flush()
    return rows


def _boundary_work(training: CellTraining, state: LoopState, schedule: Schedule, *, interrupted: bool) -> None:
    """Sample grid and snapshot (rank 0) and checkpoint (every rank) when due; a checkpoint before stopping."""
    step, main = state.step, training.world.is_main
    if main and schedule.sample(step):
        training.sample_grid(step_file(training.cell.samples, step, ".png").name)
    if main and schedule.snapshot(step):
        training.export(step_file(training.cell.snapshots, step), step=step, train_seconds=state.elapsed)
    if schedule.checkpoint(step) or interrupted:
        training.save(state)


def _finish(training: CellTraining, state: LoopState) -> TrainSummary | None:
    """Final sample grid, generator, loss log and MLflow (rank 0); ``train.json`` written last."""
    trainer, cell, world = training.trainer, training.cell, training.world
    checksums = world.gather(weight_checksum(trainer))
    if not world.is_main:
        return None
    if state.status == "diverged":
        training.console.print(f"[{cell}] diverged: {state.reason}; keeping the last good checkpoint")
        good = list_steps(cell.checkpoints)
        if good:
            trainer.load_state_dict(ckpt.load_checkpoint(good[-1][1])["trainer"])
    for folder in (cell.checkpoints, cell.snapshots):  # DVC outputs, also when it diverged before the first
        folder.mkdir(parents=True, exist_ok=True)
    training.sample_grid(cell.final_samples.name)
    training.export(cell.generator)
    write_history(cell.losses, state.history)
    run = training.run
    if state.status == "ok" and training.params.tracking.log_models:
        run.log_model(cell.generator)
    run.log_metrics({"train_seconds": state.elapsed}, step=state.step)
    if state.status == "diverged":
        run.set_tags({"failure_reason": state.reason or ""})
    left = run.finish("FINISHED" if state.status == "ok" else "FAILED", wait=training.params.tracking.delivery_timeout)
    warn_undelivered(cell.name, left, run.outbox.folder)
    images_per_second = len(state.history) * training.images_per_step / state.elapsed if state.elapsed else None
    runtime = training.runtime
    summary = TrainSummary(
        variant=cell.variant, seed=cell.seed, status=state.status, reason=state.reason, steps=state.step,
        train_seconds=state.elapsed, images_per_second=images_per_second, num_parameters=trainer.num_parameters(),
        device=str(runtime.device), precision=runtime.precision.name, world_size=world.size,
        cpu_threads=training.threads, rank_weight_checksums=checksums, mlflow_run_id=run.run_id,
        mlflow_model_uri=run.model_uri, mlflow_outbox=str(run.outbox.folder))
    write_record(cell.train_summary, summary)
    return summary
