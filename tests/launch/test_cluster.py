"""Joining a Ray cluster: token authentication is asked for exactly when a token is at hand."""

from __future__ import annotations

from pathlib import Path

from pipeline.launch.cluster import has_ray_token


def test_a_token_is_found_where_ray_looks(tmp_path: Path) -> None:
    assert not has_ray_token({}, tmp_path)  # a fresh machine: the cluster it joins has authentication off
    assert has_ray_token({"RAY_AUTH_TOKEN": "ab" * 32}, tmp_path)
    named = tmp_path / "token"
    assert not has_ray_token({"RAY_AUTH_TOKEN_PATH": str(named)}, tmp_path)
    named.write_text("ab" * 32)
    assert has_ray_token({"RAY_AUTH_TOKEN_PATH": str(named)}, tmp_path)
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray/auth_token").write_text("cd" * 32)
    assert has_ray_token({}, tmp_path)
