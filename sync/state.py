"""The state store: snapshots, watermarks, runs, audit log, task ledger, failures.

SQLite by default; the same code runs on PostgreSQL given a `postgresql://`
URL (the few differences live in `sync/db.py`). Many tenants (teams) can share
one database: every table's key leads with the tenant, and a `State` reads and
writes its own tenant's rows only, so two teams' CRMs may reuse the same record
ids. The schema is versioned (sync/state_schema.py); an old database is
migrated forward, one transaction per version, never silently recreated (a
single-team one becomes tenant `default`), and one newer than this code is
refused. Contacts are kept as a canonical JSON snapshot plus a hash, so an
incoming record that equals what we last saw (our own write echoing back
included) is recognised without re-scoring it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import fields, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from mapping.model import Contact, Engagement, EngagementKind, Opportunity, Stage, StageEntry
from sync.db import (
    DEFAULT_TENANT,
    SQLITE_MEMORY,
    Cursor,
    Database,
    StateError,
    connect,
    marks,
    mask_url,
    sqlite_path,
    upsert_sql,
)
from sync.state_schema import _META_DDL, _MIGRATIONS, SCHEMA_VERSION

#: What a tenant may be called: it names lock files and advisory-lock keys, so nothing that reaches a path.
_TENANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")

_SET_VERSION = upsert_sql("meta", ["key", "value"], ["key"])
_SET_META = upsert_sql("tenant_meta", ["tenant", "key", "value"], ["tenant", "key"])

# Every row leads with its tenant; the upserts' conflict targets are the tables' keys (sync/state_schema.py, v9).
_CONTACT_COLUMNS = ["tenant", "source", "id", "object_type", "email", "data", "hash", "updated_at", "seen_run"]
_SCORE_COLUMNS = ["tenant", "source", "contact_id", "fit", "engagement", "total", "stage", "crm_stage", "detail",
                  "scored_at"]
_FAILURE_COLUMNS = ["tenant", "source", "change_key", "record_id", "kind", "error_code", "message", "fields",
                    "attempts", "status", "run_id", "updated_at"]
_HISTORY_COLUMNS = ["tenant", "source", "contact_id", "stage", "entered_at", "origin", "run_id"]
_OPPORTUNITY_COLUMNS = ["tenant", "source", "id", "contact_id", "created_at", "close_date", "is_closed", "is_won",
                        "stage_name", "amount", "owner_id", "run_id"]
_OWNER_COLUMNS = ["tenant", "source", "id", "name", "email", "active", "updated_at"]
_AUDIT_COLUMNS = "tenant, run_id, source, object_type, record_id, field, before, after, at, status"
_UPSERT_CONTACT = upsert_sql("contacts", _CONTACT_COLUMNS, ["tenant", "source", "id"])
_REWRITE_SNAPSHOT = "UPDATE contacts SET data=?, hash=? WHERE tenant=? AND source=? AND id=?"
_DIRTY_KEY = ["tenant", "source", "contact_id"]
_SCORE_DETAIL = "SELECT detail FROM scores WHERE tenant=? AND source=? AND contact_id=?"


def _iso(dt: datetime | None) -> str | None:
    return dt.astimezone(timezone.utc).isoformat() if dt else None


def _ms(dt: datetime) -> int:
    """Epoch milliseconds (a naive time is UTC): how engagement times are stored."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return round(dt.timestamp() * 1000)


def _from_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _dt(s: str | None) -> datetime | None:
    return datetime.fromisoformat(s) if s else None


def norm_value(v: Any) -> str | None:
    """One spelling per value, so '42', 42 and 42.0 compare equal across CRMs."""
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(int(v)) if float(v).is_integer() else repr(float(v))
    s = str(v)
    try:
        f = float(s)
    except ValueError:
        return s
    if s.strip() and f.is_integer() and s.replace(".", "", 1).lstrip("-").isdigit():
        return str(int(f))
    return s


_RUN_SELECT = "SELECT id, kind, source, status, started_at, finished_at, summary FROM runs"
_CONTACT_FIELDS = [f.name for f in fields(Contact)]
#: The email beside a record id in what people read (runs show, failures); NULL for a record not stored.
_EMAIL_JOIN = "LEFT JOIN contacts c ON c.tenant = {t}.tenant AND c.source = {t}.source AND c.id = {t}.{id}"


def _contact_dict(c: Contact) -> dict[str, Any]:
    d = {}
    for name in _CONTACT_FIELDS:
        v = getattr(c, name)
        if isinstance(v, datetime):
            v = _iso(v)
        elif name == "managed":
            v = {k: norm_value(x) for k, x in sorted(v.items())}
        elif name == "extra":
            v = dict(sorted(v.items()))
        elif name == "links":
            v = sorted(v)
        d[name] = v
    return d


def _dumps(d: dict[str, Any]) -> str:
    return json.dumps(d, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def contact_to_json(c: Contact) -> str:
    return _dumps(_contact_dict(c))


def snapshot(c: Contact) -> tuple[str, str]:
    """The stored JSON and the content hash, from one pass over the contact.

    The JSON leaves out fields at their default (no email, not archived, no extras, …): a third of a
    snapshot's bytes. The hash is taken over every field, so it does not depend on how the text is spelt.
    """
    d = _contact_dict(c)
    text = _dumps({k: v for k, v in d.items() if _JSON_DEFAULTS.get(k, _KEEP) != v})
    d.pop("updated_at", None)  # `updated_at` alone changing is an echo, not a change
    return text, hashlib.blake2b(_dumps(d).encode(), digest_size=16).hexdigest()


_KEEP = object()
#: Field values a snapshot's JSON may omit (read back as the dataclass defaults).
_JSON_DEFAULTS: dict[str, Any] = {
    name: value for name, value in _contact_dict(Contact(source="", id="")).items()
    if name not in ("source", "id") and (value is None or value in (False, {}, [], "contacts"))}


def contact_from_json(s: str) -> Contact:
    d = json.loads(s)
    for k in ("created_at", "updated_at"):
        d[k] = _dt(d.get(k))
    if d.get("lifecycle_stage"):
        d["lifecycle_stage"] = Stage(d["lifecycle_stage"])
    d["links"] = tuple(d.get("links") or ())
    return Contact(**d)


def content_hash(c: Contact) -> str:
    """Hash of what matters for scoring and diffing; `updated_at` alone changing is an echo."""
    return snapshot(c)[1]


def _record_filter(tenant: str, source: str | None, contact_ids: Sequence[str] | None
                   ) -> tuple[str, tuple[Any, ...]]:
    """A WHERE clause on (tenant, source, contact_id) for the history reads; no filter reads the whole tenant."""
    clauses, args = ["tenant=?"], [tenant]
    if source is not None:
        clauses.append("source=?")
        args.append(source)
    if contact_ids is not None:
        clauses.append(f"contact_id IN ({marks(len(contact_ids))})" if contact_ids else "1=0")
        args.extend(contact_ids)
    return " WHERE " + " AND ".join(clauses), tuple(args)


def _dicts(cur: Cursor) -> list[dict[str, Any]]:
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur]


