"""The self-supervised evaluator: a conv encoder trained with SimCLR's NT-Xent loss on two augmented views of each
training image (Chen et al. 2020), for data without labels that could carry a classifier's feature space.

Its embedding (the layer before the projection head, as SimCLR evaluates) is the FID/KID/precision-recall space;
it has no classes, so IS and class coverage do not apply. Augmentations run batched on the training device:
random resized crop and horizontal flip through one affine grid per image, then intensity jitter (grey) or colour
jitter and random greyscale (RGB). ``quality`` measures the fitted encoder against the same network at its random
initialisation, so an encoder that learnt nothing is visible as such.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from pipeline.config import ContrastiveConfig
from pipeline.errors import DataError
from pipeline.evaluation.classifier import CHANNELS_LAST, ConvEmbedding, ProgressFn, device_for_fit, to_unit_range
from pipeline.seeding import seed_everything

QUALITY_SUBSET = 2000  # test images used by the retrieval / alignment / uniformity measures
KNN_BANK = 10_000  # training images of the k-NN probe's memory bank
KNN_K = 20


class ContrastiveEncoder(nn.Module):
    """:class:`ConvEmbedding` plus SimCLR's two-layer projection head (used only by the training loss)."""

    def __init__(self, channels: int, resolution: int, width: int = 16, feature_dim: int = 128,
                 projection_dim: int = 64):
        super().__init__()
        self.channels, self.resolution, self.width = channels, resolution, width
        self.feature_dim, self.projection_dim = feature_dim, projection_dim
        self.num_classes = 0  # no classes: IS and class coverage do not apply
        self.encoder = ConvEmbedding(channels, resolution, width, feature_dim)
        self.projection = nn.Sequential(nn.Linear(feature_dim, feature_dim), nn.ReLU(inplace=True),
                                        nn.Linear(feature_dim, projection_dim))

    def arch(self) -> dict[str, int]:
        """Constructor arguments: ``ContrastiveEncoder(**model.arch())`` rebuilds the architecture."""
        return {"channels": self.channels, "resolution": self.resolution, "width": self.width,
                "feature_dim": self.feature_dim, "projection_dim": self.projection_dim}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Embedding (B, feature_dim) of float images in [-1, 1]: the FID/KID feature space."""
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Projection (B, projection_dim) that the NT-Xent loss compares."""
        return self.projection(self.features(x))


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's normalised-temperature cross entropy of two views (B, P): each view must pick its partner among the
    other 2B − 2 embeddings of the batch."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)  # (2B, P)
    logits = z @ z.T / temperature  # (2B, 2B)
    logits.fill_diagonal_(-math.inf)  # an embedding is never its own positive
    batch = z1.shape[0]
    targets = torch.cat([torch.arange(batch, 2 * batch), torch.arange(batch)]).to(z.device)  # partner index
    return F.cross_entropy(logits, targets)


def _crop_flip(x: torch.Tensor, cfg: ContrastiveConfig, generator: torch.Generator) -> torch.Tensor:
    """Random resized crop (area share in [crop_min_scale, 1], aspect ratio in [3/4, 4/3]) and flip, per image."""
    b = x.shape[0]
    u = torch.rand(b, 4, generator=generator).to(x.device)  # (B, 4): area, log-ratio, x-offset, y-offset
    area = cfg.crop_min_scale + (1 - cfg.crop_min_scale) * u[:, 0]
    ratio = torch.exp((u[:, 1] * 2 - 1) * math.log(4 / 3))
    sx, sy = (area * ratio).sqrt().clamp(max=1), (area / ratio).sqrt().clamp(max=1)  # crop side / image side
    tx, ty = (u[:, 2] * 2 - 1) * (1 - sx), (u[:, 3] * 2 - 1) * (1 - sy)  # crop centre, inside the image
    flip = torch.where(torch.rand(b, generator=generator).to(x.device) < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3, device=x.device)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = sx * flip, tx, sy, ty
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)  # (B, R, R, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _jitter(x: torch.Tensor, cfg: ContrastiveConfig, generator: torch.Generator) -> torch.Tensor:
    """Brightness and contrast jitter for every image; saturation jitter and random greyscale for RGB."""
    b = x.shape[0]
    u = torch.rand(b, 4, generator=generator).to(x.device)  # (B, 4)
    strength = cfg.jitter
    x = x + (u[:, 0] * 2 - 1).view(b, 1, 1, 1) * strength  # brightness, in [-1, 1] units
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * (1 + (u[:, 1] * 2 - 1) * strength).view(b, 1, 1, 1) + mean  # contrast
    if x.shape[1] == 3:
        grey = x.mean(dim=1, keepdim=True).expand_as(x)
        x = grey + (x - grey) * (1 + (u[:, 2] * 2 - 1) * strength).view(b, 1, 1, 1)  # saturation
        x = torch.where((u[:, 3] < 0.2).view(b, 1, 1, 1), grey, x)  # random greyscale, p = 0.2 (SimCLR)
    return x.clamp(-1, 1)


def augment(images: torch.Tensor, cfg: ContrastiveConfig, generator: torch.Generator) -> torch.Tensor:
    """One random view of uint8 (B, C, R, R) images as float (B, C, R, R) in [-1, 1]."""
    return _jitter(_crop_flip(to_unit_range(images), cfg, generator), cfg, generator)


