"""``python -m benchmarks.evaluators``: does each evaluator rank the grid like the 10-class classifier does?

Run after ``make repro``. Each trained generator of the repository's grid (``runs/<cell>/generator.pt``) is scored
in the feature space of several evaluators, each fitted in a scratch project:

- ``classifier-<k>``: the classifier trained on the labels merged into k groups (class mod k): how few classes can
  still carry a feature space (the measurement behind ``evaluator.kind: auto``'s ``min_classes``);
- ``contrastive-unlabelled``: Fashion-MNIST with its labels dropped — every image of both splits written to one flat
  folder of PNGs, prepared by the ``folder`` source (one class) and fitted with ``evaluator.kind: auto``.

For each: Spearman's ρ between the variants' mean FIDs and the repository's own (10-class) ranking, whether its
feature-space check is monotone for every disturbance, and the fit time. Writes ``benchmarks/evaluators.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image
from scipy.stats import spearmanr

from pipeline import layout
from pipeline.layout import Cell
from pipeline.config import EvaluateConfig, load_params
from pipeline.io import atomic_write_json, read_json

REPO = Path(__file__).resolve().parents[1]
RUN_FIRST = "run `make repro` first"
HINT = "the stage ran in the scratch project but wrote no file"


@contextlib.contextmanager
def inside(folder: Path) -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


def stage(project: Path, *args: str) -> None:
    """Run ``python -m stages <args>`` in ``project``; raise with its output when it fails."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}"}
    result = subprocess.run([sys.executable, "-m", "stages", *args], cwd=project, env=env, capture_output=True,
                            text=True)
    if result.returncode != 0:
        raise RuntimeError(f"stages {' '.join(args)} failed in {project}:\n{result.stderr[-3000:]}")
    print(result.stdout.strip().splitlines()[-1] if result.stdout.strip() else f"stages {args[0]}: done", flush=True)


def write_flat_folder(repo: Path, folder: Path) -> int:
    """Every prepared image of both splits as a PNG in one flat folder, no labels; returns the count."""
    from pipeline.data import load_prepared

    folder.mkdir(parents=True)
    count = 0
    for split in ("train", "test"):
        images, _ = load_prepared(split, repo / layout.PREPARED_DIR)
        for image in images.numpy():
            Image.fromarray(image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)).save(folder / f"{count}.png")
            count += 1
    return count


def project_with(root: Path, name: str, params: dict[str, Any]) -> Path:
    project = root / name
    project.mkdir()
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return project


def merged_labels(repo: Path, project: Path, groups: int) -> None:
    """The repository's prepared data with labels mapped to class mod ``groups`` (its meta says so)."""
    from pipeline.data import load_meta

    source, target = repo / layout.PREPARED_DIR, project / layout.PREPARED_DIR
    target.mkdir(parents=True)
    meta = load_meta(source)
    for split in ("train", "test"):
        (target / f"{split}_images.npy").symlink_to((source / f"{split}_images.npy").resolve())
        np.save(target / f"{split}_labels.npy", np.load(source / f"{split}_labels.npy") % groups)
    meta.update(num_classes=groups, class_names=[f"group-{g}" for g in range(groups)],
                fingerprint=f"{meta['fingerprint']}-mod{groups}")
    atomic_write_json(target / "meta.json", meta)


def score_grid(repo: Path, project: Path, cells: list[tuple[str, int]], cfg: EvaluateConfig) -> dict[str, float]:
    """FID of every cell's generator in ``project``'s evaluator space, against ``project``'s test split: the same
    noise draws and mean over draws as the repository's evaluate stage."""
    from pipeline.evaluation.cell import ReferenceSet, sample_draws
    from pipeline.evaluation.metrics import fid_statistics
    from pipeline.evaluation.uncertainty import fid_over_draws
    from pipeline.generators import load_generator

    fids = {}
    with inside(project):
        extractor, ref = ReferenceSet(load_params(project / "params.yaml").evaluate).features("domain")
        layer = extractor.layers["fid"]
        ref_stats = fid_statistics(ref[layer])
        for variant, seed in cells:
            generator, _ = load_generator(repo / Cell(variant, seed).generator)
            draws = sample_draws(generator, cfg.num_samples, draws=cfg.noise_draws, seed=seed,
                                 batch_size=cfg.batch_size)
            fids[f"{variant}-{seed}"] = fid_over_draws([extractor(images)[layer] for images in draws], ref_stats,
                                                       confidence=cfg.confidence, seed=seed)["fid"]
    return fids