class State:
    """A thin, explicit wrapper over the database. One instance per process.

    `url` picks the engine: `sqlite:///PATH` (the default) or `postgresql://…`. `path` is the
    SQLite file, or `:memory:` when the state lives in no local file (in-memory SQLite, PostgreSQL).
    `db` runs SQL written in the shared spelling (`?` placeholders) on either engine.
    `tenant` is the team this instance reads and writes: every statement is scoped to it, so tenants
    sharing one database never see each other's rows (their CRMs may reuse the same record ids).
    """

    def __init__(self, url: str, tenant: str = DEFAULT_TENANT) -> None:
        if not _TENANT_NAME.fullmatch(tenant):
            raise StateError(f"tenant {tenant!r}: a tenant name is letters, digits, '_', '-' and '.' "
                             "(at most 63, starting with a letter or digit)")
        self.url = url
        self.tenant = tenant
        self.path = sqlite_path(url) or SQLITE_MEMORY
        self.db: Database = connect(url)
        # Detail and campaign texts by number and back; only rows known committed or written in the open
        # transaction get here, and a rolled-back transaction empties both (see `tx`).
        self._texts_by_value: dict[str, int] = {}
        self._texts_by_id: dict[int, str] = {}
        self._migrate()

    @property
    def engine(self) -> str:
        """`sqlite` or `postgresql`."""
        return self.db.dialect.name

    def describe_url(self) -> str:
        """The state URL with any password masked: the only spelling of it fit to log or print."""
        return mask_url(self.url)

    def _schema_version(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(row[0]) if row else 0

    def _migrate(self) -> None:
        self.db.execute(self.db.dialect.ddl(_META_DDL))
        current = self._schema_version()
        if current > SCHEMA_VERSION:
            raise StateError(
                f"state database {self.describe_url()} has schema {current}, "
                f"newer than this leadsync ({SCHEMA_VERSION}): upgrade leadsync"
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            self._apply_migration(version)

    def _apply_migration(self, version: int) -> None:
        """One version, one transaction: it lands whole or not at all (DDL is transactional on both).

        The version is read again under the lock, so a process that lost the race to migrate
        finds the work done instead of failing on "table already exists".
        """
        with self.db.transaction():
            if self.db.dialect.migration_lock:
                self.db.execute(self.db.dialect.migration_lock)
            if self._schema_version() >= version:
                return
            for statement in _MIGRATIONS[version]:
                self.db.execute(self.db.dialect.ddl(statement))
            self.db.execute(_SET_VERSION, ("schema_version", str(version)))

    @contextmanager
    def tx(self) -> Iterator[Database]:
        """Group writes: all land or none (a write lock from the start on SQLite)."""
        try:
            with self.db.transaction() as db:
                yield db
        except BaseException:
            self._texts_by_value.clear()  # texts this transaction added are gone with it
            self._texts_by_id.clear()
            raise

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------- contacts
    def upsert_contacts(self, contacts: Sequence[Contact], run_id: str) -> list[str]:
        """Store snapshots; return the ids whose content changed (they need re-scoring)."""
        if not contacts:
            return []
        src = contacts[0].source
        ids = [c.id for c in contacts]
        known = dict(
            self.db.execute(
                f"SELECT id, hash FROM contacts WHERE tenant=? AND source=? AND id IN ({marks(len(ids))})",
                (self.tenant, src, *ids),
            ).fetchall()
        )
        rows, changed, echoes = [], [], []
        for c in contacts:
            text, h = snapshot(c)
            if known.get(c.id) == h:
                # Nothing but the modification time moved (our own write echoing back, most often): the stored
                # snapshot keeps its time, so "most recent value" profile rules see when a person last changed it.
                echoes.append((run_id, self.tenant, c.source, c.id))
                continue
            changed.append(c.id)
            email = c.email.strip().lower() if c.email else None
            rows.append((self.tenant, c.source, c.id, c.object_type, email, text, h, _iso(c.updated_at), run_id))
        self.db.executemany(_UPSERT_CONTACT, rows)
        self.db.executemany("UPDATE contacts SET seen_run=? WHERE tenant=? AND source=? AND id=?", echoes)
        self._set_links([c for c in contacts if c.id in set(changed)])
        self.mark_dirty(src, changed)
        return changed

    def _set_links(self, contacts: Sequence[Contact]) -> None:
        if not contacts:
            return
        self.db.executemany("DELETE FROM record_links WHERE tenant=? AND source=? AND id=?",
                            [(self.tenant, c.source, c.id) for c in contacts])
        rows = [(self.tenant, c.source, c.id, t) for c in contacts for t in c.links]
        if rows:
            self.db.executemany("INSERT INTO record_links (tenant, source, id, target) VALUES (?,?,?,?)", rows)

    def put_contact(self, c: Contact, run_id: str) -> None:
        """Store a record leadsync itself created (a hand-off), as if pulled: its echo is then no change."""
        text, h = snapshot(c)
        email = c.email.strip().lower() if c.email else None
        self.db.execute(_UPSERT_CONTACT,
                        (self.tenant, c.source, c.id, c.object_type, email, text, h, _iso(c.updated_at), run_id))
        self._set_links([c])

    # ------------------------------------------------------------- identity (persons across CRMs)
    def records(self, keys: Iterable[str]) -> dict[str, Contact]:
        """Stored records by `source:id` key, whatever their source."""
        by_source: dict[str, list[str]] = {}
        for k in keys:
            source, _, rid = k.partition(":")
            by_source.setdefault(source, []).append(rid)
        out: dict[str, Contact] = {}
        for source, ids in by_source.items():
            out.update({c.key: c for c in self.contacts(source, ids).values()})
        return out

    def keys_by_emails(self, emails: Iterable[str]) -> list[str]:
        """Record keys (any source) whose normalised email is one of `emails`: keys only, so a batch fetches
        (and parses) just the records it does not hold yet."""
        return self._keys_where("contacts", "email", {e for e in emails if e})

    def keys_linking_to(self, keys: Iterable[str]) -> list[str]:
        """Records that name any of `keys` as the same human (the reverse of `Contact.links`)."""
        return self._keys_where("record_links", "target", set(keys))

    def _keys_where(self, table: str, column: str, values: set[str]) -> list[str]:
        wanted = sorted(values)
        out: list[str] = []
        for i in range(0, len(wanted), 500):
            part = wanted[i : i + 500]
            out += [f"{s}:{rid}" for s, rid in self.db.execute(
                f"SELECT source, id FROM {table} WHERE tenant=? AND {column} IN ({marks(len(part))})",
                (self.tenant, *part))]
        return out

    def identity_refs(self) -> Iterator[tuple[str, str, str, str | None, str]]:
        """(source, id, object_type, email, data) of every record, for a whole-state identity pass."""
        yield from self.db.execute(
            "SELECT source, id, object_type, email, data FROM contacts WHERE tenant=? ORDER BY source, id",
            (self.tenant,))

    def add_override(self, kind: str, a: str, b: str = "") -> None:
        """A person's identity decision; a new one about a record replaces what it said before."""
        self.db.execute("DELETE FROM identity_overrides WHERE tenant=? AND (a=? OR b=?)", (self.tenant, a, a))
        if b:
            self.db.execute("DELETE FROM identity_overrides WHERE tenant=? AND kind='unlink' AND a=?", (self.tenant, b))
        self.db.execute("INSERT INTO identity_overrides (tenant, kind, a, b, at) VALUES (?,?,?,?,?)",
                        (self.tenant, kind, a, b, _iso(datetime.now(timezone.utc))))

    def overrides(self, keys: Iterable[str] | None = None) -> list[tuple[str, str, str]]:
        """(kind, a, b) of the manual decisions touching `keys` (all of them when None)."""
        if keys is None:
            return [tuple(r) for r in self.db.execute(
                "SELECT kind, a, b FROM identity_overrides WHERE tenant=? ORDER BY at, a", (self.tenant,))]
        wanted = sorted(set(keys))
        out: set[tuple[str, str, str]] = set()
        for i in range(0, len(wanted), 400):
            part = tuple(wanted[i : i + 400])
            q = (f"SELECT kind, a, b FROM identity_overrides WHERE tenant=? AND (a IN ({marks(len(part))}) "
                 f"OR b IN ({marks(len(part))}))")
            out.update(tuple(r) for r in self.db.execute(q, (self.tenant, *part, *part)))
        return sorted(out)

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

    def archive_contact(self, source: str, contact_id: str) -> None:
        """A record leadsync deleted (undo): kept as history, no longer anyone's live record."""
        c = self.contacts(source, [contact_id]).get(contact_id)
        if c is not None:
            self._rewrite_snapshot(replace(c, archived=True))

    def handoffs_for_run(self, run_id: str) -> list[dict[str, Any]]:
        return _dicts(self.db.execute(
            "SELECT key, origin, target, object_type, status, crm_id FROM handoffs WHERE tenant=? AND run_id=? "
            "ORDER BY key", (self.tenant, run_id)))

    def set_managed(self, source: str, contact_id: str, values: dict[str, str | None],
                    stage: Stage | None = None, link: str | None = None) -> None:
        """Record what we wrote (the stage it means, the link it set), so the write echoing back is no change."""
        self.record_writes(source, [(contact_id, values, stage, link)])

    def record_writes(self, source: str,
                      writes: Sequence[tuple[str, Mapping[str, str | None], Stage | None, str | None]]) -> None:
        """`set_managed` for a batch of accepted writes: one read and one write of the snapshots, not one each."""
        found = self.contacts(source, [w[0] for w in writes])
        rows, linked = [], []
        for contact_id, values, stage, link in writes:
            c = found.get(contact_id)
            if c is None:
                continue
            managed = dict(c.managed)
            managed.update({k: norm_value(v) for k, v in values.items()})
            links = tuple(sorted({*c.links, link})) if link else c.links
            c = replace(c, managed=managed, lifecycle_stage=stage or c.lifecycle_stage, links=links)
            found[contact_id] = c
            rows.append((*snapshot(c), self.tenant, source, contact_id))
            if link:
                linked.append(c)
        self.db.executemany(_REWRITE_SNAPSHOT, rows)
        self._set_links(linked)

    def set_stage(self, source: str, contact_id: str, stage: Stage) -> None:
        """Keep the snapshot's canonical stage in step with what we wrote, so its echo is no change."""
        c = self.contacts(source, [contact_id]).get(contact_id)
        if c is not None:
            self._rewrite_snapshot(replace(c, lifecycle_stage=stage))

    def _rewrite_snapshot(self, c: Contact) -> None:
        self.db.execute(_REWRITE_SNAPSHOT, (*snapshot(c), self.tenant, c.source, c.id))

    def contacts(self, source: str, ids: Iterable[str]) -> dict[str, Contact]:
        ids = list(ids)
        out: dict[str, Contact] = {}
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            for (data,) in self.db.execute(
                f"SELECT data FROM contacts WHERE tenant=? AND source=? AND id IN ({marks(len(part))})",
                (self.tenant, source, *part),
            ):
                c = contact_from_json(data)
                out[c.id] = c
        return out

    def contact_by_email(self, email: str, source: str | None = None) -> list[Contact]:
        q = "SELECT data FROM contacts WHERE tenant=? AND email=?" + (" AND source=?" if source else "")
        args = (self.tenant, email.strip().lower()) + ((source,) if source else ())
        return [contact_from_json(d) for (d,) in self.db.execute(q, args)]

    def ids_by_email(self, source: str, emails: Iterable[str]) -> dict[str, str]:
        emails = list({e.strip().lower() for e in emails if e})
        out: dict[str, str] = {}
        for i in range(0, len(emails), 500):
            part = emails[i : i + 500]
            # A live contact wins over an archived (deleted or merged-away) one; then the lowest id.
            for email, cid in self.db.execute(
                f"SELECT email, id FROM contacts WHERE tenant=? AND source=? AND email IN ({marks(len(part))}) "
                "ORDER BY CASE WHEN data LIKE '%\"archived\":true%' THEN 1 ELSE 0 END, id",
                (self.tenant, source, *part),
            ):
                out.setdefault(email, cid)
        return out

    def all_contact_ids(self, source: str) -> list[str]:
        return [r[0] for r in self.db.execute(
            "SELECT id FROM contacts WHERE tenant=? AND source=? ORDER BY id", (self.tenant, source))]

    def count_contacts(self, source: str | None = None) -> int:
        return self._count("contacts", source)

    def _count(self, table: str, source: str | None) -> int:
        """Rows of the tenant in `table`, of one source or of all."""
        q = f"SELECT count(*) FROM {table} WHERE tenant=?" + (" AND source=?" if source else "")
        return self.db.execute(q, (self.tenant, source) if source else (self.tenant,)).fetchone()[0]


    # ------------------------------------------------------------- engagement
    def upsert_engagements(self, engagements: Sequence[Engagement]) -> list[str]:
        """Store engagement; return contact ids that got something new or changed.

        A known id whose contact, kind or time changed counts too: one Salesforce email is one engagement
        keyed by its Task, which turns from "sent" into "opened" when the EmailMessage shows the open.
        Rows that did not change are not written again (an overlapping window re-reads many).
        """
        if not engagements:
            return []
        src = engagements[0].source
        ids = [e.id for e in engagements]
        known: dict[str, tuple[Any, ...]] = {}
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            known.update((r[0], r[1:]) for r in self.db.execute(
                f"SELECT id, contact_id, kind, at, detail, campaign, contact_email FROM engagements "
                f"WHERE tenant=? AND source=? AND id IN ({marks(len(part))})", (self.tenant, src, *part)))
        text_id = self._text_ids({t for e in engagements for t in (e.detail, e.campaign)})
        rows, moved = [], set()
        for e in engagements:
            row = (e.contact_id, e.kind.value, _ms(e.occurred_at), text_id[e.detail], text_id[e.campaign],
                   e.contact_email)
            old = known.get(e.id)
            if old == row:
                continue
            rows.append((self.tenant, e.source, e.id, *row))
            if old is None or old[:3] != row[:3]:
                moved.add(e.contact_id)
        self.db.executemany(
            upsert_sql("engagements", ["tenant", "source", "id", "contact_id", "kind", "at", "detail", "campaign",
                                       "contact_email"], ["tenant", "source", "id"]), rows)
        touched = sorted(c for c in moved if c)
        self.mark_dirty(src, touched)
        return touched

    def _text_ids(self, texts: set[str]) -> dict[str, int]:
        """Numbers of detail and campaign texts, adding the new ones (each text is stored once)."""
        cache = self._texts_by_value
        missing = [t for t in texts if t not in cache]
        for attempt in range(2):
            for i in range(0, len(missing), 500):
                part = missing[i : i + 500]
                for tid, text in self.db.execute(
                        f"SELECT id, text FROM texts WHERE tenant=? AND text IN ({marks(len(part))})",
                        (self.tenant, *part)):
                    cache[text] = tid
                    self._texts_by_id[tid] = text
            missing = [t for t in missing if t not in cache]
            if not missing or attempt:
                break
            self.db.executemany(upsert_sql("texts", ["tenant", "text"], ["tenant", "text"], update=()),
                                [(self.tenant, t) for t in missing])
        return cache

    def _texts(self, ids: set[int]) -> dict[int, str]:
        cache = self._texts_by_id
        missing = [i for i in ids if i not in cache]
        for i in range(0, len(missing), 500):
            part = missing[i : i + 500]
            for tid, text in self.db.execute(
                    f"SELECT id, text FROM texts WHERE tenant=? AND id IN ({marks(len(part))})", (self.tenant, *part)):
                cache[tid] = text
                self._texts_by_value[text] = tid
        return cache

    def engagements_for(self, source: str, contact_ids: Sequence[str]) -> dict[str, list[Engagement]]:
        out: dict[str, list[Engagement]] = {cid: [] for cid in contact_ids}
        kinds = {k.value: k for k in EngagementKind}
        for i in range(0, len(contact_ids), 500):
            part = contact_ids[i : i + 500]
            rows = self.db.execute(
                "SELECT id, contact_id, kind, at, detail, campaign, contact_email FROM engagements "
                f"WHERE tenant=? AND source=? AND contact_id IN ({marks(len(part))}) ORDER BY at, id",
                (self.tenant, source, *part),
            ).fetchall()
            texts = self._texts({t for r in rows for t in (r[4], r[5])})
            for eid, cid, kind, at, detail, campaign, cemail in rows:
                out[cid].append(Engagement(source, eid, cid, kinds[kind], _from_ms(at), texts[detail],
                                           texts[campaign], cemail))
        return out

    def count_engagements(self, source: str | None = None) -> int:
        return self._count("engagements", source)

    # ------------------------------------------------------------- dirty set
    def mark_dirty(self, source: str, ids: Iterable[str]) -> None:
        self.db.executemany(upsert_sql("dirty", _DIRTY_KEY, _DIRTY_KEY), [(self.tenant, source, i) for i in ids])

    def dirty(self, source: str) -> list[str]:
        return [r[0] for r in self.db.execute(
            "SELECT contact_id FROM dirty WHERE tenant=? AND source=? ORDER BY contact_id", (self.tenant, source))]

    def dirty_among(self, source: str, ids: Sequence[str]) -> set[str]:
        """Which of these records are dirty."""
        out: set[str] = set()
        for i in range(0, len(ids), 500):
            part = list(ids[i : i + 500])
            out.update(r[0] for r in self.db.execute(
                f"SELECT contact_id FROM dirty WHERE tenant=? AND source=? AND contact_id IN ({marks(len(part))})",
                (self.tenant, source, *part)))
        return out

    def clear_dirty(self, source: str, ids: Iterable[str]) -> None:
        self.db.executemany("DELETE FROM dirty WHERE tenant=? AND source=? AND contact_id=?",
                            [(self.tenant, source, i) for i in ids])

    # ------------------------------------------------------------- watermarks
    def watermarks(self, source: str) -> dict[str, str]:
        return dict(self.db.execute(
            "SELECT stream, value FROM watermarks WHERE tenant=? AND source=? AND stream NOT LIKE 'checkpoint:%'",
            (self.tenant, source)).fetchall())

    def checkpoints(self, source: str) -> dict[str, str]:
        """A backfill's progress per stream, kept until the whole backfill is done."""
        rows = self.db.execute(
            "SELECT stream, value FROM watermarks WHERE tenant=? AND source=? AND stream LIKE 'checkpoint:%'",
            (self.tenant, source)).fetchall()
        return {stream.removeprefix("checkpoint:"): value for stream, value in rows}

    def set_checkpoint(self, source: str, stream: str, value: str) -> None:
        self.set_watermark(source, f"checkpoint:{stream}", value)

    def clear_checkpoints(self, source: str) -> None:
        self.db.execute("DELETE FROM watermarks WHERE tenant=? AND source=? AND stream LIKE 'checkpoint:%'",
                        (self.tenant, source))

    def set_watermark(self, source: str, stream: str, value: str) -> None:
        self.db.execute(
            upsert_sql("watermarks", ["tenant", "source", "stream", "value", "updated_at"],
                       ["tenant", "source", "stream"]),
            (self.tenant, source, stream, value, _iso(datetime.now(timezone.utc))),
        )

    # ------------------------------------------------------------- connector cache
    def connector_cache(self, source: str, name: str = "metadata") -> dict[str, Any] | None:
        """What the source's connector kept from its last run (its `metadata_cache`), or None."""
        row = self.db.execute("SELECT value FROM connector_cache WHERE tenant=? AND source=? AND name=?",
                              (self.tenant, source, name)).fetchone()
        return json.loads(row[0]) if row else None

    def set_connector_cache(self, source: str, value: dict[str, Any], name: str = "metadata") -> None:
        self.db.execute(
            upsert_sql("connector_cache", ["tenant", "source", "name", "value", "updated_at"],
                       ["tenant", "source", "name"]),
            (self.tenant, source, name, json.dumps(value, sort_keys=True), _iso(datetime.now(timezone.utc))),
        )

    # ------------------------------------------------------------- scores
    def save_scores(self, rows: Sequence[tuple[str, str, int, int, int, str, str | None, str, str]]) -> None:
        """Rows of (source, contact_id, fit, engagement, total, stage, crm_stage, detail, scored_at)."""
        self.db.executemany(upsert_sql("scores", _SCORE_COLUMNS, ["tenant", "source", "contact_id"]),
                            [(self.tenant, *r) for r in rows])

    def score_detail(self, source: str, contact_id: str) -> dict[str, Any] | None:
        row = self.db.execute(_SCORE_DETAIL, (self.tenant, source, contact_id)).fetchone()
        return json.loads(row[0]) if row else None

    def score_totals(self, source: str, ids: Sequence[str]) -> dict[str, tuple[int | None, str | None]]:
        """(total, stage) of the last score written for these contacts: what a preview compares against."""
        out: dict[str, tuple[int | None, str | None]] = {}
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            out.update({cid: (total, stage) for cid, total, stage in self.db.execute(
                f"SELECT contact_id, total, stage FROM scores WHERE tenant=? AND source=? "
                f"AND contact_id IN ({marks(len(part))})", (self.tenant, source, *part))})
        return out

    # ------------------------------------------------------------- the model the last run used
    def model_fingerprint(self, source: str) -> dict[str, Any] | None:
        """The fingerprint, label and run of the scoring model the last applied run of `source` used
        (kept in the tenant's meta: one small row per source), or None before the first one."""
        value = self.meta_get(f"model:{source}")
        return json.loads(value) if value else None

    def set_model_fingerprint(self, source: str, fingerprint: str, label: str, run_id: str) -> None:
        value = _dumps({"fingerprint": fingerprint, "label": label, "run_id": run_id,
                        "at": _iso(datetime.now(timezone.utc))})
        self.meta_set(f"model:{source}", value)

    def stage_counts(self, source: str | None = None) -> dict[str, dict[str, int]]:
        """Contacts per CRM stage (what the CRM now holds), per source."""
        q = "SELECT source, coalesce(crm_stage, 'unknown'), count(*) FROM scores WHERE tenant=?"
        q += " AND source=? GROUP BY 1, 2" if source else " GROUP BY 1, 2"
        out: dict[str, dict[str, int]] = {}
        for s, st, n in self.db.execute(q, (self.tenant, source) if source else (self.tenant,)):
            out.setdefault(s, {})[st] = n
        return out

    def add_stage_change(self, source: str, contact_id: str, before: str | None, after: str, run_id: str) -> None:
        self.add_stage_changes(source, [(contact_id, before, after)], run_id)

    def add_stage_changes(self, source: str, moves: Sequence[tuple[str, str | None, str]], run_id: str) -> None:
        at = _iso(datetime.now(timezone.utc))
        self.db.executemany(
            "INSERT INTO stage_history (tenant, source, contact_id, from_stage, to_stage, at, run_id) "
            "VALUES (?,?,?,?,?,?,?)",
            [(self.tenant, source, cid, before, after, at, run_id) for cid, before, after in moves],
        )

    def stage_changes_for_run(self, run_id: str) -> dict[str, tuple[str | None, str]]:
        """(from, to) per contact of the stage moves a run wrote: what undo puts back in the snapshot."""
        return {cid: (a, b) for cid, a, b in self.db.execute(
            "SELECT contact_id, from_stage, to_stage FROM stage_history WHERE tenant=? AND run_id=?",
            (self.tenant, run_id))}

    def undo_holds(self, source: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The undo holds of these contacts: kept in the score row's detail, so re-deciding the contact (a new
        score row) ends its hold by itself."""
        out: dict[str, dict[str, Any]] = {}
        for i in range(0, len(ids), 500):
            part = list(ids[i : i + 500])
            for cid, detail in self.db.execute(
                f"SELECT contact_id, detail FROM scores WHERE tenant=? AND source=? AND contact_id IN "
                f"({marks(len(part))}) AND detail LIKE '%\"undo_hold\"%'", (self.tenant, source, *part),
            ):
                hold = json.loads(detail).get("undo_hold")
                if hold:
                    out[cid] = hold
        return out

    def set_undo_hold(self, source: str, contact_id: str, hold: dict[str, Any], crm_stage: str | None) -> None:
        """Hold a contact as undo left it (and record the stage the CRM now holds for the funnel)."""
        row = self.db.execute("SELECT detail, crm_stage FROM scores WHERE tenant=? AND source=? AND contact_id=?",
                              (self.tenant, source, contact_id)).fetchone()
        if row is None:
            self.db.execute(
                "INSERT INTO scores (tenant, source, contact_id, crm_stage, detail, scored_at) VALUES (?,?,?,?,?,?)",
                (self.tenant, source, contact_id, crm_stage, json.dumps({"undo_hold": hold}, sort_keys=True),
                 _iso(datetime.now(timezone.utc))))
            return
        detail = {**json.loads(row[0]), "undo_hold": hold}
        self.db.execute("UPDATE scores SET detail=?, crm_stage=? WHERE tenant=? AND source=? AND contact_id=?",
                        (json.dumps(detail, sort_keys=True), crm_stage or row[1], self.tenant, source, contact_id))

    def release_undo_holds(self, source: str, ids: Sequence[str]) -> None:
        """End these contacts' holds: the next run decides them afresh."""
        for cid in ids:
            row = self.db.execute(_SCORE_DETAIL, (self.tenant, source, cid)).fetchone()
            if row is not None:
                detail = json.loads(row[0])
                detail.pop("undo_hold", None)
                self.db.execute("UPDATE scores SET detail=? WHERE tenant=? AND source=? AND contact_id=?",
                                (json.dumps(detail, sort_keys=True), self.tenant, source, cid))

    def count_undo_holds(self, source: str) -> int:
        return self.db.execute(
            "SELECT count(*) FROM scores WHERE tenant=? AND source=? AND detail LIKE '%\"undo_hold\"%'",
            (self.tenant, source)).fetchone()[0]

    def undo_held_by(self, source: str, undone_run: str) -> list[str]:
        """Contacts still held by an undo of `undone_run`."""
        out = []
        for cid, detail in self.db.execute(
            "SELECT contact_id, detail FROM scores WHERE tenant=? AND source=? AND detail LIKE '%\"undo_hold\"%' "
            "ORDER BY contact_id", (self.tenant, source),
        ):
            if (json.loads(detail).get("undo_hold") or {}).get("run") == undone_run:
                out.append(cid)
        return out

    # ------------------------------------------------------------- nurture membership
    def nurture_members(self, source: str, target: str, ids: Sequence[str]) -> dict[str, tuple[str | None, str | None]]:
        """(member id, status) by record id for the records believed to be members of `target` (HubSpot: no
        member id, no status)."""
        out: dict[str, tuple[str | None, str | None]] = {}
        for i in range(0, len(ids), 500):
            part = list(ids[i : i + 500])
            for rid, member_id, status in self.db.execute(
                f"SELECT record_id, member_id, status FROM nurture_members WHERE tenant=? AND source=? AND target=? "
                f"AND record_id IN ({marks(len(part))})", (self.tenant, source, target, *part)):
                out[rid] = (member_id, status)
        return out

    def nurture_joined(self, source: str, target: str, record_id: str, member_id: str | None, status: str | None,
                       run_id: str) -> None:
        self.db.execute(upsert_sql("nurture_members", ["tenant", "source", "target", "record_id", "member_id",
                                                       "status", "run_id", "at"],
                                   ["tenant", "source", "target", "record_id"]),
                        (self.tenant, source, target, record_id, member_id, status, run_id,
                         _iso(datetime.now(timezone.utc))))

    def nurture_left(self, source: str, target: str, record_id: str) -> None:
        self.db.execute("DELETE FROM nurture_members WHERE tenant=? AND source=? AND target=? AND record_id=?",
                        (self.tenant, source, target, record_id))

    def count_nurture_members(self, source: str | None = None) -> int:
        return self._count("nurture_members", source)


    # ------------------------------------------------------------- runs
    def start_run(self, run_id: str, kind: str, source: str) -> None:
        self.db.execute(
            "INSERT INTO runs (tenant, id, kind, source, status, started_at) VALUES (?,?,?,?,?,?)",
            (self.tenant, run_id, kind, source, "running", _iso(datetime.now(timezone.utc))),
        )

    def finish_run(self, run_id: str, status: str, summary: dict[str, Any]) -> None:
        self.db.execute(
            "UPDATE runs SET status=?, finished_at=?, summary=? WHERE tenant=? AND id=?",
            (status, _iso(datetime.now(timezone.utc)), json.dumps(summary, sort_keys=True), self.tenant, run_id),
        )

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        rows = _dicts(self.db.execute(f"{_RUN_SELECT} WHERE tenant=? ORDER BY started_at DESC, id DESC LIMIT ?",
                                      (self.tenant, limit)))
        for r in rows:
            r["summary"] = json.loads(r["summary"])
        return rows

    def run(self, run_id: str) -> dict[str, Any] | None:
        rows = _dicts(self.db.execute(f"{_RUN_SELECT} WHERE tenant=? AND id=?", (self.tenant, run_id)))
        for r in rows:
            r["summary"] = json.loads(r["summary"])
        return rows[0] if rows else None

    def mark_killed_runs(self, holding: Iterable[str] = ()) -> list[str]:
        """Runs left `running` by a process that died (kill -9, OOM, power cut) become `killed`, and their
        writes still `pending` become `unknown` (sent or not, nobody knows); returns their ids.

        A run is dead when its (tenant's) source's writer lock is free, since a live run holds it throughout.
        `holding`: sources whose lock the caller holds itself, so their running runs are dead too.
        Call it before starting the caller's own run.
        """
        from sync.lock import lock_is_free  # sync.lock's writer_lock takes a State

        rows = self.db.execute("SELECT id, source FROM runs WHERE tenant=? AND status='running' "
                               "ORDER BY started_at, id", (self.tenant,)).fetchall()
        held_here = set(holding)
        dead = {s for s in {source for _, source in rows} if s in held_here or lock_is_free(self, s)}
        killed = [run_id for run_id, source in rows if source in dead]
        at = _iso(datetime.now(timezone.utc))
        with self.tx() as db:
            for run_id in killed:
                db.execute("UPDATE runs SET status='killed', finished_at=? WHERE tenant=? AND id=? "
                           "AND status='running'", (at, self.tenant, run_id))
                db.execute("UPDATE audit SET status='unknown' WHERE tenant=? AND run_id=? AND status='pending'",
                           (self.tenant, run_id))
        return killed

    def last_runs(self) -> dict[str, dict[str, Any]]:
        """The newest run of each (source, kind): what `leadsync status` reports per source."""
        rows = _dicts(self.db.execute(
            f"{_RUN_SELECT} r WHERE tenant=? AND started_at = (SELECT MAX(started_at) FROM runs q "
            "WHERE q.tenant = r.tenant AND q.source = r.source AND q.kind = r.kind) ORDER BY source, kind, id",
            (self.tenant,)))
        out: dict[str, dict[str, Any]] = {}
        for r in rows:
            r["summary"] = json.loads(r["summary"])
            out[f"{r['source']}:{r['kind']}"] = r
        return out

    def runs_with_status(self, statuses: Sequence[str], limit: int = 50) -> list[dict[str, Any]]:
        marks = ",".join("?" * len(statuses))
        rows = _dicts(self.db.execute(f"{_RUN_SELECT} WHERE tenant=? AND status IN ({marks}) "
                                      "ORDER BY started_at DESC, id DESC LIMIT ?", (self.tenant, *statuses, limit)))
        for r in rows:
            r["summary"] = json.loads(r["summary"])
        return rows

    # ------------------------------------------------------------- meta: small facts about this tenant's state
    def meta_get(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM tenant_meta WHERE tenant=? AND key=?", (self.tenant, key)).fetchone()
        return row[0] if row else None

    def meta_set(self, key: str, value: str) -> None:
        self.db.execute(_SET_META, (self.tenant, key, value))

    def has_written_to(self, source: str) -> bool:
        """Whether a backfill or sync of this source ever finished here (this state knows the CRM's values)."""
        return self.db.execute(
            "SELECT 1 FROM runs WHERE tenant=? AND source=? AND kind IN ('backfill','sync') "
            "AND status IN ('ok','ok with failures') LIMIT 1", (self.tenant, source)).fetchone() is not None

    def record_with_leadsync_values(self, source: str) -> tuple[str, str | None, str] | None:
        """(record id, email, field) of one stored record whose leadsync fields already hold a value.

        Only the score counts: nobody but leadsync writes it (a Salesforce stage field may be set by sales).
        Stored JSON spells a set value `"field":"…"` and an empty one `"field":null` (see `snapshot`)."""
        for field in ("leadsync_score", "leadsync_score__c"):
            row = self.db.execute(
                "SELECT id, email FROM contacts WHERE tenant=? AND source=? AND LOWER(data) LIKE ? LIMIT 1",
                (self.tenant, source, f'%"{field}":"%')).fetchone()
            if row:
                return row[0], row[1], field
        return None

    # ------------------------------------------------------------- audit
    def audit(self, run_id: str, source: str, object_type: str, record_id: str,
              changes: dict[str, tuple[str | None, str | None]]) -> None:
        at = _iso(datetime.now(timezone.utc))
        self.db.executemany(
            f"INSERT INTO audit ({_AUDIT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,'ok')",
            [(self.tenant, run_id, source, object_type, record_id, f, b, a, at) for f, (b, a) in changes.items()],
        )

    def audit_intent(self, run_id: str, changes: Sequence[Any]) -> None:
        """Written before the CRM call, so even a write whose answer a crash swallowed is traceable."""
        at = _iso(datetime.now(timezone.utc))
        self.db.executemany(
            f"INSERT INTO audit ({_AUDIT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,'pending')",
            [(self.tenant, run_id, c.source, c.object_type, c.record_id, f, fc.before, fc.after, at)
             for c in changes for f, fc in c.fields.items()],
        )

    def audit_settle(self, run_id: str, record_id: str, status: str) -> None:
        self.audit_settle_many(run_id, [record_id], status)

    def audit_settle_many(self, run_id: str, record_ids: Sequence[str], status: str) -> None:
        self.db.executemany(
            "UPDATE audit SET status=? WHERE tenant=? AND run_id=? AND record_id=? AND status='pending'",
            [(status, self.tenant, run_id, r) for r in record_ids])

    def audit_for_run(self, run_id: str) -> list[dict[str, Any]]:
        """The run's accepted (and still-pending) writes in the order they were made."""
        return _dicts(self.db.execute(
            "SELECT a.source, a.object_type, a.record_id, a.field, a.before, a.after, a.at, a.status, c.email "
            f"FROM audit a {_EMAIL_JOIN.format(t='a', id='record_id')} WHERE a.tenant=? AND a.run_id=? "
            "AND a.status != 'rejected' ORDER BY a.seq", (self.tenant, run_id)
        ))

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
    # ------------------------------------------------------------- stage history (CRM history + leadsync's writes)
    def add_stage_entries(self, entries: Sequence[StageEntry], run_id: str) -> None:
        """Keep each (record, stage, origin, time) once: re-pulled history and overlapping windows add nothing."""
        self.db.executemany(
            upsert_sql("crm_stage_history", _HISTORY_COLUMNS, _HISTORY_COLUMNS[:6], update=()),
            [(self.tenant, e.source, e.contact_id, e.stage, _iso(e.entered_at), e.origin, run_id) for e in entries])

    def upsert_opportunities(self, opportunities: Sequence[Opportunity], run_id: str) -> None:
        self.db.executemany(upsert_sql("opportunities", _OPPORTUNITY_COLUMNS, ["tenant", "source", "id"]), [
            (self.tenant, o.source, o.id, o.contact_id, _iso(o.created_at), _iso(o.close_date), int(o.is_closed),
             int(o.is_won), o.stage_name, o.amount, o.owner_id, run_id) for o in opportunities])

    def save_owners(self, source: str, owners: Sequence[tuple[str, str | None, str | None, bool]]) -> None:
        """(id, name, email, active) of the CRM's owners (HubSpot owners, Salesforce Users), read once a run."""
        now = _iso(datetime.now(timezone.utc))
        self.db.executemany(upsert_sql("owners", _OWNER_COLUMNS, ["tenant", "source", "id"]),
                            [(self.tenant, source, i, n, e, int(a), now) for i, n, e, a in owners])

    def owner_names(self) -> dict[tuple[str, str], str]:
        """(source, owner id) -> display name, for the report."""
        return {(s, i): n for s, i, n in self.db.execute(
            "SELECT source, id, name FROM owners WHERE tenant=?", (self.tenant,)) if n}

    def stage_history(self, source: str | None = None, contact_ids: Sequence[str] | None = None
                      ) -> list[StageEntry]:
        """Every stage entry of the chosen records, CRM history and leadsync's own writes (origin
        `leadsync_write`) together, by (source, contact, time, stage, origin)."""
        where, args = _record_filter(self.tenant, source, contact_ids)
        rows = self.db.execute(
            f"SELECT source, contact_id, stage, entered_at, origin FROM crm_stage_history{where}", args).fetchall()
        rows += [(s, c, to, at, "leadsync_write") for s, c, to, at in self.db.execute(
            f"SELECT source, contact_id, to_stage, at FROM stage_history{where}", args).fetchall()]
        out = [StageEntry(s, c, st, at, o) for s, c, st, t, o in rows if (at := _dt(t)) is not None]
        return sorted(out, key=lambda e: (e.source, e.contact_id, e.entered_at, e.stage, e.origin))

    def opportunities(self, source: str | None = None, contact_ids: Sequence[str] | None = None
                      ) -> list[Opportunity]:
        """The records' opportunities, oldest first."""
        where, args = _record_filter(self.tenant, source, contact_ids)
        rows = self.db.execute(f"SELECT source, id, contact_id, created_at, close_date, is_closed, is_won, "
                               f"stage_name, amount, owner_id FROM opportunities{where}", args).fetchall()
        out = [Opportunity(s, i, c, created, _dt(closed), bool(ic), bool(iw), sn, am, ow)
               for s, i, c, ct, closed, ic, iw, sn, am, ow in rows if (created := _dt(ct)) is not None]
        return sorted(out, key=lambda o: (o.created_at, o.source, o.id))

    # ------------------------------------------------------------- report queries (read-only, for sync/report.py)
    def report_contacts(self) -> list[tuple[str, str, str | None, str, str | None, int | None]]:
        """(source, id, email, data, crm_stage, total) for every contact; score columns None if never scored."""
        return self.db.execute(
            "SELECT c.source, c.id, c.email, c.data, s.crm_stage, s.total FROM contacts c "
            "LEFT JOIN scores s ON s.tenant = c.tenant AND s.source = c.source AND s.contact_id = c.id "
            "WHERE c.tenant=? ORDER BY c.source, c.id", (self.tenant,)
        ).fetchall()

    def report_stage_history(self) -> list[tuple[str, str, str | None, str, str]]:
        """(source, contact_id, from_stage, to_stage, at), oldest first.

        Each change is stamped when written, so `at` is write order; the rest only makes ties
        (none in practice for one contact) come out the same on both engines.
        """
        return self.db.execute(
            "SELECT source, contact_id, from_stage, to_stage, at FROM stage_history WHERE tenant=? "
            "ORDER BY at, source, contact_id, run_id, to_stage", (self.tenant,)
        ).fetchall()

    def report_tasks(self) -> list[dict[str, Any]]:
        """Every follow-up task in the ledger with its owner and timestamps."""
        return _dicts(self.db.execute(
            "SELECT key, source, contact_id, stage, status, owner_id, created_at, confirmed_at, due_at, completed_at "
            "FROM task_ledger WHERE tenant=? ORDER BY key", (self.tenant,)
        ))

    def report_issues(self) -> list[tuple[str, str, str, str, str]]:
        """(source, record_id, field, message, at) of every mapping issue ever recorded, oldest first.

        One batch shares one `at`; within it the order is by record and field, the same on both engines.
        """
        return self.db.execute(
            "SELECT source, record_id, field, message, at FROM issues WHERE tenant=? "
            "ORDER BY at, source, record_id, field, message", (self.tenant,)
        ).fetchall()

