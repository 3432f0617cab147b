"""The seeded portal's indexes, built in bulk, must equal what sorting the records gives."""

from __future__ import annotations

from datetime import datetime, timezone

from sandbox.hubspot import HubSpotEmulator


def test_seeded_indexes_are_the_sorted_ids_and_modified_keys() -> None:
    emu = HubSpotEmulator(seed=6, contacts=1500, anchor=datetime(2026, 5, 1, tzinfo=timezone.utc))
    for store in emu.portal.stores.values():
        assert store.order == sorted(int(i) for i in store.records), store.object_type
        assert store.by_modified == sorted(store._modified_key(r) for r in store.records.values()), store.object_type
        assert store.archived_order == sorted(int(i) for i in store.archived), store.object_type
    contacts = emu.portal.stores["contacts"]
    assert contacts.archived and len(contacts.by_modified) == len(contacts.records) > 1000
