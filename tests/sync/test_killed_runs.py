"""Runs whose process died (kill -9) are marked `killed`, their unsettled audit rows `unknown`;
and a busy lock says what it knows about its holder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mapping.model import FieldChange, SetFields
from sync.lock import LockBusy, SourceLock, writer_lock
from sync.state import State

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def state(tmp_path):
    s = State(f"sqlite:///{tmp_path}/state.db")
    yield s
    s.close()


def _run_with_pending_write(state: State, run_id: str, source: str) -> None:
    state.start_run(run_id, "sync", source)
    change = SetFields(source, "contacts", "101", {"leadsync_score": FieldChange(None, "40")})
    state.audit_intent(run_id, [change])


def _statuses(state: State, run_id: str) -> tuple[str, list[str]]:
    return state.run(run_id)["status"], [a["status"] for a in state.audit_for_run(run_id)]


def test_runs_whose_lock_is_free_are_killed_and_their_pending_writes_unknown(state, tmp_path):
    _run_with_pending_write(state, "dead", "hubspot")
    _run_with_pending_write(state, "alive", "salesforce")
    with SourceLock(tmp_path, "salesforce"):  # salesforce's writer is still at work
        assert state.mark_killed_runs() == ["dead"]
    assert _statuses(state, "dead") == ("killed", ["unknown"])
    assert state.run("dead")["finished_at"]
    assert _statuses(state, "alive") == ("running", ["pending"])
    assert state.mark_killed_runs() == ["alive"]  # its lock is free now: nothing can finish it any more


def test_finished_runs_and_settled_writes_are_left_alone(state):
    _run_with_pending_write(state, "done", "hubspot")
    state.audit_settle("done", "101", "ok")
    state.finish_run("done", "ok", {})
    assert state.mark_killed_runs() == []
    assert _statuses(state, "done") == ("ok", ["ok"])


def test_a_caller_holding_the_lock_marks_that_sources_old_runs(state):
    _run_with_pending_write(state, "crashed", "hubspot")
    with writer_lock(state, "hubspot"):
        assert state.mark_killed_runs() == []  # held (by us): looks alive
        assert state.mark_killed_runs(holding=["hubspot"]) == ["crashed"]
    assert _statuses(state, "crashed") == ("killed", ["unknown"])


_WRITER = textwrap.dedent("""
    import sys, time
    from mapping.model import FieldChange, SetFields
    from sync.lock import writer_lock
    from sync.state import State
    state = State(sys.argv[1])
    with writer_lock(state, "hubspot"):
        state.start_run("victim", "sync", "hubspot")
        state.audit_intent("victim", [SetFields("hubspot", "contacts", "7", {"leadsync_score": FieldChange(None, "9")})])
        print("writing", flush=True)
        time.sleep(600)
""")


def test_a_run_killed_with_sigkill_is_found(state, tmp_path):
    child = subprocess.Popen([sys.executable, "-c", _WRITER, f"sqlite:///{tmp_path}/state.db"], cwd=ROOT,
                             stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert child.stdout.readline().strip() == "writing"
        assert state.mark_killed_runs() == []  # alive, holding its lock
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        assert state.mark_killed_runs() == ["victim"]
        assert _statuses(state, "victim") == ("killed", ["unknown"])
    finally:
        if child.poll() is None:
            child.kill()


def test_busy_lock_without_a_recorded_pid_says_what_is_known(tmp_path):
    path = tmp_path / "hubspot.lock"
    path.write_text("")
    import fcntl

    with open(path, "r+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a holder that has not written its pid yet
        with pytest.raises(LockBusy) as err, SourceLock(tmp_path, "hubspot"):
            pass
    msg = str(err.value)
    assert "unknown" not in msg and str(path) in msg and "hubspot" in msg


def test_busy_lock_names_the_holders_pid(tmp_path):
    with SourceLock(tmp_path, "hubspot"), pytest.raises(LockBusy, match=rf"pid {os.getpid()}\b"):
        with SourceLock(tmp_path, "hubspot"):
            pass
