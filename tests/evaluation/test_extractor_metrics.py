"""The domain extractor, feature spaces and the metrics: FID/IS/KID/PRC on tiny inputs, the reference cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.config import EvaluateConfig
from pipeline.errors import InputError
from pipeline.evaluation.classifier import DomainClassifier, fit_classifier, to_unit_range
from pipeline.evaluation.evaluator import save_evaluator
from pipeline.evaluation.extractor import (
    EXTRACTOR_NAME,
    DomainFeatureExtractor,
    to_classifier_input,
)
from pipeline.evaluation.features import FEATURE_SPACES, Features, reference_cache_name
from pipeline.evaluation.metrics import frechet_distance, score_features
from tests.evaluation.test_classifier import TINY, separable

CFG = EvaluateConfig(num_samples=64, batch_size=32, kid_subsets=10, kid_subset_size=1000, isc_splits=4)
DOMAIN = FEATURE_SPACES["domain"]


def compute_metrics(generated: torch.Tensor, reference: torch.Tensor, *, cfg: EvaluateConfig, weights_path: Path,
                    reference_key: str, cache_dir: Path) -> dict:
    """Domain-space scores the way evaluate computes them (cached reference features)."""
    extractor = Features(DOMAIN, weights_path, batch_size=cfg.batch_size)
    ref = extractor.reference(reference, key=reference_key, cache_dir=cache_dir)
    return {**score_features(extractor(generated), ref, extractor.layers, cfg),
            "evaluator_sha256": extractor.weights_sha256}


def random_images(n: int, *, seed: int, channels: int = 1, resolution: int = 8) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, channels, resolution, resolution), generator=g, dtype=torch.uint8)


def write_evaluator(path: Path, *, seed: int, channels: int = 1, resolution: int = 8) -> Path:
    """An untrained (random) classifier is enough for the metric plumbing."""
    torch.manual_seed(seed)
    model = DomainClassifier(channels, resolution, num_classes=4, width=4, feature_dim=8).eval()
    save_evaluator(path, model, metrics={"test_accuracy": 0.0}, data_fingerprint="synthetic")
    return path


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_evaluator(tmp_path_factory.mktemp("models") / "evaluator.pt", seed=0)


@pytest.fixture(scope="module")
def trained_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A classifier fitted on the separable 4-class images (< 1 s)."""
    model, metrics = fit_classifier(*separable(256), *separable(64, seed=1), TINY, num_classes=4)
    assert metrics["test_accuracy"] >= 0.95
    path = tmp_path_factory.mktemp("trained") / "evaluator.pt"
    save_evaluator(path, model, metrics=metrics, data_fingerprint="separable")
    return path


def test_grey_input_round_trips_through_three_channels() -> None:
    grey = random_images(5, seed=1)
    three = grey.expand(-1, 3, -1, -1)  # what Features feeds, as torch-fidelity does
    assert three.shape == (5, 3, 8, 8) and three.dtype == torch.uint8
    torch.testing.assert_close(to_classifier_input(three, channels=1, resolution=8), to_unit_range(grey))


def test_input_is_resized_to_the_classifier_resolution() -> None:
    flat = torch.full((2, 3, 16, 16), 255, dtype=torch.uint8)
    x = to_classifier_input(flat, channels=1, resolution=8)
    assert x.shape == (2, 1, 8, 8)
    torch.testing.assert_close(x, torch.ones_like(x))
    with pytest.raises(ValueError, match="uint8"):
        to_classifier_input(flat.float(), channels=1, resolution=8)


def test_extractor_features_follow_the_requested_order(weights: Path) -> None:
    assert DomainFeatureExtractor.get_default_feature_layer_for_metric("fid") == "feat"
    assert DomainFeatureExtractor.get_default_feature_layer_for_metric("kid") == "feat"
    assert DomainFeatureExtractor.get_default_feature_layer_for_metric("isc") == "logits"
    extractor = DomainFeatureExtractor(weights, ["logits_unbiased", "feat", "logits"])
    x = random_images(6, seed=2).expand(-1, 3, -1, -1)
    unbiased, feat, logits = extractor(x)
    assert feat.shape == (6, 8) and logits.shape == (6, 4) and unbiased.shape == (6, 4)
    classifier = extractor.classifier
    torch.testing.assert_close(logits, classifier(to_unit_range(x[:, :1])))
    torch.testing.assert_close(unbiased, logits - classifier.head.bias)


