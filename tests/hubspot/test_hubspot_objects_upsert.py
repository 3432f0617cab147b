"""`batch/upsert` and multi-status `batch/create`, through the real hubspot-api-client."""

from __future__ import annotations

import json

import pytest
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputForCreate,
    BatchInputSimplePublicObjectBatchInputUpsert,
    SimplePublicObjectBatchInput,
    SimplePublicObjectBatchInputForCreate,
    SimplePublicObjectBatchInputUpsert,
)
from hubspot.crm.contacts.exceptions import ApiException, NotFoundException
from hubspot.crm.objects.notes import (
    BatchInputSimplePublicObjectBatchInputForCreate as NoteBatchCreate,
)
from hubspot.crm.objects.notes import (
    SimplePublicObjectBatchInputForCreate as NoteCreate,
)
from hubspot.crm.properties import PropertyCreate, PropertyGroupCreate

from sandbox.hubspot import HubSpotEmulator

STAMP = "2026-11-02T09:00:00.000Z"


def _upsert(client, *items: tuple[str, dict[str, str]], id_property: str = "email"):
    inputs = [SimplePublicObjectBatchInputUpsert(id=i, id_property=id_property, properties=p) for i, p in items]
    return client.crm.contacts.batch_api.upsert(BatchInputSimplePublicObjectBatchInputUpsert(inputs=inputs))


def _create(client, *items: dict[str, str], traces: bool = True):
    inputs = [SimplePublicObjectBatchInputForCreate(properties=p, object_write_trace_id=f"t{n}" if traces else None)
              for n, p in enumerate(items)]
    return client.crm.contacts.batch_api.create(BatchInputSimplePublicObjectBatchInputForCreate(inputs=inputs))


def _contact_with(emu: HubSpotEmulator, stage: str) -> tuple[str, str]:
    """(id, email) of a live contact at `stage` that has an email."""
    found = (emu.contact(i) for i in emu.contact_ids())
    props = next(p for p in found if p.get("email") and p["lifecyclestage"] == stage)
    return props["hs_object_id"], props["email"]


def _error_body(exc: pytest.ExceptionInfo) -> dict:
    return json.loads(exc.value.body)


# -------------------------------------------------------------------- upsert


def test_upsert_by_email_updates_the_existing_contact_and_creates_the_new_one(client, emu):
    cid, email = _contact_with(emu, "lead")
    before = len(emu.contact_ids())
    resp = _upsert(client, (email.upper(), {"jobtitle": "VP Sales"}), ("new.person@example.org", {"firstname": "Nia"}))
    assert type(resp).__name__ == "BatchResponseSimplePublicUpsertObject" and resp.status == "COMPLETE"
    by_new = {r.new: r for r in resp.results}
    assert set(by_new) == {True, False} and by_new[False].id == cid
    assert by_new[False].properties["jobtitle"] == "VP Sales"
    assert emu.contact(cid)["jobtitle"] == "VP Sales" and emu.contact(cid)["email"] == email
    created = client.crm.contacts.basic_api.get_by_id("new.person@example.org", id_property="email",
                                                      properties=["firstname", "email"])
    assert created.id == by_new[True].id and created.properties["firstname"] == "Nia"
    assert len(emu.contact_ids()) == before + 1
    again = _upsert(client, ("new.person@example.org", {"lastname": "Okafor"}))  # now it exists
    assert [(r.id, r.new) for r in again.results] == [(created.id, False)]
    assert len(emu.contact_ids()) == before + 1


def test_upsert_keeps_lifecyclestage_forward_only(client, emu):
    cid, email = _contact_with(emu, "lead")
    _upsert(client, (email, {"lifecyclestage": "salesqualifiedlead"}))
    sql = emu.contact(cid)
    assert sql["lifecyclestage"] == "salesqualifiedlead" and sql["hs_lifecyclestage_salesqualifiedlead_date"]
    resp = _upsert(client, (email, {"lifecyclestage": "lead"}))  # backward: success, nothing changes
    assert resp.status == "COMPLETE" and [r.new for r in resp.results] == [False]
    assert emu.contact(cid) == sql
    _upsert(client, (email, {"lifecyclestage": ""}))
    _upsert(client, (email, {"lifecyclestage": "lead"}))
    assert emu.contact(cid)["lifecyclestage"] == "lead"


