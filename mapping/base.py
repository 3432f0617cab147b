"""Small result types every per-CRM mapping module returns.

Mapping never drops a record because one value is bad: the value becomes None
and a `MappingIssue` says which record and field, so sync can report it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from mapping.model import Contact, Engagement, Opportunity, Owner, StageEntry

#: How much of a bad value an issue quotes: enough to find it in the CRM, never a 200 KB blob.
SHOWN_MAX = 80


def shown(value: Any) -> str:
    """A bad value as an issue quotes it: its repr, cut to SHOWN_MAX characters."""
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**SHOWN_MAX else f"<{value.bit_length()}-bit int>"
    return text if len(text) <= SHOWN_MAX else text[: SHOWN_MAX - 1] + "…"


#: Control characters no CRM text field should get: NUL ends strings in some backends and XML 1.0 forbids
#: the rest; tab and line breaks stay.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def crm_text(value: str, limit: int) -> str:
    """Text for a CRM text field of at most `limit` characters: control characters dropped, a longer
    text cut with "…" as its last character, so the CRM never refuses (or truncates) it silently."""
    text = _CONTROL.sub("", value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
    stage_entries: list[StageEntry] = field(default_factory=list)  # history the CRM keeps (sync/state stores it)
    opportunities: list[Opportunity] = field(default_factory=list)
    owners: list[Owner] = field(default_factory=list)  # CRM users, for names in the report
