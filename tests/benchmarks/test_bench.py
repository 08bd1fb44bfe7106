"""``python -m benchmarks`` end to end on a tiny project: every measurement present (speeds are not asserted)."""

from __future__ import annotations

import gzip
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks import reference
from pipeline.config import parse_params
from pipeline.models import build_model
from pipeline.training.distributed import World
from pipeline.training.precision import Precision
from pipeline.training.runtime import Runtime

from pipeline import layout
from pipeline.evaluation.classifier import DomainClassifier
from pipeline.evaluation.evaluator import save_evaluator
from tests.conftest import REPO, tiny_params, write_params, write_prepared

pytestmark = pytest.mark.slow  # subprocesses training for seconds each: `make test-fast` leaves them out


def write_idx(folder: Path, prefix: str, n: int, rng: np.random.Generator) -> None:
    """Fashion-MNIST's IDX files (gzipped), as the Debian package ships them: n random 28×28 images + labels."""
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    with gzip.open(folder / f"{prefix}-images-idx3-ubyte.gz", "wb") as out:
        out.write(struct.pack(">IIII", 0x803, n, 28, 28) + images.tobytes())
    with gzip.open(folder / f"{prefix}-labels-idx1-ubyte.gz", "wb") as out:
        out.write(struct.pack(">II", 0x801, n) + labels.tobytes())


def test_bench_writes_every_measurement(tmp_path: Path) -> None:
    project, idx = tmp_path / "project", tmp_path / "idx"
    project.mkdir()
    idx.mkdir()
    rng = np.random.default_rng(0)
    write_idx(idx, "train", 128, rng)
    write_idx(idx, "t10k", 32, rng)
    write_prepared(project, n_train=128)
    raw = tiny_params(grid={"variants": ["dcgan-ns"], "seeds": [0]})
    raw["variants"] = {"dcgan-ns": {"kind": "gan", "loss": "ns", "model": {"width": 4, "latent_dim": 8}}}
    write_params(project / "params.yaml", raw)
    save_evaluator(project / layout.EVALUATOR_PATH, DomainClassifier(1, 8, 4, width=4, feature_dim=8).eval(),
                   metrics={"test_accuracy": 0.5}, data_fingerprint="synthetic-0")
    out = tmp_path / "results.json"
    command = [sys.executable, "-m", "benchmarks", "--repo", str(project), "--fashion-mnist", str(idx), "--steps", "8",
               "--rounds", "2", "--out", str(out)]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(out.read_text())
    tp = results["throughput"]
    assert len(tp["ours_images_per_second"]) == len(tp["reference_images_per_second"]) == 2
    assert tp["ratio"] > 0 and tp["steps"] == 8 and tp["precision"] == tp["reference_precision"] == "fp32"
    assert tp["memory_format"] == "contiguous"
    assert results["evaluation"]["num_samples"] == 64 and results["evaluation"]["seconds"] > 0
    assert 0 < results["memory"]["peak_rss_gib"] < 64
    assert results["noop_repro"]["seconds"] is None and "dvc status" in results["noop_repro"]["skipped"]
    fit = results["contrastive_fit"]
    assert fit["num_train"] == 128 and fit["resolution"] == 8 and fit["seconds"] > 0 and fit["steps"] >= 1
    assert "| train throughput vs bare loop |" in result.stdout and "| fit contrastive evaluator (128 images" in result.stdout
    assert not (project / "runs").exists() and not (project / "mlflow.db").exists()  # the project is untouched


class _ChannelsLastCpu(Runtime):
    """The GPU's layout on the CPU, to see that the reference loop follows the runtime's."""

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last


def test_reference_loop_runs_in_the_runtimes_precision_and_layout(monkeypatch) -> None:
    """What `--device cuda` compares: the bare loop's networks see channels_last inputs and compute in bf16, like ours."""
    seen: dict[str, list[tuple[torch.dtype, bool]]] = {"generator": [], "discriminator": []}

    def recording(*args, **kwargs):  # the first conv of each network: its output dtype and input layout
        nets = build_model(*args, **kwargs)
        for name, net in nets.items():
            conv = next(m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)))
            conv.register_forward_hook(lambda m, inputs, out, name=name: seen[name].append(
                (out.dtype, inputs[0].is_contiguous(memory_format=torch.channels_last))))
        return nets

    monkeypatch.setattr(reference, "build_model", recording)
    cfg = parse_params(tiny_params(grid={"variants": ["gan"], "seeds": [0]})).variant("gan")
    images = torch.rand(8, 1, 8, 8) * 2 - 1
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, torch.zeros(8)), batch_size=4)
    runtime = _ChannelsLastCpu(torch.device("cpu"), Precision("bf16", "cpu"), World())
    assert reference.reference_throughput(cfg, loader, steps=2, runtime=runtime, resolution=8, log_every=1) > 0
    assert seen["generator"] and all(dtype == torch.bfloat16 for dtype, _ in seen["generator"])
    assert seen["discriminator"] and all(dtype == torch.bfloat16 and channels_last  # real and generated batches
                                         for dtype, channels_last in seen["discriminator"])
