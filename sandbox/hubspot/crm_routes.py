"""CRM objects (contacts and activities), search, properties, owners and associations, in HubSpot's wire shapes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlencode

from sandbox.hubspot.catalog import ASSOCIATION_TYPES, OBJECT_ALIASES, OBJECT_TYPE, PropertyDef
from sandbox.hubspot.limits import error_body, validation_error
from sandbox.hubspot.portal import Portal
from sandbox.hubspot.search import MAX_LIMIT, RESULT_CAP, BadSearch, compile_filters, modified_range, sort_key
from sandbox.hubspot.seeding import PORTAL_ID, iso
from sandbox.hubspot.store import ObjectStore, Record, ValidationFailed, invalid, modified_prop
from sandbox.seed import OWNERS
from sandbox.server import App, Request, Response

LIST_MAX, BATCH_MAX, HISTORY_MAX, ASSOCIATION_BATCH_MAX = 100, 100, 50, 1000
#: Records routes whose success changes portal state (persistence saves after them).
MUTATING_ROUTES = frozenset(f"{p}.{op}" for p in ("contacts", "objects") for op in (
    "batch.update", "batch.upsert", "batch.create", "batch.archive", "create", "update", "archive", "merge")) | \
    frozenset({"properties.create", "properties.groups.create", "associations.create.default"})


class Refused(Exception):
    """A create HubSpot refuses: the whole request's answer, or one `errors[]` entry of a multi-status batch."""

    def __init__(self, status: int, category: str, message: str, details: list[dict[str, Any]] | None = None,
                 sub_category: str | None = None) -> None:
        super().__init__(message)
        self.status, self.category, self.message = status, category, message
        self.details, self.sub_category = details or [], sub_category

    @classmethod
    def invalid(cls, exc: ValidationFailed) -> Refused:
        return cls(400, "VALIDATION_ERROR", exc.message, exc.details)

    def response(self) -> Response:
        extra = {"subCategory": self.sub_category} if self.sub_category else {}
        return Response(self.status, error_body(self.message, self.category, **extra))

    def batch_error(self, context: dict[str, list[str]]) -> dict[str, Any]:
        return batch_error(self.category, self.message, context, self.details, self.sub_category)


def _now() -> str:
    return iso(datetime.now(UTC))


def _not_found(record_id: str) -> Response:
    return Response(404, error_body("", "OBJECT_NOT_FOUND", context={"id": [record_id]}))


def _limit(req: Request, default: int, maximum: int) -> int | Response:
    raw = req.arg("limit")
    try:
        value = int(raw) if raw is not None else default
    except ValueError:
        return validation_error(f"Invalid limit: {raw}")
    if value < 1 or value > maximum:
        return validation_error(f"limit must be between 1 and {maximum}; got {value}")
    return value


def _batch_too_big(inputs: list[Any]) -> Response | None:
    if len(inputs) > BATCH_MAX:
        return validation_error(f"The maximum number of inputs supported in a batch request is {BATCH_MAX}. "
                                "Please reduce the number of items and try again", context={"inputs": [str(len(inputs))]})
    return None


def _duplicate_ids(inputs: list[dict[str, Any]]) -> Response | None:
    """Two inputs for one record in a batch update or upsert: 400 *(assumed)*."""
    ids = [str(i.get("id")) for i in inputs]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        return validation_error(f"Duplicate IDs found in batch input: {dupes}. IDs must be unique")
    return None


def _batch_body(results: list[dict[str, Any]], missing: list[str], started: str, object_type: str,
                errors: list[dict[str, Any]] | None = None, ok: int = 200) -> Response:
    """`ok` (200; 201 for batch/create) COMPLETE, or 207 with one OBJECT_NOT_FOUND error naming every missing id
    (reference §2.4, §5.4) plus any per-record `errors` (rejected inputs)."""
    body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started, "completedAt": _now()}
    errors = list(errors or [])
    if missing:
        kind = object_type.rstrip("s").upper()
        errors.insert(0, {
            "status": "error", "category": "OBJECT_NOT_FOUND", "subCategory": "crm.objects.OBJECT_NOT_FOUND",
            "message": f"Could not get some {kind} objects, they may be deleted or not exist. Check that ids are "
                       "valid.", "context": {"ids": missing}, "errors": [], "links": {},
        })
    if not errors:
        return Response(ok, body)
    body.update(numErrors=len(errors), errors=errors)
    return Response(207, body)


