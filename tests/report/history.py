"""A small, fully known state store for the report tests.

Every figure `test_report_figures.py` asserts is worked out by hand from the
comments here. The report window is the 4 Monday-weeks up to NOW:
W1 = 2026-02-23, W2 = 03-02, W3 = 03-09, W4 = 03-16 (NOW is Wednesday 03-18 noon).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from mapping.model import Contact, Stage
from sync.state import State

NOW = datetime(2026, 3, 18, 12, 0, tzinfo=timezone.utc)


def t(s: str) -> datetime:
    """'2026-03-03 10:00' as an aware UTC datetime."""
    return datetime.fromisoformat(s).replace(tzinfo=timezone.utc)


def reason(rule: str, kind: str, points: int) -> dict[str, object]:
    return {"rule": rule, "kind": kind, "points": points, "text": f"{rule} ({points:+d})", "evidence": [],
            "raw_points": float(points), "decayed_points": float(points)}


# (id, email, owner, country, created, stage now (crm_stage), score total or None, extra Contact kwargs)
HUBSPOT = [
    ("h1", "a@acme.com", "o1", "US", "2026-02-01 00:00", "sql", 80, {}),
    ("h2", "b@acme.com", "o1", "US", "2026-02-20 00:00", "mql", 55, {}),
    ("h3", "c@beta.io", "o2", "DE", "2026-01-10 00:00", "customer", 90, {}),
    ("h4", "d@beta.io", "o2", "DE", "2026-03-01 00:00", "sql", 95, {}),
    ("h5", None, None, None, "2026-03-01 00:00", "lead", 10, {}),            # missing email
    ("h6", "bad-email", None, "US", "2026-03-01 00:00", "subscriber", 0, {}),  # invalid email
    ("h7", " B@Acme.com ", "o1", "US", "2026-03-02 00:00", "lead", 20, {}),  # duplicate of h2 within hubspot
    ("h8", "z@acme.com", "o1", "US", "2026-01-01 00:00", "lead", None, {"archived": True}),  # inactive
    ("h9", "r@acme.com", "o2", "DE", "2026-01-05 00:00", "mql", 60, {}),     # recycled in W3
    ("h10", "q@acme.com", "o1", "US", "2026-02-10 00:00", "lead", 35, {}),   # regression sql->lead in W4
]
SALESFORCE = [
    ("s1", "A@acme.com", "o3", "US", "2026-02-20 00:00", "mql", 50, {}),     # cross-CRM duplicate of h1
    ("s2", "e@gamma.com", "o3", "FR", "2026-01-01 00:00", "opportunity", 85, {}),
    ("s3", "f@gamma.com", "o3", "FR", "2026-01-01 00:00", "other", 30, {}),  # disqualified: lost
    ("s4", "e@gamma.com", "o3", "FR", "2026-01-01 00:00", "lead", None, {"read_only": True}),  # converted lead
]

# (source, contact, from, to, at)
HISTORY = [
    ("hubspot", "h3", "lead", "mql", "2026-01-15 00:00"),
    ("hubspot", "h3", "mql", "sql", "2026-01-20 00:00"),
    ("hubspot", "h9", "lead", "mql", "2026-01-20 00:00"),
    ("salesforce", "s3", "lead", "mql", "2026-01-10 00:00"),
    ("salesforce", "s3", "mql", "sql", "2026-01-25 00:00"),
    ("salesforce", "s2", "lead", "mql", "2026-02-01 00:00"),
    ("hubspot", "h1", "lead", "mql", "2026-02-24 10:00"),    # W1, 23.4 days after created
    ("hubspot", "h10", "lead", "mql", "2026-02-24 00:00"),   # W1, 14.0 days
    ("hubspot", "h2", "lead", "mql", "2026-02-25 12:00"),    # W1, 5.5 days
    ("salesforce", "s2", "mql", "sql", "2026-02-26 12:00"),  # W1, 25.5 days after its MQL
    ("hubspot", "h1", "mql", "sql", "2026-03-03 10:00"),     # W2, 7.0 days
    ("hubspot", "h10", "mql", "sql", "2026-03-05 00:00"),    # W2, 9.0 days
    ("hubspot", "h4", "lead", "sql", "2026-03-10 09:00"),    # W3, fast track: no MQL
    ("hubspot", "h9", "lead", "mql", "2026-03-11 00:00"),    # W3, recycle (was MQL in January)
    ("salesforce", "s1", "lead", "mql", "2026-03-16 10:00"),  # W4, 24.4 days
    ("hubspot", "h10", "sql", "lead", "2026-03-17 00:00"),   # W4, regression
]

REASONS = {
    "h1": [reason("title_vp", "fit", 30), reason("pricing_page", "engagement", 20), reason("demo", "signal", 30)],
    "h4": [reason("demo", "signal", 50), reason("title_vp", "fit", 30), reason("company_size", "fit", 15)],
    "h10": [reason("title_vp", "fit", 30), reason("webinar", "engagement", 10),
            reason("unsubscribed", "engagement", -5)],
    "s2": [reason("company_size", "fit", 15), reason("pricing_page", "engagement", 20), reason("demo", "signal", 50)],
}

# (key, source, contact, owner in ledger, confirmed at, completed at)
TASKS = [
    ("t1", "hubspot", "h1", "o1", "2026-03-03 10:00", "2026-03-04 09:00"),     # 23 business h: within
    ("t2", "hubspot", "h4", "o2", "2026-03-13 16:00", None),                   # 68 h open: overdue
    ("t3", "salesforce", "s2", "o3", "2026-02-26 12:00", "2026-03-02 12:00"),  # 48 h: late
    ("t4", "hubspot", "h10", None, "2026-03-17 12:00", None),                  # 24 h open: not yet overdue
    ("t6", "hubspot", "h3", "o2", "2026-01-20 00:00", "2026-01-20 05:00"),     # before the window
    ("t7", "hubspot", "h9", "o2", "2026-03-11 00:00", "2026-03-11 01:00"),     # closed by undo: counted apart
]


def _contact(source: str, row: tuple) -> Contact:
    cid, email, owner, country, created, stage, _, extra = row
    return Contact(source=source, id=cid, object_type="contacts" if source == "hubspot" else "Lead", email=email,
                   owner_id=owner, country=country, created_at=t(created), updated_at=t(created),
                   lifecycle_stage=Stage(stage), **extra)


def _score_row(source: str, row: tuple) -> tuple | None:
    cid, _, _, _, _, stage, total, _ = row
    if total is None:
        return None
    detail = {"total": total, "reasons": REASONS.get(cid, [])}
    return (source, cid, 0, 0, total, stage, stage, json.dumps(detail), NOW.isoformat())


def build_state(path: Path) -> State:
    """Write the known history into a fresh state store at `path`."""
    state = State(f"sqlite:///{path}")
    with state.tx():
        for source, rows in (("hubspot", HUBSPOT), ("salesforce", SALESFORCE)):
            state.upsert_contacts([_contact(source, r) for r in rows], "run-1")
            state.save_scores([s for r in rows if (s := _score_row(source, r))])
        state.db.executemany("INSERT INTO stage_history VALUES (?,?,?,?,?,?,?)",
                             [(state.tenant, s, c, a, b, t(at).isoformat(), "run-1") for s, c, a, b, at in HISTORY])
        for key, source, cid, owner, confirmed, completed in TASKS:
            state.task_intent(key, source, cid, "sql", "run-1", {"owner_id": owner} if owner else {})
            state.task_confirm(key, f"crm-{key}")
            state.db.execute("UPDATE task_ledger SET created_at=?, confirmed_at=? WHERE tenant='default' AND key=?",
                             (t(confirmed).isoformat(), t(confirmed).isoformat(), key))
            if completed:
                state.task_completed(key, t(completed))
        state.db.execute("UPDATE task_ledger SET status='undone' WHERE tenant='default' AND key='t7'")
        # planned but never confirmed by the CRM: counted apart
        state.task_intent("t5", "salesforce", "s1", "sql", "run-1", {"owner_id": "o3"})
        state.db.execute("UPDATE task_ledger SET created_at=? WHERE tenant='default' AND key='t5'",
                         (t("2026-03-17 08:00").isoformat(),))
        state.record_failure("hubspot", "hubspot:contacts:h2", "h2", "set_fields", "VALIDATION_ERROR",
                             "Property values were not valid", ["leadsync_stage"], "run-1", max_attempts=1)
        state.record_failure("salesforce", "t5", "s1", "create_task", "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                             "Owner inactive", [], "run-1", max_attempts=5)
        state.db.executemany("INSERT INTO issues VALUES (?,?,?,?,?,?,?)", [(state.tenant, *row) for row in [
            ("run-1", "hubspot", "h5", "email", "missing email", t("2026-03-10 08:00").isoformat()),
            ("run-2", "hubspot", "h5", "email", "missing email", t("2026-03-12 08:00").isoformat()),  # same issue
            ("run-1", "salesforce", "s2", "country", "unknown country 'Fr.'", t("2026-03-05 08:00").isoformat()),
            ("run-0", "hubspot", "h6", "email", "bad email", t("2026-01-02 08:00").isoformat()),  # before window
        ]])
    return state
