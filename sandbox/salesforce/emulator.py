"""`SalesforceEmulator`: seeded data + the REST surface, served over TLS with a throw-away CA."""

from __future__ import annotations

import shutil
import ssl
import tempfile
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import trustme

from sandbox.salesforce import persist
from sandbox.salesforce.app import CONCURRENT_LIMIT, SalesforceApi
from sandbox.salesforce.auth import OAuthConfig, Sessions
from sandbox.salesforce.data import Prepared, SeedLoader
from sandbox.salesforce.email_messages import derive_email_messages
from sandbox.salesforce.query import render_value
from sandbox.salesforce.schema import LEAD_STATUS, FieldDef, build_schema
from sandbox.salesforce.store import RecordError, Store
from sandbox.salesforce.wire import SalesforceApp
from sandbox.seed import OWNERS, default_anchor
from sandbox.server import Fault, Request, Response, serve

#: Routes that change records: with a `state_file`, the org is saved after each of them. A Bulk 2.0 ingest
#: job writes its rows on a poll (`sf.bulk_ingest_job`), so polls count too.
WRITE_ROUTES = frozenset({"sf.create", "sf.update", "sf.delete", "sf.upsert", "sf.collection_create",
                          "sf.collection_update", "sf.collection_delete", "sf.collection_upsert", "sf.composite",
                          "sf.bulk_ingest_job"})


