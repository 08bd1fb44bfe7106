"""The evaluator of a grid: which kind (``evaluator.kind``), fitting it, judging it, and its file.

``auto`` picks the domain classifier only when the labels can carry a feature space — at least
``evaluator.min_classes`` classes of at least ``evaluator.min_images_per_class`` training images each — and the
contrastive encoder otherwise (a flat folder is one class "all": a classifier of it learns nothing). The file
``models/evaluator.pt`` is one dict (format_version, kind, arch, state_dict, metrics, data_fingerprint);
``models/evaluator.json`` holds the metrics, the kind, why it was chosen and whether it is weak.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipeline.config import EvaluatorConfig
from pipeline.errors import DataError, InputError
from pipeline.evaluation.classifier import DomainClassifier, ProgressFn, fit_classifier
from pipeline.evaluation.contrastive import ContrastiveEncoder, fit_contrastive
from pipeline.io import atomic_save, sha256_file

FORMAT_VERSION = 2
FIT_HINT = "run `python -m stages fit-evaluator` to (re)create it"
MODELS: dict[str, type[nn.Module]] = {"classifier": DomainClassifier, "contrastive": ContrastiveEncoder}
Evaluator = DomainClassifier | ContrastiveEncoder


def choose_kind(cfg: EvaluatorConfig, train_labels: torch.Tensor, class_names: list[str]) -> tuple[str, str]:
    """The evaluator kind to fit and why, from ``evaluator.kind`` and the training labels' class counts."""
    counts = torch.bincount(train_labels.long(), minlength=len(class_names))
    classes, smallest = len(class_names), int(counts.min()) if counts.numel() else 0
    rule = f"rule: ≥ {cfg.min_classes} classes of ≥ {cfg.min_images_per_class} training images each"
    seen = f"{classes} class{'es' * (classes != 1)}, the smallest with {smallest} training images"
    if cfg.kind == "classifier":
        if classes < 2:
            raise DataError(f"evaluator.kind: a classifier needs at least 2 classes, the data have {classes} "
                            f"({', '.join(class_names)}); use contrastive or auto")
        return "classifier", f"evaluator.kind is classifier ({seen})"
    if cfg.kind == "contrastive":
        return "contrastive", f"evaluator.kind is contrastive ({seen})"
    if classes >= cfg.min_classes and smallest >= cfg.min_images_per_class:
        return "classifier", f"auto: {seen} meets the {rule}"
    return "contrastive", f"auto: {seen} does not meet the {rule}"


def _judge(kind: str, metrics: dict[str, Any], cfg: EvaluatorConfig) -> dict[str, Any]:
    """The kind's quality figure, its chance level, and whether (and why) the evaluator is weak."""
    if kind == "classifier":
        accuracy, chance = metrics["test_accuracy"], metrics["chance_accuracy"]
        weak = accuracy < cfg.min_accuracy
        reason = f"test accuracy {accuracy:.3f} is below evaluator.min_accuracy {cfg.min_accuracy}" if weak else None
        return {"quality_metric": "test_accuracy", "quality": accuracy, "quality_chance": chance, "weak": weak,
                "weak_reason": reason}
    value, at_init = metrics["view_retrieval"], metrics["view_retrieval_at_init"]
    lift = value - at_init
    weak = lift < cfg.contrastive.min_lift
    reason = (f"view retrieval {value:.3f} is only {lift:+.3f} over the same network at its random initialisation "
              f"({at_init:.3f}; evaluator.contrastive.min_lift {cfg.contrastive.min_lift})") if weak else None
    return {"quality_metric": "view_retrieval", "quality": value, "quality_at_init": at_init,
            "quality_chance": metrics["view_retrieval_chance"], "weak": weak, "weak_reason": reason}


def fit_evaluator(data: dict[str, torch.Tensor], meta: dict[str, Any], cfg: EvaluatorConfig, *,
                  progress: ProgressFn | None = None) -> tuple[Evaluator, dict[str, Any]]:
    """Choose and fit the evaluator on the prepared ``data`` (``{train,test}_{images,labels}``); returns it and
    the metrics for ``models/evaluator.json``: the fit's own, ``kind``, ``kind_reason``, the quality figure
    (``quality_metric``, ``quality``, ``quality_chance``), ``weak`` and ``weak_reason``."""
    kind, reason = choose_kind(cfg, data["train_labels"], list(meta["class_names"]))
    num_classes = int(meta["num_classes"])
    if kind == "classifier":
        model, metrics = fit_classifier(data["train_images"], data["train_labels"], data["test_images"],
                                        data["test_labels"], cfg, num_classes=num_classes, progress=progress)
        metrics["chance_accuracy"] = float(torch.bincount(data["test_labels"]).max()) / data["test_labels"].shape[0]
        metrics["min_accuracy"] = cfg.min_accuracy
        metrics["meets_min_accuracy"] = metrics["test_accuracy"] >= cfg.min_accuracy
    else:
        model, metrics = fit_contrastive(data, cfg.contrastive, num_classes=num_classes, progress=progress)
    metrics.update(kind=kind, kind_reason=reason, num_classes=num_classes if kind == "classifier" else 0,
                   **_judge(kind, metrics, cfg), dataset=meta["dataset"], data_fingerprint=meta["fingerprint"],
                   config=cfg.model_dump(mode="json"))
    return model, metrics


