"""Pull streams: contacts (backfill by list, incremental by search) and engagement detail.

Each stream yields `RawPage`s whose cursor is safe to persist once that page is
stored. Sync keeps the greater of two cursors by *string* comparison, so every
cursor is a 13-digit epoch-ms string, except the contacts backfill's progress
cursor `0list:<page>:<after>:<started_ms>:<max_ms>`: its leading "0" sorts it
below any epoch-ms watermark and its zero-padded page number sorts pages in
order, so a killed backfill resumes and a finished one is superseded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import quote

from hubspot.crm.associations.v4 import (
    BatchInputPublicFetchAssociationsBatchRequest,
    PublicFetchAssociationsBatchRequest,
)
from hubspot.crm.contacts import (
    BatchReadInputSimplePublicObjectId,
    PublicObjectSearchRequest,
    SimplePublicObjectId,
)

from connectors.base import RawPage, chunks, settled, with_last
from connectors.hubspot.transport import Transport, model
from mapping.hubspot import CONTACT_PROPERTIES, EXTRA_META, parse_datetime

LIST_PREFIX = "0list:"
CONTACTS_PATH = "/crm/v3/objects/contacts"
MEETING_PROPERTIES = ("hs_timestamp", "hs_meeting_title", "hs_meeting_start_time", "hs_meeting_end_time",
                      "hs_meeting_outcome", "hs_lastmodifieddate")


def to_ms(value: str | None) -> int | None:
    at = parse_datetime(value) if value else None
    return int(at.timestamp() * 1000) if at else None


def now_ms() -> int:
    return int(time.time() * 1000)


def query_chars(properties: Sequence[str]) -> int:
    """Length of a contacts list request target: the SDK repeats `properties=` per name (reference §1.2)."""
    fixed = len(CONTACTS_PATH) + len("?limit=100&after=") + 40 + len("&archived=False")  # 40: room for `after`
    return fixed + sum(len("&properties=") + len(quote(p, safe="")) for p in properties)


def with_final_cursor(pages: Iterator[RawPage], final: Any) -> Iterator[RawPage]:
    """Hold one page back so the stream's last page carries `final()` as its cursor.

    For streams whose order does not allow a safe cursor per page (newest-first
    submissions, per-type email queries), the watermark moves only at the end.
    """
    def finish(last: RawPage) -> None:
        last.cursor = final()

    return with_last(pages, finish)


class Streams:
    def __init__(self, transport: Transport) -> None:
        self.t = transport
        self.s = transport.settings
        self._campaigns: dict[str, str] = {}
        extras = tuple(dict.fromkeys(self.s.extra_properties))
        #: Every contact property requested, once: leadsync's own, then the team's extras.
        self.properties: tuple[str, ...] = tuple(dict.fromkeys((*CONTACT_PROPERTIES, *extras)))
        #: Page meta telling the mapping which properties go into `Contact.extra`.
        self.meta: dict[str, Any] = {EXTRA_META: tuple(extras)} if extras else {}
        #: Too many properties for a GET's query string: list ids, read properties in `batch/read` bodies.
        self.read_in_body = query_chars(self.properties) > self.s.max_query_chars

    # ---------------------------------------------------------------- contacts
    def contacts(self, watermark: str | None) -> Iterator[RawPage]:
        if watermark and not watermark.startswith(LIST_PREFIX):
            yield from self.contacts_since(int(watermark))
            return
        page, after, started, max_ms = 0, None, now_ms(), 0
        if watermark:  # resume a killed backfill
            _, page_s, after, started_s, max_s = watermark.split(":")
            page, after, started, max_ms = int(page_s), after or None, int(started_s), int(max_s)
        yield from self.contacts_backfill(page, after, started, max_ms)

    def contacts_backfill(self, page: int, after: str | None, started: int, max_ms: int) -> Iterator[RawPage]:
        """The list endpoint, 100 per page: no 10k cap and no search limit (reference §2.6.4)."""
        api = self.t.api("crm.contacts.basic_api")
        listed = ["lastmodifieddate"] if self.read_in_body else list(self.properties)
        while True:
            page += 1
            _, body = self.t.call(api.get_page, limit=self.s.contacts_page_size, after=after,
                                  properties=listed, archived=False)
            records = body.get("results") or []
            if self.read_in_body and records:
                records = self._read_contacts([str(r["id"]) for r in records])
            max_ms = max([max_ms, *(to_ms(r["properties"].get("lastmodifieddate")) or 0 for r in records)])
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if after is None:  # no `paging` key on the last page (reference §2.1)
                # Anything changed while we paged has lastmodifieddate >= started: re-read it next time.
                yield RawPage("contacts", records, str(min(max_ms, started) if max_ms else started), dict(self.meta))
                return
            yield RawPage("contacts", records, f"{LIST_PREFIX}{page:09d}:{after}:{started}:{max_ms}", dict(self.meta))

    def _read_contacts(self, ids: list[str]) -> list[dict[str, Any]]:
        """The listed ids' properties through `POST …/contacts/batch/read` (properties in the body, so no 414;
        reference §2.1, §2.4), 100 ids per call, in list order. An id archived between the list and the read
        is a 207 error and simply left out: `contacts_archived` reports it."""
        api = self.t.api("crm.contacts.batch_api")
        found: dict[str, dict[str, Any]] = {}
        for part in chunks(ids, self.s.batch_size):
            req = model(BatchReadInputSimplePublicObjectId, inputs=[model(SimplePublicObjectId, id=i) for i in part],
                                                     properties=list(self.properties), properties_with_history=[])
            _, body = self.t.call(api.read, req, archived=False)
            found.update((str(r["id"]), r) for r in body.get("results") or [])
        return [found[i] for i in ids if i in found]

    def contacts_since(self, since_ms: int) -> Iterator[RawPage]:
        """Search on lastmodifieddate ≥ watermark − overlap, ascending (reference §2.6); the last page settles
        the watermark at the first search's time (`connectors.base.settled`)."""
        api = self.t.api("crm.contacts.search_api")
        started: list[int] = []

        def pages() -> Iterator[RawPage]:
            for records, cursor, total in self._search_since(api.do_search, "lastmodifieddate", self.properties,
                                                             since_ms, started):
                yield RawPage("contacts", records, str(cursor), {"total": total, **self.meta})

        yield from settled(pages(), lambda: str(started[0]) if started else None)

    def _search_since(self, search: Callable[..., Any], prop: str, properties: Sequence[str], since_ms: int,
                      started: list[int]) -> Iterator[tuple[list[dict[str, Any]], int, Any]]:
        """Pages of (new records, cursor ms, total) for `prop` ≥ since − overlap, ascending, deduped by id.

        Before `after + limit` would pass the 10,000-result cap (an HTTP 400), a new search starts
        from the last timestamp seen (reference §2.5). `started` receives when the first search was answered
        (HubSpot's `Date`, epoch ms): the stream's settled point.
        """
        low, seen, cursor, after = since_ms - self.s.overlap_ms, set[str](), since_ms, 0
        while True:
            req = model(PublicObjectSearchRequest,
                filter_groups=[{"filters": [{"propertyName": prop, "operator": "GTE", "value": str(low)}]}],
                sorts=[{"propertyName": prop, "direction": "ASCENDING"}],
                properties=list(properties), limit=self.s.search_page_size, after=str(after))
            _, body = self.t.call(search, req, search=True)
            if not started and self.t.answered_ms is not None:
                started.append(self.t.answered_ms)
            results = body.get("results") or []
            fresh = [r for r in results if r["id"] not in seen]
            seen.update(r["id"] for r in fresh)
            cursor = max([cursor, *(to_ms(r["properties"].get(prop)) or 0 for r in results)])
            nxt = ((body.get("paging") or {}).get("next") or {}).get("after")
            if fresh or nxt is None:
                yield fresh, cursor, body.get("total")
            if nxt is None:
                return
            after = int(nxt)
            if after + self.s.search_page_size > self.s.search_restart_at:
                if cursor <= low:  # more records than the cap share one millisecond: cannot narrow further
                    raise RuntimeError(f"more than {self.s.search_restart_at} records with {prop} = {low}")
                low, after = cursor, 0  # ids dedupe the records seen at `cursor` again

    def contacts_archived(self, watermark: str | None) -> Iterator[RawPage]:
        """Deleted and merged-away contacts: `?archived=true` (reference §2.6.3), which has no time filter, so
        every archived contact is paged and those archived since the watermark − overlap are kept. The stream's
        last page carries the newest `archivedAt` (ms) as cursor, or when the first page was answered if that is
        later (a contact archived while paging has a later `archivedAt`); archived records are few."""
        api = self.t.api("crm.contacts.basic_api")
        since = int(watermark) - self.s.overlap_ms if watermark else None
        newest = [int(watermark) if watermark else 0]
        # Archived contacts are never written to; when the extras would overflow the GET, they are left out
        # rather than batch-read (batch/read does not return archived records).
        properties = list(CONTACT_PROPERTIES if self.read_in_body else self.properties)
        meta = {} if self.read_in_body else self.meta

        def pages() -> Iterator[RawPage]:
            after = None
            while True:
                _, body = self.t.call(api.get_page, limit=self.s.contacts_page_size, after=after,
                                      properties=properties, archived=True)
                if after is None and self.t.answered_ms is not None:
                    newest[0] = max(newest[0], self.t.answered_ms)
                records = body.get("results") or []
                stamps = [to_ms(r.get("archivedAt")) or 0 for r in records]
                newest[0] = max([newest[0], *stamps])
                yield RawPage("contacts_archived", [r for r, at in zip(records, stamps, strict=True)
                                                    if since is None or at >= since], None, dict(meta))
                after = ((body.get("paging") or {}).get("next") or {}).get("after")
                if after is None:
                    return

        yield from with_final_cursor(pages(), lambda: str(newest[0]) if newest[0] else None)

    # -------------------------------------------------------------- page views
    def page_views(self, watermark: str | None) -> Iterator[RawPage]:
        """`/events/v3/events` for `e_visited_page`, oldest first; the cursor is the last occurredAt in ms."""
        api = self.t.api("events.events_api")
        start = parse_datetime(watermark) if watermark else None
        if start is not None:
            start = datetime.fromtimestamp(start.timestamp() - self.s.overlap_ms / 1000, UTC)
        after = None
        while True:
            _, body = self.t.call(api.get_page, object_type="contact", event_type="e_visited_page",
                                  occurred_after=start, limit=self.s.web_events_page_size, after=after,
                                  sort=["ASCENDING"])
            results = body.get("results") or []
            last = to_ms(results[-1]["occurredAt"]) if results else None
            cursor = str(last) if last is not None else watermark
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if results or after is None:
                yield RawPage("page_views", results, cursor)
            if after is None:
                return

    # ------------------------------------------------------------ email events
    def email_events(self, watermark: str | None) -> Iterator[RawPage]:
        """Legacy email events, one query per event type (SENT/DELIVERED dwarf the rest), up to a fixed end."""
        end = now_ms()
        start = int(watermark) - self.s.overlap_ms if watermark else None
        yield from with_final_cursor(self._email_pages(start, end), lambda: str(end))

    def _email_pages(self, start: int | None, end: int) -> Iterator[RawPage]:
        for event_type in self.s.email_event_types:
            offset: str | None = None
            while True:
                query: list[tuple[str, Any]] = [("eventType", event_type), ("endTimestamp", end),
                                                ("limit", self.s.email_events_page_size)]
                if start is not None:
                    query.append(("startTimestamp", start))
                if offset:
                    query.append(("offset", offset))
                body = self.t.get("/email/public/v1/events", query)
                events = body.get("events") or []
                if events:
                    yield RawPage("email_events", events, None, {"campaign_names": self._campaign_names(events)})
                offset = body.get("offset")
                if not body.get("hasMore"):
                    break

    def _campaign_names(self, events: list[dict[str, Any]]) -> dict[str, str]:
        """Campaign names for the page, one call per campaign ever seen (campaigns are few)."""
        for cid in {str(e.get("emailCampaignId")) for e in events if e.get("emailCampaignId")}:
            if cid not in self._campaigns:
                body = self.t.get(f"/email/public/v1/campaigns/{cid}", [])
                self._campaigns[cid] = str(body.get("name") or cid)
        return dict(self._campaigns)

    # -------------------------------------------------------- form submissions
    def form_submissions(self, watermark: str | None) -> Iterator[RawPage]:
        """Submissions per form, newest first (no time filter exists): stop at the watermark."""
        since = int(watermark) - self.s.overlap_ms if watermark else None
        newest = [int(watermark) if watermark else 0]

        def pages() -> Iterator[RawPage]:
            for form in self._forms():
                for page in self._submissions(form, since):
                    newest[0] = max([newest[0], *(int(r["submittedAt"]) for r in page.records)])
                    yield page

        yield from with_final_cursor(pages(), lambda: str(newest[0]) if newest[0] else None)

    def owners(self) -> Iterator[RawPage]:
        """Every owner, active then archived (old records keep archived owners), for names in the report: one
        page of up to 500 each, read once per run (there is no modified-since filter)."""
        api = self.t.api("crm.owners.owners_api")
        records: list[dict[str, Any]] = []
        for archived in (False, True):
            after = None
            while True:
                _, body = self.t.call(api.get_page, limit=500, after=after, archived=archived)
                records += [{**r, "archived": archived} for r in body.get("results") or []]
                after = ((body.get("paging") or {}).get("next") or {}).get("after")
                if after is None:
                    break
        yield RawPage("owners", records, None)

    def _forms(self) -> Iterator[dict[str, Any]]:
        api = self.t.api("marketing.forms.forms_api")
        after = None
        while True:
            _, body = self.t.call(api.get_page, limit=self.s.forms_page_size, after=after)
            yield from body.get("results") or []
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if after is None:
                return

    def _submissions(self, form: dict[str, Any], since: int | None) -> Iterator[RawPage]:
        meta = {"form_id": form["id"], "form_name": form.get("name") or ""}
        after = None
        while True:
            query: list[tuple[str, Any]] = [("limit", self.s.submissions_page_size)]
            if after:
                query.append(("after", after))
            body = self.t.get(f"/form-integrations/v1/submissions/forms/{form['id']}", query)
            results = body.get("results") or []
            fresh = [r for r in results if since is None or int(r["submittedAt"]) >= since]
            if fresh:
                yield RawPage("form_submissions", fresh, None, dict(meta))
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if after is None or len(fresh) < len(results):
                return

    # ---------------------------------------------------------------- meetings
    def meetings(self, watermark: str | None) -> Iterator[RawPage]:
        """Backfill: the list endpoint with associations. Incremental: search, then associations in batch."""
        if watermark:
            yield from self._meetings_since(int(watermark))
            return
        api = self.t.api("crm.objects.meetings.basic_api")
        newest = [0]

        def pages() -> Iterator[RawPage]:
            after = None
            while True:
                _, body = self.t.call(api.get_page, limit=self.s.meetings_page_size, after=after,
                                      properties=list(MEETING_PROPERTIES), associations=["contacts"])
                results = body.get("results") or []
                newest[0] = max([newest[0], *(to_ms(r["properties"].get("hs_lastmodifieddate")) or 0
                                              for r in results)])
                if results:
                    yield RawPage("meetings", results, None)
                after = ((body.get("paging") or {}).get("next") or {}).get("after")
                if after is None:
                    return

        yield from with_final_cursor(pages(), lambda: str(newest[0]) if newest[0] else None)

    def _meetings_since(self, since_ms: int) -> Iterator[RawPage]:
        """Search results carry no associations: one v4 batch read per page adds them (reference §4.2)."""
        api = self.t.api("crm.objects.search_api")
        started: list[int] = []

        def pages() -> Iterator[RawPage]:
            for records, cursor, total in self._search_since(partial(api.do_search, "meetings"), "hs_lastmodifieddate",
                                                             MEETING_PROPERTIES, since_ms, started):
                if records:
                    self._attach_contacts(records)
                yield RawPage("meetings", records, str(cursor), {"total": total})

        yield from settled(pages(), lambda: str(started[0]) if started else None)

    def _attach_contacts(self, meetings: list[dict[str, Any]]) -> None:
        api = self.t.api("crm.associations.v4.batch_api")
        req = model(BatchInputPublicFetchAssociationsBatchRequest,
            inputs=[model(PublicFetchAssociationsBatchRequest, id=m["id"]) for m in meetings])
        _, body = self.t.call(api.get_page, "meetings", "contacts", req)
        linked = {str(r["from"]["id"]): r.get("to") or [] for r in body.get("results") or []}
        for m in meetings:
            results = [{"id": str(t["toObjectId"]), "type": "meeting_event_to_contact"} for t in linked.get(m["id"], [])]
            m["associations"] = {"contacts": {"results": results}}
