"""Backfill and incremental sync against the sandbox: wall time, API calls against the minimum, peak memory.

The sandbox runs in its own process (so leadsync's memory is measured alone) with HubSpot's burst
limit raised: wall time then measures leadsync, and `api_floor_s` says what the real 190/10 s quota
would impose for the same number of calls. Sizes: BENCH_CONTACTS (default 100,000 people; ~75% land
in HubSpot, ~45% in Salesforce), and a quarter of that to show memory does not grow with contacts.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from crm_edits import edit_hubspot, edit_salesforce, hubspot_ids, salesforce_lead_ids

ROOT = Path(__file__).resolve().parent.parent
LEADSYNC = [sys.executable, "-m", "sync.cli"]
PAGE_MAX = {  # the API's largest page per stream (hubspot-api.md, salesforce-api.md)
    "hubspot": {"contacts": 100, "contacts_archived": 100, "page_views": 100, "email_events": 1000,
                "form_submissions": 50, "meetings": 100},
    "salesforce": {},  # every SOQL stream: 2000 rows a page
}
WRITE_BATCH = {"hubspot": 100, "salesforce": 200}
HUBSPOT_QUOTA_PER_S = 19.0
OVERLAP_S = 20


def start_sandbox(contacts: int) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen([*LEADSYNC, "sandbox", "serve", "--contacts", str(contacts), "--seed", "3",
                             "--hubspot-burst", "1000000"], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())


def run_measured(args: list[str], env: dict[str, str]) -> dict:
    """Like run(), with the child's peak RSS and CPU seconds from wait4."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen([*LEADSYNC, *args, "--json"], env=env, stdout=subprocess.PIPE, stderr=errors,
                                cwd=ROOT)
        assert proc.stdout is not None
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        if status != 0:
            errors.seek(0)
            raise SystemExit(f"{args} exited with {status}: {out[-2000:]!r} {errors.read()[-3000:]!r}")
    result = json.loads(out)
    result["_wall_s"] = round(time.perf_counter() - started, 2)
    result["_peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)
    result["_cpu_s"] = round(usage.ru_utime + usage.ru_stime, 2)
    return result


def pull_minimum(source: str, summary: dict) -> int:
    """Pages at the API's maximum size, per stream (an empty stream still costs its one call)."""
    return sum(math.ceil(s["records"] / PAGE_MAX[source].get(name, 2000)) or 1 for name, s in summary["streams"].items())


def write_minimum(source: str, summary: dict) -> int:
    """Write batches at the API's maximum size (tasks too: 100 per HubSpot batch create, 200 per Salesforce
    upsert); HubSpot also reads each batch's lifecycle stage back (silent no-ops, reference §3.1)."""
    batches = math.ceil(summary["records_updated"] / WRITE_BATCH[source])
    if source == "hubspot":
        return 2 * batches + math.ceil(summary["tasks_created"] / 100)
    return batches + math.ceil(summary["tasks_created"] / 200)


def touch_one_percent(info: dict, share: float = 0.01) -> dict[str, int]:
    """Someone edits 1% of the contacts in each CRM (titles), through the APIs as a person's tools would."""
    step = max(1, round(1 / share))
    hs = hubspot_ids(info)[::step]
    sf = salesforce_lead_ids(info)[::step]
    edit_hubspot(info, hs)
    edit_salesforce(info, sf)
    return {"hubspot": len(hs), "salesforce": len(sf)}


def bench(contacts: int) -> dict:
    proc, info = start_sandbox(contacts)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            env = {k: v for k, v in os.environ.items() if not k.startswith("LEADSYNC_")}
            env.update(info["env"], LEADSYNC_STATE_URL=f"sqlite:///{tmp}/state.db",
                       LEADSYNC_HUBSPOT__BURST_LIMIT="1000000",
                       # Short overlaps, waited out below, so the 1% sync measures steady state rather than
                       # re-reading the tail of the backfill's own writes (the defaults are 5 min and 60 s).
                       LEADSYNC_HUBSPOT__OVERLAP_MS=str(OVERLAP_S * 1000),
                       LEADSYNC_SALESFORCE__OVERLAP_S=str(OVERLAP_S))
            out: dict = {"people": contacts}
            for source in ("hubspot", "salesforce"):
                b = run_measured(["backfill", "--source", source], env)
                out[f"{source}_backfill"] = {
                    "contacts": b["contacts_pulled"], "engagements": b["engagements_pulled"],
                    "records_updated": b["records_updated"], "tasks_created": b["tasks_created"],
                    "api_calls": b["api_calls"], "calls_by_phase": b["calls_by_phase"],
                    "pull_calls_minimum": pull_minimum(source, b), "write_calls_minimum": write_minimum(source, b),
                    "wall_s": b["_wall_s"], "cpu_s": b["_cpu_s"], "peak_rss_mb": b["_peak_rss_mb"],
                    "failed": b["failed"], "status": b["status"], "streams": b["streams"],
                }
                if source == "hubspot":
                    out["hubspot_backfill"]["api_floor_s"] = round(b["api_calls"] / HUBSPOT_QUOTA_PER_S, 1)
            out["state_db_mb"] = round(sum(p.stat().st_size for p in Path(tmp).glob("state.db*")) / 2**20, 1)
            for source in ("hubspot", "salesforce"):
                # Our own writes come back as modifications once: pulled, recognised, never written again.
                e = run_measured(["sync", "--once", "--source", source], env)
                out[f"{source}_echo_sync"] = {"contacts_pulled": e["contacts_pulled"], "api_calls": e["api_calls"],
                                              "records_updated": e["records_updated"], "wall_s": e["_wall_s"]}
            time.sleep(OVERLAP_S + 2)
            changed = touch_one_percent(info)
            for source in ("hubspot", "salesforce"):
                s = run_measured(["sync", "--once", "--source", source], env)
                out[f"{source}_incremental"] = {
                    "contacts_changed": changed[source], "contacts_pulled": s["contacts_pulled"],
                    "records_updated": s["records_updated"], "api_calls": s["api_calls"],
                    "calls_by_phase": s["runs"][0]["calls_by_phase"], "streams": s["runs"][0]["streams"],
                    "wall_s": s["_wall_s"], "peak_rss_mb": s["_peak_rss_mb"],
                }
            return out
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    n = int(os.environ.get("BENCH_CONTACTS", "100000"))
    big = bench(n)
    small = bench(max(n // 4, 1000))
    result = {
        "benchmark": "sync", **big,
        "memory_check": {
            "people_small": small["people"], "people_large": big["people"],
            "hubspot_backfill_peak_rss_mb": [small["hubspot_backfill"]["peak_rss_mb"],
                                             big["hubspot_backfill"]["peak_rss_mb"]],
            "salesforce_backfill_peak_rss_mb": [small["salesforce_backfill"]["peak_rss_mb"],
                                                big["salesforce_backfill"]["peak_rss_mb"]],
        },
    }
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
