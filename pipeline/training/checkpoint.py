"""Checkpoints: one dict per file, written atomically, loaded with ``weights_only=True``.

A checkpoint holds the trainer's state (models, EMA, optimizers), every RNG state, the data order,
the step, the loss history, the resolved cell config and a format version; from it a run resumes
bit-identically on CPU.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import torch

from pipeline.errors import InputError
from pipeline.io import atomic_save
from pipeline.layout import list_steps, step_file

FORMAT_VERSION = 1
log = logging.getLogger(__name__)
# Keys that may differ on resume: the step budget (extending a run) and how often it logs and saves.
RESUMABLE_CHANGES = frozenset({
    "steps", "train.steps", "variant_params.steps", "train.log_every", "train.sample_every",
    "train.checkpoint_every", "train.keep_checkpoints", "train.snapshot_every",
    "train.max_abs_value",
})


class ConfigChanged(InputError):
    """The newest checkpoint was written with another configuration."""


def save_checkpoint(folder: Path, state: dict[str, Any], *, keep: int) -> Path:
    """Write ``state`` (which must hold ``step``) atomically and prune all but the newest ``keep``."""
    path = step_file(folder, state["step"])
    atomic_save(path, lambda handle: torch.save({"format_version": FORMAT_VERSION, **state}, handle))
    for _, old in list_steps(folder)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load one checkpoint safely; a corrupt or foreign file raises InputError naming it."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises many types for truncated/garbage files
        raise InputError(f"{path}: unreadable checkpoint ({type(error).__name__}: {error})") from None
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise InputError(f"{path}: not a checkpoint of format version {FORMAT_VERSION}")
    return state


def config_differences(saved: dict[str, Any], current: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested configs."""
    keys = sorted(set(saved) | set(current))
    diffs = []
    for key in keys:
        a, b = saved.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += config_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            diffs.append(f"{prefix}{key}")
    return diffs


def find_resumable(folder: Path, config: dict[str, Any]) -> dict[str, Any] | None:
    """The newest readable checkpoint made with the same config (up to ``RESUMABLE_CHANGES``), or None when there is none.

    Unreadable checkpoints are skipped with a warning; when none is readable, InputError. Raises InputError listing the differing keys when the newest checkpoint was made with another config.
    """
    unusable = []
    for _, path in reversed(list_steps(folder)):
        try:
            state = load_checkpoint(path)
        except InputError as error:  # e.g. truncated by a crash: fall back to the previous one
            log.warning("skipping %s", error)
            unusable.append(str(error))
            continue
        diffs = [key for key in config_differences(state["config"], config) if key not in RESUMABLE_CHANGES]
        if state["step"] > config["steps"]:
            diffs.append(f"steps (checkpoint is at step {state['step']}, budget is {config['steps']})")
        if diffs:
            raise ConfigChanged(
                f"{folder}: checkpoints were written with a different configuration "
                f"(differs in: {', '.join(diffs)}); pass --restart to discard them"
            )
        return state
    if unusable:
        raise InputError(f"{folder}: no usable checkpoint ({'; '.join(unusable)}); pass --restart to discard them")
    return None


def discard_checkpoints(folder: Path) -> None:
    """Remove every checkpoint (an explicit ``--restart``)."""
    shutil.rmtree(folder, ignore_errors=True)
