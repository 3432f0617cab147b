"""Sandbox scale (issue 7): seed 1,000,000 people into both emulators, then page through them over HTTP.

Prints one JSON object as its last stdout line: seconds to build each emulator alone and both together
(`start_sandbox`, one shared pass), peak RSS and RSS per 100k people, and the paging rates with the goals
beside them. `BENCH_SANDBOX_CONTACTS` overrides the size (default 1,000,000).

Each build runs in its own process (so each peak RSS is its own); the paging load runs in another process
(so client and server do not share a GIL): `BENCH_SANDBOX_THREADS` client threads (default 4), each on one
keep-alive connection, for `BENCH_SANDBOX_SECONDS` (default 10) or `BENCH_SANDBOX_MAX_REQUESTS` requests
(default 50,000) per CRM, whichever comes first.
"""

from __future__ import annotations

import http.client
import json
import os
import resource
import ssl
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CONTACTS = int(os.environ.get("BENCH_SANDBOX_CONTACTS", "1000000"))
THREADS = int(os.environ.get("BENCH_SANDBOX_THREADS", "4"))
SECONDS = float(os.environ.get("BENCH_SANDBOX_SECONDS", "10"))
MAX_REQUESTS = int(os.environ.get("BENCH_SANDBOX_MAX_REQUESTS", "50000"))
ANCHOR = datetime(2026, 5, 1, tzinfo=timezone.utc)  # fixed: the same data on every run
HS_PAGE = 100
SF_BATCH = 200  # the smallest batchSize Salesforce allows (default and maximum 2000)
SOQL = "SELECT Id, FirstName, LastName, Email, Company, Status, SystemModstamp FROM Lead ORDER BY SystemModstamp, Id"


def _rss_now_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _memory(base_mb: float) -> dict[str, float]:
    peak = _peak_mb()
    return {"peak_rss_mb": round(peak, 1), "base_rss_mb": round(base_mb, 1),
            "rss_mb_per_100k_contacts": round((peak - base_mb) / (CONTACTS / 100_000), 1),
            "workers_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)}


# ---------------------------------------------------------------------------------------------- phases
def phase_hubspot() -> dict[str, Any]:
    from sandbox.hubspot import HubSpotEmulator

    base = _rss_now_mb()
    started = time.perf_counter()
    emu = HubSpotEmulator(seed=1, contacts=CONTACTS, anchor=ANCHOR)
    seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 2), "contacts_live": len(emu.portal.stores["contacts"].order), **_memory(base)}


def phase_salesforce() -> dict[str, Any]:
    from sandbox.salesforce import SalesforceEmulator

    base = _rss_now_mb()
    started = time.perf_counter()
    emu = SalesforceEmulator(seed=1, contacts=CONTACTS, anchor=ANCHOR)
    seconds = time.perf_counter() - started
    rows = {name: len(t.rows) for name, t in emu.store.tables.items()}
    return {"seconds": round(seconds, 2), "rows": sum(rows.values()), "leads": rows["Lead"], **_memory(base)}


