"""Packed state rows (sync/state_codec.py) and migrations 10-12, which pack what an older state holds.

A packed value reads back byte for byte whatever dictionary wrote it (none, this process's, another's); a
dictionary a rolled-back transaction stored is forgotten with it; one outgrown by a payload's new shape is
followed by a better generation; and a version-9 state keeps every snapshot,
score, hold and stage entry, on SQLite and on PostgreSQL (`url` runs a test on both).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from mapping.model import Contact
from sync.db import Database, StateError, connect
from sync.state import _MIGRATIONS, State, snapshot
from sync.state_codec import TRAIN_AT, Codec
from sync.state_rows import _contact_dict, _dumps
from tests.sync.test_state import T0, contact
from tests.sync.test_state_postgres import pg_server, pg_url, url  # noqa: F401  (fixtures)


def texts(n: int, start: int = 0) -> list[str]:
    return [snapshot(contact(str(i), company=f"Company {i % 17}", extra={"hs_analytics_source": "ORGANIC_SEARCH",
                                                                         "hs_latest_source_data_1": f"page {i}"}))[0]
            for i in range(start, start + n)]


def stored_dicts(db: Database) -> list[tuple[str, str, int]]:
    return sorted(tuple(r) for r in db.execute("SELECT tenant, kind, no FROM codec_dicts"))


def schema_at(db: Database, version: int) -> None:
    """The schema as the released migrations 1..version left it, stamped with that version."""
    db.execute(db.dialect.ddl("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"))
    for v in range(1, version + 1):
        for step in _MIGRATIONS[v]:
            step(db) if callable(step) else db.execute(db.dialect.ddl(step))
    db.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(version),))


def test_rows_read_back_before_and_after_the_dictionary_and_from_another_process(url):  # noqa: F811
    s = State(url)
    first = s.codec.pack("contacts:hubspot", texts(10))  # too few to train on: packed without a dictionary
    assert {p[0] for p in first} == {0} and stored_dicts(s.db) == []
    rest = s.codec.pack("contacts:hubspot", texts(TRAIN_AT, start=10))  # the sample is complete: trained, used
    assert {p[0] for p in rest} == {1} and stored_dicts(s.db) == [("default", "contacts:hubspot", 1)]
    other = State(url)  # another process: no dictionary in memory, reads it from codec_dicts
    assert [other.codec.unpack("contacts:hubspot", p).decode() for p in first + rest] == texts(10 + TRAIN_AT)
    assert other.codec.pack("contacts:hubspot", texts(1))[0][0] == 1  # and writes with the stored one
    plain = sum(map(len, texts(TRAIN_AT, start=10)))
    assert sum(map(len, rest)) < plain / 4, "a trained dictionary packs a snapshot to a fraction of its JSON"


PHRASES = ["+8 enterprise (10,000+ employees)", "+5 works in revenue, sales or marketing", "+3 asked to be contacted",
           "+2 clicked marketing emails", "+1 read product, security or comparison pages", "-5 personal email domain"]


def scored(n: int, start: int = 0) -> list[str]:
    """Snapshots of a later shape: what a write-back adds (reasons the first rows' dictionary never saw)."""
    return [snapshot(contact(str(i), company=f"Company {i % 17}", extra={
        "leadsync_reason": "; ".join(PHRASES[j] for j in range(6) if (i >> j) & 1),
        "leadsync_score": str(i % 90), "hs_latest_source_data_1": f"page {i}"}))[0] for i in range(start, start + n)]


def test_a_dictionary_outgrown_by_its_rows_gets_a_next_generation_and_a_steady_one_does_not(url):  # noqa: F811
    s = State(url)
    s.codec.pack("contacts:hubspot", texts(TRAIN_AT * 4))  # one shape: the first dictionary serves it throughout
    assert stored_dicts(s.db) == [("default", "contacts:hubspot", 1)]
    later = s.codec.pack("contacts:hubspot", scored(TRAIN_AT * 3))  # the shape drifts: a better one is trained
    assert stored_dicts(s.db) == [("default", "contacts:hubspot", 1), ("default", "contacts:hubspot", 2)]
    before, after = [p for p in later if p[0] == 1], [p for p in later if p[0] == 2]
    assert len(before) == TRAIN_AT and len(after) == TRAIN_AT * 2  # the window that showed the drift, then the rest
    assert sum(map(len, after)) / len(after) < 0.8 * sum(map(len, before)) / len(before)
    other = State(url)
    assert [other.codec.unpack("contacts:hubspot", p).decode() for p in later] == scored(TRAIN_AT * 3)
    assert other.codec.pack("contacts:hubspot", scored(1))[0][0] == 2  # the newest generation is the one written


def test_a_dictionary_stored_in_a_rolled_back_transaction_is_forgotten(tmp_path):
    path = f"sqlite:///{tmp_path}/s.db"
    s = State(path)
    with pytest.raises(RuntimeError), s.tx():
        s.upsert_contacts([contact(str(i)) for i in range(TRAIN_AT)], "r1")
        assert stored_dicts(s.db) == [("default", "contacts:hubspot", 1)]
        raise RuntimeError("the batch fails")
    assert stored_dicts(s.db) == [] and s.count_contacts() == 0
    with s.tx():  # the next batch must not write rows naming a dictionary that is gone
        s.upsert_contacts([contact(str(i)) for i in range(TRAIN_AT + 5)], "r2")
    fresh = State(path)
    assert fresh.contacts("hubspot", [str(i) for i in range(TRAIN_AT + 5)]) == {
        str(i): contact(str(i)) for i in range(TRAIN_AT + 5)}


def test_values_older_than_packing_read_as_they_are_and_a_missing_dictionary_is_named(tmp_path):
    codec = Codec(connect(f"sqlite:///{tmp_path}/s.db"), "acme")
    assert codec.unpack("contacts:hubspot", '{"id":"1"}') == '{"id":"1"}'
    assert codec.unpack("contacts:hubspot", b'{"id":"1"}') == b'{"id":"1"}'
    State(f"sqlite:///{tmp_path}/s.db")  # the schema, codec_dicts included
    with pytest.raises(StateError, match=r"contacts:hubspot names packing dictionary 7.*tenant acme"):
        codec.unpack("contacts:hubspot", b"\x07whatever")


def test_tenants_train_their_own_dictionaries(url):  # noqa: F811
    a, b = State(url), State(url, tenant="acme")
    a.upsert_contacts([contact(str(i)) for i in range(TRAIN_AT)], "r1")
    b.upsert_contacts([contact(str(i), title="CTO") for i in range(TRAIN_AT)], "r1")
    assert stored_dicts(a.db) == [("acme", "contacts:hubspot", 1), ("default", "contacts:hubspot", 1)]
    assert a.contacts("hubspot", ["3"])["3"].title == "VP Marketing" and b.contacts("hubspot", ["3"])["3"].title == "CTO"


# ----------------------------------------------------------------------------- v9 -> v10

N = TRAIN_AT + 150  # enough rows of one kind for the migration to train a dictionary


def build_v9(url_: str) -> list[tuple[str, str, str]]:
    """A version-9 state as the released migrations made it: two tenants' snapshots (some archived), scores
    with an undo hold in the detail, stage entries. Returns the (tenant, source, id) of every contact."""
    db = connect(url_)
    keys = []
    with db.transaction():
        schema_at(db, 9)
        for tenant, n in (("default", N), ("acme", 3)):
            for i in range(n):
                c = contact(str(i), archived=i == 1, extra={"hs_analytics_source": "DIRECT_TRAFFIC"})
                if i == 2:  # the same address as the archived one: the live record must win the look-up
                    c = replace(c, email="p1@acme.com")
                db.execute("INSERT INTO contacts VALUES (?,?,?,?,?,?,?,?,?)",
                           (tenant, "hubspot", c.id, "contacts", c.email, *snapshot(c), T0.isoformat(), "r1"))
                keys.append((tenant, "hubspot", c.id))
            detail = {"total": 42, "reasons": [{"points": 42, "text": "read pricing"}]}
            db.execute("INSERT INTO scores VALUES (?,?,?,?,?,?,?,?,?,?)",
                       (tenant, "hubspot", "0", 30, 12, 42, "mql", "lead", json.dumps(detail), T0.isoformat()))
            db.execute("INSERT INTO scores VALUES (?,?,?,?,?,?,?,?,?,?)",
                       (tenant, "hubspot", "1", None, None, None, None, "sql",
                        json.dumps({"undo_hold": {"run": "r0", "undo": "u1"}}), T0.isoformat()))
            db.execute("INSERT INTO crm_stage_history VALUES (?,?,?,?,?,?,?)",
                       (tenant, "hubspot", "0", "mql", T0.isoformat(), "hubspot_history", "r1"))
    db.close()
    return keys


def test_v9_state_is_packed_with_nothing_lost(url):  # noqa: F811
    build_v9(url)
    s, acme = State(url), State(url, tenant="acme")
    ids = [str(i) for i in range(N)]
    found = s.contacts("hubspot", ids)
    assert len(found) == N and found["1"].archived and found["5"] == contact(
        "5", extra={"hs_analytics_source": "DIRECT_TRAFFIC"})
    assert acme.contacts("hubspot", ["0", "1", "2"])["1"].archived
    assert s.ids_by_email("hubspot", ["p1@acme.com"]) == {"p1@acme.com": "2"}  # live over archived, from a column
    assert {p[0] for (p,) in s.db.execute("SELECT data FROM contacts WHERE tenant='default'")} == {1}  # trained first
    assert stored_dicts(s.db) == [("default", "contacts:hubspot", 1)]  # acme's 3 rows: too few to train on
    assert s.score_detail("hubspot", "0") == {"total": 42, "reasons": [{"points": 42, "text": "read pricing"}]}
    assert s.undo_holds("hubspot", ["0", "1"]) == {"1": {"run": "r0", "undo": "u1"}}
    assert s.count_undo_holds("hubspot") == 1 and s.undo_held_by("hubspot", "r0") == ["1"]
    assert [e.stage for e in s.stage_history("hubspot", ["0"])] == ["mql"]
    assert acme.undo_held_by("hubspot", "r0") == ["1"] and acme.score_detail("hubspot", "0")["total"] == 42
    # the migrated rows take writes as before: an unchanged record is no change, a new one is stored packed
    assert s.upsert_contacts([found["5"]], "r2") == []
    assert s.upsert_contacts([replace(found["5"], title="CEO")], "r2") == ["5"]
    assert State(url).contacts("hubspot", ["5"])["5"].title == "CEO"
    if s.engine == "sqlite":
        indexes = {r[0] for r in s.db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert "contacts_email_any" in indexes and "contacts_email" not in indexes
        assert not any(name.startswith("sqlite_autoindex_crm_stage_history") for name in indexes)


# ----------------------------------------------------------------------------- v10 -> v11

AT10 = "2026-01-05T10:00:00.123000+00:00"
V10_AUDIT = [  # (tenant, run, source, object_type, record, field, before, after, at, status): a row per field
    *[("default", "r1", "hubspot", "contacts", "7", f, None, v, AT10, "ok")
      for f, v in (("leadsync_score", "20"), ("leadsync_fit", "13"), ("leadsync_reason", "+8 enterprise"))],
    ("default", "r1", "hubspot", "contacts", "8", "leadsync_score", "3", "40", AT10, "rejected"),
    ("acme", "r1", "salesforce", "Lead", "00Q1", "OwnerId", "00G1", "005A", AT10, "ok"),
    ("default", "r2", "hubspot", "undo", "r1", "undone_run", None, "r1", AT10, "ok"),
    ("default", "r1", "hubspot", "contacts", "7", "leadsync_score", "20", "25", "2026-01-05T11:00:00+00:00", "ok"),
]


def test_v10_audit_becomes_one_row_per_record_write_with_nothing_lost(url):  # noqa: F811
    db = connect(url)
    with db.transaction():
        schema_at(db, 10)
        db.executemany("INSERT INTO audit (tenant, run_id, source, object_type, record_id, field, before, after, at, "
                       "status) VALUES (?,?,?,?,?,?,?,?,?,?)", V10_AUDIT)
    db.close()
    s, acme = State(url), State(url, tenant="acme")
    assert [r[0] for r in s.db.execute("SELECT seq FROM audit ORDER BY seq")] == [1, 4, 5, 6, 7]  # first seq kept
    assert [(a["record_id"], a["field"], a["before"], a["after"], a["at"], a["status"])
            for a in s.audit_for_run("r1")] == [
        (r[4], r[5], r[6], r[7], r[8], r[9]) for r in V10_AUDIT if r[0] == "default" and r[1] == "r1"
        and r[9] != "rejected"]
    assert acme.audit_for_run("r1")[0]["after"] == "005A" and acme.audited_value("salesforce", "00Q1", "OwnerId") == "005A"
    assert s.audited_value("hubspot", "7", "leadsync_score") == "25"  # the last accepted write of the field
    assert s.audited_value("hubspot", "8", "leadsync_score") is None  # rejected: never written
    assert s.undo_runs_of("r1") == ["r2"]
    s.audit("r3", "hubspot", "contacts", "9", {"leadsync_score": (None, "1"), "leadsync_fit": (None, "2")})
    assert [r[0] for r in s.db.execute("SELECT seq FROM audit ORDER BY seq")][-1] == 8  # numbered on past them
    assert [a["field"] for a in s.audit_for_run("r3")] == ["leadsync_score", "leadsync_fit"]


# ----------------------------------------------------------------------------- v11 -> v12


def build_v11(url_: str, stage_at: str) -> Contact:
    """A version-11 state holding one contact (its 32-character hash and time column), its score and one CRM
    stage entry."""
    db = connect(url_)
    c = contact("7", title="CFO")
    with db.transaction():
        schema_at(db, 11)
        text, h = snapshot(c)
        fields = _contact_dict(c)
        del fields["updated_at"]
        old_hash = hashlib.blake2b(_dumps(fields).encode(), digest_size=16).hexdigest()  # as version 11 spelt it
        assert len(old_hash) == 32 and old_hash.startswith(h)
        db.execute("INSERT INTO contacts (tenant, source, id, object_type, email, archived, data, hash, updated_at, "
                   "seen_run) VALUES (?,?,?,?,?,?,?,?,?,?)",
                   ("default", "hubspot", c.id, "contacts", c.email, 0, text.encode(), old_hash, T0.isoformat(), "r1"))
        db.execute("INSERT INTO crm_stage_history VALUES (?,?,?,?,?,?,?)",
                   ("default", "salesforce", "00Q1", "sql", stage_at, "converted", "r1"))
        db.execute("INSERT INTO scores VALUES (?,?,?,?,?,?,?,?,?,?,?)", ("default", "hubspot", "7", 30, 12, 42, "mql",
                   "lead", b'{"total":42}', '{"run":"r0"}', "2026-01-05T12:00:00.250000+00:00"))
    db.close()
    return c


def test_v11_contacts_keep_their_time_in_the_snapshot_and_stage_and_score_times_become_ms(url):  # noqa: F811
    c = build_v11(url, "2025-04-12T05:43:42.166000+00:00")
    s = State(url)
    assert s.contacts("hubspot", ["7"])["7"] == c  # the time column's value was the snapshot's own
    assert s.upsert_contacts([c], "r2") == []  # the shortened hash still recognises the unchanged record
    assert s.upsert_contacts([replace(c, title="CEO")], "r2") == ["7"]
    (entry,) = s.stage_history("salesforce")
    assert (entry.stage, entry.origin, entry.entered_at) == (
        "sql", "converted", datetime(2025, 4, 12, 5, 43, 42, 166000, tzinfo=timezone.utc))
    s.add_stage_entries([entry], "r2")  # re-pulled: the same entry, kept once
    assert len(s.stage_history("salesforce")) == 1
    assert s.score_detail("hubspot", "7") == {"total": 42} and s.undo_holds("hubspot", ["7"]) == {"7": {"run": "r0"}}
    assert s.db.execute("SELECT scored_at FROM scores").fetchone()[0] == 1767614400250
    columns = [d[0] for d in s.db.execute("SELECT * FROM contacts LIMIT 0").description]
    assert "updated_at" not in columns and len(s.db.execute("SELECT hash FROM contacts").fetchone()[0]) == 16


def test_a_stage_time_the_upgrade_cannot_read_is_named_and_nothing_is_changed(tmp_path):
    url_ = f"sqlite:///{tmp_path}/s.db"
    build_v11(url_, "last tuesday")
    with pytest.raises(StateError, match=r"crm_stage_history salesforce:00Q1 \(sql, converted\).*'last tuesday'"):
        State(url_)
    db = connect(url_)
    assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == "11"
    assert db.execute("SELECT entered_at FROM crm_stage_history").fetchone()[0] == "last tuesday"
