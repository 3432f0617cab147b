"""Shared fixtures: a fresh sandbox (both emulators) and leadsync settings pointing at it."""

from __future__ import annotations

import pytest

from sandbox.run import Sandbox, start_sandbox


@pytest.fixture
def sandbox() -> Sandbox:
    sb = start_sandbox(contacts=400, seed=7)
    yield sb
    sb.stop()


@pytest.fixture
def sandbox_env(sandbox, tmp_path, monkeypatch) -> Sandbox:
    """Environment variables pointing leadsync at the sandbox, with a fresh state database."""
    for key, value in sandbox.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("LEADSYNC_STATE_URL", f"sqlite:///{tmp_path}/state.db")
    monkeypatch.delenv("LEADSYNC_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    return sandbox
