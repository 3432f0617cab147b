"""The alert ledger against loopback Slack and SMTP receivers: at most once, exactly once under retries and
injected faults, held when a receiver is down and sent by a later run, SLA escalation once."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone

import pytest
from typer.testing import CliRunner

from sync import logs
from sync import routing_state as rs
from sync.alerts import Alerts
from sync.cli import app
from sync.routing_settings import AlertSettings, RoutingSettings
from sync.state import State

MONDAY = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)


def routing(slack, team_hook: str | None = None, rep_hook: str | None = None, escalation: str | None = None):
    reps = [{"name": "maya", "salesforce_id": "005A", "email": "maya@example.com", "manager": "grace",
             **({"slack_webhook": rep_hook} if rep_hook else {})},
            {"name": "grace", "salesforce_id": "005G", "email": "grace@example.com",
             "slack_webhook": slack.url("/grace")}]
    team = {"name": "inbound", "members": {"maya": 1},
            **({"slack_webhook": team_hook} if team_hook else {}),
            **({"escalation_webhook": escalation} if escalation else {})}
    return RoutingSettings(enabled=True, reps=reps, teams=[team], rules=[{"name": "all", "team": "inbound"}])


def settings(smtp=None, **kw) -> AlertSettings:
    base = {"enabled": True, "timeout_s": 1.0, "tries": 3}
    if smtp is not None:
        base.update(smtp_host="127.0.0.1", smtp_port=smtp.port)
    else:
        base["email"] = False
    return AlertSettings(**{**base, **kw})


@pytest.fixture
def state(tmp_path):
    st = State(f"sqlite:///{tmp_path}/state.db")
    rs.alerts_since(st)
    yield st
    st.close()


def add_task(state: State, n: int, owner: str = "005A", body: str = "Why now: visited /pricing 4×.") -> str:
    key = f"ls-task-{n}"
    with state.tx():
        state.task_intent(key, "salesforce", f"00Q{n}", "sql", "run-1",
                          {"owner_id": owner, "subject": f"Follow up: person {n}", "body": body,
                           "due": MONDAY.isoformat()})
        state.task_confirm(key, f"00T{n}")
    return key


def test_one_alert_per_hand_off_and_target_and_never_again(state, slack, smtp):
    add_task(state, 1)
    add_task(state, 2)
    a = Alerts(state, routing(slack, team_hook=slack.url("/team")), settings(smtp))
    counts = a.run(MONDAY, "run-2")
    assert counts == {"salesforce": {"sent": 4}}
    assert sorted(d["path"] for d in slack.delivered) == ["/team", "/team"]
    assert sorted(rcpt[0] for rcpt, _ in smtp.messages) == ["maya@example.com"] * 2
    _, msg = smtp.messages[0]
    assert msg["Subject"].startswith("Follow up: person") and "visited /pricing" in msg.get_payload()
    assert a.run(MONDAY, "run-3") == {}  # nothing new: nothing sent
    assert len(slack.received) == 2 and len(smtp.messages) == 2


def test_transient_slack_errors_are_retried_and_delivered_exactly_once(state, slack):
    add_task(state, 1)
    slack.faults = [500, 429]
    counts = Alerts(state, routing(slack, team_hook=slack.url("/team")), settings()).run(MONDAY, "r")
    assert counts == {"salesforce": {"sent": 1}}
    assert len(slack.received) == 3 and len(slack.delivered) == 1


def test_receiver_down_holds_the_alert_and_a_later_run_sends_it_once(state, slack, tmp_path):
    for n in range(3):
        add_task(state, n)
    down = routing(slack, team_hook="http://127.0.0.1:9/hooks")  # discard port: connection refused
    counts = Alerts(state, down, settings(tries=2)).run(MONDAY, "r1")
    # the first alert failed twice; the other two were not even tried once the endpoint was down
    assert counts == {"salesforce": {"queued": 3}}
    assert {a["status"] for a in rs.alerts(state, ("queued",))} == {"queued"}
    up = routing(slack, team_hook=slack.url("/team"))
    assert Alerts(state, up, settings()).run(MONDAY, "r2") == {"salesforce": {"sent": 3}}
    assert Alerts(state, up, settings()).run(MONDAY, "r3") == {}
    assert len(slack.delivered) == 3


def test_an_alert_failing_every_run_is_held_after_max_attempts(state, slack):
    add_task(state, 1)
    down = routing(slack, team_hook="http://127.0.0.1:9/hooks")
    for _ in range(2):
        Alerts(state, down, settings(tries=1, max_attempts=2)).run(MONDAY, "r")
    assert [a["status"] for a in rs.alerts(state, ("held",))] == ["held"]
    assert Alerts(state, routing(slack, team_hook=slack.url("/t")), settings()).run(MONDAY, "r") == {}
    assert slack.delivered == []


@pytest.mark.parametrize("fault", ["drop", "hang"])
def test_a_lost_answer_is_unconfirmed_and_never_resent(state, slack, fault):
    add_task(state, 1)
    slack.faults, slack.hang_s = [fault], 2.0
    counts = Alerts(state, routing(slack, team_hook=slack.url("/team")), settings(timeout_s=0.5)).run(MONDAY, "r")
    assert counts == {"salesforce": {"unconfirmed": 1}}
    assert Alerts(state, routing(slack, team_hook=slack.url("/team")), settings()).run(MONDAY, "r2") == {}
    assert len(slack.received) == 1  # sent once; at most once means it is not sent again


def test_a_crash_while_sending_leaves_the_alert_unconfirmed(state, slack):
    add_task(state, 1)
    a = Alerts(state, routing(slack, team_hook=slack.url("/team")), settings())
    a._deliver = lambda: {}  # the kill: rows queued, nothing sent yet
    a.run(MONDAY, "r1")
    [row] = rs.alerts(state, ("queued",))
    with state.tx():
        rs.alert_set(state, row["key"], "sending", attempt=True)  # marked, then killed before the answer
    assert Alerts(state, routing(slack, team_hook=slack.url("/team")), settings()).run(MONDAY, "r2") == {}
    assert rs.alert_counts(state) == {"unconfirmed": 1} and slack.received == []


def test_permanent_refusals_are_failed_not_retried(state, slack, smtp):
    add_task(state, 1)
    slack.faults, smtp.faults = [404], [554]
    counts = Alerts(state, routing(slack, team_hook=slack.url("/team")), settings(smtp)).run(MONDAY, "r")
    assert counts == {"salesforce": {"failed": 2}}
    assert len(slack.received) == 1 and smtp.messages == []


def test_smtp_transient_reply_is_retried_once_delivered(state, slack, smtp):
    add_task(state, 1)
    smtp.faults = [451]
    assert Alerts(state, routing(slack), settings(smtp)).run(MONDAY, "r") == {"salesforce": {"sent": 1}}
    assert len(smtp.messages) == 1


def test_slack_text_is_escaped_and_secrets_never_logged(state, slack, capsys):
    add_task(state, 1, body="Ann <!channel> & <https://evil.example|click> \x1b[31mred")
    secret = slack.url("/services/T0/B0/SECRET-TOKEN")
    slack.faults = [500, 500, 500]
    logs.setup("text", verbose=True)
    lib = logging.getLogger("urllib3")
    saved = (lib.level, lib.propagate, lib.disabled)
    logging.getLogger().setLevel(logging.DEBUG)  # urllib3 logs each request line at DEBUG
    lib.setLevel(logging.DEBUG)
    lib.propagate, lib.disabled = True, False
    try:
        Alerts(state, routing(slack, team_hook=secret), settings()).run(MONDAY, "r")  # fails: logged
    finally:
        logging.getLogger().setLevel(logging.WARNING)
        lib.setLevel(saved[0])
        lib.propagate, lib.disabled = saved[1], saved[2]
    err = capsys.readouterr().err
    assert "SECRET-TOKEN" not in err and "/services/***" in err and "rollup_error" in err
    Alerts(state, routing(slack, team_hook=secret), settings()).run(MONDAY, "r2")
    [text] = slack.texts()
    assert "&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;" in text and "\x1b" not in text
    assert "SECRET-TOKEN" not in str(rs.alerts(state, ("sent",)))


def test_no_target_is_looked_at_once(state, slack):
    add_task(state, 1, owner="005UNKNOWN")
    assert Alerts(state, routing(slack), settings()).run(MONDAY, "r") == {}
    assert rs.alert_counts(state) == {"skipped": 1}


def test_sla_escalation_once_to_the_manager_and_the_team_channel(state, slack):
    open_key = add_task(state, 1)
    done_key = add_task(state, 2)
    with state.tx():
        state.db.execute("UPDATE task_ledger SET confirmed_at=? WHERE tenant='default'", (MONDAY.isoformat(),))
        state.task_completed(done_key, MONDAY + timedelta(hours=2))
    hooks = routing(slack, escalation=slack.url("/esc"))
    a = Alerts(state, hooks, settings(sla_business_hours=24))
    a.run(MONDAY + timedelta(hours=23), "r1")  # within the SLA: hand-off alerts only (grace is not the owner)
    assert [d["path"] for d in slack.delivered if d["path"] != "/grace"] == []
    # Friday 09:00 → Monday 01:00 is 16 business hours (the weekend does not count)
    friday = Alerts(state, hooks, settings(sla_business_hours=20))
    with state.tx():
        state.db.execute("UPDATE task_ledger SET confirmed_at=? WHERE tenant='default' AND key=?",
                         ((MONDAY + timedelta(days=4)).isoformat(), open_key))
    assert friday.run(MONDAY + timedelta(days=7) - timedelta(hours=8), "r2") == {}
    with state.tx():
        state.db.execute("UPDATE task_ledger SET confirmed_at=? WHERE tenant='default' AND key=?",
                         (MONDAY.isoformat(), open_key))
    counts = a.run(MONDAY + timedelta(days=2), "r3")  # 48 business hours open
    assert counts == {"salesforce": {"sent": 2}}
    esc = [d for d in slack.delivered if d["body"]["text"].startswith("*SLA passed")]
    assert sorted(d["path"] for d in esc) == ["/esc", "/grace"]  # maya's manager, and the team's channel
    assert "Still open after 48 business hours" in esc[0]["body"]["text"]
    assert a.run(MONDAY + timedelta(days=9), "r4") == {}  # each escalation once
    assert len([d for d in slack.delivered if d["body"]["text"].startswith("*SLA passed")]) == 2


def test_alerts_command_lists_the_ledger_and_requeues_held_ones(state, slack, tmp_path, monkeypatch):
    add_task(state, 1)
    Alerts(state, routing(slack, team_hook=slack.url("/t")), settings(tries=1, max_attempts=1)).run(MONDAY, "r")
    monkeypatch.setenv("LEADSYNC_STATE_URL", f"sqlite:///{tmp_path}/state.db")
    monkeypatch.delenv("LEADSYNC_CONFIG", raising=False)
    slack.faults = []
    with state.tx():
        rs.alert_set(state, rs.alerts(state, ("sent",))[0]["key"], "held", "test")
    result = CliRunner().invoke(app, ["alerts", "--retry", "--json"], catch_exceptions=False)
    body = json.loads(result.stdout)
    assert body["requeued"] == 1 and body["alerts"][0]["target"] == "team:inbound:slack"
    assert "/t" not in result.stdout  # the target's name, never its URL
    assert rs.alert_counts(state) == {"queued": 1}
