"""The connector protocol and the small, typed exception hierarchy all connectors share.

A connector knows HTTP and its CRM's wire format, nothing of scoring or state.
Pulls are streams of raw pages, each with the watermark to persist once that
page is stored (incremental state is a plain parameter, as in dlt). Writes
take canonical `Change`s whose field names are already the CRM's own (the
mapping layer chose them) and return one `ChangeResult` per change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from importlib.metadata import entry_points
from typing import Any, ClassVar, Protocol, runtime_checkable

from mapping.model import Change, ChangeResult


@dataclass
class RawPage:
    """One page of raw CRM records from one stream.

    `stream` names what the records are ("contacts", "Lead", "email_events", ...);
    `cursor` is the stream's watermark to store once the page is persisted
    (None: leave the stored watermark as it is).
    """

    stream: str
    records: list[dict[str, Any]]
    cursor: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def settled(pages: Iterator[RawPage], at: Callable[[], str | None]) -> Iterator[RawPage]:
    """Hold one page back so the stream's last page carries the greater of its cursor and `at()`.

    `at()` is the stream's settled point: the time its first query ran (by the server's clock), from which
    the next sync reads again, less its overlap. Everything modified before then was in that query's answer
    (indexing lag aside, which the overlap covers), so a quiet stream's watermark moves on with each sync
    instead of staying at the last modification seen, and a burst of writes (leadsync's own writeback) is
    read back once, not by every sync. Cursors of one stream compare as text, so the greater is `max`. Only
    the last page carries it: a stream killed part-way keeps the cursor of its last stored page.
    """
    def settle(last: RawPage) -> None:
        when = at()
        if when is not None and (last.cursor is None or when > last.cursor):
            last.cursor = when

    return with_last(pages, settle)


def with_last(pages: Iterator[RawPage], finish: Callable[[RawPage], None]) -> Iterator[RawPage]:
    """The pages as they come, the last one held back until the stream ends and passed to `finish` first."""
    pending: RawPage | None = None
    for page in pages:
        if pending is not None:
            yield pending
        pending = page
    if pending is not None:
        finish(pending)
        yield pending


def http_date(value: str | None) -> datetime | None:
    """An HTTP `Date` header (RFC 9110 IMF-fixdate, one-second precision) as aware UTC; None if absent or bad."""
    if not value:
        return None
    try:
        at = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)


# ------------------------------------------------------------------ exceptions


class ConnectorError(Exception):
    """Base of every error a connector raises; carries the CRM's code when it has one."""

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status

    @property
    def transient(self) -> bool:
        """Worth the same run again later, unchanged: the CRM answered 5xx, or could not be reached, even
        after the client's own retries. An orchestrator retries such a run, never a refusal (4xx)."""
        if self.status is not None:
            return self.status >= 500
        return any(isinstance(e, OSError) for e in causes(self))


def causes(exc: BaseException) -> list[BaseException]:
    """The exception and what it was raised from (or during), outermost first."""
    out: list[BaseException] = []
    node: BaseException | None = exc
    while node is not None and node not in out:
        out.append(node)
        node = node.__cause__ or node.__context__
    return out


class AuthError(ConnectorError):
    """Credentials are wrong or expired and one re-authentication did not help."""

    transient = False  # type: ignore[assignment]  # a person must act


class QuotaExhausted(ConnectorError):
    """The daily allocation (or the run's budget) is spent: end the run as 'paused: quota'."""

    transient = False  # type: ignore[assignment]  # a pause, not a failure: the run resumes in a later window


class ConfigError(ConnectorError):
    """The CRM is missing something leadsync needs (a field, a scope): a person must act."""

    transient = False  # type: ignore[assignment]


# ------------------------------------------------------------------ protocol


@runtime_checkable
class Connector(Protocol):
    name: ClassVar[str]
    streams: ClassVar[tuple[str, ...]]  # what `pull` yields, in order
    api_calls: int  # HTTP requests sent so far, retries included

    def cursor_at(self, when: datetime) -> str:
        """This connector's watermark for a point in time (`backfill --since`)."""
        ...

    def pull(self, watermarks: Mapping[str, str]) -> Iterator[RawPage]:
        """Yield contact pages first, then engagement pages, each stream from its watermark.

        An empty mapping means a full backfill.
        """
        ...

    def apply(self, changes: Sequence[Change]) -> list[ChangeResult]:
        """Apply changes in the CRM's largest batches; one result per change, in order."""
        ...

    def missing_fields(self) -> list[str]:
        """Fields leadsync writes that the CRM does not have yet (reads only)."""
        ...

    def ensure_fields(self) -> list[str]:
        """Create the missing fields idempotently; return the ones created."""
        ...

    def find_task(self, idempotency_key: str) -> str | None:
        """The id of a task already created under this key, if any (crash recovery)."""
        ...

    def find_tasks(self, idempotency_keys: Sequence[str]) -> dict[str, str]:
        """Task ids by key for the keys that have one, in as few calls as the CRM allows."""
        ...

    def read_fields(self, object_type: str, ids: Sequence[str], fields: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Current values of `fields` on records `ids`, in batches (undo checks them before restoring)."""
        ...

    def task_states(self, crm_ids: Sequence[str]) -> dict[str, bool]:
        """Whether each task is completed (hand-off health is read back on sync)."""
        ...

    def complete_tasks(self, crm_ids: Sequence[str]) -> list[str]:
        """Mark tasks completed (undo of a run); returns the ids it could not complete."""
        ...

    def close(self) -> None: ...


def registry() -> dict[str, type]:
    """Connector classes by name, from the `leadsync.connectors` entry-point group."""
    return {ep.name: ep.load() for ep in entry_points(group="leadsync.connectors")}


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
