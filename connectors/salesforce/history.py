"""Field history reads: LeadHistory / ContactHistory rows on creation, stage, status and conversion.

One query per object and run, not one per page of records: `Field IN (…) AND CreatedDate >= watermark ORDER BY
CreatedDate, Id`, paged like any query (2,000 rows a page), so a backfill reads a whole org's history in
rows / 2,000 calls and an incremental sync only what was written since. History rows have no SystemModstamp:
CreatedDate is their cursor, re-read with an overlap (the store keeps each entry once). An org that tracks no
field history answers with no rows (the Lead/Contact rows' CreatedDate / ConvertedDate stand in: origins
`created_fallback` / `converted`); one whose API user may not read the object (`INVALID_TYPE`) ends the stream
with an empty page saying so.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from simple_salesforce import format_soql

from connectors.base import ConnectorError, RawPage
from connectors.salesforce.fields import STAGE_KEY
from mapping.salesforce import HISTORY_FIELDS, HISTORY_OBJECTS

if TYPE_CHECKING:
    from connectors.salesforce.connector import SalesforceConnector


def history_soql(sobject: str, fields: tuple[str, ...], floor: str | None) -> str:
    parent = HISTORY_OBJECTS[sobject]
    soql = format_soql("SELECT Id, {:literal}, Field, OldValue, NewValue, CreatedDate FROM {:literal} "
                       "WHERE Field IN {}", parent, sobject, list(fields))
    if floor is not None:
        soql += f" AND CreatedDate >= {floor}"
    return soql + " ORDER BY CreatedDate, Id"


def pull_history(conn: SalesforceConnector, sobject: str, watermark: str | None) -> Iterator[RawPage]:
    """Pages of one history object from `watermark`; the cursor is the page's newest CreatedDate."""
    from connectors.salesforce.connector import parse_stamp, wire_stamp

    stage_field = conn.field_map.org_field("Lead" if sobject == "LeadHistory" else "Contact", STAGE_KEY)
    fields = tuple(dict.fromkeys((*HISTORY_FIELDS, stage_field)))
    floor = wire_stamp(parse_stamp(watermark) - timedelta(seconds=conn.settings.overlap_s)) if watermark else None
    cursor = watermark
    try:
        for body in conn._query_bodies(history_soql(sobject, fields, floor)):
            records = [_logical(conn, sobject, stage_field, r) for r in body.get("records") or []]
            stamps = [str(r["CreatedDate"]) for r in records if r.get("CreatedDate")]
            if stamps:
                newest = wire_stamp(max(parse_stamp(s) for s in stamps))
                cursor = newest if cursor is None or newest > cursor else cursor
            yield RawPage(sobject, records, cursor, meta={"api": "rest"})
    except ConnectorError as exc:
        if exc.code != "INVALID_TYPE":
            raise
        yield RawPage(sobject, [], None, {"unavailable": f"{exc.code}: {exc}"})


def _logical(conn: SalesforceConnector, sobject: str, stage_field: str, record: dict[str, Any]) -> dict[str, Any]:
    """A history row in leadsync's terms: a change of the org's stage field is one of `LeadSync_Stage__c`, its
    value leadsync's label (the org's own value when none maps)."""
    out = {k: v for k, v in record.items() if k != "attributes"}
    if out.get("Field") == stage_field:
        parent = "Lead" if sobject == "LeadHistory" else "Contact"
        mapped = conn.field_map.from_org(parent, {stage_field: out.get("NewValue")})
        out["Field"], out["NewValue"] = STAGE_KEY, mapped.get(STAGE_KEY, out.get("NewValue"))
    return out
