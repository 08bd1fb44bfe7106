"""Typed configuration: ``params.yaml`` parsed into pydantic models that reject unknown keys.

``load_params`` validates the whole file and raises one :class:`ConfigError` listing every problem with
its key path, so a stage fails before it writes anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from pipeline.errors import ConfigError

DatasetName = Literal["fashion-mnist", "mnist", "cifar10", "digits", "folder"]
GanLossName = Literal["minimax", "ns", "lsgan", "wgan", "wgan-gp", "dragan", "hinge"]
PENALISED_LOSSES = ("wgan-gp", "dragan")  # losses whose critic update adds a per-sample gradient penalty
OptimizerName = Literal["adam", "rmsprop"]
ExtractorName = Literal["domain", "inception-v3-compat"]
# How the feature spaces' extractors read in reports and errors (the one table of them).
FEATURE_SPACE_LABELS = {"domain-classifier": "domain classifier", "domain-contrastive": "contrastive encoder",
                        "inception-v3-compat": "Inception-v3"}


class StrictModel(BaseModel):
    """Base: unknown keys are errors, values are immutable after validation."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(StrictModel):
    """Which dataset to prepare and how."""

    dataset: DatasetName = Field("fashion-mnist", description="Dataset source from the registry.")
    root: Path | None = Field(
        None,
        description="Folder holding the source files (IDX files, torchvision layout, or images for 'folder'). "
        "None: the dataset's default locations, then download.",
    )
    download: bool = Field(True, description="Allow torchvision to download when no local copy is found.")
    resolution: int = Field(32, ge=8, le=256, description="Side of the square images written by prepare.")
    channels: Literal[1, 3] | None = Field(None, description="Force 1 (grey) or 3 (RGB) channels; None keeps the source's.")
    test_fraction: float = Field(
        0.2, gt=0, lt=1, description="Test share for sources without an official split (digits, folder)."
    )
    max_train_samples: int | None = Field(None, gt=0, description="Keep at most this many training images.")
    split_seed: int = Field(0, ge=0, description="Seed of the train/test split and subsampling.")


class ContrastiveConfig(StrictModel):
    """The self-supervised evaluator: a conv encoder trained with SimCLR's NT-Xent on two augmented views."""

    width: int = Field(16, ge=4, description="Channels of the first conv block (doubles per block).")
    feature_dim: int = Field(128, ge=8, description="Size of the embedding: the FID/KID feature space.")
    projection_dim: int = Field(64, ge=2, description="Output of the projection head the loss compares.")
    epochs: float = Field(4.0, gt=0, description="Passes over the prepared train split.")
    max_steps: int | None = Field(None, gt=0, description="Stop after this many steps (null: all epochs).")
    batch_size: int = Field(256, ge=2, description="Images per step; each brings two views (2B − 2 negatives).")
    lr: float = Field(2e-3, gt=0, description="Adam peak learning rate, cosine-decayed to zero over the fit.")
    temperature: float = Field(0.2, gt=0, description="NT-Xent temperature.")
    crop_min_scale: float = Field(0.35, gt=0, le=1, description="Smallest area share of a random resized crop.")
    jitter: float = Field(0.4, ge=0, lt=1, description="Strength of the brightness/contrast/saturation jitter.")
    seed: int = Field(0, ge=0, description="Seed of initialisation, data order and augmentations.")
    min_lift: float = Field(
        0.05, ge=0, le=1, description="The fitted encoder is flagged weak unless its view retrieval (top-1 share of "
        "test images whose nearest other-view embedding is their own second view) beats the same network at its "
        "random initialisation by this much."
    )


