"""The Typer application: one command per stage, looked up in ``COMMANDS``."""

from __future__ import annotations

import typer

from stages import (
    evaluate,
    feature_check,
    fit_evaluator,
    gate,
    launch,
    noise_floor,
    prepare,
    prune,
    report,
    server,
    sync,
    train,
    ui,
)

app = typer.Typer(
    help="Reproducible benchmark of GAN and VAE variants: prepare → fit-evaluator → train → evaluate (+ noise-floor, feature-check) → report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

COMMANDS = {
    "prepare": prepare.main,
    "fit-evaluator": fit_evaluator.main,
    "train": train.main,
    "evaluate": evaluate.main,
    "noise-floor": noise_floor.main,
    "feature-check": feature_check.main,
    "prune": prune.main,
    "report": report.main,
    "server": server.main,  # not a DVC stage: the team MLflow server
    "sync": sync.main,  # not a DVC stage: deliver MLflow logging kept while the store was away
    "gate": gate.main,  # not a DVC stage: the quality gate of `make retrain`
    "launch": launch.main,  # not a DVC stage: runs the others as Ray tasks
    "ui": ui.main,  # not a DVC stage: the MLflow UI with each experiment's URL
}
for _name, _command in COMMANDS.items():
    app.command(_name)(_command)
