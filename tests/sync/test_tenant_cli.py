"""Two tenants in one state file, through the CLI: their portals are seeded alike (the same record ids), so
anything not keyed by tenant would leak — the second tenant's backfill would find "nothing changed" and
write nothing to its own CRM."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from sandbox.run import HUBSPOT_TOKEN, SALESFORCE_SESSION, Sandbox, start_sandbox
from sync.cli import app

runner = CliRunner()


def cli(*args: str, code: int = 0) -> dict[str, Any]:
    result = runner.invoke(app, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def portals():
    sbs = [start_sandbox(contacts=150, seed=11) for _ in range(2)]
    yield sbs
    for sb in sbs:
        sb.stop()


def _tenant(name: str, sb: Sandbox) -> str:
    return (f"[tenants.{name}]\nhubspot.access_token_env = \"HS_{name.upper()}\"\nhubspot.base_url = "
            f"\"{sb.hubspot_url}\"\nsalesforce.instance_url = \"{sb.salesforce_url}\"\n"
            f"salesforce.session_id_env = \"SF_{name.upper()}\"\n"
            f"salesforce.ca_bundle = \"{sb.salesforce.ca_pem_path}\"\n")


@pytest.fixture
def tenants(portals, tmp_path, monkeypatch):
    for key in [k for k in __import__("os").environ if k.startswith("LEADSYNC_")]:
        monkeypatch.delenv(key)
    state_url = f"sqlite:///{tmp_path}/shared.db"
    path = tmp_path / "tenants.toml"
    path.write_text(f"[defaults]\nstate_url = \"{state_url}\"\n" + _tenant("acme", portals[0])
                    + _tenant("globex", portals[1]) + "[tenants.initech]\nhubspot.access_token_env = \"HS_NONE\"\n")
    for name in ("ACME", "GLOBEX"):
        monkeypatch.setenv(f"HS_{name}", HUBSPOT_TOKEN)
        monkeypatch.setenv(f"SF_{name}", SALESFORCE_SESSION)
    monkeypatch.setenv("LEADSYNC_TENANTS", str(path))
    monkeypatch.setenv("LEADSYNC_STATE_URL", state_url)  # the default tenant: same file, no CRM
    monkeypatch.chdir(tmp_path)
    return portals


def crm_state(sb: Sandbox) -> dict[str, Any]:
    """What leadsync left in the CRM, without per-write stamps and server-made ids."""
    hs = {cid: {k: v for k, v in (sb.hubspot.contact(cid) or {}).items()
                if k.startswith("leadsync_") and k != "leadsync_write"} for cid in sb.hubspot.contact_ids()}
    sf = {o: sorted(json.dumps({k: v for k, v in r.items() if k.startswith("LeadSync_")}, sort_keys=True)
                    for r in sb.salesforce.records(o)) for o in ("Lead", "Contact")}
    return {"hubspot": hs, "salesforce": sf, "hubspot_tasks": len(sb.hubspot.tasks()),
            "salesforce_tasks": len(sb.salesforce.records("Task"))}


def test_two_tenants_share_a_state_and_never_see_each_other(tenants):
    acme, globex = tenants
    before = crm_state(globex)
    first = cli("backfill", "--tenant", "acme")
    assert first["status"] == "ok" and first["records_updated"] > 0
    assert crm_state(globex) == before  # acme's run touched only acme's CRMs
    assert cli("runs", "--tenant", "globex")["runs"] == []
    assert cli("--tenant", "globex", "status", code=4)["findings"][0]["what"] == "never_synced"

    second = cli("backfill", "--tenant", "globex")
    # the same seeded portals, the same ids: globex's backfill does all of acme's work again, in its own CRM
    for key in ("contacts_pulled", "engagements_pulled", "records_updated", "tasks_created", "records_created"):
        assert second[key] == first[key], key
    assert crm_state(globex) == crm_state(acme)

    runs_a, runs_g = cli("runs", "--tenant", "acme")["runs"], cli("runs", "--tenant", "globex")["runs"]
    assert {r["id"] for r in runs_a}.isdisjoint({r["id"] for r in runs_g}) and len(runs_a) == len(runs_g) == 2
    assert cli("runs")["runs"] == []  # the default tenant of the same file has none of them
    again = cli("sync", "--once", "--tenant", "acme")
    assert again["records_updated"] == 0 and again["tasks_created"] == 0

    email = next(e for e in (c.get("email") for c in map(acme.hubspot.contact, acme.hubspot.contact_ids())) if e)
    explained_a, explained_g = cli("explain", email, "--tenant", "acme"), cli("explain", email, "--tenant=globex")
    assert [c["score"] for c in explained_a["contacts"]] == [c["score"] for c in explained_g["contacts"]]
    cli("explain", email, code=1)  # unknown to the default tenant


def test_unknown_and_broken_tenants_are_clear(tenants):
    result = runner.invoke(app, ["runs", "--tenant", "nobody"])
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and "no tenant 'nobody' (declared: acme, globex, initech)" in said
    result = runner.invoke(app, ["plan", "--tenant", "initech"])
    assert result.exit_code == 2 and "HS_NONE, which is not set" in " ".join(result.output.split())
    assert cli("runs", "--tenant", "acme")["status"] == "ok"  # the broken neighbour stops nobody else
