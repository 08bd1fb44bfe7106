"""Fingerprint of the source files that decide a training result, stored in every checkpoint's config.

Checkpoints resume only under the same fingerprint, so after a fix to a loss or a model ``dvc repro`` (which runs
``train --on-config-change restart``) retrains instead of resuming a finished run from its last checkpoint.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pipeline

# Relative to the pipeline package: the same sources dvc.yaml lists as the train stage's code dependencies.
SOURCES = ("models", "losses.py", "training", "generators.py", "seeding.py")


def code_fingerprint(root: Path | None = None) -> str:
    """Hex SHA-256 over the (relative path, bytes) of every ``.py`` file in :data:`SOURCES`."""
    root = Path(pipeline.__file__).parent if root is None else Path(root)
    digest = hashlib.sha256()
    for source in SOURCES:
        path = root / source
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            digest.update(file.relative_to(root).as_posix().encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()
