"""Incremental sync at O(changes): a backfill, three `sync --once` with nothing new, one after 50 edits per CRM.

Per sync and CRM: records read (contacts and engagements), API calls by phase. The target is the backfill's
own writeback read back once (the first sync), then nothing on a quiet portal, then the 50 edits alone.
Watermarks settle at the time each stream's first query ran (its HTTP Date), less the overlap; the overlaps
are short here (BENCH_OVERLAP_S, default 5 s) and waited out between syncs, as a 15-minute schedule waits out
the defaults (HubSpot 5 min, Salesforce 60 s). Size: BENCH_PEOPLE (default 10,000 people: ~75% in HubSpot,
~45% in Salesforce).
"""

from __future__ import annotations

import json
import os
import tempfile
import time

from bench_sync import run_measured, start_sandbox
from crm_edits import edit_hubspot, edit_salesforce, hubspot_ids, salesforce_lead_ids

EDITS = 50


def _per_crm(result: dict) -> dict[str, dict]:
    out = {}
    for run in result.get("runs", [result]):
        streams = run["streams"]
        out[run["source"]] = {
            "contacts_pulled": run["contacts_pulled"], "engagements_pulled": run["engagements_pulled"],
            "records_read": sum(s["records"] for s in streams.values()), "api_calls": run["api_calls"],
            "calls_by_phase": run["calls_by_phase"], "records_updated": run["records_updated"],
            "status": run["status"],
        }
    return out


def bench(people: int, overlap_s: int) -> dict:
    proc, info = start_sandbox(people)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            env = {k: v for k, v in os.environ.items() if not k.startswith("LEADSYNC_")}
            env.update(info["env"], LEADSYNC_STATE_URL=f"sqlite:///{tmp}/state.db",
                       LEADSYNC_HUBSPOT__BURST_LIMIT="1000000",
                       LEADSYNC_HUBSPOT__OVERLAP_MS=str(overlap_s * 1000), LEADSYNC_SALESFORCE__OVERLAP_S=str(overlap_s))
            wait = overlap_s + 2  # the overlap, plus the Date header's whole second
            backfill = run_measured(["backfill"], env)
            out: dict = {"people": people, "overlap_s": overlap_s, "backfill": _per_crm(backfill), "syncs": []}
            for label in ("echo", "quiet", "quiet"):
                time.sleep(wait)
                s = run_measured(["sync", "--once"], env)
                out["syncs"].append({"label": label, "wall_s": s["_wall_s"], **_per_crm(s)})
            hs = hubspot_ids(info)[::97][:EDITS]
            sf = salesforce_lead_ids(info)[::53][:EDITS]
            edit_hubspot(info, hs)
            edit_salesforce(info, sf)
            s = run_measured(["sync", "--once"], env)
            out["syncs"].append({"label": f"after {EDITS} edits", "edited": {"hubspot": len(hs), "salesforce": len(sf)},
                                 "wall_s": s["_wall_s"], **_per_crm(s)})
            return out
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    people = int(os.environ.get("BENCH_PEOPLE", "10000"))
    result = {"benchmark": "incremental", **bench(people, int(os.environ.get("BENCH_OVERLAP_S", "5")))}
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
