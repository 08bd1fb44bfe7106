"""The bare reference loop: plain PyTorch, the same DCGAN networks, batch, loss and optimizers as the benchmarked
cell, fed the usual way: torchvision's FashionMNIST through a DataLoader with Resize/ToTensor/Normalize. It runs in
the same precision and memory format as our loop (bf16 autocast and channels_last on a GPU, fp32 on the CPU), so the
ratio compares the loops, not the arithmetic."""

from __future__ import annotations

import gzip
import shutil
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from pipeline.config import GanVariant
from pipeline.models import build_model
from pipeline.training.runtime import Runtime

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
RAW_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def torchvision_root(workdir: Path, source: Path = DEBIAN_FASHION_MNIST) -> tuple[Path, bool]:
    """A root for ``datasets.FashionMNIST``: the Debian package's files extracted into ``workdir`` when present,
    else an empty root torchvision downloads into. Returns (root, download)."""
    raw = workdir / "FashionMNIST" / "raw"
    if all((raw / name).exists() for name in RAW_FILES):
        return workdir, False
    if source.is_dir() and all((source / f"{name}.gz").exists() for name in RAW_FILES):
        raw.mkdir(parents=True, exist_ok=True)
        for name in RAW_FILES:
            with gzip.open(source / f"{name}.gz") as packed, open(raw / name, "wb") as out:
                shutil.copyfileobj(packed, out)
        return workdir, False
    return workdir, True


def reference_loader(root: Path, *, download: bool, resolution: int, batch_size: int, workers: int,
                     pin_memory: bool) -> DataLoader:
    """The textbook input pipeline: PIL images → Resize → ToTensor → Normalize to [-1, 1], shuffled batches."""
    transform = transforms.Compose([transforms.Resize(resolution), transforms.ToTensor(),
                                    transforms.Normalize((0.5,), (0.5,))])
    data = datasets.FashionMNIST(str(root), train=True, download=download, transform=transform)
    return DataLoader(data, batch_size=batch_size, shuffle=True, drop_last=True, num_workers=workers,
                      pin_memory=pin_memory, persistent_workers=workers > 0)


def reference_throughput(cfg: GanVariant, loader: DataLoader, *, steps: int, runtime: Runtime,
                         resolution: int, log_every: int) -> float:
    """Images/s of ``steps`` non-saturating GAN steps doing the same work as our trainer (a D update on a fresh
    fake batch, then a G update on new noise), as a tutorial writes them, in ``runtime``'s precision and layout."""
    torch.manual_seed(0)
    device, layout, precision = runtime.device, runtime.memory_format, runtime.precision
    nets = build_model(cfg.model, channels=1, resolution=resolution)
    generator = nets["generator"].to(device, memory_format=layout)
    discriminator = nets["discriminator"].to(device, memory_format=layout)
    opt_g = torch.optim.Adam(generator.parameters(), lr=cfg.g_optimizer.lr, betas=cfg.g_optimizer.betas)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=cfg.d_optimizer.lr, betas=cfg.d_optimizer.betas)
    scale_g, scale_d = precision.scaler(), precision.scaler()  # pass-through unless fp16
    latent, done, images = cfg.model.latent_dim, 0, 0
    started = time.perf_counter()
    while done < steps:
        for real, _ in loader:
            real = real.to(device, non_blocking=True, memory_format=layout)
            with torch.no_grad(), precision.autocast():
                fake = generator(torch.randn(real.size(0), latent, device=device))
            with precision.autocast():
                real_logits, fake_logits = discriminator(real), discriminator(fake)
                loss_d = (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                          + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
            opt_d.zero_grad()
            scale_d.scale(loss_d).backward()
            scale_d.step(opt_d)
            scale_d.update()
            with precision.autocast():
                fake_logits = discriminator(generator(torch.randn(real.size(0), latent, device=device)))
                loss_g = F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
            opt_g.zero_grad()
            scale_g.scale(loss_g).backward()
            scale_g.step(opt_g)
            scale_g.update()
            done, images = done + 1, images + real.size(0)
            if done % log_every == 0:
                print_losses = (loss_d.item(), loss_g.item())  # logged as often as our loop logs
                del print_losses
            if done == steps:
                break
    if device.type == "cuda":
        torch.cuda.synchronize()
    return images / (time.perf_counter() - started)