def variant_means(fids: dict[str, float], cells: list[tuple[str, int]]) -> dict[str, float]:
    variants = dict.fromkeys(v for v, _ in cells)
    return {v: float(np.mean([fids[f"{v}-{s}"] for vv, s in cells if vv == v])) for v in variants}


def study(repo: Path, name: str, project: Path, cells: list[tuple[str, int]], baseline: dict[str, float],
          cfg: EvaluateConfig) -> dict[str, Any]:
    started = time.perf_counter()
    stage(project, "fit-evaluator")
    fit_seconds = time.perf_counter() - started
    stage(project, "feature-check")
    means = variant_means(score_grid(repo, project, cells, cfg), cells)
    order = list(baseline)
    rho = float(spearmanr([baseline[v] for v in order], [means[v] for v in order]).statistic) if len(order) > 2 \
        else None  # two variants: ρ is ±1 whatever the FIDs
    evaluator = read_json(project / layout.EVALUATOR_METRICS_PATH, what="evaluator metrics", hint=HINT)
    check = read_json(project / layout.FEATURE_CHECK_PATH, what="feature check", hint=HINT)
    space = next(iter(check["feature_spaces"].values()))
    return {"name": name, "kind": evaluator["kind"], "kind_reason": evaluator["kind_reason"],
            "quality_metric": evaluator["quality_metric"], "quality": evaluator["quality"],
            "weak": evaluator["weak"], "fit_seconds": fit_seconds, "spearman_vs_classifier": rho,
            "ladder_monotone": {d: e["monotone"] for d, e in space["disturbances"].items()},
            "mean_fid": means, "ranking": sorted(means, key=means.get)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=REPO)
    parser.add_argument("--groups", type=int, nargs="*", default=[2, 5], help="Classifiers on labels merged mod k.")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "evaluators.json")
    args = parser.parse_args()
    params = load_params(args.repo / "params.yaml")
    metrics = {(v, s): read_json(args.repo / Cell(v, s).metrics, what="cell metrics", hint=RUN_FIRST)
               for v in params.grid.variants for s in params.grid.seeds}  # each file read once
    cells = [cell for cell, cell_metrics in metrics.items() if cell_metrics.get("status") == "ok"]
    if not cells:
        parser.error("no ok cell in the repository: run `make repro` first")
    baseline = variant_means({f"{v}-{s}": metrics[v, s]["fid"] for v, s in cells}, cells)
    raw = yaml.safe_load((args.repo / "params.yaml").read_text())
    base = {key: raw[key] for key in ("grid", "variants", "evaluator", "evaluate") if key in raw}
    results: dict[str, Any] = {"baseline": {"name": "classifier-10 (the repository's grid)", "mean_fid": baseline,
                                            "ranking": sorted(baseline, key=baseline.get)}, "studies": []}
    with tempfile.TemporaryDirectory(prefix="genbench-evaluators-") as scratch:
        root = Path(scratch)
        for groups in args.groups:
            project = project_with(root, f"classifier-{groups}", {**base, "evaluator": {
                **base.get("evaluator", {}), "kind": "classifier"}, "data": raw.get("data", {})})
            merged_labels(args.repo, project, groups)
            results["studies"].append(study(args.repo, f"classifier-{groups}", project, cells, baseline,
                                            params.evaluate))
        flat = root / "flat-images"
        count = write_flat_folder(args.repo, flat)
        test_fraction = 10_000 / count if count > 20_000 else 0.2
        project = project_with(root, "contrastive-unlabelled", {**base, "data": {
            "dataset": "folder", "root": str(flat), "resolution": params.data.resolution, "test_fraction": test_fraction}})
        stage(project, "prepare")
        results["studies"].append(study(args.repo, "contrastive-unlabelled", project, cells, baseline,
                                        params.evaluate))
    atomic_write_json(args.out, results)
    print("| Evaluator | Kind | Spearman ρ vs 10-class classifier | Ladder monotone | Fit |")
    print("| --- | --- | --- | --- | --- |")
    for r in results["studies"]:
        ladder = ", ".join(d for d, ok in r["ladder_monotone"].items() if not ok) or "all four"
        rho = "—" if r["spearman_vs_classifier"] is None else f"{r['spearman_vs_classifier']:.3f}"
        print(f"| {r['name']} | {r['kind']} | {rho} | "
              f"{ladder if ladder == 'all four' else 'not: ' + ladder} | {r['fit_seconds']:.0f} s |")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
