"""A flat folder of unlabelled images through every stage command: ``auto`` fits the contrastive encoder, IS and
class coverage are null with their reason (n/a in the report), NDB is there, the feature-space check is monotone;
and a crippled encoder gets the report's weak-evaluator warning."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits
from typer.testing import CliRunner

from pipeline import layout
from pipeline.layout import Cell
from stages.app import app
from tests.conftest import tiny_params, write_params

pytestmark = pytest.mark.slow
ENCODER = {"width": 8, "feature_dim": 16, "projection_dim": 8, "batch_size": 64, "epochs": 20, "lr": 5e-3}


def flat_folder(folder: Path) -> Path:
    """scikit-learn's 1,797 digits as 8×8 grey PNGs in one folder: no class sub-folders, so no labels."""
    folder.mkdir(parents=True)
    for index, image in enumerate(load_digits().images):
        Image.fromarray((image * 255 / 16).round().astype(np.uint8)).save(folder / f"{index:04d}.png")
    return folder


def run_stages(root: Path, params: dict[str, Any], commands: list[list[str]]) -> None:
    write_params(root / "params.yaml", params)
    for command in commands:
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 0, f"{command}: {result.output}"


CELL = [["train", "--variant", "gan", "--seed", "0", "--no-progress"], ["evaluate", "--variant", "gan", "--seed", "0"]]
REST = [["feature-check"], ["noise-floor"], ["report"]]


def folder_params(images: Path, **evaluator: Any) -> dict[str, Any]:
    raw = tiny_params(grid={"variants": ["gan"], "seeds": [0]})
    raw["data"] = {"dataset": "folder", "root": str(images), "resolution": 8}
    raw["evaluator"] = {"contrastive": {**ENCODER, **evaluator}}
    raw["variants"] = {"gan": raw["variants"]["gan"]}
    raw["evaluate"] = {**raw["evaluate"], "num_samples": 200}
    return raw


@pytest.fixture(scope="module")
def unlabelled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("unlabelled")
    images = flat_folder(root / "images")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        run_stages(root, folder_params(images), [["prepare"], ["fit-evaluator"], *CELL, *REST])
        yield root


def read(root: Path, path: Path) -> dict[str, Any]:
    return json.loads((root / path).read_text())


def test_a_flat_folder_gets_the_contrastive_evaluator(unlabelled: Path) -> None:
    evaluator = read(unlabelled, layout.EVALUATOR_METRICS_PATH)
    assert evaluator["kind"] == "contrastive" and evaluator["num_classes"] == 0
    assert evaluator["kind_reason"].startswith("auto: 1 class, the smallest with")
    assert evaluator["weak"] is False, evaluator["weak_reason"]
    assert evaluator["view_retrieval"] >= evaluator["view_retrieval_at_init"] + 0.05
    for never in ("test_accuracy", "meets_min_accuracy", "knn_accuracy"):  # no labels: no accuracy of any kind
        assert never not in evaluator


def test_class_metrics_are_null_with_a_reason_and_ndb_is_there(unlabelled: Path) -> None:
    metrics = read(unlabelled, Cell("gan", 0).metrics)
    assert metrics["status"] == "ok" and metrics["feature_extractor"] == "domain-contrastive"
    for key in ("isc_mean", "isc_std", "classes_covered", "class_kl", "class_histogram"):
        assert metrics[key] is None, key
        assert "no classes" in metrics[f"{key}_reason"], key
    assert metrics["fid"] > 0 and 0 <= metrics["precision"] <= 1
    assert metrics["ndb_bins"] == read(unlabelled, Path("data/prepared/meta.json"))["counts"]["test"] // 20
    assert 0 <= metrics["ndb"] <= metrics["ndb_bins"] and metrics["ndb_share"] == metrics["ndb"] / metrics["ndb_bins"]
    assert metrics["ndb_js"] >= 0


def test_the_contrastive_space_passes_its_feature_check(unlabelled: Path) -> None:
    check = read(unlabelled, layout.FEATURE_CHECK_PATH)
    assert check["modes"] == "10 pixel k-means clusters" and check["num_modes"] == 10
    space = check["feature_spaces"]["domain-contrastive"]
    assert set(space["disturbances"]) == {"gaussian-noise", "gaussian-blur", "salt-and-pepper", "mode-dropping"}
    for name, entry in space["disturbances"].items():
        assert len(entry["fid"]) == len(entry["levels"]) == 5 and entry["levels"][0] == 0.0
        assert entry["monotone"] and all(b > a for a, b in zip(entry["fid"], entry["fid"][1:])), (name, entry["fid"])
    assert space["monotone"] and check["monotone"]


def test_the_report_says_which_evaluator_and_marks_n_a(unlabelled: Path) -> None:
    md = (unlabelled / "reports/report.md").read_text()
    assert "scored in the features of a contrastive (SimCLR) encoder fitted on the training split (auto: 1 class" in md
    assert "| n/a¹ |" in md and "¹ Not applicable: the evaluator has no classes" in md
    assert "Class coverage is not applicable: the evaluator has no classes" in md
    assert "| NDB (bins differing) |" in md and "FID rises with every level of every disturbance" in md
    assert "Weak evaluator" not in md
    summary = read(unlabelled, Path("reports/metrics.json"))
    assert summary["variants"]["gan"]["isc_mean"]["n"] == 0 and "isc_mean" in summary["variants"]["gan"]["not_applicable"]
    assert summary["feature_check"] == {"domain-contrastive": dict.fromkeys(
        ("gaussian-noise", "gaussian-blur", "salt-and-pepper", "mode-dropping"), True)}
    figure = unlabelled / "reports/figures/feature-check.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_crippled_encoder_gets_the_weak_evaluator_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    images = flat_folder(tmp_path / "images")
    run_stages(tmp_path, folder_params(images, width=4, max_steps=1),
               [["prepare"], ["fit-evaluator"], *CELL, ["report"]])
    evaluator = read(tmp_path, layout.EVALUATOR_METRICS_PATH)
    assert evaluator["steps"] == 1 and evaluator["weak"] is True
    md = " ".join((tmp_path / "reports/report.md").read_text().split())
    assert "**⚠ Warning:** The grid was scored in the features of a contrastive (SimCLR) encoder" in md
    assert "Weak evaluator: view retrieval" in md and "over the same network at its random initialisation" in md
