"""Routing and alert rows in the state store (tables of migration 7), beside `sync.state.State`.

Functions over a `State`, so the store's class stays one thing; each is one statement or a few, run inside
the caller's transaction (`state.tx()`), and each scoped to the state's tenant like the State's own.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

from sync.db import marks, upsert_sql
from sync.route import Assignment, Previous
from sync.state import State, _dicts

#: Watermark (source, stream) of the moment alerts were first enabled: older tasks are never alerted.
ALERTS_SOURCE = "~alerts"
ALERTS_SINCE = "since"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


# ------------------------------------------------------------------ assignments
def previous(state: State, record_keys: Iterable[str]) -> Previous | None:
    """The latest assignment of any of the person's records."""
    keys = list(record_keys)
    if not keys:
        return None
    row = state.db.execute(
        f"SELECT rep, team, rule, at FROM route_assignments WHERE tenant=? AND record_key IN ({marks(len(keys))}) "
        "ORDER BY at DESC, record_key LIMIT 1", (state.tenant, *keys)).fetchone()
    return Previous(row[0], row[1], row[2], row[3]) if row else None


def assignment_rows(state: State, record_keys: Iterable[str]) -> list[dict[str, Any]]:
    keys = list(record_keys)
    if not keys:
        return []
    rows = _dicts(state.db.execute(
        f"SELECT record_key, person, rep, team, rule, owner_id, reasons, run_id, at FROM route_assignments "
        f"WHERE tenant=? AND record_key IN ({marks(len(keys))}) ORDER BY at DESC", (state.tenant, *keys)))
    for r in rows:
        r["reasons"] = json.loads(r["reasons"])
    return rows


def save_assignment(state: State, person: str, record_keys: Sequence[str], a: Assignment, run_id: str) -> None:
    """The person's rep, under every record key they have now; a round-robin turn moves the team's counter."""
    at = _now()
    for key in record_keys:
        state.db.execute(
            upsert_sql("route_assignments", ["tenant", "record_key", "person", "rep", "team", "rule", "owner_id",
                                             "reasons", "run_id", "at"], ["tenant", "record_key"]),
            (state.tenant, key, person, a.rep, a.team, a.rule, a.owner_id, json.dumps(list(a.reasons)), run_id, at))
    if a.counted and a.team and a.rep:
        state.db.execute(
            "INSERT INTO route_counters (tenant, team, rep, assigned) VALUES (?,?,?,1) ON CONFLICT (tenant, team, rep) "
            "DO UPDATE SET assigned=route_counters.assigned + 1", (state.tenant, a.team, a.rep))


def counters(state: State) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for team, rep, n in state.db.execute("SELECT team, rep, assigned FROM route_counters WHERE tenant=?",
                                         (state.tenant,)):
        out.setdefault(team, {})[rep] = int(n)
    return out


def owner_written(state: State, source: str, record_id: str, field_name: str) -> str | None:
    """The owner leadsync itself last set on this record (audited write, or the hand-off that created it);
    any other owner was set by someone else and is never overwritten."""
    written = state.audited_value(source, record_id, field_name)
    if written is not None:
        return written
    row = state.db.execute("SELECT payload FROM handoffs WHERE tenant=? AND target=? AND crm_id=? AND status='created'",
                           (state.tenant, source, record_id)).fetchone()
    if row:
        values = json.loads(row[0]).get("values") or {}
        return values.get("hubspot_owner_id" if source == "hubspot" else "owner_id")
    return None


# ------------------------------------------------------------------ alert ledger
def alerts_since(state: State) -> datetime:
    """When alerts were first enabled here (set now on the first call): tasks from before are not alerted."""
    value = state.watermarks(ALERTS_SOURCE).get(ALERTS_SINCE)
    if value is None:
        value = _now()
        with state.tx():
            state.set_watermark(ALERTS_SOURCE, ALERTS_SINCE, value)
    return datetime.fromisoformat(value)


def unalerted_tasks(state: State, since: datetime, kind: str) -> list[dict[str, Any]]:
    """Created hand-off tasks from `since` on that have no `kind` alert row yet (crash-safe: asked each run)."""
    rows = _dicts(state.db.execute(
        "SELECT t.key, t.source, t.contact_id, t.stage, t.crm_id, t.run_id, t.owner_id, t.confirmed_at, "
        "t.created_at, t.completed_at, t.payload FROM task_ledger t WHERE t.tenant=? AND t.status='created' "
        "AND t.created_at >= ? AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.tenant = t.tenant AND a.task_key = t.key "
        "AND a.kind = ?) ORDER BY t.key", (state.tenant, since.isoformat(), kind)))
    for r in rows:
        r["payload"] = json.loads(r["payload"])
    return rows


def queue_alert(state: State, key: str, kind: str, task_key: str, channel: str, target: str,
                payload: dict[str, Any], run_id: str) -> None:
    """One alert for one target, committed before any send; a key already known keeps its state."""
    state.db.execute(
        "INSERT INTO alerts (tenant, key, kind, task_key, channel, target, status, attempts, payload, run_id, "
        "created_at) VALUES (?,?,?,?,?,?, 'queued', 0, ?, ?, ?) ON CONFLICT (tenant, key) DO NOTHING",
        (state.tenant, key, kind, task_key, channel, target, json.dumps(payload), run_id, _now()))


def alerts(state: State, statuses: Sequence[str] = ("queued",)) -> list[dict[str, Any]]:
    rows = _dicts(state.db.execute(
        "SELECT key, kind, task_key, channel, target, status, attempts, error, payload, run_id, created_at, sent_at "
        f"FROM alerts WHERE tenant=? AND status IN ({marks(len(statuses))}) ORDER BY created_at, key",
        (state.tenant, *statuses)))
    for r in rows:
        r["payload"] = json.loads(r["payload"])
    return rows


def alert_set(state: State, key: str, status: str, error: str | None = None, attempt: bool = False) -> None:
    state.db.execute(
        "UPDATE alerts SET status=?, error=?, attempts=attempts + ?, sent_at=coalesce(?, sent_at) "
        "WHERE tenant=? AND key=?",
        (status, error, 1 if attempt else 0, _now() if status == "sent" else None, state.tenant, key))


def alert_counts(state: State) -> dict[str, int]:
    return {status: int(n) for status, n in state.db.execute(
        "SELECT status, count(*) FROM alerts WHERE tenant=? GROUP BY status", (state.tenant,))}
