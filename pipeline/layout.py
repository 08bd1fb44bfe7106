"""Where each stage reads and writes, relative to the repository root (the folder DVC runs stages in).

The one place file names live: a grid cell's files are :class:`Cell`'s properties (``dvc.yaml`` declares the
same paths, which ``tests/test_layout.py`` checks), and numbered files (checkpoints, snapshots, sample grids)
are named and listed by :func:`step_file` and :func:`list_steps`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

PREPARED_DIR = Path("data/prepared")
EVALUATOR_PATH = Path("models/evaluator.pt")
EVALUATOR_METRICS_PATH = Path("models/evaluator.json")
RUNS_DIR = Path("runs")
METRICS_DIR = Path("metrics")
REPORTS_DIR = Path("reports")
CACHE_DIR = Path(".cache/fid-stats")
NOISE_FLOOR_PATH = METRICS_DIR / "noise-floor.json"
FEATURE_CHECK_PATH = METRICS_DIR / "feature-check.json"

_STEP = re.compile(r"step-(\d{8})\.(\w+)$")


def step_file(folder: Path, step: int, suffix: str = ".pt") -> Path:
    """``<folder>/step-XXXXXXXX<suffix>``: checkpoints, snapshots and sample grids by step."""
    return folder / f"step-{step:08d}{suffix}"


def list_steps(folder: Path, suffix: str = ".pt") -> list[tuple[int, Path]]:
    """(step, path) of the ``step_file`` files with ``suffix`` in ``folder`` (none when it is missing), oldest first."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), path) for path in folder.iterdir()
             if (m := _STEP.match(path.name)) and f".{m.group(2)}" == suffix]
    return sorted(found)


@dataclass(frozen=True, order=True)
class Cell:
    """One grid cell, ``<variant>-<seed>`` (DVC's matrix key, the MLflow run name and the folder names), and
    every file it owns."""

    variant: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.variant}-{self.seed}"

    def __str__(self) -> str:
        return self.name

    @property
    def run_dir(self) -> Path:
        """Training outputs: checkpoints/, snapshots/, samples/, generator.pt, losses.csv, train.json."""
        return RUNS_DIR / self.name

    @property
    def checkpoints(self) -> Path:
        return self.run_dir / "checkpoints"

    @property
    def snapshots(self) -> Path:
        """The sampling network every ``train.snapshot_every`` steps, for the FID-over-training curve."""
        return self.run_dir / "snapshots"

    @property
    def samples(self) -> Path:
        return self.run_dir / "samples"

    @property
    def final_samples(self) -> Path:
        """The sample grid of the trained generator, shown in the report."""
        return self.samples / "final.png"

    @property
    def generator(self) -> Path:
        """The trained sampling network that evaluate and prune load."""
        return self.run_dir / "generator.pt"

    @property
    def losses(self) -> Path:
        return self.run_dir / "losses.csv"

    @property
    def train_summary(self) -> Path:
        return self.run_dir / "train.json"

    @property
    def outbox(self) -> Path:
        """MLflow outboxes (not a DVC output: undelivered logging survives a re-run of the stage)."""
        return self.run_dir / "mlflow"

    @property
    def metrics(self) -> Path:
        """The evaluate stage's result."""
        return METRICS_DIR / f"{self.name}.json"

    @property
    def prune_metrics(self) -> Path:
        """The pruning study's result."""
        return METRICS_DIR / f"prune-{self.name}.json"
