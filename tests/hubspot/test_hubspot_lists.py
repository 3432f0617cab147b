"""The emulator's Lists API v3 through the real `hubspot-api-client` (`client.crm.lists`), and the connector's
nurture writes over it."""

from __future__ import annotations

import json

import pytest
from hubspot.crm.lists import ListCreateRequest, MembershipChangeRequest
from hubspot.crm.lists.exceptions import ApiException

from mapping.model import Membership


def _body(resp) -> dict:
    return json.loads(resp.data)


def _new_list(client, name: str = "Nurture", processing: str = "MANUAL") -> str:
    resp = client.crm.lists.lists_api.create(ListCreateRequest(name=name, object_type_id="0-1",
                                                               processing_type=processing), _preload_content=False)
    body = _body(resp)
    assert resp.status == 200 and body["list"]["processingType"] == processing and body["list"]["size"] == 0
    return body["list"]["listId"]


def test_create_add_remove_and_read_memberships(emu, client):
    list_id = _new_list(client)
    ids = emu.contact_ids()[:5]
    api = client.crm.lists.memberships_api
    added = _body(api.add(list_id, [*ids[:3], "999999"], _preload_content=False))
    assert sorted(added["recordsIdsAdded"]) == sorted(ids[:3]) and added["recordIdsMissing"] == ["999999"]
    again = _body(api.add(list_id, ids[:4], _preload_content=False))  # members already in are ignored
    assert again["recordsIdsAdded"] == [ids[3]]
    removed = _body(api.remove(list_id, [ids[0], ids[4]], _preload_content=False))
    assert removed["recordIdsRemoved"] == [ids[0]] and removed["recordsIdsAdded"] == []
    assert emu.list_members(list_id) == sorted(ids[1:4], key=int)
    both = _body(api.add_and_remove(list_id, MembershipChangeRequest(record_ids_to_add=[ids[4]],
                                                                     record_ids_to_remove=[ids[1]]),
                                    _preload_content=False))
    assert both["recordsIdsAdded"] == [ids[4]] and both["recordIdsRemoved"] == [ids[1]]
    page = _body(api.get_page(list_id, limit=2, _preload_content=False))
    assert [r["recordId"] for r in page["results"]] == sorted([ids[2], ids[3], ids[4]], key=int)[:2]
    assert page["total"] == 3 and page["results"][0]["membershipTimestamp"].endswith("Z")
    rest = _body(api.get_page(list_id, limit=2, after=page["paging"]["next"]["after"], _preload_content=False))
    assert len(rest["results"]) == 1 and "paging" not in rest
    fetched = _body(client.crm.lists.lists_api.get_by_id(list_id, _preload_content=False))
    assert fetched["list"]["size"] == 3


def test_unknown_list_dynamic_list_and_bad_bodies_are_refused(emu, client):
    api = client.crm.lists.memberships_api
    with pytest.raises(ApiException) as unknown:
        api.add("424242", emu.contact_ids()[:1])
    assert unknown.value.status == 404 and json.loads(unknown.value.body)["category"] == "OBJECT_NOT_FOUND"
    dynamic = _new_list(client, "Smart", "DYNAMIC")
    with pytest.raises(ApiException) as refused:
        api.add(dynamic, emu.contact_ids()[:1])
    assert refused.value.status == 400 and "DYNAMIC" in json.loads(refused.value.body)["message"]
    with pytest.raises(ApiException) as limit:
        api.get_page(_new_list(client, "Other"), limit=251)
    assert limit.value.status == 400
    with pytest.raises(ApiException) as twice:
        _new_list(client, "other")
    assert twice.value.status == 400


def test_connector_batches_and_reports_missing_records(emu, make_connector, client):
    list_id = _new_list(client)
    conn = make_connector(emu)
    ids = emu.contact_ids()[:7]
    changes = [Membership("hubspot", list_id, "contacts", i, True) for i in [*ids, "999999"]]
    before = conn.api_calls
    results = conn.apply_memberships(changes, batch_size=3)
    assert conn.api_calls - before == 3  # 8 records, 3 per call
    assert [r.ok for r in results] == [True] * 7 + [False]
    assert results[-1].error_code == "OBJECT_NOT_FOUND" and "999999" in results[-1].message
    assert conn.list_members(list_id) == sorted(ids, key=int)
    out = conn.apply_memberships([Membership("hubspot", list_id, "contacts", ids[0], False),
                                  Membership("hubspot", "424242", "contacts", ids[1], True)], batch_size=100)
    assert out[0].ok and not out[1].ok and out[1].error_code == "OBJECT_NOT_FOUND" and "424242" in out[1].message
    assert conn.list_members(list_id) == sorted(ids[1:], key=int)


def test_lists_survive_a_restart(new_emu, tmp_path, sdk):
    state = str(tmp_path / "portal.json")
    first = new_emu(state_file=state)
    list_id = first.create_list("Kept")
    sdk(first).crm.lists.memberships_api.add(list_id, first.contact_ids()[:2])
    first.stop()
    again = new_emu(state_file=state)
    assert again.list_members(list_id) == first.contact_ids()[:2]
