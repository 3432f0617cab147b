"""The state store's schema, as its migrations: `sync/state.py` applies them, one transaction per version.

Kept apart from the store's queries so each stays readable; versions 1-8 moved here unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from itertools import groupby
from typing import Any

import orjson

from sync.db import Database, StateError
from sync.state_codec import Codec
from sync.state_rows import _audit_text, _ms

SCHEMA_VERSION = 12

# Each migration is a list of statements in the SQL both engines share; `$name` slots are
# the dialect's words (sync/db.py). A step SQL cannot spell is a function of the database, run
# in the same transaction. A version, once released, is never edited: add one.
_MIGRATIONS: dict[int, list[str | Callable[[Database], None]]] = {
    1: [
        """CREATE TABLE contacts (
        source TEXT NOT NULL, id TEXT NOT NULL, object_type TEXT NOT NULL, email TEXT,
        data TEXT NOT NULL, hash TEXT NOT NULL, updated_at TEXT, seen_run TEXT,
        PRIMARY KEY (source, id))""",
        "CREATE INDEX contacts_email ON contacts (source, email)",
        """CREATE TABLE engagements (
        source TEXT NOT NULL, id TEXT NOT NULL, contact_id TEXT NOT NULL, contact_email TEXT,
        kind TEXT NOT NULL, occurred_at TEXT NOT NULL, detail TEXT NOT NULL, campaign TEXT NOT NULL,
        PRIMARY KEY (source, id))""",
        "CREATE INDEX engagements_contact ON engagements (source, contact_id)",
        "CREATE TABLE dirty (source TEXT NOT NULL, contact_id TEXT NOT NULL, PRIMARY KEY (source, contact_id))",
        """CREATE TABLE watermarks (source TEXT NOT NULL, stream TEXT NOT NULL, value TEXT NOT NULL,
        updated_at TEXT NOT NULL, PRIMARY KEY (source, stream))""",
        """CREATE TABLE scores (
        source TEXT NOT NULL, contact_id TEXT NOT NULL, fit INTEGER, engagement INTEGER, total INTEGER,
        stage TEXT, crm_stage TEXT, detail TEXT NOT NULL, scored_at TEXT NOT NULL,
        PRIMARY KEY (source, contact_id))""",
        """CREATE TABLE stage_history (
        source TEXT NOT NULL, contact_id TEXT NOT NULL, from_stage TEXT, to_stage TEXT NOT NULL,
        at TEXT NOT NULL, run_id TEXT NOT NULL)""",
        """CREATE TABLE runs (
        id TEXT PRIMARY KEY, kind TEXT NOT NULL, source TEXT NOT NULL, status TEXT NOT NULL,
        started_at TEXT NOT NULL, finished_at TEXT, summary TEXT NOT NULL DEFAULT '{}')""",
        """CREATE TABLE audit (
        run_id TEXT NOT NULL, source TEXT NOT NULL, object_type TEXT NOT NULL, record_id TEXT NOT NULL,
        field TEXT NOT NULL, before TEXT, after TEXT, at TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'ok')""",
        "CREATE INDEX audit_run ON audit (run_id, record_id)",
        """CREATE TABLE task_ledger (
        key TEXT PRIMARY KEY, source TEXT NOT NULL, contact_id TEXT NOT NULL, stage TEXT NOT NULL,
        status TEXT NOT NULL, crm_id TEXT, run_id TEXT NOT NULL, created_at TEXT NOT NULL,
        confirmed_at TEXT, owner_id TEXT, due_at TEXT, completed_at TEXT, payload TEXT NOT NULL DEFAULT '{}')""",
        """CREATE TABLE failures (
        source TEXT NOT NULL, change_key TEXT NOT NULL, record_id TEXT NOT NULL, kind TEXT NOT NULL,
        error_code TEXT, message TEXT, fields TEXT, attempts INTEGER NOT NULL, status TEXT NOT NULL,
        run_id TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (source, change_key))""",
        """CREATE TABLE issues (
        run_id TEXT NOT NULL, source TEXT NOT NULL, record_id TEXT NOT NULL, field TEXT NOT NULL,
        message TEXT NOT NULL, at TEXT NOT NULL)""",
    ],
    # The audit log is read back in write order (undo replays it). That order was SQLite's
    # rowid, which PostgreSQL lacks: give it an explicit auto-numbered `seq`, numbering the
    # rows an old file already holds in their rowid order.
    2: [
        """CREATE TABLE audit_v2 (
        seq $autoid, run_id TEXT NOT NULL, source TEXT NOT NULL, object_type TEXT NOT NULL,
        record_id TEXT NOT NULL, field TEXT NOT NULL, before TEXT, after TEXT, at TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'ok')""",
        """INSERT INTO audit_v2 (run_id, source, object_type, record_id, field, before, after, at, status)
        SELECT run_id, source, object_type, record_id, field, before, after, at, status FROM audit
        ORDER BY $insertion_order""",
        "DROP TABLE audit",
        "ALTER TABLE audit_v2 RENAME TO audit",
        "CREATE INDEX audit_run ON audit (run_id, record_id)",
    ],
    # The person layer: cross-CRM links each record names (looked up both ways), a person's manual
    # identity decisions, and the hand-off ledger (records created in another CRM, exactly once).
    3: [
        """CREATE TABLE record_links (source TEXT NOT NULL, id TEXT NOT NULL, target TEXT NOT NULL,
        PRIMARY KEY (source, id, target))""",
        "CREATE INDEX record_links_target ON record_links (target)",
        "CREATE INDEX contacts_email_any ON contacts (email)",
        """CREATE TABLE identity_overrides (kind TEXT NOT NULL, a TEXT NOT NULL, b TEXT NOT NULL, at TEXT NOT NULL,
        PRIMARY KEY (kind, a, b))""",
        """CREATE TABLE handoffs (
        key TEXT PRIMARY KEY, origin TEXT NOT NULL, target TEXT NOT NULL, object_type TEXT NOT NULL,
        status TEXT NOT NULL, crm_id TEXT, run_id TEXT NOT NULL, created_at TEXT NOT NULL, confirmed_at TEXT,
        payload TEXT NOT NULL)""",
        "CREATE INDEX handoffs_target ON handoffs (target, status)",
    ],
    # Compact engagement rows (about a third of the bytes): the time as epoch milliseconds, each distinct
    # detail and campaign text stored once in `texts` and named by number, and on SQLite no rowid beside the
    # (source, id) key. Nothing is dropped: every row and every text comes across.
    4: [
        "CREATE TABLE texts (id $autoid, text TEXT NOT NULL UNIQUE)",
        "INSERT INTO texts (text) SELECT DISTINCT detail FROM engagements UNION SELECT DISTINCT campaign FROM engagements",
        """CREATE TABLE engagements_v4 (
        source TEXT NOT NULL, id TEXT NOT NULL, contact_id TEXT NOT NULL, contact_email TEXT, kind TEXT NOT NULL,
        at BIGINT NOT NULL, detail BIGINT NOT NULL, campaign BIGINT NOT NULL, PRIMARY KEY (source, id)) $without_rowid""",
        """INSERT INTO engagements_v4 (source, id, contact_id, contact_email, kind, at, detail, campaign)
        SELECT e.source, e.id, e.contact_id, e.contact_email, e.kind, $occurred_ms, d.id, c.id
        FROM engagements e JOIN texts d ON d.text = e.detail JOIN texts c ON c.text = e.campaign""",
        "DROP TABLE engagements",
        "ALTER TABLE engagements_v4 RENAME TO engagements",
        "CREATE INDEX engagements_contact ON engagements (source, contact_id)",
    ],
    # Stage history the CRMs keep (field history, stage-date properties, creation and conversion dates), each
    # entry marked with its origin, and the records' opportunities: the funnel's past from the first backfill.
    5: [
        """CREATE TABLE crm_stage_history (
        source TEXT NOT NULL, contact_id TEXT NOT NULL, stage TEXT NOT NULL, entered_at TEXT NOT NULL,
        origin TEXT NOT NULL, run_id TEXT NOT NULL, PRIMARY KEY (source, contact_id, stage, origin, entered_at))""",
        """CREATE TABLE opportunities (
        source TEXT NOT NULL, id TEXT NOT NULL, contact_id TEXT, created_at TEXT NOT NULL, close_date TEXT,
        is_closed INTEGER NOT NULL, is_won INTEGER NOT NULL, stage_name TEXT, amount DOUBLE PRECISION, owner_id TEXT,
        run_id TEXT NOT NULL, PRIMARY KEY (source, id))""",
        "CREATE INDEX opportunities_contact ON opportunities (source, contact_id)",
        """CREATE TABLE owners (source TEXT NOT NULL, id TEXT NOT NULL, name TEXT, email TEXT, active INTEGER NOT NULL,
        updated_at TEXT NOT NULL, PRIMARY KEY (source, id))""",
    ],
    # What a connector keeps between runs besides watermarks: metadata it would otherwise read every run
    # (Salesforce describes, checked with one conditional call), as the connector's own JSON.
    6: [
        """CREATE TABLE connector_cache (source TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,
        updated_at TEXT NOT NULL, PRIMARY KEY (source, name))""",
    ],
    # Owner routing and alerts (sync/routing_state.py): each person's assignment (looked up by any of their
    # record keys, so a re-run keeps the rep), round-robin counts per team and rep, and the alert ledger
    # (one row per alert and target, committed before it is sent: at most once).
    7: [
        """CREATE TABLE route_assignments (record_key TEXT PRIMARY KEY, person TEXT NOT NULL, rep TEXT,
        team TEXT, rule TEXT NOT NULL, owner_id TEXT, reasons TEXT NOT NULL, run_id TEXT NOT NULL, at TEXT NOT NULL)""",
        """CREATE TABLE route_counters (team TEXT NOT NULL, rep TEXT NOT NULL, assigned INTEGER NOT NULL,
        PRIMARY KEY (team, rep))""",
        """CREATE TABLE alerts (key TEXT PRIMARY KEY, kind TEXT NOT NULL, task_key TEXT NOT NULL,
        channel TEXT NOT NULL, target TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL,
        error TEXT, payload TEXT NOT NULL, run_id TEXT NOT NULL, created_at TEXT NOT NULL, sent_at TEXT)""",
        "CREATE INDEX alerts_status ON alerts (status)",
        "CREATE INDEX alerts_task ON alerts (task_key)",
    ],
    # Nurture: the records leadsync believes are members of a nurture target (a HubSpot list, a Salesforce
    # Campaign), with the CampaignMember id, so a sync whose decision is unchanged makes no membership call.
    8: [
        """CREATE TABLE nurture_members (source TEXT NOT NULL, target TEXT NOT NULL, record_id TEXT NOT NULL,
        member_id TEXT, status TEXT, run_id TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (source, target, record_id))""",
    ],
}



def _keyed_by_tenant(table: str, columns: str, key: str, indexes: tuple[str, ...] = (), after: str = "") -> list[str]:
    """Migration 9's rebuild of one table: `tenant` first, every existing row under 'default' with its values as
    they were. SQLite cannot alter a primary key, so both engines copy into a new table and rename it; indexes are
    made after the old table (and its index names) is gone. Part of a released migration: never edit it.
    """
    names = ", ".join(c.split()[0] for c in columns.split(","))
    return [
        f"CREATE TABLE {table}_v9 (tenant TEXT NOT NULL, {columns}{', ' + key if key else ''}) {after}",
        f"INSERT INTO {table}_v9 (tenant, {names}) SELECT 'default', {names} FROM {table}",
        f"DROP TABLE {table}",
        f"ALTER TABLE {table}_v9 RENAME TO {table}",
        *(f"CREATE INDEX {name} ON {table} (tenant, {cols})" for name, _, cols in (i.partition(" ") for i in indexes)),
    ]


# Tenancy: many teams (tenants) share one state database, and two teams' CRMs can hold the same record ids, so
# every table's key leads with the tenant. Ids unique by construction (a run's uuid, audit's `seq`, a text's `id`)
# stay the key, the tenant beside them; audit's `seq` and texts' `id` keep their values (undo reads audit by `seq`,
# engagement rows name texts by `id`) and the identity moves past them. `meta` keeps the schema version only: the
# per-team facts move to `tenant_meta`. A single-team state becomes tenant 'default' with nothing lost.
_MIGRATIONS[9] = [
    *_keyed_by_tenant(
        "contacts", "source TEXT NOT NULL, id TEXT NOT NULL, object_type TEXT NOT NULL, email TEXT, "
        "data TEXT NOT NULL, hash TEXT NOT NULL, updated_at TEXT, seen_run TEXT", "PRIMARY KEY (tenant, source, id)",
        ("contacts_email source, email", "contacts_email_any email")),
    *_keyed_by_tenant(
        "engagements", "source TEXT NOT NULL, id TEXT NOT NULL, contact_id TEXT NOT NULL, contact_email TEXT, "
        "kind TEXT NOT NULL, at BIGINT NOT NULL, detail BIGINT NOT NULL, campaign BIGINT NOT NULL",
        "PRIMARY KEY (tenant, source, id)", ("engagements_contact source, contact_id",), "$without_rowid"),
    *_keyed_by_tenant("texts", "id $autoid, text TEXT NOT NULL", "UNIQUE (tenant, text)"),
    *_keyed_by_tenant("dirty", "source TEXT NOT NULL, contact_id TEXT NOT NULL",
                      "PRIMARY KEY (tenant, source, contact_id)"),
    *_keyed_by_tenant("watermarks", "source TEXT NOT NULL, stream TEXT NOT NULL, value TEXT NOT NULL, "
                      "updated_at TEXT NOT NULL", "PRIMARY KEY (tenant, source, stream)"),
    *_keyed_by_tenant(
        "scores", "source TEXT NOT NULL, contact_id TEXT NOT NULL, fit INTEGER, engagement INTEGER, total INTEGER, "
        "stage TEXT, crm_stage TEXT, detail TEXT NOT NULL, scored_at TEXT NOT NULL",
        "PRIMARY KEY (tenant, source, contact_id)"),
    *_keyed_by_tenant("stage_history", "source TEXT NOT NULL, contact_id TEXT NOT NULL, from_stage TEXT, "
                      "to_stage TEXT NOT NULL, at TEXT NOT NULL, run_id TEXT NOT NULL", ""),
    *_keyed_by_tenant("runs", "id TEXT PRIMARY KEY, kind TEXT NOT NULL, source TEXT NOT NULL, status TEXT NOT NULL, "
                      "started_at TEXT NOT NULL, finished_at TEXT, summary TEXT NOT NULL DEFAULT '{}'", ""),
    *_keyed_by_tenant(
        "audit", "seq $autoid, run_id TEXT NOT NULL, source TEXT NOT NULL, object_type TEXT NOT NULL, "
        "record_id TEXT NOT NULL, field TEXT NOT NULL, before TEXT, after TEXT, at TEXT NOT NULL, "
        "status TEXT NOT NULL DEFAULT 'ok'", "", ("audit_run run_id, record_id",)),
    *_keyed_by_tenant(
        "task_ledger", "key TEXT NOT NULL, source TEXT NOT NULL, contact_id TEXT NOT NULL, stage TEXT NOT NULL, "
        "status TEXT NOT NULL, crm_id TEXT, run_id TEXT NOT NULL, created_at TEXT NOT NULL, confirmed_at TEXT, "
        "owner_id TEXT, due_at TEXT, completed_at TEXT, payload TEXT NOT NULL DEFAULT '{}'",
        "PRIMARY KEY (tenant, key)"),
    *_keyed_by_tenant(
        "failures", "source TEXT NOT NULL, change_key TEXT NOT NULL, record_id TEXT NOT NULL, kind TEXT NOT NULL, "
        "error_code TEXT, message TEXT, fields TEXT, attempts INTEGER NOT NULL, status TEXT NOT NULL, "
        "run_id TEXT NOT NULL, updated_at TEXT NOT NULL", "PRIMARY KEY (tenant, source, change_key)"),
    *_keyed_by_tenant("issues", "run_id TEXT NOT NULL, source TEXT NOT NULL, record_id TEXT NOT NULL, "
                      "field TEXT NOT NULL, message TEXT NOT NULL, at TEXT NOT NULL", ""),
    *_keyed_by_tenant("record_links", "source TEXT NOT NULL, id TEXT NOT NULL, target TEXT NOT NULL",
                      "PRIMARY KEY (tenant, source, id, target)", ("record_links_target target",)),
    *_keyed_by_tenant("identity_overrides", "kind TEXT NOT NULL, a TEXT NOT NULL, b TEXT NOT NULL, at TEXT NOT NULL",
                      "PRIMARY KEY (tenant, kind, a, b)"),
    *_keyed_by_tenant(
        "handoffs", "key TEXT NOT NULL, origin TEXT NOT NULL, target TEXT NOT NULL, object_type TEXT NOT NULL, "
        "status TEXT NOT NULL, crm_id TEXT, run_id TEXT NOT NULL, created_at TEXT NOT NULL, confirmed_at TEXT, "
        "payload TEXT NOT NULL", "PRIMARY KEY (tenant, key)", ("handoffs_target target, status",)),
    *_keyed_by_tenant(
        "crm_stage_history", "source TEXT NOT NULL, contact_id TEXT NOT NULL, stage TEXT NOT NULL, "
        "entered_at TEXT NOT NULL, origin TEXT NOT NULL, run_id TEXT NOT NULL",
        "PRIMARY KEY (tenant, source, contact_id, stage, origin, entered_at)"),
    *_keyed_by_tenant(
        "opportunities", "source TEXT NOT NULL, id TEXT NOT NULL, contact_id TEXT, created_at TEXT NOT NULL, "
        "close_date TEXT, is_closed INTEGER NOT NULL, is_won INTEGER NOT NULL, stage_name TEXT, "
        "amount DOUBLE PRECISION, owner_id TEXT, run_id TEXT NOT NULL", "PRIMARY KEY (tenant, source, id)",
        ("opportunities_contact source, contact_id",)),
    *_keyed_by_tenant("owners", "source TEXT NOT NULL, id TEXT NOT NULL, name TEXT, email TEXT, "
                      "active INTEGER NOT NULL, updated_at TEXT NOT NULL", "PRIMARY KEY (tenant, source, id)"),
    *_keyed_by_tenant("connector_cache", "source TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL, "
                      "updated_at TEXT NOT NULL", "PRIMARY KEY (tenant, source, name)"),
    *_keyed_by_tenant(
        "route_assignments", "record_key TEXT NOT NULL, person TEXT NOT NULL, rep TEXT, team TEXT, rule TEXT NOT NULL, "
        "owner_id TEXT, reasons TEXT NOT NULL, run_id TEXT NOT NULL, at TEXT NOT NULL",
        "PRIMARY KEY (tenant, record_key)"),
    *_keyed_by_tenant("route_counters", "team TEXT NOT NULL, rep TEXT NOT NULL, assigned INTEGER NOT NULL",
                      "PRIMARY KEY (tenant, team, rep)"),
    *_keyed_by_tenant(
        "alerts", "key TEXT NOT NULL, kind TEXT NOT NULL, task_key TEXT NOT NULL, channel TEXT NOT NULL, "
        "target TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL, error TEXT, payload TEXT NOT NULL, "
        "run_id TEXT NOT NULL, created_at TEXT NOT NULL, sent_at TEXT", "PRIMARY KEY (tenant, key)",
        ("alerts_status status", "alerts_task task_key")),
    *_keyed_by_tenant(
        "nurture_members", "source TEXT NOT NULL, target TEXT NOT NULL, record_id TEXT NOT NULL, member_id TEXT, "
        "status TEXT, run_id TEXT NOT NULL, at TEXT NOT NULL", "PRIMARY KEY (tenant, source, target, record_id)"),
    # Explicit values leave PostgreSQL's identity behind them: the next audit row or text must get a fresh number.
    "SELECT $identity_past_max FROM (SELECT 'audit' AS t, 'seq' AS c, max(seq) AS m FROM audit) AS x",
    "SELECT $identity_past_max FROM (SELECT 'texts' AS t, 'id' AS c, max(id) AS m FROM texts) AS x",
    "CREATE TABLE tenant_meta (tenant TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, "
    "PRIMARY KEY (tenant, key))",
    "INSERT INTO tenant_meta (tenant, key, value) SELECT 'default', key, value FROM meta WHERE key <> 'schema_version'",
    "DELETE FROM meta WHERE key <> 'schema_version'",
]



def _rows_in_key_order(db: Database, select: str, key: Sequence[str], size: int = 1000) -> Iterator[list[Any]]:
    """A table's rows a chunk at a time in key order (the key columns first in `select`), never all in memory."""
    order = ", ".join(key)
    after = f"({order}) > ({', '.join('?' * len(key))})"
    rows = db.execute(f"{select} ORDER BY {order} LIMIT {size}").fetchall()
    while rows:
        yield rows
        rows = db.execute(f"{select} WHERE {after} ORDER BY {order} LIMIT {size}", rows[-1][:len(key)]).fetchall()


