"""Mode-collapse diagnostics: which classes the domain classifier sees in the generated samples.

Coverage counts the classes that get a fair part of the samples; the KL divergence KL(p_generated ‖ p_real) of
predicted-class frequencies is the diagnostic of Metz et al. 2017 (unrolled GANs) and Srivastava et al. 2017
(VEEGAN). It is finite whenever every class occurs in the real data; a generator stuck on one class c scores
log(1 / p_real(c)) (≈ 2.3 nats for ten balanced classes), a perfect one 0.
"""

from __future__ import annotations

import math
from typing import Any

import torch


def class_coverage(logits: torch.Tensor, real_labels: torch.Tensor, *, min_share: float) -> dict[str, Any]:
    """Histogram of the classifier's predictions over generated samples, classes covered and KL to the real mix.

    ``logits`` (N, K) are the classifier's outputs on generated images, ``real_labels`` (M,) the test-split labels.
    A class is covered when its share of the generated samples is at least ``min_share`` × its real share.
    """
    num_classes = logits.shape[1]
    counts = torch.bincount(logits.argmax(dim=1), minlength=num_classes).double()  # (K,)
    real = torch.bincount(real_labels.long(), minlength=num_classes).double()  # (K,)
    if real.numel() != num_classes:
        raise ValueError(f"real labels reach class {real.numel() - 1}, the classifier has {num_classes} classes")
    p_gen, p_real = counts / counts.sum(), real / real.sum()
    present = p_gen > 0
    if bool((p_real[present] == 0).any()):
        kl = math.inf
    else:
        kl = float((p_gen[present] * (p_gen[present] / p_real[present]).log()).sum())
    covered = (p_gen >= min_share * p_real) & (p_real > 0)
    return {
        "num_classes": int(num_classes),
        "classes_covered": int(covered.sum()),
        "class_kl": kl if math.isfinite(kl) else None,
        "class_histogram": [int(c) for c in counts.tolist()],
        "real_class_share": [float(p) for p in p_real.tolist()],
    }
