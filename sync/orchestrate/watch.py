"""What the watch sensor decides from each tenant's latest finished run: which paused runs to launch again
(once per pause, when the window allows) and what a person should look at. No Dagster in here.

A pause on the run's own call budget (`max_calls_per_run`, `call_budget`) is lifted by the next run, so it
is re-launched at once; a pause on the CRM's daily allocation is re-launched `QUOTA_RECHECK` after it
ended (HubSpot's day turns at midnight, Salesforce's allocation is a rolling 24 hours: a run that finds it
still spent pauses again after a call or two, and is re-launched once more an interval later).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sync.orchestrate.report import ATTENTION_TAG, KIND_TAG, PAUSE_TAG, STATUS_TAG

QUOTA_RECHECK = timedelta(hours=1)


@dataclass(frozen=True)
class Finished:
    """A tenant's latest finished run, as the sensor reads it from the Dagster instance."""

    tenant: str
    run_id: str
    succeeded: bool
    ended_at: datetime
    tags: Mapping[str, str]


@dataclass(frozen=True)
class Resume:
    """Launch this tenant's run again: `kind` sync or backfill (a backfill resumes where it stopped)."""

    tenant: str
    kind: str
    run_key: str  # one launch per paused run, however many ticks see it


def resume_due(run: Finished, now: datetime, recheck: timedelta = QUOTA_RECHECK) -> Resume | None:
    if not run.succeeded or run.tags.get(STATUS_TAG) != "paused":
        return None
    wait = timedelta(0) if run.tags.get(PAUSE_TAG) == "budget" else recheck
    if now < run.ended_at + wait:
        return None
    return Resume(run.tenant, run.tags.get(KIND_TAG, "sync"), f"resume-{run.run_id}")


def flags(run: Finished) -> list[str]:
    """One line per thing a person should look at in this run's tenant."""
    out = []
    tags = run.tags
    if not run.succeeded:
        out.append(f"{run.tenant}: run {run.run_id} failed ({tags.get(STATUS_TAG, 'error')})")
    held, conflicts = int(tags.get("leadsync/held_failures") or 0), int(tags.get("leadsync/identity_conflicts") or 0)
    if held:
        out.append(f"{run.tenant}: {held} changes held after every attempt (leadsync failures --tenant {run.tenant})")
    if conflicts:
        out.append(f"{run.tenant}: {conflicts} identity conflicts (leadsync identity conflicts --tenant {run.tenant})")
    if "quota" in tags.get(ATTENTION_TAG, "").split(","):
        out.append(f"{run.tenant}: paused on the CRM's daily API allocation")
    return out


def review(latest: Iterable[Finished], bad_config: Mapping[str, str], now: datetime,
           recheck: timedelta = QUOTA_RECHECK) -> tuple[list[Resume], list[str]]:
    """Every tenant at once: the re-launches due, and the flags (bad configurations first)."""
    resumes, lines = [], [f"{name}: configuration: {why}" for name, why in sorted(bad_config.items())]
    for run in sorted(latest, key=lambda r: r.tenant):
        due = resume_due(run, now, recheck)
        if due:
            resumes.append(due)
        lines += flags(run)
    return resumes, lines
