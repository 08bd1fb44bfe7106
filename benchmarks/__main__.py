"""``python -m benchmarks [--device cpu|cuda]``: run the benchmark, print a table, write benchmarks/results.json.

Targets (2-core CPU): training throughput ≥ 1.0× the bare reference loop (≥ 2× on a GPU), evaluation of 10 000
samples ≤ 20 s, peak RSS of a train cell ≤ 3 GiB, no-op ``dvc repro`` ≤ 5 s, fitting the contrastive evaluator on
60k 32×32 images ≤ 4 min. The exit code is 0 whether or not
the targets are met: this measures, it does not gate.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.measure import Workspace, contrastive_fit, evaluation, noop_repro, peak_rss, throughput
from benchmarks.reference import DEBIAN_FASHION_MNIST
from pipeline.io import atomic_write_json

REPO = Path(__file__).resolve().parents[1]
TARGETS = {"ratio": {"cpu": 1.0, "cuda": 2.0}, "evaluation_seconds": 20.0, "peak_rss_gib": 3.0, "noop_repro_seconds": 5.0,
           "contrastive_fit_seconds": 240.0}


def machine(device: torch.device) -> dict[str, Any]:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout
    return {"cpu": model, "cores": torch.get_num_threads(), "torch": torch.__version__, "commit": commit.strip(),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "date": time.strftime("%Y-%m-%d %H:%M")}


def table(results: dict[str, Any]) -> str:
    device = results["device"]
    tp, ev, rss, repro = results["throughput"], results["evaluation"], results["memory"], results["noop_repro"]
    fit = results["contrastive_fit"]
    rows = [
        ("train throughput vs bare loop", f"{tp['ratio']:.2f}× ({min(tp['ours_images_per_second']):.0f}–"
         f"{max(tp['ours_images_per_second']):.0f} vs {min(tp['reference_images_per_second']):.0f}–"
         f"{max(tp['reference_images_per_second']):.0f} img/s)", f"≥ {TARGETS['ratio'][device]}",
         tp["ratio"] >= TARGETS["ratio"][device]),
        (f"evaluate {ev['num_samples']} samples", f"{ev['seconds']:.1f} s", f"≤ {TARGETS['evaluation_seconds']:.0f} s",
         ev["seconds"] <= TARGETS["evaluation_seconds"]),
        ("peak RSS of a train cell", f"{rss['peak_rss_gib']:.2f} GiB", f"≤ {TARGETS['peak_rss_gib']:.0f} GiB",
         rss["peak_rss_gib"] <= TARGETS["peak_rss_gib"]),
        ("no-op dvc repro", f"{repro['seconds']:.1f} s" if repro["seconds"] is not None else repro["skipped"],
         f"≤ {TARGETS['noop_repro_seconds']:.0f} s",
         None if repro["seconds"] is None else repro["seconds"] <= TARGETS["noop_repro_seconds"]),
        (f"fit contrastive evaluator ({fit['num_train']} images, {fit['resolution']}×{fit['resolution']})",
         f"{fit['seconds']:.0f} s", f"≤ {TARGETS['contrastive_fit_seconds']:.0f} s (60k 32×32)",
         fit["seconds"] <= TARGETS["contrastive_fit_seconds"]),
    ]
    lines = ["| Measure | Result | Target | Met |", "| --- | --- | --- | --- |"]
    lines += [f"| {name} | {value} | {target} | {'—' if ok is None else 'yes' if ok else 'NO'} |"
              for name, value, target, ok in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--steps", type=int, default=600, help="Training steps per throughput round.")
    parser.add_argument("--rounds", type=int, default=3, help="Alternating rounds of ours vs the reference.")
    parser.add_argument("--workers", type=int, default=None,
                        help="Reference DataLoader workers (default: 0 on CPU, the fastest there; 4 on GPU).")
    parser.add_argument("--fashion-mnist", type=Path, default=DEBIAN_FASHION_MNIST,
                        help="Folder of the Fashion-MNIST IDX .gz files for the reference loop (else downloaded).")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results.json")
    parser.add_argument("--repo", type=Path, default=REPO, help="Project whose prepared data and evaluator are used.")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    device = torch.device(args.device)
    for needed in ("data/prepared/meta.json", "models/evaluator.pt"):
        if not (args.repo / needed).exists():
            parser.error(f"{args.repo / needed} is missing: run `dvc repro prepare fit-evaluator` first")
    workers = args.workers if args.workers is not None else (4 if device.type == "cuda" else 0)

    with tempfile.TemporaryDirectory(prefix="genbench-bench-") as scratch:
        ws = Workspace.create(Path(scratch), args.repo, steps=args.steps, device=args.device)
        print(f"throughput: {args.rounds} alternating rounds of {args.steps} steps", flush=True)
        results = {"device": args.device, "machine": machine(device),
                   "throughput": throughput(ws, rounds=args.rounds, device=device, workers=workers,
                                                source=args.fashion_mnist)}
        print("evaluation", flush=True)
        results["evaluation"] = evaluation(ws)
        print("peak memory", flush=True)
        results["memory"] = peak_rss(ws)
    print("contrastive evaluator fit", flush=True)
    results["contrastive_fit"] = contrastive_fit(args.repo)
    print("no-op dvc repro", flush=True)
    results["noop_repro"] = noop_repro(args.repo)
    results["targets"] = TARGETS
    atomic_write_json(args.out, results)
    print(table(results))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