def _pack_payloads(db: Database) -> None:
    """Migration 10's data step: every snapshot and score detail packed (sync/state_codec.py) into the new tables,
    each tenant's dictionaries trained from its own first rows; the archived flag and undo hold lifted into
    columns (the queries that filtered on them cannot read a packed payload). Part of a released migration."""
    codecs: dict[str, Codec] = {}
    for rows in _rows_in_key_order(db, "SELECT tenant, source, id, object_type, email, data, hash, updated_at, "
                                   "seen_run FROM contacts", ("tenant", "source", "id")):
        out = []
        for (tenant, source), group in groupby(rows, key=lambda r: (r[0], r[1])):
            part = list(group)
            codec = codecs.get(tenant) or codecs.setdefault(tenant, Codec(db, tenant))
            packed = codec.pack(f"contacts:{source}", [r[5] for r in part])
            out += [(*r[:5], int('"archived":true' in r[5]), p, *r[6:]) for r, p in zip(part, packed, strict=True)]
        db.executemany("INSERT INTO contacts_v10 (tenant, source, id, object_type, email, archived, data, hash, "
                       "updated_at, seen_run) VALUES (?,?,?,?,?,?,?,?,?,?)", out)
    for rows in _rows_in_key_order(db, "SELECT tenant, source, contact_id, fit, engagement, total, stage, crm_stage, "
                                   "detail, scored_at FROM scores", ("tenant", "source", "contact_id")):
        out = []
        for (tenant, source), group in groupby(rows, key=lambda r: (r[0], r[1])):
            part = list(group)
            details = [orjson.loads(r[8]) for r in part]
            holds = [d.pop("undo_hold", None) for d in details]
            codec = codecs.get(tenant) or codecs.setdefault(tenant, Codec(db, tenant))
            packed = codec.pack(f"scores:{source}", [orjson.dumps(d, option=orjson.OPT_SORT_KEYS) for d in details])
            out += [(*r[:8], p, orjson.dumps(h, option=orjson.OPT_SORT_KEYS).decode() if h else None, r[9])
                    for r, p, h in zip(part, packed, holds, strict=True)]
        db.executemany("INSERT INTO scores_v10 (tenant, source, contact_id, fit, engagement, total, stage, crm_stage, "
                       "detail, hold, scored_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)", out)


