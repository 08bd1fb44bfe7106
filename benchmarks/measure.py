"""The four measurements of ``make bench``, each in a scratch workspace that borrows the repository's prepared
data and fitted evaluator (so the repository's own runs, metrics and MLflow store are never touched)."""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from benchmarks.reference import reference_loader, reference_throughput, torchvision_root
from pipeline.config import Params, load_params
from stages.common import dvc_executable

VARIANT = "dcgan-ns"  # the default grid's DCGAN: what the reference loop re-implements


@dataclass(frozen=True)
class Workspace:
    """A scratch project: params restricted to one cell, links to the repository's data/prepared and models/."""

    root: Path
    params: Params

    @classmethod
    def create(cls, root: Path, repo: Path, *, steps: int, device: str) -> Workspace:
        raw = yaml.safe_load((repo / "params.yaml").read_text())
        raw["grid"] = {"variants": [VARIANT], "seeds": [0]}
        raw.setdefault("train", {}).update(steps=steps, device=device, deterministic=device == "cpu")
        root.mkdir(parents=True, exist_ok=True)
        for name in ("data", "models"):
            if not (root / name).exists():
                (root / name).symlink_to(repo / name)
        path = root / "params.yaml"
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        return cls(root, load_params(path))

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{self.root / 'mlflow.db'}",
                "PYTHONPATH": str(Path(__file__).resolve().parents[1])}

    @contextlib.contextmanager
    def active(self):
        """Run in-process stages here, logging to the workspace's own MLflow store."""
        previous = os.environ.get("MLFLOW_TRACKING_URI")
        os.environ["MLFLOW_TRACKING_URI"] = self.env["MLFLOW_TRACKING_URI"]
        try:
            with contextlib.chdir(self.root):
                yield
        finally:
            if previous is None:
                os.environ.pop("MLFLOW_TRACKING_URI")
            else:
                os.environ["MLFLOW_TRACKING_URI"] = previous


def throughput(ws: Workspace, *, rounds: int, device: torch.device, workers: int, source: Path) -> dict[str, Any]:
    """Our ``train`` loop and the reference loop, alternately in this process; images/s of each round."""
    from pipeline.training.loop import train_cell
    from pipeline.training.runtime import Runtime

    cfg, train = ws.params.variant(VARIANT), ws.params.train
    runtime = Runtime.create(device=device.type, precision=train.precision, compile=False)  # what our loop resolves
    resolution = ws.params.data.resolution
    root, download = torchvision_root(ws.root / "torchvision", source)
    loader = reference_loader(root, download=download, resolution=resolution, batch_size=train.batch_size,
                              workers=workers, pin_memory=device.type == "cuda")
    ours, reference = [], []
    for _ in range(rounds):
        with ws.active():
            summary = train_cell(ws.params, VARIANT, 0, restart=True, progress=False)
        ours.append(summary.images_per_second)
        reference.append(reference_throughput(cfg, loader, steps=train.steps, runtime=runtime,
                                              resolution=resolution, log_every=train.log_every))
        print(f"  round {len(ours)}: ours {ours[-1]:.0f} img/s, reference {reference[-1]:.0f} img/s", flush=True)
    return {"ours_images_per_second": ours, "reference_images_per_second": reference,
            "ratio": statistics.median(ours) / statistics.median(reference), "steps": train.steps,
            "batch_size": train.batch_size, "reference_workers": workers, "precision": summary.precision,
            "reference_precision": runtime.precision.name,
            "memory_format": "channels_last" if runtime.memory_format == torch.channels_last else "contiguous"}


def evaluation(ws: Workspace) -> dict[str, Any]:
    """Wall time of the evaluate stage's work in-process: sample, featurise, every metric over the noise draws, curve."""
    from pipeline.evaluation.cell import evaluate_cell

    with ws.active():
        started = time.perf_counter()
        result = evaluate_cell(ws.params, VARIANT, 0)
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "num_samples": result.num_samples, "feature_extractor": result.feature_extractor,
            "fid": result.fid, "noise_draws": ws.params.evaluate.noise_draws,
            "curve_snapshots": len(result.fid_curve or [])}


def peak_rss(ws: Workspace) -> dict[str, Any]:
    """Peak resident memory of ``python -m stages train`` for the benchmark cell, in a child process.

    Read from the child's ``VmHWM`` (its own high-water mark since exec) while it runs: ``ru_maxrss`` of a child
    forked from this (large) process would include the pages it inherited before exec.
    """
    command = [sys.executable, "-m", "stages", "train", "--variant", VARIANT, "--seed", "0", "--restart",
               "--no-progress"]
    log = ws.root / "peak-rss-train.log"  # a file, not a pipe: a full pipe would stall the child
    with open(log, "wb") as stderr:
        process = subprocess.Popen(command, cwd=ws.root, env=ws.env, stdout=subprocess.DEVNULL, stderr=stderr)
    peak_kib = 0
    status = Path(f"/proc/{process.pid}/status")
    while process.poll() is None:
        with contextlib.suppress(OSError, ValueError, StopIteration):
            line = next(line for line in status.read_text().splitlines() if line.startswith("VmHWM:"))
            peak_kib = max(peak_kib, int(line.split()[1]))
        time.sleep(0.05)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {log.read_text()[-2000:]}")
    return {"peak_rss_gib": peak_kib / 2**20}


def noop_repro(repo: Path) -> dict[str, Any]:
    """Wall time of ``dvc repro`` in the repository when ``dvc status`` says nothing changed."""
    status = subprocess.run([dvc_executable(), "status", "--json"], cwd=repo, capture_output=True, text=True)
    if status.returncode != 0:
        return {"seconds": None, "skipped": f"`dvc status` failed in {repo}: {status.stderr.strip()[-300:]}"}
    if json.loads(status.stdout or "{}"):
        return {"seconds": None, "skipped": "the pipeline is not up to date: run `make repro` first"}
    started = time.perf_counter()
    subprocess.run([dvc_executable(), "repro"], cwd=repo, capture_output=True, check=True)
    return {"seconds": time.perf_counter() - started}


def contrastive_fit(repo: Path) -> dict[str, Any]:
    """Wall time of fitting the contrastive evaluator (the repository's ``evaluator.contrastive`` settings) on the
    repository's prepared train split, labels ignored for the fit: ≤ 4 min for 60k 32×32 images on 2 cores."""
    from pipeline.data import load_meta, load_prepared
    from pipeline.evaluation.contrastive import fit_contrastive

    prepared = repo / "data" / "prepared"
    data = {}
    for split in ("train", "test"):
        data[f"{split}_images"], data[f"{split}_labels"] = load_prepared(split, prepared)
    cfg = load_params(repo / "params.yaml").evaluator.contrastive
    started = time.perf_counter()
    _, metrics = fit_contrastive(data, cfg, num_classes=int(load_meta(prepared)["num_classes"]))
    keep = ("steps", "epochs", "num_train", "view_retrieval", "view_retrieval_at_init", "knn_accuracy",
            "knn_accuracy_at_init")
    return {"seconds": time.perf_counter() - started, "resolution": int(data["train_images"].shape[-1]),
            **{key: metrics.get(key) for key in keep}}