def test_upsert_by_a_custom_unique_property(client, emu):
    props = client.crm.properties
    props.groups_api.create("contacts", PropertyGroupCreate(name="ext", label="External"))
    made = props.core_api.create("contacts", PropertyCreate(name="ext_id", label="External id", type="string",
                                                            field_type="text", group_name="ext", has_unique_value=True))
    assert made.has_unique_value is True
    cid = emu.contact_ids()[5]
    client.crm.contacts.batch_api.update(BatchInputSimplePublicObjectBatchInput(
        inputs=[SimplePublicObjectBatchInput(id=cid, properties={"ext_id": "crm-42"})]))
    resp = _upsert(client, ("crm-42", {"jobtitle": "CFO"}), ("crm-43", {"firstname": "Ola"}), id_property="ext_id")
    assert sorted((r.new, r.id == cid) for r in resp.results) == [(False, True), (True, False)]
    assert emu.contact(cid)["jobtitle"] == "CFO"
    new_id = next(r.id for r in resp.results if r.new)
    assert emu.contact(new_id)["ext_id"] == "crm-43" and emu.contact(new_id)["firstname"] == "Ola"


@pytest.mark.parametrize("prop", ["firstname", "hs_object_id", "no_such_property"])
def test_upsert_needs_a_unique_id_property(client, emu, prop):
    with pytest.raises(ApiException) as exc:
        _upsert(client, (emu.contact_ids()[0], {"jobtitle": "x"}), id_property=prop)
    body = _error_body(exc)
    assert exc.value.status == 400 and body["category"] == "VALIDATION_ERROR"
    assert body["message"].startswith(f"Unable to perform update/upsert by non-unique 0-1 property {prop} ")


def test_properties_api_marks_email_unique_and_not_the_record_id(client):
    core = client.crm.properties.core_api
    assert core.get_by_name("contacts", "email").has_unique_value is True
    assert core.get_by_name("contacts", "hs_object_id").has_unique_value is False


def test_upsert_over_100_inputs_is_the_same_400_as_batch_update(client, emu):
    emails = [f"bulk{i}@example.org" for i in range(101)]
    with pytest.raises(ApiException) as upsert:
        _upsert(client, *[(e, {"firstname": "x"}) for e in emails])
    with pytest.raises(ApiException) as update:
        client.crm.contacts.batch_api.update(BatchInputSimplePublicObjectBatchInput(
            inputs=[SimplePublicObjectBatchInput(id=i, properties={}) for i in emu.contact_ids()[:101]]))
    assert upsert.value.status == update.value.status == 400
    up, down = _error_body(upsert), _error_body(update)
    assert (up["category"], up["message"], up["context"]) == (down["category"], down["message"], down["context"])
    with pytest.raises(NotFoundException):
        client.crm.contacts.basic_api.get_by_id(emails[0], id_property="email")


def test_one_invalid_upsert_input_fails_the_request_and_writes_nothing(client, emu):
    cid, email = _contact_with(emu, "lead")
    with pytest.raises(ApiException) as exc:
        _upsert(client, (email, {"jobtitle": "Changed"}), ("fresh@example.org", {"numemployees": "lots"}))
    assert exc.value.status == 400 and "INVALID_OPTION" in _error_body(exc)["message"]
    assert emu.contact(cid).get("jobtitle") != "Changed"
    with pytest.raises(NotFoundException):
        client.crm.contacts.basic_api.get_by_id("fresh@example.org", id_property="email")


def test_upsert_updates_share_batch_update_fault_injection(new_emu, sdk):
    emu = new_emu()
    cid, email = _contact_with(emu, "lead")
    emu.crm.reject_ids.add(cid)
    resp = _upsert(sdk(emu), (email, {"jobtitle": "Chief Upsert Officer"}), ("other@example.org", {"firstname": "Io"}))
    assert type(resp).__name__ == "BatchResponseSimplePublicUpsertObjectWithErrors"
    assert [r.new for r in resp.results] == [True]
    assert resp.num_errors == 1 and resp.errors[0].context["ids"] == [cid]
    assert resp.errors[0].category == "VALIDATION_ERROR"
    assert emu.contact(cid).get("jobtitle") != "Chief Upsert Officer"


