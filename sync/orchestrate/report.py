"""What one tenant's run tells its orchestrator: whether it succeeded, may be retried, or needs a person;
its summary as metadata; and the run tags a sensor and the run list filter on. No Dagster in here.

A `paused: quota` run did its job (the next run continues from the stored watermarks): it succeeds. A
refusal, bad settings or credentials need a person: they fail and are never retried. A transient error
(the CRM unreachable or 5xx after the client's own retries, the state database gone, another run holding
the tenant's writer lock) fails in a way the retry policy may try again.
"""

from __future__ import annotations

import resource
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sync import outcome
from sync.runner import TenantRun

TENANT_TAG = "leadsync/tenant"  # every run carries it: the run-queue limit of one run per tenant keys on it
KIND_TAG = "leadsync/kind"  # sync | backfill
STATUS_TAG = "leadsync/status"  # the outcome word (sync/outcome.py), set when the run ends
PAUSE_TAG = "leadsync/pause"  # budget (this run's call budget) | quota (the CRM's daily allocation)
ATTENTION_TAG = "leadsync/attention"  # what a person should look at: held_failures, identity_conflicts …
SINCE_TAG = "leadsync/since"  # a backfill's `since` when launched as a Dagster backfill (tags, not config)
FLEET = "all"  # the tenant tag of the one-run-every-tenant backfill

#: Codes of a pause that a fresh run lifts at once: the run's own call budget, not the CRM's allocation.
BUDGET_CODES = frozenset({"BUDGET", "CALL_BUDGET"})


@dataclass(frozen=True)
class Verdict:
    """`success`, `retry` (a transient failure) or `fail` (a person must act), and why."""

    outcome: str
    message: str

    @property
    def success(self) -> bool:
        return self.outcome == "success"


def verdict(run: TenantRun) -> Verdict:
    status = run.status
    if status in ("ok", "partial", "paused"):
        return Verdict("success", status)
    if status == "busy":
        return Verdict("retry", f"another run holds the writer lock of {', '.join(run.busy)}")
    errors = [s for s in run.summaries if outcome.word(s.status) in ("error", "refused", "stopped")]
    text = "; ".join(f"{s.source}: {s.status}: {s.message}" for s in errors) or status
    if status == "stopped" or (status == "error" and all(s.transient for s in errors
                                                          if outcome.word(s.status) == "error")):
        return Verdict("retry", text)
    return Verdict("fail", text)


def exception_verdict(exc: BaseException) -> Verdict:
    """A run that never got going (its state unreachable, its model unreadable): retried only if transient."""
    return Verdict("retry" if outcome.transient(exc) else "fail", f"{type(exc).__name__}: {exc}")


def pause_kind(run: TenantRun) -> str | None:
    """`budget` when every pause is a per-run call budget (a new run may start at once), `quota` when one
    is the CRM's allocation (wait for its window), None when nothing paused."""
    codes = [s.code for s in run.summaries if s.status.startswith("paused")]
    if not codes:
        return None
    return "budget" if all(c in BUDGET_CODES for c in codes) else "quota"


def attention(held_failures: int, identity_conflicts: int, run: TenantRun | None = None) -> list[str]:
    found = []
    if held_failures:
        found.append("held_failures")
    if identity_conflicts:
        found.append("identity_conflicts")
    if run is not None and pause_kind(run) == "quota":
        found.append("quota")
    return found


def run_tags(run: TenantRun, held_failures: int, identity_conflicts: int) -> dict[str, str]:
    """Tags set on the Dagster run when it ends: the sensor and the run list read these, not the state."""
    tags = {STATUS_TAG: run.status, "leadsync/held_failures": str(held_failures),
            "leadsync/identity_conflicts": str(identity_conflicts)}
    kind = pause_kind(run)
    if kind:
        tags[PAUSE_TAG] = kind
    flags = attention(held_failures, identity_conflicts, run)
    if flags:
        tags[ATTENTION_TAG] = ",".join(flags)
    return tags


def metadata(run: TenantRun, held_failures: int, identity_conflicts: int) -> dict[str, Any]:
    """The run's summary as Dagster metadata (plain values: Dagster renders dicts and lists as JSON)."""
    by_source = {s.source: s for s in run.summaries}
    return {
        "tenant": run.tenant,
        "status": run.status,
        "runs": {src: {"run_id": s.run_id, "status": s.status, "message": s.message or ""}
                 for src, s in by_source.items()},
        "calls_by_phase": {src: dict(s.calls_by_phase) for src, s in by_source.items()},
        "api_calls": sum(s.api_calls for s in run.summaries),
        "contacts_pulled": sum(s.contacts_pulled for s in run.summaries),
        "stage_changes": {src: dict(sorted(s.stage_changes.items())) for src, s in by_source.items()},
        "records_updated": sum(s.records_updated for s in run.summaries),
        "tasks_created": sum(s.tasks_created for s in run.summaries),
        "records_created": sum(s.records_created for s in run.summaries),
        "failed": sum(s.failed for s in run.summaries),
        "quota_left": {src: _left(s.quota) for src, s in by_source.items()},
        "busy": list(run.busy),
        "held_failures": held_failures,
        "identity_conflicts": identity_conflicts,
        "peak_rss_mb": peak_rss_mb(),
    }


def _left(quota: Mapping[str, int] | None) -> int | None:
    return quota.get("daily_remaining") if quota else None


def peak_rss_mb() -> float:
    """This process's peak resident memory: one worker's, under the multiprocess executor."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