class EvaluatorConfig(StrictModel):
    """The evaluator whose features define FID/KID: a domain classifier, or a contrastive encoder for data without
    labels that can carry a classifier's feature space."""

    kind: Literal["auto", "classifier", "contrastive"] = Field(
        "auto", description="auto: the classifier when the data have at least min_classes classes of at least "
        "min_images_per_class training images each, the contrastive encoder otherwise."
    )
    min_classes: int = Field(5, ge=2, description="auto: fewest classes for the classifier.")
    min_images_per_class: int = Field(100, ge=1, description="auto: fewest training images of every class for the "
                                      "classifier.")
    width: int = Field(16, ge=4, description="Classifier: channels of the first conv block (doubles per block).")
    feature_dim: int = Field(128, ge=8, description="Classifier: size of the penultimate (FID/KID) feature layer.")
    epochs: int = Field(3, ge=1, description="Classifier: training epochs over the prepared train split.")
    max_steps: int | None = Field(None, gt=0, description="Classifier: stop after this many steps (null: all epochs).")
    batch_size: int = Field(128, ge=1, description="Classifier: mini-batch size.")
    lr: float = Field(3e-3, gt=0, description="Classifier: Adam peak learning rate, cosine-decayed to zero.")
    seed: int = Field(0, ge=0, description="Classifier: seed of initialisation and data order.")
    min_accuracy: float = Field(0.9, ge=0, le=1, description="Classifier: test accuracy below which it is flagged weak.")
    contrastive: ContrastiveConfig = Field(default_factory=ContrastiveConfig)


class OptimizerConfig(StrictModel):
    """One network's optimizer."""

    name: OptimizerName = Field("adam", description="Optimizer: adam or rmsprop.")
    lr: float = Field(2e-4, gt=0, description="Learning rate.")
    betas: tuple[float, float] = Field((0.5, 0.999), description="Adam betas (ignored by rmsprop).")
    weight_decay: float = Field(0.0, ge=0, description="L2 weight decay.")

    @field_validator("betas")
    @classmethod
    def _betas_in_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not all(0 <= b < 1 for b in value):
            raise ValueError(f"each beta must be in [0, 1), got {list(value)}")
        return value


class EmaConfig(StrictModel):
    """Exponential moving average of the generator weights, used for evaluation when enabled."""

    enabled: bool = Field(False, description="Keep an EMA copy of the generator.")
    decay: float = Field(0.999, gt=0, lt=1, description="EMA decay per step.")
    start_step: int = Field(0, ge=0, description="Copy the weights (no averaging) before this step.")


class DcganConfig(StrictModel):
    """DCGAN-style generator and discriminator."""

    name: Literal["dcgan"] = Field("dcgan", description="Architecture from the model registry.")
    width: int = Field(32, ge=4, description="Base channel count; doubles per resolution halving.")
    latent_dim: int = Field(64, ge=1, description="Size of the noise vector z.")
    spectral_norm: bool = Field(False, description="Spectral normalisation on every discriminator layer.")
    d_norm: Literal["batch", "layer", "none"] = Field(
        "batch", description="Normalisation between discriminator convs (layer/none for gradient penalties and SN)."
    )


class ResnetConfig(StrictModel):
    """SNGAN-style ResNet generator and discriminator (any GAN loss)."""

    name: Literal["resnet"] = Field(description="Architecture from the model registry.")
    width: int = Field(128, ge=4, description="Channels of every residual block (SNGAN: 128 at 32×32).")
    latent_dim: int = Field(128, ge=1, description="Size of the noise vector z.")
    spectral_norm: bool = Field(True, description="Spectral normalisation on every discriminator layer.")

    @property
    def d_norm(self) -> str:
        """The ResNet discriminator has no normalisation layers between convs."""
        return "none"


def _model_name(value: Any) -> str:
    """The model section's architecture, ``dcgan`` when the section does not name one."""
    return value.get("name", "dcgan") if isinstance(value, dict) else getattr(value, "name", "dcgan")


GanModelConfig = Annotated[
    Annotated[DcganConfig, Tag("dcgan")] | Annotated[ResnetConfig, Tag("resnet")],
    Discriminator(_model_name, custom_error_type="unknown_model",
                  custom_error_message="name should be 'dcgan' or 'resnet' (the GAN backbones of the model registry)"),
]


class ConvVaeConfig(StrictModel):
    """Convolutional VAE (encoder mirrors the DCGAN discriminator, decoder the generator)."""

    name: Literal["conv-vae"] = Field("conv-vae", description="Architecture from the model registry.")
    width: int = Field(32, ge=4, description="Base channel count.")
    latent_dim: int = Field(32, ge=1, description="Size of the latent code.")
    likelihood: Literal["bernoulli", "logistic"] = Field(
        "bernoulli", description="Decoder likelihood: bernoulli (intensities as probabilities) or logistic (a "
        "per-pixel logistic discretised to the 256 levels of 8-bit data, with a learned scale)."
    )


