"""`leadsync status`: the sync-health page (sync/health.py) on the terminal or as JSON, exit code included."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import typer
from rich.console import Console
from rich.table import Table

from sync import cli_context as ctx
from sync.health import health, human_age
from sync.interval import IntervalError, parse_interval
from sync.outcome import emit
from sync.persons import conflicts
from sync.safe_text import crm

out = Console()
JSON = typer.Option(False, "--json", help="Print one machine-readable JSON object.")


def status(as_json: bool = JSON,
           stale_after: str = typer.Option("1d", "--stale-after", help=(
               "A CRM whose last backfill/sync ended longer ago than this is an error: the schedule stopped "
               "(a number and a unit, e.g. 2h, 1d)."))) -> None:
    """Sync health: last run per CRM with its status, age and quota left; held failures, identity conflicts,
    killed or stopped runs. Exit 0 healthy, 4 something needs a look, 1 something needs action now."""
    try:
        stale = timedelta(seconds=parse_interval(stale_after, minimum=1))
    except IntervalError as exc:
        raise typer.BadParameter(str(exc), param_hint="--stale-after") from exc
    settings = ctx.settings()
    state = ctx.state(settings)
    page = health(state, settings.configured_sources(), datetime.now(timezone.utc), stale, len(conflicts(state)))
    if as_json:
        emit(page)
        raise typer.Exit(page["exit_code"])
    colour = {"ok": "green", "attention": "yellow"}.get(page["status"], "red")
    out.print(f"[bold]leadsync status[/]: [{colour}]{page['status']}[/]  [dim]state {crm(page['state'])}[/]")
    table = Table("CRM", "last run", "status", "ended", "calls", "daily quota left")
    for line in page["sources"]:
        if line["last_run"] is None:
            table.add_row(line["source"], "—", "never run", "", "", "")
            continue
        q = line["quota"]
        table.add_row(line["source"], f"{line['kind']} {line['last_run']}", line["run_status"],
                      human_age(line["age_s"]), str(line["api_calls"] or ""),
                      f"{q['daily_remaining']:,} of {q['daily_limit']:,}" if q else "unknown")
    out.print(table)
    out.print(f"failures held: {page['failures']['held']} (retrying: {page['failures']['retrying']}) · "
              f"identity conflicts: {page['identity_conflicts']}")
    for f in page["findings"]:
        out.print(f"  [{'red' if f['level'] == 'error' else 'yellow'}]{f['level']}[/] {crm(f['message'])}")
    if not page["findings"]:
        out.print("  nothing needs attention")
    raise typer.Exit(page["exit_code"])
