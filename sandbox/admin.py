"""Admin routes that show what a run wrote, for tests and people running the sandbox in their own CI.

`/_sandbox/requests` (counts), `/_sandbox/requests/reset` and `/_sandbox/faults` come with every
emulator (sandbox.server.App); these add the records themselves. Admin calls are not counted.
"""

from __future__ import annotations

from typing import Any

from sandbox.server import Request, Response


def _window(req: Request, rows: list[Any]) -> Response:
    offset, limit = int(req.arg("offset", "0") or 0), min(int(req.arg("limit", "1000") or 1000), 10_000)
    return Response(200, {"total": len(rows), "offset": offset, "results": rows[offset:offset + limit]})


def add_hubspot_routes(emu: Any) -> None:
    @emu.app.route("GET", "/_sandbox/hubspot/tasks", "admin.hubspot.tasks")
    def _tasks(req: Request) -> Response:
        return _window(req, emu.tasks())

    @emu.app.route("GET", "/_sandbox/hubspot/contacts", "admin.hubspot.contacts")
    def _contacts(req: Request) -> Response:
        ids = emu.contact_ids()
        offset, limit = int(req.arg("offset", "0") or 0), min(int(req.arg("limit", "1000") or 1000), 10_000)
        rows = [{"id": cid, "properties": emu.contact(cid)} for cid in ids[offset:offset + limit]]
        return Response(200, {"total": len(ids), "offset": offset, "results": rows})


def add_salesforce_routes(emu: Any) -> None:
    @emu.app.route("GET", "/_sandbox/salesforce/records/{sobject}", "admin.salesforce.records")
    def _records(req: Request) -> Response:
        try:
            return _window(req, emu.records(req.params["sobject"]))
        except KeyError:
            return Response(404, {"message": f"no such object {req.params['sobject']!r}"})

    @emu.app.route("GET", "/_sandbox/salesforce/records/{sobject}/{recordId}", "admin.salesforce.record")
    def _record(req: Request) -> Response:
        try:
            return Response(200, emu.record(req.params["sobject"], req.params["recordId"]))
        except KeyError:
            return Response(404, {"message": "no such record"})