ModelConfig = DcganConfig | ResnetConfig | ConvVaeConfig  # what the model registry's builders take
# A model section as saved beside a network (``name`` always written): which builder, and its arguments.
SAVED_MODEL = TypeAdapter(Annotated[ModelConfig, Field(discriminator="name")])


class GanVariant(StrictModel):
    """A GAN cell's hyper-parameters."""

    kind: Literal["gan"]
    loss: GanLossName = Field(description="Adversarial loss from the loss registry.")
    model: GanModelConfig = Field(default_factory=DcganConfig, description="Backbone: dcgan (default) or resnet.")
    g_optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    d_optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    n_critic: int = Field(1, ge=1, description="Discriminator updates per generator update.")
    gp_weight: float = Field(10.0, ge=0, description="Gradient-penalty weight (wgan-gp, dragan).")
    clip_value: float = Field(0.01, gt=0, description="WGAN: the critic's weights are clipped to [-c, c].")
    ema: EmaConfig = Field(default_factory=EmaConfig)
    steps: int | None = Field(None, gt=0, description="Generator steps; None uses train.steps.")

    @model_validator(mode="after")
    def _penalty_needs_per_sample_critic(self) -> GanVariant:
        if self.loss in PENALISED_LOSSES and self.model.d_norm == "batch":
            raise ValueError(
                f"model.d_norm: batch norm mixes samples and breaks the per-sample gradient penalty of {self.loss}; "
                "use 'layer' or 'none'"
            )
        return self


class VaeVariant(StrictModel):
    """A VAE cell's hyper-parameters (beta = 1 is the plain ELBO)."""

    kind: Literal["vae"]
    model: ConvVaeConfig = Field(default_factory=ConvVaeConfig)
    optimizer: OptimizerConfig = Field(default_factory=lambda: OptimizerConfig(lr=1e-3, betas=(0.9, 0.999)))
    beta: float = Field(1.0, gt=0, description="Weight of the KL term (beta-VAE when != 1; elbo only).")
    objective: Literal["elbo", "iwae"] = Field(
        "elbo", description="Training bound: elbo (one sample) or iwae (importance-weighted, k samples)."
    )
    k: int = Field(5, ge=1, description="IWAE: importance samples per image.")
    steps: int | None = Field(None, gt=0, description="Optimizer steps; None uses train.steps.")

    @model_validator(mode="after")
    def _beta_is_an_elbo_weight(self) -> VaeVariant:
        if self.objective == "iwae" and self.beta != 1.0:
            raise ValueError("beta: the IWAE bound has no KL weight; use beta 1 with objective iwae")
        return self


Variant = Annotated[GanVariant | VaeVariant, Field(discriminator="kind")]


class GridConfig(StrictModel):
    """The comparison grid DVC expands: every variant × every seed."""

    variants: list[str] = Field(min_length=1, description="Names of sections under 'variants'.")
    seeds: list[int] = Field(min_length=1, description="Training seeds.")

    @field_validator("variants", "seeds")
    @classmethod
    def _unique(cls, value: list[Any]) -> list[Any]:
        duplicates = sorted({str(v) for v in value if value.count(v) > 1})
        if duplicates:
            raise ValueError(f"duplicate entries: {', '.join(duplicates)}")
        return value

    @field_validator("seeds")
    @classmethod
    def _non_negative(cls, value: list[int]) -> list[int]:
        if any(seed < 0 for seed in value):
            raise ValueError(f"seeds must be >= 0, got {value}")
        return value


class TrainConfig(StrictModel):
    """Settings shared by every training cell."""

    steps: int = Field(1500, gt=0, description="Generator (or VAE) optimizer steps per cell.")
    batch_size: int = Field(64, gt=0, description="Images per step.")
    log_every: int = Field(50, gt=0, description="Send buffered step metrics to MLflow every N steps.")
    sample_every: int = Field(500, gt=0, description="Write and log a sample grid every N steps.")
    checkpoint_every: int = Field(500, gt=0, description="Write a checkpoint every N steps.")
    snapshot_every: int = Field(
        200, gt=0, description="Save the sampling network every N steps: evaluate scores these snapshots for the "
        "FID-over-training curve."
    )
    keep_checkpoints: int = Field(2, ge=1, description="How many newest checkpoints to keep.")
    max_abs_value: float | None = Field(
        1e6, gt=0, description="A logged loss beyond this magnitude marks the cell diverged (exploding values, "
        "caught before they overflow); null checks only for NaN/Inf."
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: cuda when available, else cpu.")
    threads: int | None = Field(None, gt=0, description="CPU intra-op threads per training process, pinned so a run "
                                "reproduces exactly on another machine (wins over OMP_NUM_THREADS); null: the cores "
                                "this process may use, shared among local ranks. The value used is in train.json.")
    deterministic: bool = Field(True, description="Deterministic kernels (bit-reproducible on CPU); false lets "
                                "cuDNN pick the fastest kernels (cudnn.benchmark).")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="Autocast precision: auto = bf16 on GPUs that support it, fp32 on CPU; fp16 adds a "
        "gradient scaler."
    )
    compile: bool = Field(False, description="torch.compile the networks (not a critic trained with a gradient "
                          "penalty: compiled double backward is unsupported).")