def phase_both() -> dict[str, Any]:
    from sandbox.run import start_sandbox

    base = _rss_now_mb()
    started = time.perf_counter()
    sb = start_sandbox(contacts=CONTACTS, seed=1, anchor=ANCHOR, burst_limit=10**9, daily_limit=10**9)
    seconds = time.perf_counter() - started
    memory = _memory(base)
    sb.salesforce.api.daily_limit = 10**9  # the bench measures paging, not the org's API allocation
    ids = sb.hubspot.contact_ids()
    starts = [ids[len(ids) * k // THREADS] for k in range(THREADS)]
    env = sb.env()
    hs = _load("hubspot", sb.hubspot_url, env["LEADSYNC_HUBSPOT__ACCESS_TOKEN"], "", starts)
    sf = _load("salesforce", sb.salesforce_url, env["LEADSYNC_SALESFORCE__SESSION_ID"],
               env["LEADSYNC_SALESFORCE__CA_BUNDLE"], [])
    sb.stop()
    return {"seconds": round(seconds, 2), **memory, "hubspot_paging": hs, "salesforce_paging": sf}


def _load(kind: str, url: str, token: str, ca: str, starts: list[str]) -> dict[str, Any]:
    """Run the client load in its own process against the running server."""
    args = [sys.executable, __file__, "load", kind, url, token, ca, *starts]
    out = subprocess.run(args, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------ load
def load(kind: str, url: str, token: str, ca: str, starts: list[str]) -> dict[str, Any]:
    parts = urlsplit(url)
    deadline = time.perf_counter() + SECONDS
    budget = [MAX_REQUESTS]
    lock = threading.Lock()
    counts = {"requests": 0, "records": 0, "errors": 0}
    latencies: list[float] = []

    def take() -> bool:
        with lock:
            if budget[0] <= 0 or time.perf_counter() >= deadline:
                return False
            budget[0] -= 1
            return True

    def connect() -> http.client.HTTPConnection:
        if parts.scheme == "https":
            return http.client.HTTPSConnection(parts.hostname, parts.port, context=ssl.create_default_context(cafile=ca))
        return http.client.HTTPConnection(parts.hostname, parts.port)

    def get(conn: http.client.HTTPConnection, path: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        t0 = time.perf_counter()
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        with lock:
            latencies.append(time.perf_counter() - t0)
        return resp.status, orjson.loads(body) if body else {}

    def hubspot(start: str) -> None:
        conn, after = connect(), start
        headers = {"Authorization": f"Bearer {token}"}
        while take():
            status, body = get(conn, f"/crm/v3/objects/contacts?limit={HS_PAGE}&after={after}", headers)
            with lock:
                counts["requests"] += 1
                counts["records"] += len(body.get("results", ()))
                counts["errors"] += status != 200
            after = ((body.get("paging") or {}).get("next") or {}).get("after") or "0"

    def salesforce(_: str) -> None:
        conn, path = connect(), ""
        headers = {"Authorization": f"Bearer {token}", "Sforce-Query-Options": f"batchSize={SF_BATCH}"}
        while take():
            status, body = get(conn, path or f"/services/data/v59.0/query/?q={quote(SOQL)}", headers)
            with lock:
                counts["requests"] += 1
                counts["records"] += len(body.get("records", ())) if isinstance(body, dict) else 0
                counts["errors"] += status != 200
            path = body.get("nextRecordsUrl", "") if isinstance(body, dict) else ""

    work = hubspot if kind == "hubspot" else salesforce
    threads = [threading.Thread(target=work, args=(starts[k] if starts else "",)) for k in range(THREADS)]
    started, cpu0 = time.perf_counter(), _cpu_seconds()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    client_cores = (_cpu_seconds() - cpu0) / elapsed
    latencies.sort()
    return {
        "requests_per_s": round(counts["requests"] / elapsed, 1), "records_per_s": round(counts["records"] / elapsed),
        "requests": counts["requests"], "errors": counts["errors"], "seconds": round(elapsed, 2), "threads": THREADS,
        "page_size": HS_PAGE if kind == "hubspot" else SF_BATCH,
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2) if latencies else None,
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2) if latencies else None,
        "client_cpu_cores": round(client_cores, 2),  # near 1.0 on 2 cores: the client, not the server, is the limit
    }


# ------------------------------------------------------------------------------------------------ main
def _phase(name: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, name], capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"phase {name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    hubspot, salesforce, both = _phase("hubspot"), _phase("salesforce"), _phase("both")
    hs_rate = both.pop("hubspot_paging")
    sf_rate = both.pop("salesforce_paging")
    result = {
        "contacts": CONTACTS, "cores": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
        "seed_hubspot_s": hubspot["seconds"], "seed_salesforce_s": salesforce["seconds"], "seed_both_s": both["seconds"],
        "goal_seed_s": 60,
        "hubspot_contacts_per_s": hs_rate["requests_per_s"], "salesforce_query_more_per_s": sf_rate["requests_per_s"],
        "goal_requests_per_s": 1000,
        "peak_rss_mb": {"hubspot": hubspot["peak_rss_mb"], "salesforce": salesforce["peak_rss_mb"],
                        "both": both["peak_rss_mb"]},
        "rss_mb_per_100k_contacts": {"hubspot": hubspot["rss_mb_per_100k_contacts"],
                                     "salesforce": salesforce["rss_mb_per_100k_contacts"],
                                     "both": both["rss_mb_per_100k_contacts"]},
        "hubspot": hubspot, "salesforce": salesforce, "both": both,
        "hubspot_paging": hs_rate, "salesforce_paging": sf_rate,
    }
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "load":
        print(json.dumps(load(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:])))
    elif len(sys.argv) > 1:
        print(json.dumps({"hubspot": phase_hubspot, "salesforce": phase_salesforce, "both": phase_both}[sys.argv[1]]()))
    else:
        main()
