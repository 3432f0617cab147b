"""CRM objects (contacts, tasks, meetings), search, properties and owners, in HubSpot's v3 wire shapes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlencode

from sandbox.hubspot.catalog import PropertyDef
from sandbox.hubspot.limits import error_body, validation_error
from sandbox.hubspot.portal import ASSOCIATION_TYPES, Portal
from sandbox.hubspot.search import MAX_LIMIT, RESULT_CAP, BadSearch, compile_filters, modified_range, sort_key
from sandbox.hubspot.seeding import iso
from sandbox.hubspot.store import ObjectStore, Record, ValidationFailed, modified_prop
from sandbox.seed import OWNERS
from sandbox.server import App, Request, Response

LIST_MAX, BATCH_MAX, HISTORY_MAX, ASSOCIATION_BATCH_MAX = 100, 100, 50, 1000
#: Singular names and object type ids peers use for the same objects (`/crm/v3/objects/contact`, `0-1`).
OBJECT_ALIASES = {"contact": "contacts", "0-1": "contacts", "task": "tasks", "0-27": "tasks",
                  "meeting": "meetings", "0-47": "meetings"}
#: Records routes whose success changes portal state (persistence saves after them).
MUTATING_ROUTES = frozenset(f"{p}.{op}" for p in ("contacts", "objects") for op in (
    "batch.update", "batch.create", "batch.archive", "create", "update", "archive", "merge")) | frozenset(
    {"properties.create", "properties.groups.create"})
TASK_DEFAULTS = {"hs_task_status": "NOT_STARTED", "hs_task_family": "SALES", "hs_task_is_completed": "0",
                 "hs_task_priority": "NONE", "hs_task_type": "TODO"}


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


def _batch_body(results: list[dict[str, Any]], missing: list[str], started: str, object_type: str,
                errors: list[dict[str, Any]] | None = None) -> Response:
    """200 COMPLETE, or 207 with one OBJECT_NOT_FOUND error naming every missing id (reference §2.4, §5.4)
    plus any per-record `errors` (injected validation failures)."""
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
        return Response(200, body)
    body.update(numErrors=len(errors), errors=errors)
    return Response(207, body)


def record_validation_error(record_id: str, name: str, value: str, prop_type: str) -> dict[str, Any]:
    """A per-record 207 error shaped as the batch update spec's StandardError (reference §2.4), carrying a
    §5.5-style VALIDATION_ERROR message with the per-property detail as JSON inside it."""
    code = {"number": "INVALID_LONG", "enumeration": "INVALID_OPTION", "datetime": "INVALID_DATE"}.get(
        prop_type, "INVALID_STRING")
    text = f"{value!r} was not a valid value for {name} (rejected by the sandbox for this record)"
    detail = {"isValid": False, "message": text, "error": code, "name": name, "localizedErrorMessage": text}
    return {
        "status": "error", "category": "VALIDATION_ERROR", "subCategory": "crm.properties.INVALID_PROPERTY_VALUE",
        "message": "Property values were not valid: " + json.dumps([detail], separators=(",", ":")),
        "context": {"ids": [record_id], "propertyName": [name]},
        "errors": [{"message": text, "code": code, "in": name, "context": {"propertyName": [name]}}],
        "links": {},
    }


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
        r("GET", "/crm/v3/properties/{objectType}/groups", "properties.groups.list")(self.list_groups)
        r("POST", "/crm/v3/properties/{objectType}/groups", "properties.groups.create")(self.create_group)
        r("GET", "/crm/v3/properties/{objectType}", "properties.list")(self.list_properties)
        r("POST", "/crm/v3/properties/{objectType}", "properties.create")(self.create_property)
        r("GET", "/crm/v3/properties/{objectType}/{name}", "properties.get")(self.get_property)
        r("GET", "/crm/v3/owners", "owners.list")(self.owners)
        r("POST", "/crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read",
          "associations.batch.read")(self.associations_read)

    # ------------------------------------------------------------- helpers
    def _store(self, req: Request) -> ObjectStore | Response:
        t = req.params.get("objectType", "contacts")
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
        ids = [str(i.get("id")) for i in inputs]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            return validation_error(f"Duplicate IDs found in batch input: {dupes}. IDs must be unique")
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
                    continue
                if rec.id in self.reject_ids and store.object_type == "contacts" and values:
                    name = sorted(values)[0]
                    ptype = store.defs[name].type if name in store.defs else "string"
                    errors.append(record_validation_error(rec.id, name, str(values[name]), ptype))
                    continue
                store.update(rec, values)
                results.append(self._out(rec, store, list(values)))
        return _batch_body(results, missing, started, store.object_type, errors)

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
            result = self._create_one(store, req.json() or {})
        return result if isinstance(result, Response) else Response(201, result)

    def batch_create(self, req: Request) -> Response:
        """Not idempotent: a retried batch creates the records again (reference §1.3)."""
        found = self._batch(req)
        if isinstance(found, Response):
            return found
        store, inputs = found
        started, results = _now(), []
        with self.app.lock:
            for item in inputs:
                result = self._create_one(store, item)
                if isinstance(result, Response):
                    return result  # without multi-status one bad input fails the whole batch (reference §2.4)
                results.append(result)
        return Response(201, {"status": "COMPLETE", "results": results, "startedAt": started, "completedAt": _now()})

    def _create_one(self, store: ObjectStore, body: dict[str, Any]) -> dict[str, Any] | Response:
        values = {k: "" if v is None else str(v) for k, v in (body.get("properties") or {}).items()}
        t = store.object_type
        if t in ("tasks", "meetings") and not values.get("hs_timestamp"):
            return validation_error('Property values were not valid: [{"isValid":false,"message":"hs_timestamp is '
                                    'required","error":"REQUIRED_FIELD","name":"hs_timestamp"}]')
        links = self._associations(t, body.get("associations") or [])
        if isinstance(links, Response):
            return links
        if t == "contacts" and values.get("email") and store.get(values["email"], "email"):
            existing = store.get(values["email"], "email")
            return Response(409, error_body(f"Contact already exists. Existing ID: {existing.id}", "CONFLICT"))
        try:
            rec = store.create(self.portal.new_id(), values, TASK_DEFAULTS if t == "tasks" else {})
        except ValidationFailed as exc:
            return validation_error(exc.message)
        for to_type, to_id in links:
            rec.associations.setdefault(to_type, []).append(to_id)
            self.portal.stores[to_type].records[to_id].associations.setdefault(t, []).append(rec.id)
        return self._out(rec, store, list(rec.properties))  # associations are not echoed (reference §4.1)

    def _associations(self, from_type: str, specs: list[dict[str, Any]]) -> list[tuple[str, str]] | Response:
        """Resolve inline associations; the type id must match the direction (reference §4.1)."""
        links: list[tuple[str, str]] = []
        by_id = {v: k[1] for k, v in ASSOCIATION_TYPES.items() if k[0] == from_type}
        for spec in specs:
            to_id = str((spec.get("to") or {}).get("id"))
            for ty in spec.get("types") or []:
                to_type = by_id.get(int(ty.get("associationTypeId") or 0))
                if to_type is None or to_type not in self.portal.stores:
                    return validation_error(f"{ty.get('associationTypeId')} is not a valid association type id "
                                            f"for {from_type}", subCategory="crm.associations.INVALID_ASSOCIATION")
                if to_id not in self.portal.stores[to_type].records:
                    return validation_error(f"No {to_type} with id {to_id} exists",
                                            subCategory="crm.associations.INVALID_OBJECT_IDS")
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
                            display_order=int(body.get("displayOrder") or -1))
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
        from_type, to_type = req.params["fromObjectType"], req.params["toObjectType"]
        store = self.portal.stores.get(from_type)
        if store is None or to_type not in self.portal.stores:
            return validation_error(f"Unknown object types {from_type} -> {to_type}")
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
        return Response(200, {"results": results})


def next_link(req: Request, after: str) -> str:
    """`paging.next.link`: an absolute URL on the host the client called (the sandbox's own), with the same
    query and the next `after` — peers that follow links instead of cursors stay on the sandbox."""
    query = [(k, v) for k, values in req.query.items() if k != "after" for v in values] + [("after", after)]
    host = req.headers.get("host") or "127.0.0.1"
    return f"http://{host}{req.path}?{urlencode(query)}"


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
        "updatedUserId": None, "hasUniqueValue": d.name in ("email", "hs_object_id"),
    }
