"""params.yaml validation: every error path names its key, shipped params files validate."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest
import yaml

from pipeline.config import DatasetName, GanLossName, OptimizerName, load_params, parse_params
from pipeline.errors import ConfigError
from tests.conftest import REPO, tiny_params


def test_shipped_params_validate() -> None:
    params = load_params(REPO / "params.yaml")
    assert params.grid.variants == ["dcgan-ns", "hinge-sn", "vae"] and params.grid.seeds == [0, 1, 2, 3, 4]
    assert set(params.variants) == {"dcgan-ns", "lsgan", "wgan-gp", "dragan", "hinge-sn", "vae", "beta-vae",
                                    "vae-logistic"}  # the rest stay defined, one grid.variants edit away
    assert params.prune.variants == ["dcgan-ns"] and params.prune.seeds == [0]
    assert params.variant("wgan-gp").n_critic == 1 and params.variant("wgan-gp").model.d_norm == "layer"


def test_registries_match_config_names() -> None:
    from pipeline.data import DATASETS
    from pipeline.losses import GAN_LOSSES
    from pipeline.training.optim import OPTIMIZERS

    assert set(get_args(GanLossName)) == set(GAN_LOSSES)
    assert set(get_args(OptimizerName)) == set(OPTIMIZERS)
    assert set(get_args(DatasetName)) == set(DATASETS)


def _problems(raw: object) -> str:
    with pytest.raises(ConfigError) as info:
        parse_params(raw, "p.yaml")
    return str(info.value)


def _edit(path: str, value: object) -> dict:
    raw = tiny_params()
    *parents, last = path.split(".")
    node = raw
    for key in parents:
        node = node[key]
    node[last] = value
    return raw


HOSTILE = [
        ("train.batchsize", 8, "train.batchsize: Extra inputs are not permitted"),
        ("train.steps", -5, "train.steps: Input should be greater than 0"),
        ("train.batch_size", "many", "train.batch_size: Input should be a valid integer"),
        ("variants.gan.loss", "wasserstein", "variants.gan.loss: Input should be 'minimax'"),
        ("variants.gan.g_optimizer", {"name": "sgd"}, "variants.gan.g_optimizer.name: Input should be 'adam' or 'rmsprop'"),
        ("variants.gan.d_optimizer", {"lr": -1e-4}, "variants.gan.d_optimizer.lr: Input should be greater than 0"),
        ("variants.gan.model", {"name": "stylegan"}, "variants.gan.model: name should be 'dcgan' or 'resnet'"),
        ("variants.vae.kind", "flow", "variants.vae: Input tag 'flow' found using 'kind' does not match"),
        ("variants.vae.beta", 0, "variants.vae.beta: Input should be greater than 0"),
        ("data.dataset", "imagenet", "data.dataset: Input should be 'fashion-mnist'"),
        ("data.resolution", 24, "data.resolution: the conv architectures need a power of two"),
        ("grid.variants", ["gan", "gan"], "grid.variants: Value error, duplicate entries: gan"),
        ("grid.seeds", [0, 0], "grid.seeds: Value error, duplicate entries: 0"),
        ("grid.variants", ["gan", "sngan"], "grid.variants: sngan not defined under 'variants'"),
        ("grid.variants", [], "grid.variants: List should have at least 1 item"),
        ("evaluate.num_samples", 0, "evaluate.num_samples: Input should be greater than 0"),
        ("evaluate.extractors", ["inception"], "evaluate.extractors[0]: Input should be 'domain' or 'inception-v3-compat'"),
        ("evaluate.extractors", ["domain", "domain"], "evaluate.extractors: Value error, each feature space once"),
        ("evaluate.extractors", [], "evaluate.extractors: List should have at least 1 item"),
        ("evaluate.extractor", "domain", "evaluate.extractor: Extra inputs are not permitted"),
        ("evaluate.coverage_min_share", 0, "evaluate.coverage_min_share: Input should be greater than 0"),
        ("evaluate.noise_draws", 0, "evaluate.noise_draws: Input should be greater than or equal to 1"),
        ("train.snapshot_every", 0, "train.snapshot_every: Input should be greater than 0"),
        ("train.max_abs_value", -1, "train.max_abs_value: Input should be greater than 0"),
        ("variants.gan.betas", [0.5, 0.9], "variants.gan.betas: Extra inputs are not permitted"),
        ("variants.gan.g_optimizer", {"betas": [0.5, 1.5]}, "variants.gan.g_optimizer.betas: Value error, each beta"),
]


@pytest.mark.parametrize(("path", "value", "expected"), HOSTILE)
def test_each_problem_names_its_key(path: str, value: object, expected: str) -> None:
    message = _problems(_edit(path, value))
    assert expected.replace("Value error, ", "") in message


def test_every_problem_is_listed_at_once() -> None:
    raw = tiny_params()
    raw["train"]["steps"] = 0
    raw["variants"]["vae"]["beta"] = "x"
    raw["grid"]["variants"].append("missing")
    raw["data"]["resolution"] = 12
    message = _problems(raw)
    assert message.startswith("p.yaml: 4 problems")
    for key in ("train.steps", "variants.vae.beta", "grid.variants: missing", "data.resolution"):
        assert key in message


def test_wgan_gp_rejects_batch_norm_critic() -> None:
    message = _problems(_edit("variants.gan", {"kind": "gan", "loss": "wgan-gp", "model": {"d_norm": "batch"}}))
    assert "variants.gan: model.d_norm: batch norm" in message


def test_batch_larger_than_subsampled_dataset() -> None:
    raw = tiny_params()
    raw["data"]["max_train_samples"] = 4
    assert "train.batch_size: 8 is larger than data.max_train_samples (4)" in _problems(raw)


def test_top_level_must_be_a_mapping() -> None:
    assert "expected a mapping" in _problems(["grid"])


def test_missing_section() -> None:
    raw = tiny_params()
    del raw["grid"]
    assert "p.yaml: grid: Field required" in _problems(raw)


def test_load_params_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="params file not found"):
        load_params(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("grid:\n  variants: [a, b\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: invalid YAML at line \d+"):
        load_params(bad)


def test_cell_config_carries_variant_steps() -> None:
    raw = tiny_params()
    raw["variants"]["gan"]["steps"] = 3
    params = parse_params(raw)
    assert params.steps_for("gan") == 3 and params.steps_for("vae") == 6
    config = params.cell_config("gan", 1)
    assert config["steps"] == 3 and config["seed"] == 1 and config["variant_params"]["loss"] == "ns"
    yaml.safe_dump(config)  # plain data
