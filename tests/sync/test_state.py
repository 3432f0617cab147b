"""State store: migrations, change detection, echo suppression, ledger."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

import pytest

from mapping.model import Contact, Engagement, EngagementKind, Stage
from sync.state import SCHEMA_VERSION, State, StateError, norm_value

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)


def contact(cid: str = "1", **kw) -> Contact:
    base = dict(source="hubspot", id=cid, email=f"p{cid}@acme.com", title="VP Marketing",
                lifecycle_stage=Stage.LEAD, updated_at=T0, managed={"leadsync_score": None})
    base.update(kw)
    return Contact(**base)


@pytest.fixture
def state(tmp_path):
    s = State(f"sqlite:///{tmp_path}/state.db")
    yield s
    s.close()


def test_schema_is_versioned_and_reopened_not_recreated(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    s = State(url)
    with s.tx():
        s.upsert_contacts([contact()], "r1")
    s.close()
    s2 = State(url)
    assert s2.count_contacts() == 1
    assert s2.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "s.db"
    State(f"sqlite:///{path}").close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value='999' WHERE key='schema_version'")
    db.commit()
    db.close()
    with pytest.raises(StateError, match="newer"):
        State(f"sqlite:///{path}")


def test_unchanged_contact_is_not_dirty_and_changed_one_is(state):
    with state.tx():
        assert state.upsert_contacts([contact("1"), contact("2")], "r1") == ["1", "2"]
        state.clear_dirty("hubspot", ["1", "2"])
        # same content, only updated_at moved (our own write echoing back): not a change
        assert state.upsert_contacts([contact("1", updated_at=datetime(2026, 2, 1, tzinfo=timezone.utc))], "r2") == []
        assert state.upsert_contacts([contact("2", title="Student")], "r2") == ["2"]
    assert state.dirty("hubspot") == ["2"]


def test_our_write_echo_is_recognised(state):
    with state.tx():
        state.upsert_contacts([contact("1")], "r1")
        state.clear_dirty("hubspot", ["1"])
        state.set_managed("hubspot", "1", {"leadsync_score": "42"})
        echoed = contact("1", managed={"leadsync_score": "42.0"})  # CRMs spell numbers their own way
        assert state.upsert_contacts([echoed], "r2") == []


def test_engagement_is_stored_once_and_marks_its_contact(state):
    e = Engagement("hubspot", "e1", "1", EngagementKind.PAGE_VIEW, T0, "https://x/pricing")
    with state.tx():
        state.upsert_contacts([contact("1")], "r1")
        state.clear_dirty("hubspot", ["1"])
        assert state.upsert_engagements([e]) == ["1"]
        state.clear_dirty("hubspot", ["1"])
        assert state.upsert_engagements([e]) == []
    got = state.engagements_for("hubspot", ["1"])["1"]
    assert got == [e]


def test_task_ledger_intent_then_confirm(state):
    state.task_intent("k1", "hubspot", "1", "sql", "r1", {"subject": "x"})
    assert [t["key"] for t in state.pending_tasks("hubspot")] == ["k1"]
    state.task_confirm("k1", "900")
    assert state.pending_tasks("hubspot") == []
    assert state.task_entry("k1")["status"] == "created"


def test_failures_retry_then_held(state):
    for attempt in range(1, 4):
        status = state.record_failure("salesforce", "c1", "00Q1", "set_fields", "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                                      "bad", ["Email"], "r", max_attempts=3)
        assert status == ("held" if attempt == 3 else "retry")
    (row,) = state.failures()
    assert row["attempts"] == 3 and row["error_code"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION"


@pytest.mark.parametrize("raw, want", [(42, "42"), (42.0, "42"), ("42.0", "42"), ("42", "42"), ("4.5", "4.5"),
                                       ("007a", "007a"), (None, None), ("", ""), (True, "true")])
def test_norm_value(raw, want):
    assert norm_value(raw) == want


def test_only_sqlite_urls(tmp_path):
    with pytest.raises(StateError, match="unsupported"):
        State("mysql://x")


def test_two_runs_opening_a_new_state_file_together_both_get_in(tmp_path) -> None:
    """Both switch the new SQLite file to WAL; SQLite refuses one of them at once ("database is locked")
    instead of waiting, so opening must retry, or the second run crashes before it reaches the writer lock.
    Without the retry about one race in ten fails here."""
    import threading

    from sync.db import connect

    failures: list[Exception] = []
    for i in range(60):
        url = f"sqlite:///{tmp_path}/state{i}.db"
        barrier = threading.Barrier(2)

        def open_it(url: str = url, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                connect(url).execute("CREATE TABLE IF NOT EXISTS t (x)")
            except Exception as exc:  # collected: the assertion below names it
                failures.append(exc)

        threads = [threading.Thread(target=open_it) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert failures == []


def test_score_reasons_are_stored_once_and_read_back_whole(tmp_path):
    """Reasons are kept by number (one text per distinct reason, per tenant); a reader sees them inline, and
    a row written before that, with its reasons inline, still reads."""
    import json

    url = f"sqlite:///{tmp_path}/s.db"
    reasons = [{"kind": "fit", "points": 5, "rule": "title_function", "text": "works in marketing"},
               {"kind": "engagement", "points": 9, "rule": "intent_pages", "text": "read pricing (5×)"}]
    detail = {"total": 14, "stage": "lead", "reasons": reasons, "person": {"key": "hubspot:1"}}
    a, b = State(url), State(url, tenant="acme")
    with a.tx():
        a.save_scores([("hubspot", cid, 5, 9, 14, "lead", None, json.dumps(detail), T0.isoformat())
                       for cid in ("1", "2")])
    b.save_scores([("hubspot", "1", 5, 0, 5, "lead", None, json.dumps({**detail, "reasons": reasons[:1]}),
                    T0.isoformat())])
    b.db.execute("UPDATE scores SET detail=? WHERE tenant='acme' AND contact_id='1'",
                 (json.dumps({"total": 5, "reasons": reasons[:1]}),))  # as a v9-era row spelt it
    fresh = State(url)  # no texts cached: read from the table
    assert fresh.score_detail("hubspot", "1") == detail == fresh.score_detail("hubspot", "2")
    assert b.score_detail("hubspot", "1") == {"total": 5, "reasons": reasons[:1]}
    stored = a.codec.unpack("scores:hubspot", a.db.execute(
        "SELECT detail FROM scores WHERE tenant='default' AND contact_id='2'").fetchone()[0])
    assert b"works in marketing" not in stored and json.loads(stored)["reason_ids"]
    assert a.db.execute("SELECT count(*) FROM texts WHERE tenant='default'").fetchone()[0] == 2
