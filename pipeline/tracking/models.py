"""Generators in MLflow: each cell's final sampling network as a logged PyTorch model, and the registry's
``champion`` alias on the best cell of the best variant (aliases, not the deprecated stages).

The logged model maps a noise batch (N, latent_dim) float32 to images (N, C, R, R) in [-1, 1]. It is saved as a
``torch.export`` program (MLflow's pt2 format, batch dimension dynamic from the input example's signature), so
``mlflow.pytorch.load_model("models:/<name>@champion")`` works without this repository's code.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from pipeline.models import ImageGenerator

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

CHAMPION = "champion"


@contextmanager
def fluent_store(uri: str) -> Iterator[None]:
    """Point MLflow's fluent API (log_model, register_model) at ``uri`` for a block, through the environment:
    ``mlflow.set_tracking_uri`` would stay set for the rest of the process."""
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous
ARTIFACT_NAME = "generator"


def log_generator(run_id: str, generator: ImageGenerator, *, tracking_uri: str) -> str:
    """Log a CPU, eval-mode copy of ``generator`` as the run's ``generator`` model; returns its model URI."""
    import mlflow

    model = copy.deepcopy(generator).to("cpu").eval()
    example = np.random.default_rng(0).standard_normal((2, model.latent_dim)).astype(np.float32)
    with fluent_store(tracking_uri), mlflow.start_run(run_id=run_id):
        info = mlflow.pytorch.log_model(
            model,
            name=ARTIFACT_NAME,
            input_example=example,
            serialization_format="pt2",
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", f"mlflow=={mlflow.__version__}"],
        )
    return info.model_uri


def promote_champion(client: MlflowClient, name: str, *, model_uri: str, run_id: str, tags: dict[str, str]) -> Any:
    """Register ``model_uri`` under ``name`` (once per model) and point the ``champion`` alias at that version."""
    import mlflow

    existing = [v for v in client.search_model_versions(f"name = '{name}'") if v.source == model_uri]
    if existing:
        version = existing[0]
    else:
        with fluent_store(client.tracking_uri):
            version = mlflow.register_model(model_uri, name, tags=tags)
    client.set_registered_model_alias(name, CHAMPION, version.version)
    return version
