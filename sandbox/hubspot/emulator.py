"""`HubSpotEmulator`: the seeded portal behind a real HTTP server, for tests, benchmarks and the demo."""

from __future__ import annotations

import copy
from datetime import datetime
from http.server import ThreadingHTTPServer
from typing import Any

import orjson

from sandbox.hubspot import persist
from sandbox.hubspot.crm_routes import MUTATING_ROUTES, CrmRoutes
from sandbox.hubspot.engagement_routes import EngagementRoutes
from sandbox.hubspot.limits import Limits
from sandbox.hubspot.list_routes import MUTATING as LIST_MUTATING
from sandbox.hubspot.list_routes import ListRoutes
from sandbox.hubspot.oauth import OAuthApp
from sandbox.hubspot.portal import Portal, seeded_portal
from sandbox.hubspot.seeding import Seeded
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
        *,
        oauth: OAuthApp | None = None,
        state_file: str | None = None,
        reject_ids: set[str] | frozenset[str] = frozenset(),
        seeded: Seeded | None = None,
    ) -> None:
        """`events_api=False` models a portal below Enterprise: `/events/v3/events` answers 403.

        `oauth` is the public app whose refresh token `/oauth/v1/token` accepts (default: sandbox credentials,
        30-minute tokens); the private-app `token` works alongside. `state_file`: load the portal from it if it
        exists, and save to it after every successful mutating request and on stop. `reject_ids`: contacts
        whose batch updates fail with a per-record 207 VALIDATION_ERROR (also `POST /_sandbox/hubspot/reject`).
        `seeded`: `seeding.build(seed, contacts, anchor)`'s result made ahead (a shared pass, `sandbox.run`).
        """
        self.token = token
        self.app = App("hubspot", seed)
        self.portal: Portal = seeded_portal(seed, contacts, anchor or default_anchor(), Clock(), seeded)
        self.state_file = state_file
        if state_file is not None and (saved := persist.load(state_file)) is not None:
            persist.restore(self.portal, saved)
        self.oauth = oauth or OAuthApp()
        self.limits = Limits(token, burst_limit, burst_window_s, daily_limit, search_per_second, oauth=self.oauth)
        self.app.hooks.append(self._guarded)
        self.app.after_hooks.append(self.limits.headers)
        self.app.after_hooks.append(self._persist)
        self.app.after_hooks.append(_encode_json)
        self.crm = CrmRoutes(self.app, self.portal)
        self.crm.reject_ids.update(reject_ids)
        self.crm.install()
        EngagementRoutes(self.app, self.portal, events_api).install()
        self.lists = ListRoutes(self.app, self.portal)
        self.lists.install()
        self.app.route("POST", "/oauth/v1/token", "oauth.token")(self._token)
        self._admin_routes()
        self._server: ThreadingHTTPServer | None = None
        self.base_url: str | None = None

    def _admin_routes(self) -> None:
        r = self.app.route
        r("GET", "/_sandbox/hubspot/contacts/{recordId}", "admin.hubspot.contact")(self._admin_contact)
        r("GET", "/_sandbox/hubspot/reject", "admin.hubspot.reject")(self._admin_reject)
        r("POST", "/_sandbox/hubspot/reject", "admin.hubspot.reject.set")(self._admin_reject)
        r("POST", "/_sandbox/hubspot/oauth/expire", "admin.hubspot.oauth.expire")(self._admin_expire)

    def _guarded(self, req: Request, name: str) -> Response | None:
        with self.app.lock:  # App runs hooks outside its lock; the quota counters need it
            return self.limits.before(req, name)

    def _token(self, req: Request) -> Response:
        with self.app.lock:
            return self.oauth.token(req)

    def _persist(self, req: Request, name: str, resp: Response) -> None:
        """Write-through persistence: every successful mutating request is saved before the client hears back."""
        if self.state_file is not None and (name in MUTATING_ROUTES or name in LIST_MUTATING) and 200 <= resp.status < 300:
            self.save()

    def _admin_contact(self, req: Request) -> Response:
        found = self.contact(req.params["recordId"])
        return Response(200, found) if found is not None else Response(404, {"message": "no such contact"})

    def _admin_reject(self, req: Request) -> Response:
        """GET: the rejected ids. POST {"ids": [...]}: replace them (fault injection from the command line)."""
        with self.app.lock:
            if req.method == "POST":
                self.crm.reject_ids = {str(i) for i in (req.json() or {}).get("ids") or []}
            return Response(200, {"ids": sorted(self.crm.reject_ids)})

    def _admin_expire(self, req: Request) -> Response:
        with self.app.lock:
            self.oauth.expire_all()
        return Response(204)

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
        if self.state_file is not None:
            self.save()

    def save(self) -> None:
        """Save the portal to `state_file` now (atomic)."""
        if self.state_file is None:
            raise ValueError("no state_file configured")
        with self.app.lock:
            persist.save(self.portal, self.state_file)

    # ------------------------------------------------------------- inspection
    def contact(self, contact_id: str) -> dict[str, str] | None:
        """A copy of the contact's current stored properties (unset ones absent), live or archived."""
        with self.app.lock:
            store = self.portal.stores["contacts"]
            rec = store.records.get(contact_id) or store.archived.get(contact_id)
            return dict(rec.properties) if rec else None

    def contact_ids(self) -> list[str]:
        """Live (not archived) contacts, in id order."""
        with self.app.lock:
            return [str(i) for i in self.portal.stores["contacts"].order]

    def archived_contact_ids(self) -> list[str]:
        """Archived (deleted or merged-away) contacts, in id order."""
        with self.app.lock:
            return [str(i) for i in self.portal.stores["contacts"].archived_order]

    def archive_contact(self, contact_id: str) -> bool:
        """Archive a contact as `DELETE /crm/v3/objects/contacts/{id}` would; False if it was not live."""
        with self.app.lock:
            done = self.portal.stores["contacts"].archive(contact_id) is not None
        if done and self.state_file is not None:
            self.save()
        return done

    def tasks(self) -> list[dict[str, Any]]:
        """Every task with its properties and associated contact ids, oldest first."""
        with self.app.lock:
            store = self.portal.stores["tasks"]
            return [
                {"id": rec.id, "properties": copy.deepcopy(rec.properties),
                 "contact_ids": list(rec.associations.get("contacts", []))}
                for rec in (store.records[str(i)] for i in store.order)
            ]

    def create_list(self, name: str, processing_type: str = "MANUAL") -> str:
        """A contact list as `POST /crm/v3/lists` makes it; returns its ILS id."""
        found = self.lists.create_list(name, "contacts", processing_type)
        if self.state_file is not None:
            self.save()
        return found.list_id

    def list_members(self, list_id: str) -> list[str]:
        """The list's member record ids, in id order."""
        with self.app.lock:
            return sorted(self.portal.lists[list_id].members, key=int)

    def __enter__(self) -> HubSpotEmulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
