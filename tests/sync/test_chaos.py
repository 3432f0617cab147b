"""Chaos: faults on every endpoint of both CRMs, late commits, and SIGKILLs of real leadsync processes.

Bad luck as it comes in production, all at once and seeded: 5xx, 429s, dropped connections and slow answers
on any request of either CRM, HubSpot task batches that commit after the client gave up, and runs killed
part-way. Once the faults stop and the runs finish, both CRMs hold exactly what an undisturbed run leaves: the
same fields, the same hand-off Leads and links, one task per hand-off, no duplicate record.
"""

from __future__ import annotations

import random
import time
from collections import Counter

from sandbox.server import Fault
from tests.sync.test_crash_safety import both_crms, env_for, kill_after, leadsync, twin_sandboxes

SETTLE_S = 3  # longer than any late commit below: a lost task create is looked up again only after it


def faults(rng: random.Random) -> list[Fault]:
    return [
        Fault("*", status=503, body={"message": "chaos"}, rate=0.05),
        Fault("*", status=429, headers={"Retry-After": "0"}, body={"message": "chaos: slow down"}, rate=0.03),
        Fault("*", drop=True, rate=0.02),
        Fault("*", latency_ms=rng.randint(20, 80), rate=0.05),
    ]


def finish(env: dict[str, str]) -> None:
    for args in (("backfill", "--resume"), ("sync", "--once"), ("sync", "--once")):
        proc = leadsync(env, *args)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()[-3000:]


def test_chaos_ends_where_a_clean_run_ends(tmp_path):
    rng = random.Random(20261203)
    with twin_sandboxes(tmp_path) as (reference, chaotic):
        env_ref = env_for(reference, tmp_path / "ref")
        finish({**env_ref})
        want = both_crms(reference)

        env = {**env_for(chaotic, tmp_path / "crash"), "LEADSYNC_HUBSPOT__TASK_SETTLE_S": str(SETTLE_S),
               "LEADSYNC_SYNC__MAX_ATTEMPTS": "100", "LEADSYNC_HUBSPOT__BACKOFF_BASE_S": "0.01",
               "LEADSYNC_SALESFORCE__BACKOFF_BASE_S": "0.01", "LEADSYNC_HUBSPOT__TIMEOUT_S": "5"}
        apps = (chaotic.hubspot.app, chaotic.salesforce.app)
        for a in apps:
            a.faults = faults(rng)
        chaotic.hubspot.app.faults.append(Fault("objects.batch.create", commit_late_ms=1500, remaining=2))
        kills = 0
        deadline = time.monotonic() + 90
        for attempt in range(10):
            if time.monotonic() > deadline:
                break
            kills += kill_after(env, ("backfill", *(("--resume",) if attempt else ())), apps, rng.randint(3, 40))
        assert kills >= 3, f"too few kills landed: {kills}"
        for a in apps:
            a.faults = []
        time.sleep(SETTLE_S + 1.6)  # late commits have landed; lost task creates may be looked up again
        finish(env)
        got = both_crms(chaotic)
        tasks = [k for k, n in got[1].items() if n > 1]
        assert not tasks, f"duplicate tasks: {tasks[:3]}"
        leads = Counter(r.get("Email") for r in chaotic.salesforce.records("Lead")
                        if r.get("LeadSync_Person_Key__c") and not r.get("IsDeleted"))
        assert all(n == 1 for n in leads.values()), "a hand-off Lead was created twice"
        assert got[1] == want[1]
        assert got[0] == want[0]
