"""The Salesforce REST surface: session checks, the daily allocation, queries with cursors, describe, reads.

Logins live in `auth.py`, writes in `writes.py`, Bulk 2.0 in `bulk.py` (query) and
`bulk_ingest.py` (ingest). Every body and status follows /work/shared/reference/salesforce-api.md;
BEHAVIOR.md in this package lists each behaviour with its source.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote

from sandbox.salesforce.auth import INVALID_SESSION, LOGIN_ROUTES, Logins, OAuthConfig, Sessions
from sandbox.salesforce.bulk import BulkQueries
from sandbox.salesforce.bulk_ingest import BulkIngest
from sandbox.salesforce.composite import Composite
from sandbox.salesforce.metadata import MetadataClock, not_modified
from sandbox.salesforce.query import Binder, Plan, attributes, execute, render_page, render_value
from sandbox.salesforce.soql import SoqlError, caret_message, parse
from sandbox.salesforce.store import Row, Store
from sandbox.salesforce.wire import DATA, NOT_FOUND, errors
from sandbox.salesforce.writes import MAX_BATCH, Writes, external_lookup
from sandbox.server import App, Request, Response

DAILY_LIMIT = [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
#: Body for a `Fault` that reproduces the concurrent-request limit (same code, different message).
CONCURRENT_LIMIT = [{"message": "ConcurrentRequests (Concurrent API Requests) Limit exceeded.",
                     "errorCode": "REQUEST_LIMIT_EXCEEDED"}]


@dataclass
class Cursor:
    plan: Plan
    ids: list[str]
    batch: int
    endpoint: str


class SalesforceApi:
    """Registers the Salesforce routes on `app` over `store`, and accounts for every API call."""

    def __init__(self, app: App, store: Store, sessions: Sessions, oauth: OAuthConfig, daily_limit: int,
                 metadata_since: datetime | None = None) -> None:
        self.app = app
        self.store = store
        now = datetime.now(timezone.utc)
        self.metadata = MetadataClock(store.schema, min(metadata_since or now, now))
        self.sessions = sessions
        self.daily_limit = daily_limit
        self.api_usage = 0
        self.binder = Binder(store)
        self.cursors: OrderedDict[str, Cursor] = OrderedDict()
        self._locator_ids = itertools.count(1)
        app.hooks.append(self._auth_and_limits)
        app.after_hooks.append(self._limit_header)
        self.logins = Logins(app, sessions, oauth)
        self._routes()
        self.writes = Writes(app, store)
        self.bulk = BulkQueries(app, store, self.binder)
        self.ingest = BulkIngest(app, store, self.writes, self.bulk.job_ids)
        self.composite = Composite(app, store)

    # ----------------------------------------------------------------- cross-cutting
    def _auth_and_limits(self, req: Request, name: str) -> Response | None:
        if name in LOGIN_ROUTES:
            return None
        header = req.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        with self.app.lock:
            if scheme.lower() not in ("bearer", "oauth") or not self.sessions.use(token.strip()):
                return Response(401, INVALID_SESSION, {"WWW-Authenticate": 'Token'})
            if self.api_usage >= self.daily_limit:
                return Response(403, DAILY_LIMIT)
            self.api_usage += 1
        return None

    def _limit_header(self, req: Request, name: str, resp: Response) -> None:
        if name.startswith("sf.") and name not in LOGIN_ROUTES and resp.status != 401:
            resp.headers["Sforce-Limit-Info"] = f"api-usage={self.api_usage}/{self.daily_limit}"

    def _routes(self) -> None:
        r = self.app.route
        r("GET", DATA + "/limits", "sf.limits")(self.limits)
        r("GET", DATA + "/query", "sf.query")(lambda q: self.query(q, "query"))
        r("GET", DATA + "/queryAll", "sf.query")(lambda q: self.query(q, "queryAll"))
        r("GET", DATA + "/query/{locator}", "sf.query_more")(self.query_more)
        r("GET", DATA + "/queryAll/{locator}", "sf.query_more")(self.query_more)
        r("GET", DATA + "/sobjects", "sf.describe_global")(self.describe_global)
        r("GET", DATA + "/sobjects/{sobject}/describe", "sf.describe")(self.describe)
        r("GET", DATA + "/sobjects/{sobject}/{record_id}", "sf.get")(self.get)
        r("GET", DATA + "/sobjects/{sobject}/{ext_field}/{value}", "sf.get_by_external_id")(self.get_by_external)

    # ----------------------------------------------------------------- read
    def limits(self, req: Request) -> Response:
        remaining = max(self.daily_limit - self.api_usage, 0)
        return Response(200, {
            "DailyApiRequests": {"Max": self.daily_limit, "Remaining": remaining},
            "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
            "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
            "DailyBulkV2QueryFileStorageMB": {"Max": 1048576, "Remaining": 1048576},
            "DataStorageMB": {"Max": 5, "Remaining": 5},
        })

    def query(self, req: Request, endpoint: str) -> Response:
        text = req.arg("q")
        if not text:
            return Response(400, errors("A query string must be provided.", "MALFORMED_QUERY"))
        try:
            plan = self.binder.bind(parse(text))
        except SoqlError as err:
            return Response(400, errors(caret_message(text, err), err.code))
        with self.app.lock:
            ids = execute(plan, self.store, include_deleted=endpoint == "queryAll")
        if plan.query.count:
            return Response(200, {"totalSize": len(ids), "done": True, "records": []})
        cursor = Cursor(plan, ids, _batch_size(req.headers.get("sforce-query-options", "")), endpoint)
        return Response(200, self._page(cursor, self._remember(cursor), 0, req.params["version"]))

    def query_more(self, req: Request) -> Response:
        locator, _, offset = req.params["locator"].rpartition("-")
        with self.app.lock:
            cursor = self.cursors.get(locator)
            if cursor is not None:
                self.cursors.move_to_end(locator)
        if cursor is None or not offset.isdigit():
            return Response(400, errors("invalid query locator", "INVALID_QUERY_LOCATOR"))
        return Response(200, self._page(cursor, locator, int(offset), req.params["version"]))

    def _remember(self, cursor: Cursor) -> str:
        with self.app.lock:
            locator = "01g" + f"Sb{next(self._locator_ids):013d}"
            self.cursors[locator] = cursor
            while len(self.cursors) > 500:  # real locators expire too; keep memory bounded
                self.cursors.popitem(last=False)
        return locator

    def _page(self, cursor: Cursor, locator: str, offset: int, version: str) -> dict[str, Any]:
        """One page, rendered now: O(page) whatever the result size."""
        ids = cursor.ids[offset : offset + cursor.batch]
        table = self.store.tables[cursor.plan.sobject.name]
        with self.app.lock:
            records = render_page(cursor.plan, self.store, [table.rows[i] for i in ids], version)
        end = offset + len(ids)
        body: dict[str, Any] = {"totalSize": len(cursor.ids), "done": end >= len(cursor.ids)}
        if not body["done"]:
            body["nextRecordsUrl"] = f"/services/data/v{version}/{cursor.endpoint}/{locator}-{end}"
        body["records"] = records
        return body

    def describe_global(self, req: Request) -> Response:
        version = req.params["version"]
        with self.app.lock:
            if not_modified(req.headers.get("if-modified-since"), self.metadata.last_change()):
                return Response(304)
        objs = [{k: v for k, v in o.describe(version).items() if k != "fields"} for o in self.store.schema.values()]
        return Response(200, {"encoding": "UTF-8", "maxBatchSize": MAX_BATCH, "sobjects": objs})

    def describe(self, req: Request) -> Response:
        table = self.store.table(req.params["sobject"])
        if table is None:
            return Response(404, NOT_FOUND)
        with self.app.lock:
            if not_modified(req.headers.get("if-modified-since"), self.metadata.changed_at(table.sobject.name)):
                return Response(304)
        return Response(200, table.sobject.describe(req.params["version"]))

    def get(self, req: Request) -> Response:
        table = self.store.table(req.params["sobject"])
        row = self.store.get(req.params["record_id"]) if table else None
        if table is None or row is None or row["IsDeleted"] or row["Id"] not in table.rows:
            return Response(404, NOT_FOUND)
        return Response(200, self._full(table.sobject.name, row, req))

    def get_by_external(self, req: Request) -> Response:
        table = self.store.table(req.params["sobject"])
        if table is None:
            return Response(404, NOT_FOUND)
        found = external_lookup(self.store, table.sobject.name, req.params["ext_field"], unquote(req.params["value"]))
        if isinstance(found, Response):
            return found
        if found is None:
            return Response(404, NOT_FOUND)
        return Response(200, self._full(table.sobject.name, table.rows[found], req))

    def _full(self, sobject: str, row: Row, req: Request) -> dict[str, Any]:
        wanted = req.args("fields")
        names = [f for f in self.store.schema[sobject].fields if not wanted or f in wanted]
        out: dict[str, Any] = {"attributes": attributes(sobject, row["Id"], req.params["version"])}
        out.update({n: render_value(row.get(n)) for n in names})
        return out


def _batch_size(options: str) -> int:
    """`Sforce-Query-Options: batchSize=N`: default and maximum 2000, minimum 200."""
    for part in options.split(","):
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == "batchsize" and value.strip().isdigit():
            return min(max(int(value), 200), 2000)
    return 2000
