"""The emulated portal's state: object stores, property catalogue, groups, engagement streams."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sandbox import bulk
from sandbox.hubspot.catalog import OBJECT_TYPES
from sandbox.hubspot.seeding import Seeded, Streams, build, iso
from sandbox.hubspot.store import Clock, ObjectStore, Record

TASK_ID_BASE = 71_000_000_000


@dataclass
class Portal:
    stores: dict[str, ObjectStore]
    streams: Streams
    anchor: datetime
    groups: dict[str, dict[str, dict[str, object]]] = field(default_factory=dict)
    next_id: int = TASK_ID_BASE
    lists: dict[str, Any] = field(default_factory=dict)  # ILS list id -> list_routes.HubList

    def new_id(self) -> str:
        self.next_id += 1
        return str(self.next_id)

    def associate(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        """Link two live records both ways (HubSpot reads associations from either side); linking twice is a no-op."""
        for a_type, a_id, b_type, b_id in ((from_type, from_id, to_type, to_id), (to_type, to_id, from_type, from_id)):
            linked = self.stores[a_type].records[a_id].associations.setdefault(b_type, [])
            if b_id not in linked:
                linked.append(b_id)

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
    stores = {t.name: ObjectStore(t.name, t.properties(), clock, t.required, t.defaults) for t in OBJECT_TYPES}
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
        t.name: {g: {"name": g, "label": g.replace("_", " ").title(), "displayOrder": -1, "archived": False}
                 for g in t.groups}
        for t in OBJECT_TYPES
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
