"""Bulk API 2.0 query reads: one job, a few polls, CSV pages turned back into REST-shaped records.

Bulk CSV has no types, no nulls and `…Z` datetimes (reference §2.4, §7.9), so
each column is converted with the field's describe type: the mapping layer
then sees exactly what a REST page would have given it.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from simple_salesforce.util import call_salesforce

from connectors.base import ConnectorError
from connectors.salesforce.settings import SalesforceSettings
from connectors.salesforce.transport import Transport

Record = dict[str, Any]
NUMBER_TYPES = frozenset({"double", "int", "currency", "percent"})


def csv_value(text: str, field_type: str | None) -> Any:
    """One CSV cell as the REST API would have typed it."""
    if text == "":
        return None  # Salesforce stores no empty strings: an empty cell is null
    if field_type in NUMBER_TYPES:
        number = float(text)
        return int(number) if field_type == "int" else number
    if field_type == "boolean":
        return text == "true"
    if field_type == "datetime" and text.endswith("Z"):
        return text[:-1] + "+0000"
    return text


def from_csv_row(row: Mapping[str, str], types: Mapping[str, str]) -> Record:
    """A CSV row → a REST-shaped record: dotted columns nest under their relationship, empty parents are None."""
    rec: Record = {}
    parents: dict[str, dict[str, Any]] = {}
    for column, text in row.items():
        value = csv_value(text, types.get(column))
        relation, dot, leaf = column.partition(".")
        if dot:
            parents.setdefault(relation, {})[leaf] = value
        else:
            rec[column] = value
    for relation, values in parents.items():
        rec[relation] = values if any(v is not None for v in values.values()) else None
    return rec


class BulkReader:
    """Runs one query job and yields its result pages as record lists."""

    def __init__(self, transport: Transport, settings: SalesforceSettings, sleep: Callable[[float], None]) -> None:
        self.transport = transport
        self.settings = settings
        self.sleep = sleep

    def pages(self, soql: str, types: Mapping[str, str], include_deleted: bool = False) -> Iterator[list[Record]]:
        operation = "queryAll" if include_deleted else "query"
        job = self.transport.call(lambda sf: sf.restful("jobs/query", method="POST", json={
            "operation": operation, "query": soql, "columnDelimiter": "COMMA", "lineEnding": "LF"},
            timeout=self.settings.timeout_s), "create bulk query job")
        self._wait(job["id"])
        locator = ""
        while True:
            resp = self.transport.call(lambda sf, loc=locator: self._results(sf, job["id"], loc), "bulk results")
            text = resp.content.decode("utf-8").replace("\x00", "")
            yield [from_csv_row(row, types) for row in csv.DictReader(io.StringIO(text))]
            locator = resp.headers.get("Sforce-Locator", "null")
            if locator in ("", "null"):
                return

    def _results(self, sf: Any, job_id: str, locator: str) -> Any:
        """Results are CSV, which `sf.restful` cannot parse: the SDK's own `call_salesforce` maps errors the same way."""
        params: dict[str, Any] = {"maxRecords": self.settings.bulk_page_size}
        if locator:
            params["locator"] = locator
        return call_salesforce(url=f"{sf.bulk2_url}query/{job_id}/results", method="GET", session=sf.session,
                               headers={"Authorization": f"Bearer {sf.session_id}", "Accept": "text/csv"},
                               params=params, timeout=self.settings.timeout_s)

    def _wait(self, job_id: str) -> None:
        """Poll with a doubling pause until JobComplete; Failed, Aborted or a timeout is a ConnectorError."""
        delay = self.settings.bulk_poll_s
        deadline = time.monotonic() + self.settings.bulk_timeout_s
        while True:
            info = self.transport.call(lambda sf: sf.restful(f"jobs/query/{job_id}", timeout=self.settings.timeout_s),
                                       "bulk job status")
            state = info.get("state")
            if state == "JobComplete":
                return
            if state in ("Failed", "Aborted"):
                raise ConnectorError(f"bulk query job {job_id} {state}: {info.get('errorMessage', '')}",
                                     code=f"BULK_{str(state).upper()}")
            if time.monotonic() > deadline:
                raise ConnectorError(f"bulk query job {job_id} still {state} after {self.settings.bulk_timeout_s}s",
                                     code="BULK_TIMEOUT")
            self.sleep(delay)
            delay = min(delay * 2, self.settings.bulk_poll_max_s)
