"""mapping.hubspot: raw HubSpot records to canonical ones, and the values written back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.base import RawPage
from mapping.hubspot import (
    CONTACT_PROPERTIES,
    MANAGED_FIELDS,
    map_page,
    outbound_fields,
    parse_company_size,
    parse_datetime,
    parse_stage,
)
from mapping.model import EngagementKind, Stage


def _contact(**props: str | None) -> dict:
    base = {"email": "ada@acme.io", "firstname": "Ada", "lifecyclestage": "marketingqualifiedlead",
            "numemployees": "100-500", "createdate": "2024-10-05T11:00:00Z",
            "lastmodifieddate": "2024-10-09T12:21:24.382Z", "hs_email_optout": "false", "leadsync_score": "40"}
    base.update(props)
    return {"id": "101", "properties": base, "createdAt": "2024-10-05T11:00:00Z", "archived": False}


def test_contact_maps_stage_size_dates_and_managed_fields():
    page = map_page(RawPage("contacts", [_contact()]))
    assert page.issues == []
    c = page.contacts[0]
    assert (c.source, c.id, c.object_type, c.email) == ("hubspot", "101", "contacts", "ada@acme.io")
    assert c.lifecycle_stage is Stage.MQL and c.company_size == 300
    assert c.created_at == datetime(2024, 10, 5, 11, tzinfo=UTC)
    assert c.updated_at == datetime(2024, 10, 9, 12, 21, 24, 382000, tzinfo=UTC)
    assert dict(c.managed) == {"lifecyclestage": "marketingqualifiedlead", "leadsync_score": "40",
                               "leadsync_fit": None, "leadsync_engagement": None, "leadsync_reason": None,
                               "leadsync_salesforce_id": None}
    assert not c.do_not_contact


def test_bad_values_become_issues_and_the_record_is_kept():
    page = map_page(RawPage("contacts", [_contact(numemployees="lots", createdate="last tuesday",
                                                  hs_email_optout="true")]))
    assert len(page.contacts) == 1
    c = page.contacts[0]
    assert c.company_size is None and c.created_at is None and c.do_not_contact
    assert {(i.record_id, i.field) for i in page.issues} == {("101", "numemployees"), ("101", "createdate")}
    assert all(i.source == "hubspot" and i.message for i in page.issues)


@pytest.mark.parametrize(("raw", "stage"), [
    ("subscriber", Stage.SUBSCRIBER), ("lead", Stage.LEAD), ("salesqualifiedlead", Stage.SQL),
    ("opportunity", Stage.OPPORTUNITY), ("customer", Stage.CUSTOMER), ("evangelist", Stage.OTHER),
    ("other", Stage.OTHER), ("1234567", Stage.OTHER), ("", None), (None, None),
])
def test_stage_values(raw, stage):
    assert parse_stage(raw) is stage


@pytest.mark.parametrize(("raw", "size"), [("1-5", 3), ("10000+", 10000), ("5000-10000", 7500), ("250", 250),
                                           ("", None), (None, None)])
def test_company_size_is_the_range_midpoint(raw, size):
    assert parse_company_size(raw) == size


def test_datetimes_in_both_precisions_and_epoch_ms():
    assert parse_datetime("2024-10-05T11:00:00Z") == datetime(2024, 10, 5, 11, tzinfo=UTC)
    assert parse_datetime("1728126000000") == datetime(2024, 10, 5, 11, tzinfo=UTC)


def test_unknown_stage_is_other_with_an_issue():
    page = map_page(RawPage("contacts", [_contact(lifecyclestage="champion")]))
    assert page.contacts[0].lifecycle_stage is Stage.OTHER
    assert [i.field for i in page.issues] == ["lifecyclestage"]


def test_email_events_carry_email_and_campaign_name():
    events = [
        {"id": "e1", "type": "OPEN", "created": 1728126000000, "recipient": "Ada@Acme.io", "emailCampaignId": 7},
        {"id": "e2", "type": "BOUNCE", "category": "UNKNOWN_USER", "created": 1728126000000, "recipient": "a@b.c",
         "emailCampaignId": 7},
        {"id": "e3", "type": "STATUSCHANGE", "portalSubscriptionStatus": "UNSUBSCRIBED", "created": 1728126000000,
         "recipient": "a@b.c"},
        {"id": "e4", "type": "CLICK", "created": "garbage", "recipient": "a@b.c"},
    ]
    page = map_page(RawPage("email_events", events, meta={"campaign_names": {"7": "Newsletter October"}}))
    kinds = [e.kind for e in page.engagements]
    assert kinds == [EngagementKind.EMAIL_OPEN, EngagementKind.HARD_BOUNCE, EngagementKind.UNSUBSCRIBE]
    first = page.engagements[0]
    assert (first.id, first.contact_id, first.contact_email, first.detail, first.campaign) == (
        "email:e1", "", "ada@acme.io", "Newsletter October", "7")
    assert [(i.record_id, i.field) for i in page.issues] == [("e4", "created")]


def test_form_submissions_map_to_kinds_by_form():
    def sub(cid: str, *values: tuple[str, str]) -> dict:
        return {"conversionId": cid, "submittedAt": 1728126000000,
                "values": [{"name": "email", "value": "ada@acme.io"}, *({"name": n, "value": v} for n, v in values)]}

    download = map_page(RawPage("form_submissions", [sub("c1", ("asset", "ebook-x"))],
                                meta={"form_id": "g1", "form_name": "Content download"}))
    demo = map_page(RawPage("form_submissions", [sub("c2")], meta={"form_id": "g2", "form_name": "Demo request"}))
    contact = map_page(RawPage("form_submissions", [sub("c3")], meta={"form_id": "g3", "form_name": "Contact us"}))
    e = download.engagements[0]
    assert (e.kind, e.detail, e.contact_email, e.id) == (EngagementKind.CONTENT_DOWNLOAD, "ebook-x", "ada@acme.io",
                                                         "form:c1")
    assert demo.engagements[0].kind is EngagementKind.DEMO_REQUEST
    assert (contact.engagements[0].kind, contact.engagements[0].detail) == (EngagementKind.FORM_SUBMIT, "Contact us")


def test_page_views_and_meetings_carry_contact_ids():
    views = map_page(RawPage("page_views", [{"id": "w1", "objectId": "101", "occurredAt": "2024-10-05T11:00:00Z",
                                             "properties": {"hs_url": "https://x.io/pricing"}}]))
    assert (views.engagements[0].contact_id, views.engagements[0].detail) == ("101", "https://x.io/pricing")
    meeting = {"id": "m1", "properties": {"hs_meeting_title": "Discovery call",
                                          "hs_meeting_start_time": "2024-10-05T11:00:00.000Z"},
               "associations": {"contacts": {"results": [{"id": "101"}, {"id": "102"}]}}}
    mapped = map_page(RawPage("meetings", [meeting]))
    assert [(e.contact_id, e.kind) for e in mapped.engagements] == [("101", EngagementKind.MEETING),
                                                                   ("102", EngagementKind.MEETING)]


def test_outbound_fields():
    assert outbound_fields(Stage.SQL, 87, 40, 47, " title + pricing visits ") == {
        "leadsync_score": "87", "leadsync_fit": "40", "leadsync_engagement": "47",
        "leadsync_reason": "title + pricing visits", "lifecyclestage": "salesqualifiedlead"}
    assert "lifecyclestage" not in outbound_fields(None, 1, 1, 0, "x")
    assert set(MANAGED_FIELDS) <= set(CONTACT_PROPERTIES) | {"lifecyclestage"}


def test_archived_stream_maps_to_archived_contacts():
    record = {**_contact(), "archived": True, "archivedAt": "2026-10-30T10:00:00.000Z"}
    archived = map_page(RawPage("contacts_archived", [record, _contact()]))
    assert [c.archived for c in archived.contacts] == [True, True]  # the stream says so, whatever the flag
    assert archived.issues == [] and not map_page(RawPage("contacts", [_contact()])).contacts[0].archived