def save_evaluator(path: str | Path, model: Evaluator, *, metrics: dict[str, Any], data_fingerprint: str) -> None:
    """Write the evaluator as one dict (format_version, kind, arch, state_dict, metrics, data_fingerprint)."""
    kind = next(name for name, cls in MODELS.items() if isinstance(model, cls))
    checkpoint = {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "arch": model.arch(),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "metrics": dict(metrics),
        "data_fingerprint": data_fingerprint,
    }
    atomic_save(path, lambda handle: torch.save(checkpoint, handle))


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InputError(f"{path}: evaluator not found; {FIT_HINT}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises pickle, zip, EOF or runtime errors for damaged files
        raise InputError(
            f"{path}: cannot read the evaluator: damaged or not a torch checkpoint ({type(error).__name__}); {FIT_HINT}"
        ) from None
    if not isinstance(checkpoint, dict) or not {"format_version", "arch", "state_dict"} <= checkpoint.keys():
        raise InputError(f"{path}: not an evaluator checkpoint; {FIT_HINT}")
    if checkpoint["format_version"] != FORMAT_VERSION:
        raise InputError(
            f"{path}: evaluator format {checkpoint['format_version']} is not the supported {FORMAT_VERSION}; {FIT_HINT}"
        )
    if checkpoint.get("kind") not in MODELS:
        raise InputError(f"{path}: unknown evaluator kind {checkpoint.get('kind')!r} (known: {', '.join(MODELS)}); "
                         f"{FIT_HINT}")
    return checkpoint


def load_evaluator(path: str | Path) -> tuple[Evaluator, dict[str, Any]]:
    """Rebuild the evaluator from ``path`` (CPU, eval mode); returns it and the checkpoint without its weights.

    Raises InputError when the file is missing, unreadable or not an evaluator checkpoint.
    """
    path = Path(path)
    checkpoint = _read(path)
    try:
        model = MODELS[checkpoint["kind"]](**checkpoint["arch"])
        model.load_state_dict(checkpoint["state_dict"])
    except (TypeError, RuntimeError) as error:
        raise InputError(f"{path}: evaluator weights do not match its architecture ({error}); {FIT_HINT}") from None
    model.eval()
    return model, {key: value for key, value in checkpoint.items() if key != "state_dict"}


def evaluator_kind(path: str | Path) -> str:
    """``classifier`` or ``contrastive``: the kind of the evaluator file at ``path``."""
    return str(_read(Path(path))["kind"])


def weights_hash(path: str | Path) -> str:
    """Hex SHA-256 of the evaluator file: part of every metric-cache key."""
    return sha256_file(path)


def write_evaluator(cfg: EvaluatorConfig, *, progress: ProgressFn | None = None) -> dict[str, Any]:
    """Fit the evaluator on ``data/prepared/`` and write ``models/evaluator.pt`` and ``models/evaluator.json``."""
    from pipeline import layout
    from pipeline.data import load_meta, load_prepared
    from pipeline.io import atomic_write_json

    meta = load_meta(layout.PREPARED_DIR)
    data = {}
    for split in ("train", "test"):
        data[f"{split}_images"], data[f"{split}_labels"] = load_prepared(split, layout.PREPARED_DIR)
    model, metrics = fit_evaluator(data, meta, cfg, progress=progress)
    save_evaluator(layout.EVALUATOR_PATH, model, metrics=metrics, data_fingerprint=meta["fingerprint"])
    metrics = {**metrics, "weights_sha256": weights_hash(layout.EVALUATOR_PATH)}
    atomic_write_json(layout.EVALUATOR_METRICS_PATH, metrics)
    return metrics


def describe(metrics: dict[str, Any]) -> str:
    """One line: the kind, why, its quality figure against chance (and its initialisation), the fit's cost."""
    quality = f"{metrics['quality_metric']} {metrics['quality']:.4f} (chance {metrics['quality_chance']:.4f}"
    if metrics.get("quality_at_init") is not None:
        quality += f", at random initialisation {metrics['quality_at_init']:.4f}"
    return (f"evaluator: {metrics['kind']} ({metrics['kind_reason']}); {quality}) after {metrics['steps']} steps "
            f"({metrics['train_seconds']:.1f} s, {metrics['device']})")


def weak_warning(metrics: dict[str, Any]) -> str | None:
    """What to tell the user when the evaluator is weak (None when it is not)."""
    if not metrics["weak"]:
        return None
    return (f"weak evaluator: {metrics['weak_reason']}. FID/KID in its feature space are less trustworthy; see the "
            "feature-space check (metrics/feature-check.json) and raise the evaluator's epochs or width.")
