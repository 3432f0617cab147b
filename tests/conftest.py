"""Shared fixtures: a fresh sandbox (both emulators) and leadsync settings pointing at it."""

from __future__ import annotations

import os

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


@pytest.fixture
def live_env(monkeypatch, tmp_path):
    """LEADSYNC_RECORD_LIVE=1 and no other LEADSYNC_* setting; `put("HUBSPOT", client_id=…)` adds some.

    For tests that run the documented re-recording path against the sandbox standing in for a real CRM.
    """
    for name in [k for k in os.environ if k.startswith("LEADSYNC_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LEADSYNC_RECORD_LIVE", "1")

    def put(prefix: str, **values: str) -> None:
        for key, value in values.items():
            monkeypatch.setenv(f"LEADSYNC_{prefix}__{key.upper()}", value)

    return put
