"""`SalesforceConnector`: incremental SOQL pulls and sObject Collections writes over simple-salesforce.

Pulls: one stream per object, `SystemModstamp >= watermark ORDER BY
SystemModstamp, Id` (one-second stamps tie by the thousand, reference §2.3),
paged by `nextRecordsUrl`. Writes: `PATCH composite/sobjects` 200 at a time with
`allOrNone: false`, results matched by position because failed items carry no
id (§4.2); follow-up tasks are upserts on the `LeadSync_Key__c` external id, so a
retried create can never duplicate.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from simple_salesforce import format_soql

from connectors.base import AuthError, ConfigError, ConnectorError, QuotaExhausted, RawPage, chunks, settled
from connectors.salesforce.bulk import NUMBER_TYPES, BulkReader
from connectors.salesforce.campaigns import Campaigns
from connectors.salesforce.describe import Describes
from connectors.salesforce.fields import STATUS, FieldMap
from connectors.salesforce.history import pull_history
from connectors.salesforce.settings import SalesforceSettings
from connectors.salesforce.transport import Transport
from mapping.base import crm_text
from mapping.model import Change, ChangeResult, CreateRecord, CreateTask, Membership, SetFields
from mapping.salesforce import (
    EXTRA_META,
    HISTORY_OBJECTS,
    LINK_FIELD,
    LINKED_MESSAGE,
    LINKED_TASK,
    ORG_STAGE_VALUES,
    PERSON_KEY_FIELD,
    SELECT_FIELDS,
    TASK_KEY_FIELD,
)

log = logging.getLogger(__name__)

#: Contact streams first, then engagement, as the protocol requires.
#: Then the stage history: Opportunities (by SystemModstamp) and field history (by CreatedDate, `history.py`).
#: Users last: their names for the report (incremental, so a sync re-reads only users that changed).
STREAMS: tuple[str, ...] = ("Lead", "Contact", "CampaignMember", "Task", "Event", "EmailMessage", "Opportunity",
                            "LeadHistory", "ContactHistory", "User")
CONTACT_STREAMS = frozenset({"Lead", "Contact"})
EMAIL = "EmailMessage"
#: Streams an org may not expose to the API user (`INVALID_TYPE`): they end with one empty page saying so.
OPTIONAL_STREAMS = frozenset({EMAIL, "Opportunity"})
LOCKED = "UNABLE_TO_LOCK_ROW"
CONVERTED = "CANNOT_UPDATE_CONVERTED_LEAD"
QUEUE_PREFIX = "00G"
MAX_RESTARTS = 3  # query restarts after an expired locator, per stream
#: Task field lengths (reference §3, Task: Subject 255, Description 32,000 characters).
TASK_SUBJECT_MAX, TASK_DESCRIPTION_MAX = 255, 32_000
ID_CHUNK = 200  # ids per `Id IN (…)` query: ~4 KB of URL, far below the 16 KB limit

Record = dict[str, Any]


def parse_stamp(text: str) -> datetime:
    """A stored watermark (wire format `…000+0000` or any ISO form) as aware UTC."""
    at = datetime.fromisoformat(text)
    return at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)


def wire_stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _plain(record: Mapping[str, Any]) -> Record:
    """A query record as plain dicts without `attributes` (relationship parents keep their fields)."""
    out: Record = {}
    for key, value in record.items():
        if key == "attributes":
            continue
        out[key] = _plain(value) if isinstance(value, Mapping) else value
    return out


class _Ties:
    """Tracks the highest SystemModstamp seen and the ids already yielded at it.

    Stamps have one-second precision and thousands of rows share one, so a
    query restarted with `>=` re-reads them; only those ids need remembering,
    which keeps memory bounded by the largest tie, not the org.
    """

    def __init__(self, watermark: str | None) -> None:
        # Wire format is fixed-width, so stamps compare correctly as strings.
        self.cursor = wire_stamp(parse_stamp(watermark)) if watermark else None
        self.ids: set[str] = set()

    def fresh(self, records: Iterable[Record]) -> list[Record]:
        out = []
        for rec in records:
            stamp = rec.get("SystemModstamp")
            if stamp == self.cursor and rec["Id"] in self.ids:
                continue
            if stamp is not None and (self.cursor is None or stamp > self.cursor):
                self.cursor, self.ids = stamp, set()
            if stamp == self.cursor:
                self.ids.add(rec["Id"])
            out.append(rec)
        return out


class SalesforceConnector:
    """The `connectors.base.Connector` protocol for one Salesforce org."""

    name: ClassVar[str] = "salesforce"
    streams: ClassVar[tuple[str, ...]] = STREAMS

    def __init__(self, settings: SalesforceSettings, sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self._sleep = sleep
        self.transport = Transport(settings, sleep)
        self._describes = Describes(self.transport, settings.timeout_s)
        self._inactive_users: set[str] | None = None
        self.field_map = FieldMap.build(settings.stage_field, settings.stage_values, settings.field_names)
        self.extra_fields = _extra_fields(settings.extra_fields)
        self._email_messages = True  # False once the org refused EmailMessage (INVALID_TYPE): no more lookups
        self._query_time: datetime | None = None  # when the stream being pulled first answered (its settled point)

    @property
    def api_calls(self) -> int:
        return self.transport.api_calls

    def quota(self) -> dict[str, int] | None:
        """The org's daily API allocation as of the last REST response (`Sforce-Limit-Info`, free with every
        call; shared by every integration in the org), for `leadsync status`."""
        usage = self.transport.api_usage()
        return {"daily_limit": usage.total, "daily_remaining": max(0, usage.total - usage.used)} if usage else None

    # ------------------------------------------------------------------ metadata
    @property
    def metadata_cache(self) -> dict[str, Any] | None:
        """Describes to keep for the next run (incremental state as a plain parameter; the engine stores it)."""
        return self._describes.dump() if self._describes.changed else None

    @metadata_cache.setter
    def metadata_cache(self, cache: Mapping[str, Any] | None) -> None:
        self._describes.load(cache)

    def fields_of(self, sobject: str, refresh: bool = False) -> dict[str, dict[str, Any]]:
        """The object's describe fields by name: read once per connector, from the saved describes when one
        conditional call says they are current (`describe.py`)."""
        return self._describes.get(sobject, refresh)

    def select_list(self, sobject: str) -> list[str]:
        """SELECT_FIELDS, minus what describe says this org lacks or hides, once it has been described.

        Optimistic on purpose: most orgs have every field, and a describe per object per
        run would cost a sync every 15 minutes ~500 calls a day. A query that answers
        INVALID_FIELD (before `init`, or under field-level security) triggers the describe.
        """
        extras = self.extra_fields.get(sobject, ())
        wanted = self.field_map.select(sobject, (*SELECT_FIELDS[sobject], *extras))
        fields = self._describes.known(sobject)
        if fields is None:
            return wanted
        self._check_extras(sobject, fields)
        relations = {f["relationshipName"] for f in fields.values() if f.get("relationshipName")}
        return [f for f in wanted if (f.split(".")[0] in relations if "." in f else f in fields)]

    def missing_fields(self) -> list[str]:
        """Fields leadsync writes that the org lacks (in the org's names), after checking the stage config.

        This is the connector's start-up (every run calls it, or `ensure_fields`):
        describe is read once (or its saved copy checked, `describe.py`), and the configured stage values are checked against
        the org's picklist and `LeadStatus` rows, so a wrong value stops the run
        with a `ConfigError` naming it instead of failing record by record.
        """
        described = {obj: self.fields_of(obj) for obj in ("Lead", "Contact")}  # one describe each, not per field
        missing = [f"{obj}.{name}" for obj, fields in described.items() for name in self.field_map.managed(obj)
                   if name not in fields]
        key = self.fields_of("Task").get(TASK_KEY_FIELD)
        if key is None or not key.get("externalId"):
            missing.append(f"Task.{TASK_KEY_FIELD}")
        self.field_map.validate(self.fields_of("Lead"), self.converted_statuses())
        for sobject in self.extra_fields:
            self._check_extras(sobject, self.fields_of(sobject))
        return missing

    def _check_extras(self, sobject: str, described: Mapping[str, Any]) -> None:
        """`extra_fields` must exist (and be visible) on the object: a typo would read as "always empty".

        Called with describe output at start-up (`missing_fields`, every run) and whenever a pull described
        the object; unknown names are a `ConfigError` naming every one of them.
        """
        unknown = [f for f in self.extra_fields.get(sobject, ()) if f not in described]
        if unknown:
            raise ConfigError(f"extra_fields: {sobject} has no field(s) {', '.join(unknown)} (describe lists "
                              "neither a missing field nor one hidden by field-level security)",
                              code="UNKNOWN_FIELDS")

    def converted_statuses(self) -> list[str]:
        """Lead statuses that mean converted, from `LeadStatus` (they vary per org; reference §3, §7.7).

        Only read when stages map onto Lead.Status: one query, at start-up.
        """
        if self.field_map.stage_field != STATUS:
            return []
        rows = self.query("SELECT MasterLabel, IsConverted FROM LeadStatus")  # the fields reference §3 names
        return [str(r["MasterLabel"]) for r in rows if r.get("IsConverted")]

    def ensure_fields(self) -> list[str]:
        """The REST API cannot create fields: succeed when all exist, else say which ones a person must add."""
        missing = self.missing_fields()
        if missing:
            raise ConfigError("create these custom fields in Salesforce Setup (Task." + TASK_KEY_FIELD +
                              " as a unique External ID): " + ", ".join(missing), code="MISSING_FIELDS")
        return []

    # ------------------------------------------------------------------ pull
    def cursor_at(self, when: datetime) -> str:
        return wire_stamp(when)

    def pull(self, watermarks: Mapping[str, str]) -> Iterator[RawPage]:
        for stream in STREAMS:
            yield from self.pull_stream(stream, watermarks.get(stream))

    def pull_stream(self, stream: str, watermark: str | None) -> Iterator[RawPage]:
        """`_pull_stream`, except that an optional object the org refuses (`INVALID_TYPE`: no access to
        EmailMessage) ends its stream with one empty page whose `meta["unavailable"]` says why; its watermark
        stays as it was."""
        if stream in HISTORY_OBJECTS:
            yield from pull_history(self, stream, watermark)
            return
        try:
            yield from self._pull_stream(stream, watermark)
        except ConnectorError as exc:
            if stream not in OPTIONAL_STREAMS or exc.code != "INVALID_TYPE":
                raise
            if stream == EMAIL:
                self._email_messages = False
            yield RawPage(stream, [], None, {"unavailable": f"{exc.code}: {exc}"})

    def _pull_stream(self, stream: str, watermark: str | None) -> Iterator[RawPage]:
        """`_stream_pages`, whose last page settles the watermark at the time the stream's first query was
        answered (the org's `Date` header): a quiet object's watermark moves on with every sync, so the next
        one reads from there less `overlap_s`, not from the last modification seen (`connectors.base.settled`)."""
        self._query_time = None
        yield from settled(self._stream_pages(stream, watermark),
                           lambda: wire_stamp(self._query_time) if self._query_time else None)

    def _stream_pages(self, stream: str, watermark: str | None) -> Iterator[RawPage]:
        """Pages of one object from `watermark` on; the cursor is the page's highest SystemModstamp.

        A first query refused with INVALID_FIELD is retried once with the fields
        describe lists. If a query locator expires mid-stream, the query restarts
        from the last cursor with `>=`; ids already yielded at that stamp are skipped.
        """
        fields = self.select_list(stream)
        floor = parse_stamp(watermark) - timedelta(seconds=self.settings.overlap_s) if watermark else None
        ties = _Ties(watermark)
        restarts, described = 0, False
        while True:
            try:
                yield from self._rest_or_bulk(stream, fields, floor, ties)
                return
            except ConnectorError as exc:
                if exc.code == "INVALID_FIELD" and not described:
                    # Only the first query validates fields: nothing was yielded yet. A describe already read
                    # (this run, or a saved one) is asked again, conditionally: it may predate the change.
                    described = True
                    self.fields_of(stream, refresh=True)
                    fields = self.select_list(stream)
                    continue
                if exc.code != "INVALID_QUERY_LOCATOR" or restarts == MAX_RESTARTS or ties.cursor is None:
                    raise
                restarts += 1
                log.warning("%s: query locator expired; restarting from %s", stream, ties.cursor)
                floor = parse_stamp(ties.cursor)

    def _rest_or_bulk(self, stream: str, fields: list[str], floor: datetime | None, ties: _Ties) -> Iterator[RawPage]:
        """REST pages; when the first one shows more than `bulk_threshold` rows to come, one Bulk 2.0 job reads the rest.

        Deciding on the first page's `totalSize` costs no extra call (a `COUNT()` would).
        """
        # Incremental contact pulls include the recycle bin, so deleted and merged-away records arrive as
        # IsDeleted = true (archived) instead of silently living on in the state store.
        include_deleted = floor is not None and stream in CONTACT_STREAMS
        soql = self._incremental_soql(stream, fields, floor)
        for n, body in enumerate(self._query_bodies(soql, include_deleted)):
            if n == 0 and self._query_time is None:
                self._query_time = self.transport.answered_at
            records = body.get("records") or []
            logical = (self.field_map.from_org(stream, _plain(r)) for r in records)
            yield self._page(stream, ties.fresh(logical), ties.cursor, "rest")
            left = int(body.get("totalSize") or 0) - len(records)
            if n == 0 and not body.get("done", True) and 0 < self.settings.bulk_threshold < left:
                yield from self._bulk(stream, fields, ties, include_deleted)
                return

    def _bulk(self, stream: str, fields: list[str], ties: _Ties, include_deleted: bool) -> Iterator[RawPage]:
        """The rest of a stream from its cursor (`>=`, ties skipped) through one Bulk API 2.0 query job."""
        assert ties.cursor is not None
        soql = self._incremental_soql(stream, fields, parse_stamp(ties.cursor))
        reader = BulkReader(self.transport, self.settings, self._sleep)
        for records in reader.pages(soql, self._column_types(stream, fields), include_deleted):
            logical = (self.field_map.from_org(stream, r) for r in records)
            yield self._page(stream, ties.fresh(logical), ties.cursor, "bulk2")

    def _page(self, stream: str, records: list[Record], cursor: str | None, api: str) -> RawPage:
        """One page with its meta; Task and EmailMessage records get the other side of each email attached."""
        if stream == "Task":
            self._attach_messages(records)
        elif stream == EMAIL:
            self._attach_tasks(records)
        return RawPage(stream, records, cursor, meta=self._meta(stream, api))

    def _meta(self, stream: str, api: str) -> dict[str, Any]:
        """Which API served the page, whether its stage values may be the org's own (see `fields.py`), and
        which extra fields the mapping copies into `Contact.extra`."""
        meta: dict[str, Any] = {"api": api}
        if self.field_map.org_stage_values(stream):
            meta[ORG_STAGE_VALUES] = True
        if self.extra_fields.get(stream):
            meta[EXTRA_META] = self.extra_fields[stream]
        return meta

    # ------------------------------------------------------------------ emails: Task ⇄ EmailMessage
    def _attach_messages(self, tasks: list[Record]) -> None:
        """Each email Task's EmailMessage (by `ActivityId`, reference §3) under `record["EmailMessage"]`.

        One query per 200 email Tasks of the page (other subtypes never have one). The mapping then maps the
        Task as its message, so an email pulled from both sides is one engagement with one kind, whichever
        side came first or comes again later. An org that refuses EmailMessage gets no lookups at all.
        """
        ids = [t["Id"] for t in tasks if t.get("TaskSubtype") == "Email"]
        if not ids or not self._email_messages:
            return
        found: dict[str, Record] = {}
        try:
            for part in chunks(ids, ID_CHUNK):
                for msg in self._messages_of(list(part)):
                    found.setdefault(str(msg["ActivityId"]), msg)
        except ConnectorError as exc:
            if exc.code != "INVALID_TYPE":
                raise
            self._email_messages = False
            log.warning("EmailMessage is not available (%s): email Tasks are counted on their own", exc)
            return
        for t in tasks:
            if t["Id"] in found:
                t[LINKED_MESSAGE] = found[t["Id"]]

    def _messages_of(self, task_ids: list[str]) -> list[Record]:
        """The EmailMessages of these Tasks, with the stream's own field list: a field hidden by field-level
        security (`INVALID_FIELD`) describes the object once and drops it, as the stream itself does."""
        while True:
            soql = format_soql("SELECT {:literal} FROM EmailMessage WHERE ActivityId IN {} ORDER BY Id",
                               ", ".join(self.select_list(EMAIL)), task_ids)
            try:
                return self.query(soql)
            except ConnectorError as exc:
                if exc.code != "INVALID_FIELD" or EMAIL in self._describes.fresh:
                    raise
                self.fields_of(EMAIL)

    def _attach_tasks(self, messages: list[Record]) -> None:
        """Each message's Task as `record["Activity"] = {"Id", "WhoId"}`: the lead or contact it was logged to
        (reference §3: `ActivityId` is the linked Task, `Task.WhoId` → Contact|Lead). One query per 200."""
        ids = list(dict.fromkeys(str(m["ActivityId"]) for m in messages if m.get("ActivityId")))
        who: dict[str, Record] = {}
        for part in chunks(ids, ID_CHUNK):
            rows = self.query(format_soql("SELECT Id, WhoId FROM Task WHERE Id IN {}", list(part)))
            who.update((str(r["Id"]), r) for r in rows)
        for m in messages:
            task = who.get(str(m.get("ActivityId")))
            if task is not None:
                m[LINKED_TASK] = task

    def _column_types(self, stream: str, fields: list[str]) -> dict[str, str]:
        """Describe type per selected path (`Account.Type` via the Account describe) for typing Bulk CSV."""
        own = self.fields_of(stream)
        types: dict[str, str] = {}
        for path in fields:
            relation, dot, leaf = path.partition(".")
            if not dot:
                types[path] = own[path]["type"]
                continue
            link = next((f for f in own.values() if f.get("relationshipName") == relation), None)
            targets = link["referenceTo"] if link else []
            if len(targets) == 1:
                types[path] = self.fields_of(targets[0]).get(leaf, {}).get("type", "string")
        return types

    @staticmethod
    def _incremental_soql(stream: str, fields: list[str], floor: datetime | None) -> str:
        select = format_soql("SELECT {:literal} FROM {:literal}", ", ".join(fields), stream)
        if floor is None:
            return select + " ORDER BY SystemModstamp, Id"
        return select + format_soql(" WHERE SystemModstamp >= {} ORDER BY SystemModstamp, Id", floor)

    def _query_bodies(self, soql: str, include_deleted: bool = False) -> Iterator[dict[str, Any]]:
        """Each page's response body; the next page is fetched only when the caller asks (streaming)."""
        headers = {"Sforce-Query-Options": f"batchSize={self.settings.query_batch_size}"}
        timeout = self.settings.timeout_s
        result = self.transport.call(
            lambda sf: sf.query(soql, include_deleted=include_deleted, headers=headers, timeout=timeout), "query")
        while True:
            yield result
            if result.get("done", True):
                return
            url = result["nextRecordsUrl"]
            result = self.transport.call(
                lambda sf, u=url: sf.query_more(u, identifier_is_url=True, headers=headers, timeout=timeout),
                "query_more")

    def query(self, soql: str) -> list[Record]:
        """Every record of a small query (lookups, not streams)."""
        return [_plain(r) for body in self._query_bodies(soql) for r in body.get("records") or []]

    # ------------------------------------------------------------------ apply
    def apply(self, changes: Sequence[Change]) -> list[ChangeResult]:
        results: list[ChangeResult | None] = [None] * len(changes)
        updates = [(i, c) for i, c in enumerate(changes) if isinstance(c, SetFields)]
        tasks = [(i, c) for i, c in enumerate(changes) if isinstance(c, CreateTask)]
        creates = [(i, c) for i, c in enumerate(changes) if isinstance(c, CreateRecord)]
        size = self.settings.write_batch_size
        for batch in chunks(creates, size):
            for i, res in zip((i for i, _ in batch), self._create_records([c for _, c in batch]), strict=True):
                results[i] = res
        for batch in chunks(updates, size):
            for i, res in zip((i for i, _ in batch), self._set_fields([c for _, c in batch]), strict=True):
                results[i] = res
        for batch in chunks(tasks, size):
            for i, res in zip((i for i, _ in batch), self._create_tasks([c for _, c in batch]), strict=True):
                results[i] = res
        assert all(r is not None for r in results)
        return [r for r in results if r is not None]

    def _set_fields(self, batch: list[SetFields]) -> list[ChangeResult]:
        records = [{"attributes": {"type": c.object_type}, "id": c.record_id, **self._wire_values(c)} for c in batch]
        outcomes = self._write("composite/sobjects", records)
        return [self._logical_result(_result(c, out, c.record_id)) for c, out in zip(batch, outcomes, strict=True)]

    def _wire_values(self, change: SetFields) -> dict[str, Any]:
        return self._typed_values(change.object_type, change.values())

    def _typed_values(self, sobject: str, logical: Mapping[str, Any]) -> dict[str, Any]:
        """Plan values in the org's fields and picklist values, typed for JSON by describe (numbers as numbers)."""
        types = {name: f["type"] for name, f in self.fields_of(sobject).items()}
        values = self.field_map.to_org(sobject, logical)
        return {name: _typed(value if value is None else str(value), types.get(name))
                for name, value in values.items()}

    # ------------------------------------------------------------------ hand-offs (records created for a person)
    def supports_links(self) -> bool:
        """Whether the org has leadsync's link field on Lead and Contact (optional, like the hand-off key)."""
        return all(LINK_FIELD in self.fields_of(o) for o in ("Lead", "Contact"))

    def supports_handoffs(self) -> bool:
        """A hand-off is exactly-once only through an External ID: without one, leadsync creates nothing."""
        key = self.fields_of("Lead").get(PERSON_KEY_FIELD)
        return bool(key and key.get("externalId"))

    def find_records(self, object_type: str, keys: Sequence[str]) -> dict[str, str]:
        """Record id by hand-off key, for the keys that already have one (crash recovery, before any create)."""
        found: dict[str, str] = {}
        for part in chunks(list(keys), 100):
            soql = format_soql("SELECT Id, {:literal} FROM {:literal} WHERE {:literal} IN {}", PERSON_KEY_FIELD,
                               object_type, PERSON_KEY_FIELD, list(part))
            found.update({r[PERSON_KEY_FIELD]: r["Id"] for r in self.query(soql)})
        return found

    def record_activity(self, object_type: str, ids: Sequence[str]) -> dict[str, str]:
        """Why each of these created records is no longer leadsync's alone to delete (undo of a hand-off):
        converted, a status other than the org's default, or activity that is not leadsync's own task."""
        out: dict[str, str] = {}
        default = next((r["MasterLabel"] for r in self.query("SELECT MasterLabel, IsDefault FROM LeadStatus")
                        if r.get("IsDefault")), None) if object_type == "Lead" else None
        for part in chunks(list(ids), ID_CHUNK):
            rows = self.query(format_soql("SELECT Id, IsConverted, Status FROM Lead WHERE Id IN {}", list(part)))
            for r in rows:
                if r.get("IsConverted"):
                    out[r["Id"]] = "converted"
                elif default and r.get("Status") != default:
                    out[r["Id"]] = f"status is {r.get('Status')!r}"
            for sobject, who in (("Task", "WhoId"), ("Event", "WhoId"), ("CampaignMember", "LeadId")):
                extra = f" AND {TASK_KEY_FIELD} = null" if sobject == "Task" else ""
                soql = format_soql(f"SELECT {{:literal}} FROM {{:literal}} WHERE {{:literal}} IN {{}}{extra}",
                                   who, sobject, who, list(part))
                for r in self.query(soql):
                    out.setdefault(r[who], f"has a {sobject} that leadsync did not create")
        return out

    def delete_records(self, ids: Sequence[str]) -> list[str]:
        """Delete through collections (200 per call); returns the ids Salesforce did not delete."""
        failed: list[str] = []
        for part in chunks(list(ids), self.settings.write_batch_size):
            reply = self.transport.call(
                lambda sf, p=part: sf.restful("composite/sobjects", method="DELETE",
                                              params={"ids": ",".join(p), "allOrNone": "false"},
                                              timeout=self.settings.timeout_s), "DELETE composite/sobjects")
            failed += [i for i, item in zip(part, reply or [], strict=False) if not item.get("success")]
        return failed

    def _create_records(self, batch: list[CreateRecord]) -> list[ChangeResult]:
        """Upsert on the hand-off key: a create whose answer was lost is re-sent as an update, never a copy."""
        out: list[ChangeResult] = []
        for sobject in dict.fromkeys(c.object_type for c in batch):
            part = [c for c in batch if c.object_type == sobject]
            records = [{"attributes": {"type": sobject}, PERSON_KEY_FIELD: c.idempotency_key,
                        **self._typed_values(sobject, c.fields)} for c in part]
            outcomes = self._write(f"composite/sobjects/{sobject}/{PERSON_KEY_FIELD}", records)
            out += [self._logical_result(_result(c, o, o.get("id"))) for c, o in zip(part, outcomes, strict=True)]
        order = {id(c): i for i, c in enumerate(batch)}
        return sorted(out, key=lambda r: order[id(r.change)])

    def _logical_result(self, res: ChangeResult) -> ChangeResult:
        """A rejection names the field the plan knows (`LeadSync_Stage__c`), not the org's (`Status`)."""
        if not res.fields or self.field_map.identity:
            return res
        sobject = res.change.object_type
        return replace(res, fields=tuple(self.field_map.logical_field(sobject, f) for f in res.fields))

    def _create_tasks(self, batch: list[CreateTask]) -> list[ChangeResult]:
        """Upsert on the idempotency key; keys that already have a task are reported, never re-sent.

        Re-sending would be safe from duplicates, but an upsert overwrites
        Status/Subject, undoing what the owner did with the task since.
        """
        existing = self.find_tasks([c.idempotency_key for c in batch])
        todo: dict[str, CreateTask] = {}  # one upsert per key, even if a batch repeats a key
        for c in batch:
            if c.idempotency_key not in existing:
                todo.setdefault(c.idempotency_key, c)
        records = [self._task_record(c) for c in todo.values()]
        written = dict(zip(todo, self._write(f"composite/sobjects/Task/{TASK_KEY_FIELD}", records), strict=True))
        out = []
        for c in batch:
            if c.idempotency_key in existing:
                out.append(ChangeResult(c, ok=True, crm_id=existing[c.idempotency_key],
                                        message="task already exists for this key"))
            else:
                outcome = written[c.idempotency_key]
                out.append(_result(c, outcome, outcome.get("id")))
        return out

    def find_tasks(self, keys: Sequence[str]) -> dict[str, str]:
        """Task id by key, for the keys that already have one (100 keys per query keeps the URL short)."""
        found: dict[str, str] = {}
        for part in chunks(list(keys), 100):
            soql = format_soql("SELECT Id, {:literal} FROM Task WHERE {:literal} IN {}", TASK_KEY_FIELD,
                               TASK_KEY_FIELD, list(part))
            found.update({r[TASK_KEY_FIELD]: r["Id"] for r in self.query(soql)})
        return found

    def _task_record(self, c: CreateTask) -> Record:
        record: Record = {
            "attributes": {"type": "Task"}, TASK_KEY_FIELD: c.idempotency_key, "WhoId": c.contact_id,
            "Subject": crm_text(c.subject, TASK_SUBJECT_MAX), "Description": crm_text(c.body, TASK_DESCRIPTION_MAX),
            "Status": self.settings.task_status,
            "Priority": self.settings.task_priority, "ActivityDate": c.due.date().isoformat(),
        }
        owner = self._task_owner(c.owner_id)
        if owner:
            record["OwnerId"] = owner
        return record

    def task_owner(self, owner_id: str | None) -> str | None:
        """The OwnerId a follow-up task for a record owned by `owner_id` is sent with (None: the API user)."""
        return self._task_owner(owner_id)

    def _task_owner(self, owner_id: str | None) -> str | None:
        """A user who can act on the follow-up (reference §7.8: `Lead.OwnerId` can be a queue).

        A queue's leads go to the user `queue_routing` names for that queue, else
        to `queue_owner_id`; so do an inactive owner's (Salesforce refuses them as
        owners). None sends no OwnerId, and Salesforce makes the API user the owner.
        """
        st = self.settings
        if not owner_id:
            return st.queue_owner_id
        if owner_id.startswith(QUEUE_PREFIX):
            return st.queue_routing.get(owner_id, st.queue_owner_id)
        if owner_id in self._inactive():
            return st.queue_owner_id
        return owner_id

    def owners(self) -> dict[str, bool]:
        """User id → `IsActive`, for routing: one query (every user; queues are never routed to)."""
        return {r["Id"]: bool(r.get("IsActive")) for r in self.query("SELECT Id, IsActive FROM User")}

    def _inactive(self) -> set[str]:
        if self._inactive_users is None:
            self._inactive_users = {r["Id"] for r in self.query("SELECT Id FROM User WHERE IsActive = false")}
        return self._inactive_users

    def _write(self, path: str, records: list[Record]) -> list[dict[str, Any]]:
        """One collection write per ≤200 records; locked rows alone are re-sent with backoff.

        A whole-call failure becomes that failure on each record; quota, auth and
        configuration errors propagate, since the run must stop.
        """
        if not records:
            return []
        outcomes: list[dict[str, Any] | None] = [None] * len(records)
        pending = list(range(len(records)))
        attempts = self.settings.lock_retry_attempts
        for attempt in range(attempts):
            body = {"allOrNone": False, "records": [records[i] for i in pending]}
            try:
                reply = self.transport.call(
                    lambda sf, b=body: sf.restful(path, method="PATCH", json=b, timeout=self.settings.timeout_s),
                    f"PATCH {path}")
            except (QuotaExhausted, AuthError, ConfigError):
                raise
            except ConnectorError as exc:
                failure = {"success": False, "errors": [{"statusCode": exc.code or "ERROR", "message": str(exc),
                                                         "fields": []}]}
                for i in pending:
                    outcomes[i] = failure
                break
            if not isinstance(reply, list) or len(reply) != len(pending):
                raise ConnectorError(f"PATCH {path}: expected {len(pending)} results, got {reply!r:.200}")
            retry = [i for i, item in zip(pending, reply, strict=True) if _code(item) == LOCKED]
            for i, item in zip(pending, reply, strict=True):
                outcomes[i] = item
            if not retry or attempt + 1 == attempts:
                break
            log.info("%d record(s) locked, retrying them alone", len(retry))
            pending = retry
            self._sleep(min(self.settings.backoff_max_s, self.settings.backoff_base_s * 2**attempt * random.random()))
        assert all(o is not None for o in outcomes)
        return [o for o in outcomes if o is not None]

    # ------------------------------------------------------------------ nurture (campaign members)
    def apply_memberships(self, changes: Sequence[Membership], batch_size: int) -> list[ChangeResult]:
        """Nurture: Leads / Contacts into and out of a Campaign (connectors/salesforce/campaigns.py)."""
        return Campaigns(self.query, self._collection).apply(changes, batch_size)

    def campaign_members(self, campaign_id: str, record_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        return Campaigns(self.query, self._collection).members(campaign_id, record_ids)

    def _collection(self, method: str, path: str, payload: Any) -> list[dict[str, Any]]:
        """One sObject Collections call (POST/PATCH records, DELETE ids); a whole-call failure is that failure on
        each item, quota, auth and configuration errors propagate."""
        count = len(payload.split(",")) if method == "DELETE" else len(payload)
        kwargs: dict[str, Any] = {"params": {"ids": payload, "allOrNone": "false"}} if method == "DELETE" else \
            {"json": {"allOrNone": False, "records": payload}}
        try:
            reply = self.transport.call(lambda sf: sf.restful(path, method=method, timeout=self.settings.timeout_s,
                                                              **kwargs), f"{method} {path}")
        except (QuotaExhausted, AuthError, ConfigError):
            raise
        except ConnectorError as exc:
            return [{"success": False, "errors": [{"statusCode": exc.code or "ERROR", "message": str(exc),
                                                   "fields": []}]}] * count
        if not isinstance(reply, list) or len(reply) != count:
            raise ConnectorError(f"{method} {path}: expected {count} results, got {reply!r:.200}")
        return reply

    # ------------------------------------------------------------------ read-back (undo, hand-off health)
    def read_fields(self, object_type: str, ids: Sequence[str], fields: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Current values by id, 200 ids per query; deleted or unknown ids are left out.

        Fields the org does not have read as None rather than failing the query.
        """
        described = self.fields_of(object_type)
        known = [f for f in self.field_map.select(object_type, fields) if f in described]
        out: dict[str, dict[str, Any]] = {}
        for part in chunks(list(ids), ID_CHUNK):
            soql = format_soql("SELECT {:literal} FROM {:literal} WHERE Id IN {}",
                               ", ".join(dict.fromkeys(["Id", *known])), object_type, list(part))
            for rec in self.query(soql):
                rec = self.field_map.from_org(object_type, rec)
                out[rec["Id"]] = {f: rec.get(f) for f in fields}
        return out

    def closed_tasks_since(self, since: datetime) -> dict[str, str | None]:
        """leadsync's tasks (those with a key) closed and modified since `since`, each with its holder
        (`OwnerId`): one query, however many tasks are open (closing a task moves its SystemModstamp, Ref §2.3)."""
        soql = format_soql("SELECT Id, OwnerId FROM Task WHERE {:literal} != null AND IsClosed = true "
                           "AND SystemModstamp >= {}", TASK_KEY_FIELD, since.astimezone(UTC))
        return {r["Id"]: r.get("OwnerId") or None for r in self.query(soql)}

    def task_states(self, crm_ids: Sequence[str]) -> dict[str, bool]:
        """Whether each task is closed (`IsClosed`: any closed status counts); deleted tasks are left out."""
        return {tid: closed for tid, (closed, _) in self.task_details(crm_ids).items()}

    def task_details(self, crm_ids: Sequence[str]) -> dict[str, tuple[bool, str | None]]:
        """(closed, OwnerId) of each task in one read: the task's holder (a queue's router, the API user, or
        whoever it was reassigned to) is who the hand-off SLA credits, not the Lead's owner."""
        rows = self.read_fields("Task", crm_ids, ["IsClosed", "OwnerId"])
        return {tid: (bool(row.get("IsClosed")), row.get("OwnerId") or None) for tid, row in rows.items()}

    def reassign_tasks(self, owners: Mapping[str, str]) -> list[str]:
        """Set tasks' OwnerId (SLA re-routing); returns the ids Salesforce did not update."""
        ids = list(owners)
        failed: list[str] = []
        for part in chunks(ids, self.settings.write_batch_size):
            records = [{"attributes": {"type": "Task"}, "id": i, "OwnerId": owners[i]} for i in part]
            outcomes = self._write("composite/sobjects", records)
            failed += [i for i, out in zip(part, outcomes, strict=True) if not out.get("success")]
        return failed

    def complete_tasks(self, crm_ids: Sequence[str]) -> list[str]:
        """Set Status to Completed through collection updates; returns the ids Salesforce did not update."""
        failed: list[str] = []
        for part in chunks(list(crm_ids), self.settings.write_batch_size):
            records = [{"attributes": {"type": "Task"}, "id": i, "Status": "Completed"} for i in part]
            outcomes = self._write("composite/sobjects", records)
            failed += [i for i, out in zip(part, outcomes, strict=True) if not out.get("success")]
        return failed

    # ------------------------------------------------------------------ lookups
    def find_task(self, idempotency_key: str) -> str | None:
        rows = self.query(format_soql("SELECT Id FROM Task WHERE {:literal} = {} LIMIT 1", TASK_KEY_FIELD,
                                      idempotency_key))
        return rows[0]["Id"] if rows else None

    def close(self) -> None:
        self.transport.close()


def _extra_fields(configured: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """`extra_fields` per object, each name once; only Lead and Contact feed `Contact.extra`."""
    others = sorted(set(configured) - CONTACT_STREAMS)
    if others:
        raise ConfigError(f"extra_fields: only Lead and Contact fields can be read into a contact, not "
                          f"{', '.join(others)}", code="BAD_EXTRA_FIELDS")
    return {obj: tuple(dict.fromkeys(names)) for obj, names in configured.items() if names}


def _typed(value: str | None, field_type: str | None) -> Any:
    """Plan values are strings; Salesforce wants JSON numbers and booleans for those field types."""
    if value is None or value == "":
        return None
    if field_type in NUMBER_TYPES:
        try:
            number = float(value)
        except ValueError:
            return value  # let Salesforce reject it with its own reason
        return int(number) if number.is_integer() else number
    if field_type == "boolean":
        return value.strip().lower() == "true"
    return value


def _code(item: Mapping[str, Any]) -> str | None:
    errors = item.get("errors") or []
    return errors[0].get("statusCode") if not item.get("success") and errors else None


def _result(change: Change, item: Mapping[str, Any], crm_id: str | None) -> ChangeResult:
    """One collection result → ChangeResult; converted leads are skips, locks stay retryable."""
    if item.get("success"):
        return ChangeResult(change, ok=True, crm_id=crm_id)
    errors = item.get("errors") or [{}]
    first = errors[0]
    code = first.get("statusCode")
    message = "; ".join(str(e.get("message", "")) for e in errors)
    fields = tuple(f for e in errors for f in e.get("fields") or ())
    return ChangeResult(change, ok=False, crm_id=None, error_code=code, message=message, fields=fields,
                        retryable=code == LOCKED, skipped=code == CONVERTED)
