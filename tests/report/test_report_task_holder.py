"""The hand-off SLA credits whoever holds the task in the CRM (read back on each sync), not the record's
owner — through the real HubSpot client against the sandbox, a task reassigned by a sales manager."""

from __future__ import annotations

import json

import requests
from typer.testing import CliRunner

from sandbox.run import HUBSPOT_TOKEN
from sandbox.seed import OWNERS
from sync.cli import app

runner = CliRunner()


def cli(*args: str, code: int = 0) -> dict:
    result = runner.invoke(app, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def _patch_task(sb, task_id: str, properties: dict[str, str]) -> None:
    requests.patch(f"{sb.hubspot_url}/crm/v3/objects/tasks/{task_id}", json={"properties": properties},
                   headers={"Authorization": f"Bearer {HUBSPOT_TOKEN}"}, timeout=10).raise_for_status()


def test_a_reassigned_task_is_credited_to_its_new_holder(sandbox_env):
    first = cli("backfill", "--source", "hubspot")
    assert first["tasks_created"] >= 2
    before = cli("report")["handoff"]["by_owner"]
    tasks = sandbox_env.hubspot.tasks()
    moved = next(t for t in tasks if t["properties"].get("hubspot_owner_id"))
    was = moved["properties"]["hubspot_owner_id"]
    holder = next(o.hubspot_id for o in OWNERS if o.active and o.hubspot_id != was)
    _patch_task(sandbox_env, moved["id"], {"hubspot_owner_id": holder, "hs_task_status": "COMPLETED"})
    cli("sync", "--once", "--source", "hubspot")  # reads back who holds each open task, and which closed
    after = cli("report")["handoff"]["by_owner"]
    name = {o.hubspot_id: f"{o.first_name} {o.last_name}" for o in OWNERS}  # the report shows owners by name
    was, holder = name[was], name[holder]
    assert after[was]["created"] == before[was]["created"] - 1  # the record's owner no longer carries it
    gained = after[holder]["created"] - before.get(holder, {"created": 0})["created"]
    assert gained == 1 and after[holder]["completed"] >= 1


def test_sqls_without_an_open_task_are_counted(sandbox_env):
    cli("backfill", "--source", "hubspot")
    covered = cli("report")["handoff"]["sqls_without_open_task"]
    task = sandbox_env.hubspot.tasks()[0]
    _patch_task(sandbox_env, task["id"], {"hs_task_status": "COMPLETED"})
    cli("sync", "--once", "--source", "hubspot")
    now = cli("report")["handoff"]["sqls_without_open_task"]
    assert now["task_closed"] == covered["task_closed"] + 1 and now["count"] == covered["count"] + 1
