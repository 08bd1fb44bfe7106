"""The cell loop on tiny data: outputs, determinism, resume, the resume guard, divergence."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import shutil
import time
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from pipeline.config import parse_params
from pipeline.errors import InputError
from pipeline.generators import load_generator
from pipeline.layout import list_steps
from pipeline.training import checkpoint as ckpt
from pipeline.training import loop
from pipeline.training.code import code_fingerprint
from pipeline.training.loop import first_divergence, train_cell
from tests.conftest import tiny_params, write_prepared


def _params(**train):
    raw = tiny_params()
    raw["train"].update(train)
    return parse_params(raw)


def _weights(variant: str) -> dict[str, torch.Tensor]:
    return torch.load(Path("runs") / f"{variant}-0" / "generator.pt", weights_only=True)["state_dict"]


@pytest.mark.parametrize("variant", ["gan", "vae"])
def test_outputs_of_a_cell(workdir: Path, variant: str) -> None:
    write_prepared(workdir)
    summary = train_cell(_params(), variant, 0, progress=False)
    run = Path("runs") / f"{variant}-0"
    assert summary.status == "ok" and summary.steps == 6
    assert summary.images_per_second > 0 and summary.num_parameters > 0
    assert json.loads((run / "train.json").read_text()) == summary.model_dump(mode="json")
    assert [p.name for p in sorted((run / "checkpoints").iterdir())] == ["step-00000003.pt", "step-00000006.pt"]
    assert {p.name for p in (run / "samples").iterdir()} == {"step-00000003.png", "step-00000006.png", "final.png"}
    snapshots = list_steps(run / "snapshots")
    assert [step for step, _ in snapshots] == [0, 3, 6]
    times = [load_generator(path)[1]["train_seconds"] for _, path in snapshots]
    assert times[0] == 0.0 and times[0] < times[1] < times[2] <= summary.train_seconds
    final = load_generator(snapshots[-1][1])[0].net.state_dict()
    assert all(torch.equal(final[k], v) for k, v in load_generator(run / "generator.pt")[0].net.state_dict().items())
    rows = list(csv.DictReader((run / "losses.csv").open()))
    assert [int(r["step"]) for r in rows] == list(range(1, 7))
    assert ("loss_d" in rows[0]) == (variant == "gan") and ("kl" in rows[0]) == (variant == "vae")
    generator, info = load_generator(run / "generator.pt")
    assert info["kind"] == variant
    assert generator.sample(5, generator=torch.Generator().manual_seed(0)).shape == (5, 1, 8, 8)

    client = MlflowClient()
    mlflow_run = client.get_run(summary.mlflow_run_id)
    assert mlflow_run.info.run_name == f"{variant}-0" and mlflow_run.info.status == "FINISHED"
    assert mlflow_run.data.params["train.batch_size"] == "8" and mlflow_run.data.tags["stage"] == "train"
    history = client.get_metric_history(summary.mlflow_run_id, "loss_d" if variant == "gan" else "loss")
    assert sorted(m.step for m in history) == list(range(1, 7))
    artifacts = [a.path for a in client.list_artifacts(summary.mlflow_run_id, "samples")]
    assert "samples/final.png" in artifacts


def test_training_is_deterministic_on_cpu(workdir: Path) -> None:
    write_prepared(workdir)
    train_cell(_params(), "gan", 0, progress=False)
    first = _weights("gan")
    train_cell(_params(), "gan", 0, restart=True, progress=False)
    second = _weights("gan")
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_resume_is_bit_identical(workdir: Path) -> None:
    write_prepared(workdir)
    train_cell(_params(), "gan", 0, progress=False)
    uninterrupted = _weights("gan")
    snapshots = dict(list_steps(Path("runs/gan-0/snapshots")))
    before = {step: load_generator(path)[0].net.state_dict() for step, path in snapshots.items()}
    # Keep only the step-3 checkpoint, as if the run had been killed between steps 3 and 6.
    (Path("runs/gan-0/checkpoints") / "step-00000006.pt").unlink()
    summary = train_cell(_params(), "gan", 0, progress=False)
    resumed = _weights("gan")
    assert [step for step, _ in list_steps(Path("runs/gan-0/snapshots"))] == [0, 3, 6]
    after = load_generator(snapshots[6])[0].net.state_dict()  # rewritten by the resumed run, identically
    assert all(torch.equal(before[6][k], after[k]) for k in after)
    assert all(torch.equal(uninterrupted[k], resumed[k]) for k in uninterrupted)
    rows = list(csv.DictReader(Path("runs/gan-0/losses.csv").open()))
    assert [int(r["step"]) for r in rows] == list(range(1, 7))
    assert summary.steps == 6


def test_resume_guard_lists_changed_keys(workdir: Path) -> None:
    write_prepared(workdir)
    train_cell(_params(), "gan", 0, progress=False)
    with pytest.raises(InputError, match=r"differs in: train\.batch_size"):
        train_cell(_params(batch_size=4), "gan", 0, progress=False)
    summary = train_cell(_params(batch_size=4), "gan", 0, on_config_change="restart", progress=False)
    assert summary.status == "ok"
    state = ckpt.load_checkpoint(list_steps(Path("runs/gan-0/checkpoints"))[-1][1])
    assert state["config"]["train"]["batch_size"] == 4


def test_changed_training_code_is_not_resumed(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_prepared(workdir)
    train_cell(_params(), "gan", 0, progress=False)
    monkeypatch.setattr(loop, "code_fingerprint", lambda: "after-a-loss-fix")
    with pytest.raises(InputError, match=r"differs in: training_code"):
        train_cell(_params(), "gan", 0, progress=False)
    summary = train_cell(_params(), "gan", 0, on_config_change="restart", progress=False)
    state = ckpt.load_checkpoint(list_steps(Path("runs/gan-0/checkpoints"))[-1][1])
    assert summary.steps == 6 and state["config"]["training_code"] == "after-a-loss-fix"


def test_code_fingerprint_follows_training_sources_only(tmp_path: Path) -> None:
    package = Path(loop.__file__).parents[1]
    copy = tmp_path / "pipeline"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    original = code_fingerprint(copy)
    assert original == code_fingerprint(package)
    (copy / "reporting" / "content.py").write_text("# the report does not change training\n")
    assert code_fingerprint(copy) == original
    with (copy / "losses.py").open("a") as handle:
        handle.write("\n# a fix\n")
    assert code_fingerprint(copy) != original


def test_extending_the_step_budget_resumes(workdir: Path) -> None:
    write_prepared(workdir)
    train_cell(_params(), "gan", 0, progress=False)
    summary = train_cell(_params(steps=9), "gan", 0, progress=False)
    assert summary.steps == 9
    assert len(list(csv.DictReader(Path("runs/gan-0/losses.csv").open()))) == 9


def _file_digests(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (relative name) with the SHA-256 of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _logged_losses(variant: str, seed: int) -> list[float]:
    rows = list(csv.DictReader((Path("runs") / f"{variant}-{seed}" / "losses.csv").open()))
    return [float(v) for row in rows for k, v in row.items() if k.startswith("loss")]


def test_divergence_is_isolated(workdir: Path) -> None:
    """In one process and one runs/ folder: a healthy cell, then a diverging one (learning rate 1e30), then another
    healthy one. Only the middle cell is diverged; the first's files are untouched and the last trains normally."""
    write_prepared(workdir)
    raw = tiny_params()
    raw["variants"]["gan"]["d_optimizer"] = {"lr": 1.0e30}
    raw["variants"]["gan"]["g_optimizer"] = {"lr": 1.0e30}
    params = parse_params(raw)
    before = train_cell(params, "vae", 0, progress=False)
    assert before.status == "ok"
    untouched = _file_digests(Path("runs/vae-0"))

    diverged = train_cell(params, "gan", 0, progress=False)
    assert diverged.status == "diverged" and diverged.reason.startswith("non-finite loss_")
    assert Path("runs/gan-0/generator.pt").is_file()
    client = MlflowClient()
    assert client.get_run(diverged.mlflow_run_id).info.status == "FAILED"
    assert client.get_run(diverged.mlflow_run_id).data.tags["failure_reason"] == diverged.reason

    after = train_cell(params, "vae", 1, progress=False)
    assert after.status == "ok" and after.reason is None and after.steps == 6
    losses = _logged_losses("vae", 1)
    assert len(losses) == 6 and all(math.isfinite(v) for v in losses)
    assert client.get_run(after.mlflow_run_id).info.status == "FINISHED"
    assert _file_digests(Path("runs/vae-0")) == untouched
    assert json.loads(Path("runs/vae-0/train.json").read_text())["status"] == "ok"