def batch_error(category: str, message: str, context: dict[str, list[str]], details: list[dict[str, Any]],
                sub_category: str | None = None) -> dict[str, Any]:
    """One 207 `errors[]` entry, shaped as the batch spec's StandardError (reference §2.4): `context` names the
    input (`ids` for updates, `objectWriteTraceId` for creates, as in HubSpot's multi-status create example) and
    each §5.5 per-property detail becomes an ErrorDetail."""
    error: dict[str, Any] = {"status": "error", "category": category, "message": message, "context": context,
                             "errors": [{"message": d["message"], "code": d["error"], "in": d["name"],
                                         "context": {"propertyName": [d["name"]]}} for d in details],
                             "links": {}}
    if sub_category:
        error["subCategory"] = sub_category
    return error


def record_validation_error(record_id: str, name: str, value: str, prop_type: str) -> dict[str, Any]:
    """An injected per-record failure: a §5.5-style VALIDATION_ERROR with the per-property detail as JSON inside
    its message."""
    code = {"number": "INVALID_LONG", "enumeration": "INVALID_OPTION", "datetime": "INVALID_DATE"}.get(
        prop_type, "INVALID_STRING")
    text = f"{value!r} was not a valid value for {name} (rejected by the sandbox for this record)"
    detail = invalid(name, code, text)
    return batch_error("VALIDATION_ERROR", "Property values were not valid: " + json.dumps(
        [detail], separators=(",", ":")), {"ids": [record_id], "propertyName": [name]}, [detail],
        "crm.properties.INVALID_PROPERTY_VALUE")


