"""Global magnitude pruning of generators: the sparsity reached, masks through fine-tuning, sizes and counts."""

from __future__ import annotations

import pytest
import torch

from pipeline.config import DcganConfig, ResnetConfig
from pipeline.losses import get_gan_loss
from pipeline.models import ImageGenerator, build_model
from pipeline.prune_study import largest_within_noise
from pipeline.pruning import (
    finetune_generator,
    generation_latency,
    make_permanent,
    parameter_counts,
    prunable_weights,
    prune_global,
    serialized_bytes,
)


def _nets(config=None):
    torch.manual_seed(0)
    return build_model(config or DcganConfig(width=8, latent_dim=8), channels=1, resolution=16)


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.5, 0.9])
@pytest.mark.parametrize("config", [DcganConfig(width=8, latent_dim=8), ResnetConfig(name="resnet", width=8, latent_dim=8)],
                         ids=["dcgan", "resnet"])
def test_global_pruning_reaches_the_sparsity_over_all_layers(sparsity: float, config) -> None:
    generator = _nets(config)["generator"]
    pruned = make_permanent(prune_global(generator, sparsity))
    counts = parameter_counts(pruned)
    assert 1 - counts["nonzero_prunable_weights"] / counts["prunable_weights"] == pytest.approx(sparsity, abs=1e-3)
    assert counts["parameters"] == parameter_counts(generator)["parameters"]  # same shapes, zeros instead
    assert parameter_counts(generator)["nonzero_prunable_weights"] == parameter_counts(generator)["prunable_weights"]
    if sparsity:  # global: the kept weights are the largest in magnitude across layers
        kept = torch.cat([getattr(m, n).detach().flatten() for m, n in prunable_weights(pruned)])
        original = torch.cat([getattr(m, n).detach().flatten() for m, n in prunable_weights(generator)])
        threshold = original.abs().kthvalue(round(sparsity * original.numel())).values
        assert torch.all(kept[kept != 0].abs() >= threshold)



def test_pruning_is_global_across_layers() -> None:
    """A layer with 100× larger weights keeps them all; the others lose more than the target share instead."""
    generator = _nets()["generator"]
    first, _ = prunable_weights(generator)[0]
    with torch.no_grad():
        first.weight.mul_(100)
    pruned = make_permanent(prune_global(generator, 0.5))
    shares = [float((getattr(m, n) == 0).float().mean()) for m, n in prunable_weights(pruned)]
    assert shares[0] < 0.05 and all(share > 0.5 for share in shares[1:])  # only its near-zero weights go


def test_fine_tuning_keeps_pruned_weights_at_zero_and_changes_the_rest() -> None:
    nets = _nets()
    pruned = prune_global(nets["generator"], 0.7)
    masks = [m.weight_mask.clone() for m, _ in prunable_weights(pruned)]
    before = [m.weight.detach().clone() for m, _ in prunable_weights(pruned)]
    losses = finetune_generator(pruned, nets["discriminator"], get_gan_loss("ns"), latent_dim=8, steps=5,
                                batch_size=16, lr=1e-3, seed=0)
    assert len(losses) == 5 and all(torch.isfinite(torch.tensor(losses)))
    assert not any(p.requires_grad for p in nets["discriminator"].parameters())  # the critic stayed frozen
    make_permanent(pruned)
    after = [m.weight.detach() for m, _ in prunable_weights(pruned)]
    assert all(torch.all(w[mask == 0] == 0) for w, mask in zip(after, masks, strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(after, before, strict=True))
    assert not any(hasattr(m, "weight_orig") for m, _ in prunable_weights(pruned))


def test_sparse_storage_shrinks_with_sparsity_and_never_exceeds_dense() -> None:
    generator = _nets()["generator"]
    dense = serialized_bytes(generator, sparse=False)
    assert serialized_bytes(generator, sparse=True) <= dense  # dense weights stay dense
    sizes = [serialized_bytes(make_permanent(prune_global(generator, s)), sparse=True) for s in (0.5, 0.9)]
    assert sizes[1] < sizes[0] <= dense and sizes[1] < 0.6 * dense


def test_latency_is_the_median_of_the_timed_calls_after_a_warm_up(monkeypatch: pytest.MonkeyPatch) -> None:
    generator = ImageGenerator(_nets()["generator"], latent_dim=8, output="tanh")
    clock = iter([0.0, 5.0, 10.0, 10.5, 20.0, 22.0])  # calls of 5.0, 0.5 and 2.0 s
    monkeypatch.setattr("pipeline.pruning.time.perf_counter", lambda: next(clock))
    assert generation_latency(generator, batch_size=4, repeats=3) == 2.0  # the median, not the mean (2.5)


def test_largest_sparsity_within_noise() -> None:
    rows = [{"sparsity": 0.0, "fid": 10.0}, {"sparsity": 0.3, "fid": 10.2}, {"sparsity": 0.5, "fid": 11.5},
            {"sparsity": 0.7, "fid": 10.4}, {"sparsity": 0.9, "fid": None}]
    assert largest_within_noise(rows, 10.5) == 0.7  # the largest, even past a noisy worse point
    assert largest_within_noise(rows, 9.0) is None and largest_within_noise(rows, None) is None


def test_out_of_range_sparsity() -> None:
    with pytest.raises(ValueError, match="sparsity must be in"):
        prune_global(_nets()["generator"], 1.0)


def test_distillation_keeps_the_fine_tuned_generator_near_the_dense_one() -> None:
    nets = _nets()
    dense = nets["generator"].eval()
    z = torch.randn(32, 8, generator=torch.Generator().manual_seed(5))
    distances = {}
    for weight in (0.0, 1000.0):
        pruned = prune_global(dense, 0.7)
        finetune_generator(pruned, nets["discriminator"], get_gan_loss("ns"), latent_dim=8, steps=20, batch_size=16,
                           lr=1e-3, seed=0, teacher=dense, distill_weight=weight)
        with torch.no_grad():
            distances[weight] = float((make_permanent(pruned).eval()(z) - dense(z)).pow(2).mean())
    assert distances[1000.0] < distances[0.0]


def test_a_generator_loaded_for_sampling_samples_the_same_pixels_and_the_default_one_prunes(tmp_path) -> None:
    from pipeline.generators import export_generator, load_generator

    config = DcganConfig(width=8, latent_dim=8)
    generator = ImageGenerator(_nets(config)["generator"], latent_dim=8, output="tanh")
    path = tmp_path / "generator.pt"
    export_generator(path, generator, kind="gan", model=config.model_dump(), meta={"channels": 1, "resolution": 16})
    dense, _ = load_generator(path)
    fast, _ = load_generator(path, channels_last=True)
    assert any(not p.is_contiguous() for p in fast.parameters())  # 4-D weights really are channels_last
    images = [g.sample(200, generator=torch.Generator().manual_seed(1)) for g in (dense, fast)]
    assert torch.equal(*images)
    pruned = make_permanent(prune_global(dense.net, 0.5))  # torch's pruning views weights flat: contiguous only
    counts = parameter_counts(pruned)
    assert counts["nonzero_prunable_weights"] == pytest.approx(counts["prunable_weights"] / 2, abs=2)
    with pytest.raises(RuntimeError, match="view size"):
        prune_global(fast.net, 0.5)
