"""The training loop of one grid cell: data on device, trainer steps, buffered logging, checkpoints, exports.

Outputs in ``runs/<variant>-<seed>/``: ``checkpoints/step-*.pt`` (persistent, resumable), ``samples/*.png``,
``losses.csv`` (one row per step), ``generator.pt`` (what evaluation samples from), ``snapshots/step-*.pt`` (the
sampling network every ``train.snapshot_every`` steps, for the FID-over-training curve; persistent like the
checkpoints) and ``train.json``.
"""

from __future__ import annotations

import csv
import io
import math
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
from pipeline.io import atomic_write_json, atomic_write_text
from pipeline.models import ImageGenerator, build_model
from pipeline.seeding import seed_everything
from pipeline.tracking import CellRun, experiment_name, git_commit
from pipeline.training import checkpoint as ckpt
from pipeline.training.code import code_fingerprint
from pipeline.training.data_order import BatchStream
from pipeline.training.gan import GanTrainer
from pipeline.training.rng import rng_state, set_rng_state
from pipeline.training.signals import Interrupted, deferred_signals
from pipeline.training.vae import VaeTrainer

SAMPLE_GRID_SIZE = 64


class Trainer(Protocol):
    """What the loop needs of a family's trainer."""

    batches_per_step: int

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


def resolve_device(name: str) -> torch.device:
    """``auto`` → cuda when available, else cpu; asking for cuda without one is bad input."""
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("train.device: 'cuda' requested but no CUDA device is available")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def write_history(path: Path, history: list[dict[str, float]]) -> None:
    """``losses.csv``: one row per step, a column per logged quantity."""
    columns = ["step"] + sorted({key for row in history for key in row} - {"step"})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="")
    writer.writeheader()
    writer.writerows(history)
    atomic_write_text(path, buffer.getvalue())


class _Steps:
    """Detached step outputs kept on device until a flush turns them into floats (one sync per flush)."""

    def __init__(self) -> None:
        self.pending: list[tuple[int, dict[str, torch.Tensor], float]] = []

    def add(self, step: int, values: dict[str, torch.Tensor], images_per_second: float) -> None:
        self.pending.append((step, values, images_per_second))

    def drain(self) -> list[dict[str, float]]:
        rows = []
        for step, values, ips in self.pending:
            row: dict[str, float] = {"step": step}
            row.update({k: float(v) for k, v in values.items()})
            row["images_per_second"] = ips
            rows.append(row)
        self.pending = []
        return rows


def first_divergence(rows: list[dict[str, float]], max_abs: float | None) -> tuple[int, str] | None:
    """(step, reason) of the first row with a non-finite value or a logged quantity above ``max_abs`` in magnitude."""
    for row in rows:
        step = int(row["step"])
        values = {k: v for k, v in row.items() if k not in ("step", "images_per_second")}
        bad = [k for k, v in row.items() if not math.isfinite(v)]
        if bad:
            return step, f"non-finite {', '.join(bad)} at step {step}"
        exploded = [f"{k}={v:.3g}" for k, v in values.items() if max_abs is not None and abs(v) > max_abs]
        if exploded:
            return step, f"exploding {', '.join(exploded)} (|value| > train.max_abs_value {max_abs:g}) at step {step}"
    return None


