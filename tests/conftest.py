"""Shared fixtures: tiny params and prepared data in a temporary working directory."""

from __future__ import annotations

import copy
import json
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import torch
import yaml

if TYPE_CHECKING:
    from pipeline.teamserver import MlflowServer

REPO = Path(__file__).resolve().parents[1]
# `make` printing a target's recipe, with its `setup` prerequisite taken as done; --no-print-directory because under
# `make test` the child is a sub-make (MAKELEVEL is set) and would print "Entering directory" lines
MAKE_DRY_RUN = ("make", "--no-print-directory", "-n", "-o", "setup")
# Before any test runs `dvc`, in this process and every subprocess: DVC's analytics would try to reach the network
# from `dvc init` on, before a test's `dvc config core.analytics false` could turn them off.
os.environ["DVC_NO_ANALYTICS"] = "1"
# Every process a test starts computes on one CPU thread unless told otherwise: two pytest-xdist workers share two
# cores, and children on a thread per core each oversubscribe them (OpenMP's spin-waiting made the kill -9 test
# 4× slower beside another worker). Tests that pin threads themselves (train.threads, OMP_NUM_THREADS) still do.
os.environ.setdefault("OMP_NUM_THREADS", "1")

TINY_PARAMS: dict[str, Any] = {
    "grid": {"variants": ["gan", "vae"], "seeds": [0]},
    "data": {"dataset": "digits", "resolution": 8},
    "evaluator": {"epochs": 1, "width": 4, "feature_dim": 8, "batch_size": 32},
    "train": {"steps": 6, "batch_size": 8, "log_every": 2, "sample_every": 3, "checkpoint_every": 3, "snapshot_every": 3},
    "report": {"confidence": 0.95},
    # dvc.yaml's prune matrix reads prune.variants and prune.seeds from the params file itself (DVC does not see
    # pydantic defaults)
    "prune": {"sparsities": [0.0, 0.5], "variants": ["gan", "vae"], "seeds": [0], "num_samples": 64, "finetune_steps": 2, "finetune_batch_size": 8,
              "latency_batch_size": 4, "latency_repeats": 2},
    "evaluate": {"num_samples": 64, "batch_size": 32, "kid_subsets": 5, "kid_subset_size": 16, "isc_splits": 2,
                 "noise_draws": 3, "curve_samples": 32, "noise_floor_repeats": 2},
    "variants": {
        "gan": {"kind": "gan", "loss": "ns", "model": {"width": 4, "latent_dim": 8}},
        "vae": {"kind": "vae", "model": {"width": 4, "latent_dim": 4}},
    },
}


def tiny_params(**overrides: Any) -> dict[str, Any]:
    """A deep copy of the tiny params, with top-level sections replaced by ``overrides``."""
    raw = copy.deepcopy(TINY_PARAMS)
    raw.update(overrides)
    if "prune" not in overrides:  # another grid: prune those of its variants the tiny study prunes
        raw["prune"]["variants"] = [v for v in raw["prune"]["variants"] if v in raw["grid"]["variants"]]
    return raw


