"""mapping.salesforce on hand-made raw records: pure, no emulator."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from connectors.base import RawPage
from mapping.model import EngagementKind, Stage
from mapping.salesforce import (
    LINK_FIELD,
    MANAGED_FIELDS,
    ORG_STAGE_VALUES,
    campaign_kind,
    map_page,
    outbound_fields,
)

LEAD: dict[str, Any] = {
    "Id": "00QSb000000001OMAQ", "FirstName": "Lena", "LastName": "Chen", "Email": "lena@acme.com",
    "Title": "VP Marketing", "Company": "Acme Labs", "NumberOfEmployees": 250, "Industry": "Crypto Mining",
    "Country": "Germany", "OwnerId": "00GQu0000000001AAA", "Status": "Working - Contacted", "IsConverted": False,
    "HasOptedOutOfEmail": True, "CreatedDate": "2025-01-02T03:04:05.000+0000",
    "SystemModstamp": "2026-04-28T07:25:37.000+0000", "LeadSync_Stage__c": None, "LeadSync_Score__c": 42.0,
    "LeadSync_Fit__c": None, "LeadSync_Engagement__c": 12.5, "LeadSync_Reason__c": "Pricing visits",
}
CONTACT: dict[str, Any] = {
    "Id": "003Sb000000000aIAA", "FirstName": "Ana", "LastName": "Silva", "Email": None, "Title": None,
    "AccountId": "001Sb000000000ZIAQ",
    "Account": {"Name": "Umbrella Analytics", "Type": "Customer - Direct", "Industry": "Retail",
                "NumberOfEmployees": 900},
    "MailingCountry": "Brazil", "OwnerId": "005Ow0000000001IAA", "HasOptedOutOfEmail": False,
    "CreatedDate": "2025-01-02T03:04:05.000+0000", "SystemModstamp": "2025-01-02T03:04:05.000+0000",
}


def test_lead_maps_every_canonical_field() -> None:
    out = map_page(RawPage("Lead", [LEAD]))
    [c] = out.contacts
    assert out.issues == []
    assert (c.source, c.id, c.object_type) == ("salesforce", LEAD["Id"], "Lead")
    assert (c.email, c.company, c.company_size, c.industry, c.country) == (
        "lena@acme.com", "Acme Labs", 250, "Crypto Mining", "Germany")
    assert c.lifecycle_stage is Stage.LEAD and c.lead_status == "Working - Contacted"
    assert c.do_not_contact is True and c.read_only is False and c.owner_id == "00GQu0000000001AAA"
    assert c.updated_at == datetime(2026, 4, 28, 7, 25, 37, tzinfo=UTC)
    assert dict(c.managed) == {"LeadSync_Stage__c": None, "LeadSync_Score__c": "42", "LeadSync_Fit__c": None,
                               "LeadSync_Engagement__c": "12.5", "LeadSync_Reason__c": "Pricing visits",
                               "LeadSync_HubSpot_Id__c": None}


def test_converted_lead_is_read_only_and_stage_field_wins() -> None:
    [c] = map_page(RawPage("Lead", [{**LEAD, "IsConverted": True, "LeadSync_Stage__c": "MQL"}])).contacts
    assert c.read_only and c.lifecycle_stage is Stage.MQL


def test_contact_takes_company_from_account_and_customer_from_account_type() -> None:
    [c] = map_page(RawPage("Contact", [CONTACT])).contacts
    assert (c.company, c.company_size, c.industry, c.country) == ("Umbrella Analytics", 900, "Retail", "Brazil")
    assert c.lifecycle_stage is Stage.CUSTOMER and c.email is None
    assert set(c.managed) == {*MANAGED_FIELDS, LINK_FIELD}
    prospect = map_page(RawPage("Contact", [{**CONTACT, "Account": {"Type": "Prospect"}}])).contacts[0]
    assert prospect.lifecycle_stage is Stage.LEAD
    no_account = map_page(RawPage("Contact", [{**CONTACT, "Account": None}])).contacts[0]
    assert no_account.company is None and no_account.lifecycle_stage is Stage.LEAD


def test_bad_values_become_issues_and_the_record_is_still_mapped() -> None:
    bad = {**LEAD, "Email": "lena.at.acme.com", "NumberOfEmployees": "lots", "LeadSync_Stage__c": "Hot",
           "CreatedDate": "yesterday"}
    out = map_page(RawPage("Lead", [bad]))
    [c] = out.contacts
    assert c.email is None and c.company_size is None and c.created_at is None
    assert c.lifecycle_stage is Stage.LEAD  # unknown stage value: the object's default, plus an issue
    assert {(i.record_id, i.field) for i in out.issues} == {
        (LEAD["Id"], "Email"), (LEAD["Id"], "NumberOfEmployees"), (LEAD["Id"], "LeadSync_Stage__c"),
        (LEAD["Id"], "CreatedDate")}


def _member(ctype: str, status: str, responded: bool, **extra: Any) -> dict[str, Any]:
    return {"Id": "00vSb0000000001AAA", "CampaignId": "701Sb0000000001AAA",
            "Campaign": {"Name": f"{ctype} campaign", "Type": ctype}, "LeadId": LEAD["Id"], "ContactId": None,
            "Status": status, "HasResponded": responded, "FirstRespondedDate": "2026-04-01",
            "CreatedDate": "2026-04-01T10:00:00.000+0000", "SystemModstamp": "2026-04-02T10:00:00.000+0000",
            **extra}


def test_campaign_members_become_kinds_by_type_and_status() -> None:
    cases = [("Demo Request", "Requested", True, EngagementKind.DEMO_REQUEST),
             ("Webinar", "Attended", True, EngagementKind.WEBINAR),
             ("Webinar", "Registered", True, EngagementKind.WEBINAR_REGISTRATION),
             ("Content", "Downloaded", True, EngagementKind.CONTENT_DOWNLOAD),
             ("Email", "Opened", True, EngagementKind.EMAIL_OPEN),
             ("Email", "Clicked", True, EngagementKind.EMAIL_CLICK),
             ("Email", "Unsubscribed", False, EngagementKind.UNSUBSCRIBE),
             ("Email", "Bounced", False, EngagementKind.HARD_BOUNCE),
             ("Email", "Sent", False, EngagementKind.OTHER),
             ("Web", "Submitted", True, EngagementKind.FORM_SUBMIT)]
    for ctype, status, responded, kind in cases:
        assert campaign_kind(ctype, status, responded) is kind, (ctype, status)
    [e] = map_page(RawPage("CampaignMember", [_member("Webinar", "Attended", True)])).engagements
    assert (e.contact_id, e.detail, e.campaign) == (LEAD["Id"], "Webinar campaign", "Webinar campaign")
    assert e.occurred_at == datetime(2026, 4, 1, 10, tzinfo=UTC)


def test_member_without_person_is_mapped_with_an_issue() -> None:
    out = map_page(RawPage("CampaignMember", [_member("Web", "Submitted", True, LeadId=None)]))
    assert len(out.engagements) == 1 and out.engagements[0].contact_id == ""
    assert [(i.field, i.record_id) for i in out.issues] == [("LeadId", "00vSb0000000001AAA")]


def test_tasks_and_events() -> None:
    base = {"WhoId": "003Sb000000000aIAA", "CreatedDate": "2026-04-01T10:00:00.000+0000",
            "SystemModstamp": "2026-04-01T10:00:00.000+0000"}
    tasks = [{**base, "Id": "00T1", "TaskSubtype": "Call", "Subject": "Call",
              "CompletedDateTime": "2026-04-01T09:00:00.000+0000"},
             {**base, "Id": "00T2", "TaskSubtype": "Email", "Subject": "Email: Re: Your demo request"},
             {**base, "Id": "00T3", "TaskSubtype": "Email", "Subject": "Email: Intro"},
             {**base, "Id": "00T4", "TaskSubtype": "Task", "Subject": "Follow up", "LeadSync_Key__c": "k"}]
    out = map_page(RawPage("Task", tasks))
    assert [(e.id, e.kind) for e in out.engagements] == [
        ("00T1", EngagementKind.CALL), ("00T2", EngagementKind.EMAIL_REPLY), ("00T3", EngagementKind.OTHER)]
    assert out.engagements[0].occurred_at == datetime(2026, 4, 1, 9, tzinfo=UTC)
    [meeting] = map_page(RawPage("Event", [{**base, "Id": "00U1", "Subject": "Meeting: Discovery call",
                                            "ActivityDateTime": "2026-04-03T15:00:00.000+0000"}])).engagements
    assert meeting.kind is EngagementKind.MEETING and meeting.occurred_at.day == 3


def test_opportunity_without_created_date_is_an_issue() -> None:
    out = map_page(RawPage("Opportunity", [{"Id": "006x"}]))
    assert out.opportunities == [] and [(i.record_id, i.field) for i in out.issues] == [("006x", "CreatedDate")]


def test_unknown_stream_is_an_issue() -> None:
    out = map_page(RawPage("Account", [{"Id": "001x"}]))
    assert out.contacts == [] and out.engagements == [] and out.issues[0].field == "stream"


def test_outbound_fields() -> None:
    out = outbound_fields(Stage.MQL, 55, 30, 25, " " + "x" * 300)
    assert out == {"LeadSync_Stage__c": "MQL", "LeadSync_Score__c": "55", "LeadSync_Fit__c": "30",
                   "LeadSync_Engagement__c": "25", "LeadSync_Reason__c": "x" * 255}
    assert "LeadSync_Stage__c" not in outbound_fields(None, 1, 1, 0, "")
    assert "LeadSync_Stage__c" not in outbound_fields(Stage.OTHER, 1, 1, 0, "")


def test_org_stage_values_are_no_stage_and_no_issue() -> None:
    """Stages mapped onto Lead.Status: an unmapped status is kept as the "before" value, not flagged."""
    page = RawPage("Lead", [{**LEAD, "LeadSync_Stage__c": "Working - Contacted"}, {**LEAD, "LeadSync_Stage__c": "SQL"}],
                   meta={ORG_STAGE_VALUES: True})
    out = map_page(page)
    assert out.issues == []
    assert [c.lifecycle_stage for c in out.contacts] == [Stage.LEAD, Stage.SQL]
    assert out.contacts[0].managed["LeadSync_Stage__c"] == "Working - Contacted"
