"""Where each stage reads and writes, relative to the repository root (the folder DVC runs stages in)."""

from __future__ import annotations

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


def cell_name(variant: str, seed: int) -> str:
    """The grid cell's key, as DVC's matrix names it: ``<variant>-<seed>``."""
    return f"{variant}-{seed}"


def run_dir(variant: str, seed: int) -> Path:
    """Training outputs of one cell: checkpoints/, samples/, generator.pt, train.json."""
    return RUNS_DIR / cell_name(variant, seed)


def outbox_dir(variant: str, seed: int) -> Path:
    """MLflow outboxes of one cell (not a DVC output: undelivered logging survives a re-run of the stage)."""
    return run_dir(variant, seed) / "mlflow"


def prune_metrics_path(variant: str, seed: int) -> Path:
    """The pruning study of one cell."""
    return METRICS_DIR / f"prune-{cell_name(variant, seed)}.json"


def metrics_path(variant: str, seed: int) -> Path:
    """Evaluation result of one cell."""
    return METRICS_DIR / f"{cell_name(variant, seed)}.json"
