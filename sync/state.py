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

`State` is this module's connection, schema and run bookkeeping plus two halves
with their own modules: the records (sync/state_records.py) and the ledgers
(sync/state_ledgers.py); how rows are spelt lives in sync/state_rows.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import orjson

from mapping.model import Opportunity, StageEntry
from sync.db import (
    DEFAULT_TENANT,
    SQLITE_MEMORY,
    Database,
    StateError,
    connect,
    marks,
    mask_url,
    sqlite_path,
    upsert_sql,
)
from sync.state_codec import Codec
from sync.state_ledgers import LedgersMixin
from sync.state_records import RecordsMixin
from sync.state_rows import (
    _HISTORY_COLUMNS,
    _OPPORTUNITY_COLUMNS,
    _OWNER_COLUMNS,
    _RUN_SELECT,
    _SCORE_COLUMNS,
    _SCORE_DETAIL,
    _SET_META,
    _SET_VERSION,
    _TENANT_NAME,
    _dicts,
    _dt,
    _dumps,
    _from_ms,
    _iso,
    _ms,
    _record_filter,
    contact_from_json,
    contact_to_json,
    content_hash,
    norm_value,
    snapshot,
)
from sync.state_schema import _META_DDL, _MIGRATIONS, SCHEMA_VERSION

#: What callers import from here: the store, and the row spellings tests and tools compare against.
__all__ = ["SCHEMA_VERSION", "State", "StateError", "_MIGRATIONS", "_dicts", "content_hash", "contact_from_json",
           "contact_to_json", "norm_value", "snapshot"]