def test_exploding_finite_losses_mark_the_cell_diverged(workdir: Path) -> None:
    write_prepared(workdir)
    summary = train_cell(_params(max_abs_value=1e-3), "gan", 0, progress=False)  # any real loss exceeds 1e-3
    assert summary.status == "diverged" and summary.steps == 2  # found at the first flush (log_every 2)
    assert summary.reason.startswith("exploding loss_") and "train.max_abs_value 0.001" in summary.reason
    assert "at step 1" in summary.reason
    assert MlflowClient().get_run(summary.mlflow_run_id).data.tags["failure_reason"] == summary.reason


@pytest.mark.parametrize(("rows", "limit", "expected"), [
    ([{"step": 1, "loss_d": 1.0, "images_per_second": 1e9}], 10.0, None),  # throughput is not checked
    ([{"step": 1, "loss_d": 1.0}, {"step": 2, "loss_d": -50.0}], 10.0, (2, "exploding loss_d=-50")),
    ([{"step": 1, "loss_g": float("nan"), "loss_d": 1e9}], 10.0, (1, "non-finite loss_g")),
    ([{"step": 3, "loss_d": 1e9}], None, None),  # null: only NaN/Inf count
    ([{"step": 3, "kl": float("inf")}], None, (3, "non-finite kl")),
])  # fmt: skip
def test_first_divergence(rows: list, limit: float | None, expected: tuple | None) -> None:
    found = first_divergence(rows, limit)
    if expected is None:
        assert found is None
    else:
        assert found[0] == expected[0] and found[1].startswith(expected[1])