class SalesforceEmulator:
    """A Salesforce org on loopback that real `simple-salesforce` talks to unchanged.

    Login credentials: `consumer_key` / `consumer_secret` (client credentials,
    OAuth password), `username` (JWT `sub`, password flows), `password` and
    `security_token` (SOAP login).
    """

    def __init__(
        self,
        seed: int = 1,
        contacts: int = 2000,
        anchor: datetime | None = None,
        session_id: str = "00Dsandbox!sessiontoken",
        api_version: str = "59.0",
        daily_limit: int = 15000,
        *,
        with_managed_fields: bool = True,
        lead_statuses: tuple[str, ...] = LEAD_STATUS,
        field_history: bool = True,
        consumer_key: str = "leadsync-sandbox-key",
        consumer_secret: str = "leadsync-sandbox-secret",
        username: str = "integration@leadsync.sandbox",
        password: str = "sandbox-password",
        security_token: str = "sandboxSecurityToken",
        jwt_public_key: str | None = None,
        clock: Callable[[], datetime] | None = None,
        state_file: str | None = None,
        prepared: Prepared | None = None,
    ) -> None:
        """`prepared`: the seed's rows made ahead by a shared pass (`sandbox.run.start_sandbox`); used only if
        they were made for this org's schema."""
        self.anchor = anchor or default_anchor()
        self.session_id = session_id
        self.api_version = api_version
        self.app = SalesforceApp("salesforce", seed)
        self.store = Store(build_schema(with_managed_fields, lead_statuses), clock or (lambda: datetime.now(timezone.utc)))
        self.state_file = state_file
        saved = state_file is not None and Path(state_file).exists()
        if not saved:
            SeedLoader(self.store, self.anchor, field_history).load(seed, contacts, prepared)
            derive_email_messages(self.store, self.anchor)  # after the seed: its rows and ids stay as they were
        self.store.running_user = OWNERS[0].salesforce_id
        if not field_history:
            self.store.tracked = {}
        self.sessions = Sessions()
        self.sessions.issue(session_id)
        self.oauth = OAuthConfig(consumer_key, consumer_secret, username, password, security_token, jwt_public_key)
        self.api = SalesforceApi(self.app, self.store, self.sessions, self.oauth, daily_limit, self.anchor)
        if state_file is not None:
            if saved:
                self.api.api_usage = persist.load(self.store, state_file)
            self.app.after_hooks.append(self._save_after_write)
        self._server: Any = None
        self._tmp: Path | None = None
        self.ca_pem_path = ""
        self.instance_url = ""

    # ----------------------------------------------------------------- lifecycle
    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve HTTPS; return the instance URL (no trailing slash)."""
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self._tmp = Path(tempfile.mkdtemp(prefix="leadsync-sf-"))
        ca_path = self._tmp / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_path))
        self.ca_pem_path = str(ca_path)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        self._server, _ = serve(self.app, host, port, ssl_context=ctx)
        bound = self._server.server_address[1]
        self.instance_url = f"https://{host}:{bound}"
        self.api.logins.instance_url = self.instance_url
        return self.instance_url

    def save(self) -> None:
        """Write the org to `state_file` (no-op without one)."""
        if self.state_file is not None:
            with self.app.lock:
                persist.save(self.store, self.api.api_usage, self.state_file)

    def _save_after_write(self, req: Request, name: str, resp: Response) -> None:
        """Every write request is on disk before its response is sent, so even a killed sandbox keeps it."""
        if name in WRITE_ROUTES and resp.status < 300:  # a refused write changed nothing
            self.save()

    def stop(self) -> None:
        """Stop serving; with a `state_file`, save the org first."""
        self.save()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> SalesforceEmulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- inspection
    def record(self, sobject: str, record_id: str) -> dict[str, Any]:
        """Current field values of one record, in wire format (datetimes as `…+0000`)."""
        with self.app.lock:
            row = self.store.tables[sobject].rows[record_id]
            return {k: render_value(v) for k, v in row.items()}

    def records(self, sobject: str) -> list[dict[str, Any]]:
        """Every row of an object, deleted ones included (see `IsDeleted`)."""
        with self.app.lock:
            return [{k: render_value(v) for k, v in row.items()} for row in self.store.tables[sobject].rows.values()]

    def add_custom_field(self, sobject: str, name: str, field_type: str = "string", *, label: str = "",
                         length: int = 255, picklist: tuple[str, ...] = ()) -> None:
        """Create a custom field (`Course__c`) as an admin would in Setup: describe lists it at once, SOQL
        selects it (null on existing rows) and writes accept it. The REST API itself cannot create fields
        (connector BEHAVIOR.md, "Fields"), so this is an emulator method, not a route."""
        if not name.endswith("__c"):
            raise ValueError(f"custom field names end in __c (reference §3): {name!r}")
        with self.app.lock:
            obj = self.store.schema[sobject]
            obj.fields[name] = FieldDef(name, field_type, label or name, length, picklist=picklist, custom=True)
            obj.__dict__.pop("_fold", None)  # SObjectDef caches its case-folded field names
            self.api.metadata.changed_at(sobject)  # the object's metadata changed now (If-Modified-Since)

    @property
    def api_usage(self) -> int:
        return self.api.api_usage

    @api_usage.setter
    def api_usage(self, value: int) -> None:
        self.api.api_usage = value

    # ----------------------------------------------------------------- faults
    def expire_sessions(self) -> None:
        """Invalidate every token: the next call gets 401 INVALID_SESSION_ID."""
        with self.app.lock:
            self.sessions.tokens.clear()

    def expire_session_after(self, calls: int | None) -> None:
        """Each token (current and future) stops working after `calls` more API calls."""
        with self.app.lock:
            self.sessions.ttl_calls = calls
            for token in self.sessions.tokens:
                self.sessions.tokens[token] = calls

    def exceed_concurrent_limit(self, times: int | None = 1, endpoint: str = "*") -> None:
        """The next `times` API calls (None: all, until `app.faults` is cleared) on `endpoint` get 403
        REQUEST_LIMIT_EXCEEDED "ConcurrentRequests…": too many long-running requests in flight (reference §5.2).

        Same code as the daily limit, different message; a client should back off and retry this one.
        """
        with self.app.lock:
            self.app.faults.append(Fault(endpoint=endpoint, status=403, body=CONCURRENT_LIMIT, remaining=times))

    def lock_rows(self, ids: Iterable[str], times: int = 1) -> None:
        """These records fail `times` collection writes each with UNABLE_TO_LOCK_ROW."""
        with self.app.lock:
            for record_id in ids:
                self.api.writes.faults.ids[record_id] = times

    def lock_rate(self, rate: float, seed: int = 0, per_record: int = 1) -> None:
        """Each written record fails with probability `rate` (decided by seed and id), at most `per_record` times."""
        with self.app.lock:
            faults = self.api.writes.faults
            faults.rate, faults.seed, faults.per_record = rate, seed, per_record
            faults.seen.clear()

    def reject_writes(self, ids: Iterable[str], status_code: str = "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                      message: str = "Score changes need a manager's approval", fields: Iterable[str] = ()) -> None:
        """Collection writes to these records fail with this per-record error until `clear_rejections()`.

        Models validation rules (`FIELD_CUSTOM_VALIDATION_EXCEPTION`), duplicate rules
        (`DUPLICATES_DETECTED`) and the like: the CRM's own reason, not transient.
        """
        error = RecordError(status_code, message, tuple(fields))
        with self.app.lock:
            for record_id in ids:
                self.api.writes.faults.rejections[record_id] = error

    def clear_rejections(self) -> None:
        with self.app.lock:
            self.api.writes.faults.rejections.clear()
