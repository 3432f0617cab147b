"""Many tenants on Dagster: N tenants x P people backfilled as one run through Dagster's multiprocess
executor (`backfill_all_tenants`, the shipped job), against one tenant alone the same way.

Each tenant has its own sandbox (portal + org, its own seed, the real HubSpot burst limit of 190 requests
per 10 s), in a process of its own; the state is one throw-away PostgreSQL server (the test suite's). The
run is `dagster job execute -m sync.dagster_defs` with DAGSTER_HOME holding deploy/dagster/dagster.yaml.

Reported: contacts per second in total against one tenant alone; per tenant, API calls against the page
minimum (bench_sync's arithmetic) and the 429s the sandboxes answered; peak RSS per worker (each step's
process reports its own in the step's metadata); wall and CPU (leadsync and Dagster; the sandboxes apart).
Sizes: BENCH_TENANTS (20), BENCH_PEOPLE (5,000 per tenant), BENCH_CONCURRENT (steps at once: the shipped
default), BENCH_DB_EACH=1 (a state database per tenant instead of one shared). Prints one JSON object and
writes bench/results/tenants.json.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
from bench_sync import pull_minimum, write_minimum

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sync.orchestrate.definitions import MAX_CONCURRENT  # noqa: E402
from sync.state import State  # noqa: E402
from tests.sync.test_state_postgres import running_server  # noqa: E402

RESULTS = ROOT / "bench" / "results"
LEADSYNC = [sys.executable, "-m", "sync.cli"]
DAGSTER = str(Path(sys.executable).parent / "dagster")
TICKS = os.sysconf("SC_CLK_TCK")


def start_sandboxes(seeds: list[int], people: int) -> list[tuple[subprocess.Popen, dict]]:
    procs = [subprocess.Popen([*LEADSYNC, "sandbox", "serve", "--contacts", str(people), "--seed", str(seed)],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT) for seed in seeds]
    out = []
    for proc in procs:
        assert proc.stdout is not None
        out.append((proc, json.loads(proc.stdout.readline())))
    return out


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def tenants_toml(sandboxes: dict[str, dict], urls: dict[str, str]) -> str:
    lines = []
    for name, info in sandboxes.items():
        env = info["env"]
        lines += [f"[tenants.{name}]", f'state_url = "{urls[name]}"',
                  'hubspot.access_token_env = "BENCH_HUBSPOT_TOKEN"',
                  f'hubspot.base_url = "{env["LEADSYNC_HUBSPOT__BASE_URL"]}"',
                  'salesforce.session_id_env = "BENCH_SF_SESSION"',
                  f'salesforce.instance_url = "{env["LEADSYNC_SALESFORCE__INSTANCE_URL"]}"',
                  f'salesforce.ca_bundle = "{env["LEADSYNC_SALESFORCE__CA_BUNDLE"]}"', ""]
    return "\n".join(lines)


def run_fleet(sandboxes: dict[str, dict], urls: dict[str, str], work: Path, concurrent: int) -> dict[str, Any]:
    """`dagster job execute` of backfill_all_tenants over these tenants; wall, CPU and the steps' metadata."""
    work.mkdir(parents=True)
    (work / "tenants.toml").write_text(tenants_toml(sandboxes, urls))
    home = work / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster" / "dagster.yaml", home / "dagster.yaml")
    (work / "run.yaml").write_text(json.dumps({"execution": {"config": {"max_concurrent": concurrent}}}))
    any_env = next(iter(sandboxes.values()))["env"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADSYNC_")}
    env.update(DAGSTER_HOME=str(home), LEADSYNC_TENANTS=str(work / "tenants.toml"),
               BENCH_HUBSPOT_TOKEN=any_env["LEADSYNC_HUBSPOT__ACCESS_TOKEN"],
               BENCH_SF_SESSION=any_env["LEADSYNC_SALESFORCE__SESSION_ID"])
    started = time.perf_counter()
    with open(work / "dagster.log", "wb") as log:
        proc = subprocess.Popen([DAGSTER, "job", "execute", "-m", "sync.dagster_defs", "-j", "backfill_all_tenants",
                                 "-c", str(work / "run.yaml")], env=env, cwd=work, stdout=log, stderr=log)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"dagster job execute exited {status}: {(work / 'dagster.log').read_text()[-4000:]}")
    steps = step_metadata(home)
    return {"wall_s": round(wall, 1), "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
            "parent_peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "steps": steps}


def step_metadata(home: Path) -> dict[str, dict[str, Any]]:
    """Each tenant step's output metadata and duration, from the run's event log."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)) as instance:
        (run,) = instance.get_runs(limit=1)
        assert run.status == dg.DagsterRunStatus.SUCCESS, run.status
        out: dict[str, dict[str, Any]] = {}
        for kind, field in ((dg.DagsterEventType.STEP_START, "start"), (dg.DagsterEventType.STEP_SUCCESS, "end")):
            for r in instance.get_records_for_run(run.run_id, of_type=kind).records:
                out.setdefault(r.event_log_entry.step_key, {})[field] = r.event_log_entry.timestamp
        for r in instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.STEP_OUTPUT).records:
            data = r.event_log_entry.dagster_event.event_specific_data
            out[r.event_log_entry.step_key]["meta"] = {k: v.value for k, v in data.metadata.items()}
    return {s["meta"]["tenant"]: {**s["meta"], "step_s": round(s["end"] - s["start"], 1)} for s in out.values()}


def tenant_figures(name: str, url: str, info: dict, step: dict[str, Any]) -> dict[str, Any]:
    """API calls against the page minimum per CRM (from the runs the state keeps) and the 429s answered."""
    state = State(url, tenant=name)
    try:
        runs = {r["source"]: r["summary"] for r in state.last_runs().values() if r["kind"] == "backfill"}
    finally:
        state.close()
    out: dict[str, Any] = {"status": step["status"], "step_s": step["step_s"], "peak_rss_mb": step["peak_rss_mb"],
                           "contacts_pulled": step["contacts_pulled"]}
    for source, summary in sorted(runs.items()):
        base = info["env"]["LEADSYNC_HUBSPOT__BASE_URL" if source == "hubspot" else "LEADSYNC_SALESFORCE__INSTANCE_URL"]
        answered = requests.get(f"{base}/_sandbox/requests", timeout=30,
                                verify=info["env"]["LEADSYNC_SALESFORCE__CA_BUNDLE"]).json()["requests"]
        phases = summary["calls_by_phase"]
        out[source] = {"api_calls": summary["api_calls"], "calls_by_phase": phases,
                       "pull_minimum": pull_minimum(source, summary), "write_minimum": write_minimum(source, summary),
                       "429s": sum(r["count"] for r in answered if r["status"] == 429)}
    return out


def databases(server: Any, names: list[str], each: bool, prefix: str = "fleet") -> dict[str, str]:
    """The state database(s): one shared by every tenant (the deployment this is for), or one each."""
    wanted = {n: f"leadsync_{prefix}_{n}" if each else f"leadsync_{prefix}" for n in names}
    with server.admin() as admin:
        for db in sorted(set(wanted.values())):
            admin.execute(f"CREATE DATABASE {db} TEMPLATE template0")
    return {n: server.url(db, None) for n, db in wanted.items()}


def measure(tenants: int, people: int, concurrent: int, each: bool = False) -> dict[str, Any]:
    seeds = [101 + i for i in range(tenants)]
    boxes = start_sandboxes([*seeds, seeds[0]], people)  # the last: the first tenant's twin, run alone
    names = [f"t{i:02d}" for i in range(tenants)]
    try:
        with running_server() as server, tempfile.TemporaryDirectory() as tmp:
            urls = databases(server, names, each)
            alone = run_fleet({names[0]: boxes[-1][1]}, databases(server, names[:1], True, "alone"),
                              Path(tmp) / "alone", 1)
            fleet_boxes = {n: info for n, (_, info) in zip(names, boxes, strict=False)}
            cpu0 = sum(cpu_s(p.pid) for p, _ in boxes)
            fleet = run_fleet(fleet_boxes, urls, Path(tmp) / "fleet", concurrent)
            sandbox_cpu = sum(cpu_s(p.pid) for p, _ in boxes) - cpu0
            with ThreadPoolExecutor(8) as pool:
                per_tenant = dict(zip(names, pool.map(
                    lambda n: tenant_figures(n, urls[n], fleet_boxes[n], fleet["steps"][n]), names), strict=True))
    finally:
        for proc, _ in boxes:
            proc.terminate()
        for proc, _ in boxes:
            proc.wait(timeout=60)
    return {**summarise(tenants, people, concurrent, alone, fleet, per_tenant, sandbox_cpu),
            "state_databases": tenants if each else 1}


def summarise(tenants: int, people: int, concurrent: int, alone: dict, fleet: dict, per_tenant: dict,
              sandbox_cpu: float) -> dict[str, Any]:
    alone_step = next(iter(alone["steps"].values()))
    total = sum(t["contacts_pulled"] for t in per_tenant.values())
    rss = [t["peak_rss_mb"] for t in per_tenant.values()]

    def over_minimum(source: str) -> list[float]:
        return [round(t[source]["calls_by_phase"].get("pull", 0) / t[source]["pull_minimum"], 2)
                for t in per_tenant.values() if source in t]

    return {
        "benchmark": "tenants", "tenants": tenants, "people_per_tenant": people, "max_concurrent": concurrent,
        "cores": os.cpu_count(),
        "alone": {"contacts": alone_step["contacts_pulled"], "wall_s": alone["wall_s"], "step_s": alone_step["step_s"],
                  "contacts_per_s": round(alone_step["contacts_pulled"] / alone["wall_s"], 1),
                  "cpu_s": alone["cpu_s"], "peak_rss_mb": alone_step["peak_rss_mb"]},
        "fleet": {"contacts": total, "wall_s": fleet["wall_s"], "cpu_s": fleet["cpu_s"],
                  "sandbox_cpu_s": round(sandbox_cpu, 1),
                  "contacts_per_s": round(total / fleet["wall_s"], 1),
                  "all_ok": all(t["status"] == "ok" for t in per_tenant.values()),
                  "worker_peak_rss_mb": {"max": max(rss), "median": statistics.median(rss)},
                  "parent_peak_rss_mb": fleet["parent_peak_rss_mb"],
                  "step_s": {"max": max(t["step_s"] for t in per_tenant.values()),
                             "median": statistics.median(t["step_s"] for t in per_tenant.values())},
                  "pull_calls_over_minimum": {s: {"max": max(over_minimum(s)), "min": min(over_minimum(s))}
                                              for s in ("hubspot", "salesforce")},
                  "429s": {s: sum(t[s]["429s"] for t in per_tenant.values() if s in t)
                           for s in ("hubspot", "salesforce")}},
        "people_per_s": round(tenants * people / fleet["wall_s"], 1),
        "speedup_vs_alone": round(total / fleet["wall_s"] / (alone_step["contacts_pulled"] / alone["wall_s"]), 2),
        "per_tenant": per_tenant,
    }


def main() -> None:
    tenants = int(os.environ.get("BENCH_TENANTS", "20"))
    people = int(os.environ.get("BENCH_PEOPLE", "5000"))
    concurrent = int(os.environ.get("BENCH_CONCURRENT", str(MAX_CONCURRENT)))
    result = measure(tenants, people, concurrent, each=os.environ.get("BENCH_DB_EACH") == "1")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tenants.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