# Lean rows (a hundred tenants on one machine): snapshots and score details packed with per-tenant zstd
# dictionaries (a tenth of their JSON), kept beside their key on SQLite without a rowid; the archived flag and a
# contact's undo hold in columns of their own; crm_stage_history without the rowid its key index duplicated; and
# the (tenant, source, email) index gone (every email look-up is served by (tenant, email)).
_MIGRATIONS[10] = [
    """CREATE TABLE codec_dicts (tenant TEXT NOT NULL, kind TEXT NOT NULL, no INTEGER NOT NULL, data $blob NOT NULL,
    created_at TEXT NOT NULL, PRIMARY KEY (tenant, kind, no))""",
    """CREATE TABLE contacts_v10 (tenant TEXT NOT NULL, source TEXT NOT NULL, id TEXT NOT NULL,
    object_type TEXT NOT NULL, email TEXT, archived INTEGER NOT NULL DEFAULT 0, data $blob NOT NULL,
    hash TEXT NOT NULL, updated_at TEXT, seen_run TEXT, PRIMARY KEY (tenant, source, id)) $without_rowid""",
    """CREATE TABLE scores_v10 (tenant TEXT NOT NULL, source TEXT NOT NULL, contact_id TEXT NOT NULL, fit INTEGER,
    engagement INTEGER, total INTEGER, stage TEXT, crm_stage TEXT, detail $blob NOT NULL, hold TEXT,
    scored_at TEXT NOT NULL, PRIMARY KEY (tenant, source, contact_id)) $without_rowid""",
    _pack_payloads,
    "DROP TABLE contacts",
    "ALTER TABLE contacts_v10 RENAME TO contacts",
    "CREATE INDEX contacts_email_any ON contacts (tenant, email)",
    "DROP TABLE scores",
    "ALTER TABLE scores_v10 RENAME TO scores",
    """CREATE TABLE crm_stage_history_v10 (tenant TEXT NOT NULL, source TEXT NOT NULL, contact_id TEXT NOT NULL,
    stage TEXT NOT NULL, entered_at TEXT NOT NULL, origin TEXT NOT NULL, run_id TEXT NOT NULL,
    PRIMARY KEY (tenant, source, contact_id, stage, origin, entered_at)) $without_rowid""",
    """INSERT INTO crm_stage_history_v10 (tenant, source, contact_id, stage, entered_at, origin, run_id)
    SELECT tenant, source, contact_id, stage, entered_at, origin, run_id FROM crm_stage_history""",
    "DROP TABLE crm_stage_history",
    "ALTER TABLE crm_stage_history_v10 RENAME TO crm_stage_history",
]



