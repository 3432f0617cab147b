"""Archived (deleted) and merged contacts: the emulator's archive, and leadsync never writing to them."""

from __future__ import annotations

import json
import re
from datetime import datetime

import pytest
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectId,
    PublicMergeInput,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInput,
    SimplePublicObjectId,
)
from hubspot.crm.contacts.exceptions import NotFoundException

from mapping.hubspot import map_page
from scoring.loader import default_model
from sync.engine import Engine
from sync.state import State

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_seeded_portal_has_deleted_and_merged_contacts_listed_only_as_archived(shared_emu, sdk):
    api = sdk(shared_emu).crm.contacts.basic_api
    archived = api.get_page(limit=100, archived=True, properties=["email", "lifecyclestage"])
    ids = [r.id for r in archived.results]
    assert ids == shared_emu.archived_contact_ids() and len(ids) >= 10
    assert all(r.archived and r.archived_at is not None for r in archived.results)
    raw = next(r for r in _list(shared_emu, archived=True)["results"])
    assert raw["archived"] is True and ISO_MS.match(raw["archivedAt"])
    live = set(shared_emu.contact_ids())
    assert live.isdisjoint(ids)
    winners = [i for i in shared_emu.contact_ids() if shared_emu.contact(i).get("hs_merged_object_ids")]
    assert winners
    for winner in winners:
        losers = shared_emu.contact(winner)["hs_merged_object_ids"].split(";")
        assert set(losers) <= set(ids)
    with pytest.raises(NotFoundException):
        api.get_by_id(ids[0])
    assert api.get_by_id(ids[0], archived=True).archived is True


def test_delete_batch_archive_and_merge_through_the_sdk(client, emu):
    contacts = client.crm.contacts
    first, second, third, fourth = emu.contact_ids()[:4]
    contacts.basic_api.archive(first)
    contacts.batch_api.archive(BatchInputSimplePublicObjectId(inputs=[SimplePublicObjectId(id=second)]))
    contacts.basic_api.archive(first)  # archiving twice is fine
    assert {first, second} <= set(emu.archived_contact_ids()) and first not in emu.contact_ids()
    resp = contacts.batch_api.update(BatchInputSimplePublicObjectBatchInput(
        inputs=[SimplePublicObjectBatchInput(id=first, properties={"jobtitle": "x"})]))
    assert resp.errors[0].category == "OBJECT_NOT_FOUND" and resp.errors[0].context == {"ids": [first]}
    search = contacts.search_api.do_search(PublicObjectSearchRequest(limit=200, properties=["email"]))
    assert first not in {r.id for r in search.results}
    loser_email = emu.contact(fourth).get("email")
    merged = contacts.basic_api.merge(PublicMergeInput(primary_object_id=third, object_id_to_merge=fourth))
    assert merged.id == third and merged.properties["hs_merged_object_ids"].split(";")[-1] == fourth
    assert fourth in emu.archived_contact_ids()
    if loser_email:
        assert loser_email in emu.contact(third)["hs_additional_emails"]


def test_archived_contacts_stream_is_incremental_and_maps_archived(emu, make_connector, sdk):
    conn = make_connector(emu, overlap_ms=0)
    pages = list(conn.pull({}))
    archived_pages = [p for p in pages if p.stream == "contacts_archived"]
    assert [r["id"] for p in archived_pages for r in p.records] == emu.archived_contact_ids()
    mapped = [c for p in archived_pages for c in map_page(p).contacts]
    assert mapped and all(c.archived for c in mapped)
    assert not any(c.archived for p in pages if p.stream == "contacts" for c in map_page(p).contacts)
    watermarks = {p.stream: p.cursor for p in pages if p.cursor}
    assert re.fullmatch(r"\d{13}", watermarks["contacts_archived"])
    gone = emu.contact_ids()[10]
    sdk(emu).crm.contacts.basic_api.archive(gone)
    again = [p for p in conn.pull(watermarks) if p.stream == "contacts_archived"]
    records = {r["id"]: r for p in again for r in p.records}
    assert gone in records  # plus any archived exactly at the watermark (GTE, like every stream)
    assert all(str(int(datetime.fromisoformat(r["archivedAt"]).timestamp() * 1000)) == watermarks["contacts_archived"]
               for i, r in records.items() if i != gone)
    assert int(again[-1].cursor) > int(watermarks["contacts_archived"])


def test_sync_never_writes_to_archived_contacts(emu, make_connector, sdk, tmp_path):
    state = State(f"sqlite:///{tmp_path}/state.db")
    first, _ = Engine(state, make_connector(emu), default_model()).run("backfill")
    assert first.status == "ok" and first.failed == 0
    assert all("leadsync_score" not in emu.contact(i) for i in emu.archived_contact_ids())
    victim = next(i for i in emu.contact_ids() if emu.contact(i).get("leadsync_score"))
    api = sdk(emu).crm.contacts
    api.batch_api.update(BatchInputSimplePublicObjectBatchInput(
        inputs=[SimplePublicObjectBatchInput(id=victim, properties={"leadsync_score": ""})]))
    api.basic_api.archive(victim)  # changed, then deleted: without the archived stream sync would rewrite it
    emu.app.counts.clear()
    second, _ = Engine(state, make_connector(emu), default_model()).run("sync")
    assert second.status == "ok" and second.failed == 0, second.to_dict()
    assert state.contacts("hubspot", [victim])[victim].archived
    assert "leadsync_score" not in emu.contact(victim)
    assert ("contacts.batch.update", 207) not in emu.app.counts


def _list(emu, **params) -> dict:
    import requests

    s = requests.Session()
    s.trust_env = False
    query = "&".join(f"{k}={str(v).lower()}" for k, v in params.items())
    resp = s.get(f"{emu.base_url}/crm/v3/objects/contacts?limit=100&{query}",
                 headers={"Authorization": f"Bearer {emu.token}"}, timeout=10)
    return json.loads(resp.text)
