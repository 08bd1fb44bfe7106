"""What stages hand each other, as pydantic models with a format version: written and read only through
:func:`write_record` and :func:`read_record`, so a missing or renamed field fails at the writer (a validation
error) or names the file and field at the reader, not three stages later as a ``KeyError``."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from pipeline.config import format_validation_error
from pipeline.errors import InputError
from pipeline.io import atomic_write_json, read_json

Status = Literal["ok", "diverged"]
CellStatus = Literal["ok", "diverged", "failed"]


class Part(BaseModel):
    """A nested part of a record: every field declared, nothing else accepted."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Record(Part):
    """A stage output file, versioned."""

    what: ClassVar[str] = "stage record"  # how errors name the file's kind

    format_version: Literal[1] = 1


class TrainSummary(Record):
    """``runs/<cell>/train.json``: how a cell's training ended (written by rank 0 only)."""

    what: ClassVar[str] = "training summary"

    variant: str
    seed: int
    status: Status
    reason: str | None  # why it diverged
    steps: int
    train_seconds: float  # the whole loop: steps, logging, samples, snapshots, checkpoints
    images_per_second: float | None
    num_parameters: int
    device: str
    precision: str
    world_size: int
    cpu_threads: int | None
    rank_weight_checksums: list[float]  # equal when the DDP ranks are in sync
    mlflow_run_id: str | None
    mlflow_model_uri: str | None
    mlflow_outbox: str | None


class Scores(Part):
    """A sample set's scores in one feature space (None where a metric does not apply or the cell diverged)."""

    fid: float | None
    isc_mean: float | None
    isc_std: float | None
    kid_mean: float | None
    kid_std: float | None
    precision: float | None
    recall: float | None
    f_score: float | None


class SpaceScores(Scores):
    """One feature space's scores of a cell's first noise draw (FID's interval over all draws in the headline)."""

    fid_ci_low: float | None
    fid_ci_high: float | None


class CurvePoint(Part):
    """One training snapshot's FID (None where its images were not finite)."""

    step: int
    train_seconds: float | None
    fid: float | None


class CellMetrics(Record, Scores):
    """``metrics/<cell>.json``: a cell's scores in the headline feature space (top level) and in every space
    (``feature_spaces``). A metric that does not apply is None, with a ``<metric>_reason``; a diverged cell has
    only its curve."""

    what: ClassVar[str] = "cell metrics file"

    variant: str
    seed: int
    status: CellStatus
    reason: str | None
    feature_extractor: str
    num_samples: int
    # from the training summary
    steps: int
    train_seconds: float
    images_per_second: float | None
    num_parameters: int
    mlflow_run_id: str | None
    mlflow_model_uri: str | None
    mlflow_outbox: str | None
    # the Scores fields: the headline space's, first draw (FID: the mean over draws)
    isc_mean_reason: str | None = None
    isc_std_reason: str | None = None
    num_reference: int | None = None  # None for a diverged cell, as the next three
    kid_subset_size: int | None = None
    prc_samples: int | None = None
    # FID over noise draws
    fid_draws: list[float] | None
    fid_draws_std: float | None
    fid_ci_low: float | None
    fid_ci_high: float | None
    fid_ci_confidence: float | None
    fid_ci_method: str | None
    fid_infinity: float | None
    fid_infinity_ci_low: float | None
    fid_infinity_ci_high: float | None
    # class coverage (the domain evaluator's classes)
    num_classes: int | None
    classes_covered: int | None
    class_kl: float | None
    class_histogram: list[int] | None
    real_class_share: list[float] | None
    class_names: list[str] | None
    classes_covered_reason: str | None = None
    class_kl_reason: str | None = None
    class_histogram_reason: str | None = None
    # NDB in the headline space
    ndb: int | None
    ndb_share: float | None
    ndb_js: float | None
    ndb_bins: int | None
    ndb_alpha: float | None
    # FID over training (domain space)
    fid_curve: list[CurvePoint] | None
    curve_feature_extractor: str | None
    curve_num_samples: int | None
    time_to_within_10pct: float | None
    steps_to_within_10pct: int | None
    feature_spaces: dict[str, SpaceScores] | None


class PruneRow(Part):
    """One sparsity of a pruning study (FID the mean over the noise draws; its interval at sparsity 0 only)."""

    sparsity: float
    achieved_sparsity: float
    fid: float | None
    isc_mean: float | None
    kid_mean: float | None
    precision: float | None
    recall: float | None
    classes_covered: int | None
    fid_ci_low: float | None = None
    fid_ci_high: float | None = None
    parameters: int
    nonzero_parameters: int
    prunable_weights: int
    nonzero_prunable_weights: int
    dense_bytes: int
    sparse_bytes: int
    latency_ms: float
    finetune_final_loss: float | None


class PruneResult(Record):
    """``metrics/prune-<cell>.json``: one cell's pruning study (no rows for a diverged cell)."""

    what: ClassVar[str] = "pruning study"

    variant: str
    seed: int
    kind: Literal["gan", "vae"]
    status: Status
    reason: str | None
    num_samples: int
    finetune_steps: int
    rows: list[PruneRow]
    dense_fid_ci_high: float | None
    largest_sparsity_within_noise: float | None


class FloorSpace(Part):
    """Real-vs-real FID in one feature space over the repeats."""

    fid_mean: float
    fid_std: float | None  # None with one repeat
    fid_values: list[float]


class NoiseFloor(Record):
    """``metrics/noise-floor.json``: real test images against equally many real training images."""

    what: ClassVar[str] = "noise-floor file"

    reference: Literal["test"]
    subset_split: Literal["train"]
    num_samples: int
    repeats: int
    disjoint_subsets: bool
    data_fingerprint: str
    feature_spaces: dict[str, FloorSpace]


R = TypeVar("R", bound=Record)


def write_record(path: Path, record: Record) -> None:
    """Write ``record`` atomically as JSON."""
    atomic_write_json(path, record.model_dump(mode="json"))


def read_record(path: Path, kind: type[R], *, hint: str) -> R:
    """Read a ``kind`` file; missing, unreadable, of another format version or with a missing/unknown field:
    InputError naming the file, the field and ``hint``."""
    raw = read_json(path, what=kind.what, hint=hint)
    # a file from before its format was versioned says so, though the field has a default for writers
    problems = [] if not isinstance(raw, dict) or "format_version" in raw else ["format_version: Field required"]
    try:
        record = kind.model_validate(raw)
    except ValidationError as error:
        problems += [line.removeprefix(f"{path}: ") for line in format_validation_error(error, str(path))]
    if problems:
        raise InputError(f"{path}: not a {kind.what} of format version 1 ({'; '.join(problems)}); {hint}")
    return record
