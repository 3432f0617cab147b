"""Salesforce fixtures: a fresh emulator per test (≈0.2 s), clients that trust its CA, a connector factory."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce

from connectors.salesforce import SalesforceConnector, SalesforceSettings
from sandbox.salesforce import SalesforceEmulator

ANCHOR = datetime(2026, 5, 1, tzinfo=UTC)
SESSION = "00Dsandbox!sessiontoken"


def make_client(emu: SalesforceEmulator, session_id: str = SESSION) -> Salesforce:
    s = requests.Session()
    s.verify = emu.ca_pem_path
    s.trust_env = False
    return Salesforce(instance_url=emu.instance_url, session_id=session_id, version="59.0", session=s)


@pytest.fixture
def emu() -> Iterator[SalesforceEmulator]:
    e = SalesforceEmulator(seed=1, contacts=2000, anchor=ANCHOR, session_id=SESSION)
    e.start()
    yield e
    # serve_forever polls every 0.5 s; stopping in the background keeps the suite fast.
    threading.Thread(target=e.stop, daemon=True).start()


@pytest.fixture
def sf(emu: SalesforceEmulator) -> Salesforce:
    return make_client(emu)


def fast_settings(emu: SalesforceEmulator, **overrides: Any) -> SalesforceSettings:
    """Direct-session settings with near-zero backoff, so retry tests stay fast."""
    values: dict[str, Any] = {"instance_url": emu.instance_url, "session_id": SESSION, "ca_bundle": emu.ca_pem_path,
                              "backoff_base_s": 0.001, "backoff_max_s": 0.01, "concurrent_backoff_s": 0.002,
                              "concurrent_backoff_max_s": 0.02, "overlap_s": 0}
    values.update(overrides)
    return SalesforceSettings(**values)


@pytest.fixture
def make_connector(emu: SalesforceEmulator) -> Iterator[Callable[..., SalesforceConnector]]:
    made: list[SalesforceConnector] = []

    def factory(**overrides: Any) -> SalesforceConnector:
        conn = SalesforceConnector(fast_settings(emu, **overrides), sleep=lambda s: None)
        made.append(conn)
        return conn

    yield factory
    for conn in made:
        conn.close()
