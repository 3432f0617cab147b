"""`backfill --resume` after a kill -9 in the write phase goes straight to the writes: the finished pull is not
repeated, and the CRM ends as after an uninterrupted run.

The kill is placed by the sandbox's request accounting: the first field write answered means the pull is over.
"""

from __future__ import annotations

import json
import signal
import time

import pytest

from sandbox.run import start_sandbox
from sandbox.seed import default_anchor
from tests.sync.test_crash_safety import CONTACTS, SEED, crm_state, env_for, leadsync

WRITE_ROUTE = {"hubspot": "contacts.batch.update", "salesforce": "sf.collection_update"}


def run(env: dict[str, str], *args: str) -> dict:
    proc = leadsync(env, *args)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()[-2000:]
    return json.loads(out)


def kill_in_write_phase(app, env: dict[str, str], source: str) -> None:
    """Start a backfill; SIGKILL it as soon as the sandbox has answered its first field write."""
    proc = leadsync(env, "backfill", "--source", source)
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if any(n == WRITE_ROUTE[source] for n, _ in list(app.counts)):
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return
        time.sleep(0.0005)
    proc.communicate()
    pytest.fail("the backfill ended before its write phase could be interrupted")


@pytest.mark.parametrize("source", ["hubspot", "salesforce"])
def test_resume_after_a_kill_in_the_write_phase_does_not_pull_again(tmp_path, source):
    anchor = default_anchor()
    reference = start_sandbox(contacts=CONTACTS, seed=SEED, anchor=anchor)
    crashed = start_sandbox(contacts=CONTACTS, seed=SEED, anchor=anchor)
    try:
        (tmp_path / "ref").mkdir()
        (tmp_path / "crash").mkdir()
        ref_env = env_for(reference, tmp_path / "ref")
        whole = run(ref_env, "backfill", "--source", source)
        run(ref_env, "sync", "--once", "--source", source)
        want = crm_state(reference, source)

        env = env_for(crashed, tmp_path / "crash")
        app = crashed.hubspot.app if source == "hubspot" else crashed.salesforce.app
        kill_in_write_phase(app, env, source)
        before = app.api_calls()
        resumed = run(env, "backfill", "--resume", "--source", source)
        spent = app.api_calls() - before
        assert resumed["status"] == "ok"
        assert resumed["calls_by_phase"]["pull"] == 0 and resumed["contacts_pulled"] == 0  # nothing pulled again
        assert spent == resumed["api_calls"] < whole["api_calls"] - whole["calls_by_phase"]["pull"] + 5
        print(f"{source}: uninterrupted backfill {whole['api_calls']} calls "
              f"(pull {whole['calls_by_phase']['pull']}); resume after the kill {spent} calls")
        run(env, "sync", "--once", "--source", source)
        assert crm_state(crashed, source) == want
    finally:
        reference.stop()
        crashed.stop()
