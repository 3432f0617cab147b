"""What a command's exit code and its JSON `status` say: one vocabulary for every command and monitor.

A monitor (cron mail, a CI job, a systemd unit) reads the exit code; a dashboard reads `status`. Both say
the same thing, worst first when a sync ran over several CRMs. The README's exit-code table is this file.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any

OK = 0  # the command did its job
FAILED = 1  # a run ended in error (credentials, the CRM refusing), or the command could not do its job
USAGE = 2  # bad settings, config file, scoring model or arguments; or refused (e.g. needs --new-state)
BUSY = 3  # another leadsync run holds a CRM's writer lock; that CRM was left alone this time
PARTIAL = 4  # finished, but the CRM rejected some records (see `leadsync failures`) or a quota paused it
STOPPED = 5  # stopped on request (Ctrl-C / SIGTERM) after the batch in hand; the next run continues

#: Top-level `status` words, worst first, with their exit codes.
STATUS_EXIT: dict[str, int] = {
    "error": FAILED, "refused": USAGE, "stopped": STOPPED, "busy": BUSY, "paused": PARTIAL, "partial": PARTIAL,
    "ok": OK,
}
_RANK = {word: i for i, word in enumerate(STATUS_EXIT)}


def word(run_status: str) -> str:
    """A run's stored status (`ok with failures`, `paused: quota`, …) as a top-level status word."""
    if run_status == "ok":
        return "ok"
    if run_status == "ok with failures":
        return "partial"
    if run_status.startswith("paused"):
        return "paused"
    if run_status in ("stopped", "refused"):
        return run_status
    return "error"  # error, killed, and anything unforeseen: never reported as fine


def overall(run_statuses: Iterable[str], busy: bool = False) -> str:
    """The worst of these runs (and of a CRM left out because it was locked)."""
    words = [word(s) for s in run_statuses] + (["busy"] if busy else [])
    return min(words, key=_RANK.__getitem__) if words else "ok"


def transient(exc: BaseException) -> bool:
    """Whether the same run may succeed later, unchanged (an orchestrator retries it; a person need not act):
    a CRM that failed or was unreachable after its client's retries, a state database that went away."""
    import psycopg

    from connectors.base import ConnectorError, causes

    if isinstance(exc, ConnectorError):
        return exc.transient
    return any(isinstance(e, OSError | psycopg.OperationalError) for e in causes(exc))


def exit_code(status: str) -> int:
    return STATUS_EXIT.get(status, FAILED)


def emit(obj: dict[str, Any], status: str | None = None) -> None:
    """One JSON object on stdout, always with a top-level `status` (`ok` unless said, or already there)."""
    body = dict(obj)
    if status is not None:
        body["status"] = status
    body.setdefault("status", "ok")
    sys.stdout.write(json.dumps(body, indent=2, sort_keys=True, default=str) + "\n")
