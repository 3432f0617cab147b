"""The whole pipeline against the sandbox, through the CLI, with the real client libraries."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from sync.cli import app
from sync.settings import Settings
from sync.state import State

runner = CliRunner()


def cli(*args: str, code: int = 0) -> dict:
    result = runner.invoke(app, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def test_backfill_then_sync_writes_nothing(sandbox_env):
    first = cli("backfill", "--source", "hubspot")
    assert first["contacts_pulled"] > 0 and first["failed"] == 0
    assert first["fields_updated"] > 0 and first["tasks_created"] > 0
    again = cli("sync", "--once", "--source", "hubspot")
    assert again["fields_updated"] == 0 and again["tasks_created"] == 0 and again["failed"] == 0


def test_both_crms_promote_and_hand_off(sandbox_env):
    both = cli("backfill")  # every configured CRM as one run: persons decided once across them
    for s in both["runs"]:
        assert s["status"] == "ok", s
        assert s["contacts_pulled"] > 0 and s["engagements_pulled"] > 0
        assert any(k.endswith("->mql") for k in s["stage_changes"]), s["stage_changes"]
        assert any(k.endswith("->sql") for k in s["stage_changes"]), s["stage_changes"]
        assert s["failed"] == 0
    assert both["tasks_created"] > 0
    again = cli("sync", "--once")
    assert again["fields_updated"] == 0 and again["tasks_created"] == 0 and again["records_created"] == 0


def test_one_crm_at_a_time_converges_in_one_sync(sandbox_env):
    """Backfilling each CRM on its own decides each person with what is known then; the HubSpot records whose
    person turned out to have a Salesforce record too are left dirty, and the next sync settles them."""
    for source in ("hubspot", "salesforce"):
        s = cli("backfill", "--source", source)
        assert s["status"] == "ok" and s["failed"] == 0, s
    settle = cli("sync", "--once")
    assert settle["failed"] == 0 and settle["records_updated"] > 0
    again = cli("sync", "--once")
    assert again["fields_updated"] == 0 and again["tasks_created"] == 0 and again["records_created"] == 0


def test_tasks_say_why_and_are_never_duplicated(sandbox_env):
    first = cli("backfill", "--source", "hubspot")
    tasks = sandbox_env.hubspot.tasks()
    assert len(tasks) == first["tasks_created"] > 0
    bodies = " ".join(t["properties"]["hs_task_body"] for t in tasks)
    assert "requested a demo" in bodies or "/pricing" in bodies
    # A second full backfill re-plans everything from scratch: still no second task for anyone.
    state = State(Settings().state_url)
    state.db.execute("DELETE FROM contacts WHERE tenant='default'")
    state.close()
    cli("backfill", "--source", "hubspot")
    assert len(sandbox_env.hubspot.tasks()) == len(tasks)


def test_plan_writes_nothing_and_lists_changes(sandbox_env):
    before = sandbox_env.hubspot.app.counts.copy()
    plan = cli("plan", "--source", "hubspot")
    assert plan["changes"] and plan["tasks"]
    # `init` has not run: the plan still works, and names the fields it would need
    assert "contacts.leadsync_score" in plan["runs"][0]["missing_fields"]
    assert plan["fields_updated"] == sum(len(c["fields"]) for c in plan["changes"])
    written = {ep for (ep, _), n in (sandbox_env.hubspot.app.counts - before).items()
               if any(w in ep for w in ("update", "create", "upsert", "archive"))}
    assert not written, written
    # the plan is what the backfill then does
    done = cli("sync", "--once", "--source", "hubspot")
    assert done["fields_updated"] == plan["fields_updated"]
    assert done["tasks_created"] == plan["tasks_created"]


def test_explain_gives_points_and_reasons(sandbox_env):
    cli("backfill", "--source", "hubspot")
    state = State(Settings().state_url)
    sql = [cid for (cid,) in state.db.execute(
        "SELECT contact_id FROM scores WHERE tenant='default' AND source='hubspot' AND stage='sql' ORDER BY contact_id")]
    email = next(e for cid in sql if (e := (state.score_detail("hubspot", cid) or {}).get("contact", {}).get("email")))
    state.close()
    out = cli("explain", email)
    (c,) = [c for c in out["contacts"] if c["source"] == "hubspot"]
    reasons = c["score"]["reasons"]
    assert reasons and all(r["text"] for r in reasons)
    assert sum(r["points"] for r in reasons if r["kind"] in ("fit", "engagement")) == c["score"]["total"]


def test_demo_reports_both_crms(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = cli("demo", "--contacts", "400", "--state-dir", str(tmp_path))
    assert {r["source"] for r in out["runs"]} == {"hubspot", "salesforce"}
    for r in out["runs"]:
        assert r["contacts_pulled"] > 0 and r["failed"] == 0
        assert any(k.endswith("->mql") for k in r["stage_changes"])
        assert any(k.endswith("->sql") for k in r["stage_changes"])
    runs = {r["source"]: r for r in out["runs"]}
    # Sales works in Salesforce: every why-now task goes there, on the person's record or a hand-off Lead.
    assert runs["salesforce"]["tasks_created"] > 0 and runs["hubspot"]["tasks_created"] == 0
    assert runs["salesforce"]["records_created"] > 0
    assert out["second_sync"]["fields_updated"] == 0 and out["second_sync"]["tasks_created"] == 0
    # MQLs enrolled in nurture, read back from both CRMs; the second pass makes no nurture call.
    nurture = out["nurture"]
    assert nurture["hubspot_members"] == runs["hubspot"]["nurture_added"] > 0
    assert nurture["salesforce_members"] == runs["salesforce"]["nurture_added"] > 0
    assert out["second_sync"]["nurture_added"] == out["second_sync"]["nurture_removed"] == 0


def test_closed_tasks_are_read_back_for_the_report(sandbox_env):
    import requests

    from sandbox.run import HUBSPOT_TOKEN

    cli("backfill", "--source", "hubspot")
    task = sandbox_env.hubspot.tasks()[0]
    r = requests.patch(f"{sandbox_env.hubspot_url}/crm/v3/objects/tasks/{task['id']}",
                       json={"properties": {"hs_task_status": "COMPLETED"}},
                       headers={"Authorization": f"Bearer {HUBSPOT_TOKEN}"}, timeout=10)
    assert r.status_code == 200, r.text
    cli("sync", "--once", "--source", "hubspot")
    state = State(Settings().state_url)
    done = state.db.execute(
        "SELECT crm_id FROM task_ledger WHERE tenant='default' AND completed_at IS NOT NULL").fetchall()
    assert done == [(task["id"],)]
    report = cli("report")
    assert report["handoff"]["total"]["completed"] == 1


def test_runs_show_and_undo_restore_what_a_run_wrote(sandbox_env):
    first = cli("backfill", "--source", "hubspot")
    shown = cli("runs", "show", first["run_id"])
    assert shown["status"] == "ok" and len(shown["audit"]) >= first["fields_updated"]
    assert cli("runs")["runs"][0]["id"] == first["run_id"]
    audited = {(a["record_id"], a["field"]): a for a in shown["audit"] if a["object_type"] == "contacts"}
    (cid, _field), row = next(((k, a) for k, a in audited.items() if k[1] == "leadsync_score"))
    # a person edits one field the run wrote: undo must leave that one alone
    edited = next(k for k in audited if k[0] != cid and k[1] == "leadsync_score")
    import requests

    from sandbox.run import HUBSPOT_TOKEN

    requests.patch(f"{sandbox_env.hubspot_url}/crm/v3/objects/contacts/{edited[0]}",
                   json={"properties": {"leadsync_score": "7"}},
                   headers={"Authorization": f"Bearer {HUBSPOT_TOKEN}"}, timeout=10).raise_for_status()
    undone = cli("undo", first["run_id"], "--yes")
    assert undone["fields_left"] == [{"record_id": edited[0], "field": "leadsync_score", "run_wrote": audited[edited]["after"],
                                      "crm_now": "7"}]
    assert undone["tasks_closed"] == first["tasks_created"] and undone["failed"] == 0
    contact = sandbox_env.hubspot.contact(cid)
    assert contact.get("leadsync_score") in (None, "", row["before"])
    assert all(t["properties"]["hs_task_status"] == "COMPLETED" for t in sandbox_env.hubspot.tasks())
    stage_rows = [a for a in shown["audit"] if a["field"] == "lifecyclestage"]
    back = sandbox_env.hubspot.contact(stage_rows[0]["record_id"])["lifecyclestage"]
    assert back == stage_rows[0]["before"]  # a backward move: clear-then-set, allowed only for undo


def test_wrong_credentials_end_the_run_with_the_crms_reason(sandbox_env, monkeypatch):
    monkeypatch.setenv("LEADSYNC_HUBSPOT__ACCESS_TOKEN", "pat-wrong")
    result = runner.invoke(app, ["backfill", "--source", "hubspot", "--json"])
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["status"] == "error" and "AuthError" in summary["message"]
    assert "pat-wrong" not in result.output


def test_a_rejected_record_is_kept_retried_and_never_stops_the_batch(sandbox_env):
    sf = sandbox_env.salesforce
    lead = next(r for r in sf.records("Lead") if r.get("IsConverted") is False)
    sf.reject_writes([lead["Id"]])
    first = cli("backfill", "--source", "salesforce", code=4)  # exit 4: done, but the CRM rejected some
    assert first["status"] == "partial" and first["failed"] == 1 and first["records_updated"] > 100  # the rest of the batch went through
    failures = cli("failures")["failures"]
    assert [(f["record_id"], f["error_code"], f["attempts"]) for f in failures] == [
        (lead["Id"], "FIELD_CUSTOM_VALIDATION_EXCEPTION", 1)]
    assert "manager" in failures[0]["message"]  # the CRM's own words
    again = cli("sync", "--once", "--source", "salesforce", code=4)
    assert again["failed"] == 1 and cli("failures")["failures"][0]["attempts"] == 2  # retried, still refused
    sf.clear_rejections()
    fixed = cli("sync", "--once", "--source", "salesforce")
    assert fixed["failed"] == 0 and fixed["records_updated"] == 1
    assert cli("failures")["failures"] == []
    assert sf.record("Lead", lead["Id"])["LeadSync_Score__c"] is not None


def test_rescore_scores_everyone_and_still_writes_only_differences(sandbox_env):
    first = cli("backfill", "--source", "hubspot")
    again = cli("sync", "--once", "--source", "hubspot", "--rescore")
    assert again["contacts_scored"] >= first["contacts_scored"] - 5  # everyone, not only the changed
    assert again["fields_updated"] == 0 and again["tasks_created"] == 0  # same day: same scores


def test_backfill_since_pulls_only_what_changed_since(sandbox_env):
    from datetime import datetime, timedelta, timezone

    since = (datetime.now(timezone.utc) - timedelta(days=30)).strftime("%Y-%m-%d")
    for source in ("hubspot", "salesforce"):
        recent = cli("backfill", "--source", source, "--since", since)
        assert recent["status"] == "ok"
        full = cli("backfill", "--source", source)
        assert 0 < recent["contacts_pulled"] < full["contacts_pulled"], (source, recent, full)


def test_init_creates_fields_once_and_writes_a_starter_config(sandbox_env, tmp_path):
    first = cli("init", "--source", "hubspot")
    assert "contacts.leadsync_score" in first["created"]["hubspot"] and first["config"] == "leadsync.toml"
    assert (tmp_path / "leadsync.toml").read_text().startswith("# leadsync settings")
    second = cli("init", "--source", "hubspot")
    assert second["created"] == {"hubspot": []} and second["config"] is None  # idempotent, config kept
    assert cli("init", "--source", "salesforce")["created"] == {"salesforce": []}  # fields exist in the org
