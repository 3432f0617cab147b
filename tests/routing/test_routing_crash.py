"""kill -9 mid-run with routing and alerts on: nobody bounces between reps, round robin counts every person
once, every task's owner is the persisted rep, and no alert goes out twice."""

from __future__ import annotations

from collections import Counter

from sandbox.run import start_sandbox
from sandbox.seed import OWNERS
from sync.state import State
from tests.routing.config import routing_toml
from tests.sync.test_crash_safety import env_for, kill_after, leadsync, run_to_completion

REP_OF = {o.salesforce_id: o.first_name.lower() for o in OWNERS}


def test_killed_runs_keep_every_assignment_and_alert_at_most_once(tmp_path, slack):
    sb = start_sandbox(contacts=300, seed=11)
    try:
        env = env_for(sb, tmp_path)
        config = tmp_path / "leadsync.toml"
        config.write_text(routing_toml(slack.url("/team")))
        env["LEADSYNC_CONFIG"] = str(config)
        state_url = env["LEADSYNC_STATE_URL"]
        seen: dict[str, str] = {}  # person → rep, as persisted after each kill
        mid_routing = 0  # kills that left some persons routed and some tasks still to create
        apps = (sb.hubspot.app, sb.salesforce.app)
        # A plan pulls everything and decides nothing for good; the syncs after it route and write from their
        # first calls on, so the kills land between routing, the Lead creates, the tasks and the alerts.
        plan = leadsync(env, "plan")
        assert plan.communicate(timeout=120) and plan.returncode == 0
        # What a sync spends before its first write (set-up, a quiet pull, the users routing reads): a second
        # plan costs the same, so the kill points follow it when a stream or a read is added.
        before = sum(a.api_calls() for a in apps)
        again = leadsync(env, "plan")
        assert again.communicate(timeout=120) and again.returncode == 0
        quiet = sum(a.api_calls() for a in apps) - before
        for calls in (quiet + k for k in (1, 3, 5, 7, 10, 14)):
            if not kill_after(env, ("sync", "--once"), apps, calls):
                continue
            st = State(state_url)
            for person, rep in st.db.execute(
                    "SELECT DISTINCT person, rep FROM route_assignments WHERE tenant='default'"):
                assert seen.setdefault(person, rep) == rep, f"{person} moved from {seen[person]} to {rep}"
            created = st.db.execute(
                "SELECT count(*) FROM task_ledger WHERE tenant='default' AND status='created'").fetchone()[0]
            mid_routing += bool(seen) and created < len(seen)
            st.close()
        assert mid_routing >= 2, f"too few kills landed between routing and the tasks: {mid_routing}"
        run_to_completion(env, "salesforce")
        run_to_completion(env, "hubspot")

        st = State(state_url)
        final = dict(st.db.execute(
            "SELECT DISTINCT person, rep FROM route_assignments WHERE tenant='default'").fetchall())
        assert all(final[p] == rep for p, rep in seen.items() if p in final)
        tasks = [t for t in sb.salesforce.records("Task") if t.get("LeadSync_Key__c")]
        assert tasks
        # every task is owned by the rep persisted for its person, and counted once in round robin
        per_rep = Counter(REP_OF[t["OwnerId"]] for t in tasks)
        counters = dict(st.db.execute("SELECT rep, assigned FROM route_counters WHERE tenant='default'").fetchall())
        assert counters == dict(per_rep), (counters, per_rep)
        n = len(tasks)
        assert abs(per_rep["maya"] - n * 2 / 3) <= 1 and abs(per_rep["jonas"] - n / 3) <= 1, per_rep
        # no alert twice; each created task alerted once unless its send was cut by a kill (unconfirmed)
        subjects = Counter(t.split("\n")[0].strip("*") for t in slack.texts())
        assert max(subjects.values()) == 1
        statuses = Counter(r[0] for r in st.db.execute("SELECT status FROM alerts WHERE tenant='default'"))
        assert statuses["sent"] + statuses["unconfirmed"] == n and statuses["sent"] == len(slack.delivered)
        st.close()
    finally:
        sb.stop()