def test_batch_larger_than_dataset(workdir: Path) -> None:
    write_prepared(workdir, n_train=4)
    with pytest.raises(InputError, match="train.batch_size: 8 is larger than the prepared train split"):
        train_cell(_params(), "gan", 0, progress=False)
    assert not Path("runs").exists()


def test_only_corrupt_checkpoints_is_an_error(workdir: Path) -> None:
    write_prepared(workdir)
    folder = Path("runs/gan-0/checkpoints")
    folder.mkdir(parents=True)
    (folder / "step-00000003.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match=r"no usable checkpoint .*step-00000003.pt: unreadable checkpoint"):
        train_cell(_params(), "gan", 0, progress=False)


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_newest_checkpoint_falls_back_to_the_previous(workdir: Path, damage: str) -> None:
    write_prepared(workdir)
    train_cell(_params(), "gan", 0, progress=False)
    uninterrupted = _weights("gan")
    newest = Path("runs/gan-0/checkpoints/step-00000006.pt")
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\x00garbage" * 100)
    summary = train_cell(_params(), "gan", 0, progress=False)
    assert summary.steps == 6
    resumed = _weights("gan")
    assert all(torch.equal(uninterrupted[k], resumed[k]) for k in uninterrupted)


def test_train_seconds_cover_checkpoints_snapshots_and_samples(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The training time (and so images/s) is the whole loop's: made slow here, the boundary work must show in it."""
    write_prepared(workdir)
    pause, calls = 0.2, []

    def slow(real):
        def wrapped(*args, **kwargs):
            calls.append(real.__name__)
            time.sleep(pause)
            return real(*args, **kwargs)
        return wrapped

    for name in ("save_grid", "export_generator"):
        monkeypatch.setattr(loop, name, slow(getattr(loop, name)))
    monkeypatch.setattr(loop.ckpt, "save_checkpoint", slow(loop.ckpt.save_checkpoint))
    started = time.perf_counter()
    summary = train_cell(_params(checkpoint_every=2, sample_every=3, snapshot_every=2), "gan", 0, progress=False)
    wall = time.perf_counter() - started
    # inside the loop: snapshots at 0, 2, 4, 6, checkpoints at 2, 4, 6, sample grids at 3, 6; after it: final.png and
    # generator.pt, which are not training
    inside = 4 + 3 + 2
    assert len(calls) == inside + 2
    assert inside * pause <= summary.train_seconds < wall - 2 * pause
