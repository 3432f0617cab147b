"""A preview (sync/preview.py) for a person at a terminal. Every CRM value passes through `crm()`."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from sync.safe_text import crm


def print_preview(p: dict[str, Any], con: Console, guard_share: float | None = None) -> None:
    share = p["share_moving_stage"]
    con.print(f"[bold]preview[/] with model {crm(p['model'])}: {p['persons_moving_stage']:,} of {p['persons']:,} "
              f"persons would change stage ({share:.0%}); {p['persons_changed']:,} would get new values")
    if guard_share is not None and share > guard_share:
        con.print(f"  [yellow]above safety.max_stage_moves_share = {guard_share:g}[/]: applying it needs "
                  "`leadsync sync --once --rescore --yes` (or a higher share)")
    if p["fields"]:
        con.print("  fields: " + ", ".join(f"{crm(k)} {v:,}" for k, v in p["fields"].items()))
    if p["tasks_by_owner"]:
        con.print("  tasks by owner: " + ", ".join(f"{crm(k)} {v:,}" for k, v in p["tasks_by_owner"].items()))
    if p["handoffs"]:
        con.print("  hand-offs (records to create): " + ", ".join(f"{k} {v:,}" for k, v in p["handoffs"].items()))
    if not p["most_affected"]:
        return
    table = Table("person", "stage", "score", "why (points now; was)", title="most affected")
    for m in p["most_affected"]:
        stage = f"{m['stage']['from'] or 'none'} → {m['stage']['to']}" if m["stage"]["to"] else "unchanged"
        before = "–" if m["score"]["from"] is None else str(m["score"]["from"])
        score = f"{before} → {m['score']['to']} ({m['score']['change']:+d})"
        changed = m["reasons_changed"] or [{"text": r["text"], "after": r["points"], "before": None}
                                          for r in m["reasons"]]
        why = "\n".join(f"{c['after']:+d} {crm(c['text'])}" + ("" if c["before"] is None else f" (was {c['before']:+d})")
                        for c in changed[:4])
        table.add_row(crm(", ".join(m["emails"]) or m["records"][0]), stage, score, why)
    con.print(table)