def write_params(path: Path, raw: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def write_prepared(root: Path, *, n_train: int = 64, n_test: int = 32, channels: int = 1, resolution: int = 8,
                   num_classes: int = 4, seed: int = 0) -> Path:
    """Random class-dependent images in the prepared-data layout (no dataset source needed)."""
    rng = np.random.default_rng(seed)
    out = root / "data" / "prepared"
    out.mkdir(parents=True, exist_ok=True)
    sha = {}
    for split, n in (("train", n_train), ("test", n_test)):
        labels = rng.integers(0, num_classes, n).astype(np.int64)
        base = (labels[:, None, None, None] * (255 // num_classes)).astype(np.int64)
        images = np.clip(base + rng.integers(0, 40, (n, channels, resolution, resolution)), 0, 255).astype(np.uint8)
        for name, array in ((f"{split}_images.npy", images), (f"{split}_labels.npy", labels)):
            np.save(out / name, array)
            sha[name] = f"fake-{name}"
    meta = {
        "dataset": "synthetic", "resolution": resolution, "channels": channels, "shape": [channels, resolution, resolution],
        "num_classes": num_classes, "class_names": [str(i) for i in range(num_classes)],
        "counts": {"train": n_train, "test": n_test}, "sha256": sha, "fingerprint": f"synthetic-{seed}",
    }
    (out / "meta.json").write_text(json.dumps(meta))
    return out


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temp working directory with its own MLflow store; torch kept to one thread for speed on 2 cores."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    return tmp_path


@pytest.fixture(autouse=True)
def _small_torch() -> None:
    torch.set_num_threads(1)


def save_untrained_evaluator() -> None:
    """A width-4 domain classifier at its initialisation, for :func:`write_prepared`'s default data, as the project's
    evaluator (a fit takes seconds)."""
    from pipeline import layout
    from pipeline.evaluation.classifier import DomainClassifier
    from pipeline.evaluation.evaluator import save_evaluator

    model = DomainClassifier(1, 8, 4, width=4, feature_dim=8).eval()
    save_evaluator(layout.EVALUATOR_PATH, model, metrics={"test_accuracy": 0.5}, data_fingerprint="synthetic-0")


@pytest.fixture(scope="session")
def tiny_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once a test process: prepared data (128 train, 32 test), an untrained evaluator, the tiny params and the
    cells gan-0 and vae-0 trained, logged to the project's own MLflow store. Tests take a copy (:func:`trained_workdir`).
    """
    from pipeline.config import parse_params
    from pipeline.training.loop import train_cell

    root = tmp_path_factory.mktemp("tiny-project")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        torch.set_num_threads(1)  # as every test runs (_small_torch), which a session fixture precedes
        write_prepared(root, n_train=128)
        save_untrained_evaluator()
        write_params(root / "params.yaml", TINY_PARAMS)
        params = parse_params(TINY_PARAMS)
        for variant in ("gan", "vae"):
            train_cell(params, variant, 0, progress=False)
    return root


def clone_project(template: Path, dest: Path) -> Path:
    """Copy a project folder and re-point what holds its absolute path: the MLflow store's artifact locations and
    the outboxes' tracking URIs. Fails if any other small text file still names the template."""
    shutil.copytree(template, dest, dirs_exist_ok=True)
    old, new = str(template), str(dest)
    with sqlite3.connect(dest / "mlflow.db") as db:
        db.execute("UPDATE experiments SET artifact_location = replace(artifact_location, ?, ?)", (old, new))
        db.execute("UPDATE runs SET artifact_uri = replace(artifact_uri, ?, ?)", (old, new))
    db.close()
    for state in dest.glob("runs/*/mlflow/*/state.json"):
        state.write_text(state.read_text().replace(old, new))
    texts = [p for ext in ("json", "jsonl", "yaml", "csv") for p in dest.rglob(f"*.{ext}")]
    stale = [str(p.relative_to(dest)) for p in texts if old in p.read_text(errors="replace")]
    assert not stale, f"files of the clone still name the template {old}: {stale}"
    return dest


@pytest.fixture
def trained_workdir(workdir: Path, tiny_project: Path) -> Path:
    """:func:`workdir` holding a private copy of :func:`tiny_project` (gan-0 and vae-0 trained)."""
    return clone_project(tiny_project, workdir)


@pytest.fixture(scope="session")
def team_server() -> Iterator[MlflowServer]:
    """A real PostgreSQL cluster and ``mlflow server`` on free loopback ports, shared by the tests that need one."""
    from pipeline.teamserver import MlflowServer, Postgres, free_port, postgres_bindir

    # Not pytest's tmp_path: its 0700 parents would keep the postgres user (used when running as root) out.
    root = Path(tempfile.mkdtemp(prefix="genbench-teamserver-"))
    root.chmod(0o755)
    postgres = Postgres(root / "postgres", free_port(), bindir=postgres_bindir()).start()
    server = MlflowServer(postgres.uri, root / "artifacts", free_port())
    try:
        yield server.start(log=root / "mlflow.log")
    finally:
        server.stop()
        postgres.stop()
        shutil.rmtree(root, ignore_errors=True)


def copy_project(dest: Path, names: list[str]) -> Path:
    """Copy these files and folders of the repository into ``dest`` (a scratch project for DVC/make tests)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, dest / name)
    return dest
