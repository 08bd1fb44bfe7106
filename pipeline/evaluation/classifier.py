"""The domain classifier: a small CNN trained on the prepared data whose features define FID/KID and whose
logits define IS, instead of an ImageNet Inception network that knows nothing about 32×32 greyscale clothes.

``fit_classifier`` trains it; :class:`ConvEmbedding` is the conv trunk it shares with the contrastive encoder.
Saving, loading and choosing between the two evaluators is :mod:`pipeline.evaluation.evaluator`'s job.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from pipeline.config import EvaluatorConfig
from pipeline.errors import DataError
from pipeline.seeding import seed_everything

CHANNELS_LAST = torch.channels_last  # ~20% faster training on 2 CPU cores (oneDNN); same maths
# progress(step, total_steps, loss): called after every optimizer step.
ProgressFn = Callable[[int, int, float], None]


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 in [0, 255] → float32 in [-1, 1], the classifier's input range."""
    return images.float() / 127.5 - 1


def _block(in_channels: int, out_channels: int) -> list[nn.Module]:
    """3×3 conv with stride 2 (halves the side) → BN → ReLU."""
    return [
        nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


class ConvEmbedding(nn.Module):
    """Three stride-2 conv blocks (width → 2·width → 4·width) and a ReLU feature layer: the evaluators' trunk.

    Inputs are float images in [-1, 1] of shape (B, channels, resolution, resolution). Strided convolutions
    instead of conv + pooling (~3× cheaper on two CPU cores).
    """

    def __init__(self, channels: int, resolution: int, width: int, feature_dim: int):
        super().__init__()
        side = resolution
        for _ in range(3):
            side = math.ceil(side / 2)  # a stride-2, padding-1 3×3 conv maps n → ceil(n / 2)
        self.body = nn.Sequential(*_block(channels, width), *_block(width, 2 * width), *_block(2 * width, 4 * width))
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(4 * width * side * side, feature_dim), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(self.body(x))  # (B, C, R, R) → (B, 4w, R/8, R/8) → (B, feature_dim)


class DomainClassifier(nn.Module):
    """:class:`ConvEmbedding` and a linear classifier: with the default config a 3-epoch Fashion-MNIST fit takes
    ~40 s on two CPU cores and reaches ~0.91 test accuracy."""

    def __init__(self, channels: int, resolution: int, num_classes: int, width: int = 16, feature_dim: int = 128):
        super().__init__()
        self.channels = channels
        self.resolution = resolution
        self.num_classes = num_classes
        self.width = width
        self.feature_dim = feature_dim
        self.encoder = ConvEmbedding(channels, resolution, width, feature_dim)
        self.head = nn.Linear(feature_dim, num_classes)

    def arch(self) -> dict[str, int]:
        """Constructor arguments: ``DomainClassifier(**model.arch())`` rebuilds the architecture."""
        return {
            "channels": self.channels,
            "resolution": self.resolution,
            "num_classes": self.num_classes,
            "width": self.width,
            "feature_dim": self.feature_dim,
        }

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (B, feature_dim): the FID/KID feature space."""
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (B, num_classes)."""
        return self.head(self.features(x))


def device_for_fit() -> torch.device:
    """Where evaluators are fitted: the GPU when there is one."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _check_split(images: torch.Tensor, labels: torch.Tensor, num_classes: int, split: str) -> None:
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise DataError(f"{split} images: expected uint8 N×C×H×W, got {images.dtype} with shape {tuple(images.shape)}")
    if images.shape[2] != images.shape[3]:
        raise DataError(f"{split} images: expected square images, got {images.shape[2]}×{images.shape[3]}")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise DataError(f"{split} labels: expected {images.shape[0]} labels, got shape {tuple(labels.shape)}")
    if images.shape[0] == 0:
        raise DataError(f"{split} split is empty")
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= num_classes:
        raise DataError(f"{split} labels: expected classes in [0, {num_classes}), found [{low}, {high}]")


@torch.inference_mode()
def accuracy(model: DomainClassifier, images: torch.Tensor, labels: torch.Tensor, *, batch_size: int = 1000) -> float:
    """Top-1 accuracy of ``model`` on uint8 ``images`` (evaluated in eval mode on the model's device)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    correct = 0
    for start in range(0, images.shape[0], batch_size):
        x = to_unit_range(images[start : start + batch_size].to(device))
        y = labels[start : start + batch_size].to(device)
        correct += int((model(x).argmax(dim=1) == y).sum())
    model.train(was_training)
    return correct / images.shape[0]


def _batch_starts(n: int, batch_size: int, *, epochs: int, total: float) -> Iterator[int]:
    """Start index of every mini-batch of ``epochs`` passes over ``n`` items, at most ``total`` of them."""
    starts = (begin for _ in range(epochs) for begin in range(0, n, batch_size))
    yield from itertools.islice(starts, int(min(total, epochs * math.ceil(n / batch_size))))


def _check_splits(train_images: torch.Tensor, train_labels: torch.Tensor, test_images: torch.Tensor,
                  test_labels: torch.Tensor, num_classes: int) -> None:
    """DataError unless both splits are labelled images of ``num_classes`` ≥ 2 classes and of the same shape."""
    if num_classes < 2:
        raise DataError(f"a classifier needs at least 2 classes, the data have {num_classes}: its features would be "
                        "its random initialisation; use evaluator.kind contrastive (or auto)")
    _check_split(train_images, train_labels, num_classes, "train")
    _check_split(test_images, test_labels, num_classes, "test")
    if train_images.shape[1:] != test_images.shape[1:]:
        raise DataError(
            f"train and test images differ in shape: {tuple(train_images.shape[1:])} vs {tuple(test_images.shape[1:])}"
        )


def fit_classifier(train_images: torch.Tensor, train_labels: torch.Tensor, test_images: torch.Tensor,
                   test_labels: torch.Tensor, cfg: EvaluatorConfig, *, num_classes: int,
                   progress: ProgressFn | None = None) -> tuple[DomainClassifier, dict[str, Any]]:
    """Train a :class:`DomainClassifier` with Adam on uint8 N×C×H×W images; returns it (eval mode, CPU) and
    its metrics: ``test_accuracy``, ``train_accuracy``, ``final_loss``, ``train_seconds``, ``epochs``, ``steps``,
    ``num_train``, ``num_test``, ``device``, ``parameters``."""
    _check_splits(train_images, train_labels, test_images, test_labels, num_classes)
    generator = seed_everything(cfg.seed)
    device = device_for_fit()
    channels, resolution = train_images.shape[1], train_images.shape[2]
    model = DomainClassifier(channels, resolution, num_classes, cfg.width, cfg.feature_dim).to(
        device=device, memory_format=CHANNELS_LAST)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)

    images = train_images.to(device)
    labels = train_labels.to(device=device, dtype=torch.long)
    n = images.shape[0]
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    total = min(cfg.epochs * steps_per_epoch, cfg.max_steps or math.inf)
    # Cosine decay from cfg.lr to zero over the run: a high peak learning rate that still settles in 3 epochs.
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
    step = 0
    model.train()
    start = time.perf_counter()
    for begin in _batch_starts(n, cfg.batch_size, epochs=cfg.epochs, total=total):
        if begin == 0:
            order = torch.randperm(n, generator=generator).to(device)
        index = order[begin : begin + cfg.batch_size]
        x = to_unit_range(images[index]).contiguous(memory_format=CHANNELS_LAST)  # (B, C, R, R)
        logits = model(x)  # (B, num_classes)
        loss = F.cross_entropy(logits, labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        step += 1
        if progress is not None:
            progress(step, int(total), loss.item())
    train_seconds = time.perf_counter() - start
    model.eval()
    check = min(n, 10_000)  # train accuracy on a subset: enough to see over/under-fitting, cheap
    metrics = {
        "test_accuracy": accuracy(model, test_images, test_labels),
        "train_accuracy": accuracy(model, train_images[:check], train_labels[:check]),
        "final_loss": loss.item(),
        "train_seconds": train_seconds,
        "epochs": step / steps_per_epoch,
        "steps": step,
        "num_train": n,
        "num_test": int(test_images.shape[0]),
        "device": device.type,
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    return model.to(device="cpu", memory_format=torch.contiguous_format), metrics