@torch.inference_mode()
def embed(model: ContrastiveEncoder, images: torch.Tensor, *, batch_size: int = 1000) -> torch.Tensor:
    """Eval-mode embeddings (N, feature_dim) of uint8 images, on the CPU."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = [model.features(to_unit_range(images[i : i + batch_size].to(device))).cpu()
           for i in range(0, images.shape[0], batch_size)]
    model.train(was_training)
    return torch.cat(out)


def knn_accuracy(bank: torch.Tensor, bank_labels: torch.Tensor, queries: torch.Tensor, labels: torch.Tensor,
                 *, k: int = KNN_K) -> float:
    """Cosine k-NN (majority vote) accuracy of ``queries`` (M, D) against a labelled bank (N, D)."""
    bank, queries = F.normalize(bank, dim=1), F.normalize(queries, dim=1)
    nearest = (queries @ bank.T).topk(min(k, bank.shape[0]), dim=1).indices  # (M, k)
    votes = F.one_hot(bank_labels[nearest], int(bank_labels.max()) + 1).sum(dim=1)  # (M, classes)
    return float((votes.argmax(dim=1) == labels).float().mean())


def view_measures(model: ContrastiveEncoder, images: torch.Tensor, cfg: ContrastiveConfig, seed: int) -> dict[str, float]:
    """Label-free quality of an encoder on two random views of each image: view retrieval (top-1 share of views whose
    nearest other-view embedding is their own partner; chance 1/N), alignment and uniformity (Wang & Isola 2020)."""
    generator = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        views = [F.normalize(model.features(augment(images.to(device), cfg, generator)), dim=1).cpu() for _ in (0, 1)]
    model.train(was_training)
    a, b = views  # (N, D) each
    retrieval = float(((a @ b.T).argmax(dim=1) == torch.arange(a.shape[0])).float().mean())
    alignment = float((a - b).pow(2).sum(dim=1).mean())
    uniformity = float(torch.pdist(a).pow(2).mul(-2).exp().mean().log())
    return {"view_retrieval": retrieval, "alignment": alignment, "uniformity": uniformity}


def quality(model: ContrastiveEncoder, data: dict[str, torch.Tensor], cfg: ContrastiveConfig, *,
            num_classes: int) -> dict[str, Any]:
    """View retrieval, alignment, uniformity and, with ≥ 2 classes, k-NN accuracy of ``model`` (see module doc)."""
    test = data["test_images"][:QUALITY_SUBSET]
    result: dict[str, Any] = view_measures(model, test, cfg, seed=cfg.seed + 1)
    result["view_retrieval_chance"] = 1 / test.shape[0]
    if num_classes >= 2:
        bank = data["train_images"][:KNN_BANK]
        result["knn_accuracy"] = knn_accuracy(embed(model, bank), data["train_labels"][:KNN_BANK],
                                              embed(model, data["test_images"]), data["test_labels"])
        result["knn_chance"] = float(torch.bincount(data["test_labels"]).max()) / data["test_labels"].shape[0]
    return result


def fit_contrastive(data: dict[str, torch.Tensor], cfg: ContrastiveConfig, *, num_classes: int,
                    progress: ProgressFn | None = None) -> tuple[ContrastiveEncoder, dict[str, Any]]:
    """Train a :class:`ContrastiveEncoder` on ``data["train_images"]`` (uint8 N×C×R×R) with NT-Xent and Adam
    (cosine-decayed); returns it (eval mode, CPU) and its metrics, with the quality of the fitted encoder and of
    its random initialisation (``*_at_init``)."""
    images = data["train_images"]
    if images.shape[0] < 2:
        raise DataError(f"the contrastive evaluator needs at least 2 training images, got {images.shape[0]}")
    generator = seed_everything(cfg.seed)
    device = device_for_fit()
    model = ContrastiveEncoder(images.shape[1], images.shape[2], cfg.width, cfg.feature_dim, cfg.projection_dim)
    model = model.to(device=device, memory_format=CHANNELS_LAST)
    at_init = quality(model, data, cfg, num_classes=num_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    n, batch = images.shape[0], min(cfg.batch_size, images.shape[0])
    total = min(cfg.epochs * max(1, n // batch), cfg.max_steps or math.inf)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
    images, step, model_loss = images.to(device), 0, math.nan
    start = time.perf_counter()
    model.train()
    while step < total:
        order = torch.randperm(n, generator=generator).to(device)
        for begin in range(0, n - batch + 1, batch):  # full batches only: NT-Xent's negatives scale with the batch
            x = images[order[begin : begin + batch]]  # (B, C, R, R) uint8
            views = [augment(x, cfg, generator).contiguous(memory_format=CHANNELS_LAST) for _ in (0, 1)]
            loss = nt_xent(model(views[0]), model(views[1]), cfg.temperature)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            step, model_loss = step + 1, loss.item()
            if progress is not None:
                progress(step, int(total), model_loss)
            if step >= total:
                break
    train_seconds = time.perf_counter() - start
    model.eval()
    metrics = {"final_loss": model_loss, "loss_at_chance": math.log(2 * batch - 1), "train_seconds": train_seconds,
               "steps": step, "epochs": step * batch / n, "num_train": n, "num_test": int(data["test_images"].shape[0]),
               "device": device.type, "parameters": sum(p.numel() for p in model.parameters()),
               **quality(model, data, cfg, num_classes=num_classes),
               **{f"{key}_at_init": value for key, value in at_init.items() if not key.endswith("chance")}}
    return model.to(device="cpu", memory_format=torch.contiguous_format), metrics
