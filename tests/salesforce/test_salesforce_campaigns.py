"""Campaigns and CampaignMembers in the emulator through the real `simple-salesforce`, and the connector's
nurture writes over sObject Collections."""

from __future__ import annotations

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from mapping.model import Membership


def _campaign(sf, name: str = "Nurture") -> str:
    return sf.Campaign.create({"Name": name, "Type": "Email", "IsActive": True})["id"]


def _leads(emu, n: int) -> list[str]:
    return [r["Id"] for r in emu.records("Lead") if not r["IsConverted"] and not r["IsDeleted"]][:n]


def test_describe_and_default_member_statuses(sf):
    fields = {f["name"]: f for f in sf.CampaignMember.describe()["fields"]}
    assert fields["CampaignId"]["referenceTo"] == ["Campaign"] and not fields["HasResponded"]["updateable"]
    assert {"LeadId", "ContactId", "Status"} <= set(fields)
    assert "Label" in {f["name"] for f in sf.CampaignMemberStatus.describe()["fields"]}
    cid = _campaign(sf)
    rows = sf.query(f"SELECT Label, HasResponded, IsDefault FROM CampaignMemberStatus WHERE CampaignId = '{cid}' "
                    "ORDER BY SortOrder")["records"]
    assert [(r["Label"], r["HasResponded"], r["IsDefault"]) for r in rows] == [("Sent", False, True),
                                                                                ("Responded", True, False)]


def test_member_rules_duplicate_status_and_who(emu, sf):
    cid = _campaign(sf)
    lead, other = _leads(emu, 2)
    first = sf.CampaignMember.create({"CampaignId": cid, "LeadId": lead})
    row = sf.CampaignMember.get(first["id"])
    assert row["Status"] == "Sent" and row["HasResponded"] is False  # the campaign's default status
    with pytest.raises(SalesforceMalformedRequest) as dup:
        sf.CampaignMember.create({"CampaignId": cid, "LeadId": lead, "Status": "Responded"})
    assert dup.value.content[0]["errorCode"] == "DUPLICATE_VALUE"
    assert dup.value.content[0]["message"] == "Already a campaign member."
    with pytest.raises(SalesforceMalformedRequest) as bad:
        sf.CampaignMember.create({"CampaignId": cid, "LeadId": other, "Status": "Opened"})
    assert bad.value.content[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    with pytest.raises(SalesforceMalformedRequest) as nobody:
        sf.CampaignMember.create({"CampaignId": cid})
    assert nobody.value.content[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    sf.CampaignMember.update(first["id"], {"Status": "Responded"})
    assert sf.CampaignMember.get(first["id"])["HasResponded"] is True
    got = sf.query(f"SELECT Id, LeadId, Status, Campaign.Name FROM CampaignMember WHERE CampaignId = '{cid}'")
    assert [(r["LeadId"], r["Status"], r["Campaign"]["Name"]) for r in got["records"]] == [(lead, "Responded",
                                                                                          "Nurture")]
    sf.CampaignMember.delete(first["id"])
    assert sf.query(f"SELECT COUNT() FROM CampaignMember WHERE CampaignId = '{cid}'")["totalSize"] == 0
    again = sf.CampaignMember.create({"CampaignId": cid, "LeadId": lead})  # a deleted member is no duplicate
    assert again["success"]


def test_connector_enrols_finds_duplicates_exits_and_batches(emu, sf, make_connector):
    cid = _campaign(sf)
    sf.CampaignMemberStatus.create({"CampaignId": cid, "Label": "Removed", "SortOrder": 3})
    leads = _leads(emu, 5)
    by_hand = sf.CampaignMember.create({"CampaignId": cid, "LeadId": leads[0], "Status": "Responded"})["id"]
    conn = make_connector()
    adds = [Membership("salesforce", cid, "Lead", lid, True, status="Sent") for lid in leads]
    before = conn.api_calls
    results = conn.apply_memberships(adds, batch_size=2)
    assert all(r.ok for r in results), [r.message for r in results]
    # 3 inserts of ≤2, then the one duplicate: looked up, and its Status set to the configured one.
    assert conn.api_calls - before == 3 + 2
    assert results[0].crm_id == by_hand and sf.CampaignMember.get(by_hand)["Status"] == "Sent"
    members = conn.campaign_members(cid, leads)
    assert set(members) == set(leads) and {m["Status"] for m in members.values()} == {"Sent"}
    exits = conn.apply_memberships([Membership("salesforce", cid, "Lead", leads[1], False,
                                               members[leads[1]]["Id"], "Removed"),
                                    Membership("salesforce", cid, "Lead", leads[2], False, members[leads[2]]["Id"]),
                                    Membership("salesforce", cid, "Lead", leads[3], False)], batch_size=200)
    assert all(r.ok for r in exits)
    left = conn.campaign_members(cid, leads)
    assert left[leads[1]]["Status"] == "Removed" and leads[2] not in left and leads[3] not in left
    gone = conn.apply_memberships([Membership("salesforce", cid, "Lead", leads[2], False,
                                              members[leads[2]]["Id"])], batch_size=200)
    assert gone[0].ok  # already deleted: removed is removed
    bad = conn.apply_memberships([Membership("salesforce", cid, "Lead", leads[4], True, members[leads[4]]["Id"],
                                             "No Such Status")], batch_size=200)
    assert not bad[0].ok and bad[0].error_code == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
