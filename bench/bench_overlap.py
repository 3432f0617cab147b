"""How close a backfill's wall time comes to its API calls' own floor, at the sandbox's 50 ms latency fault.

HubSpot at its real limits (190 per rolling 10 s in the sandbox, leadsync's own pacing at 180): a backfill
can be no faster than its calls one after another, nor than the pacing lets them go (`calls / 18 per s`).
A call's own time (50 ms of latency, the sandbox's work, the client's) is measured by pulling the same
sandbox with nothing else done: the connector's page iterator, pages dropped. The floor is the larger of
`calls × that time` and the pacing's; the goal is a run within 5% of it, which means leadsync's local work
(storing pages, deciding, settling writes) is hidden behind calls on the wire. `seconds_by_phase` says where
the rest went. Size: BENCH_OVERLAP_PEOPLE (default 5,000).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time

from bench_sync import LEADSYNC, ROOT, run_measured

from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.settings import HubSpotSettings

LATENCY_MS = 50
PACING_PER_S = 18.0  # leadsync's client pacing: 180 per 10 s (connectors/hubspot/settings.py)


def start_sandbox(people: int, latency_ms: int) -> tuple[subprocess.Popen, dict]:
    """The sandbox at HubSpot's real burst limit, every request delayed by `latency_ms`."""
    faults = ["--fault", f"hubspot:*=+{latency_ms}ms"] if latency_ms else []
    proc = subprocess.Popen([*LEADSYNC, "sandbox", "serve", "--contacts", str(people), "--seed", "3", *faults],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())


def pull_alone(info: dict) -> tuple[int, float]:
    """The backfill's pull with nothing done to its pages: (calls, seconds)."""
    env = info["env"]
    connector = HubSpotConnector(HubSpotSettings(access_token=env["LEADSYNC_HUBSPOT__ACCESS_TOKEN"],
                                                 base_url=env["LEADSYNC_HUBSPOT__BASE_URL"]))
    started = time.perf_counter()
    for _ in connector.pull({}):
        pass
    return connector.api_calls, time.perf_counter() - started


def bench(people: int, latency_ms: int) -> dict:
    proc, info = start_sandbox(people, latency_ms)
    try:
        alone_calls, alone_s = pull_alone(info)
        time.sleep(10)  # the pacing window of the pull above empties before the measured run
        with tempfile.TemporaryDirectory() as tmp:
            env = {k: v for k, v in os.environ.items() if not k.startswith("LEADSYNC_")}
            env.update(info["env"], LEADSYNC_STATE_URL=f"sqlite:///{tmp}/state.db")
            b = run_measured(["backfill", "--source", "hubspot"], env)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    calls, call_s = b["api_calls"], alone_s / alone_calls
    floor = max(calls * call_s, calls / PACING_PER_S)
    return {"people": people, "latency_ms": latency_ms, "contacts": b["contacts_pulled"],
            "engagements": b["engagements_pulled"], "api_calls": calls, "calls_by_phase": b["calls_by_phase"],
            "seconds_by_phase": b["seconds_by_phase"],
            "deciding_s": round(b["duration_s"] - sum(b["seconds_by_phase"].values()), 2),
            "pull_alone": {"calls": alone_calls, "s": round(alone_s, 2), "per_call_ms": round(call_s * 1000, 1)},
            "run_s": b["duration_s"], "process_wall_s": b["_wall_s"], "cpu_s": b["_cpu_s"],
            "floor_s": round(floor, 2), "run_over_floor": round(b["duration_s"] / floor, 3), "status": b["status"]}


def main() -> None:
    people = int(os.environ.get("BENCH_OVERLAP_PEOPLE", "5000"))
    print(json.dumps({"benchmark": "overlap", **bench(people, LATENCY_MS), "goal_run_over_floor": 1.05}))


if __name__ == "__main__":
    main()
