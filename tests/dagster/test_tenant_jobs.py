"""Three tenants' sync and backfill jobs executed in-process against three sandboxes, their state in one
PostgreSQL database: each tenant's CRMs end as the CLI leaves a copy of them (same seed) run alone on its
own state; a fourth tenant with a bad configuration fails alone, without a retry."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

dg = pytest.importorskip("dagster")

from sandbox.run import Sandbox, start_sandbox  # noqa: E402
from sync.cli import app  # noqa: E402
from sync.orchestrate.definitions import build_definitions  # noqa: E402
from sync.tenants import load_tenants  # noqa: E402
from tests.dagster.conftest import SECRETS, database, shipped_instance, tenant_table  # noqa: E402

SEEDS = {"north": 21, "south": 22, "east-coast": 23}
CONTACTS = 150
FAST_RETRY = dg.RetryPolicy(max_retries=1, delay=0)


def crm_state(sb: Sandbox) -> dict[str, Any]:
    """What leadsync leaves in the CRMs: its fields and the stage on every record, and the tasks it created
    (subject and the record they are on); no timestamps."""
    hs = {cid: {k: v for k, v in (sb.hubspot.contact(cid) or {}).items()
                if k.startswith("leadsync_") and not k.endswith("_at") or k == "lifecyclestage"}
          for cid in sb.hubspot.contact_ids()}
    sf = {f"{o}:{r.get('Email') or r['Id']}": {k: v for k, v in r.items()
                                               if k.startswith("LeadSync_") and not k.endswith("_At__c")
                                               or k == "Status"}
          for o in ("Lead", "Contact") for r in sb.salesforce.records(o)}
    tasks = sorted([("hubspot", t["properties"].get("hs_task_subject") or "", tuple(sorted(t["contact_ids"])))
                    for t in sb.hubspot.tasks()]
                   + [("salesforce", r.get("Subject") or "", (r.get("WhoId") or "",))
                      for r in sb.salesforce.records("Task")])
    return {"hubspot": hs, "salesforce": sf, "tasks": tasks}


def cli_alone(sb: Sandbox, state_url: str, tmp_path) -> None:
    """`leadsync backfill` then `leadsync sync --once`, the single-team way: the environment, its own state."""
    runner = CliRunner()
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in __import__("os").environ if k.startswith("LEADSYNC_")]:
            mp.delenv(key)
        for key, value in sb.env().items():
            mp.setenv(key, value)
        mp.setenv("LEADSYNC_STATE_URL", state_url)
        mp.chdir(tmp_path)
        for args in (["backfill"], ["sync", "--once"]):
            result = runner.invoke(app, [*args, "--json"], catch_exceptions=False)
            assert result.exit_code == 0, result.output
            assert json.loads(result.stdout)["status"] == "ok"


@pytest.fixture(scope="module")
def fleet(pg_server, tmp_path_factory):
    """Each seed twice: one sandbox for the Dagster tenant, one for the CLI run alone."""
    ours = {name: start_sandbox(contacts=CONTACTS, seed=seed) for name, seed in SEEDS.items()}
    alone = {name: start_sandbox(contacts=CONTACTS, seed=seed) for name, seed in SEEDS.items()}
    root = tmp_path_factory.mktemp("tenants")
    shared = database(pg_server)  # one state for every tenant: each table carries the tenant
    text = "".join(tenant_table(name, sb, shared) for name, sb in ours.items())
    text += '[tenants.broken]\nhubspot.access_token_env = "BROKEN_TOKEN_NOT_SET"\n'
    (root / "tenants.toml").write_text(text)
    tenants = load_tenants(root / "tenants.toml", environ=SECRETS)
    defs = build_definitions(tenants, retry=FAST_RETRY)
    instance = shipped_instance(root / "dagster_home")
    yield {"ours": ours, "alone": alone, "defs": defs, "instance": instance, "root": root, "pg": pg_server}
    for sb in [*ours.values(), *alone.values()]:
        sb.stop()


def _run(fleet: dict, job: str, **kw: Any):
    return fleet["defs"].get_job_def(job).execute_in_process(instance=fleet["instance"], raise_on_error=False, **kw)


def _meta(result) -> dict[str, Any]:
    (event,) = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    return {k: v.value for k, v in event.event_specific_data.metadata.items()}


def test_backfill_then_sync_per_tenant_matches_the_cli_alone(fleet):
    for name in SEEDS:
        backfill = _run(fleet, "backfill_tenants", partition_key=name)
        assert backfill.success, name
        meta = _meta(backfill)
        assert meta["tenant"] == name and meta["status"] == "ok"
        assert meta["contacts_pulled"] > 0 and meta["tasks_created"] > 0 and meta["failed"] == 0
        assert set(meta["calls_by_phase"]) == {"hubspot", "salesforce"}
        assert all(meta["calls_by_phase"][src].get("pull") for src in ("hubspot", "salesforce"))
        assert any(k.endswith("->sql") for k in meta["stage_changes"]["hubspot"])
        tags = backfill.dagster_run.tags
        assert tags["leadsync/tenant"] == name and tags["leadsync/status"] == "ok"
        sync = _run(fleet, f"sync_{name.replace('-', '_')}")
        assert sync.success and _meta(sync)["records_updated"] == 0  # nothing left to write
    for name in SEEDS:
        own = database(fleet["pg"])
        cli_alone(fleet["alone"][name], own, fleet["root"])
        ours = crm_state(fleet["ours"][name])
        assert ours["tasks"] and sum(bool(c.get("leadsync_score")) for c in ours["hubspot"].values()) > CONTACTS / 2
        assert any(r.get("LeadSync_Stage__c") for r in ours["salesforce"].values())
        assert ours == crm_state(fleet["alone"][name]), name


def test_a_bad_configuration_fails_its_tenant_only_and_is_not_retried(fleet):
    assert "broken" in fleet["defs"].get_job_def("backfill_tenants").partitions_def.get_partition_keys()
    for job, kw in (("sync_broken", {}), ("backfill_tenants", {"partition_key": "broken"})):
        result = _run(fleet, job, **kw)
        assert not result.success
        (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        assert "hubspot.access_token_env names BROKEN_TOKEN_NOT_SET" in failure.event_specific_data.error.message
        assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
        assert result.dagster_run.tags["dagster/will_retry"] == "false"
    assert _run(fleet, "sync_north").success  # its neighbours run as before
