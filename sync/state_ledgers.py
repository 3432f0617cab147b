"""The state's ledgers: hand-offs, follow-up tasks, the audit log, failures and data issues.

A mixin of `State` (sync/state.py): every statement is scoped to `self.tenant`; each ledger entry is written
before its CRM call (exactly once), and settled after it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timezone
from itertools import groupby
from typing import Any

from sync.db import Database, marks, upsert_sql
from sync.state_codec import Codec
from sync.state_rows import (
    _AUDIT_COLUMNS,
    _EMAIL_JOIN,
    _FAILURE_COLUMNS,
    _audit_text,
    _dicts,
    _dt,
    _from_ms,
    _iso,
    _ms,
)


class LedgersMixin:
    """The state's ledgers: hand-offs, follow-up tasks, the audit log, failures and data issues."""

    db: Database
    tenant: str
    codec: Codec

    # ------------------------------------------------------------- hand-off ledger
    def handoff_plan(self, key: str, origin: str, target: str, object_type: str, run_id: str,
                     payload: dict[str, Any]) -> None:
        """Record a hand-off before anything is sent; one already under way or done keeps its state."""
        self.db.execute(
            "INSERT INTO handoffs (tenant, key, origin, target, object_type, status, run_id, created_at, payload) "
            "VALUES (?,?,?,?,?, 'planned', ?, ?, ?) ON CONFLICT (tenant, key) DO UPDATE SET payload=excluded.payload, "
            "run_id=excluded.run_id WHERE handoffs.status='planned'",
            (self.tenant, key, origin, target, object_type, run_id, _iso(datetime.now(timezone.utc)),
             json.dumps(payload)),
        )

    def handoffs(self, target: str | None = None, statuses: Sequence[str] = ("planned", "pending")) -> list[dict[str, Any]]:
        q = ("SELECT key, origin, target, object_type, status, crm_id, run_id, payload FROM handoffs "
             f"WHERE tenant=? AND status IN ({marks(len(statuses))})" + (" AND target=?" if target else "")
             + " ORDER BY key")
        rows = _dicts(self.db.execute(q, (self.tenant, *statuses, *((target,) if target else ()))))
        for r in rows:
            r["payload"] = json.loads(r["payload"])
        return rows

    def handoff_set(self, key: str, status: str, crm_id: str | None = None, run_id: str | None = None) -> None:
        self.db.execute(
            "UPDATE handoffs SET status=?, crm_id=coalesce(?, crm_id), run_id=coalesce(?, run_id), "
            "confirmed_at=? WHERE tenant=? AND key=?",
            (status, crm_id, run_id, _iso(datetime.now(timezone.utc)), self.tenant, key))

    def handoff_entry(self, key: str) -> dict[str, Any] | None:
        rows = _dicts(self.db.execute(
            "SELECT key, origin, target, object_type, status, crm_id, run_id, payload FROM handoffs "
            "WHERE tenant=? AND key=?", (self.tenant, key)))
        for r in rows:
            r["payload"] = json.loads(r["payload"])
        return rows[0] if rows else None

    def tasks_on(self, source: str, record_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The live tasks leadsync created on these records (undo of a hand-off deletes them with it)."""
        out: list[dict[str, Any]] = []
        for i in range(0, len(record_ids), 500):
            part = list(record_ids[i : i + 500])
            out += _dicts(self.db.execute(
                f"SELECT key, contact_id, crm_id FROM task_ledger WHERE tenant=? AND source=? AND status='created' "
                f"AND crm_id IS NOT NULL AND contact_id IN ({marks(len(part))})", (self.tenant, source, *part)))
        return out

    def handoffs_for_run(self, run_id: str) -> list[dict[str, Any]]:
        return _dicts(self.db.execute(
            "SELECT key, origin, target, object_type, status, crm_id FROM handoffs WHERE tenant=? AND run_id=? "
            "ORDER BY key", (self.tenant, run_id)))

    # ------------------------------------------------------------- audit
    def audit(self, run_id: str, source: str, object_type: str, record_id: str,
              changes: dict[str, tuple[str | None, str | None]]) -> None:
        self._audit_writes(run_id, "ok", [(source, object_type, record_id,
                                           [(f, b, a) for f, (b, a) in changes.items()])])

    def audit_intent(self, run_id: str, changes: Sequence[Any]) -> None:
        """Written before the CRM call, so even a write whose answer a crash swallowed is traceable."""
        self._audit_writes(run_id, "pending", [(c.source, c.object_type, c.record_id,
                                                [(f, fc.before, fc.after) for f, fc in c.fields.items()])
                                               for c in changes])

    def _audit_writes(self, run_id: str, status: str, writes: Sequence[tuple[str, str, str, list[Any]]]) -> None:
        """One audit row per record write, its field changes packed together (one dictionary per source)."""
        at = _ms(datetime.now(timezone.utc))
        rows = []
        for source, group in groupby((w for w in writes if w[3]), key=lambda w: w[0]):
            part = list(group)
            packed = self.codec.pack(f"audit:{source}", [_audit_text(w[3]) for w in part])
            rows += [(self.tenant, run_id, source, o, r, p, at, status) for (_, o, r, _), p in zip(part, packed,
                                                                                                    strict=True)]
        self.db.executemany(f"INSERT INTO audit ({_AUDIT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)", rows)

    def _audit_changes(self, source: str, packed: bytes) -> list[list[str | None]]:
        return json.loads(self.codec.unpack(f"audit:{source}", packed))

    def audit_settle(self, run_id: str, record_id: str, status: str) -> None:
        self.audit_settle_many(run_id, [record_id], status)

    def audit_settle_many(self, run_id: str, record_ids: Sequence[str], status: str) -> None:
        self.db.executemany(
            "UPDATE audit SET status=? WHERE tenant=? AND run_id=? AND record_id=? AND status='pending'",
            [(status, self.tenant, run_id, r) for r in record_ids])

    def audit_for_run(self, run_id: str) -> list[dict[str, Any]]:
        """The run's accepted (and still-pending) writes in the order they were made, one entry per field."""
        out = []
        for source, object_type, record_id, changes, at, status, email in self.db.execute(
                "SELECT a.source, a.object_type, a.record_id, a.changes, a.at, a.status, c.email "
                f"FROM audit a {_EMAIL_JOIN.format(t='a', id='record_id')} WHERE a.tenant=? AND a.run_id=? "
                "AND a.status != 'rejected' ORDER BY a.seq", (self.tenant, run_id)):
            when = _iso(_from_ms(at))
            out += [{"source": source, "object_type": object_type, "record_id": record_id, "field": f,
                     "before": before, "after": after, "at": when, "status": status, "email": email}
                    for f, before, after in self._audit_changes(source, changes)]
        return out

    def audited_value(self, source: str, record_id: str, field_name: str) -> str | None:
        """What leadsync's last accepted write set this field of this record to (None: it never wrote it)."""
        for (changes,) in self.db.execute(
                "SELECT changes FROM audit WHERE tenant=? AND source=? AND record_id=? AND status='ok' "
                "ORDER BY seq DESC", (self.tenant, source, record_id)):
            for f, _, after in reversed(self._audit_changes(source, changes)):
                if f == field_name:
                    return after
        return None

    def undo_runs_of(self, run_id: str) -> list[str]:
        """The undo runs (finished or killed) that marked themselves as undoing `run_id`, oldest first."""
        return [r[0] for r in self.db.execute(
            "SELECT run_id FROM audit WHERE tenant=? AND object_type='undo' AND record_id=? ORDER BY seq",
            (self.tenant, run_id))]

    # ------------------------------------------------------------- task ledger
    def task_entry(self, key: str) -> dict[str, Any] | None:
        rows = _dicts(self.db.execute("SELECT key, status, crm_id, run_id FROM task_ledger WHERE tenant=? AND key=?",
                                      (self.tenant, key)))
        return rows[0] if rows else None

    def task_intent(self, key: str, source: str, contact_id: str, stage: str, run_id: str,
                    payload: dict[str, Any]) -> None:
        """Written (and committed) before the create call: a crash after it is recoverable."""
        self.db.execute(
            "INSERT INTO task_ledger (tenant, key, source, contact_id, stage, status, run_id, created_at, owner_id, "
            "due_at, payload) VALUES (?,?,?,?,?, 'pending', ?, ?, ?, ?, ?) ON CONFLICT (tenant, key) "
            # qualified: PostgreSQL finds a bare `status` ambiguous between the row and `excluded`
            "DO UPDATE SET run_id=excluded.run_id, "
            "status=CASE WHEN task_ledger.status='created' THEN task_ledger.status ELSE 'pending' END",
            (self.tenant, key, source, contact_id, stage, run_id, _iso(datetime.now(timezone.utc)),
             payload.get("owner_id"), payload.get("due"), json.dumps(payload)),
        )

    def task_cancel(self, key: str) -> None:
        """The transition the task was for did not happen (the stage write was rejected)."""
        self.db.execute("DELETE FROM task_ledger WHERE tenant=? AND key=? AND status='pending'", (self.tenant, key))

    def task_confirm(self, key: str, crm_id: str | None, status: str = "created") -> None:
        self.db.execute(
            "UPDATE task_ledger SET status=?, crm_id=?, confirmed_at=? WHERE tenant=? AND key=?",
            (status, crm_id, _iso(datetime.now(timezone.utc)), self.tenant, key),
        )

    def task_completed(self, key: str, completed_at: datetime) -> None:
        """Read back from the CRM on sync: the owner closed the task."""
        self._set_task(key, "completed_at=?", _iso(completed_at))

    def task_owner(self, key: str, owner_id: str) -> None:
        """Read back from the CRM on sync: who holds the task now (routed, defaulted or reassigned)."""
        self._set_task(key, "owner_id=?", owner_id)

    def task_undone(self, key: str) -> None:
        """Undo closed the task: it is no longer the run's live hand-off, and not the owner's doing."""
        self._set_task(key, "status='undone'")

    def _set_task(self, key: str, assignment: str, *values: Any) -> None:
        self.db.execute(f"UPDATE task_ledger SET {assignment} WHERE tenant=? AND key=?", (*values, self.tenant, key))

    def open_tasks(self, source: str) -> list[dict[str, Any]]:
        return _dicts(self.db.execute(
            "SELECT key, crm_id, owner_id FROM task_ledger WHERE tenant=? AND source=? AND status='created' "
            "AND completed_at IS NULL ORDER BY key", (self.tenant, source)
        ))

    def pending_tasks(self, source: str) -> list[dict[str, Any]]:
        rows = _dicts(self.db.execute(
            "SELECT key, contact_id, stage, run_id, payload FROM task_ledger WHERE tenant=? AND source=? "
            "AND status='pending'", (self.tenant, source),
        ))
        for r in rows:
            r["payload"] = json.loads(r["payload"])
        return rows

    def tasks_for_run(self, run_id: str) -> list[dict[str, Any]]:
        return _dicts(self.db.execute(
            "SELECT t.key, t.source, t.contact_id, t.status, t.crm_id, t.owner_id, c.email FROM task_ledger t "
            f"{_EMAIL_JOIN.format(t='t', id='contact_id')} WHERE t.tenant=? AND t.run_id=? ORDER BY t.key",
            (self.tenant, run_id)
        ))

    def task_entries(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Ledger rows by key, with what settling needs: when the intent was written and the payload's
        `_sent_at` (when a create was last sent)."""
        out: dict[str, dict[str, Any]] = {}
        for i in range(0, len(keys), 500):
            part = list(keys[i : i + 500])
            for r in _dicts(self.db.execute(
                "SELECT key, source, contact_id, stage, status, crm_id, run_id, created_at, payload FROM task_ledger "
                f"WHERE tenant=? AND key IN ({marks(len(part))})", (self.tenant, *part),
            )):
                r["payload"] = json.loads(r["payload"])
                out[r["key"]] = r
        return out

    def pending_task_entries(self, source: str) -> list[dict[str, Any]]:
        """`pending_tasks`, with `created_at` and the payload (its `_sent_at` gives the settle time)."""
        keys = [r[0] for r in self.db.execute(
            "SELECT key FROM task_ledger WHERE tenant=? AND source=? AND status='pending' ORDER BY key",
            (self.tenant, source))]
        entries = self.task_entries(keys)
        return [entries[k] for k in keys]

    def tasks_sent(self, keys: Sequence[str], at: datetime) -> None:
        """Stamp the moment a create was sent, so a lost answer is given its settle time from then."""
        entries = self.task_entries(keys)
        self.db.executemany("UPDATE task_ledger SET payload=? WHERE tenant=? AND key=?",
                            [(json.dumps({**e["payload"], "_sent_at": _iso(at)}), self.tenant, k)
                             for k, e in entries.items()])

    def oldest_task_at(self, source: str) -> datetime | None:
        """When the source's first ledger entry was written: where a first duplicate check starts."""
        row = self.db.execute("SELECT min(created_at) FROM task_ledger WHERE tenant=? AND source=?",
                              (self.tenant, source)).fetchone()
        return _dt(row[0]) if row and row[0] else None

    # ------------------------------------------------------------- failures and issues
    def record_failure(self, source: str, change_key: str, record_id: str, kind: str, code: str | None,
                       message: str | None, fields_: Sequence[str], run_id: str, max_attempts: int) -> str:
        row = self.db.execute(
            "SELECT attempts FROM failures WHERE tenant=? AND source=? AND change_key=?",
            (self.tenant, source, change_key)).fetchone()
        attempts = (row[0] if row else 0) + 1
        status = "held" if attempts >= max_attempts else "retry"
        self.db.execute(
            upsert_sql("failures", _FAILURE_COLUMNS, ["tenant", "source", "change_key"]),
            (self.tenant, source, change_key, record_id, kind, code, message, json.dumps(list(fields_)), attempts,
             status, run_id, _iso(datetime.now(timezone.utc))),
        )
        return status

    def resolve_failure(self, source: str, change_key: str) -> None:
        self.resolve_failures(source, [change_key])

    def resolve_failures(self, source: str, change_keys: Sequence[str]) -> None:
        self.db.executemany("DELETE FROM failures WHERE tenant=? AND source=? AND change_key=?",
                            [(self.tenant, source, k) for k in change_keys])

    def failures(self, source: str | None = None) -> list[dict[str, Any]]:
        q = ("SELECT f.source, f.change_key, f.record_id, f.kind, f.error_code, f.message, f.fields, f.attempts, "
             f"f.status, f.run_id, c.email FROM failures f {_EMAIL_JOIN.format(t='f', id='record_id')}"
             " WHERE f.tenant=?" + (" AND f.source=?" if source else "") + " ORDER BY f.source, f.record_id")
        return _dicts(self.db.execute(q, (self.tenant, source) if source else (self.tenant,)))

    def requeue_failures(self, source: str) -> list[str]:
        """Held and pending failures are tried once more: their records are planned again next run.

        The attempt count is kept, so a record that fails again is held after its true number of attempts
        (one more than before), and `failures` never under-reports how often the CRM refused it."""
        ids = [r[0] for r in self.db.execute(
            "SELECT DISTINCT record_id FROM failures WHERE tenant=? AND source=? AND kind='set_fields'",
            (self.tenant, source))]
        self.db.execute("UPDATE failures SET status='retry' WHERE tenant=? AND source=?", (self.tenant, source))
        self.mark_dirty(source, ids)
        return ids

    def add_issues(self, run_id: str, issues: Sequence[Any]) -> None:
        at = _iso(datetime.now(timezone.utc))
        self.db.executemany(
            "INSERT INTO issues (tenant, run_id, source, record_id, field, message, at) VALUES (?,?,?,?,?,?,?)",
            [(self.tenant, run_id, i.source, i.record_id, i.field, i.message, at) for i in issues],
        )

    def issues(self, run_id: str) -> list[dict[str, Any]]:
        return _dicts(self.db.execute(
            "SELECT i.source, i.record_id, i.field, i.message, c.email FROM issues i "
            f"{_EMAIL_JOIN.format(t='i', id='record_id')} WHERE i.tenant=? AND i.run_id=?", (self.tenant, run_id)))

    def failure_keys(self, source: str, kind: str) -> set[str]:
        """The change keys of one kind of failure already on record (so a report is not repeated)."""
        return {r[0] for r in self.db.execute(
            "SELECT change_key FROM failures WHERE tenant=? AND source=? AND kind=?", (self.tenant, source, kind))}
