"""Owner routing and alerts end to end: the CLI, the real clients, both emulators, a loopback Slack webhook
and SMTP server. Hand-offs go round robin by weight to active reps who are not away, the why-now task and
the created Lead carry the routed owner, a manually set owner is never overwritten, every created hand-off
is alerted once, and a re-run changes nothing."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

import requests
from simple_salesforce import Salesforce
from typer.testing import CliRunner

from sandbox.run import SALESFORCE_SESSION, Sandbox
from sandbox.seed import OWNERS, SF_QUEUE_ID
from sync.cli import app
from sync.state import State
from tests.routing.config import BY_NAME, routing_toml

runner = CliRunner()
REP_OF = {o.salesforce_id: o.first_name.lower() for o in OWNERS}


def cli(*args: str, code: int = 0) -> dict[str, Any]:
    result = runner.invoke(app, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def leadsync_tasks(sb: Sandbox) -> list[dict[str, Any]]:
    return [t for t in sb.salesforce.records("Task") if t.get("LeadSync_Key__c")]


def audited(st: State) -> list[dict[str, Any]]:
    """Every field write of every run, as the audit trail reads them back."""
    return [a for (run_id,) in st.db.execute("SELECT id FROM runs WHERE tenant=?", (st.tenant,))
            for a in st.audit_for_run(run_id)]


def salesforce(sb: Sandbox) -> Salesforce:
    s = requests.Session()
    s.verify = str(sb.salesforce.ca_pem_path)
    s.trust_env = False
    return Salesforce(instance_url=sb.salesforce_url, session_id=SALESFORCE_SESSION, version="59.0", session=s)


def test_round_robin_by_weight_skips_inactive_and_away_and_alerts_once(sandbox_env, tmp_path, slack, smtp):
    sb = sandbox_env
    (tmp_path / "leadsync.toml").write_text(routing_toml(slack.url("/team"), None, smtp.port))
    first = cli("backfill")
    runs = {r["source"]: r for r in first["runs"]}
    assert all(r["status"] == "ok" for r in runs.values()), runs
    tasks = leadsync_tasks(sb)
    assert len(tasks) >= 12, "the scenario must hand off enough leads to show the weights"
    owners = Counter(REP_OF.get(t["OwnerId"]) for t in tasks)
    # pat is inactive in both CRMs, leo is away: neither gets one; maya weighs 2, jonas 1
    assert set(owners) == {"maya", "jonas"}, owners
    n = len(tasks)
    assert abs(owners["maya"] - n * 2 / 3) <= 1 and abs(owners["jonas"] - n / 3) <= 1, owners
    st = State(f"sqlite:///{tmp_path}/state.db")
    counts = dict(st.db.execute(
        "SELECT rep, assigned FROM route_counters WHERE tenant='default' AND team='inbound'").fetchall())
    assert counts == {"maya": owners["maya"], "jonas": owners["jonas"]}
    for t in tasks:
        assert "Routed: skipped pat is inactive in hubspot" in t["Description"]
        assert "skipped leo is away until" in t["Description"] and "round robin picked" in t["Description"]

    # hand-off Leads leadsync created carry the routed owner (write_owner allows it at SQL) …
    leads = {r["Id"]: r for r in sb.salesforce.records("Lead")}
    created = [r for r in leads.values() if r.get("LeadSync_Person_Key__c")]
    assert created and all(r["OwnerId"] == next(t["OwnerId"] for t in tasks if t["WhoId"] == r["Id"])
                           for r in created)
    # … and an existing record's owner changes only from a queue or nobody: never over a person's choice
    owner_writes = [(a["record_id"], a["before"], a["after"]) for a in audited(st) if a["field"] == "OwnerId"]
    assert all(before in (None, "", SF_QUEUE_ID) for _, before, _ in owner_writes), owner_writes
    manual = [t for t in tasks if t["WhoId"] in leads and not leads[t["WhoId"]].get("LeadSync_Person_Key__c")
              and leads[t["WhoId"]]["OwnerId"] != t["OwnerId"]]
    assert all("was set by hand: left as it is" in t["Description"] for t in manual)

    # one Slack alert per created hand-off task (the team's channel), one email per task of maya's
    assert sorted(slack.texts("/team")) == sorted(slack.texts())
    assert len(slack.delivered) == n == runs["salesforce"]["alerts"]["sent"] - owners["maya"]
    subjects = Counter(t.split("\n")[0].strip("*") for t in slack.texts())
    assert subjects == Counter(t["Subject"] for t in tasks)
    mails = [msg for rcpt, msg in smtp.messages]
    assert len(mails) == owners["maya"] and all(r == [BY_NAME["maya"].email] for r, _ in smtp.messages)
    assert all("Routed:" in m.get_payload() for m in mails)

    again = cli("sync", "--once")
    assert all(r["tasks_created"] == 0 and r["alerts"] == {} for r in again["runs"]), again
    assert len(slack.received) == n and len(smtp.messages) == owners["maya"]
    assert dict(st.db.execute("SELECT rep, assigned FROM route_counters WHERE tenant='default'").fetchall()) == counts

    # explain shows the routing of a person who was routed
    email = created[0]["Email"]
    routing = cli("explain", email)["contacts"][0]["routing"]
    lead = next(r for r in created if r["Email"] == email)
    assert routing["persisted"] and routing["rule"] == "everyone" and routing["rep"] == REP_OF[lead["OwnerId"]]
    assert any("round robin picked" in r for r in routing["reasons"])
    text = runner.invoke(app, ["explain", email], catch_exceptions=False).stdout
    assert "owner routing:" in text and "Routed:" in text


def test_existing_active_owners_are_kept_and_owner_writes_can_be_off(sandbox_env, tmp_path, slack):
    sb = sandbox_env
    (tmp_path / "leadsync.toml").write_text(routing_toml(slack.url("/team"), keep_active_owner=True,
                                                         write_owner="[]"))
    cli("backfill")
    st = State(f"sqlite:///{tmp_path}/state.db")
    rules = Counter(r[0] for r in st.db.execute(
        "SELECT rule FROM route_assignments WHERE tenant='default' GROUP BY person, rule").fetchall())
    assert rules["existing-owner"] > 0, rules
    tasks = leadsync_tasks(sb)
    for t in tasks:
        if "kept the existing owner" in t["Description"]:
            assert REP_OF.get(t["OwnerId"]) not in ("pat", "leo")  # kept only when active and not away
    # nobody's owner was written: not on existing records, not on created Leads (no OwnerId sent)
    assert not [a for a in audited(st) if a["field"] == "OwnerId"]
    running_user = OWNERS[0].salesforce_id
    assert all(r["OwnerId"] == running_user for r in sb.salesforce.records("Lead") if r.get("LeadSync_Person_Key__c"))


def test_plan_routes_without_persisting(sandbox_env, tmp_path, slack):
    (tmp_path / "leadsync.toml").write_text(routing_toml(slack.url("/team")))
    plan = cli("plan")
    st = State(f"sqlite:///{tmp_path}/state.db")
    assert st.db.execute("SELECT count(*) FROM route_assignments WHERE tenant='default'").fetchone()[0] == 0
    assert st.db.execute("SELECT count(*) FROM route_counters WHERE tenant='default'").fetchone()[0] == 0
    assert slack.received == []
    handoffs = plan.get("handoffs") or []
    assert handoffs and all("Routed:" in h["task"]["body"] for h in handoffs if h.get("task"))


def test_sla_escalation_once_for_open_hand_offs_only(sandbox_env, tmp_path, slack):
    sb = sandbox_env
    (tmp_path / "leadsync.toml").write_text(routing_toml(slack.url("/team"), slack.url("/esc")))
    cli("backfill")
    tasks = leadsync_tasks(sb)
    assert len(tasks) >= 2
    done = tasks[0]
    salesforce(sb).Task.update(done["Id"], {"Status": "Completed"})  # the rep did it
    cli("sync", "--once")  # reads the completion back
    st = State(f"sqlite:///{tmp_path}/state.db")
    from sync.alerts import Alerts
    from sync.settings import Settings

    settings = Settings()
    later = datetime.now(timezone.utc) + timedelta(days=7)  # a week always holds 120 business hours
    counts = Alerts(st, settings.routing, settings.alerts).run(later, "sla-check")
    escalations = [d for d in slack.delivered if d["path"] == "/esc"]
    assert counts == {"salesforce": {"sent": len(tasks) - 1}} and len(escalations) == len(tasks) - 1
    assert all(e["body"]["text"].startswith("*SLA passed: Follow up:") for e in escalations)
    assert not any(done["Subject"] in e["body"]["text"] for e in escalations)
    assert Alerts(st, settings.routing, settings.alerts).run(later + timedelta(days=3), "again") == {}
    assert len([d for d in slack.delivered if d["path"] == "/esc"]) == len(tasks) - 1


def test_sla_reroute_moves_the_task_to_another_rep_once(sandbox_env, tmp_path, slack):
    sb = sandbox_env
    (tmp_path / "leadsync.toml").write_text(routing_toml(slack.url("/team"), slack.url("/esc")) +
                                            "reroute_on_escalation = true\n")
    cli("backfill")
    before = {t["Id"]: t["OwnerId"] for t in leadsync_tasks(sb)}
    from sync.alerts import Alerts, overdue
    from sync.cli import make_connector
    from sync.routing_run import Router, read_availability
    from sync.routing_state import alerts_since
    from sync.settings import Settings

    settings = Settings()
    assert settings.alerts.reroute_on_escalation
    st = State(f"sqlite:///{tmp_path}/state.db")
    conns = {name: make_connector(name, settings) for name in ("hubspot", "salesforce")}
    later = datetime.now(timezone.utc) + timedelta(days=7)
    router = Router(st, settings.routing.policy(), read_availability(conns), later.date(), "sla-run")
    late = overdue(st, alerts_since(st), later, settings.alerts.sla_business_hours)
    assert len(late) == len(before)
    assert router.reroute([t for t, _ in late], conns) == len(before)
    after = {t["Id"]: t["OwnerId"] for t in leadsync_tasks(sb)}
    # each to another available member of the team (a week on, leo is back; pat is still inactive)
    assert all(REP_OF[after[i]] != REP_OF[o] and REP_OF[after[i]] in ("maya", "jonas", "leo")
               for i, o in before.items())
    ledger = dict(st.db.execute(
        "SELECT crm_id, owner_id FROM task_ledger WHERE tenant='default' AND status='created'").fetchall())
    assert ledger == after
    Alerts(st, settings.routing, settings.alerts).run(later, "sla-run")
    esc = [d["body"]["text"] for d in slack.delivered if d["path"] == "/esc"]
    assert len(esc) == len(before) and all("Re-routed from " in e for e in esc)
    # escalated once: nothing is overdue-and-unescalated any more, so nothing moves again
    assert overdue(st, alerts_since(st), later + timedelta(days=2), 24) == []
    again = cli("sync", "--once")
    assert all(r["records_updated"] == 0 and r["tasks_created"] == 0 for r in again["runs"])
    assert {t["Id"]: t["OwnerId"] for t in leadsync_tasks(sb)} == after
    for c in conns.values():
        c.close()
