"""Saving and loading a portal's mutable state, so a restarted emulator keeps what a test wrote.

What is saved: every object store's records (live and archived, with history and associations), the
custom property definitions, property groups and the id counter. Engagement streams (web events,
email events, form submissions) are not: they are a pure function of the seed and never mutated.
Files are written atomically (temporary file + rename), so a crash mid-save leaves the previous one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import orjson

from sandbox.hubspot.catalog import PropertyDef
from sandbox.hubspot.list_routes import HubList
from sandbox.hubspot.portal import Portal
from sandbox.hubspot.store import ObjectStore, Record

VERSION = 1


def snapshot(portal: Portal) -> dict[str, Any]:
    """The portal's mutable state, ready for `orjson.dumps` (records and definitions stay dataclasses)."""
    return {
        "version": VERSION, "next_id": portal.next_id, "groups": portal.groups,
        "stores": {t: _store_state(s) for t, s in portal.stores.items()},
        "lists": list(portal.lists.values()),
    }


def _store_state(store: ObjectStore) -> dict[str, Any]:
    """Dataclasses as they are: orjson serialises them natively, ten times faster than `asdict` copies."""
    return {
        "custom_properties": [d for d in store.defs.values() if not d.hubspot_defined],
        "records": [store.records[str(i)] for i in store.order],
        "archived": [store.archived[str(i)] for i in store.archived_order],
    }


def restore(portal: Portal, state: dict[str, Any]) -> None:
    """Replace the seeded records with saved ones; custom properties and groups are added back."""
    if state.get("version") != VERSION:
        raise ValueError(f"unsupported sandbox state version {state.get('version')!r}")
    portal.next_id = max(portal.next_id, int(state["next_id"]))
    for object_type, groups in (state.get("groups") or {}).items():
        portal.groups.setdefault(object_type, {}).update(groups)
    for saved_list in state.get("lists") or []:
        portal.lists[saved_list["list_id"]] = HubList(**saved_list)
    for object_type, saved in (state.get("stores") or {}).items():
        store = portal.stores.get(object_type)
        if store is not None:
            _restore_store(store, saved)


def _restore_store(store: ObjectStore, saved: dict[str, Any]) -> None:
    for d in saved.get("custom_properties") or []:
        store.defs[d["name"]] = PropertyDef(**{**d, "options": tuple(d.get("options") or ())})
    store.records.clear()
    store.order.clear()
    store.by_modified.clear()
    store.archived.clear()
    store.archived_order.clear()
    for rec in saved.get("records") or []:
        store.insert(Record(**rec))
    for rec in saved.get("archived") or []:
        store.insert_archived(Record(**rec))


def save(portal: Portal, path: str) -> None:
    """Write the snapshot atomically: a temporary file in the same directory, then rename over the old one."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    data = orjson.dumps(snapshot(portal))
    fd, tmp = tempfile.mkstemp(prefix=target.name, suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: str) -> dict[str, Any] | None:
    """The saved snapshot, or None when there is no file yet (first start)."""
    target = Path(path)
    if not target.exists():
        return None
    return orjson.loads(target.read_bytes())