def _pack_audit(db: Database) -> None:
    """Migration 11's data step: an audit row per field becomes one per record write (its first `seq`, its fields
    packed in write order), the time epoch milliseconds. Part of a released migration."""
    codecs: dict[str, Codec] = {}
    for rows in _rows_in_key_order(db, "SELECT seq, tenant, run_id, source, object_type, record_id, field, before, "
                                   "after, at, status FROM audit", ("seq",)):
        writes = [(group[0][0], *key, [(r[6], r[7], r[8]) for r in group]) for key, group in _consecutive(rows)]
        for (tenant, source), group in groupby(writes, key=lambda w: (w[1], w[3])):
            part = list(group)
            codec = codecs.get(tenant) or codecs.setdefault(tenant, Codec(db, tenant))
            packed = codec.pack(f"audit:{source}", [_audit_text(w[-1]) for w in part])
            out = [(w[0], *w[1:6], p, _upgrade_ms(w[6], f"audit row {w[0]}"), w[7])
                   for w, p in zip(part, packed, strict=True)]
            db.executemany("INSERT INTO audit_v11 (seq, tenant, run_id, source, object_type, record_id, changes, at, "
                           "status) VALUES (?,?,?,?,?,?,?,?,?)", out)


def _consecutive(rows: Sequence[Any]) -> Iterator[tuple[tuple[Any, ...], list[Any]]]:
    """Runs of audit rows one record write made: same tenant, run, record, time and status."""
    for key, group in groupby(rows, key=lambda r: (r[1], r[2], r[3], r[4], r[5], r[9], r[10])):
        yield key, list(group)


