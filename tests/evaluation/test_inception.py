"""The Inception-v3 feature space from a local weights file, with the network blocked: nothing is downloaded."""

from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path

import pytest
import torch
import torch_fidelity.feature_extractor_inceptionv3 as inception_module
from typer.testing import CliRunner

from pipeline import layout
from pipeline.layout import Cell
from stages.app import app
from tests.conftest import tiny_params, write_params

EVALUATE = {"num_samples": 12, "batch_size": 12, "kid_subsets": 2, "kid_subset_size": 6, "isc_splits": 2,
            "noise_draws": 2, "curve_samples": 8, "extractors": ["domain", "inception-v3-compat"]}


@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised Inception-v3 state dict in torch-fidelity's format (the real one needs a download)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(inception_module, "load_state_dict_from_url", lambda *a, **k: {})
        patch.setattr(inception_module.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None)
        torch.manual_seed(0)
        model = inception_module.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    path = tmp_path_factory.mktemp("weights") / "inception.pth"
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture
def network_attempts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """Blocks sockets and URL opening; records every attempt. torch.hub's cache points at an empty folder."""
    attempts: list[str] = []

    def refuse(what: str):
        def blocked(*args, **kwargs):
            attempts.append(f"{what} {args[1:] if what == 'connect' else args[:1]}")
            raise OSError(f"network blocked by the test ({what})")
        return blocked

    monkeypatch.setattr(socket.socket, "connect", refuse("connect"))
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    monkeypatch.setattr(urllib.request, "urlopen", refuse("urlopen"))
    monkeypatch.setattr(inception_module, "load_state_dict_from_url",
                        lambda url, *a, **k: attempts.append(url) or urllib.request.urlopen(url))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    return attempts


def test_inception_scores_from_a_local_file_without_network(
    trained_workdir: Path, inception_weights: Path, network_attempts: list[str]
) -> None:
    raw = tiny_params(evaluate={**EVALUATE, "inception_weights": str(inception_weights)})
    write_params(trained_workdir / "params.yaml", raw)
    result = CliRunner().invoke(app, ["evaluate", "--variant", "gan", "--seed", "0"])
    assert result.exit_code == 0, result.output
    assert network_attempts == []
    cell = json.loads(Cell("gan", 0).metrics.read_text())
    assert cell["feature_extractor"] == "domain-classifier"  # the first listed space is the headline
    assert set(cell["feature_spaces"]) == {"domain-classifier", "inception-v3-compat"}
    inception = cell["feature_spaces"]["inception-v3-compat"]
    assert inception["fid"] > 0 and inception["fid"] != cell["fid"]
    # IS = exp(mean KL) ≥ 1 up to rounding: a random Inception's near-constant class posteriors gave 1 − 1.1e-16 in CI
    assert 0 <= inception["precision"] <= 1 and inception["isc_mean"] >= 1 - 1e-9
    assert inception["fid_ci_low"] is None  # the interval over draws is for the headline space only
    cached = [path.name for path in (trained_workdir / layout.CACHE_DIR).iterdir()]
    assert any("inception-v3-compat" in name for name in cached) and any("domain-classifier" in name for name in cached)


@pytest.mark.slow  # a 2-minute Inception pass on CPU
def test_inception_as_the_headline_space(trained_workdir: Path, inception_weights: Path, network_attempts: list[str]) -> None:
    evaluate = {**EVALUATE, "extractors": ["inception-v3-compat"], "inception_weights": str(inception_weights)}
    write_params(trained_workdir / "params.yaml", tiny_params(evaluate=evaluate))
    result = CliRunner().invoke(app, ["evaluate", "--variant", "gan", "--seed", "0"])
    assert result.exit_code == 0, result.output
    assert "inception-v3-compat" in result.output and network_attempts == []
    cell = json.loads(Cell("gan", 0).metrics.read_text())
    assert cell["feature_extractor"] == "inception-v3-compat" and list(cell["feature_spaces"]) == ["inception-v3-compat"]
    assert cell["fid_ci_low"] is not None and cell["classes_covered"] >= 1  # coverage still from the domain classifier


def test_without_a_file_it_downloads_and_fails_clearly_offline(trained_workdir: Path, network_attempts: list[str]) -> None:
    write_params(trained_workdir / "params.yaml", tiny_params(evaluate={**EVALUATE, "extractors": ["inception-v3-compat"]}))
    result = CliRunner().invoke(app, ["evaluate", "--variant", "gan", "--seed", "0"])
    assert result.exit_code == 2
    assert network_attempts and network_attempts[0] == inception_module.URL_INCEPTION_V3
    assert "evaluate.inception_weights" in result.output and not Cell("gan", 0).metrics.exists()


def test_missing_or_bad_weights_file_is_bad_input(trained_workdir: Path, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a state dict")
    for path, message in ((tmp_path / "missing.pth", "weights not found"), (garbage, "not usable")):
        evaluate = {**EVALUATE, "inception_weights": str(path)}
        write_params(trained_workdir / "params.yaml", tiny_params(evaluate=evaluate))
        result = CliRunner().invoke(app, ["evaluate", "--variant", "gan", "--seed", "0"])
        assert result.exit_code == 2 and message in result.output and str(path) in result.output
        assert not Cell("gan", 0).metrics.exists()
