"""Bulk API 2.0 query jobs: create, poll, and CSV result pages behind `Sforce-Locator`.

A job snapshots the ids its SOQL selects when it is created and reports
`InProgress` on its first poll, `JobComplete` after, so clients exercise
their polling loop. Results are RFC 4180 CSV with every value quoted, nulls
and empty strings both `""`, and datetimes in the Bulk form `…000Z`
(reference §2.4: REST gives `…+0000` for the same field).
"""

from __future__ import annotations

import base64
import csv
import io
import itertools
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sandbox.salesforce.ids import make_id
from sandbox.salesforce.query import Binder, Column, Plan, execute
from sandbox.salesforce.soql import SoqlError, caret_message, parse
from sandbox.salesforce.store import Row, Store
from sandbox.server import App, Request, Response

DATA = "/services/data/v{version}"
DEFAULT_MAX_RECORDS = 50_000


@dataclass
class QueryJob:
    id: str
    operation: str
    plan: Plan
    ids: list[str]
    created: datetime
    version: str
    polls: int = 0
    state: str = "UploadComplete"

    def info(self) -> dict[str, Any]:
        stamp = job_stamp(self.created)
        body: dict[str, Any] = {
            "id": self.id, "operation": self.operation, "object": self.plan.sobject.name,
            "createdById": "005Ow0000000000IAA", "createdDate": stamp, "systemModstamp": stamp,
            "state": self.state, "concurrencyMode": "Parallel", "contentType": "CSV",
            "apiVersion": float(self.version), "lineEnding": "LF", "columnDelimiter": "COMMA",
        }
        if self.state == "JobComplete":
            body.update(numberRecordsProcessed=len(self.ids), retries=0, totalProcessingTime=len(self.ids) // 50)
        return body


def job_stamp(moment: datetime) -> str:
    """Job JSON dates are REST-style (`…000+0000`), unlike the `…Z` in result CSVs."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def job_errors(message: str, code: str) -> list[dict[str, str]]:
    """Bulk 2.0 error bodies: the REST array shape, `errorCode` first as the jobs API writes it."""
    return [{"errorCode": code, "message": message}]


def csv_value(value: Any) -> str:
    """Bulk CSV text: no types, no null; datetimes end in Z."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


class BulkQueries:
    """The `/jobs/query` routes over the same store and SOQL engine as the REST query."""

    def __init__(self, app: App, store: Store, binder: Binder) -> None:
        self.app = app
        self.store = store
        self.binder = binder
        self.jobs: dict[str, QueryJob] = {}
        self.job_ids = itertools.count(1)  # shared with ingest jobs: one 750 id space, as in an org
        app.route("POST", DATA + "/jobs/query", "sf.bulk_query_create")(self.create)
        app.route("GET", DATA + "/jobs/query/{job_id}/results", "sf.bulk_query_results")(self.results)
        app.route("GET", DATA + "/jobs/query/{job_id}", "sf.bulk_query_job")(self.job)
        app.route("PATCH", DATA + "/jobs/query/{job_id}", "sf.bulk_query_abort")(self.abort)
        app.route("DELETE", DATA + "/jobs/query/{job_id}", "sf.bulk_query_delete")(self.delete)

    def create(self, req: Request) -> Response:
        body = req.json() or {}
        operation = body.get("operation")
        text = body.get("query") or ""
        if operation not in ("query", "queryAll"):
            return Response(400, job_errors(f"Invalid operation: {operation}", "INVALIDJOB"))
        try:
            plan = self.binder.bind(parse(text))
        except SoqlError as err:
            return Response(400, job_errors(caret_message(text, err), err.code))
        if plan.query.count:
            return Response(400, job_errors("Aggregate queries are not supported by Bulk API 2.0", "API_ERROR"))
        with self.app.lock:
            ids = execute(plan, self.store, include_deleted=operation == "queryAll")
            job = QueryJob(make_id("750", next(self.job_ids)), operation, plan, ids, self.store.stamp(),
                           req.params["version"])
            self.jobs[job.id] = job
        return Response(200, job.info())

    def job(self, req: Request) -> Response:
        job = self.jobs.get(req.params["job_id"])
        if job is None:
            return Response(404, job_errors("The requested resource does not exist", "NOT_FOUND"))
        with self.app.lock:
            if job.state in ("UploadComplete", "InProgress"):
                job.polls += 1
                job.state = "InProgress" if job.polls == 1 else "JobComplete"
        return Response(200, job.info())

    def abort(self, req: Request) -> Response:
        job = self.jobs.get(req.params["job_id"])
        if job is None:
            return Response(404, job_errors("The requested resource does not exist", "NOT_FOUND"))
        if (req.json() or {}).get("state") == "Aborted" and job.state != "JobComplete":
            job.state = "Aborted"
        return Response(200, job.info())

    def delete(self, req: Request) -> Response:
        """`DELETE …/jobs/query/{id}`: 204 and no body; the job and its results are gone (a second DELETE, or a
        poll, is a 404). Only a job in state JobComplete, Aborted or Failed can be deleted; otherwise 400
        `API_ERROR` (Bulk API 2.0 guide, "Delete a Query Job", with that error body)."""
        job = self.jobs.get(req.params["job_id"])
        if job is None:
            return Response(404, job_errors("The requested resource does not exist", "NOT_FOUND"))
        with self.app.lock:
            if job.state in ("UploadComplete", "InProgress"):
                return Response(400, job_errors("Error encountered when deleting the job because the job is not "
                                                "terminated", "API_ERROR"))
            del self.jobs[job.id]
        return Response(204)

    def results(self, req: Request) -> Response:
        job = self.jobs.get(req.params["job_id"])
        if job is None:
            return Response(404, job_errors("The requested resource does not exist", "NOT_FOUND"))
        if job.state != "JobComplete":
            return Response(400, job_errors(f"Job {job.id} is not complete: {job.state}", "INVALIDJOB"))
        if req.params["version"] != job.version:
            return Response(409, job_errors("Results must be retrieved with the API version of the job", "INVALIDJOB"))
        offset = _decode_locator(req.arg("locator") or "")
        if offset is None:
            return Response(400, job_errors("Invalid locator", "INVALIDLOCATOR"))
        size = int(req.arg("maxRecords") or DEFAULT_MAX_RECORDS)
        ids = job.ids[offset : offset + size]
        with self.app.lock:
            text = self._csv(job.plan.columns, [self.store.tables[job.plan.sobject.name].rows[i] for i in ids])
        end = offset + len(ids)
        locator = _encode_locator(end) if end < len(job.ids) else "null"
        return Response(200, text, {"Sforce-Locator": locator, "Sforce-NumberOfRecords": str(len(ids))},
                        content_type="text/csv")

    @staticmethod
    def _csv(columns: tuple[Column, ...], rows: list[Row]) -> str:
        out = io.StringIO()
        writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writerow([c.ref.text for c in columns])
        for row in rows:
            writer.writerow([csv_value(c.get(row)) for c in columns])
        return out.getvalue()


def _encode_locator(offset: int) -> str:
    """Real locators look like base64 of the next offset (`MTAwMDA` for 10000); clients must not rely on it."""
    return base64.b64encode(str(offset).encode()).decode().rstrip("=")


def _decode_locator(locator: str) -> int | None:
    if locator in ("", "null"):
        return 0
    try:
        return int(base64.b64decode(locator + "=" * (-len(locator) % 4)).decode())
    except ValueError:
        return None
