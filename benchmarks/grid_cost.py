"""``python -m benchmarks.grid_cost [--params params-gpu.yaml]``: what a grid costs on one GPU, estimated per stage
from what can be counted without one, with every assumption an option printed beside the result.

Training: per variant, one step of the real trainer runs on the CPU under bf16 autocast (the GPU grid's precision),
counting the operators it dispatches (each at least one GPU kernel; views launch none; a fused optimizer step counts
``FUSED_OPTIMIZER_KERNELS``) and its FLOPs (``torch.utils.flop_counter``'s formulas). A GPU step then takes
``max(operators × --launch-us, FLOPs / --tflops)``: these small networks are bound by the host's per-operator
cost (Python, dispatch, autograd, the launch), not by arithmetic.
Scoring is counted in images through Inception (``--inception-ips``) plus ``--metrics-s`` of host-side work per set
scored in one space (precision/recall and KID, or a FID's matrix square root). Each stage process pays ``--startup-s``.
"""

from __future__ import annotations

import argparse
import copy
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from pipeline.config import Params, load_params
from pipeline.evaluation.feature_check import DISTURBANCES
from pipeline.losses import get_gan_loss
from pipeline.models import build_model
from pipeline.pruning import finetune_generator
from pipeline.training.distributed import World
from pipeline.training.loop import TRAINERS
from pipeline.training.precision import Precision
from pipeline.training.runtime import Runtime

FUSED_OPTIMIZER_KERNELS = 2  # a fused Adam/foreach RMSprop step: a couple of multi-tensor kernels


class KernelCounter(TorchDispatchMode):
    """Counts dispatched operators that launch work (not views or profiler marks) and their FLOPs (torch's
    ``flop_registry``), except inside optimizer steps (counted apart). Not ``FlopCounterMode``: its module tracker
    breaks ``autograd.grad`` (the gradient penalties)."""

    def __init__(self) -> None:
        super().__init__()
        self.kernels, self.flops, self.optimizer_steps, self._paused = 0, 0, 0, False
        self._hooks: list[Any] = []

    def __enter__(self) -> KernelCounter:
        def pause(*_: Any) -> None:
            self._paused, self.optimizer_steps = True, self.optimizer_steps + 1

        def resume(*_: Any) -> None:
            self._paused = False

        self._hooks = [register_optimizer_step_pre_hook(pause),
                       register_optimizer_step_post_hook(resume)]
        return super().__enter__()

    def __exit__(self, *exc: Any) -> None:
        for hook in self._hooks:
            hook.remove()
        super().__exit__(*exc)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001 - torch's signature
        out = func(*args, **(kwargs or {}))
        if not self._paused and not func.is_view and func.namespace != "profiler":  # record_function: no kernel
            self.kernels += 1
            if func.overloadpacket in flop_registry:
                self.flops += flop_registry[func.overloadpacket](*args, **(kwargs or {}), out_val=out)
        return out

    @property
    def total(self) -> int:
        return self.kernels + FUSED_OPTIMIZER_KERNELS * self.optimizer_steps


@dataclass(frozen=True)
class StepCount:
    """One training step of a variant: kernels launched and floating-point operations."""

    kernels: int
    flops: int

    def seconds(self, launch_us: float, tflops: float) -> float:
        return max(self.kernels * launch_us * 1e-6, self.flops / (tflops * 1e12))


def count_step(params: Params, variant: str) -> StepCount:
    """Kernels and FLOPs of one step of ``variant``'s trainer at the grid's batch size (after one warm-up step)."""
    cfg, batch = params.variant(variant), params.train.batch_size
    resolution, channels = params.data.resolution, 1
    runtime = Runtime(torch.device("cpu"), Precision("bf16", "cpu"), World())
    trainer = TRAINERS[cfg.kind](cfg, build_model(cfg.model, channels=channels, resolution=resolution), runtime)
    real = [torch.rand(batch, channels, resolution, resolution) * 2 - 1 for _ in range(trainer.batches_per_step)]
    trainer.step(real)
    with KernelCounter() as counter:
        trainer.step(real)
    return StepCount(counter.total, counter.flops)


