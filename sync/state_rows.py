"""How the state store spells its rows: contact snapshots and their hash, times, values, SQL constants.

Pure: no I/O. Shared by `State` and its record and ledger halves (sync/state_records.py, state_ledgers.py).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

from mapping.model import Contact, Stage
from sync.db import Cursor, marks, upsert_sql

#: What a tenant may be called: it names lock files and advisory-lock keys, so nothing that reaches a path.
_TENANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")

_SET_VERSION = upsert_sql("meta", ["key", "value"], ["key"])
_SET_META = upsert_sql("tenant_meta", ["tenant", "key", "value"], ["tenant", "key"])

# Every row leads with its tenant; the upserts' conflict targets are the tables' keys (sync/state_schema.py, v9).
_CONTACT_COLUMNS = ["tenant", "source", "id", "object_type", "email", "archived", "data", "hash", "seen_run"]
_SCORE_COLUMNS = ["tenant", "source", "contact_id", "fit", "engagement", "total", "stage", "crm_stage", "detail",
                  "hold", "scored_at"]
_FAILURE_COLUMNS = ["tenant", "source", "change_key", "record_id", "kind", "error_code", "message", "fields",
                    "attempts", "status", "run_id", "updated_at"]
_HISTORY_COLUMNS = ["tenant", "source", "contact_id", "stage", "entered_at", "origin", "run_id"]
_OPPORTUNITY_COLUMNS = ["tenant", "source", "id", "contact_id", "created_at", "close_date", "is_closed", "is_won",
                        "stage_name", "amount", "owner_id", "run_id"]
_OWNER_COLUMNS = ["tenant", "source", "id", "name", "email", "active", "updated_at"]
_AUDIT_COLUMNS = "tenant, run_id, source, object_type, record_id, changes, at, status"
_UPSERT_CONTACT = upsert_sql("contacts", _CONTACT_COLUMNS, ["tenant", "source", "id"])
_REWRITE_SNAPSHOT = "UPDATE contacts SET archived=?, data=?, hash=? WHERE tenant=? AND source=? AND id=?"
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


def _audit_text(changes: Sequence[tuple[str, str | None, str | None]]) -> bytes:
    """One record write's field changes, in write order, as the JSON an audit row packs: [[field, before, after]]."""
    return orjson.dumps([[f, None if b is None else str(b), None if a is None else str(a)] for f, b, a in changes])


def _dumps(d: dict[str, Any]) -> str:
    """Canonical JSON: sorted keys, no spaces, UTF-8 as is. orjson spells it as `json.dumps` did (a tenth of
    the time; only a float's exponent may differ, e.g. 1.5e-7, which re-scores that one contact once); a value
    orjson refuses (an integer past 64 bits) takes the standard library's path."""
    try:
        return orjson.dumps(d, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:
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
    return text, hashlib.blake2b(_dumps(d).encode(), digest_size=16).hexdigest()[:HASH_CHARS]


#: A content hash is compared only with the same record's previous one: 64 bits rule out a missed change.
#: The first half of the 128-bit digest older states stored, so migration 12 shortens theirs in place (to 16).
HASH_CHARS = 16


_KEEP = object()
#: Field values a snapshot's JSON may omit (read back as the dataclass defaults).
_JSON_DEFAULTS: dict[str, Any] = {
    name: value for name, value in _contact_dict(Contact(source="", id="")).items()
    if name not in ("source", "id") and (value is None or value in (False, {}, [], "contacts"))}


def contact_from_json(s: str) -> Contact:
    d = orjson.loads(s)
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