class CrmRoutes:
    """Route handlers over one `Portal`; mutations run under `app.lock`."""

    def __init__(self, app: App, portal: Portal) -> None:
        self.app, self.portal = app, portal
        #: Contact ids whose batch updates fail with a per-record 207 VALIDATION_ERROR (fault injection).
        self.reject_ids: set[str] = set()

    def install(self) -> None:
        r = self.app.route
        for prefix, t in (("contacts", "contacts"), ("contacts", "contact"), ("objects", "{objectType}")):
            base = f"/crm/v3/objects/{t}"
            r("POST", f"{base}/search", f"{prefix}.search")(self.search)
            r("POST", f"{base}/batch/read", f"{prefix}.batch.read")(self.batch_read)
            r("POST", f"{base}/batch/update", f"{prefix}.batch.update")(self.batch_update)
            r("POST", f"{base}/batch/create", f"{prefix}.batch.create")(self.batch_create)
            r("POST", f"{base}/batch/upsert", f"{prefix}.batch.upsert")(self.batch_upsert)
            r("POST", f"{base}/batch/archive", f"{prefix}.batch.archive")(self.batch_archive)
            r("POST", f"{base}/merge", f"{prefix}.merge")(self.merge)
            r("GET", base, f"{prefix}.list")(self.list_records)
            r("POST", base, f"{prefix}.create")(self.create)
            r("GET", f"{base}/{{recordId}}", f"{prefix}.get")(self.get)
            r("PATCH", f"{base}/{{recordId}}", f"{prefix}.update")(self.patch)
            r("DELETE", f"{base}/{{recordId}}", f"{prefix}.archive")(self.archive)
        r("GET", "/crm/v3/schemas", "schemas.list")(self.schemas)
        for legacy in ("v1", "v2"):
            r("GET", f"/properties/{legacy}/{{objectType}}/properties", f"properties.{legacy}.list")(
                self.legacy_properties)
        # The legacy Companies API's own properties path (singer-io's tap-hubspot reads it at discovery).
        r("GET", "/{objectType}/v2/properties", "properties.companies_v2.list")(self.legacy_properties)
        r("GET", "/crm/v3/properties/{objectType}/groups", "properties.groups.list")(self.list_groups)
        r("POST", "/crm/v3/properties/{objectType}/groups", "properties.groups.create")(self.create_group)
        r("GET", "/crm/v3/properties/{objectType}", "properties.list")(self.list_properties)
        r("POST", "/crm/v3/properties/{objectType}", "properties.create")(self.create_property)
        r("GET", "/crm/v3/properties/{objectType}/{name}", "properties.get")(self.get_property)
        r("GET", "/crm/v3/owners", "owners.list")(self.owners)
        r("POST", "/crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read",
          "associations.batch.read")(self.associations_read)
        r("PUT", "/crm/v4/objects/{fromObjectType}/{fromObjectId}/associations/default/{toObjectType}/{toObjectId}",
          "associations.create.default")(self.associate_default)

    # ------------------------------------------------------------- helpers
    def _store(self, req: Request, param: str = "objectType") -> ObjectStore | Response:
        t = req.params.get(param, "contacts")
        store = self.portal.stores.get(OBJECT_ALIASES.get(t.lower(), t.lower()))
        if store is None:
            return Response(400, error_body(f"Unable to infer object type from: {t}", "VALIDATION_ERROR"))
        return store

    def _batch(self, req: Request) -> tuple[ObjectStore, list[dict[str, Any]]] | Response:
        """The store and `inputs` of a batch write, or the error HubSpot gives (unknown type, > 100 inputs)."""
        store = self._store(req)
        if isinstance(store, Response):
            return store
        inputs = (req.json() or {}).get("inputs") or []
        if (bad := _batch_too_big(inputs)) is not None:
            return bad
        return store, inputs

    @staticmethod
    def _out(rec: Record, store: ObjectStore, props: list[str] | None, assoc: list[str] | None = None,
             history: list[str] | None = None) -> dict[str, Any]:
        return rec.to_json(props or None, store.object_type, tuple(assoc or ()), tuple(history or ()))

    # --------------------------------------------------------------- reads
    def list_records(self, req: Request) -> Response:
        store = self._store(req)
        if isinstance(store, Response):
            return store
        limit = _limit(req, 10, LIST_MAX)
        if isinstance(limit, Response):
            return limit
        archived = (req.arg("archived") or "false").lower() == "true"
        props, assoc, history = req.args("properties"), req.args("associations"), req.args("propertiesWithHistory")
        if history:  # history makes pages smaller (the SDK's own helper uses 50, reference §2.1) (assumed: clamped)
            limit = min(limit, HISTORY_MAX)
        with self.app.lock:  # ?archived=true lists only archived records, with archivedAt (reference §2.6.3)
            records, nxt = (store.archived_page if archived else store.page)(req.arg("after"), limit)
            results = [self._out(r, store, props, assoc, history) for r in records]
        body: dict[str, Any] = {"results": results}
        if nxt is not None:  # the last page has no `paging` key (reference §2.1)
            body["paging"] = {"next": {"after": nxt, "link": next_link(req, nxt)}}
        return Response(200, body)

    def get(self, req: Request) -> Response:
        store = self._store(req)
        if isinstance(store, Response):
            return store
        rid = unquote(req.params["recordId"])  # the SDK percent-encodes path params ("@" in emails)
        with self.app.lock:
            rec = store.get(rid, req.arg("idProperty"))
            if rec is None and (req.arg("archived") or "").lower() == "true":
                rec = store.archived.get(rid)
            if rec is None:
                return _not_found(rid)
            return Response(200, self._out(rec, store, req.args("properties"), req.args("associations"),
                                           req.args("propertiesWithHistory")))

    def batch_read(self, req: Request) -> Response:
        store = self._store(req)
        if isinstance(store, Response):
            return store
        body = req.json() or {}
        inputs, history = body.get("inputs") or [], body.get("propertiesWithHistory") or []
        if (bad := _batch_too_big(inputs)) is not None:
            return bad
        if history and len(inputs) > HISTORY_MAX:  # message quoted in reference §2.3
            return validation_error(f"The maximum number of inputs supported in a batch request for property "
                                    f"histories is {HISTORY_MAX}. Please reduce the number of items and try again")
        started, found, missing = _now(), [], []
        with self.app.lock:
            for item in inputs:
                rec = store.get(str(item.get("id")), body.get("idProperty"))
                if rec is None:
                    missing.append(str(item.get("id")))
                else:
                    found.append(self._out(rec, store, body.get("properties"), None, history))
        return _batch_body(found, missing, started, store.object_type)

    def search(self, req: Request) -> Response:
        store = self._store(req)
        if isinstance(store, Response):
            return store
        body = req.json() or {}
        try:
            limit, after = int(body.get("limit") or 10), int(body.get("after") or 0)
        except (TypeError, ValueError):
            return validation_error("limit and after must be integers")
        if limit > MAX_LIMIT:
            return validation_error(f"limit must be at most {MAX_LIMIT}")
        if after + limit > RESULT_CAP:  # paging past 10k is a 400, not an empty page (reference §2.5)
            return validation_error(f"Search results are limited to {RESULT_CAP} records; narrow the query.",
                                    context={"after": [str(after)]})
        time_props = {n for n, d in store.defs.items() if d.type in ("datetime", "date")}
        groups, sorts = body.get("filterGroups") or [], body.get("sorts") or []
        try:
            match = compile_filters(groups, time_props)
            key, desc = sort_key(sorts, time_props)
        except (BadSearch, KeyError) as exc:
            return validation_error(str(exc))
        indexed = modified_range(groups, sorts, modified_prop(store.object_type))
        with self.app.lock:
            if indexed is not None:
                entries = store.modified_between(indexed[0], indexed[1])
                total = len(entries)
                chosen = (entries[::-1] if indexed[2] else entries)[after : after + limit]
                picked = [store.records[str(rid)] for _, rid in chosen]
            else:
                hits = sorted((r for r in store.records.values() if match(r)), key=key, reverse=desc)
                total, picked = len(hits), hits[after : after + limit]
            page = [self._out(r, store, body.get("properties")) for r in picked]
        out: dict[str, Any] = {"total": total, "results": page}
        if after + limit < total:
            out["paging"] = {"next": {"after": str(after + limit)}}
        return Response(200, out)

    # -------------------------------------------------------------- writes
    def batch_update(self, req: Request) -> Response:
        found = self._batch(req)
        if isinstance(found, Response):
            return found
        store, inputs = found
        if (dupes := _duplicate_ids(inputs)) is not None:
            return dupes
        started, results, missing, errors = _now(), [], [], []
        with self.app.lock:
            try:
                for item in inputs:
                    store.validate(item.get("properties") or {})
            except ValidationFailed as exc:
                return validation_error(exc.message)
            for item in inputs:
                rid, values = str(item.get("id")), item.get("properties") or {}
                if not rid.isdigit() and not item.get("idProperty"):
                    continue  # an email passed as id: success that changes nothing (reference §2.4)
                rec = store.get(rid, item.get("idProperty"))
                if rec is None:
                    missing.append(rid)
                elif (out := self._update_one(store, rec, values, errors)) is not None:
                    results.append(out)
        return _batch_body(results, missing, started, store.object_type, errors)

    def _update_one(self, store: ObjectStore, rec: Record, values: dict[str, Any],
                    errors: list[dict[str, Any]]) -> dict[str, Any] | None:
        """Apply one validated batch input through the store (forward-only lifecycle lives there); a contact in
        `reject_ids` gets a per-record error in `errors` instead, and None."""
        if rec.id in self.reject_ids and store.object_type == "contacts" and values:
            name = sorted(values)[0]
            ptype = store.defs[name].type if name in store.defs else "string"
            errors.append(record_validation_error(rec.id, name, str(values[name]), ptype))
            return None
        store.update(rec, values)
        return self._out(rec, store, list(values))

    def batch_upsert(self, req: Request) -> Response:
        """Create or update by a unique property (`idProperty`: `email` for contacts, or a property created with
        `hasUniqueValue`). Updates take the batch update path; creates the create path. Any invalid input fails the
        whole request: "Partial upserts are not supported when using `email` as the `idProperty`" (HubSpot's
        Using Object APIs guide)."""
        found = self._batch(req)
        if isinstance(found, Response):
            return found
        store, inputs = found
        if (dupes := _duplicate_ids(inputs)) is not None:
            return dupes
        for item in inputs:  # message as quoted in HubSpot/hubspot-api-nodejs#548, segmentio/action-destinations#3957
            prop = str(item.get("idProperty") or "")
            if prop not in store.defs or not store.defs[prop].unique:
                return validation_error(f"Unable to perform update/upsert by non-unique "
                                        f"{OBJECT_TYPE[store.object_type].type_id} property {prop} in portal ID "
                                        f"{PORTAL_ID}")
        started, results, errors, seen = _now(), [], [], set()
        with self.app.lock:
            plan: list[tuple[Record | None, dict[str, Any], list[tuple[str, str]]]] = []
            try:  # everything is checked before anything is written
                for item in inputs:
                    rid, prop, values = str(item.get("id")), str(item["idProperty"]), item.get("properties") or {}
                    if (rec := store.get(rid, prop)) is not None:
                        store.validate(values)
                        plan.append((rec, values, []))
                    else:
                        plan.append((None, *self._check_create(store, {"properties": {**values, prop: rid}}, seen)))
            except ValidationFailed as exc:
                return validation_error(exc.message)
            except Refused as exc:
                return exc.response()
            for rec, values, links in plan:
                if rec is None:
                    results.append({**self._insert(store, values, links), "new": True})
                elif (out := self._update_one(store, rec, values, errors)) is not None:
                    results.append({**out, "new": False})
        return _batch_body(results, [], started, store.object_type, errors)

    def archive(self, req: Request) -> Response:
        """DELETE: 204 whether or not the record was live (archiving is idempotent) *(assumed for unknown ids)*."""
        store = self._store(req)
        if isinstance(store, Response):
            return store
        with self.app.lock:
            store.archive(unquote(req.params["recordId"]))
        return Response(204)

    def batch_archive(self, req: Request) -> Response:
        found = self._batch(req)
        if isinstance(found, Response):
            return found
        store, inputs = found
        with self.app.lock:
            for item in inputs:
                store.archive(str(item.get("id")))
        return Response(204)

    def merge(self, req: Request) -> Response:
        """`POST /crm/v3/objects/contacts/merge` {primaryObjectId, objectIdToMerge}: the primary keeps its id
        *(assumed)*, the other is archived."""
        store = self._store(req)
        if isinstance(store, Response):
            return store
        if store.object_type != "contacts":
            return validation_error(f"Merging {store.object_type} is not supported by the sandbox")
        body = req.json() or {}
        primary, other = str(body.get("primaryObjectId") or ""), str(body.get("objectIdToMerge") or "")
        with self.app.lock:
            rec = self.portal.merge(primary, other)
            if rec is None:
                return validation_error(f"Cannot merge {other!r} into {primary!r}: both must be distinct live "
                                        "contacts")
            return Response(200, self._out(rec, store, ["email", "hs_merged_object_ids", "hs_additional_emails"]))

    def patch(self, req: Request) -> Response:
        store = self._store(req)
        if isinstance(store, Response):
            return store
        values = (req.json() or {}).get("properties") or {}
        rid = unquote(req.params["recordId"])
        with self.app.lock:
            rec = store.get(rid, req.arg("idProperty"))
            if rec is None:
                return _not_found(rid)
            try:
                store.validate(values)
            except ValidationFailed as exc:
                return validation_error(exc.message)
            store.update(rec, values)
            return Response(200, self._out(rec, store, list(values)))

    def create(self, req: Request) -> Response:
        store = self._store(req)
        if isinstance(store, Response):
            return store
        with self.app.lock:
            try:
                values, links = self._check_create(store, req.json() or {}, set())
            except Refused as exc:
                return exc.response()
            return Response(201, self._insert(store, values, links))

    def batch_create(self, req: Request) -> Response:
        """Not idempotent: a retried batch creates the records again (reference §1.3). A unique
        `objectWriteTraceId` on every input enables multi-status: bad inputs become 207 errors naming their trace
        id and the rest are created (HubSpot's Using Object APIs guide); without it one bad input fails the whole
        batch and nothing is created (reference §2.4)."""
        found = self._batch(req)
        if isinstance(found, Response):
            return found
        store, inputs = found
        traces = [str(i.get("objectWriteTraceId") or "") for i in inputs]
        started, results, errors, seen = _now(), [], [], set()
        with self.app.lock:
            if all(traces) and len(set(traces)) == len(traces):
                for item, trace in zip(inputs, traces, strict=True):
                    try:
                        results.append(self._insert(store, *self._check_create(store, item, seen)))
                    except Refused as exc:
                        errors.append(exc.batch_error({"objectWriteTraceId": [trace]}))
            else:
                try:
                    checked = [self._check_create(store, item, seen) for item in inputs]
                except Refused as exc:
                    return exc.response()
                results = [self._insert(store, values, links) for values, links in checked]
        return _batch_body(results, [], started, store.object_type, errors, ok=201)

    def _check_create(self, store: ObjectStore, body: dict[str, Any],
                      seen: set[str]) -> tuple[dict[str, str], list[tuple[str, str]]]:
        """The values and links of one create, or Refused: required and valid properties (activities need
        `hs_timestamp`), associations by direction, and a contact's email unique among live contacts (409, §5.4)
        and among the batch's earlier inputs (`seen`, 400 *(assumed)*)."""
        values = {k: "" if v is None else str(v) for k, v in (body.get("properties") or {}).items()}
        try:
            store.validate(values, creating=True)
        except ValidationFailed as exc:
            raise Refused.invalid(exc) from None
        links = self._associations(store.object_type, body.get("associations") or [])
        email = (values.get("email") or "").lower()
        if store.object_type == "contacts" and email:
            if (existing := store.get(email, "email")) is not None:
                raise Refused(409, "CONFLICT", f"Contact already exists. Existing ID: {existing.id}")
            if email in seen:
                raise Refused(400, "VALIDATION_ERROR", f"Duplicate email in batch input: {email}")
            seen.add(email)
        return values, links

    def _insert(self, store: ObjectStore, values: dict[str, str], links: list[tuple[str, str]]) -> dict[str, Any]:
        """Create a checked record and its links; associations are not echoed (reference §4.1)."""
        rec = store.create(self.portal.new_id(), values)
        for to_type, to_id in links:
            self.portal.associate(store.object_type, rec.id, to_type, to_id)
        return self._out(rec, store, list(rec.properties))

    def _associations(self, from_type: str, specs: list[dict[str, Any]]) -> list[tuple[str, str]]:
        """Resolve inline associations; the type id must match the direction (reference §4.1), else Refused."""
        links: list[tuple[str, str]] = []
        by_id = {v: k[1] for k, v in ASSOCIATION_TYPES.items() if k[0] == from_type}
        for spec in specs:
            to_id = str((spec.get("to") or {}).get("id"))
            for ty in spec.get("types") or []:
                to_type = by_id.get(int(ty.get("associationTypeId") or 0))
                if to_type is None or to_type not in self.portal.stores:
                    raise Refused(400, "VALIDATION_ERROR", f"{ty.get('associationTypeId')} is not a valid association "
                                  f"type id for {from_type}", sub_category="crm.associations.INVALID_ASSOCIATION")
                if to_id not in self.portal.stores[to_type].records:
                    raise Refused(400, "VALIDATION_ERROR", f"No {to_type} with id {to_id} exists",
                                  sub_category="crm.associations.INVALID_OBJECT_IDS")
                links.append((to_type, to_id))
        return links

    # ---------------------------------------------------------- properties
    def list_properties(self, req: Request) -> Response:
        store = self._store(req)
        if isinstance(store, Response):
            return store
        stamp = iso(self.portal.anchor)
        return Response(200, {"results": [d.to_json(stamp) for d in store.defs.values()]})

    def get_property(self, req: Request) -> Response:
        store = self._store(req)
        if isinstance(store, Response):
            return store
        d = store.defs.get(req.params["name"])
        if d is None:
            return Response(404, error_body(f"Unable to find property with name {req.params['name']}",
                                            "OBJECT_NOT_FOUND"))
        return Response(200, d.to_json(iso(self.portal.anchor)))

    def create_property(self, req: Request) -> Response:
        store = self._store(req)
        if isinstance(store, Response):
            return store
        body = req.json() or {}
        name, group = str(body.get("name") or ""), str(body.get("groupName") or "")
        with self.app.lock:
            if name in store.defs:
                return Response(409, error_body(f"Property named '{name}' already exists.", "OBJECT_ALREADY_EXISTS",
                                                subCategory="Properties.OBJECT_ALREADY_EXISTS"))
            if not name or group not in self.portal.groups.get(store.object_type, {}):
                return validation_error(f"Property group {group!r} does not exist" if name else "name is required")
            options = tuple(str(o.get("value")) for o in body.get("options") or [])
            d = PropertyDef(name, str(body.get("label") or name), str(body.get("type") or "string"),
                            str(body.get("fieldType") or "text"), group, options, hubspot_defined=False,
                            description=str(body.get("description") or ""),
                            display_order=int(body.get("displayOrder") or -1),
                            unique=bool(body.get("hasUniqueValue")))
            store.defs[name] = d
        return Response(201, d.to_json(_now()))

    def list_groups(self, req: Request) -> Response:
        groups = self.portal.groups.get(req.params["objectType"], {})
        return Response(200, {"results": list(groups.values())})

    def create_group(self, req: Request) -> Response:
        t = req.params["objectType"]
        if t not in self.portal.stores:
            return validation_error(f"Unable to infer object type from: {t}")
        body = req.json() or {}
        name = str(body.get("name") or "")
        with self.app.lock:
            groups = self.portal.groups.setdefault(t, {})
            if name in groups:
                return Response(409, error_body(f"A property group named '{name}' already exists.",
                                                "OBJECT_ALREADY_EXISTS"))
            groups[name] = {"name": name, "label": str(body.get("label") or name),
                            "displayOrder": int(body.get("displayOrder") or -1), "archived": False}
        return Response(201, groups[name])

    # -------------------------------------------------------- associations
    def associations_read(self, req: Request) -> Response:
        """v4 batch read (≤ 1000 inputs since 2025-02-10, reference §2.4); ids without links are 207 errors."""
        store, to_store = self._store(req, "fromObjectType"), self._store(req, "toObjectType")
        if isinstance(store, Response) or isinstance(to_store, Response):
            return validation_error(f"Unknown object types {req.params['fromObjectType']} -> "
                                    f"{req.params['toObjectType']}")
        from_type, to_type = store.object_type, to_store.object_type
        inputs = (req.json() or {}).get("inputs") or []
        if len(inputs) > ASSOCIATION_BATCH_MAX:
            return validation_error(f"The maximum number of inputs supported in a batch request is "
                                    f"{ASSOCIATION_BATCH_MAX}.")
        type_id = ASSOCIATION_TYPES.get((from_type, to_type))
        started, results, unlinked = _now(), [], []
        with self.app.lock:
            for item in inputs:
                rid = str(item.get("id"))
                rec = store.records.get(rid)
                linked = rec.associations.get(to_type, []) if rec else []
                if not linked:
                    unlinked.append(rid)
                    continue
                results.append({"from": {"id": rid}, "to": [
                    {"toObjectId": int(t), "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": type_id,
                                                                 "label": None}]} for t in linked]})
        body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started,
                                "completedAt": _now()}
        if not unlinked:
            return Response(200, body)
        body.update(numErrors=len(unlinked), errors=[{
            "status": "error", "category": "OBJECT_NOT_FOUND",
            "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
            "message": f"No {to_type} is associated with {from_type} {rid}.", "context": {"fromObjectId": [rid]},
        } for rid in unlinked])
        return Response(207, body)

    def associate_default(self, req: Request) -> Response:
        """v4 `PUT …/associations/default/{to}/{toId}` (reference §4.2): links the two records with the pair's
        HUBSPOT_DEFINED type id; the answer lists both directions *(assumed)*."""
        store, to_store = self._store(req, "fromObjectType"), self._store(req, "toObjectType")
        if isinstance(store, Response):
            return store
        if isinstance(to_store, Response):
            return to_store
        from_type, to_type = store.object_type, to_store.object_type
        from_id, to_id = req.params["fromObjectId"], req.params["toObjectId"]
        if (from_type, to_type) not in ASSOCIATION_TYPES:
            return validation_error(f"No default association type from {from_type} to {to_type}",
                                    subCategory="crm.associations.INVALID_ASSOCIATION")
        started = _now()
        with self.app.lock:
            missing = next((rid for s, rid in ((store, from_id), (to_store, to_id)) if rid not in s.records), None)
            if missing is not None:
                return _not_found(missing)
            self.portal.associate(from_type, from_id, to_type, to_id)
        ends = (((from_type, to_type), from_id, to_id), ((to_type, from_type), to_id, from_id))
        results = [{"from": {"id": a}, "to": {"id": b}, "associationSpec": {
            "associationCategory": "HUBSPOT_DEFINED", "associationTypeId": ASSOCIATION_TYPES[pair]}}
            for pair, a, b in ends if pair in ASSOCIATION_TYPES]
        return Response(200, {"status": "COMPLETE", "results": results, "startedAt": started, "completedAt": _now()})

    # ------------------------------------------------------------- schemas
    def schemas(self, req: Request) -> Response:
        """`GET /crm/v3/schemas`: custom object schemas; the sandbox portal has none (peers call it to discover)."""
        return Response(200, {"results": []})

    def legacy_properties(self, req: Request) -> Response:
        """Legacy `GET /properties/v1|v2/{type}/properties`: a bare JSON array, timestamps in epoch ms."""
        store = self._store(req)
        if isinstance(store, Response):
            return store
        stamp = int(self.portal.anchor.timestamp() * 1000)
        return Response(200, [legacy_property(d, stamp) for d in store.defs.values()])

    # -------------------------------------------------------------- owners
    def owners(self, req: Request) -> Response:
        archived = (req.arg("archived") or "false").lower() == "true"
        stamp = iso(self.portal.anchor)
        results = [
            {"id": o.hubspot_id, "email": o.email, "type": "PERSON", "firstName": o.first_name,
             "lastName": o.last_name, "userId": 9_000_000 + o.index, "userIdIncludingInactive": 9_000_000 + o.index,
             "createdAt": stamp, "updatedAt": stamp, "archived": not o.active, "teams": []}
            for o in OWNERS if o.active != archived
        ]
        email = req.arg("email")
        if email:
            results = [o for o in results if o["email"] == email.lower()]
        try:
            limit = int(req.arg("limit") or 100)
            start = int(req.arg("after") or 0)
        except ValueError:
            return Response(400, {"status": "error", "message": "limit and after must be integers",
                                  "category": "VALIDATION_ERROR"})
        limit = max(1, min(limit, 500))
        body: dict[str, Any] = {"results": results[start:start + limit]}
        if start + limit < len(results):
            body["paging"] = {"next": {"after": str(start + limit), "link": next_link(req, str(start + limit))}}
        return Response(200, body)


