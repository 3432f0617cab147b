"""leadsync side by side with the extractors teams use today, on one seeded sandbox (`make bench-peers`).

Each peer is installed from the package index into its own venv under `.bench-peers/venvs/NAME` (pinned,
reused), pointed at the sandbox by a transport-level redirect (`peers/redirect/sitecustomize.py`: the CRM
host names resolve to the sandbox's loopback TLS listeners, any other non-loopback host is refused), and run
twice per latency: a full pull, then — after 50 edits through the CRM's API — again with the state it emitted
(its incremental). leadsync runs `backfill` then `sync --once` on the same sandbox. Per run: requests (the
sandbox's own accounting), records emitted, wall, child CPU and peak RSS. At 0 and 50 ms per request
(the sandbox's latency fault, which delays only its own request).

Sizes: BENCH_PEERS_PEOPLE (default 8,000 people: ~75% land in HubSpot, ~45% in Salesforce). Pass peer names
(or `leadsync`) to run a subset; BENCH_PEERS_LATENCIES="0,50". The sandbox's HubSpot burst limit is raised
(as in bench_sync) so wall time measures the tools, not 429 back-off; the 4/s search limit stays.
Prints one JSON object; also writes bench/results/peers.json.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from crm_edits import edit_hubspot, edit_salesforce, hubspot_ids, salesforce_lead_ids
from peers import configs, install
from peers.catalog import PEERS, Peer
from peers.front import Front, start_front
from peers.runner import Outcome, run
from peers.status import status_of

from sandbox.run import Sandbox, start_sandbox
from sandbox.seed import default_anchor
from sandbox.server import Fault

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("BENCH_PEERS_CACHE", ROOT / ".bench-peers"))
RESULTS = ROOT / "bench" / "results"
EDITS = 50
SEED = 3


class Edits:
    """50 fresh edits per round, each a real change (a new title), through the CRM's own API."""

    def __init__(self, sb: Sandbox) -> None:
        self.info = sb.describe()
        self.round = 0
        self._ids: dict[str, list[str]] = {}

    def apply(self, crm: str) -> int:
        if crm not in self._ids:
            self._ids[crm] = hubspot_ids(self.info) if crm == "hubspot" else salesforce_lead_ids(self.info)
        ids = self._ids[crm]
        self.round += 1
        step = max(1, len(ids) // (EDITS * 8))
        start = (self.round * EDITS * step) % max(1, len(ids) - EDITS * step)
        chosen = ids[start:start + EDITS * step:step][:EDITS]
        title = f"VP Revenue Operations (edit {self.round})"
        (edit_hubspot if crm == "hubspot" else edit_salesforce)(self.info, chosen, title)
        return len(chosen)


def reset_counts(sb: Sandbox) -> None:
    for app in (sb.hubspot.app, sb.salesforce.app):
        with app.lock:
            app.counts.clear()


def requests_made(sb: Sandbox) -> dict[str, int]:
    return {"hubspot": sb.hubspot.app.api_calls(), "salesforce": sb.salesforce.app.api_calls()}


def set_latency(sb: Sandbox, ms: int) -> None:
    for app in (sb.hubspot.app, sb.salesforce.app):
        with app.lock:
            app.faults = [Fault(endpoint="*", latency_ms=ms)] if ms else []


def row(out: Outcome, sb: Sandbox, crm: str, **extra: Any) -> dict[str, Any]:
    made = requests_made(sb)
    return {"status": status_of(out), "requests": made[crm], "records": out.total_records,
            "records_by_stream": dict(sorted(out.records.items())), "wall_s": out.wall_s, "cpu_s": out.cpu_s,
            "peak_rss_mb": out.peak_rss_mb, **extra}


# ------------------------------------------------------------------ peers
class PeerRun:
    def __init__(self, peer: Peer, sb: Sandbox, front: Front, work: Path, anchor: datetime) -> None:
        self.peer, self.sb, self.front = peer, sb, front
        self.dir = work / peer.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config = self.dir / "config.json"
        self.config.write_text(json.dumps(configs.config(peer, sb, anchor), indent=2))
        self.catalog = self.dir / "catalog.json"
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("LEADSYNC_", "PYTHON", "VIRTUAL_ENV")) and k not in ("REQUESTS_CA_BUNDLE",)}
        self.env = {**base, **front.env(), "PATH": f"{install.venv_dir(CACHE, peer) / 'bin'}:{base.get('PATH', '')}"}
        self.exe = str(install.executable(CACHE, peer))

    def _argv(self, action: str, state: Path | None = None) -> list[str]:
        if self.peer.protocol == "singer":
            if action == "discover":
                return [self.exe, "--config", str(self.config), "--discover"]
            argv = [self.exe, "--config", str(self.config), self.peer.catalog_flag, str(self.catalog)]
        else:
            if action == "discover":
                return [self.exe, "discover", "--config", str(self.config)]
            argv = [self.exe, "read", "--config", str(self.config), "--catalog", str(self.catalog)]
        return argv + (["--state", str(state)] if state else [])

    def discover(self) -> dict[str, Any]:
        reset_counts(self.sb)
        out = run(self._argv("discover"), self.env, self.dir, self.dir / "discover.stderr", keep_stdout=True)
        made = requests_made(self.sb)[self.peer.crm]
        catalog = parse_catalog(bytes(out.stdout or b""))
        if out.returncode != 0 or catalog is None:
            status = status_of(out, discover=True)
            return {"status": status if status != "ok" else "failed: discover printed no catalog", "requests": made}
        select = configs.select_singer if self.peer.protocol == "singer" else configs.select_airbyte
        try:
            self.catalog.write_text(json.dumps(select(catalog, self.peer.streams)))
        except ValueError as exc:
            return {"status": f"failed: {exc}", "requests": made}
        return {"status": "ok", "requests": made, "wall_s": out.wall_s}

    def read(self, label: str, state: Any) -> tuple[dict[str, Any], Any]:
        state_path = None
        if state is not None:
            state_path = self.dir / f"{label}.state.json"
            state_path.write_text(json.dumps(state))
        reset_counts(self.sb)
        out = run(self._argv("read", state_path), self.env, self.dir, self.dir / f"{label}.stderr")
        emitted = out.singer_state if self.peer.protocol == "singer" else list(out.airbyte_states.values()) or None
        return row(out, self.sb, self.peer.crm), emitted


