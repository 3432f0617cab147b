"""Slow requests on the sandbox delay only themselves, and a late commit lands after the client gave up.

Without both, a test cannot show a create racing the client's own follow-up look-up: the emulator used to
sleep while holding its global lock, so every other request waited for the slow one to finish first.
"""

from __future__ import annotations

import threading
import time

import pytest
import urllib3
from hubspot.crm.objects.tasks import SimplePublicObjectInputForCreate

from sandbox.server import Fault


def _in_thread(fn) -> threading.Thread:
    t = threading.Thread(target=fn, daemon=True)
    t.start()
    return t


def test_latency_delays_only_its_own_request(emu, sdk):
    client = sdk(emu)
    emu.app.faults = [Fault("contacts.list", latency_ms=60_000, remaining=1)]  # far longer than this test

    def slow() -> None:  # the client gives up after 1 s (and its pool retries the GET); the server sleeps on
        client.crm.contacts.basic_api.get_page(limit=1, _request_timeout=1)

    thread = _in_thread(slow)
    deadline = time.monotonic() + 5
    while emu.app.faults[0].remaining and time.monotonic() < deadline:  # the slow request has arrived
        time.sleep(0.01)
    assert emu.app.faults[0].remaining == 0
    # Another request, meanwhile: answered, not stuck behind the sleeping one (it held the lock before).
    page = client.crm.objects.basic_api.get_page("tasks", limit=1, _request_timeout=10)
    assert page is not None and emu.app.counts[("objects.list", 200)] == 1
    thread.join(10)


def test_commit_late_times_the_client_out_and_the_write_lands_after(emu, sdk):
    client = sdk(emu)
    emu.app.faults = [Fault("objects.create", commit_late_ms=1500, remaining=1)]
    task = SimplePublicObjectInputForCreate(properties={"hs_timestamp": "2026-11-02T09:00:00.000Z",
                                                        "hs_task_subject": "late"})
    with pytest.raises(urllib3.exceptions.HTTPError):  # ReadTimeoutError: the client cannot know
        client.crm.objects.tasks.basic_api.create(task, _request_timeout=0.5)
    assert [t for t in emu.tasks() if t["properties"].get("hs_task_subject") == "late"] == []  # not yet
    deadline = time.monotonic() + 10
    while not emu.tasks() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [t["properties"]["hs_task_subject"] for t in emu.tasks()] == ["late"]  # landed, once
    assert emu.app.counts[("objects.create", 201)] == 1