def test_frechet_distance_of_known_gaussians() -> None:
    mu1, mu2 = np.zeros(3), np.array([1.0, 2.0, 0.0])
    sigma1, sigma2 = np.diag([1.0, 4.0, 9.0]), np.diag([4.0, 4.0, 1.0])
    # |mu1 - mu2|^2 + sum (sqrt(a) - sqrt(b))^2 for diagonal covariances
    assert frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(5.0 + 1.0 + 0.0 + 4.0, abs=1e-9)
    assert frechet_distance(mu1, sigma1, mu1, sigma1) == pytest.approx(0.0, abs=1e-9)


def test_identical_sets_score_zero_and_shifted_sets_do_not(trained_weights: Path, tmp_path: Path) -> None:
    reference = separable(64, seed=3)[0]
    kwargs = {"cfg": CFG, "weights_path": trained_weights, "reference_key": "ref", "cache_dir": tmp_path}
    same = compute_metrics(reference.clone(), reference, **kwargs)
    shifted = compute_metrics(reference // 2, reference, **kwargs)
    assert abs(same["fid"]) < 1e-3
    assert shifted["fid"] > 1.0
    # Unbiased KID of a set against itself, subsets = whole sets: 2(S/m - trace K)/(m(m-1)) <= 0 for a PSD kernel.
    assert same["kid_mean"] <= 0 < shifted["kid_mean"]
    for result in (same, shifted):
        assert {key: type(value) for key, value in result.items()} == {
            "fid": float, "isc_mean": float, "isc_std": float, "kid_mean": float, "kid_std": float,
            "precision": float, "recall": float, "f_score": float,
            "num_samples": int, "num_reference": int, "kid_subset_size": int, "prc_samples": int,
            "evaluator_sha256": str,
        }
        assert 1.0 <= result["isc_mean"] <= 4.0  # IS lies between 1 and the number of classes
        assert result["num_samples"] == 64
    assert same["precision"] == same["recall"] == 1.0  # every sample lies in its own k-NN ball
    assert shifted["precision"] < 0.5 and shifted["recall"] < 0.5


def test_precision_recall_on_equal_subsets(trained_weights: Path, tmp_path: Path) -> None:
    reference = separable(64, seed=3)[0]
    kwargs = {"weights_path": trained_weights, "reference_key": "ref", "cache_dir": tmp_path}
    double = compute_metrics(torch.cat([reference, reference]), reference, cfg=CFG, **kwargs)
    assert double["num_samples"] == 128 and double["prc_samples"] == 64  # as many as the reference has
    assert double["precision"] == 1.0  # every generated image is a reference image
    capped = compute_metrics(reference // 2, reference, cfg=CFG.model_copy(update={"prc_samples": 20}), **kwargs)
    full = compute_metrics(reference // 2, reference, cfg=CFG, **kwargs)
    assert capped["prc_samples"] == 20 and capped["fid"] == full["fid"]  # only precision/recall is subsampled
    assert (capped["precision"], capped["recall"]) != (full["precision"], full["recall"])


def test_inception_score_counts_confidently_recognised_classes(trained_weights: Path, tmp_path: Path) -> None:
    images, labels = separable(256, seed=11)
    kwargs = {"cfg": CFG, "weights_path": trained_weights, "reference_key": "ref", "cache_dir": tmp_path}
    balanced = compute_metrics(images[:64], images, **kwargs)
    one_class = compute_metrics(images[labels == 2][:64], images, **kwargs)
    assert balanced["isc_mean"] > 3.0  # four classes, each recognised
    assert one_class["isc_mean"] < 1.5  # a single class


def test_kid_subset_size_is_capped_by_the_sample_counts(weights: Path, tmp_path: Path) -> None:
    generated, reference = random_images(50, seed=4), random_images(64, seed=5)
    result = compute_metrics(generated, reference, cfg=CFG, weights_path=weights, reference_key="ref",
                             cache_dir=tmp_path)
    assert CFG.kid_subset_size == 1000 and result["kid_subset_size"] == 50
    assert result["num_samples"] == 50 and result["num_reference"] == 64
    assert np.isfinite([result["kid_mean"], result["kid_std"], result["fid"]]).all()


@pytest.fixture
def extraction_spy(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records the size of every image set whose features were extracted."""
    calls: list[int] = []
    original = Features.__call__

    def spy(self: Features, images: torch.Tensor) -> dict:
        calls.append(len(images))
        return original(self, images)

    monkeypatch.setattr(Features, "__call__", spy)
    return calls


def test_reference_features_are_cached_and_generated_ones_are_not(
    weights: Path, tmp_path: Path, extraction_spy: list[int]
) -> None:
    reference, generated = random_images(64, seed=6), random_images(40, seed=7)
    cache = tmp_path / "cache"
    first = compute_metrics(generated, reference, cfg=CFG, weights_path=weights, reference_key="fp-test",
                            cache_dir=cache)
    assert extraction_spy == [64, 40]
    name = reference_cache_name("fp-test", reference, extractor=EXTRACTOR_NAME, weights_sha256=first["evaluator_sha256"])
    assert [path.name for path in cache.iterdir()] == [f"{name}.pt"]  # only the reference is cached
    mtime = (cache / f"{name}.pt").stat().st_mtime_ns

    second = compute_metrics(generated, reference, cfg=CFG, weights_path=weights, reference_key="fp-test",
                             cache_dir=cache)
    assert extraction_spy == [64, 40, 40]  # the reference came from the cache
    assert (cache / f"{name}.pt").stat().st_mtime_ns == mtime
    assert second["fid"] == pytest.approx(first["fid"], rel=1e-9)


def test_damaged_cache_entry_is_recomputed(weights: Path, tmp_path: Path, extraction_spy: list[int]) -> None:
    reference = random_images(64, seed=6)
    first = compute_metrics(reference, reference, cfg=CFG, weights_path=weights, reference_key="k", cache_dir=tmp_path)
    (entry,) = tmp_path.iterdir()
    entry.write_bytes(b"garbage")
    second = compute_metrics(reference, reference, cfg=CFG, weights_path=weights, reference_key="k", cache_dir=tmp_path)
    assert extraction_spy == [64, 64, 64, 64] and second["fid"] == first["fid"]
    assert torch.load(entry, weights_only=True).keys() == {"feat", "logits"}


CHANGES = {  # what the evaluation depends on -> how to change it
    "dataset": lambda ref, key, w: (ref, key.replace("fp", "other-fp"), w),
    "split": lambda ref, key, w: (ref, key.replace("test", "train"), w),
    "pixels": lambda ref, key, w: (255 - ref, key, w),
    "resolution": lambda ref, key, w: (torch.nn.functional.interpolate(ref.float(), scale_factor=2).to(torch.uint8),
                                       key, w),
    "weights": lambda ref, key, w: (ref, key, "other"),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_reference_cache_is_invalidated_by_each_dependency(
    change: str, tmp_path: Path, weights: Path, extraction_spy: list[int]
) -> None:
    other_weights = write_evaluator(tmp_path / "other.pt", seed=1)
    reference, generated, cache = random_images(64, seed=8), random_images(32, seed=9), tmp_path / "cache"
    compute_metrics(generated, reference, cfg=CFG, weights_path=weights, reference_key="fp-test", cache_dir=cache)
    compute_metrics(generated, reference, cfg=CFG, weights_path=weights, reference_key="fp-test", cache_dir=cache)
    assert extraction_spy == [64, 32, 32]  # unchanged: reused
    ref, key, which = CHANGES[change](reference, "fp-test", "same")
    compute_metrics(generated, ref, cfg=CFG, weights_path=other_weights if which == "other" else weights,
                    reference_key=key, cache_dir=cache)
    assert extraction_spy == [64, 32, 32, len(ref), 32]  # changed: extracted again
    assert len(list(cache.iterdir())) == 2


def test_cache_name_separates_extractors_and_is_a_file_name() -> None:
    reference = random_images(8, seed=1)
    names = {reference_cache_name("k", reference, extractor=name, weights_sha256="a" * 64)
             for name in ("domain-classifier", "inception-v3-compat")}
    assert len(names) == 2
    assert "/" not in reference_cache_name("a/b c", reference, extractor=EXTRACTOR_NAME, weights_sha256="a" * 64)


def test_missing_evaluator_and_too_few_samples_are_input_errors(tmp_path: Path, weights: Path) -> None:
    images = random_images(8, seed=10)
    with pytest.raises(InputError, match="fit-evaluator"):
        compute_metrics(images, images, cfg=CFG, weights_path=tmp_path / "none.pt", reference_key="r",
                        cache_dir=tmp_path)
    with pytest.raises(InputError, match="isc_splits"):
        compute_metrics(images[:3], images, cfg=CFG, weights_path=weights, reference_key="r", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="uint8"):
        compute_metrics(images.float(), images, cfg=CFG, weights_path=weights, reference_key="r", cache_dir=tmp_path)
    with pytest.raises(InputError, match="prc_neighborhood"):
        compute_metrics(images[:3], images, cfg=CFG.model_copy(update={"isc_splits": 2}), weights_path=weights,
                        reference_key="r", cache_dir=tmp_path)