def count_finetune_step(params: Params, variant: str) -> StepCount:
    """Kernels and FLOPs of one pruning fine-tuning step (generator against the frozen critic, plus distillation):
    the difference between 3 steps and 1, so the set-up (copies, the optimizer) is left out."""
    cfg, study = params.variant(variant), params.prune
    nets = build_model(cfg.model, channels=1, resolution=params.data.resolution)
    counts = []
    for steps in (1, 3):
        with KernelCounter() as counter:
            finetune_generator(copy.deepcopy(nets["generator"]), nets["discriminator"], get_gan_loss(cfg.loss),
                               latent_dim=cfg.model.latent_dim, steps=steps, batch_size=study.finetune_batch_size,
                               lr=study.finetune_lr, seed=0, teacher=nets["generator"],
                               distill_weight=study.finetune_distill_weight)
        counts.append((counter.total, counter.flops))
    return StepCount((counts[1][0] - counts[0][0]) // 2, (counts[1][1] - counts[0][1]) // 2)


def estimate(params: Params, steps: dict[str, StepCount], finetune: dict[str, StepCount], *, launch_us: float,
             tflops: float, inception_ips: float, metrics_s: float, startup_s: float) -> list[dict[str, Any]]:
    """Seconds per stage kind on one GPU, one cell after another: rows of stage, count, seconds each, total.

    Scoring costs the images sent through Inception (our domain networks are ~free next to it) plus ``metrics_s``
    per set scored in one space on the host (precision/recall and KID, or a FID's matrix square root)."""
    ev, prune, seeds = params.evaluate, params.prune, len(params.grid.seeds)
    spaces = len(ev.extractors)
    inception = "inception-v3-compat" in ev.extractors
    headline_inception = ev.extractors[0] == "inception-v3-compat"

    def scoring(images: int, metric_sets: int) -> float:
        return (images if inception else 0) / inception_ips + metric_sets * metrics_s

    rows = []
    for variant in params.grid.variants:
        train_s = params.train.steps * steps[variant].seconds(launch_us, tflops)
        rows.append({"stage": f"train@{variant}", "count": seeds, "each_s": startup_s + train_s})
    draws = ev.noise_draws if headline_inception else 1  # the headline space's FID is over every draw
    rows.append({"stage": "evaluate", "count": seeds * len(params.grid.variants),
                 "each_s": startup_s + scoring(draws * ev.num_samples, spaces)})
    for variant in prune.variants:  # every sparsity scored in the headline space, those > 0 fine-tuned (GANs)
        tune = finetune[variant].seconds(launch_us, tflops) * prune.finetune_steps if variant in finetune else 0.0
        score = scoring(draws * prune.num_samples if headline_inception else 0, 1)
        each = startup_s + len(prune.sparsities) * score + (len(prune.sparsities) - 1) * tune
        rows.append({"stage": f"prune@{variant}", "count": len(prune.seeds), "each_s": each})
    check_sets = sum(len(d.levels) + 1 for d in DISTURBANCES.values())
    rows.append({"stage": "noise-floor + feature-check", "count": 1,
                 "each_s": 2 * startup_s
                 + scoring(ev.noise_floor_repeats * ev.num_samples, ev.noise_floor_repeats * spaces)
                 + scoring(check_sets * ev.feature_check_samples, check_sets * spaces)})
    for row in rows:
        row["total_s"] = row["count"] * row["each_s"]
    return rows


def counts(params: Params, cache: Path | None) -> tuple[dict[str, StepCount], dict[str, StepCount]]:
    """Per variant, a training step's and (GANs that are pruned) a fine-tuning step's counts; read from ``cache``
    when it holds them (counting full-width steps on a CPU takes tens of minutes), written there otherwise."""
    if cache is not None and cache.exists():
        saved = json.loads(cache.read_text())
        return ({v: StepCount(**c) for v, c in saved["steps"].items()},
                {v: StepCount(**c) for v, c in saved["finetune"].items()})
    steps, finetune = {}, {}
    for variant in params.grid.variants:  # printed as counted
        steps[variant] = count_step(params, variant)
        if variant in params.prune.variants and params.variant(variant).kind == "gan":
            finetune[variant] = count_finetune_step(params, variant)
        print(f"counted {variant}", flush=True)
    if cache is not None:
        cache.write_text(json.dumps({"steps": {v: asdict(c) for v, c in steps.items()},
                                     "finetune": {v: asdict(c) for v, c in finetune.items()}}, indent=1))
    return steps, finetune


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params-gpu.yaml"))
    parser.add_argument("--counts", type=Path, default=None,
                        help="JSON file of the per-variant counts: read when it exists, written after counting.")
    parser.add_argument("--launch-us", type=float, nargs="+", default=[12.0],
                        help="Host µs per dispatched operator of eager PyTorch (dispatch, autograd, launch: ~5-20); "
                             "the table uses the first value, a total is printed for each.")
    parser.add_argument("--tflops", type=float, default=100.0,
                        help="Sustained bf16 TFLOP/s of these small convolutions (far below the GPU's peak).")
    parser.add_argument("--inception-ips", type=float, default=3000.0,
                        help="Images/s through torch-fidelity's fp32 Inception at 299×299 (resize included).")
    parser.add_argument("--metrics-s", type=float, default=4.0,
                        help="Host seconds of precision/recall and KID per scored set of 10 000 (13 s on 2 cores).")
    parser.add_argument("--startup-s", type=float, default=8.0, help="Seconds a stage process takes to start.")
    args = parser.parse_args()
    params = load_params(args.params)
    steps, finetune = counts(params, args.counts)
    for variant, count in steps.items():
        tune = f"; fine-tuning {finetune[variant].kernels} operators a step" if variant in finetune else ""
        print(f"{variant}: {count.kernels} operators, {count.flops / 1e9:.1f} GFLOP a step{tune}")
    totals = {}
    for launch_us in args.launch_us:
        rows = estimate(params, steps, finetune, launch_us=launch_us, tflops=args.tflops,
                        inception_ips=args.inception_ips, metrics_s=args.metrics_s, startup_s=args.startup_s)
        totals[launch_us] = sum(r["total_s"] for r in rows) / 3600
    rows = estimate(params, steps, finetune, launch_us=args.launch_us[0], tflops=args.tflops,
                    inception_ips=args.inception_ips, metrics_s=args.metrics_s, startup_s=args.startup_s)
    print(f"\nassumed: {args.launch_us[0]} µs an operator, {args.tflops} TFLOP/s, {args.inception_ips:.0f} Inception "
          f"img/s, {args.metrics_s} s of host metrics a set, {args.startup_s} s start-up a stage\n")
    print("| stage | count | each | total |\n| --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row['stage']} | {row['count']} | {row['each_s'] / 60:.1f} min | {row['total_s'] / 60:.0f} min |")
    print(f"| **all, one stage at a time** | | | **{totals[args.launch_us[0]]:.1f} h** |")
    for launch_us, hours in totals.items():
        print(f"all at {launch_us} µs an operator: {hours:.1f} h")

if __name__ == "__main__":
    main()
