"""``fit-evaluator``: choose and train the evaluator whose features define FID/KID (a domain classifier, or a
contrastive encoder for data whose labels cannot carry a feature space)."""

from __future__ import annotations

from pathlib import Path

from stages.common import ParamsOption, exits_on_bad_input, load


@exits_on_bad_input
def main(params: ParamsOption = Path("params.yaml")) -> None:
    """Fit the evaluator on data/prepared/; write models/evaluator.pt and models/evaluator.json."""
    cfg = load(params)
    # Heavy imports after validation, so a bad params file fails fast.
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from pipeline.evaluation.evaluator import describe, weak_warning, write_evaluator

    columns = (TextColumn("fit-evaluator"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]:.3f}"),
               TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task("fit", total=None, loss=float("nan"))

        def progress(step: int, total: int, loss: float) -> None:
            if step == 1 or step == total or step % max(1, total // 100) == 0:  # ~100 redraw requests per fit
                bar.update(task, completed=step, total=total, loss=loss)

        metrics = write_evaluator(cfg.evaluator, progress=progress)
    print(describe(metrics))
    warning = weak_warning(metrics)
    if warning:
        Console(stderr=True).print(f"[bold yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
