"""`HubSpotConnector`: the `connectors.base.Connector` protocol over the real `hubspot-api-client`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from connectors.base import ConfigError, RawPage
from connectors.hubspot.fields import Fields
from connectors.hubspot.handoffs import Handoffs
from connectors.hubspot.lists import Lists
from connectors.hubspot.owners import Owners
from connectors.hubspot.records import Records
from connectors.hubspot.settings import HubSpotSettings
from connectors.hubspot.streams import Streams
from connectors.hubspot.transport import HubSpotError, Transport
from connectors.hubspot.writes import Writer
from mapping.model import Change, ChangeResult, CreateRecord, CreateTask, Membership, SetFields

#: Engagement streams, pulled after contacts, in this order.
ENGAGEMENT_STREAMS: tuple[str, ...] = ("page_views", "email_events", "form_submissions", "meetings")


class HubSpotConnector:
    """One HubSpot portal (one token = one tenant): pull pages, apply changes, manage leadsync's fields."""

    name: ClassVar[str] = "hubspot"
    streams: ClassVar[tuple[str, ...]] = ("contacts", "contacts_archived", *ENGAGEMENT_STREAMS, "owners")

    def __init__(self, settings: HubSpotSettings, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self._transport = Transport(settings, sleep)
        self._streams = Streams(self._transport)
        self._writer = Writer(self._transport)
        self._handoffs = Handoffs(self._transport)
        self._fields = Fields(self._transport)
        self._records = Records(self._transport)
        self._owners = Owners(self._transport)
        self._lists = Lists(self._transport)
        self._extras_checked = False

    @property
    def api_calls(self) -> int:
        """HTTP requests sent so far, retries included."""
        return self._transport.calls

    def quota(self) -> dict[str, int] | None:
        """The portal's daily API allocation as of the last response, for `leadsync status`."""
        daily = self._transport.daily
        return {"daily_limit": daily[0], "daily_remaining": daily[1]} if daily else None

    def cursor_at(self, when: datetime) -> str:
        """Watermarks are epoch milliseconds, 13 digits (they compare correctly as text)."""
        return str(int(when.timestamp() * 1000))

    def pull(self, watermarks: Mapping[str, str]) -> Iterator[RawPage]:
        """Contacts first (live, then archived), then each engagement stream, each from its own watermark."""
        self.check_extra_properties()
        yield from self._streams.contacts(watermarks.get("contacts"))
        yield from self._streams.contacts_archived(watermarks.get("contacts_archived"))
        pullers = {"page_views": self._streams.page_views, "email_events": self._streams.email_events,
                   "form_submissions": self._streams.form_submissions, "meetings": self._streams.meetings}
        for stream in ENGAGEMENT_STREAMS:
            yield from self._optional(stream, pullers[stream](watermarks.get(stream)))
        yield from self._optional("owners", self._streams.owners())

    def check_extra_properties(self) -> None:
        """`extra_properties` must all exist on contacts: a typo would otherwise read as "never answered".

        One properties list call, once per connector (one connector serves one run); unknown names are a
        `ConfigError` naming them, before anything is pulled.
        """
        if self._extras_checked or not self.settings.extra_properties:
            return
        unknown = self._fields.unknown("contacts", tuple(dict.fromkeys(self.settings.extra_properties)))
        if unknown:
            raise ConfigError("extra_properties: HubSpot has no contact properties named " + ", ".join(unknown),
                              code="UNKNOWN_PROPERTIES")
        self._extras_checked = True

    @staticmethod
    def _optional(stream: str, pages: Iterator[RawPage]) -> Iterator[RawPage]:
        """An engagement API the portal's tier or the token's scopes do not include (403) ends that stream
        with one empty page saying so in `meta["unavailable"]`; its watermark is left as it was."""
        try:
            yield from pages
        except HubSpotError as err:
            if err.status != 403:
                raise
            yield RawPage(stream, [], None, {"unavailable": f"{err.code}: {err}"})

    def apply(self, changes: Sequence[Change]) -> list[ChangeResult]:
        """Field updates in batches of 100, then tasks in batches of 100; one result per change, in order."""
        results: dict[int, ChangeResult] = {}
        updates = [(i, c) for i, c in enumerate(changes) if isinstance(c, SetFields)]
        for (i, _), result in zip(updates, self._writer.set_fields([c for _, c in updates]), strict=True):
            results[i] = result
        tasks = [(i, c) for i, c in enumerate(changes) if isinstance(c, CreateTask)]
        for (i, _), result in zip(tasks, self._writer.create_tasks([c for _, c in tasks]), strict=True):
            results[i] = result
        creates = [(i, c) for i, c in enumerate(changes) if isinstance(c, CreateRecord)]
        for (i, _), result in zip(creates, self._handoffs.create([c for _, c in creates]), strict=True):
            results[i] = result
        return [results[i] for i in range(len(changes))]

    def apply_memberships(self, changes: Sequence[Membership], batch_size: int) -> list[ChangeResult]:
        """Nurture: contacts into / out of static lists, `batch_size` per call (connectors/hubspot/lists.py)."""
        return self._lists.apply(changes, batch_size)

    def list_members(self, list_id: str) -> list[str]:
        return self._lists.members(list_id)

    def supports_links(self) -> bool:
        return True  # `leadsync_salesforce_id` is created by `ensure_fields` like the score fields

    def supports_handoffs(self) -> bool:
        return True  # `leadsync_person_key` (unique) likewise

    def find_records(self, object_type: str, keys: Sequence[str]) -> dict[str, str]:
        return self._handoffs.find(keys)

    def missing_fields(self) -> list[str]:
        """Qualified names (`contacts.leadsync_score`, `tasks.leadsync_key`) of fields not created yet."""
        return [f.qualified for f in self._fields.missing()]

    def ensure_fields(self) -> list[str]:
        return [f.qualified for f in self._fields.ensure(self.settings.field_group)]

    def find_task(self, idempotency_key: str) -> str | None:
        return self._writer.find_task(idempotency_key)

    def find_tasks(self, idempotency_keys: Sequence[str]) -> dict[str, str]:
        return self._writer.find_tasks(idempotency_keys)

    def find_task_ids(self, idempotency_keys: Sequence[str]) -> dict[str, list[str]]:
        """Every task per key, oldest first (two for one key is a duplicate)."""
        return self._writer.find_task_ids(idempotency_keys)

    def recent_tasks(self, since: datetime) -> list[tuple[str, str]]:
        """(key, task id) of leadsync's tasks created since `since`: what the duplicate check reads."""
        return self._writer.recent_tasks(int(since.timestamp() * 1000))

    def closed_tasks_since(self, since: datetime) -> dict[str, str | None]:
        """leadsync's tasks completed and modified since `since`, each with its holder (the read-back)."""
        return self._writer.closed_tasks_since(int(since.timestamp() * 1000))

    @property
    def task_settle_s(self) -> float:
        """How long a create whose answer was lost may still land (batch create is not idempotent)."""
        return self.settings.task_settle_s

    def read_fields(self, object_type: str, ids: Sequence[str], fields: Sequence[str]) -> dict[str, dict[str, Any]]:
        return self._records.read_fields(object_type, ids, fields)

    def task_states(self, crm_ids: Sequence[str]) -> dict[str, bool]:
        return self._records.task_states(crm_ids)

    def task_details(self, crm_ids: Sequence[str]) -> dict[str, tuple[bool, str | None]]:
        return self._records.task_details(crm_ids)

    def complete_tasks(self, crm_ids: Sequence[str]) -> list[str]:
        return self._records.complete_tasks(crm_ids)

    def reassign_tasks(self, owners: Mapping[str, str]) -> list[str]:
        return self._records.reassign_tasks(owners)

    def owners(self) -> dict[str, bool]:
        """Owner id → active, for routing (read once per run by the caller)."""
        return self._owners.states()

    def close(self) -> None:
        self._transport.close()
