"""API calls a connector spends: a backfill pull against the page minimum, and incremental pulls after
k edits for growing k, to show the cost is O(k / page size + 1), not O(N).

The connectors talk to an in-process sandbox through the real client libraries. Overlap windows are
set to zero here so that each incremental pull reads exactly what changed since the last one.
"""

from __future__ import annotations

import json
import math
import os
import time

from crm_edits import edit_hubspot, edit_salesforce, hubspot_ids, salesforce_lead_ids

from connectors.hubspot import HubSpotConnector, HubSpotSettings
from connectors.salesforce import SalesforceConnector, SalesforceSettings
from sandbox.run import HUBSPOT_TOKEN, SALESFORCE_SESSION, start_sandbox

PAGE_MAX = {"contacts": 100, "contacts_archived": 100, "page_views": 100, "email_events": 1000,
            "form_submissions": 50, "meetings": 100}
KS = (0, 10, 100, 1000)


def pull(conn, watermarks: dict[str, str]) -> tuple[dict[str, dict[str, int]], int]:
    before = conn.api_calls
    streams: dict[str, dict[str, int]] = {}
    for page in conn.pull(watermarks):
        s = streams.setdefault(page.stream, {"pages": 0, "records": 0})
        s["pages"] += 1
        s["records"] += len(page.records)
        if page.cursor is not None:
            watermarks[page.stream] = max(page.cursor, watermarks.get(page.stream, page.cursor))
    return streams, conn.api_calls - before


def minimum(streams: dict[str, dict[str, int]], page_max: dict[str, int], default: int) -> int:
    return sum(math.ceil(s["records"] / page_max.get(name, default)) or 1 for name, s in streams.items())


def measure(name: str, conn, ids: list[str], edit, page_max: dict[str, int], default: int, info: dict) -> dict:
    watermarks: dict[str, str] = {}
    started = time.perf_counter()
    streams, calls = pull(conn, watermarks)
    out = {"backfill": {"contacts": sum(s["records"] for n, s in streams.items() if n in ("contacts", "Lead",
                                                                                             "Contact")),
                        "api_calls": calls, "api_calls_minimum": minimum(streams, page_max, default),
                        "seconds": round(time.perf_counter() - started, 2), "streams": streams},
           "incremental": []}
    offset = 0
    for k in KS:
        time.sleep(1.1)  # a new second: Salesforce stamps are second-precision
        edit(info, ids[offset:offset + k])  # fresh contacts each round: re-setting a value is no change
        offset += k
        streams, calls = pull(conn, watermarks)
        contact_streams = {n: s for n, s in streams.items() if n in ("contacts", "Lead", "Contact")}
        out["incremental"].append({
            "k": k, "api_calls": calls, "contact_records": sum(s["records"] for s in contact_streams.values()),
            "contact_pages": sum(s["pages"] for s in contact_streams.values()),
            "contact_calls_minimum": minimum(contact_streams, {"contacts": 200}, default),
            "streams_polled": len(streams)})
    return out


def main() -> None:
    n = int(os.environ.get("BENCH_CONNECTOR_PEOPLE", "20000"))
    sb = start_sandbox(contacts=n, seed=9, burst_limit=10**6, search_per_second=1000)
    try:
        info = sb.describe()
        hs = HubSpotConnector(HubSpotSettings(access_token=HUBSPOT_TOKEN, base_url=sb.hubspot_url, overlap_ms=0,
                                              burst_limit=10**6, search_per_second=1000))
        sf = SalesforceConnector(SalesforceSettings(instance_url=sb.salesforce_url, session_id=SALESFORCE_SESSION,
                                                    ca_bundle=str(sb.salesforce.ca_pem_path), overlap_s=0))
        result = {
            "benchmark": "connectors", "people": n,
            "hubspot": measure("hubspot", hs, hubspot_ids(info), edit_hubspot, PAGE_MAX, 100, info),
            "salesforce": measure("salesforce", sf, salesforce_lead_ids(info), edit_salesforce, {}, 2000, info),
        }
        print(json.dumps(result, sort_keys=True))
    finally:
        sb.stop()


if __name__ == "__main__":
    main()