def parse_catalog(stdout: bytes) -> dict[str, Any] | None:
    """A Singer discover prints the catalog (often indented); an Airbyte one a CATALOG message line."""
    try:
        whole = json.loads(stdout)
        if isinstance(whole, dict) and "streams" in whole:
            return whole
    except json.JSONDecodeError:
        pass
    for line in stdout.splitlines():
        if line.startswith(b"{") and b'"CATALOG"' in line:
            msg = json.loads(line)
            if msg.get("type") == "CATALOG":
                return msg["catalog"]
    return None


def bench_peer(pr: PeerRun, edits: Edits, latency: int) -> dict[str, Any]:
    full, state = pr.read(f"full-{latency}ms", None)
    result: dict[str, Any] = {"full": full}
    if not full["status"].startswith("ok") and state is None:
        return result  # nothing to go on from (a run that failed late still left its state)
    changed = edits.apply(pr.peer.crm)
    incremental, _ = pr.read(f"incremental-{latency}ms", state)
    result["incremental"] = {**incremental, "edits": changed, "from_state": state is not None}
    return result


# ------------------------------------------------------------------ leadsync
def bench_leadsync(sb: Sandbox, edits: Edits, work: Path, latency: int) -> dict[str, Any]:
    state_dir = Path(tempfile.mkdtemp(prefix=f"leadsync-{latency}ms-", dir=work))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADSYNC_")}
    env.update(sb.env(), LEADSYNC_STATE_URL=f"sqlite:///{state_dir}/state.db",
               LEADSYNC_HUBSPOT__BURST_LIMIT="1000000")
    out: dict[str, Any] = {}
    for crm in ("hubspot", "salesforce"):
        full = _leadsync(sb, ["backfill", "--source", crm], env, state_dir / f"backfill-{crm}", crm)
        changed = edits.apply(crm)
        incremental = _leadsync(sb, ["sync", "--once", "--source", crm], env, state_dir / f"sync-{crm}", crm)
        out[crm] = {"full": full, "incremental": {**incremental, "edits": changed}}
    return out


