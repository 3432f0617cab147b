"""The emulated portal's state: object stores, property catalogue, groups, engagement streams."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sandbox import bulk
from sandbox.hubspot.catalog import contact_properties, meeting_properties, task_properties
from sandbox.hubspot.seeding import Seeded, Streams, build, iso
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

    def merge(self, primary_id: str, loser_id: str, at: str | None = None) -> Record | None:
        """Merge contact `loser_id` into `primary_id`: the loser is archived, the primary keeps its id and gains
        `hs_merged_object_ids` and the loser's email as an additional email; associations move to the primary.
        None when either is not a live contact (or they are the same)."""
        store = self.stores["contacts"]
        primary, loser = store.records.get(primary_id), store.records.get(loser_id)
        if primary is None or loser is None or primary is loser:
            return None
        merged = [i for i in (primary.properties.get("hs_merged_object_ids") or "").split(";") if i]
        values = {"hs_merged_object_ids": ";".join([*merged, loser_id])}
        extra = [e for e in (primary.properties.get("hs_additional_emails") or "").split(";") if e]
        if loser.properties.get("email"):
            values["hs_additional_emails"] = ";".join([*extra, loser.properties["email"]])
        store.archive(loser_id, at)
        loser.properties.pop("email", None)  # the primary holds it now (emails are unique among live contacts)
        if at is None:
            store.update(primary, values)
        else:  # seeding: the merge happened at `at`, not now
            store.set_system(primary, values, at)
        for to_type, ids in loser.associations.items():
            for other_id in ids:
                other = self.stores[to_type].records.get(other_id) if to_type in self.stores else None
                if other is not None:
                    linked = other.associations.get("contacts", [])
                    other.associations["contacts"] = [primary_id if i == loser_id else i for i in linked]
                primary.associations.setdefault(to_type, []).append(other_id)
        return primary


def seeded_portal(seed: int, contacts: int, anchor: datetime, clock: Clock, data: Seeded | None = None) -> Portal:
    """A portal holding the seed's HubSpot people as contacts, plus their meetings (`data`: built ahead)."""
    with bulk.paused_gc(contacts):
        return _seeded_portal(seed, contacts, anchor, clock, data)


def _seeded_portal(seed: int, contacts: int, anchor: datetime, clock: Clock, data: Seeded | None) -> Portal:
    data = data or build(seed, contacts, anchor)
    stores = {
        "contacts": ObjectStore("contacts", contact_properties(), clock),
        "tasks": ObjectStore("tasks", task_properties(), clock),
        "meetings": ObjectStore("meetings", meeting_properties(), clock),
    }
    for store in stores.values():
        store.deferred = True  # one sort at the end, not an insort per record
    for cid, props in data.contacts.items():
        stores["contacts"].insert(Record(cid, props, props["createdate"], props["lastmodifieddate"]))  # type: ignore[arg-type]
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
    portal = Portal(stores, data.streams, anchor, groups)
    _archive_some(portal)
    for store in stores.values():
        store.reindex()
    return portal


#: Every DELETED_EVERY-th seeded contact (by position) is deleted, every MERGED_EVERY-th merged into its
#: predecessor: a realistic portal has both, and leadsync must stop writing to them.
DELETED_EVERY, MERGED_EVERY = 41, 53


def _archive_some(portal: Portal) -> None:
    """Archive a deterministic few seeded contacts (archivedAt a few days before the anchor); a merged-away
    contact's web events move to the primary, as HubSpot merges timelines."""
    contacts, anchor = portal.stores["contacts"], portal.anchor
    ids = sorted(contacts.records, key=int)
    merges = [(ids[k - 1], ids[k]) for k in range(MERGED_EVERY - 1, len(ids), MERGED_EVERY)]
    deleted = [ids[k] for k in range(DELETED_EVERY - 1, len(ids), DELETED_EVERY)]
    for n, cid in enumerate(deleted):
        contacts.archive(cid, iso(anchor - timedelta(days=2 + n % 5, hours=n % 24)))
    moved = portal.streams.moved  # web events render with the primary's id
    for n, (winner, loser) in enumerate(merges):
        if portal.merge(winner, loser, iso(anchor - timedelta(days=1 + n % 3, minutes=n))) is not None:
            moved[loser] = winner
