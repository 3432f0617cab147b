"""Small result types every per-CRM mapping module returns.

Mapping never drops a record because one value is bad: the value becomes None
and a `MappingIssue` says which record and field, so sync can report it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mapping.model import Contact, Engagement


@dataclass(frozen=True, slots=True)
class MappingIssue:
    """One value that could not be mapped; the record was kept with the field set to None."""

    source: str
    record_id: str
    field: str
    message: str


@dataclass(slots=True)
class MappedPage:
    """The canonical records from one raw page, plus what could not be mapped cleanly."""

    contacts: list[Contact] = field(default_factory=list)
    engagements: list[Engagement] = field(default_factory=list)
    issues: list[MappingIssue] = field(default_factory=list)
