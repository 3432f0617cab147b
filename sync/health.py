"""`leadsync status`: the sync-health page of the command line, from the state store alone (no CRM calls).

Per CRM: the last backfill/sync with its status and age, the daily API quota left at its end, and whether
it is overdue; then what a person must look at: failures held after every attempt, identity conflicts,
runs that were killed or stopped and are not yet followed by a good one. Each finding carries a level;
the worst one is the page's `status` and its exit code, so cron or a monitor can alert on it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sync.outcome import FAILED, OK, PARTIAL
from sync.state import State

#: Finding levels, worst first: `error` needs action now (exit 1), `warning` needs a look (exit 4).
LEVEL_EXIT = {"error": FAILED, "warning": PARTIAL, "ok": OK}
RUN_KINDS = ("backfill", "sync")


@dataclass(frozen=True, slots=True)
class Finding:
    level: str  # error | warning
    what: str  # a short key a monitor can match on
    message: str  # one line for a person


def _age(at: str | None, now: datetime) -> float | None:
    return round((now - datetime.fromisoformat(at)).total_seconds(), 1) if at else None


def span(seconds: float) -> str:
    """`3.2h`, `2.0d`, `45s`: a duration as people read it."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def human_age(seconds: float | None) -> str:
    """`3.2h ago`, or `never`."""
    return "never" if seconds is None else f"{span(seconds)} ago"


def _last_run(state: State, source: str) -> dict[str, Any] | None:
    """The newest backfill or sync of `source` (a plan or undo says nothing about the schedule)."""
    runs = [r for k, r in state.last_runs().items() if k.split(":")[0] == source and r["kind"] in RUN_KINDS]
    return max(runs, key=lambda r: (r["started_at"], r["id"])) if runs else None


def source_health(state: State, source: str, now: datetime, stale_after: timedelta
                  ) -> tuple[dict[str, Any], list[Finding]]:
    """One CRM's line of the page, and what is wrong with it."""
    last = _last_run(state, source)
    findings: list[Finding] = []
    if last is None:
        return {"source": source, "last_run": None}, [Finding("warning", "never_synced",
                                                              f"{source}: no backfill or sync has run yet")]
    ended = last["finished_at"] or last["started_at"]
    age = _age(ended, now)
    status = last["status"]
    summary = last["summary"]
    line = {"source": source, "last_run": last["id"], "kind": last["kind"], "run_status": status,
            "started_at": last["started_at"], "finished_at": last["finished_at"], "age_s": age,
            "quota": summary.get("quota"), "message": summary.get("message"),
            "failed": summary.get("failed", 0), "api_calls": summary.get("api_calls")}
    where = f"{source}: last {last['kind']} {last['id']}"
    if status in ("error", "killed", "refused"):
        findings.append(Finding("error", f"last_run_{status}", f"{where} ended {status}: {summary.get('message') or ''}"
                                .rstrip(": ")))
    elif status == "running" and age is not None and age > stale_after.total_seconds():
        findings.append(Finding("error", "run_stuck", f"{where} has been running since {last['started_at']}"))
    elif status == "stopped" or status.startswith("paused"):
        findings.append(Finding("warning", f"last_run_{status.split(':')[0]}",
                                f"{where} ended {status}; the next run continues from there"))
    elif status == "ok with failures":
        findings.append(Finding("warning", "last_run_partial", f"{where}: the CRM rejected {line['failed']} writes"))
    if status != "running" and age is not None and age > stale_after.total_seconds():
        findings.append(Finding("error", "stale", f"{source}: nothing has run for {span(age)} (more than "
                                f"{span(stale_after.total_seconds())}); is the schedule running?"))
    quota = line["quota"]
    if quota and quota["daily_limit"] and quota["daily_remaining"] < 0.1 * quota["daily_limit"]:
        findings.append(Finding("warning", "quota_low", f"{source}: {quota['daily_remaining']:,} of "
                                f"{quota['daily_limit']:,} daily API calls left"))
    return line, findings


def health(state: State, sources: list[str], now: datetime, stale_after: timedelta,
           identity_conflicts: int) -> dict[str, Any]:
    """The whole page as one JSON-ready dict, `status` and `exit_code` included."""
    killed_now = state.mark_killed_runs()  # runs whose process died are dead, not running
    known = sorted(set(sources) | {r["source"] for r in state.last_runs().values() if r["kind"] in RUN_KINDS})
    lines, findings = [], []
    for source in known:
        line, found = source_health(state, source, now, stale_after)
        lines.append(line)
        findings += found
    failures = state.failures()
    held = [f for f in failures if f["status"] == "held"]
    if held:
        findings.append(Finding("warning", "failures_held", f"{len(held)} changes held after every attempt: "
                                "`leadsync failures` shows them, `--retry` tries them again"))
    if identity_conflicts:
        findings.append(Finding("warning", "identity_conflicts", f"{identity_conflicts} identity conflicts to "
                                "settle: `leadsync identity conflicts`"))
    troubled = state.runs_with_status(["killed", "stopped", "running"], limit=20)
    worst = min((f.level for f in findings), key=list(LEVEL_EXIT).index, default="ok")
    return {
        "status": {"error": "error", "warning": "attention", "ok": "ok"}[worst],
        "exit_code": LEVEL_EXIT[worst],
        "checked_at": now.isoformat(), "stale_after_s": stale_after.total_seconds(),
        "state": state.describe_url(), "sources": lines,
        "failures": {"held": len(held), "retrying": len(failures) - len(held)},
        "identity_conflicts": identity_conflicts,
        "runs_killed_or_stopped": [{"id": r["id"], "kind": r["kind"], "source": r["source"], "status": r["status"],
                                    "started_at": r["started_at"]} for r in troubled],
        "marked_killed_now": killed_now,
        "findings": [asdict(f) for f in findings],
    }
