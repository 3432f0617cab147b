"""CRM object storage with HubSpot's write rules: validation, forward-only lifecycle, timestamps.

The store is not thread-safe on its own; routes call it under `App.lock`.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from sandbox.hubspot.catalog import LIFECYCLE_STAGES, OBJECT_TYPES, PropertyDef
from sandbox.hubspot.seeding import iso

#: The property holding the last-modified time, per object type (reference §2.6).
MODIFIED = {"contacts": "lastmodifieddate"}
CREATED = {"contacts": "createdate", **{t: "createdate" for t in ("companies", "deals", "tickets", "products",
                                                                  "line_items", "quotes")}}
#: Properties a contact returns when none are requested (seen in a real recorded response, §2.1).
DEFAULT_CONTACT_PROPS = ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname")
DEFAULT_OBJECT_PROPS = ("hs_createdate", "hs_lastmodifieddate", "hs_object_id")
#: Other objects' defaults as HubSpot's object guides list them *(assumed: not in the reference)*.
DEFAULT_PROPS = {
    "contacts": DEFAULT_CONTACT_PROPS,
    "companies": ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
    "deals": ("amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate", "hs_object_id",
              "pipeline"),
    "tickets": ("content", "createdate", "hs_lastmodifieddate", "hs_object_id", "hs_pipeline", "hs_pipeline_stage",
                "hs_ticket_category", "hs_ticket_priority", "subject"),
    "products": ("createdate", "description", "hs_lastmodifieddate", "hs_object_id", "name", "price"),
    "line_items": ("amount", "createdate", "hs_lastmodifieddate", "hs_object_id", "hs_product_id", "name", "price",
                   "quantity"),
}


#: Association type labels use these names ("task_to_contact", "meeting_event_to_contact").
_SINGULAR = {t.name: t.label for t in OBJECT_TYPES}


def modified_prop(object_type: str) -> str:
    return MODIFIED.get(object_type, "hs_lastmodifieddate")


def created_prop(object_type: str) -> str:
    return CREATED.get(object_type, "hs_createdate")


class ValidationFailed(Exception):
    """A write HubSpot rejects as a whole with 400 VALIDATION_ERROR; `details` go inside `message`."""

    def __init__(self, details: list[dict[str, Any]]) -> None:
        super().__init__("Property values were not valid")
        self.details = details

    @property
    def message(self) -> str:
        return "Property values were not valid: " + json.dumps(self.details, separators=(",", ":"))


def invalid(name: str, error: str, message: str) -> dict[str, Any]:
    return {"isValid": False, "message": message, "error": error, "name": name, "localizedErrorMessage": message}


@dataclass
class Record:
    """One stored object: string properties (unset ones absent), associations by object type, history."""

    id: str
    properties: dict[str, str]
    created_at: str
    updated_at: str
    associations: dict[str, list[str]] = field(default_factory=dict)
    #: A lifecycle stage cleared to "" may be set to any stage by a later request (reference §3.1).
    lifecycle_unlocked: bool = False
    #: Changes made through the API, newest first, per property (seeded values are synthesised on read).
    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: Set when the record is archived (deleted or merged away); list `?archived=true` shows it (reference §2.6).
    archived_at: str | None = None

    def record_change(self, name: str, before: str | None, after: str | None, stamp: str) -> None:
        entries = self.history.setdefault(name, [])
        if not entries and before is not None:
            entries.append(_history_entry(before, self.created_at, "IMPORT"))
        entries.insert(0, _history_entry(after or "", stamp, "INTEGRATION"))

    def history_of(self, name: str) -> list[dict[str, Any]]:
        """`propertiesWithHistory` entries (reference §2.3): API changes, else the value since creation."""
        if name in self.history:
            return self.history[name]
        value = self.properties.get(name)
        return [_history_entry(value, self.created_at, "IMPORT")] if value is not None else []

    def to_json(self, props: list[str] | None, object_type: str, with_assoc: tuple[str, ...] = (),
                with_history: tuple[str, ...] = ()) -> dict[str, Any]:
        """The wire shape; requested-but-unset properties are null (reference §2.1)."""
        names = props or list(DEFAULT_PROPS.get(object_type, DEFAULT_OBJECT_PROPS))
        out_props = {n: self.properties.get(n) for n in names}
        out_props["hs_object_id"] = self.id
        mod = modified_prop(object_type)
        out_props[mod] = self.properties.get(mod)
        body: dict[str, Any] = {"id": self.id, "properties": out_props, "createdAt": self.created_at,
                                "updatedAt": self.updated_at, "archived": self.archived_at is not None}
        if self.archived_at is not None:
            body["archivedAt"] = self.archived_at
        if with_history:
            body["propertiesWithHistory"] = {n: self.history_of(n) for n in with_history}
        assoc = {t: self.associations[t] for t in with_assoc if self.associations.get(t)}
        if assoc:
            body["associations"] = {
                t: {"results": [{"id": i, "type": f"{_SINGULAR[object_type]}_to_{_SINGULAR[t]}"} for i in ids]}
                for t, ids in assoc.items()
            }
        return body


def _history_entry(value: str, stamp: str, source: str) -> dict[str, Any]:
    return {"value": value, "timestamp": stamp, "sourceType": source, "sourceId": "sandbox",
            "sourceLabel": None, "updatedByUserId": None}


class Clock:
    """Strictly increasing millisecond timestamps, so every change sorts after the last one."""

    def __init__(self, now: Callable[[], datetime] | None = None) -> None:
        self._now = now or (lambda: datetime.now(UTC))
        self._last: datetime | None = None

    def tick(self) -> datetime:
        now = self._now()
        at = now.replace(microsecond=(now.microsecond // 1000) * 1000)
        if self._last is not None and at <= self._last:
            at = self._last + timedelta(milliseconds=1)
        self._last = at
        return at


class ObjectStore:
    """Records of one object type, kept in id order so list paging is a bisect plus a slice."""

    def __init__(self, object_type: str, definitions: list[PropertyDef], clock: Clock,
                 required: tuple[str, ...] = (), defaults: Mapping[str, str] | None = None) -> None:
        self.object_type = object_type
        self.defs: dict[str, PropertyDef] = {d.name: d for d in definitions}
        #: Properties a create must carry, and HubSpot's server-side defaults for the ones it leaves out.
        self.required, self.defaults = required, dict(defaults or {})
        self.records: dict[str, Record] = {}
        self.order: list[int] = []  # numeric ids, ascending
        #: Archived (deleted or merged-away) records: gone from list, get, search and batch calls.
        self.archived: dict[str, Record] = {}
        self.archived_order: list[int] = []
        #: (last-modified ms, id) ascending: incremental searches are a bisect, not a scan and a sort.
        self.by_modified: list[tuple[float, int]] = []
        self.clock = clock
        #: While seeding, the sorted indexes are rebuilt once at the end (`reindex`) instead of per record.
        self.deferred = False

    def reindex(self) -> None:
        """Rebuild the id and last-modified indexes from the records (after a deferred bulk load)."""
        self.deferred = False
        ids = list(map(int, self.records))
        in_order = all(a < b for a, b in zip(ids, ids[1:], strict=False))  # seeded records go in by id
        self.order = ids if in_order else sorted(ids)
        self.archived_order = sorted(map(int, self.archived))
        keys = list(map(self._modified_key, self.records.values()))
        if in_order:  # a stable sort on the time alone keeps ties in id order: several times faster at 1M
            stamps = np.fromiter((k[0] for k in keys), dtype=np.float64, count=len(keys))
            self.by_modified = [keys[i] for i in np.argsort(stamps, kind="stable").tolist()]
        else:
            self.by_modified = sorted(keys)

    # ----------------------------------------------------------------- reads
    def page(self, after: str | None, limit: int) -> tuple[list[Record], str | None]:
        """One list page; the cursor is the next record's id."""
        start = bisect.bisect_left(self.order, int(after)) if after and after.isdigit() else 0
        ids = self.order[start : start + limit]
        nxt = str(self.order[start + limit]) if start + limit < len(self.order) else None
        return [self.records[str(i)] for i in ids], nxt

    def archived_page(self, after: str | None, limit: int) -> tuple[list[Record], str | None]:
        """One page of `?archived=true`, in id order like the live list."""
        start = bisect.bisect_left(self.archived_order, int(after)) if after and after.isdigit() else 0
        ids = self.archived_order[start : start + limit]
        nxt = str(self.archived_order[start + limit]) if start + limit < len(self.archived_order) else None
        return [self.archived[str(i)] for i in ids], nxt

    def get(self, record_id: str, id_property: str | None = None) -> Record | None:
        if id_property and id_property != "hs_object_id":
            want = record_id.lower()
            return next((r for r in self.records.values() if (r.properties.get(id_property) or "").lower() == want),
                        None)
        return self.records.get(record_id)

    # ---------------------------------------------------------------- writes
    def insert(self, record: Record) -> None:
        self.records[record.id] = record
        if not self.deferred:
            bisect.insort(self.order, int(record.id))
            bisect.insort(self.by_modified, self._modified_key(record))

    def archive(self, record_id: str, at: str | None = None) -> Record | None:
        """Move a live record to the archive; None when it is not live (archiving is idempotent)."""
        rec = self.records.pop(record_id, None)
        if rec is None:
            return None
        if not self.deferred:
            del self.order[bisect.bisect_left(self.order, int(record_id))]
            del self.by_modified[bisect.bisect_left(self.by_modified, self._modified_key(rec))]
            bisect.insort(self.archived_order, int(record_id))
        rec.archived_at = at or iso(self.clock.tick())
        self.archived[record_id] = rec
        return rec

    def insert_archived(self, record: Record) -> None:
        """Load an already archived record (persistence)."""
        self.archived[record.id] = record
        bisect.insort(self.archived_order, int(record.id))

    def _modified_key(self, record: Record) -> tuple[float, int]:
        return to_millis(record.properties.get(modified_prop(self.object_type))) or 0.0, int(record.id)

    def modified_between(self, low: float | None, high: float | None) -> list[tuple[float, int]]:
        """Index entries with low <= modified <= high (None: unbounded), ascending."""
        lo = bisect.bisect_left(self.by_modified, (low, -1)) if low is not None else 0
        hi = bisect.bisect_right(self.by_modified, (high, float("inf"))) if high is not None else len(self.by_modified)
        return self.by_modified[lo:hi]

    def create(self, record_id: str, values: dict[str, str]) -> Record:
        """A new record from validated `values`, with HubSpot's server-side defaults filled in."""
        self.validate(values, creating=True)
        stamp = iso(self.clock.tick())
        props = {**self.defaults, **{k: v for k, v in values.items() if v != ""}}
        props.update({"hs_object_id": record_id, created_prop(self.object_type): stamp,
                      modified_prop(self.object_type): stamp})
        rec = Record(record_id, props, stamp, stamp)
        self.insert(rec)
        return rec

    def validate(self, values: dict[str, Any], creating: bool = False) -> None:
        """Raise ValidationFailed for unknown, read-only or malformed values (reference §2.4, §5.5), and on a
        create for missing required ones (`REQUIRED_FIELD` *(assumed code)*)."""
        details = [invalid(name, "REQUIRED_FIELD", f"{name} is required")
                   for name in (self.required if creating else ()) if not values.get(name)]
        details += [d for name, value in values.items() if (d := self._check(name, value)) is not None]
        if details:
            raise ValidationFailed(details)

    def _check(self, name: str, value: Any) -> dict[str, Any] | None:
        d = self.defs.get(name)
        if d is None:
            return invalid(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
        if d.read_only:
            return invalid(name, "READ_ONLY_VALUE", f'"{name}" is a read only property; its value cannot be set.')
        text = "" if value is None else str(value)
        if text == "":
            return None
        if d.type != "string" and text != text.strip():
            return invalid(name, "INVALID_" + d.type.upper(), f"{text!r} has leading or trailing whitespace")
        if d.type == "number" and not _is_number(text):
            return invalid(name, "INVALID_LONG", f"{text} was not a valid long.")
        if d.type == "enumeration" and d.options and text not in d.options and not d.name.endswith("owner_id"):
            allowed = ", ".join(d.options)
            return invalid(name, "INVALID_OPTION", f"{text} was not one of the allowed options: [{allowed}]")
        if d.type in ("datetime", "date") and not _is_datetime(text):
            return invalid(name, "INVALID_DATE", f"{text} is not a valid date")
        return None

    def update(self, rec: Record, values: dict[str, str]) -> bool:
        """Apply validated values; returns whether anything changed (only then the timestamp moves)."""
        changed = False
        now = self.clock.tick()
        before = {name: rec.properties.get(name) for name in values}
        for name, raw in values.items():
            value = "" if raw is None else str(raw)
            if name == "lifecyclestage" and self.object_type == "contacts":
                changed |= self._set_stage(rec, value, now)
            elif value == "":
                changed |= rec.properties.pop(name, None) is not None
            elif rec.properties.get(name) != value:
                rec.properties[name] = value
                changed = True
        if changed:
            for name, old_value in before.items():
                if rec.properties.get(name) != old_value:
                    rec.record_change(name, old_value, rec.properties.get(name), iso(now))
            old = self._modified_key(rec)
            del self.by_modified[bisect.bisect_left(self.by_modified, old)]
            rec.properties[modified_prop(self.object_type)] = rec.updated_at = iso(now)
            bisect.insort(self.by_modified, self._modified_key(rec))
        return changed

    def set_system(self, rec: Record, values: dict[str, str], stamp: str) -> None:
        """Set values as HubSpot itself does (no validation), modified at `stamp` if that is later."""
        if not self.deferred:
            del self.by_modified[bisect.bisect_left(self.by_modified, self._modified_key(rec))]
        rec.properties.update(values)
        mod = modified_prop(self.object_type)
        if (to_millis(stamp) or 0) > (to_millis(rec.properties.get(mod)) or 0):
            rec.properties[mod] = rec.updated_at = stamp
        if not self.deferred:
            bisect.insort(self.by_modified, self._modified_key(rec))

    def _set_stage(self, rec: Record, value: str, now: datetime) -> bool:
        """Forward-only: a backward set succeeds and does nothing unless cleared earlier (reference §3.1)."""
        current = rec.properties.get("lifecyclestage")
        if value == "":
            rec.lifecycle_unlocked = True
            return rec.properties.pop("lifecyclestage", None) is not None
        if current == value:
            return False
        if current and not rec.lifecycle_unlocked and _rank(value) < _rank(current):
            return False
        rec.properties["lifecyclestage"] = value
        rec.lifecycle_unlocked = False
        date_prop = f"hs_lifecyclestage_{value}_date"
        if date_prop not in rec.properties:
            rec.properties[date_prop] = iso(now)
        rec.properties[f"hs_date_entered_{value}"] = iso(now)
        return True


def _rank(stage: str) -> int:
    """Default stages rank by funnel order; custom (numeric) stages sit after `other`."""
    return LIFECYCLE_STAGES.index(stage) if stage in LIFECYCLE_STAGES else len(LIFECYCLE_STAGES)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_datetime(text: str) -> bool:
    if text.isdigit():
        return True
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def to_millis(value: str | None) -> float | None:
    """Epoch ms for an ISO or epoch-ms string, for comparing datetimes in search filters."""
    if value is None or value == "":
        return None
    if value.lstrip("-").isdigit():
        return float(value)
    try:
        return datetime.fromisoformat(value).timestamp() * 1000  # 3.11 reads a trailing "Z" as UTC
    except ValueError:
        return None
