"""Our FID / IS / KID / precision-recall and feature extraction give torch-fidelity's numbers, and the evaluate path
does not import torch-fidelity (nor, through it, torchvision and torch._dynamo)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch_fidelity
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_isc import isc_features_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric
from torch_fidelity.metric_prc import prc_features_to_metric
from torch_fidelity.utils import get_featuresdict_from_dataset

from pipeline.evaluation import metrics
from pipeline.evaluation.features import FEATURE_SPACES, Features
from tests.evaluation.test_inception import inception_weights  # noqa: F401 - fixture


def features(n: int, dim: int, *, seed: int, shift: float = 0.0, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed)) * scale + shift


@pytest.mark.parametrize(("shift", "scale"), [(0.0, 1.0), (0.3, 1.2), (2.0, 0.5)])
def test_fid_is_torch_fidelitys(shift: float, scale: float) -> None:
    a, b = features(700, 24, seed=1), features(500, 24, seed=2, shift=shift, scale=scale)
    ours = metrics.fid_from_statistics(metrics.fid_statistics(a), metrics.fid_statistics(b))
    theirs = fid_statistics_to_metric(fid_features_to_statistics(a), fid_features_to_statistics(b), verbose=False)
    assert ours == theirs[torch_fidelity.KEY_METRIC_FID]
    assert (ours < 1.5) == (shift == 0.0 and scale == 1.0)  # a real difference shows (same law: bias only)


@pytest.mark.parametrize("splits", [1, 4, 10])
def test_inception_score_is_torch_fidelitys(splits: int) -> None:
    logits = features(503, 10, seed=3, scale=3.0)  # 503: chunks of unequal size
    theirs = isc_features_to_metric(logits, splits=splits)
    assert metrics.inception_score(logits, splits) == (theirs[torch_fidelity.KEY_METRIC_ISC_MEAN],
                                                       theirs[torch_fidelity.KEY_METRIC_ISC_STD])


@pytest.mark.parametrize(("subsets", "size", "shift"), [(5, 100, 0.0), (7, 300, 0.5), (3, 300, 0.0)])
def test_kid_is_torch_fidelitys(subsets: int, size: int, shift: float) -> None:
    a, b = features(400, 16, seed=4), features(350, 16, seed=5, shift=shift)
    theirs = kid_features_to_metric(a, b, kid_subsets=subsets, kid_subset_size=size, verbose=False)
    ours = metrics.kernel_inception_distance(a, b, subsets=subsets, subset_size=size)
    assert ours == (theirs[torch_fidelity.KEY_METRIC_KID_MEAN], theirs[torch_fidelity.KEY_METRIC_KID_STD])
    assert (ours[0] > 0.05) == (shift > 0)


@pytest.mark.parametrize(("neighborhood", "batch_size"), [(3, 10_000), (5, 64)])
def test_precision_recall_is_torch_fidelitys(neighborhood: int, batch_size: int) -> None:
    generated, real = features(300, 8, seed=6, scale=0.6), features(260, 8, seed=7, shift=0.2)
    theirs = prc_features_to_metric(generated, real, prc_neighborhood=neighborhood, prc_batch_size=batch_size,
                                    save_cpu_ram=True, verbose=False)
    ours = metrics.precision_recall(generated, real, neighborhood=neighborhood, batch_size=batch_size)
    assert ours == (theirs[torch_fidelity.KEY_METRIC_PRECISION], theirs[torch_fidelity.KEY_METRIC_RECALL])
    assert ours[0] > ours[1]  # a narrow generator: its samples are real-looking, it misses much of the real spread


def test_batched_extraction_is_torch_fidelitys(inception_weights) -> None:  # noqa: F811
    extractor = Features(FEATURE_SPACES["inception-v3-compat"], inception_weights, batch_size=3)
    images = torch.randint(0, 256, (7, 1, 32, 32), generator=torch.Generator().manual_seed(8), dtype=torch.uint8)
    ours = extractor(images)
    dataset = _ListDataset(list(images.expand(-1, 3, -1, -1)))  # (3, H, W) uint8 items, as torch-fidelity wants
    theirs = get_featuresdict_from_dataset(dataset, extractor.extractor, 3, False, True, False)
    assert ours.keys() == theirs.keys() == set(extractor.layers.values())
    for name in ours:
        torch.testing.assert_close(ours[name], theirs[name], rtol=0, atol=0)


class _ListDataset(torch.utils.data.Dataset):
    def __init__(self, items: list[torch.Tensor]):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.items[index]


def test_the_evaluate_path_does_not_import_torch_fidelity() -> None:
    probe = ("import sys, stages.app, stages.evaluate, pipeline.evaluation.cell, pipeline.prune_study, "
             "pipeline.evaluation.noise_floor; "
             "print(sorted(m for m in ('torch_fidelity', 'torchvision', 'torch._dynamo') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
