"""``fit-evaluator``: train the domain classifier whose features define FID/KID and whose logits define IS."""

from __future__ import annotations

from pathlib import Path

from stages.common import ParamsOption, exits_on_bad_input, load


@exits_on_bad_input
def main(params: ParamsOption = Path("params.yaml")) -> None:
    """Train the domain classifier on data/prepared/, write models/evaluator.pt and models/evaluator.json."""
    cfg = load(params)
    # Heavy imports after validation, so a bad params file fails fast.
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from pipeline import layout
    from pipeline.data import load_meta, load_prepared
    from pipeline.evaluation.classifier import fit_classifier, save_evaluator, weights_hash
    from pipeline.io import atomic_write_json

    meta = load_meta(layout.PREPARED_DIR)
    train_images, train_labels = load_prepared("train", layout.PREPARED_DIR)
    test_images, test_labels = load_prepared("test", layout.PREPARED_DIR)

    columns = (TextColumn("fit-evaluator"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]:.3f}"),
               TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task("fit", total=None, loss=float("nan"))

        def progress(step: int, total: int, loss: float) -> None:
            if step == 1 or step == total or step % max(1, total // 100) == 0:  # ~100 redraw requests per fit
                bar.update(task, completed=step, total=total, loss=loss)

        model, metrics = fit_classifier(
            train_images, train_labels, test_images, test_labels, cfg.evaluator,
            num_classes=meta["num_classes"], progress=progress,
        )

    evaluator_cfg = cfg.evaluator
    metrics.update({
        "dataset": meta["dataset"],
        "data_fingerprint": meta["fingerprint"],
        "min_accuracy": evaluator_cfg.min_accuracy,
        "meets_min_accuracy": metrics["test_accuracy"] >= evaluator_cfg.min_accuracy,
        "config": evaluator_cfg.model_dump(mode="json"),
    })
    save_evaluator(layout.EVALUATOR_PATH, model, metrics=metrics, data_fingerprint=meta["fingerprint"])
    atomic_write_json(layout.EVALUATOR_METRICS_PATH, {**metrics, "weights_sha256": weights_hash(layout.EVALUATOR_PATH)})
    print(
        f"evaluator: test accuracy {metrics['test_accuracy']:.4f} on {metrics['num_test']} images "
        f"after {metrics['epochs']} epochs ({metrics['train_seconds']:.1f} s, {metrics['device']}) "
        f"-> {layout.EVALUATOR_PATH}"
    )
    if not metrics["meets_min_accuracy"]:
        Console(stderr=True).print(
            f"[bold yellow]warning:[/] evaluator test accuracy {metrics['test_accuracy']:.4f} is below "
            f"evaluator.min_accuracy {evaluator_cfg.min_accuracy}: FID/IS/KID in its feature space are less "
            "trustworthy. Raise evaluator.epochs or evaluator.width.",
            highlight=False,
            soft_wrap=True,
        )