def train_cell(
    params: Params,
    variant: str,
    seed: int,
    *,
    restart: bool = False,
    on_config_change: str = "refuse",
    progress: bool = True,
    console: Console | None = None,
    grid_key: str | None = None,
) -> dict[str, Any]:
    """Train one grid cell (resuming from its newest matching checkpoint) and write its outputs.

    ``on_config_change``: ``refuse`` raises when the checkpoints were made with another config;
    ``restart`` discards them (what ``dvc repro`` wants after a params edit). ``grid_key``: a new MLflow run
    becomes a child of that grid's parent run.
    """
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

    if restart:
        ckpt.discard_checkpoints(paths.checkpoints)
    try:
        resume = ckpt.find_resumable(paths.checkpoints, config)
    except ckpt.ConfigChanged as changed:
        if on_config_change != "restart":
            raise
        console.print(f"{changed}: restarting from step 0 (--on-config-change restart)")
        ckpt.discard_checkpoints(paths.checkpoints)
        resume = None

    device = resolve_device(params.train.device)
    seed_everything(seed, deterministic=params.train.deterministic)
    networks = build_model(cfg.model, channels=meta["channels"], resolution=meta["resolution"])
    trainer: Trainer = TRAINERS[cfg.kind](cfg, networks, device)
    stream = BatchStream(images.to(device), batch_size=batch_size, seed=seed)
    fixed_noise = torch.randn(SAMPLE_GRID_SIZE, trainer.image_generator().latent_dim,
                              generator=torch.Generator().manual_seed(seed + 1))

    step, elapsed, history, outbox = 0, 0.0, [], None
    if resume is not None:
        trainer.load_state_dict(resume["trainer"])
        stream.load_state_dict(resume["data"])
        set_rng_state(resume["rng"])
        step, elapsed, history, outbox = resume["step"], resume["elapsed"], resume["history"], resume.get("mlflow_outbox")
        console.print(f"[{variant}-{seed}] resuming from step {step}/{total_steps}")
    discard_snapshots_after(paths.snapshots, step)

    run = CellRun.start(
        layout.outbox_dir(variant, seed),
        experiment=experiment_name(params.tracking.experiment_prefix, meta["dataset"]),
        run_name=f"{variant}-s{seed}",
        params=config,
        tags={"stage": "train", "cell": layout.cell_name(variant, seed), "variant": variant, "seed": str(seed),
              "dataset": meta["dataset"], "git_commit": git_commit() or "unknown", "kind": cfg.kind},
        resume=outbox,
        parent_key=grid_key,
        system_metrics_interval=params.tracking.system_metrics_interval,
    )

    def save(at_step: int) -> None:
        ckpt.save_checkpoint(paths.checkpoints, {
            "step": at_step, "config": config, "trainer": trainer.state_dict(), "data": stream.state_dict(),
            "rng": rng_state(), "elapsed": elapsed, "history": history, "mlflow_outbox": run.outbox.id,
        }, keep=params.train.keep_checkpoints)

    def sample_grid(name: str) -> None:
        generator = trainer.image_generator()
        was_training = generator.training
        generator.eval()
        with torch.no_grad():
            grid = generator(fixed_noise.to(device))
        generator.train(was_training)
        path = save_grid(((grid.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu(), paths.samples / name)
        run.log_artifact(path, "samples")

    def snapshot(at_step: int) -> None:
        export_generator(snapshot_path(paths.snapshots, at_step), trainer.image_generator(), kind=cfg.kind,
                         model=cfg.model.model_dump(mode="json"), meta=meta,
                         extra={"step": at_step, "train_seconds": elapsed})

    steps = _Steps()
    status, reason = "ok", None
    images_per_step = batch_size * trainer.batches_per_step
    bar = Progress(TextColumn(f"{variant}-s{seed}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                   TimeRemainingColumn(), console=console, disable=not progress, refresh_per_second=2)
    with deferred_signals() as pending, bar:
        task = bar.add_task("train", total=total_steps, completed=step, info="")
        if step == 0:
            snapshot(0)
        tick = time.perf_counter()
        while step < total_steps:
            started = time.perf_counter()
            out = trainer.step([stream.next() for _ in range(trainer.batches_per_step)])
            step += 1
            steps.add(step, out, images_per_step / max(time.perf_counter() - started, 1e-9))
            bar.update(task, advance=1)
            signum = pending()
            every = (params.train.log_every, params.train.checkpoint_every, params.train.sample_every,
                     params.train.snapshot_every)
            if step == total_steps or signum is not None or any(step % n == 0 for n in every):
                rows = steps.drain()
                history.extend(rows)
                run.log_history(rows)
                bad = first_divergence(rows, params.train.max_abs_value)
                elapsed += time.perf_counter() - tick
                tick = time.perf_counter()
                if bad is not None:
                    status, reason = "diverged", bad[1]
                    break
                run.flush()
                bar.update(task, info=" ".join(f"{k}={v:.3g}" for k, v in rows[-1].items() if k.startswith("loss")))
                if step % params.train.sample_every == 0 or step == total_steps:
                    sample_grid(f"step-{step:08d}.png")
                if step % params.train.snapshot_every == 0 or step == total_steps:
                    snapshot(step)
                if step % params.train.checkpoint_every == 0 or step == total_steps or signum is not None:
                    save(step)
                if signum is not None:
                    run.finish("KILLED", wait=min(params.tracking.delivery_timeout, 5.0))
                    raise Interrupted(signum, step)
                tick = time.perf_counter()

    if status == "diverged":
        console.print(f"[{variant}-{seed}] diverged: {reason}; keeping the last good checkpoint")
        good = ckpt.list_checkpoints(paths.checkpoints)
        if good:
            trainer.load_state_dict(ckpt.load_checkpoint(good[-1][1])["trainer"])
    sample_grid("final.png")
    export_generator(paths.generator, trainer.image_generator(), kind=cfg.kind, model=cfg.model.model_dump(mode="json"),
                     meta=meta)
    write_history(paths.losses, history)
    trained_images = len(history) * images_per_step
    summary = {
        "variant": variant, "seed": seed, "status": status, "reason": reason, "steps": step,
        "train_seconds": elapsed, "images_per_second": trained_images / elapsed if elapsed > 0 else None,
        "num_parameters": trainer.num_parameters(), "device": str(device),
    }
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
