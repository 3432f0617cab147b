"""Both CRMs as one: a backfill and an incremental sync that decide per person, against the sandbox.

Measures API calls per CRM against the page/batch minimum, wall and CPU time, peak memory at two sizes
(flat in N is the goal), and the CPU per person of the person layer's steps — gathering a batch's records
from the state, identity, the profile merge with pooled engagement — beside the scoring they feed, timed
in-process over the backfilled state. Sizes: BENCH_CONTACTS (default 100,000 people) and a quarter of it.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from bench_sync import (
    HUBSPOT_QUOTA_PER_S,
    OVERLAP_S,
    pull_minimum,
    run_measured,
    start_sandbox,
    touch_one_percent,
    write_minimum,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _per_source(result: dict) -> dict:
    out = {}
    for r in result["runs"]:
        src = r["source"]
        out[src] = {"contacts": r["contacts_pulled"], "engagements": r["engagements_pulled"],
                    "records_updated": r["records_updated"], "tasks_created": r["tasks_created"],
                    "records_created": r["records_created"], "api_calls": r["api_calls"],
                    "calls_by_phase": r["calls_by_phase"], "pull_calls_minimum": pull_minimum(src, r),
                    "write_calls_minimum": write_minimum(src, r), "failed": r["failed"], "status": r["status"]}
    return out


def person_steps(state_url: str, limit: int = 20_000) -> dict:
    """µs per person of each step, over the first `limit` stored records (as one sync's batches would)."""
    from mapping.profile import merge, pool
    from scoring import default_model, score
    from sync.persons import gather
    from sync.state import State

    state = State(state_url)
    model = default_model()
    keys = [f"{s}:{i}" for s, i in state.db.execute(
        "SELECT source, id FROM contacts WHERE tenant=? ORDER BY source, id LIMIT ?", (state.tenant, limit))]
    t = {"fetch": 0.0, "gather_identity": 0.0, "profile_pool": 0.0, "score": 0.0}
    persons = 0
    now = None
    for i in range(0, len(keys), 1000):
        part = keys[i:i + 1000]
        c0 = time.process_time()
        seeds = list(state.records(part).values())
        c1 = time.process_time()
        batch = gather(state, seeds)
        c2 = time.process_time()
        by = batch.person_of()
        chosen = {by[k].key: by[k] for k in part if k in by}
        histories = {}
        for src in ("hubspot", "salesforce"):
            ids = [batch.records[k].id for p in chosen.values() for k in p.records if k.startswith(src + ":")]
            histories.update({f"{src}:{cid}": h for cid, h in state.engagements_for(src, ids).items()})
        c3 = time.process_time()
        profiles = []
        for p in chosen.values():
            records = [batch.records[k] for k in p.records]
            profile = merge(records, anchor_key=p.records[0])
            pooled, _ = pool([histories.get(k, []) for k in p.records])
            profiles.append((profile, pooled))
        c4 = time.process_time()
        for profile, pooled in profiles:
            now = now or max((e.occurred_at for e in pooled), default=None)
            if now is not None:
                score(model, profile.contact, pooled, now)
        c5 = time.process_time()
        persons += len(chosen)
        t["fetch"] += c1 - c0 + (c3 - c2)
        t["gather_identity"] += c2 - c1
        t["profile_pool"] += c4 - c3
        t["score"] += c5 - c4
    state.close()
    return {"persons": persons, "records": len(keys),
            **{f"{k}_us_per_person": round(v / max(persons, 1) * 1e6, 1) for k, v in t.items()}}


def bench(contacts: int) -> dict:
    proc, info = start_sandbox(contacts)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            state_url = f"sqlite:///{tmp}/state.db"
            env = {k: v for k, v in os.environ.items() if not k.startswith("LEADSYNC_")}
            env.update(info["env"], LEADSYNC_STATE_URL=state_url, LEADSYNC_HUBSPOT__BURST_LIMIT="1000000",
                       LEADSYNC_HUBSPOT__OVERLAP_MS=str(OVERLAP_S * 1000), LEADSYNC_SALESFORCE__OVERLAP_S=str(OVERLAP_S))
            out: dict = {"people": contacts}
            b = run_measured(["backfill"], env)
            out["backfill"] = {"per_crm": _per_source(b), "wall_s": b["_wall_s"], "cpu_s": b["_cpu_s"],
                               "peak_rss_mb": b["_peak_rss_mb"],
                               "hubspot_api_floor_s": round(_calls(b, "hubspot") / HUBSPOT_QUOTA_PER_S, 1)}
            echo = run_measured(["sync", "--once"], env)
            out["echo_sync"] = {"per_crm": _per_source(echo), "wall_s": echo["_wall_s"]}
            time.sleep(OVERLAP_S + 2)
            changed = touch_one_percent(info)
            s = run_measured(["sync", "--once"], env)
            out["incremental"] = {"contacts_changed": changed, "per_crm": _per_source(s), "wall_s": s["_wall_s"],
                                  "cpu_s": s["_cpu_s"], "peak_rss_mb": s["_peak_rss_mb"]}
            out["person_steps"] = person_steps(state_url)
            return out
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _calls(result: dict, source: str) -> int:
    return sum(r["api_calls"] for r in result["runs"] if r["source"] == source)


def main() -> None:
    n = int(os.environ.get("BENCH_CONTACTS", "100000"))
    big = bench(n)
    small = bench(max(n // 4, 1000))
    print(json.dumps({"benchmark": "persons", **big, "memory_check": {
        "people": [small["people"], big["people"]],
        "backfill_peak_rss_mb": [small["backfill"]["peak_rss_mb"], big["backfill"]["peak_rss_mb"]],
        "incremental_peak_rss_mb": [small["incremental"]["peak_rss_mb"], big["incremental"]["peak_rss_mb"]],
    }}, sort_keys=True))


if __name__ == "__main__":
    main()