def next_link(req: Request, after: str) -> str:
    """`paging.next.link`: an absolute URL on the host and scheme the client called (the sandbox's own), with
    the same query and the next `after` — peers that follow links instead of cursors stay on the sandbox."""
    query = [(k, v) for k, values in req.query.items() if k != "after" for v in values] + [("after", after)]
    host = req.headers.get("host") or "127.0.0.1"
    return f"{req.scheme}://{host}{req.path}?{urlencode(query)}"


def legacy_property(d: PropertyDef, stamp_ms: int) -> dict[str, Any]:
    """One property in the legacy v1/v2 properties shape (used by older peers such as singer's tap-hubspot)."""
    return {
        "name": d.name, "label": d.label, "description": d.description, "groupName": d.group, "type": d.type,
        "fieldType": d.field_type, "options": [{"label": o.replace("_", " ").capitalize(), "value": o,
                                                 "displayOrder": i, "hidden": False, "readOnly": False}
                                                for i, o in enumerate(d.options)],
        "readOnlyValue": d.read_only, "readOnlyDefinition": d.hubspot_defined, "calculated": d.calculated,
        "externalOptions": False, "hidden": False, "hubspotDefined": d.hubspot_defined, "formField": not d.read_only,
        "displayOrder": d.display_order, "mutableDefinitionNotDeletable": d.hubspot_defined, "deleted": False,
        "favorited": False, "createdAt": stamp_ms, "updatedAt": stamp_ms, "createdUserId": None,
        "updatedUserId": None, "hasUniqueValue": d.unique,
    }
