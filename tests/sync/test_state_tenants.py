"""Tenants in the state store: migration 9 keeps a single-team state whole under tenant `default`, tenants
sharing one database never see each other's rows (their CRMs may reuse the same ids), and the writer lock is
per (tenant, source). On SQLite and on the suite's throw-away PostgreSQL (`url` runs a test on both)."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from typing import Any

import pytest

from mapping.model import Engagement, EngagementKind
from sync.db import Database, connect
from sync.lock import AdvisoryLock, LockBusy, SourceLock, lock_is_free, writer_lock
from sync.state import _MIGRATIONS, SCHEMA_VERSION, State, StateError, snapshot
from sync.state_rows import HASH_CHARS, _from_ms, _iso
from tests.sync.test_state import T0, contact
from tests.sync.test_state_postgres import pg_server, pg_url, url  # noqa: F401  (fixtures)

# ----------------------------------------------------------------------------- v8 -> v9

AT = T0.isoformat()
#: One or more rows for every table a version-8 state has, in its column order: NULLs, numbers, unicode,
#: gaps in the identity columns (audit `seq`, texts `id`), and a `meta` fact of the team.
V8_ROWS: dict[str, list[tuple[Any, ...]]] = {
    "contacts": [("hubspot", "1", "contacts", "p1@acme.com", *snapshot(contact("1")), AT, "r1"),
                 ("salesforce", "00Q1", "Lead", None, *snapshot(contact("00Q1", source="salesforce")), None, None)],
    "texts": [(5, "https://x.io/pricing"), (9, ""), (12, "Q4 lançamento")],
    "engagements": [("hubspot", "e1", "1", None, "page_view", 1767614400123, 5, 9),
                    ("salesforce", "e1", "00Q1", "ada@x.io", "webinar", 1767225599000, 12, 12)],
    "dirty": [("hubspot", "1"), ("salesforce", "00Q1")],
    "watermarks": [("hubspot", "contacts", "2026-01-05T12:00:00Z", AT), ("hubspot", "checkpoint:contacts", "c9", AT)],
    "scores": [("hubspot", "1", 30, 12, 42, "mql", "lead", '{"total": 42}', AT),
               ("salesforce", "00Q1", None, None, None, None, "sql", '{"undo_hold": {"run": "r0"}}', AT)],
    "stage_history": [("hubspot", "1", "lead", "mql", AT, "r1"), ("hubspot", "1", None, "lead", AT, "r0")],
    "runs": [("r1", "backfill", "hubspot", "ok", AT, AT, '{"fields_updated": 2}'),
             ("r2", "sync", "hubspot", "running", AT, None, "{}")],
    "audit": [(3, "r1", "hubspot", "contact", "9", "leadsync_score", None, "1", AT, "ok"),
              (7, "r1", "hubspot", "contact", "1", "leadsync_score", "1", "42", AT, "pending"),
              (12, "r2", "hubspot", "undo", "r1", "run", None, None, AT, "ok")],
    "task_ledger": [("hubspot:1:sql", "hubspot", "1", "sql", "created", "900", "r1", AT, AT, "o1", AT, None,
                     '{"owner_id": "o1"}')],
    "failures": [("hubspot", "hubspot:contacts:1", "1", "set_fields", "VALIDATION_ERROR", "bad", '["x"]', 2,
                  "retry", "r1", AT)],
    "issues": [("r1", "hubspot", "1", "email", "missing email", AT)],
    "record_links": [("hubspot", "1", "salesforce:00Q1")],
    "identity_overrides": [("unlink", "hubspot:1", "salesforce:00Q1", AT)],
    "handoffs": [("hubspot:1->salesforce", "hubspot:1", "salesforce", "Lead", "created", "00Q9", "r1", AT, AT,
                  '{"values": {"owner_id": "005x"}}')],
    "crm_stage_history": [("salesforce", "00Q1", "lead", AT, "crm_history", "r1")],
    "opportunities": [("salesforce", "006a", "003a", AT, None, 1, 1, "Closed Won", 12500.5, "005x", "r1")],
    "owners": [("salesforce", "005x", "Maya Reed", "maya@example.com", 1, AT), ("hubspot", "7", None, None, 0, AT)],
    "connector_cache": [("salesforce", "metadata", '{"Lead": "etag"}', AT)],
    "route_assignments": [("hubspot:1", "p1", "maya", "inbound", "round-robin", "005x", '["turn"]', "r1", AT)],
    "route_counters": [("inbound", "maya", 3)],
    "alerts": [("new_sql:hubspot:1:sql:slack", "new_sql", "hubspot:1:sql", "slack", "sales", "sent", 1, None,
                "{}", "r1", AT, AT)],
    "nurture_members": [("salesforce", "701A", "00Q1", "00v1", "Sent", "r1", AT), ("hubspot", "5", "1", None, None,
                                                                                   "r1", AT)],
    "meta": [("schema_version", "8"), ("model:hubspot", '{"fingerprint": "f1", "label": "m@1"}'),
             ("rescored:hubspot", "2026-01-05"), ("adopted:salesforce", "1")],
}
#: Kept as the table's key beside the tenant: unique by construction, not derived from record ids.
GLOBAL_KEYS = {"runs", "audit", "texts"}


def tables(db: Database) -> set[str]:
    if db.dialect.name == "sqlite":
        q = "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
    else:
        q = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
    return {r[0] for r in db.execute(q)}


def leading_index_columns(db: Database) -> dict[str, tuple[str, str]]:
    """index name -> (table, its first column), primary keys and unique constraints included."""
    out = {}
    if db.dialect.name == "sqlite":
        for table in tables(db):
            for _, name, *_ in db.execute(f"PRAGMA index_list({table})").fetchall():
                first = db.execute(f"PRAGMA index_info({name})").fetchone()[2]
                out[name] = (table, first)
        return out
    for name, table, definition in db.execute(
            "SELECT indexname, tablename, indexdef FROM pg_indexes WHERE schemaname = 'public'"):
        out[name] = (table, definition.split("(", 1)[1].split(",")[0].split(")")[0].strip())
    return out


def build_v8(url_: str) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """A version-8 state with rows in every table, as the released migrations made it; (columns, rows) per
    table, read back as the engine returns them."""
    db = connect(url_)
    with db.transaction():
        db.execute(db.dialect.ddl("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"))
        for version in range(1, 9):
            for statement in _MIGRATIONS[version]:
                db.execute(db.dialect.ddl(statement))
        assert tables(db) == set(V8_ROWS), "every v8 table gets rows"
        for table, rows in V8_ROWS.items():
            db.executemany(f"INSERT INTO {table} VALUES ({','.join('?' * len(rows[0]))})", rows)
    before = {}
    for table in V8_ROWS:
        cur = db.execute(f"SELECT * FROM {table}")
        before[table] = ([d[0] for d in cur.description], sorted(cur.fetchall(), key=repr))
    db.close()
    return before


def unpacked(s: State, table: str, columns: list[str]) -> list[tuple[Any, ...]]:
    """A table's rows of tenant default in `columns`, as migration 9 left them: since migration 10 snapshots
    and score details are packed (sync/state_codec.py) and a score's undo hold has a column of its own; since 11
    an audit row is one record write; since 12 a contact's modification time is its snapshot's alone, its hash
    the first 16 characters, and a CRM stage entry's and a score's time epoch ms."""
    if table == "crm_stage_history":
        t = columns.index("entered_at")
        return [(*r[:t], _iso(_from_ms(r[t])), *r[t + 1:]) for r in s.db.execute(
            f"SELECT {', '.join(columns)} FROM crm_stage_history WHERE tenant='default'")]
    if table == "contacts":
        columns = [c if c != "updated_at" else "NULL" for c in columns]
    if table == "audit":  # since migration 11 one row per record write, its fields packed, its time in ms
        return [(seq, *row, f, b, a, _iso(_from_ms(at)), status) for seq, *row, changes, at, status in s.db.execute(
            "SELECT seq, run_id, source, object_type, record_id, changes, at, status FROM audit WHERE tenant='default'")
            for f, b, a in json.loads(s.codec.unpack(f"audit:{row[1]}", changes))]
    extra = ", hold" if table == "scores" else ""
    rows = s.db.execute(f"SELECT {', '.join(columns)}{extra} FROM {table} WHERE tenant='default'").fetchall()
    if table not in ("contacts", "scores"):
        return rows
    at = columns.index("data" if table == "contacts" else "detail")
    out = []
    for row in rows:
        text = s.codec.unpack(f"{table}:{row[columns.index('source')]}", row[at])
        if table == "scores":
            detail = json.loads(text)
            if row[-1]:
                detail["undo_hold"] = json.loads(row[-1])
            text = json.dumps(detail)
        rest = list(row[at + 1:len(columns)])
        if table == "scores":
            rest[-1] = _iso(_from_ms(rest[-1]))
        out.append((*row[:at], json.loads(text), *rest))
    return out


def test_v8_state_becomes_tenant_default_with_nothing_lost(url):  # noqa: F811
    before = build_v8(url)
    s = State(url)
    assert s._schema_version() == SCHEMA_VERSION
    for table, (columns, rows) in before.items():
        if table == "meta":
            continue
        if table in ("contacts", "scores"):  # payloads compared as JSON values: packing keeps values, not spelling
            at = columns.index("data" if table == "contacts" else "detail")
            rows = sorted([(*r[:at], json.loads(r[at]), *r[at + 1:]) for r in rows], key=repr)
        if table == "contacts":  # migration 12: the time is the snapshot's alone, the hash its first half
            h, t = columns.index("hash"), columns.index("updated_at")
            rows = sorted([(*r[:h], r[h][:HASH_CHARS], *r[h + 1:t], None, *r[t + 1:]) for r in rows], key=repr)
        after = unpacked(s, table, columns)
        assert sorted(after, key=repr) == rows, table
        assert s.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == len(rows), table
        first = s.db.execute(f"SELECT * FROM {table} LIMIT 0").description[0][0]
        assert first == "tenant", table
    # meta keeps the schema version only; the team's facts moved to tenant_meta, read through the State
    assert s.db.execute("SELECT key, value FROM meta").fetchall() == [("schema_version", str(SCHEMA_VERSION))]
    assert sorted(s.db.execute("SELECT tenant, key, value FROM tenant_meta").fetchall()) == sorted(
        ("default", k, v) for k, v in V8_ROWS["meta"] if k != "schema_version")
    assert s.model_fingerprint("hubspot") == {"fingerprint": "f1", "label": "m@1"}
    assert s.meta_get("adopted:salesforce") == "1" and s.meta_get("rescored:hubspot") == "2026-01-05"
    # every key, unique constraint and index leads with the tenant, but the ids unique by construction
    for name, (table, first) in leading_index_columns(s.db).items():
        assert first == "tenant" or table in GLOBAL_KEYS | {"meta"}, (name, table, first)
    # audit keeps its seq values and order, and counts on past them
    assert [a["record_id"] for a in s.audit_for_run("r1")] == ["9", "1"]
    s.audit("r1", "hubspot", "contact", "0", {"leadsync_score": (None, "2")})
    assert [r[0] for r in s.db.execute("SELECT seq FROM audit ORDER BY seq")] == [3, 7, 12, 13]
    assert [a["record_id"] for a in s.audit_for_run("r1")] == ["9", "1", "0"]
    assert s.undo_runs_of("r1") == ["r2"]
    # texts keep their ids (the engagement rows name them), and a new text gets a fresh one
    (e1,) = s.engagements_for("hubspot", ["1"])["1"]
    assert (e1.detail, e1.campaign, e1.occurred_at) == ("https://x.io/pricing", "", datetime(
        2026, 1, 5, 12, 0, 0, 123000, tzinfo=timezone.utc))
    assert s.engagements_for("salesforce", ["00Q1"])["00Q1"][0].detail == "Q4 lançamento"
    assert s.upsert_engagements([e1]) == []  # the migrated row is recognised as unchanged
    s.upsert_engagements([Engagement("hubspot", "e2", "1", EngagementKind.DEMO_REQUEST, T0, "new text")])
    (new_id,) = s.db.execute("SELECT id FROM texts WHERE text='new text'").fetchone()
    assert new_id > 12
    # and the State reads the rest as before
    assert s.contacts("hubspot", ["1"])["1"] == contact("1")
    assert s.dirty("salesforce") == ["00Q1"] and s.checkpoints("hubspot") == {"contacts": "c9"}
    assert s.task_entry("hubspot:1:sql")["crm_id"] == "900"
    assert s.handoff_entry("hubspot:1->salesforce")["payload"] == {"values": {"owner_id": "005x"}}
    assert s.undo_holds("salesforce", ["00Q1"]) == {"00Q1": {"run": "r0"}}
    assert s.nurture_members("salesforce", "701A", ["00Q1"]) == {"00Q1": ("00v1", "Sent")}
    assert [r["id"] for r in s.runs()] == ["r2", "r1"]
    s.close()


# ----------------------------------------------------------------------------- two tenants, one database


def fill(s: State, title: str) -> None:
    """The same record ids in every table, with values that say whose they are."""
    with s.tx():
        s.upsert_contacts([contact("1", title=title)], "r-" + title)
        s.upsert_engagements([Engagement("hubspot", "e1", "1", EngagementKind.PAGE_VIEW, T0, f"/{title}", "c")])
        s.set_watermark("hubspot", "contacts", title)
        s.save_scores([("hubspot", "1", 1, 1, len(title), "mql", None, json.dumps({"title": title}), T0.isoformat())])
        s.start_run("r-" + title, "backfill", "hubspot")
        s.audit("r-" + title, "hubspot", "contact", "1", {"leadsync_stage": (None, title)})
        s.task_intent("hubspot:1:sql", "hubspot", "1", "sql", "r-" + title, {"owner_id": title})
        s.record_failure("hubspot", "hubspot:contacts:1", "1", "set_fields", None, title, [], "r-" + title, 3)
        s.handoff_plan("hubspot:1->salesforce", "hubspot:1", "salesforce", "Lead", "r-" + title, {"who": title})
        s.meta_set("note", title)
        s.set_model_fingerprint("hubspot", title, title, "r-" + title)
        s.add_override("unlink", "hubspot:1", "salesforce:" + title)
        s.nurture_joined("hubspot", "5", "1", None, title, "r-" + title)


def test_two_tenants_with_the_same_ids_do_not_see_each_other(url):  # noqa: F811
    a, b, default = State(url, tenant="acme"), State(url, tenant="globex"), State(url)
    fill(a, "acme")
    fill(b, "globex")
    a.task_confirm("hubspot:1:sql", "900")
    a.finish_run("r-acme", "ok", {})
    a.start_run("r-acme-2", "sync", "hubspot")  # left running: globex finding its own dead run leaves it be
    a.clear_dirty("hubspot", ["1"])
    for s, title in ((a, "acme"), (b, "globex")):
        assert s.tenant == title
        assert s.contacts("hubspot", ["1"])["1"].title == title and s.count_contacts() == 1
        assert s.engagements_for("hubspot", ["1"])["1"][0].detail == f"/{title}" and s.count_engagements() == 1
        assert s.watermarks("hubspot") == {"contacts": title}
        assert s.score_detail("hubspot", "1") == {"title": title}
        assert [x["after"] for x in s.audit_for_run("r-" + title)] == [title]
        assert s.audit_for_run("r-acme" if title == "globex" else "r-globex") == []
        assert s.task_entries(["hubspot:1:sql"])["hubspot:1:sql"]["payload"] == {"owner_id": title}
        assert [f["message"] for f in s.failures()] == [title]
        assert [h["payload"] for h in s.handoffs()] == [{"who": title}]
        assert s.meta_get("note") == title and s.model_fingerprint("hubspot")["label"] == title
        assert s.overrides() == [("unlink", "hubspot:1", "salesforce:" + title)]
        assert s.nurture_members("hubspot", "5", ["1"]) == {"1": (None, title)}
    # what one tenant did to its rows left the other's alone
    assert a.dirty("hubspot") == [] and b.dirty("hubspot") == ["1"]
    assert (a.task_entry("hubspot:1:sql")["status"], b.task_entry("hubspot:1:sql")["status"]) == ("created",
                                                                                                   "pending")
    assert a.has_written_to("hubspot") and not b.has_written_to("hubspot")
    assert [r["id"] for r in b.runs()] == ["r-globex"] and a.run("r-globex") is None
    assert b.last_runs()["hubspot:backfill"]["status"] == "running" and "hubspot:sync" not in b.last_runs()
    assert b.mark_killed_runs() == ["r-globex"]  # no process holds globex's lock: its running run is dead
    assert a.run("r-acme-2")["status"] == "running" and b.run("r-globex")["status"] == "killed"
    # each text is stored once per tenant; the default tenant of the same database holds nothing
    assert sorted(a.db.execute("SELECT tenant, count(*) FROM texts GROUP BY tenant").fetchall()) == [
        ("acme", 2), ("globex", 2)]
    assert default.count_contacts() == 0 and default.runs() == [] and default.meta_get("note") is None
    for s in (a, b, default):
        s.close()


def test_writer_lock_is_per_tenant_and_source(url):  # noqa: F811
    a, a_again, b, default = State(url, "acme"), State(url, "acme"), State(url, "globex"), State(url)
    try:
        with writer_lock(a, "hubspot"):
            with pytest.raises(LockBusy, match="another leadsync run .*hubspot of tenant acme"):
                with writer_lock(a_again, "hubspot"):
                    pass
            assert not lock_is_free(a_again, "hubspot")
            for other, source in ((b, "hubspot"), (default, "hubspot"), (a_again, "salesforce")):
                assert lock_is_free(other, source)
                with writer_lock(other, source):
                    pass
        with writer_lock(a_again, "hubspot"):  # released on exit
            pass
    finally:
        for s in (a, a_again, b, default):
            s.close()


def test_lock_names_keep_the_single_team_ones_for_tenant_default(tmp_path):
    """An older leadsync still running holds `hubspot.lock` / key `leadsync:hubspot`: tenant default
    must conflict with it, and another tenant must not."""
    default, acme = State(f"sqlite:///{tmp_path}/state.db"), State(f"sqlite:///{tmp_path}/state.db", "acme")
    assert writer_lock(default, "hubspot").path == tmp_path / "hubspot.lock"
    assert writer_lock(acme, "hubspot").path == tmp_path / "acme--hubspot.lock"
    with SourceLock(tmp_path, "hubspot"):  # what a single-team leadsync takes
        with pytest.raises(LockBusy, match=r"writing to hubspot; try again"):
            with writer_lock(default, "hubspot"):
                pass
        assert lock_is_free(acme, "hubspot")

    def key(name: str) -> int:
        return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)

    assert AdvisoryLock(default, "hubspot").key == key("leadsync:hubspot")
    assert AdvisoryLock(acme, "hubspot").key == key("leadsync:acme:hubspot")
    default.close()
    acme.close()


@pytest.mark.parametrize("bad", ["", "../etc", "a/b", " acme", "-x", "x" * 64])
def test_a_bad_tenant_name_is_refused_naming_it(tmp_path, bad):
    with pytest.raises(StateError, match="tenant"):
        State(f"sqlite:///{tmp_path}/state.db", tenant=bad)
    assert not list(tmp_path.iterdir())  # refused before anything is opened


# ----------------------------------------------------------------------------- end to end: two teams, one file


def test_two_tenants_on_twin_sandboxes_end_as_each_alone(tmp_path, monkeypatch):
    """Two teams whose CRMs hold the same record ids (sandboxes seeded alike) sync through one state file and
    end with the CRM state a team alone gets. Without the tenant key the second team's records would read as
    the first's echoes, and nothing would be written to its CRMs."""
    from sandbox.run import start_sandbox
    from sandbox.seed import default_anchor
    from tests.sync.test_crash_safety import crm_state

    for name in [k for k in os.environ if k.startswith("LEADSYNC_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    anchor = default_anchor()
    alone, first, second = (start_sandbox(contacts=200, seed=5, anchor=anchor) for _ in range(3))
    try:
        states = {"alone": State(f"sqlite:///{tmp_path}/alone/state.db"),
                  "acme": State(f"sqlite:///{tmp_path}/shared/state.db", tenant="acme"),
                  "globex": State(f"sqlite:///{tmp_path}/shared/state.db", tenant="globex")}
        boxes = {"alone": alone, "acme": first, "globex": second}
        for kind in ("backfill", "sync"):  # the two teams' runs interleave on the shared file
            for name in states:
                summaries = run(boxes[name], states[name], kind)
                assert summaries and all(s.status == "ok" and s.failed == 0 for s in summaries), summaries
        want = [crm_state(alone, source) for source in ("hubspot", "salesforce")]
        assert sum(sum(tasks.values()) for _, tasks in want) > 0, "the scenario hands off"
        for name in ("acme", "globex"):
            assert [crm_state(boxes[name], source) for source in ("hubspot", "salesforce")] == want, name
            assert states[name].count_contacts() == states["alone"].count_contacts()
            assert [r["kind"] for r in states[name].runs()] == [r["kind"] for r in states["alone"].runs()]
        for s in states.values():
            s.close()
    finally:
        for sb in (alone, first, second):
            sb.stop()


def run(sb: Any, state: State, kind: str) -> list[Any]:
    """`leadsync backfill` / `leadsync sync --once` of both CRMs, in process, for the state's tenant."""
    from connectors.hubspot.settings import HubSpotSettings
    from connectors.salesforce.settings import SalesforceSettings
    from scoring import default_model
    from sync.cli import run_sources
    from sync.schedule import daily_rescore, note_rescore
    from sync.settings import Settings

    env = sb.env()
    settings = Settings(
        hubspot=HubSpotSettings(access_token=env["LEADSYNC_HUBSPOT__ACCESS_TOKEN"],
                                base_url=env["LEADSYNC_HUBSPOT__BASE_URL"]),
        salesforce=SalesforceSettings(instance_url=env["LEADSYNC_SALESFORCE__INSTANCE_URL"],
                                      session_id=env["LEADSYNC_SALESFORCE__SESSION_ID"],
                                      ca_bundle=env["LEADSYNC_SALESFORCE__CA_BUNDLE"]),
        state_url=state.url)
    sources = ["hubspot", "salesforce"]
    today = datetime.now(timezone.utc).date()
    if kind == "backfill":
        for source in sources:
            note_rescore(state, source, today)
    else:
        daily_rescore(state, sources, today)
    return [s for s, _ in run_sources(settings, state, sources, kind, default_model())]

