"""Seeding: one seed for every RNG, and the determinism switch without Inductor's start-up cost."""

from __future__ import annotations

import subprocess
import sys

import torch

from pipeline.seeding import seed_everything


def test_seed_everything_sets_the_deterministic_flag_and_repeats_draws():
    try:
        first = seed_everything(7, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        draws = torch.rand(3), torch.rand(3, generator=first)
        again = seed_everything(7, deterministic=True)
        assert torch.equal(draws[0], torch.rand(3)) and torch.equal(draws[1], torch.rand(3, generator=again))
        seed_everything(7, deterministic=False)
        assert not torch.are_deterministic_algorithms_enabled()
    finally:
        torch.set_deterministic_debug_mode("default")


def test_seed_everything_does_not_import_inductor():
    """``torch.use_deterministic_algorithms`` imports Inductor's config (~900 modules, ~2 s on 2 cores) in every
    stage process; the flag is set without it."""
    code = ("import sys; from pipeline.seeding import seed_everything; seed_everything(0); "
            "import torch; assert torch.are_deterministic_algorithms_enabled(); "
            "print('torch._inductor.config' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
