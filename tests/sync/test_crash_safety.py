"""kill -9 at many points of a backfill, run again, and the CRM ends as after an uninterrupted run.

The sandbox lives in this test process, so it outlives every killed leadsync
subprocess; the kill points are counted in API calls the sandbox has answered,
which makes them land at different stages of the run: mid-pull, mid-write,
between a stage write and its hand-off task.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from mapping.hubspot import MANAGED_FIELDS as HS_FIELDS
from mapping.salesforce import MANAGED_FIELDS as SF_FIELDS
from sandbox.run import Sandbox, start_sandbox
from sandbox.seed import default_anchor

CONTACTS = 300
SEED = 11


def leadsync(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sync.cli", *args, "--json"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def env_for(sb: Sandbox, state_dir) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADSYNC_")}
    env.update(sb.env())
    env["LEADSYNC_STATE_URL"] = f"sqlite:///{state_dir}/state.db"
    # This sandbox has no commit-late fault: a request is processed before it is answered, so the look-up a
    # run makes after a kill is final and a lost create needs no settle time (tests/sync/test_lost_task_answers.py).
    env["LEADSYNC_HUBSPOT__TASK_SETTLE_S"] = "0"
    return env


def crm_state(sb: Sandbox, source: str) -> tuple[dict, Counter]:
    """What a person would see in the CRM: leadsync's fields per record, and the tasks per contact."""
    if source == "hubspot":
        emu = sb.hubspot
        fields = {cid: tuple((emu.contact(cid) or {}).get(f) for f in HS_FIELDS) for cid in emu.contact_ids()}
        tasks = Counter((tuple(t["contact_ids"]), t["properties"].get("hs_task_subject")) for t in emu.tasks())
        return fields, tasks
    emu = sb.salesforce
    fields = {r["Id"]: tuple(_num(r.get(f)) for f in SF_FIELDS) for obj in ("Lead", "Contact")
              for r in emu.records(obj)}
    tasks = Counter((t.get("WhoId"), t.get("Subject")) for t in emu.records("Task") if t.get("LeadSync_Key__c"))
    return fields, tasks


def _num(v):
    return int(v) if isinstance(v, float) and v.is_integer() else v


def run_to_completion(env: dict[str, str], source: str) -> None:
    for args in (("backfill", "--source", source), ("sync", "--once", "--source", source)):
        proc = leadsync(env, *args)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()[-2000:]


def kill_after(env: dict[str, str], args: tuple[str, ...], apps: tuple, calls: int) -> bool:
    """Run `leadsync ARGS`; SIGKILL it once the sandbox `apps` have answered `calls` more requests between them.
    False if it finished first."""
    start = sum(a.api_calls() for a in apps)
    proc = leadsync(env, *args)
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if sum(a.api_calls() for a in apps) - start >= calls:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.0005)
    proc.communicate()
    return False


def kill_after_calls(sb: Sandbox, source: str, env: dict[str, str], calls: int) -> bool:
    """Start a backfill; SIGKILL it once the sandbox has answered `calls` more requests. False if it finished."""
    app = sb.hubspot.app if source == "hubspot" else sb.salesforce.app
    return kill_after(env, ("backfill", "--source", source), (app,), calls)


@contextmanager
def twin_sandboxes(tmp_path) -> Iterator[tuple[Sandbox, Sandbox]]:
    """Two identical sandboxes: one for the uninterrupted reference run, one to kill runs against."""
    anchor = default_anchor()
    reference = start_sandbox(contacts=CONTACTS, seed=SEED, anchor=anchor)
    crashed = start_sandbox(contacts=CONTACTS, seed=SEED, anchor=anchor)
    (tmp_path / "ref").mkdir()
    (tmp_path / "crash").mkdir()
    try:
        yield reference, crashed
    finally:
        reference.stop()
        crashed.stop()


@pytest.mark.parametrize("source, kill_points", [
    ("hubspot", (3, 9, 17, 26, 34, 45)),
    ("salesforce", (2, 5, 8, 11, 14)),
])
def test_killed_backfills_converge_to_the_uninterrupted_result(tmp_path, source, kill_points):
    with twin_sandboxes(tmp_path) as (reference, crashed):
        run_to_completion(env_for(reference, tmp_path / "ref"), source)
        want_fields, want_tasks = crm_state(reference, source)
        assert sum(want_tasks.values()) > 0, "the scenario must hand off at least one lead"

        env = env_for(crashed, tmp_path / "crash")
        killed = [k for k in kill_points if kill_after_calls(crashed, source, env, k)]
        assert len(killed) >= 3, f"too few kills landed mid-run: {killed}"
        run_to_completion(env, source)
        got_fields, got_tasks = crm_state(crashed, source)
        assert got_tasks == want_tasks  # no duplicate and no lost hand-off task
        assert got_fields == want_fields  # no lost or extra field write


def both_crms(sb: Sandbox) -> tuple[dict, Counter]:
    """Both CRMs as a person would see them, with hand-off Leads named by their key (their ids may differ)."""
    leads = {r["Id"]: r for r in sb.salesforce.records("Lead")}
    name = {i: f"key:{r['LeadSync_Person_Key__c']}" for i, r in leads.items() if r.get("LeadSync_Person_Key__c")}
    hs_fields, _ = crm_state(sb, "hubspot")
    hs_fields = {cid: tuple(name.get(v, v) for v in values) for cid, values in hs_fields.items()}
    sf_fields = {name.get(r["Id"], r["Id"]): tuple(_num(r.get(f)) for f in (*SF_FIELDS, "LeadSync_HubSpot_Id__c"))
                 for obj in ("Lead", "Contact") for r in sb.salesforce.records(obj)}
    tasks = Counter((name.get(t.get("WhoId"), t.get("WhoId")), t.get("Subject"))
                    for t in sb.salesforce.records("Task") if t.get("LeadSync_Key__c"))
    tasks.update((tuple(t["contact_ids"]), t["properties"].get("hs_task_subject")) for t in sb.hubspot.tasks())
    return {"hubspot": hs_fields, "salesforce": sf_fields}, tasks


def test_killed_hand_off_runs_converge_to_the_uninterrupted_result(tmp_path):
    """Both CRMs as one run: kills land in either pull, in the person writes, and around the hand-off creates."""
    with twin_sandboxes(tmp_path) as (reference, crashed):
        env_ref = env_for(reference, tmp_path / "ref")
        for args in (("backfill",), ("sync", "--once")):
            proc = leadsync(env_ref, *args)
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err.decode()[-2000:]
        want = both_crms(reference)
        assert any(k.startswith("key:") for k in want[0]["salesforce"]), "the scenario must hand off someone"

        env = env_for(crashed, tmp_path / "crash")
        killed = 0
        apps = (crashed.hubspot.app, crashed.salesforce.app)
        for calls in (4, 20, 38, 9, 14, 18, 24, 30):  # resumed runs skip a finished pull: shorter
            killed += kill_after(env, ("backfill", *(("--resume",) if killed else ())), apps, calls)
        assert killed >= 4, f"too few kills landed mid-run: {killed}"
        for args in (("backfill", "--resume"), ("sync", "--once")):
            proc = leadsync(env, *args)
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err.decode()[-2000:]
        got = both_crms(crashed)
        assert got[1] == want[1]  # no duplicate and no lost task, in either CRM
        assert got[0] == want[0]  # the same fields, the same hand-off Leads, the same links
