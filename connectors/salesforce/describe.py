"""sObject describes, kept across runs and checked with one conditional call per run.

A describe per object per run cost a 15-minute sync about a thousand calls a day for metadata that changes
when an admin edits the org. Salesforce answers `If-Modified-Since` on Describe Global (`GET sobjects`) and on
sObject Describe with `304 Not Modified` and no body when nothing changed since that date; Describe Global's
check also covers org-wide changes (permissions, profiles, field labels) (REST API guide, "Describe Global",
"sObject Describe", "Get Object Metadata Changes"). So the describes of earlier runs come in as a plain
parameter (`load`, from the state store), one Describe Global with `If-Modified-Since` validates them all
(304), and only when it answers 200 is each object asked again, conditionally, as it is needed: a changed
describe is read again, an unchanged one answers 304. The connector saves `dump()` after the run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceGeneralError

from connectors.salesforce.transport import Transport

FORMAT = 1  # the shape of `dump()`; a cache of another shape is ignored
NOT_MODIFIED = 304
Fields = dict[str, dict[str, Any]]


class Describes:
    """Describe fields per object: read once per connector (one connector serves one run), cached across runs."""

    def __init__(self, transport: Transport, timeout_s: float) -> None:
        self.t = transport
        self.timeout_s = timeout_s
        self.fields: dict[str, Fields] = {}
        self.read_at: dict[str, datetime] = {}  # when each describe was known current (the org's clock)
        self.fresh: set[str] = set()  # known current in this connector's life
        self._loaded: Mapping[str, Any] | None = None
        self._checked = False
        self.changed = False  # something `dump()` would save differs from what was loaded

    # ------------------------------------------------------------------ across runs
    def load(self, cache: Mapping[str, Any] | None) -> None:
        """Describes saved by an earlier run; adopted at first use if they are this org's (and API version's)."""
        self._loaded = cache if cache and cache.get("format") == FORMAT else None

    def dump(self) -> dict[str, Any] | None:
        """What to keep for the next run, or None if nothing was described."""
        if not self.fields:
            return None
        return {"format": FORMAT, "org": self._org(), "objects": {
            name: {"read_at": self.read_at[name].isoformat(), "fields": fields} for name, fields in self.fields.items()}}

    def _org(self) -> str:
        return str(self.t.sf.base_url)  # instance + API version: describes differ by both

    def _adopt(self) -> None:
        """Take the loaded cache if it is this org's, then check it once: Describe Global since the oldest read."""
        if self._checked:
            return
        self._checked = True
        loaded, self._loaded = self._loaded, None
        if loaded and loaded.get("org") == self._org():
            for name, entry in (loaded.get("objects") or {}).items():
                self.fields[name] = entry["fields"]
                self.read_at[name] = datetime.fromisoformat(entry["read_at"])
        if not self.fields:
            return
        if self._get("sobjects", min(self.read_at.values()), "describe global") is None:
            self.fresh.update(self.fields)
            self._stamp(self.fields)

    # ------------------------------------------------------------------ reads
    def get(self, sobject: str, refresh: bool = False) -> Fields:
        """The object's fields by name. `refresh` asks again in this connector's life (conditionally)."""
        if refresh:
            self.fresh.discard(sobject)
        if sobject in self.fresh:
            return self.fields[sobject]
        self._adopt()
        if sobject not in self.fresh:
            body = self._get(f"sobjects/{sobject}/describe", self.read_at.get(sobject), f"describe {sobject}")
            if body is not None:
                self.fields[sobject] = {f["name"]: f for f in body["fields"]}
            self.fresh.add(sobject)
            self._stamp([sobject])
        return self.fields[sobject]

    def known(self, sobject: str) -> Fields | None:
        """The object's fields if it has ever been described (this run or a saved one), else None (no call)."""
        if sobject in self.fresh:
            return self.fields[sobject]
        if sobject in self.fields or (self._loaded is not None and sobject in (self._loaded.get("objects") or {})):
            self._adopt()
            return self.get(sobject) if sobject in self.fields else None
        return None

    def _stamp(self, names: Iterable[str]) -> None:
        at = self.t.answered_at or datetime.now(UTC)
        for name in names:
            self.read_at[name] = at
        self.changed = True

    def _get(self, path: str, since: datetime | None, what: str) -> dict[str, Any] | None:
        """GET `path`, with `If-Modified-Since` a second before `since` (HTTP dates are whole seconds, so a change
        in the same second as the read is not mistaken for one before it); None when it answers 304."""
        headers = {"If-Modified-Since": format_datetime(since - timedelta(seconds=1), usegmt=True)} if since else {}

        def op(sf: Salesforce) -> dict[str, Any] | None:
            try:
                return sf.restful(path, headers=headers, timeout=self.timeout_s)
            except SalesforceGeneralError as exc:
                if exc.status == NOT_MODIFIED:
                    return None
                raise

        return self.t.call(op, what)

