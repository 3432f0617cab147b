"""The side-by-side table as Markdown, for the README: `python bench/peers/markdown.py [bench/results/peers.json]`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

DEFAULT = Path(__file__).resolve().parents[1] / "results" / "peers.json"


def render(result: dict[str, Any]) -> str:
    """One row per tool × CRM × run; wall time at each latency side by side, the rest at the first latency."""
    latencies = result["latencies_ms"]
    lines = [f"{result['date']}, {result['people']:,} people (seed {result['seed']}: "
             f"{result['sandbox']['hubspot_contacts']:,} HubSpot contacts, {result['sandbox']['salesforce_leads']:,} "
             f"Salesforce Leads, {result['sandbox']['salesforce_contacts']:,} Contacts), {result['edits']} edits "
             "before each incremental.", "",
             "| tool | CRM | run | requests (pull) | records | wall s at " + " / ".join(f"{x} ms" for x in latencies)
             + " | CPU s | peak RSS MB | status |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    rows: dict[tuple[str, str, str], dict[int, dict[str, Any]]] = {}
    for r in result["table"]:
        rows.setdefault((r["tool"], r["crm"], r["mode"]), {})[r["latency_ms"]] = r
    for (tool, crm, mode), by_latency in rows.items():
        r = by_latency[latencies[0]]
        ran = r["records"] is not None
        requests = "" if not ran else (f"{r['requests']:,}" if r["pull_requests"] == r["requests"]
                                       else f"{r['requests']:,} ({r['pull_requests']:,})")
        walls = " / ".join(_num(by_latency.get(x, {}).get("wall_s")) for x in latencies) if ran else ""
        cells = [tool, crm, mode, requests, f"{r['records']:,}" if ran else "", walls, _num(r["cpu_s"]),
                 _num(r["peak_rss_mb"]), r["status"] or ""]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    print(render(json.loads(path.read_text())))
