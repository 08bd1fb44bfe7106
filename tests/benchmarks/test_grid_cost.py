"""``python -m benchmarks.grid_cost``: kernels and FLOPs counted on the CPU, and the per-stage arithmetic."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmarks.grid_cost import FUSED_OPTIMIZER_KERNELS, KernelCounter, StepCount, count_step, estimate
from pipeline.config import parse_params
from pipeline.evaluation.feature_check import DISTURBANCES
from tests.conftest import REPO, tiny_params, write_params


def test_views_launch_nothing_matmuls_count_flops_and_an_optimizer_step_counts_as_fused() -> None:
    weight = torch.nn.Parameter(torch.ones(4))
    optimizer = torch.optim.Adam([weight])
    with KernelCounter() as counter:
        x = torch.ones(2, 2)
        x.view(4).t()  # views: no kernel
        loss = (weight * 2).sum()  # mul, sum
        torch.ones(2, 3) @ torch.ones(3, 4)  # 2 ones, mm of 2 × 2·3·4 FLOPs
    assert counter.total == 6 and counter.flops == 48
    loss.backward()
    with KernelCounter() as counter:
        optimizer.step()
    assert counter.kernels == 0 and counter.optimizer_steps == 1 and counter.total == FUSED_OPTIMIZER_KERNELS


def test_a_step_is_bound_by_launches_or_by_arithmetic() -> None:
    assert StepCount(kernels=1000, flops=10**9).seconds(launch_us=10, tflops=100) == pytest.approx(0.01)
    assert StepCount(kernels=10, flops=10**13).seconds(launch_us=10, tflops=100) == pytest.approx(0.1)


def test_critic_steps_add_the_same_work_each() -> None:
    """Each extra critic step adds one critic update's kernels and FLOPs: counts linear in n_critic, not flat."""
    raw = tiny_params()
    for n in (1, 2, 5):
        raw["variants"][f"wgan{n}"] = {"kind": "gan", "loss": "wgan", "n_critic": n,
                                       "model": {"width": 4, "latent_dim": 8, "d_norm": "none"}}
    params = parse_params({**raw, "grid": {"variants": ["wgan1", "wgan2", "wgan5"], "seeds": [0]},
                           "prune": {"variants": []}})
    one, two, five = (count_step(params, f"wgan{n}") for n in (1, 2, 5))
    critic = StepCount(two.kernels - one.kernels, two.flops - one.flops)
    assert critic.kernels > 0 and critic.flops > 0
    assert five == StepCount(one.kernels + 4 * critic.kernels, one.flops + 4 * critic.flops)


def _rows(extractors: list[str]) -> tuple[dict[str, dict], dict]:
    raw = tiny_params()
    raw["evaluate"] = {**raw.get("evaluate", {}), "extractors": extractors}
    params = parse_params(raw)
    steps = {"gan": StepCount(500, 0), "vae": StepCount(100, 0)}
    rows = estimate(params, steps, {"gan": StepCount(200, 0)}, launch_us=10, tflops=100, inception_ips=64,
                    metrics_s=1, startup_s=5)
    return {r["stage"]: r for r in rows}, params


def test_per_stage_estimate_follows_the_params() -> None:
    rows, params = _rows(["inception-v3-compat", "domain"])
    ev, study = params.evaluate, params.prune
    assert rows["train@gan"] == {"stage": "train@gan", "count": 1, "each_s": 5 + 6 * 500 * 10e-6,
                                 "total_s": 5 + 6 * 500 * 10e-6}
    assert rows["evaluate"]["count"] == 2  # Inception on every draw (headline), host metrics once per space
    assert rows["evaluate"]["each_s"] == pytest.approx(5 + ev.noise_draws * ev.num_samples / 64 + 2)
    scoring = ev.noise_draws * study.num_samples / 64 + 1  # the headline space only
    assert rows["prune@gan"]["each_s"] == pytest.approx(5 + 2 * scoring + 1 * study.finetune_steps * 200 * 10e-6)
    assert rows["prune@vae"]["each_s"] == pytest.approx(5 + 2 * scoring)  # VAEs are not fine-tuned
    checks = sum(len(d.levels) + 1 for d in DISTURBANCES.values())
    assert rows["noise-floor + feature-check"]["each_s"] == pytest.approx(
        10 + ev.noise_floor_repeats * (ev.num_samples / 64 + 2) + checks * (ev.feature_check_samples / 64 + 2))


def test_without_inception_scoring_costs_only_the_host_metrics() -> None:
    rows, params = _rows(["domain"])
    assert rows["evaluate"]["each_s"] == pytest.approx(5 + 1)
    assert rows["prune@vae"]["each_s"] == pytest.approx(5 + 2 * 1)


def test_the_command_prints_a_row_per_stage_and_reuses_its_counts(tmp_path: Path) -> None:
    path, cache = write_params(tmp_path / "params.yaml", tiny_params()), tmp_path / "counts.json"
    command = [sys.executable, "-m", "benchmarks.grid_cost", "--params", str(path), "--counts", str(cache)]
    first = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "counted gan" in first.stdout and "operators" in first.stdout and "fine-tuning" in first.stdout
    for stage in ("| train@gan | 1 |", "| train@vae | 1 |", "| evaluate | 2 |", "| prune@gan | 1 |",
                  "| noise-floor + feature-check | 1 |", "| **all, one stage at a time** |"):
        assert stage in first.stdout
    saved = json.loads(cache.read_text())
    assert set(saved["steps"]) == {"gan", "vae"} and set(saved["finetune"]) == {"gan"}
    again = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "counted" not in again.stdout  # read back, not counted again
    assert again.stdout == first.stdout.replace("counted gan\ncounted vae\n", "")  # the same estimate