class EvaluateConfig(StrictModel):
    """Sample-quality metrics of each cell, the FID-over-training curve and the real-vs-real noise floor."""

    num_samples: int = Field(10_000, gt=0, description="Generated images scored per cell.")
    batch_size: int = Field(500, gt=0, description="Batch size for generation and feature extraction.")
    extractors: list[ExtractorName] = Field(
        default_factory=lambda: ["domain"], min_length=1,
        description="Feature spaces scored, the first is the headline one: domain (the fitted domain classifier) "
        "and/or inception-v3-compat (torch-fidelity's Inception-v3: literature-comparable, slow on CPU).",
    )
    inception_weights: Path | None = Field(
        None, description="Local Inception-v3 weights file (torch-fidelity format); None downloads them once."
    )
    kid_subsets: int = Field(100, gt=0, description="KID: number of subsets.")
    kid_subset_size: int = Field(1000, gt=1, description="KID: images per subset (capped at the sample count).")
    isc_splits: int = Field(10, gt=0, description="IS: number of splits.")
    prc_neighborhood: int = Field(3, gt=0, description="Precision/recall: k of the k-NN manifold radius.")
    prc_samples: int | None = Field(
        None, gt=1, description="Precision/recall on this many of the generated and as many reference images (a fixed "
        "random subset of each; k-NN radii depend on the set size, so both sets are equal): the k-NN search grows "
        "with the square of it. null: all generated images and as many reference images."
    )
    noise_draws: int = Field(4, ge=1, description="Independent noise draws of num_samples images per cell: the "
                             "headline FID is their mean with a t-interval over draws (and FID∞); other metrics use "
                             "the first draw. 1: one draw, no interval.")
    confidence: float = Field(0.95, gt=0, lt=1, description="Confidence level of each cell's interval over draws.")
    coverage_min_share: float = Field(
        0.1, gt=0, le=1, description="A class counts as covered when its share of the generated samples is at least "
        "this fraction of its share of the real test set.",
    )
    curve_samples: int = Field(2000, ge=2, description="Generated images per training snapshot (FID-over-training "
                               "curve, domain features).")
    noise_floor_repeats: int = Field(3, gt=0, description="Real-vs-real FIDs (test split vs disjoint train subsets "
                                     "of the same size) averaged for the noise floor.")
    ndb_bins: int = Field(50, ge=2, description="NDB: k-means bins of the reference features (at most one per 20 "
                          "reference images).")
    ndb_alpha: float = Field(0.05, gt=0, lt=1, description="NDB: level of each bin's two-proportion test.")
    feature_check_samples: int = Field(5000, ge=10, description="Feature-space check: disturbed real training images "
                                       "scored against the test split at each level (capped at the train split).")

    @field_validator("extractors")
    @classmethod
    def _unique_extractors(cls, value: list[str]) -> list[str]:
        repeated = sorted({name for name in value if value.count(name) > 1})
        if repeated:
            raise ValueError(f"each feature space once, repeated: {', '.join(repeated)}")
        return value


class ReportConfig(StrictModel):
    """What the report shows."""

    confidence: float = Field(0.95, gt=0, lt=1, description="Confidence level of the intervals over seeds.")
    samples_per_variant: int = Field(64, gt=0, le=256, description="Images in each variant's sample grid.")


