"""``python -m stages launch`` on a real two-node Ray cluster on this machine (127.0.0.1)."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import torch
from mlflow.tracking import MlflowClient

from pipeline.layout import list_steps
from tests.conftest import tiny_params
from tests.stages.conftest import project, reproduced_params

pytestmark = pytest.mark.slow
CELLS = ["gan-0", "vae-0", "boom-0"]  # the shared grid's (tests/stages/conftest.py); boom diverges
# what differs between two runs of the same params: timings, run ids, where the outbox lies
VOLATILE = {"train_seconds", "images_per_second", "time_to_within_10pct", "mlflow_run_id", "mlflow_outbox",
            "mlflow_model_uri", "latency_ms", "latency_ms_per_image", "seconds"}


# The test cluster's own token (head, joining node and driver alike): token authentication as a real cluster would
# use it, whether or not this machine has a ~/.ray/auth_token (Ray enables token auth by itself when one exists).
RAY_TOKEN = secrets.token_hex(32)


def _env(repo: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RAY_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = str(repo)
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=RAY_TOKEN)
    return env


def _run(repo: Path, *args: str, timeout: int = 900, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=repo, env={**_env(repo), **env}, capture_output=True,
                          text=True, timeout=timeout)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A head node and a second node process: the address to pass as --address."""
    address = f"127.0.0.1:{_free_port()}"
    here = tmp_path_factory.mktemp("ray")
    ray = [str(Path(sys.executable).parent / "ray"), "start", "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
           "--disable-usage-stats"]
    env = _env(here)
    subprocess.run([*ray, "--head", "--port", address.split(":")[1], "--include-dashboard", "false"],
                   cwd=here, env=env, check=True, capture_output=True, timeout=120)
    try:
        subprocess.run([*ray, "--address", address], cwd=here, env=env, check=True, capture_output=True, timeout=120)
        yield address
    finally:
        subprocess.run([str(Path(sys.executable).parent / "ray"), "stop", "--force"], env=env, capture_output=True,
                       timeout=120)


def _comparable(path: Path) -> object:
    def strip(value: object) -> object:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in VOLATILE}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(json.loads(path.read_text()))


@pytest.fixture(scope="module")
def launched(cluster: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    repo = project(tmp_path_factory.mktemp("launched"), reproduced_params())
    return repo, _run(repo, "stages", "launch", "--address", cluster)


def test_every_stage_runs_and_dvc_status_is_clean(launched: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    repo, result = launched
    assert result.returncode == 0, result.stdout + result.stderr
    done = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("done ")]
    assert {f"train@{c}" for c in CELLS} | {f"evaluate@{c}" for c in CELLS} <= set(done)
    assert done[-1] == "report" and done.index("report") == len(done) - 1  # report waits for every metrics file
    status = _run(repo, "dvc", "status", "--json")
    assert status.returncode == 0 and json.loads(status.stdout) == {}
    again = _run(repo, "stages", "launch", "--address", "auto")
    assert again.returncode == 0 and "every stage is up to date" in again.stdout


def test_metrics_equal_those_of_dvc_repro(launched: tuple[Path, subprocess.CompletedProcess[str]],
                                          reproduced: Path) -> None:
    """The same params by `dvc repro` (on one thread, as Ray gives a task of --cpus-per-cell 1: sums of floats in
    another order differ in the last bits): the same metrics, the diverged cell's included."""
    repo, _ = launched
    names = sorted(p.name for p in (reproduced / "metrics").glob("*.json"))
    # the cells, noise floor, feature check and the prune studies of gan-0 and boom-0
    assert names == sorted(p.name for p in (repo / "metrics").glob("*.json")) and len(names) == len(CELLS) + 4
    for name in names:
        assert _comparable(repo / "metrics" / name) == _comparable(reproduced / "metrics" / name), name


def test_every_mlflow_run_is_a_child_of_one_grid_run(launched: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    repo, _ = launched
    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("genbench-digits")
    runs = client.search_runs([experiment.experiment_id], filter_string="tags.stage = 'train'")
    statuses = {r.info.run_name: r.info.status for r in runs}
    assert statuses == {"gan-0": "FINISHED", "vae-0": "FINISHED", "boom-0": "FAILED"}
    (parent,) = client.search_runs([experiment.experiment_id], filter_string="tags.`genbench.role` = 'grid'")
    assert {r.data.tags["mlflow.parentRunId"] for r in runs} == {parent.info.run_id}


def _stage_process(repo: Path, args: str) -> psutil.Process | None:
    for process in psutil.process_iter(["cmdline", "cwd"]):
        if process.info["cwd"] == str(repo) and args in " ".join(process.info["cmdline"] or []):
            return process
    return None


def test_a_killed_worker_is_retried_and_the_cell_resumes_bit_identical(cluster: str, tmp_path: Path) -> None:
    raw = tiny_params()
    raw["grid"] = {"variants": ["gan"], "seeds": [0]}
    raw["prune"]["variants"] = ["gan"]
    raw["train"].update(steps=600, checkpoint_every=20, log_every=100, sample_every=600, snapshot_every=600)
    reference = project(tmp_path / "reference", raw)
    assert _run(reference, "dvc", "repro", "train@gan-0", OMP_NUM_THREADS="1").returncode == 0  # as a Ray task

    repo = project(tmp_path / "killed", raw)
    launch = subprocess.Popen([sys.executable, "-m", "stages", "launch", "--address", cluster], cwd=repo,
                              env=_env(repo), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline, killed = time.monotonic() + 300, None
    while time.monotonic() < deadline and launch.poll() is None and killed is None:
        newest = list_steps(repo / "runs/gan-0/checkpoints")
        stage = _stage_process(repo, "stages train --variant gan --seed 0")
        if newest and newest[-1][0] >= 40 and stage is not None:
            worker = stage.parent()  # the Ray worker running the task
            killed = " ".join(worker.cmdline())
            os.kill(worker.pid, signal.SIGKILL)
        time.sleep(0.05)
    assert killed is not None and "ray" in killed.lower(), f"the cell ended before the kill, or: {killed}"
    assert list_steps(repo / "runs/gan-0/checkpoints")[-1][0] < 600
    output, _ = launch.communicate(timeout=600)
    assert launch.returncode == 0, output
    assert json.loads((repo / "runs/gan-0/train.json").read_text())["status"] == "ok"
    expected = torch.load(reference / "runs/gan-0/generator.pt", weights_only=True)["state_dict"]
    actual = torch.load(repo / "runs/gan-0/generator.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(expected[k], actual[k]) for k in expected)


def test_an_unreachable_address_exits_2_naming_it(tmp_path: Path) -> None:
    repo = project(tmp_path / "repo", tiny_params())
    port = _free_port()
    result = _run(repo, "stages", "launch", "--address", f"127.0.0.1:{port}", timeout=120)
    assert result.returncode == 2 and f"127.0.0.1:{port}" in result.stderr
    assert "no Ray cluster answers there" in result.stderr and not (repo / "runs").exists()
