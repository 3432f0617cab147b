"""The CSV connector end to end: a small export in, field changes and tasks out, then a pure diff."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta, timezone

from typer.testing import CliRunner

from connectors.base import registry
from sync.cli import app

NOW = datetime.now(timezone.utc)


def write(path, header, rows):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def test_csv_backfill_writes_changes_and_one_task_then_nothing(tmp_path, monkeypatch):
    write(tmp_path / "contacts.csv", ["id", "email", "first_name", "title", "company_size", "lifecycle_stage", "Region"], [
        ["c1", "vp@acme.com", "Ana", "VP Marketing", "900", "lead", "EMEA"],
        ["c2", "student@gmail.com", "Ben", "Student", "lots", "lead", "APAC"],  # bad size: an issue, row kept
    ])
    day = timedelta(days=1)
    write(tmp_path / "engagements.csv", ["id", "contact_id", "kind", "occurred_at", "detail"], [
        ["e1", "c1", "Demo Requested", (NOW - day).isoformat(), "Demo request"],
        ["e2", "c1", "page_view", (NOW - 2 * day).isoformat(), "https://www.example-saas.com/pricing"],
        ["e3", "c2", "page_view", "yesterday", "https://x/"],  # bad date: reported, not scored
    ])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LEADSYNC_STATE_URL", f"sqlite:///{tmp_path}/state.db")
    monkeypatch.setenv("LEADSYNC_CSV__CONTACTS_PATH", str(tmp_path / "contacts.csv"))
    monkeypatch.setenv("LEADSYNC_CSV__ENGAGEMENTS_PATH", str(tmp_path / "engagements.csv"))
    monkeypatch.setenv("LEADSYNC_CSV__KIND_VALUES", json.dumps({"Demo Requested": "demo_request"}))
    assert "csv" in registry()
    runner = CliRunner()
    first = json.loads(runner.invoke(app, ["backfill", "--source", "csv", "--json"], catch_exceptions=False).stdout)
    assert first["contacts_pulled"] == 2 and first["engagements_pulled"] == 2
    assert first["issues"] == 2  # the size and the date, each naming record and field
    assert first["stage_changes"].get("lead->sql") == 1 and first["tasks_created"] == 1
    changes = list(csv.DictReader(open(tmp_path / ".leadsync/csv_changes.csv")))
    assert {"c1", "c2"} <= {r["record_id"] for r in changes}
    (task,) = list(csv.DictReader(open(tmp_path / ".leadsync/csv_tasks.csv")))
    assert task["contact_id"] == "c1" and "demo" in task["body"].lower()
    again = json.loads(runner.invoke(app, ["sync", "--once", "--source", "csv", "--json"]).stdout)
    assert again["fields_updated"] == 0 and again["tasks_created"] == 0
