"""Writes: single-record CRUD and upsert, and sObject Collections (create, update, upsert, delete).

Collections validate every record first, then commit all of them, or none
under `allOrNone`; results come back in request order and a failed item has
no `id` key (reference §4.2).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import unquote

from sandbox.salesforce.ids import prefix_object
from sandbox.salesforce.store import RecordError, Store, WriteRejected
from sandbox.salesforce.wire import DATA, NOT_FOUND, errors, json_object
from sandbox.server import App, Request, Response

MAX_BATCH = 200
ROLLED_BACK = RecordError("ALL_OR_NONE_OPERATION_ROLLED_BACK",
                          "Record rolled back because not all records were valid and the request was using "
                          "AllOrNone header")


@dataclass
class RecordFaults:
    """Per-record failures on collection writes to existing records.

    Row locks (listed ids, or a seeded rate per record) are transient; `rejections`
    stay until removed, like a validation rule or duplicate rule in a real org.
    """

    ids: dict[str, int] = field(default_factory=dict)  # id -> failures left
    rate: float = 0.0
    seed: int = 0
    per_record: int = 1  # how many times one record can fail under `rate`
    seen: dict[str, int] = field(default_factory=dict)
    rejections: dict[str, RecordError] = field(default_factory=dict)

    def hit(self, record_id: str) -> bool:
        left = self.ids.get(record_id, 0)
        if left > 0:
            self.ids[record_id] = left - 1
            return True
        if self.rate <= 0:
            return False
        n = self.seen.get(record_id, 0)
        if n >= self.per_record:
            return False
        if random.Random(f"{self.seed}:{record_id}:{n}").random() < self.rate:
            self.seen[record_id] = n + 1
            return True
        return False


@dataclass
class _Pending:
    """A validated collection item: its commit, or the error it will report."""

    commit: Callable[[], dict[str, Any]] | None = None
    error: RecordError | None = None
    upsert: bool = False


class Writes:
    """Registers the write routes; `faults` injects per-record failures."""

    def __init__(self, app: App, store: Store) -> None:
        self.app = app
        self.store = store
        self.faults = RecordFaults()
        r = app.route
        r("POST", DATA + "/sobjects/{sobject}", "sf.create")(self.create)
        r("PATCH", DATA + "/sobjects/{sobject}/{record_id}", "sf.update")(self.update)
        r("DELETE", DATA + "/sobjects/{sobject}/{record_id}", "sf.delete")(self.delete)
        r("PATCH", DATA + "/sobjects/{sobject}/{ext_field}/{value}", "sf.upsert")(self.upsert)
        r("POST", DATA + "/composite/sobjects", "sf.collection_create")(self.collection_create)
        r("PATCH", DATA + "/composite/sobjects", "sf.collection_update")(self.collection_update)
        r("DELETE", DATA + "/composite/sobjects", "sf.collection_delete")(self.collection_delete)
        r("PATCH", DATA + "/composite/sobjects/{sobject}/{ext_field}", "sf.collection_upsert")(self.collection_upsert)

    def _table_and_body(self, req: Request) -> tuple[Any, dict[str, Any]] | Response:
        """The sObject's table and the JSON object sent, or the 404/400 Salesforce answers instead."""
        table = self.store.table(req.params["sobject"])
        if table is None:
            return Response(404, NOT_FOUND)
        body = json_object(req)
        if isinstance(body, Response):
            return body
        return table, body

    def create(self, req: Request) -> Response:
        found = self._table_and_body(req)
        if isinstance(found, Response):
            return found
        table, body = found
        with self.app.lock:
            try:
                row = self.store.prepare_create(table.sobject.name, body)
            except WriteRejected as rej:
                return _rejected(rej.error)
            new_id = self.store.commit_create(table.sobject.name, row)
        return Response(201, {"id": new_id, "success": True, "errors": []})

    def update(self, req: Request) -> Response:
        found = self._table_and_body(req)
        if isinstance(found, Response):
            return found
        table, body = found
        with self.app.lock:
            try:
                row, changes = self.store.prepare_update(table.sobject.name, req.params["record_id"], body)
            except WriteRejected as rej:
                return _rejected(rej.error)
            self.store.commit_update(table.sobject.name, row["Id"], changes)
        return Response(204)

    def delete(self, req: Request) -> Response:
        table = self.store.table(req.params["sobject"])
        if table is None:
            return Response(404, NOT_FOUND)
        with self.app.lock:
            try:
                self.store.delete(table.sobject.name, req.params["record_id"])
            except WriteRejected as rej:
                return _rejected(rej.error)
        return Response(204)

    def upsert(self, req: Request) -> Response:
        """PATCH /sobjects/{obj}/{extField}/{value}: 201 created:true, or 200 created:false."""
        table = self.store.table(req.params["sobject"])
        if table is None:
            return Response(404, NOT_FOUND)
        sobject, ext = table.sobject.name, req.params["ext_field"]
        value = unquote(req.params["value"])
        body = json_object(req)
        if isinstance(body, Response):
            return body
        with self.app.lock:
            found = external_lookup(self.store, sobject, ext, value)
            if isinstance(found, Response):
                return found
            pending = self._prepare_upsert(sobject, ext, {**body, ext: value} if ext != "Id" else body, found)
            if pending.error is not None:
                return _rejected(pending.error)
            assert pending.commit is not None
            result = pending.commit()
        return Response(201 if result["created"] else 200, result)

    def collection_create(self, req: Request) -> Response:
        return self._collection(req, self._prepare_create_item)

    def collection_update(self, req: Request) -> Response:
        return self._collection(req, self._prepare_update_item)

    def collection_upsert(self, req: Request) -> Response:
        table = self.store.table(req.params["sobject"])
        if table is None:
            return Response(404, NOT_FOUND)
        sobject = table.sobject.name
        key = upsert_key(self.store, sobject, req.params["ext_field"])
        if key is None:
            return Response(400, errors(f"Field name provided, {req.params['ext_field']} is not an External ID or "
                                        f"indexed field for {sobject}", "INVALID_FIELD"))
        upsert = self._upsert_preparer(sobject, key)

        def prepare(record: dict[str, Any]) -> _Pending:
            if (record.get("attributes") or {}).get("type") != sobject:
                return _Pending(error=RecordError("INVALID_TYPE", f"Records must be of type {sobject}"), upsert=True)
            return upsert(record)

        return self._collection(req, prepare)

    def collection_delete(self, req: Request) -> Response:
        ids = req.args("ids")
        if len(ids) > MAX_BATCH:
            return Response(400, _too_many())
        with self.app.lock:
            results = [self._delete(record_id) for record_id in ids]
        return Response(200, [r if isinstance(r, dict) else {"success": False, "errors": [r.body()]} for r in results])

    def ingest_writer(self, sobject: str, operation: str,
                      key: str | None = None) -> Callable[[dict[str, Any]], dict[str, Any] | RecordError]:
        """A Bulk 2.0 ingest job's per-row write: the sObject Collections checks, faults and results.

        A job has no allOrNone, so each row commits as soon as it passes; an upsert key repeated within
        the job fails as it would within one collection call. Callers hold `app.lock`.
        """
        if operation == "delete":
            return lambda values: self._delete(str(values.get("Id") or ""), sobject)
        prepare: Callable[[dict[str, Any]], _Pending]
        if operation == "insert":
            prepare = partial(self._prepare_create, sobject)
        elif operation == "update":
            prepare = partial(self._prepare_update, sobject)
        else:
            prepare = self._upsert_preparer(sobject, key or "Id")

        def write(values: dict[str, Any]) -> dict[str, Any] | RecordError:
            pending = prepare(values)
            if pending.error is not None:
                return pending.error
            assert pending.commit is not None
            return pending.commit()

        return write

    def _collection(self, req: Request, prepare: Callable[[dict[str, Any]], _Pending]) -> Response:
        """Validate every record, then commit all (or none, under allOrNone); results in request order."""
        body = json_object(req)
        if isinstance(body, Response):
            return body
        records = body.get("records")
        if not isinstance(records, list):
            return Response(400, errors("Json Deserialization failed: 'records' must be a list", "JSON_PARSER_ERROR"))
        if len(records) > MAX_BATCH:
            return Response(400, _too_many())
        all_or_none = bool(body.get("allOrNone", False))
        with self.app.lock:
            pending = [prepare(rec) if isinstance(rec, dict) else
                       _Pending(error=RecordError("JSON_PARSER_ERROR", "record must be an object")) for rec in records]
            failed = any(p.error for p in pending)
            results = []
            for p in pending:
                if p.error is not None or (all_or_none and failed):
                    item: dict[str, Any] = {"success": False, "errors": [(p.error or ROLLED_BACK).body()]}
                    if p.upsert:
                        item["created"] = False
                    results.append(item)
                else:
                    assert p.commit is not None
                    results.append(p.commit())
        return Response(200, results)

    def _sobject_of(self, record: dict[str, Any]) -> str | RecordError:
        kind = (record.get("attributes") or {}).get("type")
        table = self.store.table(kind) if isinstance(kind, str) else None
        if table is None:
            return RecordError("INVALID_TYPE", f"sObject type '{kind}' is not supported.")
        return table.sobject.name

    def _prepare_create_item(self, record: dict[str, Any]) -> _Pending:
        sobject = self._sobject_of(record)
        if isinstance(sobject, RecordError):
            return _Pending(error=sobject)
        return self._prepare_create(sobject, record)

    def _prepare_update_item(self, record: dict[str, Any]) -> _Pending:
        sobject = self._sobject_of(record)
        if isinstance(sobject, RecordError):
            return _Pending(error=sobject)
        return self._prepare_update(sobject, record)

    def _prepare_create(self, sobject: str, values: dict[str, Any], upsert: bool = False) -> _Pending:
        try:
            row = self.store.prepare_create(sobject, values)
        except WriteRejected as rej:
            return _Pending(error=rej.error, upsert=upsert)

        def commit() -> dict[str, Any]:
            result: dict[str, Any] = {"id": self.store.commit_create(sobject, row), "success": True, "errors": []}
            if upsert:
                result["created"] = True
            return result

        return _Pending(commit=commit, upsert=upsert)

    def _prepare_update(self, sobject: str, record: dict[str, Any]) -> _Pending:
        record_id = record.get("id") or record.get("Id")
        if not record_id:
            return _Pending(error=RecordError("MISSING_ARGUMENT", "Id not specified in an update call", ("Id",)))
        values = {k: v for k, v in record.items() if k not in ("id", "Id")}
        return self._prepare_existing(sobject, str(record_id), values, upsert=False)

    def _upsert_preparer(self, sobject: str, key: str) -> Callable[[dict[str, Any]], _Pending]:
        """Upsert by `key` (an External ID field or Id); a key value repeated within one request fails."""
        claimed: set[str] = set()

        def prepare(record: dict[str, Any]) -> _Pending:
            value = record.get(key)
            if value in (None, ""):
                return _Pending(error=RecordError("MISSING_ARGUMENT", f"{key} not specified", (key,)), upsert=True)
            folded = str(value).casefold()
            if folded in claimed:
                return _Pending(error=RecordError("DUPLICATE_EXTERNAL_ID",
                                                  f"Duplicate external id specified: {value}", (key,)), upsert=True)
            claimed.add(folded)
            return self._prepare_upsert(sobject, key, record, self.store.find_external(sobject, key, str(value)))

        return prepare

    def _delete(self, record_id: str, sobject: str | None = None) -> dict[str, Any] | RecordError:
        """Soft-delete one record (of `sobject`, when given): its collection result, or its error."""
        row = self.store.get(record_id)
        if row is None:
            return RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
        try:
            self.store.delete(sobject or str(prefix_object(row["Id"])), record_id)
        except WriteRejected as rej:
            return rej.error
        return {"id": record_id, "success": True, "errors": []}

    def _prepare_existing(self, sobject: str, record_id: str, values: dict[str, Any], upsert: bool) -> _Pending:
        try:
            row, changes = self.store.prepare_update(sobject, record_id, values)
        except WriteRejected as rej:
            return _Pending(error=rej.error, upsert=upsert)
        rejected = self.faults.rejections.get(row["Id"])
        if rejected is not None:
            return _Pending(error=rejected, upsert=upsert)
        if self.faults.hit(row["Id"]):
            return _Pending(error=RecordError("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record "
                                              f"or 1 records: {row['Id']}"), upsert=upsert)

        def commit() -> dict[str, Any]:
            self.store.commit_update(sobject, row["Id"], changes)
            result: dict[str, Any] = {"id": row["Id"], "success": True, "errors": []}
            if upsert:
                result["created"] = False
            return result

        return _Pending(commit=commit, upsert=upsert)

    def _prepare_upsert(self, sobject: str, ext: str, record: dict[str, Any], existing: str | None) -> _Pending:
        values = {k: v for k, v in record.items() if k != "attributes"}
        if existing is not None:
            return self._prepare_existing(sobject, existing, {k: v for k, v in values.items() if k != "Id"},
                                          upsert=True)
        if ext == "Id":
            return _Pending(error=RecordError("NOT_FOUND", "The requested resource does not exist"), upsert=True)
        return self._prepare_create(sobject, values, upsert=True)