class PruneConfig(StrictModel):
    """The pruning study: global magnitude pruning of each trained generator at several sparsities."""

    sparsities: list[float] = Field(
        default_factory=lambda: [0.0, 0.3, 0.5, 0.7, 0.9], min_length=2,
        description="Fractions of the generator's conv/linear weights set to zero; 0 (the dense model) is required.",
    )
    variants: list[str] = Field(default_factory=list, description="Variants of the grid whose cells are pruned "
                                "(the prune stage's DVC matrix is prune.variants × prune.seeds); empty: none.")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1,
                             description="Seeds of the grid whose cells are pruned (the prune stage's DVC matrix).")
    finetune_steps: int = Field(100, ge=0, description="GANs: generator steps against the frozen discriminator "
                                "after pruning (0: none). VAEs are scored without fine-tuning.")
    finetune_lr: float = Field(1e-4, gt=0, description="Adam learning rate of the fine-tuning.")
    finetune_distill_weight: float = Field(
        1000.0, ge=0, description="Weight of the mean squared difference from the dense generator's images (same "
        "noise) added to the adversarial loss while fine-tuning; 0: adversarial only."
    )
    finetune_batch_size: int = Field(64, gt=0, description="Noise batch of a fine-tuning step.")
    num_samples: int = Field(2000, gt=1, description="Generated images scored per sparsity (same noise at each).")
    latency_batch_size: int = Field(64, gt=0, description="Images per timed generation call (CPU).")
    latency_repeats: int = Field(20, gt=0, description="Timed generation calls; the median is reported.")

    @field_validator("sparsities")
    @classmethod
    def _sparsities(cls, value: list[float]) -> list[float]:
        if any(not 0 <= s < 1 for s in value):
            raise ValueError(f"each sparsity must be in [0, 1), got {value}")
        if 0.0 not in value:
            raise ValueError(f"must include 0 (the dense reference), got {value}")
        if len(set(value)) != len(value):
            raise ValueError(f"duplicate sparsities in {value}")
        return sorted(value)


class RetrainConfig(StrictModel):
    """The quality gate of scheduled retraining (``make retrain`` → ``python -m stages gate``)."""

    fid_tolerance: float = Field(
        0.1, ge=0, description="Smallest relative rise of a variant's mean FID over the baseline's "
        "reports/metrics.json that fails the gate (when the seeds also say it is not noise)."
    )
    alpha: float = Field(0.05, gt=0, lt=1, description="Level of the one-sided Welch test over seeds that a rise "
                         "must pass to count as a regression.")
    baseline: str = Field("HEAD", min_length=1, description="Git revision holding the baseline reports/metrics.json.")


class TrackingConfig(StrictModel):
    """MLflow settings ($MLFLOW_TRACKING_URI overrides the store)."""

    experiment_prefix: str = Field("genbench", min_length=1, description="Experiment name: '<prefix>-<dataset>'.")
    system_metrics_interval: float | None = Field(
        10.0, gt=0, description="Seconds between system/* samples (CPU, memory, disk, network, GPU) of training runs; "
        "null turns them off."
    )
    log_models: bool = Field(
        False, description="Log every ok cell's generator as an MLflow model when it is trained (a torch.export, "
        "about 5 s a cell on a 2-core CPU); false: only the champion's, logged by the report stage."
    )
    delivery_timeout: float = Field(
        30.0, ge=0, description="Seconds a finished stage waits for its MLflow logging to be delivered; the rest "
        "stays in runs/<cell>/mlflow/ for `python -m stages sync`."
    )
    registered_model: str | None = Field(
        None, min_length=1, description="Registry name of the champion generator; null: '<prefix>-<dataset>-generator'."
    )


class Params(StrictModel):
    """The whole ``params.yaml``."""

    data: DataConfig = Field(default_factory=DataConfig)
    evaluator: EvaluatorConfig = Field(default_factory=EvaluatorConfig)
    grid: GridConfig
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    retrain: RetrainConfig = Field(default_factory=RetrainConfig)
    prune: PruneConfig = Field(default_factory=PruneConfig)
    variants: dict[str, Variant] = Field(min_length=1, description="One section per variant name.")

    @model_validator(mode="after")
    def _cross_checks(self) -> Params:
        problems = cross_field_problems(self.model_dump())
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def variant(self, name: str) -> GanVariant | VaeVariant:
        """The named variant's section; raises ConfigError listing the known names."""
        if name not in self.variants:
            raise ConfigError(f"unknown variant '{name}': params define {', '.join(sorted(self.variants))}")
        return self.variants[name]

    def steps_for(self, name: str) -> int:
        """Optimizer steps of a variant: its own ``steps`` or ``train.steps``."""
        return self.variant(name).steps or self.train.steps

    def cell_config(self, variant: str, seed: int) -> dict[str, Any]:
        """The resolved configuration of one grid cell (what training depends on), as plain data."""
        return {
            "variant": variant,
            "seed": seed,
            "data": self.data.model_dump(mode="json"),
            "train": self.train.model_dump(mode="json"),
            "steps": self.steps_for(variant),
            "variant_params": self.variant(variant).model_dump(mode="json"),
        }


