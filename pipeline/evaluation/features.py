"""Feature spaces and feature extraction, with a keyed cache for reference features.

A feature space is a feature extractor plus its weights: ``domain`` (our fitted evaluator, ``models/evaluator.pt``:
the domain classifier or the contrastive encoder, whichever fit-evaluator chose) or ``inception-v3-compat``
(torch-fidelity's Inception-v3, from a local weights file or torch-fidelity's one-time download; torch-fidelity is
imported only for it). :class:`Features` extracts every layer the metrics need in one batched pass, as
torch-fidelity's ``get_featuresdict_from_dataset`` does (a test checks they agree).

Reference features are cached in ``.cache/fid-stats/`` under a name built from everything they depend on: the
caller's key (dataset fingerprint and split), a digest of the pixels, the resolution, the extractor and the
weights' SHA-256. torch-fidelity's own cache key would ignore the last three. Generated images are never cached.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from pipeline.config import FEATURE_SPACE_LABELS
from pipeline.errors import InputError
from pipeline.evaluation.evaluator import FIT_HINT, evaluator_kind
from pipeline.evaluation.extractor import ContrastiveFeatureExtractor, DomainFeatureExtractor
from pipeline.io import atomic_save, sha256_file

FeatureDict = dict[str, torch.Tensor]  # layer name -> (N, D) float features
METRICS = ("fid", "isc", "kid", "prc")


@dataclass(frozen=True)
class FeatureSpace:
    """One entry of :data:`FEATURE_SPACES`: params name, extractor name, and the extractor class for our own
    evaluators (None: torch-fidelity's extractor of that name)."""

    key: str
    extractor: str
    module: type[DomainFeatureExtractor] | None = None

    @property
    def label(self) -> str:
        return FEATURE_SPACE_LABELS[self.extractor]


DOMAIN_SPACES: dict[str, FeatureSpace] = {  # evaluator kind -> its feature space
    "classifier": FeatureSpace("domain", "domain-classifier", DomainFeatureExtractor),
    "contrastive": FeatureSpace("domain", "domain-contrastive", ContrastiveFeatureExtractor),
}
FEATURE_SPACES: dict[str, FeatureSpace] = {
    "domain": DOMAIN_SPACES["classifier"],
    "inception-v3-compat": FeatureSpace("inception-v3-compat", "inception-v3-compat"),
}


def resolve_space(key: str, evaluator: Path) -> FeatureSpace:
    """The feature space named ``key`` in params; ``domain`` is that of the evaluator file's kind."""
    return DOMAIN_SPACES[evaluator_kind(evaluator)] if key == "domain" else FEATURE_SPACES[key]


def check_images(images: torch.Tensor, what: str) -> None:
    """Raise ValueError unless ``images`` is a uint8 N×C×H×W tensor with 1 or 3 channels."""
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(f"{what}: expected a uint8 N×C×H×W tensor, got {getattr(images, 'dtype', type(images))}"
                         f" with shape {tuple(getattr(images, 'shape', ()))}")
    if images.shape[1] not in (1, 3):
        raise ValueError(f"{what}: expected 1 or 3 channels, got {images.shape[1]}")


def images_digest(images: torch.Tensor) -> str:
    """Hex SHA-256 of the images' shape and pixels (10k 32×32 grey images: ~20 ms)."""
    digest = hashlib.sha256(str(tuple(images.shape)).encode())
    digest.update(images.contiguous().numpy().tobytes())
    return digest.hexdigest()


def reference_cache_name(reference_key: str, reference: torch.Tensor, *, extractor: str, weights_sha256: str) -> str:
    """Cache entry name of the reference features: safe for a file name, one per (data, pixels, extractor, weights)."""
    resolution = f"{reference.shape[2]}x{reference.shape[3]}"
    raw = f"{reference_key}-{images_digest(reference)[:12]}-{resolution}-{extractor}-{weights_sha256[:16]}"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", raw)


class Features:
    """A feature extractor holding every layer that FID, IS, KID and PRC use in its space.

    ``weights`` is required for ``domain`` (the evaluator file); for Inception None means torch-fidelity's
    download (cached by torch.hub), a path means that local file and no network access.
    """

    def __init__(self, space: FeatureSpace, weights: Path | None, *, batch_size: int,
                 device: torch.device | str = "cpu"):
        if weights is not None:
            weights = Path(weights)
            if not weights.is_file():
                hint = FIT_HINT if space.key == "domain" else "set evaluate.inception_weights to an existing file"
                raise InputError(f"{weights}: {space.label} weights not found; {hint}")
        elif space.key == "domain":
            raise InputError(f"the domain feature space needs models/evaluator.pt; {FIT_HINT}")
        self.space = space
        self.weights_sha256 = sha256_file(weights) if weights is not None else f"download-{Path(_inception_url()).name}"
        self.batch_size = batch_size
        self.device = torch.device(device)
        cls = space.module or _torch_fidelity_class(space.extractor)
        self.layers = {}  # metric -> layer, for the metrics this space supports (a contrastive embedding has no IS)
        for metric in METRICS:
            try:
                self.layers[metric] = cls.get_default_feature_layer_for_metric(metric)
            except ValueError:
                continue
        try:
            self.extractor = _build(space, sorted(set(self.layers.values())), weights).to(self.device)
        except InputError:
            raise
        except Exception as error:  # noqa: BLE001 - network, pickle and state-dict errors all mean "no usable weights"
            if weights is None:
                raise InputError(
                    f"cannot download the {space.label} weights ({_inception_url()}): {type(error).__name__}: "
                    f"{error}; without internet, download the file elsewhere and set evaluate.inception_weights"
                ) from None
            raise InputError(f"{weights}: not usable {space.label} weights ({type(error).__name__}: {error}); "
                             "check evaluate.inception_weights") from None

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> FeatureDict:
        """Features of uint8 (N, C, H, W) images: layer -> (N, D) on the CPU, in ``batch_size`` batches."""
        check_images(images, "images")
        outputs = [self.extractor(batch.expand(-1, 3, -1, -1).to(self.device))  # grey → (B, 3, H, W) view
                   for batch in images.split(self.batch_size)]
        return {name: torch.cat([output[index].cpu() for output in outputs])
                for index, name in enumerate(self.extractor.features_list)}

    def reference(self, images: torch.Tensor, *, key: str, cache_dir: Path) -> FeatureDict:
        """Features of reference images, read from / written to the keyed cache in ``cache_dir``."""
        return self.cached(images, key=key, cache_dir=cache_dir, compute=lambda: self(images),
                           required=set(self.layers.values()))

    def cached(self, images: torch.Tensor, *, key: str, cache_dir: Path, compute: Callable[[], FeatureDict],
               required: set[str] = frozenset()) -> FeatureDict:
        """``compute()`` of reference ``images`` in this space, cached under a name keyed like the features'."""
        name = reference_cache_name(key, images, extractor=self.space.extractor, weights_sha256=self.weights_sha256)
        path = Path(cache_dir) / f"{name}.pt"
        if path.is_file():
            try:
                cached = torch.load(path, map_location="cpu", weights_only=True)
                if isinstance(cached, dict) and required <= cached.keys():
                    return cached
            except Exception:  # noqa: BLE001 - a damaged cache entry is recomputed, never trusted
                pass
        value = compute()
        atomic_save(path, lambda handle: torch.save(value, handle))
        return value


def _build(space: FeatureSpace, layers: list[str], weights: Path | None) -> nn.Module:
    """The extractor module of ``space`` giving ``layers``: our evaluator's, or torch-fidelity's (imported here)."""
    if space.module is not None:
        return space.module(weights, layers)
    from torch_fidelity.utils import create_feature_extractor

    kwargs = {"feature_extractor_weights_path": str(weights)} if weights is not None else {}
    return create_feature_extractor(space.extractor, layers, cuda=False, verbose=False, **kwargs)


def _torch_fidelity_class(name: str) -> type:
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    if name not in FEATURE_EXTRACTORS_REGISTRY:
        raise InputError(f"torch-fidelity has no feature extractor named '{name}'")
    return FEATURE_EXTRACTORS_REGISTRY[name]


def _inception_url() -> str:
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    return URL_INCEPTION_V3
