"""Undo sticks: a run undone stays undone through later syncs until its contacts' inputs change or a person
re-applies it; `undo --plan` writes nothing; undo asks first; a killed undo re-run ends like an unkilled one."""

from __future__ import annotations

import json
import sqlite3

import requests
from typer.testing import CliRunner

from mapping.hubspot import MANAGED_FIELDS
from sandbox.run import HUBSPOT_TOKEN, start_sandbox
from sandbox.seed import default_anchor
from sync.cli import app
from sync.settings import Settings
from sync.state import State, norm_value
from tests.sync.test_crash_safety import CONTACTS, SEED, crm_state, env_for, kill_after, leadsync

runner = CliRunner()


def cli(*args: str, code: int = 0) -> dict:
    result = runner.invoke(app, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return json.loads(result.stdout) if code == 0 else {"output": result.output}


def crm_fields(sb) -> dict[str, tuple]:
    return {cid: tuple(_blank((sb.hubspot.contact(cid) or {}).get(f)) for f in MANAGED_FIELDS)
            for cid in sb.hubspot.contact_ids()}


def _blank(v):
    return None if v in (None, "") else norm_value(v)


def patch_contact(sb, cid: str, props: dict[str, str]) -> None:
    requests.patch(f"{sb.hubspot_url}/crm/v3/objects/contacts/{cid}", json={"properties": props},
                   headers={"Authorization": f"Bearer {HUBSPOT_TOKEN}"}, timeout=10).raise_for_status()


def written_ids(state: State, run_id: str) -> set[str]:
    return {r["record_id"] for r in state.audit_for_run(run_id) if r["object_type"] == "contacts"}


def test_an_undone_backfill_stays_undone_through_later_syncs(sandbox_env):
    sb = sandbox_env
    untouched = crm_fields(sb)
    first = cli("backfill", "--source", "hubspot")
    assert first["tasks_created"] > 0 and first["stage_changes"]
    undone = cli("undo", first["run_id"], "--yes")
    assert undone["failed"] == 0 and undone["fields_left"] == [] and undone["contacts_held"] > 0
    assert crm_fields(sb) == untouched

    again = cli("sync", "--once", "--source", "hubspot")
    assert (again["fields_updated"], again["tasks_created"], again["failed"]) == (0, 0, 0)
    rescored = cli("sync", "--once", "--source", "hubspot", "--rescore")  # everyone re-scored: still undone
    assert (rescored["fields_updated"], rescored["tasks_created"]) == (0, 0)
    assert "undo --reapply" in rescored["runs"][0]["message"]
    plan = cli("plan", "--source", "hubspot")
    assert plan["changes"] == [] and plan["tasks"] == []
    assert plan["runs"][0]["message"].startswith(f"{undone['contacts_held']} contacts stay as an undo left them")
    assert crm_fields(sb) == untouched  # no stage re-promoted, no score field written again
    assert len(sb.hubspot.tasks()) == first["tasks_created"]
    assert all(t["properties"]["hs_task_status"] == "COMPLETED" for t in sb.hubspot.tasks())

    state = State(Settings().state_url)
    snap = state.contacts("hubspot", sb.hubspot.contact_ids())
    assert {cid: tuple(_blank(c.managed.get(f)) for f in MANAGED_FIELDS) for cid, c in snap.items()} == untouched
    assert state.dirty("hubspot") == []
    assert {s for (s,) in state.db.execute("SELECT status FROM task_ledger WHERE tenant='default'")} == {"undone"}

    # a person changes one contact's inputs: that contact alone is decided afresh (its hand-off key stays used).
    # One whose undone task was at SQL: no later stage, and so no task of a new stage, is open to it (a set's
    # first item was taken before, and a contact the backfill only scored may reach SQL on a new title).
    cid = min(c for (c,) in state.db.execute(
        "SELECT contact_id FROM task_ledger WHERE tenant='default' AND source='hubspot' AND stage='sql'"))
    assert cid in written_ids(state, first["run_id"])
    patch_contact(sb, cid, {"jobtitle": "VP Engineering"})
    changed = cli("sync", "--once", "--source", "hubspot")
    assert written_ids(state, changed["runs"][0]["run_id"]) == {cid} and changed["tasks_created"] == 0

    # a person re-applies the run: the rest are decided afresh too; undone hand-off tasks are not created again
    released = cli("undo", first["run_id"], "--reapply")
    assert released["released"] == undone["contacts_held"] - 1
    reapplied = cli("sync", "--once", "--source", "hubspot")
    assert reapplied["records_updated"] == first["records_updated"] - 1 and reapplied["tasks_created"] == 0
    assert len(sb.hubspot.tasks()) == first["tasks_created"]


def test_undo_plan_writes_nothing_and_undo_asks_first(sandbox_env):
    sb = sandbox_env
    first = cli("backfill", "--source", "hubspot")
    state = State(Settings().state_url)
    edited = sorted(written_ids(state, first["run_id"]))[0]
    patch_contact(sb, edited, {"leadsync_score": "7"})
    before, runs = crm_fields(sb), len(state.runs(100))

    plan = cli("undo", first["run_id"], "--plan")
    assert plan["fields_left"] == [{"record_id": edited, "field": "leadsync_score",
                                    "run_wrote": next(r["after"] for r in state.audit_for_run(first["run_id"])
                                                      if r["record_id"] == edited and r["field"] == "leadsync_score"),
                                    "crm_now": "7"}]
    assert len(plan["fields_to_restore"]) == first["fields_updated"] - 1
    refused = cli("undo", first["run_id"], code=2)  # stdin is no terminal here, and no --yes
    assert "--yes" in refused["output"]
    assert crm_fields(sb) == before and len(state.runs(100)) == runs  # neither wrote anything, nor started a run

    undone = cli("undo", first["run_id"], "--yes")
    assert undone["fields_restored"] == len(plan["fields_to_restore"]) and undone["fields_left"] == plan["fields_left"]


def local_state(db_path) -> tuple:
    """What leadsync's own state says after an undo: snapshots' managed values, holds, ledger, dirty set."""
    state = State(f"sqlite:///{db_path}")  # snapshots are stored packed: read them through the State
    managed = {cid: json.loads(data).get("managed", {}) for _, cid, _, _, data in state.identity_refs()}
    state.close()
    db = sqlite3.connect(db_path)
    holds = {}
    for cid, hold, crm_stage in db.execute("SELECT contact_id, hold, crm_stage FROM scores WHERE tenant='default'"):
        hold = hold and json.loads(hold)
        holds[cid] = (crm_stage, hold and {k: v for k, v in hold.items() if k not in ("undo", "run")})  # ids differ per setup
    ledger = sorted(db.execute("SELECT key, status, crm_id IS NOT NULL FROM task_ledger WHERE tenant='default'"))
    dirty = sorted(db.execute("SELECT contact_id FROM dirty WHERE tenant='default'"))
    return managed, holds, ledger, dirty


def run_cli(env, *args) -> dict:
    proc = leadsync(env, *args)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()[-2000:]
    return json.loads(out)


def kill_undo_after(app_, env, run_id: str, calls: int) -> bool:
    return kill_after(env, ("undo", run_id, "--yes"), (app_,), calls)


def test_a_killed_undo_run_again_ends_like_an_unkilled_one(tmp_path):
    anchor = default_anchor()
    clean = start_sandbox(contacts=CONTACTS, seed=SEED, anchor=anchor)
    killed = start_sandbox(contacts=CONTACTS, seed=SEED, anchor=anchor)
    try:
        ends = []
        for sb, kills in ((clean, ()), (killed, (4, 5))):
            (tmp_path / str(id(sb))).mkdir()
            env = env_for(sb, tmp_path / str(id(sb)))
            run_id = run_cli(env, "backfill", "--source", "hubspot")["run_id"]
            landed = [k for k in kills if kill_undo_after(sb.hubspot.app, env, run_id, k)]
            assert len(landed) == len(kills), "every kill must land mid-undo"
            run_cli(env, "undo", run_id, "--yes")
            after_undo = (crm_state(sb, "hubspot"), local_state(tmp_path / str(id(sb)) / "state.db"))
            synced = run_cli(env, "sync", "--once", "--source", "hubspot")
            assert (synced["fields_updated"], synced["tasks_created"]) == (0, 0)
            ends.append((after_undo, crm_state(sb, "hubspot")))
        (crm_k, local_k), final_k = ends[1]
        (crm_c, local_c), final_c = ends[0]
        assert crm_k[1] == crm_c[1]  # the same tasks, closed alike
        assert {c: v for c, v in crm_k[0].items() if crm_c[0][c] != v} == {}  # the same fields in the CRM
        for name, got, want in zip(("managed", "holds", "ledger", "dirty"), local_k, local_c, strict=True):
            assert got == want, name
        assert final_k == final_c
    finally:
        clean.stop()
        killed.stop()


def test_undo_at_a_terminal_asks_and_a_no_writes_nothing(tmp_path, sandbox):
    import os
    import pty
    import subprocess
    import sys

    env = env_for(sandbox, tmp_path)
    run_id = run_cli(env, "backfill", "--source", "hubspot")["run_id"]
    before = crm_fields(sandbox)

    def undo_answering(answer: str) -> subprocess.CompletedProcess:
        leader, follower = pty.openpty()  # stdin is a terminal: undo asks instead of refusing
        try:
            os.write(leader, answer.encode() + b"\n")
            return subprocess.run([sys.executable, "-m", "sync.cli", "undo", run_id], env=env, stdin=follower,
                                  capture_output=True, text=True, timeout=120)
        finally:
            os.close(leader)
            os.close(follower)

    no = undo_answering("n")
    assert no.returncode == 1 and "would restore" in no.stdout and "Nothing undone" in no.stderr
    assert crm_fields(sandbox) == before
    yes = undo_answering("y")
    assert yes.returncode == 0 and "restored" in yes.stdout
    assert crm_fields(sandbox) != before and all(v[1] is None for v in crm_fields(sandbox).values())