def is_power_of_two(n: int) -> bool:
    """What the conv architectures need of a resolution (with ≥ 8)."""
    return n > 0 and n & (n - 1) == 0


def _section(raw: dict[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name)
    return value if isinstance(value, dict) else {}


def cross_field_problems(raw: dict[str, Any]) -> list[str]:
    """Checks spanning sections, as ``key.path: message`` lines; tolerant of invalid input elsewhere."""
    problems = []
    grid, variants, data, train = (_section(raw, key) for key in ("grid", "variants", "data", "train"))
    names = grid.get("variants")
    if isinstance(names, list) and isinstance(raw.get("variants"), dict):
        undefined = [str(name) for name in names if name not in variants]
        if undefined:
            problems.append(
                f"grid.variants: {', '.join(undefined)} not defined under 'variants' "
                f"(defined: {', '.join(sorted(map(str, variants))) or 'none'})"
            )
    resolution = data.get("resolution", 32)
    if isinstance(resolution, int) and resolution >= 8 and not is_power_of_two(resolution):
        problems.append(
            f"data.resolution: the conv architectures need a power of two (8, 16, 32, 64, ...), got {resolution}"
        )
    for key in ("variants", "seeds"):
        trained, pruned = grid.get(key), _section(raw, "prune").get(key)
        if isinstance(trained, list) and isinstance(pruned, list):
            untrained = [str(item) for item in pruned if item not in trained]
            if untrained:
                problems.append(f"prune.{key}: {', '.join(untrained)} not in grid.{key} "
                                f"({', '.join(map(str, trained))}): only trained cells can be pruned")
    batch, max_train = train.get("batch_size", 64), data.get("max_train_samples")
    if isinstance(batch, int) and isinstance(max_train, int) and 0 < max_train < batch:
        problems.append(f"train.batch_size: {batch} is larger than data.max_train_samples ({max_train})")
    return problems


def _format_location(loc: tuple[Any, ...]) -> str:
    """``('variants', 'vae', 'vae', 'beta')`` → ``variants.vae.beta`` (drops the union tag pydantic inserts)."""
    if len(loc) >= 3 and loc[0] == "variants" and loc[2] in ("gan", "vae"):
        loc = loc[:2] + loc[3:]
    return ".".join(f"[{item}]" if isinstance(item, int) else str(item) for item in loc).replace(".[", "[")


def format_validation_error(error: ValidationError, source: str) -> list[str]:
    """One line per problem: ``<file>: <key.path>: <message> (got <value>)``."""
    lines = []
    for problem in error.errors():
        where = _format_location(tuple(problem["loc"]))
        message = problem["msg"].removeprefix("Value error, ")
        if not where:  # cross-field checks already name their keys, one per line
            lines += [f"{source}: {line}" for line in message.splitlines()]
            continue
        got = ""
        if problem["type"] not in ("missing", "value_error") and "input" in problem:
            got = f" (got {problem['input']!r})"
        lines.append(f"{source}: {where}: {message}{got}")
    return lines


def parse_params(raw: Any, source: str = "params.yaml") -> Params:
    """Validate already-loaded YAML data; raises ConfigError listing every problem."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of sections at the top level, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as error:
        lines = format_validation_error(error, source)
        if all(problem["loc"] for problem in error.errors()):  # field errors hid the cross-field checks: add them
            lines += [f"{source}: {line}" for line in cross_field_problems(raw)]
        count = len(lines)
        raise ConfigError(f"{source}: {count} problem{'s' if count != 1 else ''}:\n" + "\n".join(lines)) from None


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate ``params.yaml``; raises ConfigError for a missing file, bad YAML or bad values."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: params file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read params file: {error}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(f"{path}: invalid YAML{where}: {problem}") from None
    return parse_params(raw, str(path))