class State(RecordsMixin, LedgersMixin):
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
        self.codec = Codec(self.db, tenant)  # snapshots and score details are stored packed
        self.db.on_rollback.append(self._forget_uncommitted)
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
            for step in _MIGRATIONS[version]:
                if callable(step):
                    step(self.db)
                else:
                    self.db.execute(self.db.dialect.ddl(step))
            self.db.execute(_SET_VERSION, ("schema_version", str(version)))

    @contextmanager
    def tx(self) -> Iterator[Database]:
        """Group writes: all land or none (a write lock from the start on SQLite)."""
        with self.db.transaction() as db:
            yield db

    def _forget_uncommitted(self) -> None:
        """After a rollback: texts and dictionaries the transaction added are gone with it."""
        self._texts_by_value.clear()
        self._texts_by_id.clear()
        self.codec.forget()

    def close(self) -> None:
        self.db.close()

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
    def save_scores(self, rows: Sequence[tuple[str, str, int, int, int, str, str | None, str | dict[str, Any], str]]
                    ) -> None:
        """Rows of (source, contact_id, fit, engagement, total, stage, crm_stage, detail, scored_at); the detail
        as a dict, or as its JSON text; scored_at an ISO 8601 time (stored as epoch ms)."""
        details = [dict(r[7]) if isinstance(r[7], dict) else orjson.loads(r[7]) for r in rows]
        holds = [d.pop("undo_hold", None) for d in details]  # kept in a column: runs ask who is held
        spelt = [[_dumps(x) for x in d.get("reasons") or ()] for d in details]
        ids = self._text_ids({t for texts in spelt for t in texts})  # one look-up for the batch's reasons
        stored = [_dumps({**{k: v for k, v in d.items() if k != "reasons"}, "reason_ids": [ids[t] for t in texts]}
                         if texts else d) for d, texts in zip(details, spelt, strict=True)]
        by_source: dict[str, list[int]] = {}
        for i, r in enumerate(rows):
            by_source.setdefault(r[0], []).append(i)
        times = {t: _ms(datetime.fromisoformat(t)) for t in {r[8] for r in rows}}  # a batch shares one time
        for source, at in by_source.items():
            packed = self.codec.pack(f"scores:{source}", [stored[i] for i in at])
            self.db.executemany(upsert_sql("scores", _SCORE_COLUMNS, ["tenant", "source", "contact_id"]), [
                (self.tenant, *rows[i][:7], data, _dumps(holds[i]) if holds[i] else None, times[rows[i][8]])
                for i, data in zip(at, packed, strict=True)])

    def score_detail(self, source: str, contact_id: str) -> dict[str, Any] | None:
        row = self.db.execute(_SCORE_DETAIL, (self.tenant, source, contact_id)).fetchone()
        return self._unpack_detail(source, row[0]) if row else None

    def _unpack_detail(self, source: str, stored: bytes | str) -> dict[str, Any]:
        """A stored score detail with its reasons written out again (save_scores keeps them by number: a few
        hundred distinct reasons serve every contact, and they were two thirds of a score row's bytes)."""
        detail = orjson.loads(self.codec.unpack(f"scores:{source}", stored))
        ids = detail.pop("reason_ids", None)
        if ids is not None:  # a row stored before reasons were numbered keeps them inline
            texts = self._texts(set(ids))
            detail["reasons"] = [orjson.loads(texts[i]) for i in ids]
        return detail

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
        """The undo holds of these contacts: kept in the score row, so re-deciding the contact (a new score row)
        ends its hold by itself."""
        out: dict[str, dict[str, Any]] = {}
        for i in range(0, len(ids), 500):
            part = list(ids[i : i + 500])
            for cid, hold in self.db.execute(
                f"SELECT contact_id, hold FROM scores WHERE tenant=? AND source=? AND contact_id IN "
                f"({marks(len(part))}) AND hold IS NOT NULL", (self.tenant, source, *part),
            ):
                out[cid] = json.loads(hold)
        return out

    def set_undo_hold(self, source: str, contact_id: str, hold: dict[str, Any], crm_stage: str | None) -> None:
        """Hold a contact as undo left it (and record the stage the CRM now holds for the funnel)."""
        row = self.db.execute("SELECT crm_stage FROM scores WHERE tenant=? AND source=? AND contact_id=?",
                              (self.tenant, source, contact_id)).fetchone()
        if row is None:
            self.db.execute(
                "INSERT INTO scores (tenant, source, contact_id, crm_stage, detail, hold, scored_at) "
                "VALUES (?,?,?,?,?,?,?)", (self.tenant, source, contact_id, crm_stage,
                                           b"{}", _dumps(hold), _ms(datetime.now(timezone.utc))))
            return
        self.db.execute("UPDATE scores SET hold=?, crm_stage=? WHERE tenant=? AND source=? AND contact_id=?",
                        (_dumps(hold), crm_stage or row[0], self.tenant, source, contact_id))

    def release_undo_holds(self, source: str, ids: Sequence[str]) -> None:
        """End these contacts' holds: the next run decides them afresh."""
        self.db.executemany("UPDATE scores SET hold=NULL WHERE tenant=? AND source=? AND contact_id=?",
                            [(self.tenant, source, cid) for cid in ids])

    def count_undo_holds(self, source: str) -> int:
        return self.db.execute("SELECT count(*) FROM scores WHERE tenant=? AND source=? AND hold IS NOT NULL",
                               (self.tenant, source)).fetchone()[0]

    def undo_held_by(self, source: str, undone_run: str) -> list[str]:
        """Contacts still held by an undo of `undone_run`."""
        return [cid for cid, hold in self.db.execute(
            "SELECT contact_id, hold FROM scores WHERE tenant=? AND source=? AND hold IS NOT NULL "
            "ORDER BY contact_id", (self.tenant, source)) if json.loads(hold).get("run") == undone_run]

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
        Stored JSON spells a set value `"field":"…"` and an empty one `"field":null` (see `snapshot`). Read once,
        before a source is first adopted; snapshots are packed, so this reads them (in key order) until one has it.
        """
        fields = ("leadsync_score", "leadsync_score__c")
        first: dict[str, tuple[str, str | None]] = {}
        for rid, email, data in self.db.execute(
                "SELECT id, email, data FROM contacts WHERE tenant=? AND source=? ORDER BY id", (self.tenant, source)):
            text = self._snapshot_text(source, data).lower()
            for field in fields:
                if field not in first and f'"{field}":"' in text:
                    first[field] = (rid, email)
            if fields[0] in first:
                break
        for field in fields:
            if field in first:
                return *first[field], field
        return None

    # ------------------------------------------------------------- stage history (CRM history + leadsync's writes)
    def add_stage_entries(self, entries: Sequence[StageEntry], run_id: str) -> None:
        """Keep each (record, stage, origin, time) once: re-pulled history and overlapping windows add nothing."""
        self.db.executemany(
            upsert_sql("crm_stage_history", _HISTORY_COLUMNS, _HISTORY_COLUMNS[:6], update=()),
            [(self.tenant, e.source, e.contact_id, e.stage, _ms(e.entered_at), e.origin, run_id) for e in entries])

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
        out = [StageEntry(s, c, st, _from_ms(ms), o) for s, c, st, ms, o in self.db.execute(
            f"SELECT source, contact_id, stage, entered_at, origin FROM crm_stage_history{where}", args)]
        out += [StageEntry(s, c, to, at, "leadsync_write") for s, c, to, t in self.db.execute(
            f"SELECT source, contact_id, to_stage, at FROM stage_history{where}", args) if (at := _dt(t)) is not None]
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
        return [(source, cid, email, self._snapshot_text(source, data), crm_stage, total)
                for source, cid, email, data, crm_stage, total in self.db.execute(
            "SELECT c.source, c.id, c.email, c.data, s.crm_stage, s.total FROM contacts c "
            "LEFT JOIN scores s ON s.tenant = c.tenant AND s.source = c.source AND s.contact_id = c.id "
            "WHERE c.tenant=? ORDER BY c.source, c.id", (self.tenant,))]

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
