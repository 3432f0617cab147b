"""Bulk API 2.0 ingest jobs: create, upload one CSV, close, poll, and the three result CSVs.

Rows are written when the job is polled, not when it is closed: the first poll after
`UploadComplete` reports `InProgress`, the next runs every row through the sObject Collections
write path (`Writes.ingest_writer`: validation, converted leads, external-id upsert,
SystemModstamp, row locks and rejections) and reports `JobComplete`. So clients exercise their
polling loop, and a job aborted before that second poll leaves every row unprocessed.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sandbox.salesforce.bulk import job_errors, job_stamp
from sandbox.salesforce.ids import make_id
from sandbox.salesforce.schema import FieldDef, SObjectDef
from sandbox.salesforce.store import RecordError, Store
from sandbox.salesforce.wire import DATA, json_object
from sandbox.salesforce.writes import Writes, upsert_key
from sandbox.server import App, Request, Response

DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
#: Which states a PATCH may move a job to, from where (Bulk 2.0 "Close or Abort a Job").
TRANSITIONS = {"UploadComplete": ("Open",), "Aborted": ("Open", "UploadComplete", "InProgress")}
DELETABLE = ("UploadComplete", "JobComplete", "Aborted", "Failed")
NOT_FOUND = job_errors("The requested resource does not exist", "NOT_FOUND")
BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


@dataclass
class IngestJob:
    id: str
    operation: str
    sobject: str
    key: str | None  # externalIdFieldName of an upsert
    delimiter: str
    line_ending: str
    version: str
    created_by: str | None
    created: datetime
    modstamp: datetime
    state: str = "Open"
    header: list[str] | None = None  # None until data is uploaded
    rows: list[list[str]] = field(default_factory=list)
    wrong_line_ending: bool = False
    polls: int = 0
    done: int = 0  # rows processed, failed ones included
    successful: list[list[str]] = field(default_factory=list)  # sf__Id, sf__Created, then the row as sent
    failed: list[list[str]] = field(default_factory=list)  # sf__Id, sf__Error, then the row as sent
    error: str | None = None

    def info(self, full: bool = False) -> dict[str, Any]:
        """Job JSON; `full` is what `GET jobs/ingest/{id}` adds (job type, counts, timings)."""
        body: dict[str, Any] = {
            "id": self.id, "operation": self.operation, "object": self.sobject, "createdById": self.created_by,
            "createdDate": job_stamp(self.created), "systemModstamp": job_stamp(self.modstamp), "state": self.state,
        }
        if self.key:
            body["externalIdFieldName"] = self.key
        body.update(concurrencyMode="Parallel", contentType="CSV", apiVersion=float(self.version))
        if full:
            body["jobType"] = "V2Ingest"
        if self.state == "Open":
            body["contentUrl"] = f"services/data/v{self.version}/jobs/ingest/{self.id}/batches"
        body.update(lineEnding=self.line_ending, columnDelimiter=self.delimiter)
        if full:
            took = self.done // 50
            body.update(numberRecordsProcessed=self.done, numberRecordsFailed=len(self.failed), retries=0,
                        totalProcessingTime=took, apiActiveProcessingTime=took, apexProcessingTime=0)
        if self.error:
            body["errorMessage"] = self.error
        return body


class BulkIngest:
    """The `/jobs/ingest` routes; rows go through `writes`, job ids come from the org's shared 750 counter."""

    def __init__(self, app: App, store: Store, writes: Writes, job_ids: Iterator[int]) -> None:
        self.app = app
        self.store = store
        self.writes = writes
        self.job_ids = job_ids
        self.jobs: dict[str, IngestJob] = {}
        r = app.route
        r("POST", DATA + "/jobs/ingest", "sf.bulk_ingest_create")(self.create)
        r("PUT", DATA + "/jobs/ingest/{job_id}/batches", "sf.bulk_ingest_upload")(self.upload)
        r("GET", DATA + "/jobs/ingest/{job_id}/{kind}", "sf.bulk_ingest_results")(self.results)
        r("GET", DATA + "/jobs/ingest/{job_id}", "sf.bulk_ingest_job")(self.job)
        r("PATCH", DATA + "/jobs/ingest/{job_id}", "sf.bulk_ingest_state")(self.set_state)
        r("DELETE", DATA + "/jobs/ingest/{job_id}", "sf.bulk_ingest_delete")(self.delete)

    def create(self, req: Request) -> Response:
        body = json_object(req)
        if isinstance(body, Response):
            return body
        props = {"operation": body.get("operation"), "contentType": body.get("contentType", "CSV"),
                 "lineEnding": body.get("lineEnding", "LF"), "columnDelimiter": body.get("columnDelimiter", "COMMA")}
        for prop, allowed in (("operation", OPERATIONS), ("contentType", ("CSV",)), ("lineEnding", LINE_ENDINGS),
                              ("columnDelimiter", DELIMITERS)):
            if props[prop] not in allowed:
                return Response(400, job_errors(f"Invalid value: '{props[prop]}' supplied for property: '{prop}'",
                                                "API_ERROR"))
        operation = str(props["operation"])
        name = str(body.get("object") or "")
        table = self.store.table(name)
        if table is None:
            return _invalid_job(f"Unable to find object: {name}")
        sobject = table.sobject.name
        if operation == "hardDelete":  # an org whose API user lacks "Bulk API Hard Delete"
            return _invalid_job("hardDelete requires the Bulk API Hard Delete permission")
        key = None
        if operation == "upsert":
            ext = str(body.get("externalIdFieldName") or "")
            if not ext:
                return _invalid_job(f"External ID was blank for {sobject}. "
                                    "An External ID must be specified for upsert.")
            key = upsert_key(self.store, sobject, ext)
            if key is None:
                return _invalid_job(f"Field name provided, {ext} does not match an External ID for {sobject}")
        with self.app.lock:
            now = self.store.stamp()
            job = IngestJob(make_id("750", next(self.job_ids)), operation, sobject, key, str(props["columnDelimiter"]),
                            str(props["lineEnding"]), req.params["version"], self.store.running_user, now, now)
            self.jobs[job.id] = job
        return Response(200, job.info())

    def upload(self, req: Request) -> Response:
        """One CSV per job (a second PUT is refused), parsed with the job's delimiter."""
        job = self.jobs.get(req.params["job_id"])
        if job is None:
            return Response(404, NOT_FOUND)
        text = req.body.decode("utf-8-sig", errors="replace")
        with self.app.lock:
            if job.state != "Open":
                return _wrong_state(job, "upload data")
            if job.header is not None:
                return Response(400, job_errors(
                    f"Found multiple contents for job: <{job.id[:15]}>, please 'Close' / 'Abort' / 'Delete' the "
                    "current Job then create a new Job and make sure you only do 'PUT' once on a given Job.",
                    "BULK_API_ERROR"))
            rows = [r for r in csv.reader(io.StringIO(text, newline=""), delimiter=DELIMITERS[job.delimiter]) if r]
            job.header, job.rows = (rows[0] if rows else []), rows[1:]
            job.wrong_line_ending = ("\r\n" in text if job.line_ending == "LF"
                                     else re.search(r"(?<!\r)\n", text) is not None)
        return Response(201)

    def set_state(self, req: Request) -> Response:
        """PATCH `{"state": "UploadComplete" | "Aborted"}`: close or abort."""
        job = self.jobs.get(req.params["job_id"])
        if job is None:
            return Response(404, NOT_FOUND)
        body = json_object(req)
        if isinstance(body, Response):
            return body
        target = str(body.get("state"))
        with self.app.lock:
            if job.state not in TRANSITIONS.get(target, ()):
                return _wrong_state(job, f"change it to {target}")
            self._move(job, target)
        return Response(200, job.info())

    def job(self, req: Request) -> Response:
        """Poll: a closed job is InProgress on its first poll and runs on the next."""
        job = self.jobs.get(req.params["job_id"])
        if job is None:
            return Response(404, NOT_FOUND)
        with self.app.lock:
            if job.state in ("UploadComplete", "InProgress"):
                job.polls += 1
                if job.polls == 1:
                    self._move(job, "InProgress")
                else:
                    self._run(job)
            return Response(200, job.info(full=True))

    def results(self, req: Request) -> Response:
        """`successfulResults`, `failedResults`, `unprocessedrecords` (any case, as simple-salesforce asks)."""
        job = self.jobs.get(req.params["job_id"])
        kind = req.params["kind"].casefold()
        if job is None or kind not in ("successfulresults", "failedresults", "unprocessedrecords"):
            return Response(404, NOT_FOUND)
        with self.app.lock:
            if job.header is None:
                return Response(200, "", content_type="text/csv")
            if kind == "successfulresults":
                text = _csv(job, ["sf__Id", "sf__Created"], job.successful)
            elif kind == "failedresults":
                text = _csv(job, ["sf__Id", "sf__Error"], job.failed)
            else:
                text = _csv(job, [], job.rows[job.done:] if job.state in ("Aborted", "Failed") else [])
        return Response(200, text, content_type="text/csv")

    def delete(self, req: Request) -> Response:
        job = self.jobs.get(req.params["job_id"])
        if job is None:
            return Response(404, NOT_FOUND)
        with self.app.lock:
            if job.state not in DELETABLE:
                return _wrong_state(job, "delete it")
            del self.jobs[job.id]
        return Response(204)

    # ----------------------------------------------------------------- processing
    def _move(self, job: IngestJob, state: str) -> None:
        job.state, job.modstamp = state, self.store.stamp()

    def _run(self, job: IngestJob) -> None:
        """Write every row in file order, or fail the whole job on a wrong line ending or an unknown column."""
        fields = _fields(self.store.schema[job.sobject], job.header or [])
        if job.wrong_line_ending:
            job.error = ("ClientInputError : LineEnding is invalid on user data. "
                         f"Current LineEnding setting is {job.line_ending}")
        elif isinstance(fields, str):
            job.error = f"InvalidBatch : Field name not found : {fields}"
        else:
            write = self.writes.ingest_writer(job.sobject, job.operation, job.key)
            for cells in job.rows:
                values = _values(fields, cells)
                result = write(values)
                if isinstance(result, RecordError):
                    job.failed.append([str(values.get("Id") or ""), _sf_error(result), *cells])
                else:
                    created = result.get("created", job.operation == "insert")
                    job.successful.append([result["id"], "true" if created else "false", *cells])
                job.done += 1
        self._move(job, "Failed" if job.error else "JobComplete")

