"""`leadsync sandbox serve`: one JSON line, credentials that work, faults switched on from the command line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import requests

from sandbox.run import parse_fault


def test_serve_prints_one_json_line_and_applies_cli_faults():
    proc = subprocess.Popen([sys.executable, "-m", "sync.cli", "sandbox", "serve", "--contacts", "50",
                             "--fault", "hubspot:contacts.list=503x2"], stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        hs = info["hubspot"]
        url = f"{hs['base_url']}/crm/v3/objects/contacts"
        headers = {"Authorization": f"Bearer {hs['access_token']}"}
        codes = [requests.get(url, headers=headers, timeout=10).status_code for _ in range(3)]
        assert codes == [503, 503, 200]  # the fault fired twice, then the endpoint recovered
        sf = info["salesforce"]
        r = requests.get(f"{sf['instance_url']}/services/data/v59.0/limits", verify=sf["ca_bundle"],
                         headers={"Authorization": f"Bearer {sf['session_id']}"}, timeout=10)
        assert r.status_code == 200 and "DailyApiRequests" in r.json()
        assert info["env"]["LEADSYNC_HUBSPOT__BASE_URL"] == hs["base_url"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize("text, want", [
    ("hubspot:contacts.list=503@0.2", ("hubspot", "contacts.list", 503, 0.2, None, False, 0)),
    ("salesforce:*=drop@0.05", ("salesforce", "*", None, 0.05, None, True, 0)),
    ("hubspot:*=+200ms", ("hubspot", "*", None, 1.0, None, False, 200)),
    ("salesforce:query=500x3", ("salesforce", "query", 500, 1.0, 3, False, 0)),
])
def test_parse_fault(text, want):
    crm, f = parse_fault(text)
    assert (crm, f.endpoint, f.status, f.rate, f.remaining, f.drop, f.latency_ms) == want


def test_parse_fault_commit_late():
    crm, f = parse_fault("hubspot:objects.batch.create=late2500ms")
    assert (crm, f.endpoint, f.commit_late_ms, f.latency_ms, f.status) == ("hubspot", "objects.batch.create", 2500, 0, None)


def test_parse_fault_says_what_it_expects():
    with pytest.raises(ValueError, match="expected CRM:ENDPOINT"):
        parse_fault("hubspot-contacts-503")


def test_a_restarted_sandbox_keeps_what_a_run_wrote(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from sandbox.run import start_sandbox
    from sync.cli import app

    sb = start_sandbox(contacts=200, seed=4, state_dir=tmp_path / "crm")
    for key, value in sb.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("LEADSYNC_STATE_URL", f"sqlite:///{tmp_path}/state.db")
    result = CliRunner().invoke(app, ["backfill", "--source", "hubspot", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    written = {cid: (sb.hubspot.contact(cid) or {}).get("leadsync_score") for cid in sb.hubspot.contact_ids()}
    tasks = len(sb.hubspot.tasks())
    sb.stop()
    again = start_sandbox(contacts=200, seed=4, state_dir=tmp_path / "crm")
    try:
        assert {cid: (again.hubspot.contact(cid) or {}).get("leadsync_score") for cid in again.hubspot.contact_ids()} \
            == written
        assert len(again.hubspot.tasks()) == tasks > 0
    finally:
        again.stop()


def test_admin_routes_show_what_a_run_wrote(sandbox_env):
    from typer.testing import CliRunner

    from sync.cli import app

    sb = sandbox_env
    # HubSpot first: once Salesforce is known, sales-ready people's tasks go there instead.
    CliRunner().invoke(app, ["backfill", "--source", "hubspot", "--json"], catch_exceptions=False)
    CliRunner().invoke(app, ["backfill", "--source", "salesforce", "--json"], catch_exceptions=False)
    tasks = requests.get(f"{sb.hubspot_url}/_sandbox/hubspot/tasks", timeout=10).json()
    assert tasks["total"] == len(sb.hubspot.tasks()) > 0
    contacts = requests.get(f"{sb.hubspot_url}/_sandbox/hubspot/contacts?limit=5", timeout=10).json()
    assert len(contacts["results"]) == 5 and "leadsync_score" in contacts["results"][0]["properties"]
    leads = requests.get(f"{sb.salesforce_url}/_sandbox/salesforce/records/Lead?limit=3",
                         verify=str(sb.salesforce.ca_pem_path), timeout=10).json()
    one = leads["results"][0]
    got = requests.get(f"{sb.salesforce_url}/_sandbox/salesforce/records/Lead/{one['Id']}",
                       verify=str(sb.salesforce.ca_pem_path), timeout=10).json()
    assert got["Id"] == one["Id"] and "LeadSync_Score__c" in got
    counts = requests.get(f"{sb.hubspot_url}/_sandbox/requests", timeout=10).json()
    assert counts["total"] > 0 and not any(r["endpoint"].startswith("admin.") for r in counts["requests"])
