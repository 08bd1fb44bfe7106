"""The domain classifier: shapes, a fit on separable data, the evaluator file round trip and its errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from pipeline.config import EvaluatorConfig
from pipeline.errors import DataError, InputError
from pipeline.evaluation.classifier import DomainClassifier, fit_classifier, to_unit_range
from pipeline.evaluation.evaluator import FORMAT_VERSION, load_evaluator, save_evaluator, weights_hash

TINY = EvaluatorConfig(width=8, feature_dim=8, epochs=8, batch_size=32, lr=1e-2, seed=0)


def separable(n: int, *, num_classes: int = 4, resolution: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Class k lights up the k-th horizontal band of the image; uniform noise elsewhere."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, num_classes, (n,), generator=g)
    images = torch.randint(0, 60, (n, 1, resolution, resolution), generator=g, dtype=torch.uint8)
    band = resolution // num_classes
    for k in range(num_classes):
        images[labels == k, :, k * band : (k + 1) * band, :] += 150
    return images, labels


@pytest.mark.parametrize(("channels", "resolution"), [(1, 8), (3, 16), (1, 28)])
def test_shapes(channels: int, resolution: int) -> None:
    model = DomainClassifier(channels, resolution, num_classes=5, width=4, feature_dim=6)
    x = torch.rand(3, channels, resolution, resolution) * 2 - 1
    assert model.features(x).shape == (3, 6)
    assert model(x).shape == (3, 5)
    assert (model.features(x) >= 0).all()  # ReLU features
    assert DomainClassifier(**model.arch()).arch() == model.arch()


def test_to_unit_range_maps_uint8_ends_to_minus_one_and_one() -> None:
    x = torch.tensor([0, 255, 127], dtype=torch.uint8)
    torch.testing.assert_close(to_unit_range(x), torch.tensor([-1.0, 1.0, 127 / 127.5 - 1]))


@pytest.fixture(scope="module")
def fitted() -> tuple[DomainClassifier, dict]:
    train_images, train_labels = separable(256)
    test_images, test_labels = separable(64, seed=1)
    calls = []
    model, metrics = fit_classifier(
        train_images, train_labels, test_images, test_labels, TINY, num_classes=4,
        progress=lambda step, total, loss: calls.append((step, total, loss)),
    )
    metrics["_calls"] = calls
    return model, metrics


def test_fit_reaches_high_accuracy_on_separable_data(fitted: tuple[DomainClassifier, dict]) -> None:
    model, metrics = fitted
    assert metrics["test_accuracy"] >= 0.95
    assert metrics["train_accuracy"] >= 0.95
    assert metrics["epochs"] == 8 and metrics["steps"] == 8 * 8 and metrics["num_train"] == 256
    assert metrics["train_seconds"] > 0 and metrics["device"] in ("cpu", "cuda")
    assert not model.training and next(model.parameters()).device.type == "cpu"
    assert model.arch() == {"channels": 1, "resolution": 8, "num_classes": 4, "width": 8, "feature_dim": 8}


def test_fit_reports_progress_every_step(fitted: tuple[DomainClassifier, dict]) -> None:
    calls = fitted[1]["_calls"]
    assert [step for step, _, _ in calls] == list(range(1, 65))
    assert {total for _, total, _ in calls} == {64}
    assert all(isinstance(loss, float) for _, _, loss in calls)
    assert calls[-1][2] < calls[0][2]  # the loss went down


def test_fit_is_reproducible_with_the_same_seed() -> None:
    images, labels = separable(64)
    cfg = TINY.model_copy(update={"epochs": 1})
    first, _ = fit_classifier(images, labels, images, labels, cfg, num_classes=4)
    second, _ = fit_classifier(images, labels, images, labels, cfg, num_classes=4)
    for key, value in first.state_dict().items():
        torch.testing.assert_close(value, second.state_dict()[key], rtol=0, atol=0)


def test_fit_rejects_bad_labels_and_dtypes() -> None:
    images, labels = separable(16)
    with pytest.raises(DataError, match=r"classes in \[0, 3\)"):
        fit_classifier(images, labels, images, labels, TINY, num_classes=3)
    with pytest.raises(DataError, match="uint8"):
        fit_classifier(images.float(), labels, images, labels, TINY, num_classes=4)


def test_save_load_round_trip(tmp_path: Path, fitted: tuple[DomainClassifier, dict]) -> None:
    model, metrics = fitted
    path = tmp_path / "models" / "evaluator.pt"
    plain = {"test_accuracy": metrics["test_accuracy"], "epochs": 8}
    save_evaluator(path, model, metrics=plain, data_fingerprint="abc")
    raw = torch.load(path, weights_only=True)
    assert set(raw) == {"format_version", "kind", "arch", "state_dict", "metrics", "data_fingerprint"}
    assert raw["kind"] == "classifier"
    assert raw["format_version"] == FORMAT_VERSION and raw["arch"] == model.arch()

    loaded, info = load_evaluator(path)
    assert info == {"format_version": FORMAT_VERSION, "kind": "classifier", "arch": model.arch(), "metrics": plain,
                    "data_fingerprint": "abc"}
    assert not loaded.training
    x = to_unit_range(separable(8, seed=2)[0])
    torch.testing.assert_close(loaded(x), model(x))
    assert weights_hash(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    assert [p.name for p in path.parent.iterdir()] == ["evaluator.pt"]  # no temp file left behind


def test_load_errors_tell_the_user_to_fit_the_evaluator(tmp_path: Path) -> None:
    model = DomainClassifier(1, 8, 4, width=4, feature_dim=8)
    with pytest.raises(InputError, match="not found.*python -m stages fit-evaluator"):
        load_evaluator(tmp_path / "missing.pt")

    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a torch file")
    with pytest.raises(InputError, match="cannot read.*fit-evaluator"):
        load_evaluator(corrupt)

    truncated = tmp_path / "truncated.pt"
    save_evaluator(truncated, model, metrics={}, data_fingerprint="abc")
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(InputError, match="fit-evaluator"):
        load_evaluator(truncated)

    other = tmp_path / "other.pt"
    torch.save({"model": model.state_dict()}, other)
    with pytest.raises(InputError, match="not an evaluator checkpoint"):
        load_evaluator(other)

    old = tmp_path / "old.pt"
    torch.save({"format_version": 0, "arch": model.arch(), "state_dict": model.state_dict()}, old)
    with pytest.raises(InputError, match="format 0"):
        load_evaluator(old)

    mismatched = tmp_path / "mismatched.pt"
    torch.save({"format_version": FORMAT_VERSION, "kind": "classifier", "arch": {**model.arch(), "width": 8},
                "state_dict": model.state_dict()}, mismatched)
    with pytest.raises(InputError, match="do not match"):
        load_evaluator(mismatched)

    unknown = tmp_path / "unknown.pt"
    torch.save({"format_version": FORMAT_VERSION, "kind": "oracle", "arch": model.arch(),
                "state_dict": model.state_dict()}, unknown)
    with pytest.raises(InputError, match="unknown evaluator kind 'oracle'.*classifier, contrastive"):
        load_evaluator(unknown)
