"""Alerts for created hand-offs and SLA escalations, through a ledger: each at most once.

Each run, after the hand-offs:
1. alert rows left `sending` by a killed run become `unconfirmed` (they may have gone out: never re-sent);
2. every hand-off task created since alerts were enabled that has no alert row gets one row per target
   (the owner's Slack webhook and email, the team's channel, else the default channel), committed first;
   a task with no target gets one `skipped` row, so it is looked at once;
3. every still-open task past the SLA (business hours, the report's definition) gets its escalation rows
   likewise (the owner's manager, the team's escalation channel, else the default one);
4. queued rows are sent: marked `sending` (committed), sent with bounded timeouts and a few quick retries
   on transient errors, then `sent`; a transient failure leaves the row `queued` for the next run (and
   the endpoint is not tried again in this run), a refusal makes it `failed`, a lost answer `unconfirmed`.
Guarantee: at most once per hand-off and target. An alert is lost only if the process dies, or the answer
is lost, after the request went out; it is then `unconfirmed` and reported, never repeated.
Alerts never fail or block a sync: every error ends here, as a row's status.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests
from pydantic import SecretStr

from sync import routing_state as rs
from sync.alert_send import Ambiguous, NotSent, Smtp, post_slack, send_email, slack_text, with_retries
from sync.report import business_hours, parse_time
from sync.route import RoutingPolicy
from sync.routing_settings import AlertSettings, RoutingSettings
from sync.state import State

log = logging.getLogger("leadsync.alerts")


@dataclass(frozen=True)
class Target:
    name: str  # `rep:maya:slack`, `team:emea:slack`, `default:slack`, `rep:maya:email`
    channel: str  # slack or email


class Alerts:
    def __init__(self, state: State, routing: RoutingSettings, settings: AlertSettings,
                 session: requests.Session | None = None) -> None:
        self.state, self.routing, self.settings = state, routing, settings
        self.policy: RoutingPolicy = routing.policy()
        self.session = session

    # ------------------------------------------------------------------ one run
    def run(self, now: datetime, run_id: str) -> dict[str, dict[str, int]]:
        """Queue and send; returns counts per CRM source of the task (`sent`, `queued`, …)."""
        with self.state.tx():
            for a in rs.alerts(self.state, ("sending",)):
                rs.alert_set(self.state, a["key"], "unconfirmed", "the run sending it ended before its answer")
        since = rs.alerts_since(self.state)
        self._queue_handoffs(since, run_id)
        if self.settings.escalate:
            self._queue_escalations(since, now, run_id)
        return self._deliver()

    def _queue_handoffs(self, since: datetime, run_id: str) -> None:
        tasks = rs.unalerted_tasks(self.state, since, "handoff")
        with self.state.tx():
            for t in tasks:
                rep, team = self._owner(t)
                p = t["payload"]
                payload = {"source": t["source"], "record": t["contact_id"], "task": t["crm_id"],
                           "owner": rep or t["owner_id"], "subject": p.get("subject") or "",
                           "text": p.get("body") or ""}
                self._queue("handoff", t, self._handoff_targets(rep, team), payload, run_id)

    def _queue_escalations(self, since: datetime, now: datetime, run_id: str) -> None:
        sla = self.settings.sla_business_hours
        with self.state.tx():
            for t, hours in overdue(self.state, since, now, sla):
                rep, team = self._owner(t)
                p = t["payload"]
                who = rep or t["owner_id"] or "nobody"
                moved = f" Re-routed from {p['_rerouted_from']} to {who}." if p.get("_rerouted_from") else ""
                payload = {"source": t["source"], "record": t["contact_id"], "task": t["crm_id"], "owner": who,
                           "subject": f"SLA passed: {p.get('subject') or 'hand-off'}",
                           "text": f"Still open after {hours:.0f} business hours (SLA {sla:g} h), owner {who}."
                                   f"{moved}\n" + (p.get("body") or "")}
                targets = self._escalation_targets(rep, team)
                if moved:  # the new owner hears of it too
                    targets += [x for x in self._handoff_targets(rep, None) if x.name.startswith("rep:")]
                self._queue("escalation", t, targets, payload, run_id)

    def _queue(self, kind: str, t: dict[str, Any], targets: list[Target], payload: dict[str, Any],
               run_id: str) -> None:
        if not targets:
            rs.queue_alert(self.state, f"{kind}:{t['key']}:none", kind, t["key"], "none", "none", payload, run_id)
            rs.alert_set(self.state, f"{kind}:{t['key']}:none", "skipped", "no alert target configured")
            return
        for target in targets:
            rs.queue_alert(self.state, f"{kind}:{t['key']}:{target.name}", kind, t["key"], target.channel,
                           target.name, payload, run_id)

    def _owner(self, t: dict[str, Any]) -> tuple[str | None, str | None]:
        """The task owner's rep name and the team routing gave the hand-off to (if routing did)."""
        rep = self.policy.rep_by_id(t["source"], t["owner_id"]) if t["owner_id"] else None
        key = f"{t['source']}:{t['contact_id']}"
        keys = [key]
        row = self.state.db.execute("SELECT origin FROM handoffs WHERE tenant=? AND target=? AND crm_id=?",
                                    (self.state.tenant, t["source"], t["contact_id"])).fetchone()
        if row:
            keys.append(row[0])
        rows = rs.assignment_rows(self.state, keys)
        name = rep.name if rep else None
        if name is None and rows and rows[0]["rep"] in self.policy.reps:
            name = rows[0]["rep"]
        team = rows[0]["team"] if rows else None
        if team is None and name:  # kept owners and earlier hand-offs: the first team the rep is in
            team = next((t.name for t in self.policy.teams.values() if name in dict(t.members)), None)
        return name, team

    def _handoff_targets(self, rep: str | None, team: str | None) -> list[Target]:
        out = []
        r = self.routing.rep(rep)
        if r and r.slack_webhook:
            out.append(Target(f"rep:{r.name}:slack", "slack"))
        if r and r.email and self._smtp():
            out.append(Target(f"rep:{r.name}:email", "email"))
        t = self.routing.team(team)
        if t and t.slack_webhook:
            out.append(Target(f"team:{t.name}:slack", "slack"))
        if not any(x.channel == "slack" for x in out) and self.settings.slack_webhook:
            out.append(Target("default:slack", "slack"))
        return out

    def _escalation_targets(self, rep: str | None, team: str | None) -> list[Target]:
        out = []
        r = self.routing.rep(rep)
        manager = self.routing.rep(r.manager) if r and r.manager else None
        if manager and manager.slack_webhook:
            out.append(Target(f"manager:{manager.name}:slack", "slack"))
        if manager and manager.email and self._smtp():
            out.append(Target(f"manager:{manager.name}:email", "email"))
        t = self.routing.team(team)
        if t and t.escalation_webhook:
            out.append(Target(f"team:{t.name}:escalation", "slack"))
        if not out and self.settings.escalation_webhook:
            out.append(Target("default:escalation", "slack"))
        return out

    # ------------------------------------------------------------------ delivery
    def _smtp(self) -> Smtp | None:
        s = self.settings
        if not (s.email and s.smtp_host):
            return None
        return Smtp(s.smtp_host, s.smtp_port, s.email_from, s.smtp_username, s.smtp_password, s.smtp_starttls)

    def _webhook(self, target: str) -> SecretStr | None:
        kind, _, rest = target.partition(":")
        name, _, what = rest.partition(":")
        if kind in ("rep", "manager"):
            r = self.routing.rep(name)
            return r.slack_webhook if r else None
        if kind == "team":
            t = self.routing.team(name)
            return (t.escalation_webhook if what == "escalation" else t.slack_webhook) if t else None
        return self.settings.escalation_webhook if name == "escalation" else self.settings.slack_webhook

    def _email(self, target: str) -> str | None:
        r = self.routing.rep(target.split(":")[1])
        return r.email if r else None

    def _sender(self, a: dict[str, Any]) -> Callable[[], None] | None:
        p, s = a["payload"], self.settings
        if a["channel"] == "slack":
            hook = self._webhook(a["target"])
            if hook is None:
                return None
            text = f"*{slack_text(p['subject'])}*\n{slack_text(p['text'])}"
            return lambda: post_slack(hook, text, s.timeout_s, self.session)
        smtp, to = self._smtp(), self._email(a["target"])
        if smtp is None or not to:
            return None
        return lambda: send_email(smtp, to, p["subject"], p["text"], a["key"], s.timeout_s)

    def _deliver(self) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        down: set[str] = set()  # endpoints that failed transiently in this run: not tried again now
        for a in rs.alerts(self.state, ("queued",)):
            source = a["payload"].get("source") or ""
            c = counts.setdefault(source, {})
            endpoint = "smtp" if a["channel"] == "email" else a["target"]  # one SMTP server serves every rep
            if endpoint in down:
                c["queued"] = c.get("queued", 0) + 1
                continue
            send = self._sender(a)
            if send is None:
                status, error = "failed", f"target {a['target']} is no longer configured"
            else:
                with self.state.tx():
                    rs.alert_set(self.state, a["key"], "sending", attempt=True)
                status, error = self._send(send, a)
                if status == "queued":
                    down.add(endpoint)
            with self.state.tx():
                rs.alert_set(self.state, a["key"], status, error)
            c[status] = c.get(status, 0) + 1
            if status != "sent":
                log.warning("alert %s (%s): %s", a["key"], a["target"], error)
        return counts

    def _send(self, send: Callable[[], None], a: dict[str, Any]) -> tuple[str, str | None]:
        try:
            with_retries(send, self.settings.tries)
            return "sent", None
        except NotSent as exc:
            if not exc.transient:
                return "failed", str(exc)
            held = a["attempts"] + 1 >= self.settings.max_attempts
            return ("held" if held else "queued"), str(exc)
        except Ambiguous as exc:
            return "unconfirmed", str(exc)
        except Exception as exc:  # a bug must not cost the sync; the alert may have gone out: never resent
            log.exception("alert %s: unexpected error", a["key"])
            return "unconfirmed", type(exc).__name__


def overdue(state: State, since: datetime, now: datetime, sla_hours: float) -> list[tuple[dict[str, Any], float]]:
    """Open hand-off tasks past the SLA (business hours from confirmation) not escalated yet."""
    out = []
    for t in rs.unalerted_tasks(state, since, "escalation"):
        start = parse_time(t["confirmed_at"]) or parse_time(t["created_at"])
        hours = business_hours(start, now) if start else 0.0
        if not t["completed_at"] and hours > sla_hours:
            out.append((t, hours))
    return out


def release(state: State, keys: list[str]) -> int:
    """A person re-queues held / failed alerts (`leadsync alerts --retry`)."""
    with state.tx():
        for key in keys:
            state.db.execute("UPDATE alerts SET status='queued', attempts=0 WHERE tenant=? AND key=? AND status IN "
                             "('held', 'failed')", (state.tenant, key))
    return len(keys)