def _upgrade_ms(at: str, row: str) -> int:
    """An ISO 8601 time as epoch ms; one a migration cannot read names its row (the upgrade then rolls back)."""
    try:
        return _ms(datetime.fromisoformat(at))
    except (TypeError, ValueError):
        raise StateError(f"{row}: its time {at!r} is not an ISO 8601 time; correct it, then "
                         "start leadsync again to finish the upgrade") from None


# Lean audit (a hundred tenants on one machine): one row per record write instead of one per field, its field
# changes packed like snapshots (a write-back's reason text repeats across records), its time in epoch ms.
_MIGRATIONS[11] = [
    """CREATE TABLE audit_v11 (tenant TEXT NOT NULL, seq $autoid, run_id TEXT NOT NULL, source TEXT NOT NULL,
    object_type TEXT NOT NULL, record_id TEXT NOT NULL, changes $blob NOT NULL, at BIGINT NOT NULL,
    status TEXT NOT NULL DEFAULT 'ok')""",
    _pack_audit,
    "DROP TABLE audit",
    "ALTER TABLE audit_v11 RENAME TO audit",
    "CREATE INDEX audit_run ON audit (tenant, run_id, record_id)",
    "SELECT $identity_past_max FROM (SELECT 'audit' AS t, 'seq' AS c, max(seq) AS m FROM audit) AS x",
]


