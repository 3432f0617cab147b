"""`HubSpotEmulator`: the seeded portal behind a real HTTP server, for tests, benchmarks and the demo."""

from __future__ import annotations

import copy
from datetime import datetime
from http.server import ThreadingHTTPServer
from typing import Any

import orjson

from sandbox.hubspot.crm_routes import CrmRoutes
from sandbox.hubspot.engagement_routes import EngagementRoutes
from sandbox.hubspot.limits import Limits
from sandbox.hubspot.portal import Portal, seeded_portal
from sandbox.hubspot.store import Clock
from sandbox.seed import default_anchor
from sandbox.server import App, Request, Response, serve


def _encode_json(req: Request, name: str, resp: Response) -> None:
    """Encode JSON bodies with orjson: the stdlib encoder was half of a list page's cost."""
    if isinstance(resp.body, dict | list):
        resp.body = orjson.dumps(resp.body)


class HubSpotEmulator:
    """A HubSpot portal on loopback that the real `hubspot-api-client` talks to unchanged."""

    def __init__(
        self,
        seed: int = 1,
        contacts: int = 2000,
        anchor: datetime | None = None,
        token: str = "pat-sandbox-token",
        burst_limit: int = 190,
        burst_window_s: float = 10.0,
        daily_limit: int = 1_000_000,
        search_per_second: int = 4,
        events_api: bool = True,
    ) -> None:
        """`events_api=False` models a portal below Enterprise: `/events/v3/events` answers 403."""
        self.token = token
        self.app = App("hubspot", seed)
        self.portal: Portal = seeded_portal(seed, contacts, anchor or default_anchor(), Clock())
        self.limits = Limits(token, burst_limit, burst_window_s, daily_limit, search_per_second)
        self.app.hooks.append(self._guarded)
        self.app.after_hooks.append(self.limits.headers)
        self.app.after_hooks.append(_encode_json)
        CrmRoutes(self.app, self.portal).install()
        EngagementRoutes(self.app, self.portal, events_api).install()
        self.app.route("GET", "/_sandbox/hubspot/contacts/{recordId}", "admin.hubspot.contact")(self._admin_contact)
        self._server: ThreadingHTTPServer | None = None
        self.base_url: str | None = None

    def _guarded(self, req: Request, name: str) -> Response | None:
        with self.app.lock:  # App runs hooks outside its lock; the quota counters need it
            return self.limits.before(req, name)

    def _admin_contact(self, req: Request) -> Response:
        found = self.contact(req.params["recordId"])
        return Response(200, found) if found is not None else Response(404, {"message": "no such contact"})

    # ------------------------------------------------------------- lifecycle
    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on a background thread; returns the base URL (port 0 picks a free port)."""
        self._server, _ = serve(self.app, host, port)
        self.base_url = f"http://{host}:{self._server.server_address[1]}"
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # ------------------------------------------------------------- inspection
    def contact(self, contact_id: str) -> dict[str, str] | None:
        """A copy of the contact's current stored properties (unset ones absent)."""
        with self.app.lock:
            rec = self.portal.stores["contacts"].records.get(contact_id)
            return dict(rec.properties) if rec else None

    def contact_ids(self) -> list[str]:
        with self.app.lock:
            return [str(i) for i in self.portal.stores["contacts"].order]

    def tasks(self) -> list[dict[str, Any]]:
        """Every task with its properties and associated contact ids, oldest first."""
        with self.app.lock:
            store = self.portal.stores["tasks"]
            return [
                {"id": rec.id, "properties": copy.deepcopy(rec.properties),
                 "contact_ids": list(rec.associations.get("contacts", []))}
                for rec in (store.records[str(i)] for i in store.order)
            ]

    def __enter__(self) -> HubSpotEmulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
