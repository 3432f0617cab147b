"""Incremental sync at O(changes): after a backfill, its writeback echoes back once; quiet syncs then read no
records and make a handful of calls per CRM; edits are read back, and only they. The whole CLI, both real
clients, both emulators.

Overlaps are one second here (defaults: HubSpot 5 min, Salesforce 60 s), and the test waits them out, as a
15-minute schedule does."""

from __future__ import annotations

import json
import time

import requests
from typer.testing import CliRunner

from sync.cli import app
from sync.settings import Settings
from sync.state import State

runner = CliRunner()
OVERLAP_S = 1
SETTLE_S = OVERLAP_S + 1.5  # the overlap, plus the HTTP Date's whole second


def cli(*args: str) -> dict:
    result = runner.invoke(app, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _runs(out: dict) -> dict[str, dict]:
    return {r["source"]: r for r in out.get("runs", [out])}


def _edit(sandbox, n: int) -> tuple[list[str], list[str]]:
    """n title edits per CRM through the APIs, as a person's tools would make them."""
    hs = sandbox.hubspot_url
    auth = {"Authorization": f"Bearer {sandbox.env()['LEADSYNC_HUBSPOT__ACCESS_TOKEN']}"}
    ids = [r["id"] for r in requests.get(f"{hs}/crm/v3/objects/contacts", params={"limit": n}, headers=auth,
                                         timeout=30).json()["results"]]
    body = {"inputs": [{"id": i, "properties": {"jobtitle": "VP Revenue Operations"}} for i in ids]}
    requests.post(f"{hs}/crm/v3/objects/contacts/batch/update", json=body, headers=auth, timeout=30).raise_for_status()
    s = requests.Session()
    s.verify, s.trust_env = str(sandbox.salesforce.ca_pem_path), False
    s.headers["Authorization"] = f"Bearer {sandbox.env()['LEADSYNC_SALESFORCE__SESSION_ID']}"
    leads = [r["Id"] for r in sandbox.salesforce.records("Lead") if not r["IsConverted"] and not r["IsDeleted"]][:n]
    records = [{"attributes": {"type": "Lead"}, "id": i, "Title": "VP Revenue Operations"} for i in leads]
    s.patch(f"{sandbox.salesforce_url}/services/data/v59.0/composite/sobjects",
            json={"allOrNone": False, "records": records}, timeout=30).raise_for_status()
    return ids, leads


def test_quiet_syncs_read_nothing_after_the_echo_and_edits_are_read_alone(sandbox_env, monkeypatch):
    monkeypatch.setenv("LEADSYNC_HUBSPOT__OVERLAP_MS", str(OVERLAP_S * 1000))
    monkeypatch.setenv("LEADSYNC_SALESFORCE__OVERLAP_S", str(OVERLAP_S))
    backfill = _runs(cli("backfill"))
    assert all(r["status"] == "ok" and r["records_updated"] > 0 for r in backfill.values()), backfill
    time.sleep(SETTLE_S)
    echo = _runs(cli("sync", "--once"))  # the backfill's own writes come back once ...
    assert echo["hubspot"]["contacts_pulled"] > 0
    assert echo["salesforce"]["contacts_pulled"] > 0
    assert all(r["records_updated"] == 0 and r["tasks_created"] == 0 for r in echo.values())
    for _ in range(2):  # ... and never again: each quiet sync starts where the last one's queries ran
        time.sleep(SETTLE_S)
        quiet = _runs(cli("sync", "--once"))
        for source, run in quiet.items():
            assert run["status"] == "ok" and run["contacts_pulled"] == 0, (source, run["streams"])
            assert run["records_updated"] == 0
        hs, sf = quiet["hubspot"], quiet["salesforce"]
        assert hs["streams"]["contacts"] == {"pages": 1, "records": 0}
        assert all(sf["streams"][s]["records"] == 0 for s in ("Lead", "Contact", "CampaignMember", "Task", "Event"))
        # A handful of calls: one search, one list of archived contacts, one call per engagement query (four
        # email event types, one per form) — and on Salesforce one query per object, one describe check.
        assert hs["calls_by_phase"]["pull"] <= 16 and hs["api_calls"] <= 20, hs["calls_by_phase"]
        # Salesforce: six record streams plus the four history streams (Opportunity, LeadHistory, ContactHistory, User).
        assert sf["calls_by_phase"] == {"setup": 1, "pull": 10, "write": 1}, sf["calls_by_phase"]
    contacts, leads = _edit(sandbox_env, 5)
    edited = _runs(cli("sync", "--once"))
    assert edited["hubspot"]["streams"]["contacts"]["records"] == len(contacts) == 5
    assert edited["salesforce"]["streams"]["Lead"]["records"] == len(leads) == 5


def test_closed_salesforce_tasks_are_read_back_with_one_query(sandbox_env):
    """Before, every sync read the state of every open hand-off task (`Id IN (…)`, a call per 100 of them):
    O(open tasks), not O(changes). After the first read-back, one query lists the tasks closed since."""
    first = _runs(cli("backfill", "--source", "salesforce"))["salesforce"]
    assert first["tasks_created"] > 3
    cli("sync", "--once", "--source", "salesforce")  # the first read-back: every open task, and a watermark
    state = State(Settings().state_url)
    open_before = {t["crm_id"] for t in state.open_tasks("salesforce")}
    closed = sorted(open_before)[:3]
    s = requests.Session()
    s.verify, s.trust_env = str(sandbox_env.salesforce.ca_pem_path), False
    s.headers["Authorization"] = f"Bearer {sandbox_env.env()['LEADSYNC_SALESFORCE__SESSION_ID']}"
    records = [{"attributes": {"type": "Task"}, "id": i, "Status": "Completed"} for i in closed]
    s.patch(f"{sandbox_env.salesforce_url}/services/data/v59.0/composite/sobjects",
            json={"allOrNone": False, "records": records}, timeout=30).raise_for_status()
    queries: list[str] = []
    sandbox_env.salesforce.app.after_hooks.append(
        lambda req, name, resp: queries.append(req.arg("q") or "") if name == "sf.query" else None)
    run = _runs(cli("sync", "--once", "--source", "salesforce"))["salesforce"]
    assert run["calls_by_phase"]["write"] == 1, run["calls_by_phase"]  # the one closed-since query
    read_back = [q for q in queries if "FROM Task" in q and "IsClosed" in q]
    assert len(read_back) == 1 and "IsClosed = true AND SystemModstamp >=" in read_back[0], read_back
    assert {t["crm_id"] for t in state.open_tasks("salesforce")} == open_before - set(closed)
    state.close()


def test_completed_hubspot_tasks_are_read_back_with_one_search(sandbox_env):
    first = _runs(cli("backfill", "--source", "hubspot"))["hubspot"]
    assert first["tasks_created"] > 3
    cli("sync", "--once", "--source", "hubspot")  # the first read-back: every open task, and a watermark
    state = State(Settings().state_url)
    open_before = {t["crm_id"] for t in state.open_tasks("hubspot")}
    closed = sorted(open_before)[:3]
    auth = {"Authorization": f"Bearer {sandbox_env.env()['LEADSYNC_HUBSPOT__ACCESS_TOKEN']}"}
    body = {"inputs": [{"id": i, "properties": {"hs_task_status": "COMPLETED"}} for i in closed]}
    requests.post(f"{sandbox_env.hubspot_url}/crm/v3/objects/tasks/batch/update", json=body, headers=auth,
                  timeout=30).raise_for_status()
    before = sandbox_env.hubspot.app.counts.copy()
    cli("sync", "--once", "--source", "hubspot")
    calls = {ep: n for (ep, _), n in (sandbox_env.hubspot.app.counts - before).items()}
    assert "objects.batch.read" not in calls, calls  # no per-open-task state read
    assert {t["crm_id"] for t in state.open_tasks("hubspot")} == open_before - set(closed)
    state.close()