def _times_ms(db: Database) -> None:
    """Migration 12's data step: every CRM stage entry and score row copied with its time as epoch milliseconds
    (a CRM's stage times are whole milliseconds at most; a score's time says when, not to the microsecond).
    Part of a released migration."""
    key = ("tenant", "source", "contact_id", "stage", "origin", "entered_at")
    for rows in _rows_in_key_order(db, f"SELECT {', '.join(key)}, run_id FROM crm_stage_history", key):
        db.executemany("INSERT INTO crm_stage_history_v12 (tenant, source, contact_id, stage, origin, entered_at, "
                       "run_id) VALUES (?,?,?,?,?,?,?)", [(*r[:5], _upgrade_ms(
                           r[5], f"crm_stage_history {r[1]}:{r[2]} ({r[3]}, {r[4]})"), r[6]) for r in rows])
    columns = "tenant, source, contact_id, fit, engagement, total, stage, crm_stage, detail, hold, scored_at"
    for rows in _rows_in_key_order(db, f"SELECT {columns} FROM scores", ("tenant", "source", "contact_id")):
        db.executemany(f"INSERT INTO scores_v12 ({columns}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                       [(*r[:10], _upgrade_ms(r[10], f"score {r[1]}:{r[2]}")) for r in rows])


# Lean contact and stage rows (a hundred tenants on one machine): a contact's modification time is in its
# snapshot already (the column was a second copy no query read); its content hash is 64 bits, the first half of
# the old one (it is only compared with the same record's previous hash); a CRM stage entry's and a score's time
# are epoch ms, as an engagement's is.
_MIGRATIONS[12] = [
    """CREATE TABLE contacts_v12 (tenant TEXT NOT NULL, source TEXT NOT NULL, id TEXT NOT NULL,
    object_type TEXT NOT NULL, email TEXT, archived INTEGER NOT NULL DEFAULT 0, data $blob NOT NULL,
    hash TEXT NOT NULL, seen_run TEXT, PRIMARY KEY (tenant, source, id)) $without_rowid""",
    """INSERT INTO contacts_v12 (tenant, source, id, object_type, email, archived, data, hash, seen_run)
    SELECT tenant, source, id, object_type, email, archived, data, substr(hash, 1, 16), seen_run FROM contacts""",
    "DROP TABLE contacts",
    "ALTER TABLE contacts_v12 RENAME TO contacts",
    "CREATE INDEX contacts_email_any ON contacts (tenant, email)",
    """CREATE TABLE crm_stage_history_v12 (tenant TEXT NOT NULL, source TEXT NOT NULL, contact_id TEXT NOT NULL,
    stage TEXT NOT NULL, entered_at BIGINT NOT NULL, origin TEXT NOT NULL, run_id TEXT NOT NULL,
    PRIMARY KEY (tenant, source, contact_id, stage, origin, entered_at)) $without_rowid""",
    """CREATE TABLE scores_v12 (tenant TEXT NOT NULL, source TEXT NOT NULL, contact_id TEXT NOT NULL, fit INTEGER,
    engagement INTEGER, total INTEGER, stage TEXT, crm_stage TEXT, detail $blob NOT NULL, hold TEXT,
    scored_at BIGINT NOT NULL, PRIMARY KEY (tenant, source, contact_id)) $without_rowid""",
    _times_ms,
    "DROP TABLE crm_stage_history",
    "ALTER TABLE crm_stage_history_v12 RENAME TO crm_stage_history",
    "DROP TABLE scores",
    "ALTER TABLE scores_v12 RENAME TO scores",
]

_META_DDL = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
