"""What ``launch`` runs: the stages DVC would re-run, in dependency order, with their commands from dvc.yaml."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
from pydantic import BaseModel, ConfigDict

from pipeline.errors import InputError


class PlannedStage(BaseModel):
    """One stage to run: its DVC name (``train@dcgan-ns-0``), command, and the planned stages it waits for."""

    model_config = ConfigDict(frozen=True)

    name: str
    cmd: str
    upstream: tuple[str, ...]


def plan(repo_root: Path, *, force: bool = False) -> list[PlannedStage]:
    """Stages whose deps, params or outs changed (every stage with ``force``) and everything downstream of them.

    Topologically ordered, so a stage's upstream entries come before it.
    """
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(repo_root)) as repo:
            graph = repo.index.graph  # edges point from a stage to the stages it depends on
            stages = {stage.name: stage for stage in graph if stage.cmd}
            stale = set(repo.status())  # keyed by addressing: a path prefix when run from another directory
            changed = {s.name for s in stages.values() if force or s.addressing in stale}
    except DvcException as error:
        raise InputError(f"{repo_root}: DVC cannot read the pipeline: {error}") from None
    by_name = {stage.name: stage for stage in graph}
    selected = set(changed)
    for name in changed:
        selected |= {downstream.name for downstream in nx.ancestors(graph, by_name[name])}
    order = [stage.name for stage in reversed(list(nx.topological_sort(graph)))]
    return [
        PlannedStage(
            name=name,
            cmd=_command(stages[name].cmd, name),
            upstream=tuple(sorted(s.name for s in graph.successors(stages[name]) if s.name in selected)),
        )
        for name in order
        if name in selected and name in stages
    ]


def _command(cmd: str | list[str], name: str) -> str:
    if isinstance(cmd, list):  # a list of commands runs one after the other, as `dvc repro` does
        return " && ".join(cmd)
    if not cmd.strip():
        raise InputError(f"dvc.yaml: stage {name!r} has an empty cmd")
    return cmd