def upsert_key(store: Store, sobject: str, name: str) -> str | None:
    """The field an upsert may match on (an External ID field, or Id), spelled as the schema spells it."""
    f = store.schema[sobject].field(name)
    return f.name if f is not None and (f.external_id or f.name == "Id") else None


def external_lookup(store: Store, sobject: str, ext: str, value: str) -> str | None | Response:
    """The id holding `value` in external-id field `ext` (None: no such record), or the 404 for a bad field."""
    key = upsert_key(store, sobject, ext)
    if key is None:
        return Response(404, errors(f"Provided external ID field does not exist or is not accessible: {ext}",
                                    "NOT_FOUND"))
    return store.find_external(sobject, key, value)


def _rejected(error: RecordError) -> Response:
    """A single-record failure: 404 when the record is gone, else 400, in the whole-request shape."""
    status = 404 if error.status_code in ("INVALID_CROSS_REFERENCE_KEY", "ENTITY_IS_DELETED") else 400
    if status == 404 and error.status_code == "INVALID_CROSS_REFERENCE_KEY" and not error.fields:
        return Response(404, NOT_FOUND)
    return Response(status, errors(error.message, error.status_code, list(error.fields)))


def _too_many() -> list[dict[str, Any]]:
    return errors("record limit reached. cannot submit more than 200 records into this call", "EXCEEDED_ID_LIMIT")