def test_upsert_is_saved_before_the_answer(new_emu, sdk, tmp_path):
    state = tmp_path / "hubspot.json"
    emu = new_emu(state_file=str(state))
    resp = _upsert(sdk(emu), ("saved@example.org", {"firstname": "Sam"}))
    saved = json.loads(state.read_text())["stores"]["contacts"]["records"]
    assert any(r["id"] == resp.results[0].id and r["properties"]["email"] == "saved@example.org" for r in saved)


# ------------------------------------------------------- batch create (207)


def test_batch_create_with_trace_ids_reports_each_failure_and_creates_the_rest(client, emu):
    _, taken = _contact_with(emu, "lead")
    before = len(emu.contact_ids())
    resp = _create(client, {"email": "ok@example.org", "firstname": "Ok"}, {"email": "x@example.org", "shoe_size": "9"},
                   {"email": taken})
    assert type(resp).__name__ == "BatchResponseSimplePublicObjectWithErrors" and resp.status == "COMPLETE"
    assert [r.properties["email"] for r in resp.results] == ["ok@example.org"]
    assert resp.num_errors == 2
    by_trace = {e.context["objectWriteTraceId"][0]: e for e in resp.errors}
    assert set(by_trace) == {"t1", "t2"}
    unknown = by_trace["t1"]
    assert (unknown.status, unknown.category) == ("error", "VALIDATION_ERROR")
    assert [(d.code, d._in) for d in unknown.errors] == [("PROPERTY_DOESNT_EXIST", "shoe_size")]
    assert json.loads(unknown.message.split(": ", 1)[1])[0]["error"] == "PROPERTY_DOESNT_EXIST"
    assert by_trace["t2"].category == "CONFLICT" and "Existing ID:" in by_trace["t2"].message
    assert len(emu.contact_ids()) == before + 1


def test_batch_create_without_trace_ids_fails_whole_and_creates_nothing(client, emu):
    _, taken = _contact_with(emu, "lead")
    before = len(emu.contact_ids())
    with pytest.raises(ApiException) as conflict:
        _create(client, {"email": "first@example.org"}, {"email": taken}, traces=False)
    assert conflict.value.status == 409 and _error_body(conflict)["category"] == "CONFLICT"
    with pytest.raises(ApiException) as bad:
        _create(client, {"email": "first@example.org"}, {"email": "b@example.org", "shoe_size": "9"}, traces=False)
    assert bad.value.status == 400 and "PROPERTY_DOESNT_EXIST" in _error_body(bad)["message"]
    with pytest.raises(ApiException) as twice:
        _create(client, {"email": "same@example.org"}, {"email": "SAME@example.org"}, traces=False)
    assert twice.value.status == 400
    assert len(emu.contact_ids()) == before  # nothing from a refused batch was created


def test_batch_create_all_valid_with_trace_ids_is_201(client, emu):
    resp = _create(client, {"email": "a1@example.org"}, {"email": "a2@example.org"})
    assert type(resp).__name__ == "BatchResponseSimplePublicObject"
    assert sorted(r.properties["email"] for r in resp.results) == ["a1@example.org", "a2@example.org"]


def test_batch_create_of_notes_reports_a_missing_hs_timestamp(client, emu):
    api = client.crm.objects.notes.batch_api
    resp = api.create(NoteBatchCreate(inputs=[
        NoteCreate(properties={"hs_timestamp": STAMP, "hs_note_body": "kept"}, object_write_trace_id="n1"),
        NoteCreate(properties={"hs_note_body": "no time"}, object_write_trace_id="n2")]))
    assert [r.properties["hs_note_body"] for r in resp.results] == ["kept"]
    (error,) = resp.errors
    assert error.context == {"objectWriteTraceId": ["n2"]} and error.category == "VALIDATION_ERROR"
    assert [(d.code, d._in) for d in error.errors] == [("REQUIRED_FIELD", "hs_timestamp")]
    assert [r.id for r in client.crm.objects.notes.basic_api.get_page(limit=10).results] == [resp.results[0].id]