def _fields(obj: SObjectDef, header: list[str]) -> list[FieldDef] | str:
    """The fields the header names, or the first column that names none."""
    fields = []
    for column in header:
        f = obj.field(column)
        if f is None:
            return column
        fields.append(f)
    return fields


def _values(fields: list[FieldDef], cells: list[str]) -> dict[str, Any]:
    """A CSV row as a write body: empty cells leave the field as it is, `#N/A` clears it (reference §4.4)."""
    out: dict[str, Any] = {}
    for f, cell in zip(fields, cells, strict=False):
        if cell == "":
            continue
        if cell == "#N/A":
            out[f.name] = None
        elif f.type == "boolean" and cell.casefold() in BOOLEANS:
            out[f.name] = BOOLEANS[cell.casefold()]
        else:
            out[f.name] = cell  # numbers and dates are parsed by the store; anything else fails per record
    return out


def _sf_error(error: RecordError) -> str:
    """`sf__Error`: `CODE:message:fields --`, or `CODE:message:--` when no field is named."""
    fields = ",".join(error.fields)
    return f"{error.status_code}:{error.message}:{fields} --" if fields else f"{error.status_code}:{error.message}:--"


def _csv(job: IngestJob, sf_columns: list[str], rows: list[list[str]]) -> str:
    """Result CSV in the job's delimiter and line ending: `sf__` cells quoted, the row echoed as sent."""
    n = len(sf_columns)
    return "".join(_line(cells, n, DELIMITERS[job.delimiter]) + LINE_ENDINGS[job.line_ending]
                   for cells in [[*sf_columns, *(job.header or [])], *rows])


def _line(cells: list[str], quoted: int, delimiter: str) -> str:
    def join(part: list[str], quoting: int) -> str:
        out = io.StringIO()
        csv.writer(out, delimiter=delimiter, quoting=quoting, lineterminator="").writerow(part)
        return out.getvalue()

    parts = [join(cells[:quoted], csv.QUOTE_ALL)] if quoted else []
    if len(cells) > quoted or not quoted:
        parts.append(join(cells[quoted:], csv.QUOTE_MINIMAL))
    return delimiter.join(parts)


def _invalid_job(reason: str) -> Response:
    return Response(400, job_errors(f"InvalidJob : {reason}", "INVALIDJOB"))


def _wrong_state(job: IngestJob, action: str) -> Response:
    return Response(400, job_errors(f"Job {job.id} is {job.state}: cannot {action}", "INVALIDJOBSTATE"))
