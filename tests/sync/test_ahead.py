"""Work ahead during writes: the lane's calls, what is stepped while one is out, and a real run using both."""

from __future__ import annotations

import contextvars
import json
import threading
import time

import pytest
from typer.testing import CliRunner

import sync.coordinator as coordinator
from connectors.hubspot.connector import HubSpotConnector
from sandbox.server import Fault
from sync.ahead import Ahead, WriteLane, run_through
from sync.cli import app

VAR = contextvars.ContextVar("VAR", default="unset")


def counting(n: int, log: list[int]):
    for i in range(n):
        log.append(i)
        yield
    return sum(log)


def test_ahead_steps_one_unit_at_a_time_and_gives_the_result():
    log: list[int] = []
    a = Ahead(counting(3, log))
    assert a.step() and log == [0]
    assert a.result() == 3 and log == [0, 1, 2]
    assert not a.step() and a.result() == 3  # done: no more work, the same result
    assert run_through(counting(2, [])) == 1


def test_an_error_of_the_work_ahead_waits_for_its_result():
    def failing():
        yield
        raise ValueError("bad record")

    a = Ahead(failing())
    assert a.step()
    assert not a.step()  # the error ends the steps, it is not raised into whatever call is out
    with pytest.raises(ValueError, match="bad record"):
        a.result()


def test_a_call_goes_out_on_the_lane_with_the_callers_context_while_idle_is_stepped():
    lane, answered, steps = WriteLane("t"), threading.Event(), []
    VAR.set("run-7")

    def call(x):
        assert answered.wait(5)  # answered only once the caller has stepped work meanwhile
        return x * 2, threading.current_thread().name, VAR.get()

    def idle():
        steps.append(1)
        if len(steps) == 3:
            answered.set()
        return True

    try:
        assert lane.call(idle, call, 21) == (42, "leadsync-write-t_0", "run-7")
    finally:
        lane.close()
    assert len(steps) >= 3


def test_meanwhile_runs_once_after_the_call_is_sent_and_errors_come_back_here():
    lane, order = WriteLane("t"), []

    def call():
        time.sleep(0.05)
        order.append("answered")
        raise RuntimeError("HubSpot 503")

    try:
        with pytest.raises(RuntimeError, match="503"):
            lane.call(lambda: False, call, meanwhile=lambda: order.append("settled"))
        assert order == ["settled", "answered"]

        def settle():
            raise OSError("disk full")

        with pytest.raises(OSError, match="disk full"):
            lane.call(lambda: False, lambda: order.append("second answered"), meanwhile=settle)
        assert order[-1] == "second answered"  # the call had ended before the error came back
    finally:
        lane.close()


def test_without_idle_there_is_no_lane():
    order = []
    lane = WriteLane("t")
    got = lane.call(None, lambda: (order.append("call"), threading.current_thread().name)[1],
                    meanwhile=lambda: order.append("settled"))
    assert order == ["settled", "call"] and got == threading.current_thread().name


def test_a_backfill_decides_its_next_batch_while_a_write_is_on_the_wire(sandbox_env, monkeypatch):
    """The real run: HubSpot's writes are slowed, and persons of a later batch are decided inside the windows
    in which a write call was out, on the main thread; every write goes out on the lane."""
    sandbox_env.hubspot.app.faults = [Fault(endpoint="contacts.batch.update", latency_ms=300)]
    windows, writers, decided_at = [], set(), []
    apply = HubSpotConnector.apply

    def timed_apply(self, changes):
        writers.add(threading.current_thread().name)
        started = time.monotonic()
        try:
            return apply(self, changes)
        finally:
            windows.append((started, time.monotonic()))

    decide = coordinator.decide

    def timed_decide(*args, **kwargs):
        decided_at.append((time.monotonic(), threading.current_thread() is threading.main_thread()))
        return decide(*args, **kwargs)

    monkeypatch.setattr(HubSpotConnector, "apply", timed_apply)
    monkeypatch.setattr(coordinator, "decide", timed_decide)
    monkeypatch.setenv("LEADSYNC_SYNC__BATCH_SIZE", "100")
    result = CliRunner().invoke(app, ["backfill", "--source", "hubspot", "--json"], catch_exceptions=False)
    out = json.loads(result.stdout)
    assert result.exit_code == 0 and out["status"] == "ok" and out["records_updated"] > 0
    assert writers == {"leadsync-write-hubspot_0"}
    during = [t for t, main in decided_at if main and any(a < t < b for a, b in windows)]
    assert all(main for _, main in decided_at) and len(during) >= 10
