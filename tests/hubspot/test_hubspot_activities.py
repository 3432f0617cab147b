"""Notes, calls and emails as CRM objects: required `hs_timestamp`, core properties, contact associations by
HubSpot's default type ids (inline and through v4), singular names — through the real hubspot-api-client."""

from __future__ import annotations

import json

import hubspot.crm.objects.calls as calls_sdk
import hubspot.crm.objects.emails as emails_sdk
import hubspot.crm.objects.notes as notes_sdk
import pytest
from hubspot.crm.associations.v4 import (
    BatchInputPublicFetchAssociationsBatchRequest,
    PublicFetchAssociationsBatchRequest,
)
from hubspot.crm.objects import SimplePublicObjectInputForCreate as GenericCreate

STAMP = "2026-11-02T09:00:00.000Z"
#: (object type, type id, association label, object→contact type id, contact→object type id, core properties)
ACTIVITIES = [
    ("notes", "0-46", "note", 202, 201, {"hs_note_body": "Asked for pricing"}),
    ("calls", "0-48", "call", 194, 193, {"hs_call_title": "Discovery", "hs_call_body": "Went well",
                                         "hs_call_duration": "180000", "hs_call_status": "COMPLETED",
                                         "hs_call_direction": "OUTBOUND"}),
    ("emails", "0-49", "email", 198, 197, {"hs_email_subject": "Follow-up", "hs_email_text": "Hi!",
                                           "hs_email_direction": "EMAIL", "hs_email_status": "SENT"}),
]
IDS = [a[0] for a in ACTIVITIES]
#: Each object has its own SDK package, with its own models and exception classes (reference §1.5).
SDK = {"notes": notes_sdk, "calls": calls_sdk, "emails": emails_sdk}


def _link(contact_id: str, type_id: int) -> list[dict]:
    return [{"to": {"id": contact_id}, "types": [{"associationCategory": "HUBSPOT_DEFINED",
                                                   "associationTypeId": type_id}]}]


def _api(client, object_type: str):
    """The object's own API group (`client.crm.objects.notes`, …)."""
    return getattr(client.crm.objects, object_type)


def _create(client, object_type: str, properties: dict[str, str], links: list[dict] | None = None):
    model = SDK[object_type].SimplePublicObjectInputForCreate
    return _api(client, object_type).basic_api.create(model(properties=properties, associations=links or []))


@pytest.mark.parametrize(("object_type", "type_id", "label", "to_contact", "from_contact", "core"), ACTIVITIES,
                         ids=IDS)
def test_activity_create_needs_hs_timestamp_and_links_to_its_contact(client, emu, object_type, type_id, label,
                                                                     to_contact, from_contact, core):
    cid = emu.contact_ids()[2]
    with pytest.raises(SDK[object_type].ApiException) as exc:
        _create(client, object_type, core, _link(cid, to_contact))
    body = json.loads(exc.value.body)
    assert exc.value.status == 400 and body["category"] == "VALIDATION_ERROR" and "hs_timestamp" in body["message"]
    created = _create(client, object_type, {"hs_timestamp": STAMP, **core}, _link(cid, to_contact))
    assert {k: created.properties[k] for k in core} == core
    back = _api(client, object_type).basic_api.get_by_id(created.id, associations=["contacts"])
    assert [(a.id, a.type) for a in back.associations["contacts"].results] == [(cid, f"{label}_to_contact")]
    contact = client.crm.contacts.basic_api.get_by_id(cid, associations=[object_type])
    assert [(a.id, a.type) for a in contact.associations[object_type].results] == [
        (created.id, f"contact_to_{label}")]
    v4 = client.crm.associations.v4.batch_api
    out = v4.get_page(object_type, "contacts", BatchInputPublicFetchAssociationsBatchRequest(
        inputs=[PublicFetchAssociationsBatchRequest(id=created.id)]))
    assert [(t.to_object_id, [s.type_id for s in t.association_types]) for t in out.results[0].to] == [
        (cid, [to_contact])]
    back_out = v4.get_page("contacts", object_type, BatchInputPublicFetchAssociationsBatchRequest(
        inputs=[PublicFetchAssociationsBatchRequest(id=cid)]))
    assert [(t.to_object_id, t.association_types[0].type_id) for t in back_out.results[0].to] == [
        (created.id, from_contact)]


@pytest.mark.parametrize(("object_type", "type_id", "label", "to_contact", "from_contact", "core"), ACTIVITIES,
                         ids=IDS)
def test_activity_singular_name_and_type_id_address_the_same_store(client, emu, object_type, type_id, label,
                                                                   to_contact, from_contact, core):
    created = client.crm.objects.basic_api.create(label, GenericCreate(properties={"hs_timestamp": STAMP, **core}))
    for name in (object_type, label, type_id):
        assert client.crm.objects.basic_api.get_by_id(name, created.id, properties=list(core)).properties == {
            **core, "hs_object_id": created.id, "hs_lastmodifieddate": created.properties["hs_lastmodifieddate"]}
    listed = client.crm.properties.core_api.get_all(type_id)
    assert {"hs_timestamp", *core} <= {p.name for p in listed.results}


@pytest.mark.parametrize("object_type", IDS)
def test_v4_default_association_uses_the_default_type_ids(client, emu, object_type):
    _, _, label, to_contact, from_contact, core = next(a for a in ACTIVITIES if a[0] == object_type)
    cid = emu.contact_ids()[4]
    created = _create(client, object_type, {"hs_timestamp": STAMP, **core})
    resp = client.crm.associations.v4.basic_api.create_default(object_type, created.id, "contact", cid)
    assert sorted((r._from.id, r.to.id, r.association_spec.association_type_id) for r in resp.results) == sorted(
        [(created.id, cid, to_contact), (cid, created.id, from_contact)])
    client.crm.associations.v4.basic_api.create_default(object_type, created.id, "contacts", cid)  # idempotent
    back = _api(client, object_type).basic_api.get_by_id(created.id, associations=["contacts"])
    assert [a.id for a in back.associations["contacts"].results] == [cid]


def test_an_association_type_id_must_match_its_direction(client, emu):
    cid = emu.contact_ids()[0]
    with pytest.raises(notes_sdk.ApiException) as exc:  # 194 is call→contact, not note→contact
        _create(client, "notes", {"hs_timestamp": STAMP, "hs_note_body": "x"}, _link(cid, 194))
    assert exc.value.status == 400
    assert json.loads(exc.value.body)["subCategory"] == "crm.associations.INVALID_ASSOCIATION"
    assert client.crm.objects.notes.basic_api.get_page().results == []


def test_emails_also_need_a_direction_and_activity_values_are_validated(client):
    with pytest.raises(emails_sdk.ApiException) as no_direction:
        _create(client, "emails", {"hs_timestamp": STAMP, "hs_email_subject": "Hi"})
    assert "hs_email_direction" in json.loads(no_direction.value.body)["message"]
    with pytest.raises(calls_sdk.ApiException) as bad:
        _create(client, "calls", {"hs_timestamp": STAMP, "hs_call_status": "DONE", "hs_call_duration": "long"})
    details = json.loads(json.loads(bad.value.body)["message"].split(": ", 1)[1])
    assert {(d["name"], d["error"]) for d in details} == {("hs_call_status", "INVALID_OPTION"),
                                                         ("hs_call_duration", "INVALID_LONG")}
