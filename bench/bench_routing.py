"""Owner routing and the alert ledger at volume: the pure rules per hand-off (CPU), and the state work a run
adds per routed person (assignment + counter rows, SQLite) and per alert (ledger rows, sent to a loopback
Slack receiver). Prints one JSON object."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections import Counter
from datetime import date, datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sync import routing_state as rs  # noqa: E402
from sync.alerts import Alerts  # noqa: E402
from sync.route import Assignment, Availability, Facts, Rep, RoutingPolicy, Rule, Team, route  # noqa: E402
from sync.routing_settings import AlertSettings, RoutingSettings  # noqa: E402
from sync.state import State  # noqa: E402
from tests.routing.receivers import SlackReceiver  # noqa: E402

COUNTRIES = ["Germany", "France", "United States", "Canada", "Japan", "India", "Brazil", "Poland"]


def policy() -> RoutingPolicy:
    reps = {f"r{i}": Rep(f"r{i}", {"salesforce": f"005{i:015d}"}) for i in range(12)}
    teams = {"emea": Team("emea", tuple((f"r{i}", 1 + i % 3) for i in range(0, 5))),
             "na": Team("na", tuple((f"r{i}", 1 + i % 2) for i in range(5, 10))),
             "ent": Team("ent", (("r10", 1), ("r11", 1)))}
    rules = (Rule("ent", "ent", min_size=5000), Rule("emea", "emea", frozenset({"germany", "france", "poland"})),
             Rule("na", "na", frozenset({"united states", "canada"})))
    return RoutingPolicy(reps, teams, rules, True, "r0")


def bench_rules(n: int) -> dict:
    p = policy()
    avail = Availability({"salesforce": frozenset({"005000000000000000003"})}, frozenset({"salesforce"}))
    counters: dict[str, dict[str, int]] = {}
    facts = [Facts("salesforce", COUNTRIES[i % len(COUNTRIES)], None, (i * 37) % 12000,
                   (("salesforce", "00GQUEUE"),) if i % 3 else ()) for i in range(n)]
    rules = Counter()
    started = time.perf_counter()
    for f in facts:
        a = route(p, f, avail, date(2026, 12, 3), counters)
        rules[a.rule] += 1
        if a.counted:
            team = counters.setdefault(a.team, {})
            team[a.rep] = team.get(a.rep, 0) + 1
    wall = time.perf_counter() - started
    return {"persons": n, "wall_s": round(wall, 3), "persons_per_s": round(n / wall), "by_rule": dict(rules)}


def bench_state(n: int, alerts: int) -> dict:
    tmp = tempfile.mkdtemp()
    state = State(f"sqlite:///{tmp}/state.db")
    rs.alerts_since(state)
    a = Assignment("emea", "005A", "r1", "emea", ("rule 'emea' → team emea; round robin picked r1",), True)
    started = time.perf_counter()
    for i in range(n):
        keys = [f"hubspot:{i}", f"salesforce:00Q{i}"]
        rs.previous(state, keys)
        with state.tx():
            rs.save_assignment(state, f"hubspot:{i}", keys, a, "bench")
    persist = time.perf_counter() - started
    for i in range(alerts):
        with state.tx():
            state.task_intent(f"ls-{i}", "salesforce", f"00Q{i}", "sql", "bench",
                              {"owner_id": "005A", "subject": f"Follow up {i}", "body": "Why now: pricing 4×."})
            state.task_confirm(f"ls-{i}", f"00T{i}")
    slack = SlackReceiver()
    routing = RoutingSettings(enabled=True, reps=[{"name": "r1", "salesforce_id": "005A"}],
                              teams=[{"name": "emea", "members": {"r1": 1}, "slack_webhook": slack.url("/emea")}],
                              rules=[{"name": "emea", "team": "emea"}])
    started = time.perf_counter()
    counts = Alerts(state, routing, AlertSettings(enabled=True, email=False)).run(datetime.now(timezone.utc), "b")
    send = time.perf_counter() - started
    slack.stop()
    return {"routed_persons": n, "persist_wall_s": round(persist, 3), "persons_per_s": round(n / persist),
            "alerts": alerts, "alerts_wall_s": round(send, 3), "alerts_per_s": round(alerts / send),
            "alert_outcomes": counts, "delivered": len(slack.delivered)}


if __name__ == "__main__":
    out = {"rules": bench_rules(100_000), "state": bench_state(2_000, 500)}
    print(json.dumps(out, sort_keys=True))
