"""The emulated portal's state: object stores, property catalogue, groups, engagement streams."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sandbox.hubspot.catalog import contact_properties, meeting_properties, task_properties
from sandbox.hubspot.seeding import Streams, build, iso
from sandbox.hubspot.store import Clock, ObjectStore, Record

#: Directional association type ids (reference §4.1, §4.2): (from, to) -> HUBSPOT_DEFINED type id.
ASSOCIATION_TYPES = {("tasks", "contacts"): 204, ("tasks", "companies"): 192, ("tasks", "deals"): 216,
                     ("meetings", "contacts"): 200, ("contacts", "tasks"): 203}
TASK_ID_BASE = 71_000_000_000
DEFAULT_GROUPS = {
    "contacts": ("contactinformation", "emailinformation", "analyticsinformation", "conversioninformation",
                 "sales_properties"),
    "tasks": ("task",), "meetings": ("meeting",),
}


@dataclass
class Portal:
    stores: dict[str, ObjectStore]
    streams: Streams
    anchor: datetime
    groups: dict[str, dict[str, dict[str, object]]] = field(default_factory=dict)
    next_id: int = TASK_ID_BASE

    def new_id(self) -> str:
        self.next_id += 1
        return str(self.next_id)


def seeded_portal(seed: int, contacts: int, anchor: datetime, clock: Clock) -> Portal:
    """A portal holding the seed's HubSpot people as contacts, plus their meetings."""
    data = build(seed, contacts, anchor)
    stores = {
        "contacts": ObjectStore("contacts", contact_properties(), clock),
        "tasks": ObjectStore("tasks", task_properties(), clock),
        "meetings": ObjectStore("meetings", meeting_properties(), clock),
    }
    for cid, props in data.contacts.items():
        stores["contacts"].insert(Record(cid, props, props["createdate"], props["lastmodifieddate"]))
    for mid, props, cid in data.streams.meetings:
        stores["meetings"].insert(Record(mid, {k: v for k, v in props.items() if v is not None},
                                         props["hs_createdate"] or iso(anchor),
                                         props["hs_lastmodifieddate"] or iso(anchor), {"contacts": [cid]}))
        stores["contacts"].records[cid].associations.setdefault("meetings", []).append(mid)
    groups = {
        t: {g: {"name": g, "label": g.replace("_", " ").title(), "displayOrder": -1, "archived": False}
            for g in names}
        for t, names in DEFAULT_GROUPS.items()
    }
    return Portal(stores, data.streams, anchor, groups)
