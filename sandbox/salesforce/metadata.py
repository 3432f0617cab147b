"""When each object's metadata last changed, for `If-Modified-Since` on Describe Global and sObject Describe.

Salesforce answers `304 Not Modified` with no body when no object's metadata changed since the header's date
(REST API guide, "Describe Global", "sObject Describe"). The emulator cannot be told about every schema edit
(tests add fields through `add_custom_field` or edit `SObjectDef.fields` directly), so it notices them: each
object's describe is fingerprinted whenever it is asked for, and a new fingerprint stamps that moment as the
object's last change. Until the first change, metadata dates from `since` (the seed's anchor: the org's
schema predates its data).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from sandbox.salesforce.schema import SObjectDef


def _fingerprint(obj: SObjectDef) -> int:
    return hash(repr(sorted(obj.fields.items())))


class MetadataClock:
    def __init__(self, schema: Mapping[str, SObjectDef], since: datetime,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.schema = schema
        self.now = now
        self.seen: dict[str, tuple[int, datetime]] = {name: (_fingerprint(o), since) for name, o in schema.items()}

    def changed_at(self, name: str) -> datetime:
        fingerprint = _fingerprint(self.schema[name])
        old = self.seen.get(name)
        if old is None or old[0] != fingerprint:
            self.seen[name] = (fingerprint, self.now())
        return self.seen[name][1]

    def last_change(self) -> datetime:
        return max(self.changed_at(name) for name in self.schema)


def not_modified(header: str | None, changed_at: datetime) -> bool:
    """`If-Modified-Since: header` and nothing changed after it (an unreadable date is ignored, as HTTP says)."""
    if not header:
        return False
    try:
        since = parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError):
        return False
    since = since if since.tzinfo else since.replace(tzinfo=UTC)
    return changed_at.replace(microsecond=0) <= since
