"""Lists API v3 (segments): create and read lists, add / remove / read memberships (BEHAVIOR.md, "Lists").

Memberships are kept per list as record id -> the time it joined; only MANUAL and SNAPSHOT lists take
membership writes, and only live records of the list's object type become members.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandbox.hubspot.catalog import OBJECT_ALIASES, OBJECT_TYPES
from sandbox.hubspot.limits import error_body, validation_error
from sandbox.hubspot.portal import Portal
from sandbox.hubspot.seeding import iso
from sandbox.server import App, Request, Response

LIST_ID_BASE = 5_000
PROCESSING_TYPES = ("MANUAL", "SNAPSHOT", "DYNAMIC")
MAX_MEMBERSHIP_IDS = 100_000  # (assumed: no documented per-request limit)
MEMBERS_PAGE_MAX = 250  # the SDK's `get_page` docstring: "The maximum `limit` is 250"
#: Routes whose success changes portal state (persistence saves after them).
MUTATING = frozenset({"lists.create", "lists.memberships.add", "lists.memberships.remove",
                      "lists.memberships.add_and_remove"})
_TYPE_IDS = {t.name: t.type_id for t in OBJECT_TYPES}


@dataclass
class HubList:
    list_id: str
    name: str
    object_type: str  # the store name (`contacts`)
    processing_type: str
    created_at: str
    updated_at: str
    members: dict[str, str] = field(default_factory=dict)  # record id -> membershipTimestamp

    def to_json(self) -> dict[str, Any]:
        return {"listId": self.list_id, "name": self.name, "objectTypeId": _TYPE_IDS.get(self.object_type),
                "processingType": self.processing_type, "processingStatus": "COMPLETE", "listVersion": 1,
                "size": len(self.members), "createdAt": self.created_at, "updatedAt": self.updated_at}


def _now() -> str:
    return iso(datetime.now(UTC))


def _no_list(list_id: str) -> Response:
    """(assumed message: HubSpot's own text for an unknown ILS id is not in the reference)"""
    return Response(404, error_body(f"List {list_id} does not exist.", "OBJECT_NOT_FOUND",
                                    context={"listId": [list_id]}))


class ListRoutes:
    def __init__(self, app: App, portal: Portal) -> None:
        self.app, self.portal = app, portal

    def install(self) -> None:
        r = self.app.route
        r("POST", "/crm/v3/lists", "lists.create")(self.create)
        r("GET", "/crm/v3/lists/{listId}", "lists.get")(self.get)
        r("GET", "/crm/v3/lists/{listId}/memberships", "lists.memberships.list")(self.memberships)
        r("PUT", "/crm/v3/lists/{listId}/memberships/add", "lists.memberships.add")(self.add)
        r("PUT", "/crm/v3/lists/{listId}/memberships/remove", "lists.memberships.remove")(self.remove)
        r("PUT", "/crm/v3/lists/{listId}/memberships/add-and-remove",
          "lists.memberships.add_and_remove")(self.add_and_remove)

    # ------------------------------------------------------------------ lists
    def create_list(self, name: str, object_type: str = "contacts", processing_type: str = "MANUAL") -> HubList:
        """A list as `POST /crm/v3/lists` makes it (also for tests and the demo). Callers hold no lock."""
        with self.app.lock:
            lists = self.portal.lists
            list_id = str(LIST_ID_BASE + len(lists) + 1)
            at = _now()
            lists[list_id] = HubList(list_id, name, object_type, processing_type, at, at)
            return lists[list_id]

    def create(self, req: Request) -> Response:
        body = req.json() or {}
        name, type_id = str(body.get("name") or "").strip(), str(body.get("objectTypeId") or "")
        processing = str(body.get("processingType") or "")
        store = OBJECT_ALIASES.get(type_id.lower(), type_id.lower())
        if not name:
            return validation_error("name: must not be blank")
        if store not in self.portal.stores:
            return validation_error(f"Unknown objectTypeId: {type_id!r}")
        if processing not in PROCESSING_TYPES:
            return validation_error(f"processingType must be one of {', '.join(PROCESSING_TYPES)}; got {processing!r}")
        if any(lst.name.casefold() == name.casefold() for lst in self.portal.lists.values()):
            return validation_error(f"A list named {name!r} already exists")  # (assumed: names are unique)
        return Response(200, {"list": self.create_list(name, store, processing).to_json()})

    def get(self, req: Request) -> Response:
        with self.app.lock:
            found = self.portal.lists.get(req.params["listId"])
            return Response(200, {"list": found.to_json()}) if found else _no_list(req.params["listId"])

    # ------------------------------------------------------------------ memberships
    def memberships(self, req: Request) -> Response:
        raw = req.arg("limit")
        try:
            limit = int(raw) if raw else 100
        except ValueError:
            return validation_error(f"Invalid limit: {raw}")
        if not 1 <= limit <= MEMBERS_PAGE_MAX:
            return validation_error(f"limit must be between 1 and {MEMBERS_PAGE_MAX}; got {limit}")
        with self.app.lock:
            found = self.portal.lists.get(req.params["listId"])
            if found is None:
                return _no_list(req.params["listId"])
            ids = sorted(found.members, key=int)
            after = req.arg("after")
            start = next((n for n, i in enumerate(ids) if int(i) > int(after)), len(ids)) if after else 0
            page = ids[start : start + limit]
            body: dict[str, Any] = {"results": [{"recordId": i, "membershipTimestamp": found.members[i]}
                                                for i in page], "total": len(ids)}
        if start + limit < len(ids):
            body["paging"] = {"next": {"after": page[-1]}}
        return Response(200, body)

    def add(self, req: Request) -> Response:
        return self._change(req, "add")

    def remove(self, req: Request) -> Response:
        return self._change(req, "remove")

    def add_and_remove(self, req: Request) -> Response:
        return self._change(req, "both")

    def _change(self, req: Request, how: str) -> Response:
        body = req.json()
        if how == "both":
            if not isinstance(body, dict):
                return validation_error("Body must be an object with recordIdsToAdd and recordIdsToRemove")
            adds, removes = body.get("recordIdsToAdd") or [], body.get("recordIdsToRemove") or []
        else:
            adds, removes = (body, []) if how == "add" else ([], body)
        for ids in (adds, removes):
            if not isinstance(ids, list) or not all(isinstance(i, str | int) for i in ids):
                return validation_error("Body must be a JSON array of record ids")
            if len(ids) > MAX_MEMBERSHIP_IDS:
                return validation_error(f"At most {MAX_MEMBERSHIP_IDS} record ids per request; got {len(ids)}")
        with self.app.lock:
            found = self.portal.lists.get(req.params["listId"])
            if found is None:
                return _no_list(req.params["listId"])
            if found.processing_type == "DYNAMIC":  # the docs: "only works for lists that have a processingType
                # of MANUAL or SNAPSHOT" (assumed message)
                return validation_error(f"List {found.list_id} has processingType DYNAMIC: its memberships are "
                                        "managed by its filters and cannot be changed by API")
            live = self.portal.stores[found.object_type].records
            added, removed, missing = [], [], []
            at = _now()
            for rid in map(str, removes):
                if rid not in live and rid not in found.members:
                    missing.append(rid)
                elif found.members.pop(rid, None) is not None:
                    removed.append(rid)
            for rid in map(str, adds):
                if rid not in live:
                    missing.append(rid)
                elif rid not in found.members:  # already a member: ignored
                    found.members[rid] = at
                    added.append(rid)
            if added or removed:
                found.updated_at = at
        return Response(200, {"recordIdsMissing": missing, "recordIdsRemoved": removed, "recordsIdsAdded": added})
