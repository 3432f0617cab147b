"""Nurture against the sandbox: membership calls against the batch minimum, and none on a sync with nothing new.

Both CRMs backfill as one run with a HubSpot static list and a Salesforce Campaign configured (made through the
APIs first). The sandbox's request counts give the calls of each nurture route; the minimum (`floor`) is
⌈members / `nurture.batch_size`⌉, which changes buffered across decision batches reach; `ceiling` is what one
part-full call per decision batch would cost. An echo sync follows: it must make no nurture call. Size: BENCH_CONTACTS (default 20,000 people).
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import requests
from bench_sync import run_measured, start_sandbox

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
ROUTES = {"hubspot": ("lists.memberships.add", "lists.memberships.remove"),
          "salesforce": ("sf.collection_create", "sf.collection_delete")}


def _counts(info: dict[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for crm in ("hubspot", "salesforce"):
        base = info[crm]["base_url"] if crm == "hubspot" else info[crm]["instance_url"]
        rows = requests.get(f"{base}/_sandbox/requests", verify=info["salesforce"]["ca_bundle"], timeout=30).json()
        for r in rows["requests"]:
            if r["endpoint"] in ROUTES[crm]:
                out[r["endpoint"]] = out.get(r["endpoint"], 0) + r["count"]
    return out


def _targets(info: dict[str, Any]) -> tuple[str, str]:
    hs = info["hubspot"]
    r = requests.post(f"{hs['base_url']}/crm/v3/lists", headers={"Authorization": f"Bearer {hs['access_token']}"},
                      json={"name": "MQL nurture", "objectTypeId": "0-1", "processingType": "MANUAL"}, timeout=30)
    r.raise_for_status()
    sf = info["salesforce"]
    c = requests.post(f"{sf['instance_url']}/services/data/v59.0/sobjects/Campaign", verify=sf["ca_bundle"],
                      headers={"Authorization": f"Bearer {sf['session_id']}"}, timeout=30,
                      json={"Name": "MQL nurture", "Type": "Email", "IsActive": True})
    c.raise_for_status()
    return str(r.json()["list"]["listId"]), str(c.json()["id"])


def bench(contacts: int, batch: int = 100, decide_batch: int = 1000) -> dict[str, Any]:
    proc, info = start_sandbox(contacts)
    try:
        list_id, campaign = _targets(info)
        with tempfile.TemporaryDirectory() as tmp:
            env = {k: v for k, v in os.environ.items() if not k.startswith("LEADSYNC_")}
            env.update(info["env"], LEADSYNC_STATE_URL=f"sqlite:///{tmp}/state.db",
                       LEADSYNC_HUBSPOT__BURST_LIMIT="1000000", LEADSYNC_NURTURE__HUBSPOT_LIST_ID=list_id,
                       LEADSYNC_NURTURE__SALESFORCE_CAMPAIGN_ID=campaign, LEADSYNC_NURTURE__BATCH_SIZE=str(batch),
                       LEADSYNC_SYNC__BATCH_SIZE=str(decide_batch))
            b = run_measured(["backfill"], env)
            after_backfill = _counts(info)
            runs = {r["source"]: r for r in b["runs"]}
            out: dict[str, Any] = {"benchmark": "nurture", "people": contacts, "nurture_batch_size": batch,
                                   "decision_batch_size": decide_batch, "backfill_wall_s": b["_wall_s"]}
            # Records of both CRMs are decided together, `decide_batch` at a time (plus one pass for the hand-offs'
            # origins): each decision batch may end with one part-full nurture call per CRM.
            batches = math.ceil(sum(r["contacts_scored"] for r in runs.values()) / decide_batch) + 1
            out["decision_batches"] = batches
            for crm, (add, _) in ROUTES.items():
                r = runs[crm]
                floor = math.ceil(r["nurture_added"] / batch)
                out[crm] = {"enrolled": r["nurture_added"], "contacts_decided": r["contacts_scored"],
                            "nurture_calls": after_backfill.get(add, 0), "api_calls": r["api_calls"],
                            "status": r["status"], "nurture_calls_floor": floor,
                            "nurture_calls_ceiling": floor + batches}
            e = run_measured(["sync", "--once"], env)
            out["echo_sync"] = {"nurture_added": e["nurture_added"], "nurture_removed": e["nurture_removed"],
                                "nurture_calls": sum(_counts(info).values()) - sum(after_backfill.values()),
                                "api_calls": e["api_calls"], "wall_s": e["_wall_s"]}
            return out
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    print(json.dumps(bench(int(os.environ.get("BENCH_CONTACTS", "20000"))), sort_keys=True))


if __name__ == "__main__":
    main()