def _leadsync(sb: Sandbox, args: list[str], env: dict[str, str], stem: Path, crm: str) -> dict[str, Any]:
    reset_counts(sb)
    argv = [sys.executable, "-m", "sync.cli", *args, "--json"]
    out = run(argv, env, ROOT, stem.with_suffix(".stderr"), keep_stdout=True)
    try:
        summary = json.loads(bytes(out.stdout or b"{}"))
    except json.JSONDecodeError:
        summary = {}
    runs = summary.get("runs") or [summary]
    first = runs[0] if runs else {}
    result = row(out, sb, crm)
    result.update(records=summary.get("contacts_pulled", 0) + summary.get("engagements_pulled", 0),
                  records_by_stream={k: v.get("records", 0) for k, v in (first.get("streams") or {}).items()},
                  pull_requests=(first.get("calls_by_phase") or {}).get("pull"),
                  writes={"records_updated": summary.get("records_updated"),
                          "tasks_created": summary.get("tasks_created")})
    return result


# ------------------------------------------------------------------ main
def main(names: list[str]) -> dict[str, Any]:
    people = int(os.environ.get("BENCH_PEERS_PEOPLE", "8000"))
    latencies = [int(x) for x in os.environ.get("BENCH_PEERS_LATENCIES", "0,50").split(",")]
    chosen = [p for p in PEERS if not names or p.name in names]
    run_leadsync = not names or "leadsync" in names
    CACHE.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=CACHE))
    result: dict[str, Any] = {"benchmark": "peers", "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
                              "people": people, "seed": SEED, "edits": EDITS, "latencies_ms": latencies,
                              "python": sys.version.split()[0], "peers": {}, "leadsync": {}}
    ready: list[Peer] = []
    for peer in chosen:
        problem = install.ensure(CACHE, peer, CACHE / f"install-{peer.name}.log")
        result["peers"][peer.name] = {"package": peer.spec, "crm": peer.crm, "streams": list(peer.streams),
                                      "status": problem or "installed"}
        if problem is None:
            ready.append(peer)
    anchor = default_anchor()
    started = time.perf_counter()
    sb = start_sandbox(contacts=people, seed=SEED, anchor=anchor, burst_limit=1_000_000)
    front = start_front(sb, work)
    try:
        result["sandbox"] = {"seed_s": round(time.perf_counter() - started, 1),
                             "hubspot_contacts": len(sb.hubspot.contact_ids()),
                             "salesforce_leads": len(sb.salesforce.records("Lead")),
                             "salesforce_contacts": len(sb.salesforce.records("Contact"))}
        edits = Edits(sb)
        runs = {p.name: PeerRun(p, sb, front, work, anchor) for p in ready}
        for name, pr in runs.items():
            result["peers"][name]["discover"] = pr.discover()
        for latency in latencies:
            set_latency(sb, latency)
            for name, pr in runs.items():
                entry = result["peers"][name]
                if entry["discover"]["status"] != "ok":
                    entry["status"] = entry["discover"]["status"]
                    continue
                print(f"== {name} at {latency} ms", file=sys.stderr, flush=True)
                entry[f"{latency}ms"] = bench_peer(pr, edits, latency)
                entry["status"] = entry[f"{latency}ms"]["full"]["status"]
            if run_leadsync:
                print(f"== leadsync at {latency} ms", file=sys.stderr, flush=True)
                result["leadsync"][f"{latency}ms"] = bench_leadsync(sb, edits, work, latency)
        set_latency(sb, 0)
    finally:
        front.stop()
        sb.stop()
    result["table"] = table(result)
    return result


def table(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat row per tool × mode × latency, for the README."""
    rows = []
    for latency in result["latencies_ms"]:
        key = f"{latency}ms"
        for crm, data in (result["leadsync"].get(key) or {}).items():
            for mode in ("full", "incremental"):
                rows.append(_flat("leadsync", crm, mode, latency, data.get(mode)))
        for name, entry in result["peers"].items():
            data = entry.get(key)
            for mode in ("full", "incremental"):
                cell = (data or {}).get(mode) or {"status": entry["status"] if not data else "not run: full pull failed"}
                rows.append(_flat(name, entry["crm"], mode, latency, cell))
    return rows


def _flat(tool: str, crm: str, mode: str, latency: int, cell: dict[str, Any] | None) -> dict[str, Any]:
    cell = cell or {}
    pulls = cell.get("pull_requests", cell.get("requests"))  # a peer only pulls
    return {"tool": tool, "crm": crm, "mode": mode, "latency_ms": latency, "status": cell.get("status"),
            **{k: cell.get(k) for k in ("requests", "records", "wall_s", "cpu_s", "peak_rss_mb")},
            "pull_requests": pulls}


if __name__ == "__main__":
    outcome = main(sys.argv[1:])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "peers.json").write_text(json.dumps(outcome, indent=2, sort_keys=True) + "\n")
    print(json.dumps(outcome, sort_keys=True))
