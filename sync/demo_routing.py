"""What `leadsync demo` shows of owner routing: the demo team's rules over the sandbox's users, one routed
hand-off with every reason, and the Slack alert it would send (the demo has no webhook to send it to)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from rich.console import Console

from sandbox.seed import OWNERS
from sync import routing_state as rs
from sync.alert_send import slack_text
from sync.routing_settings import AlertSettings, RoutingSettings
from sync.safe_text import crm, plain
from sync.state import State


def demo_routing(today: date) -> tuple[RoutingSettings, AlertSettings]:
    """Territories (EMEA, Americas), enterprise accounts to their own team, round robin by weight; pat is
    inactive in both CRMs, leo is away this week; ines is the fallback."""
    reps = [{"name": o.first_name.lower(), "hubspot_id": o.hubspot_id, "salesforce_id": o.salesforce_id,
             "email": o.email, **({"manager": "grace"} if o.first_name != "Grace" else {})} for o in OWNERS]
    for r in reps:
        if r["name"] == "leo":
            r["away"] = [{"start": today - timedelta(days=1), "end": today + timedelta(days=6)}]
    routing = RoutingSettings(
        enabled=True, keep_active_owner=False, reps=reps, fallback="ines",
        regions={"emea": ["United Kingdom", "Germany", "France", "Poland", "Nigeria"],
                 "americas": ["United States", "Canada", "Brazil", "Mexico"]},
        teams=[{"name": "enterprise", "members": {"grace": 1, "diego": 1}},
               {"name": "emea", "members": {"maya": 2, "jonas": 1, "pat": 1}},
               {"name": "americas", "members": {"aisha": 1, "leo": 1, "ines": 1}}],
        rules=[{"name": "enterprise", "team": "enterprise", "min_company_size": 1000},
               {"name": "emea", "team": "emea", "regions": ["emea"]},
               {"name": "americas", "team": "americas", "regions": ["americas"]}],
        write_owner={"salesforce": ["sql"]},
    )
    return routing, AlertSettings(enabled=True, escalate=False)


def routing_story(state: State, out: Console) -> dict[str, Any]:
    """Print the routing part of the demo; returns its figures (also for `--json`)."""
    rules = dict(state.db.execute(
        "SELECT rule, count(DISTINCT person) FROM route_assignments WHERE tenant=? GROUP BY rule ORDER BY rule",
        (state.tenant,)).fetchall())
    teams: dict[str, dict[str, int]] = {}
    for team, rep, n in state.db.execute("SELECT team, rep, assigned FROM route_counters WHERE tenant=? "
                                         "ORDER BY team, rep", (state.tenant,)):
        teams.setdefault(team, {})[rep] = int(n)
    figures: dict[str, Any] = {"persons_by_rule": rules, "round_robin": teams, "example": None}
    out.rule("Owner routing and alerts")
    out.print("hand-offs by routing rule: " + ", ".join(f"{crm(k)} {v}" for k, v in rules.items()))
    for team, counts in teams.items():
        out.print(f"  round robin in {crm(team)}: " + ", ".join(f"{crm(r)} {n}" for r, n in counts.items()))
    example = _example(state)
    if example is None:
        return figures
    task, row = example
    p = task["payload"]
    text = f"*{slack_text(p.get('subject') or '')}*\n{slack_text(p.get('body') or '')}"
    out.print(f"e.g. {crm(p.get('subject'))}: [bold]{crm(row['rep'])}[/] (team {crm(row['team'])}, "
              f"rule {crm(row['rule'])}), {task['source']} task {task['crm_id']}")
    out.print('  the Slack alert it would send (POST {"text": …} to the team\'s incoming webhook; `&`, `<`, `>` '
              "escaped):")
    for line in text.splitlines():
        out.print("    " + plain(line), markup=False, highlight=False)
    figures["example"] = {"task": task["crm_id"], "rep": row["rep"], "team": row["team"], "rule": row["rule"],
                          "reasons": row["reasons"], "slack": {"text": text}}
    return figures


def _example(state: State) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """A created hand-off task routed by a territory rule (else any routed one), with its assignment."""
    best = None
    rows_ = state.db.execute("SELECT key, source, contact_id, crm_id, payload FROM task_ledger "
                             "WHERE tenant=? AND status='created' ORDER BY key", (state.tenant,)).fetchall()
    for key, source, contact_id, crm_id, payload in rows_:
        t = {"key": key, "source": source, "contact_id": contact_id, "crm_id": crm_id, "payload": json.loads(payload)}
        keys = [f"{t['source']}:{t['contact_id']}"]
        origin = state.db.execute("SELECT origin FROM handoffs WHERE tenant=? AND crm_id=?",
                                  (state.tenant, t["contact_id"])).fetchone()
        if origin:
            keys.append(origin[0])
        rows = rs.assignment_rows(state, keys)
        if not rows:
            continue
        if rows[0]["rule"] in ("emea", "americas"):
            return t, rows[0]
        best = best or (t, rows[0])
    return best
