"""Fixtures for the HubSpot tests: emulators on free ports and clients pointed at them.

Helpers are fixtures (factories) because test modules here cannot import each other.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import hubspot
import pytest

from connectors.hubspot import HubSpotConnector, HubSpotSettings
from sandbox.hubspot import HubSpotEmulator

TOKEN = "pat-sandbox-token"
ANCHOR = datetime(2026, 11, 1, tzinfo=UTC)


def _sdk(emu: HubSpotEmulator, token: str | None = None) -> hubspot.Client:
    return hubspot.Client.create(access_token=token or emu.token, host=emu.base_url, base_url=emu.base_url)


@pytest.fixture
def sdk() -> Callable[..., hubspot.Client]:
    """`sdk(emu, token=None)`: the real client pointed at an emulator."""
    return _sdk


@pytest.fixture
def new_emu() -> Iterator[Callable[..., HubSpotEmulator]]:
    """`new_emu(**kw)`: a started emulator with test defaults, stopped after the test."""
    started: list[HubSpotEmulator] = []

    def factory(**kw: Any) -> HubSpotEmulator:
        args: dict[str, Any] = {"seed": 2, "contacts": 300, "anchor": ANCHOR, "token": TOKEN,
                                "search_per_second": 1000, **kw}
        emu = HubSpotEmulator(**args)
        emu.start()
        started.append(emu)
        return emu

    yield factory
    for emu in started:
        emu.stop()


@pytest.fixture
def make_connector() -> Callable[..., HubSpotConnector]:
    """`make_connector(emu, **settings)`: a connector that records retry waits on `.slept` instead of sleeping."""

    def factory(emu: HubSpotEmulator, real_sleep: bool = False, **settings: Any) -> HubSpotConnector:
        slept: list[float] = []

        def sleep(seconds: float) -> None:
            slept.append(seconds)
            if real_sleep:
                time.sleep(seconds)

        conn = HubSpotConnector(HubSpotSettings(access_token=TOKEN, base_url=emu.base_url, **settings), sleep=sleep)
        conn.slept = slept  # type: ignore[attr-defined]
        return conn

    return factory


@pytest.fixture(scope="module")
def shared_emu() -> Iterator[HubSpotEmulator]:
    """A read-only emulator shared by a module's tests (do not write to it)."""
    emu = HubSpotEmulator(seed=1, contacts=600, anchor=ANCHOR, token=TOKEN, search_per_second=1000)
    emu.start()
    yield emu
    emu.stop()


@pytest.fixture
def emu(new_emu: Callable[..., HubSpotEmulator]) -> HubSpotEmulator:
    """A fresh emulator per test, for tests that write."""
    return new_emu()


@pytest.fixture
def client(emu: HubSpotEmulator) -> hubspot.Client:
    return _sdk(emu)
