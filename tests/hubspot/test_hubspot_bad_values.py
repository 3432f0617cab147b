"""Unreadable HubSpot values (far-future timestamps, overflowing numbers, bad emails) are issues, never crashes."""

from __future__ import annotations

import pytest
from hubspot.crm.objects.meetings import (
    AssociationSpec,
    PublicAssociationsForObject,
    PublicObjectId,
    SimplePublicObjectInputForCreate,
)

from connectors.base import RawPage
from mapping.hubspot import BadValue as HubSpotBadValue
from mapping.hubspot import map_page, parse_company_size, parse_datetime
from scoring.loader import default_model
from sync.engine import Engine
from sync.state import State

YEAR_10000_MS = "253402300800000"


def _meeting(emu, sdk, timestamp: str) -> str:
    """A meeting at `timestamp` (epoch ms) for the first contact, created through the real client."""
    contact = emu.contact_ids()[0]
    spec = AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=200)
    created = sdk(emu).crm.objects.meetings.basic_api.create(SimplePublicObjectInputForCreate(
        properties={"hs_timestamp": timestamp, "hs_meeting_title": "far future"},
        associations=[PublicAssociationsForObject(to=PublicObjectId(id=contact), types=[spec])]))
    return created.id


@pytest.mark.parametrize("timestamp", [YEAR_10000_MS, "9" * 30])
def test_backfill_completes_with_a_far_future_meeting_as_an_issue(emu, sdk, make_connector, tmp_path, timestamp):
    meeting_id = _meeting(emu, sdk, timestamp)
    state = State(f"sqlite:///{tmp_path}/state.db")
    summary, _ = Engine(state, make_connector(emu), default_model()).run("backfill")
    assert summary.status == "ok", summary.to_dict()
    issues = [i for i in state.issues(summary.run_id) if i["record_id"] == meeting_id]
    assert [i["field"] for i in issues] == ["hs_meeting_start_time"]
    assert timestamp[:15] in issues[0]["message"]


def test_sync_after_the_far_future_meeting_still_completes(emu, sdk, make_connector, tmp_path):
    state = State(f"sqlite:///{tmp_path}/state.db")
    assert Engine(state, make_connector(emu), default_model()).run("backfill")[0].status == "ok"
    _meeting(emu, sdk, YEAR_10000_MS)
    summary, _ = Engine(state, make_connector(emu), default_model()).run("sync")
    assert summary.status == "ok" and summary.issues >= 1


@pytest.mark.parametrize("value", [
    YEAR_10000_MS, "9" * 5000, "-1", "²³", "1e400", "9999-12-31T23:59:59-05:00x", 10**30, -(10**30), True,
])
def test_unreadable_datetimes_are_bad_values(value):
    with pytest.raises(HubSpotBadValue):
        parse_datetime(value)


@pytest.mark.parametrize("value", ["1e309", "NaN", "nan", "inf", "12 employees", "-5", "9" * 5000, "10-", "¹²"])
def test_unreadable_company_sizes_are_bad_values(value):
    with pytest.raises(HubSpotBadValue):
        parse_company_size(value)


def _contact(**props) -> dict:
    return {"id": "7", "properties": {"email": "ada@acme.io", **props}}


@pytest.mark.parametrize(("props", "field"), [
    ({"numemployees": "1e309"}, "numemployees"), ({"numemployees": "NaN"}, "numemployees"),
    ({"numemployees": "12 employees"}, "numemployees"), ({"email": "   "}, "email"),
    ({"email": "not-an-email"}, "email"), ({"email": "a@b"}, "email"), ({"createdate": YEAR_10000_MS}, "createdate"),
    ({"numemployees": 12.5e400}, "numemployees"), ({"lifecyclestage": ["lead"]}, "lifecyclestage"),
])
def test_bad_contact_values_are_issues_naming_record_and_field(props, field):
    page = map_page(RawPage("contacts", [_contact(**props)]))
    assert len(page.contacts) == 1
    assert [(i.record_id, i.field) for i in page.issues] == [("7", field)]


def test_a_malformed_email_is_kept_for_the_report_and_a_blank_one_is_none():
    page = map_page(RawPage("contacts", [_contact(email=" not-an-email "), {"id": "8", "properties": {"email": " "}}]))
    assert [c.email for c in page.contacts] == ["not-an-email", None]
    assert [(i.record_id, i.field) for i in page.issues] == [("7", "email"), ("8", "email")]


def test_valid_email_is_kept_and_unset_email_is_no_issue():
    page = map_page(RawPage("contacts", [_contact(), {"id": "8", "properties": {"email": None}}]))
    assert page.issues == [] and [c.email for c in page.contacts] == ["ada@acme.io", None]


def test_properties_that_are_not_an_object_are_an_issue_and_the_contact_is_kept():
    page = map_page(RawPage("contacts", [{"id": "9", "properties": ["email", "x@y.io"]}]))
    assert [c.id for c in page.contacts] == ["9"]
    assert [(i.record_id, i.field) for i in page.issues] == [("9", "properties")]


def test_meeting_with_malformed_associations_and_form_values_maps_without_raising():
    meeting = {"id": "m1", "properties": {"hs_timestamp": "1700000000000"}, "associations": {"contacts": ["x"]}}
    assert map_page(RawPage("meetings", [meeting])).engagements == []
    submission = {"conversionId": "c1", "submittedAt": 1700000000000, "values": {"email": "a@b.co"}}
    page = map_page(RawPage("form_submissions", [submission]))
    assert [(i.record_id, i.field) for i in page.issues] == [("c1", "email")]


@pytest.mark.parametrize(("field", "value"), [
    ("hs_analytics_num_page_views", "1e309"), ("hs_analytics_num_visits", "NaN"), ("hs_email_open", "12 opens"),
    ("num_conversion_events", "-3"), ("hs_email_last_open_date", YEAR_10000_MS), ("recent_conversion_date", "soon"),
])
def test_unreadable_roll_ups_are_issues_and_left_out(field, value):
    page = map_page(RawPage("contacts", [_contact(**{field: value})]))
    assert [(i.record_id, i.field) for i in page.issues] == [("7", field)]
    assert page.contacts[0].extra[field] is None


def test_readable_roll_ups_are_kept_as_sent():
    props = {"hs_analytics_num_page_views": "12", "hs_email_last_open_date": "2026-05-01T07:25:37.000Z",
             "recent_conversion_event_name": "Demo"}
    page = map_page(RawPage("contacts", [_contact(**props)]))
    assert page.issues == [] and {k: page.contacts[0].extra[k] for k in props} == props
