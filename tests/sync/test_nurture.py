"""Nurture end to end: the CLI and the real clients against both emulators. MQLs who are not sales-ready join a
HubSpot static list and a Salesforce Campaign; they leave on SQL, disqualification or unsubscribe; re-runs make
no nurture call; plan shows it; undo takes it back; calls come one per batch."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from simple_salesforce import Salesforce

from sandbox.hubspot.seeding import iso
from sandbox.run import Sandbox
from sync.cli import app
from sync.settings import Settings
from sync.state import State
from tests.sync.test_persons import cli, hubspot, runner, salesforce  # helpers both files use

NURTURE_ROUTES = ("lists.memberships.add", "lists.memberships.remove", "sf.collection_create",
                  "sf.collection_delete")


def setup_nurture(sb: Sandbox, monkeypatch: Any, **settings: str) -> tuple[str, str, Salesforce]:
    """A MANUAL contact list and a Campaign (with an extra "Removed" status), made through the APIs, and the
    settings that name them."""
    list_id = hubspot(sb, "POST", "/crm/v3/lists", json={"name": "MQL nurture", "objectTypeId": "0-1",
                                                         "processingType": "MANUAL"})["list"]["listId"]
    sf = salesforce(sb)
    campaign = sf.Campaign.create({"Name": "MQL nurture", "Type": "Email", "IsActive": True})["id"]
    sf.CampaignMemberStatus.create({"CampaignId": campaign, "Label": "Removed", "SortOrder": 3})
    monkeypatch.setenv("LEADSYNC_NURTURE__HUBSPOT_LIST_ID", list_id)
    monkeypatch.setenv("LEADSYNC_NURTURE__SALESFORCE_CAMPAIGN_ID", campaign)
    for key, value in settings.items():
        monkeypatch.setenv(f"LEADSYNC_NURTURE__{key.upper()}", value)
    return list_id, campaign, sf


def campaign_members(sf: Salesforce, campaign: str) -> dict[str, dict[str, Any]]:
    rows = sf.query_all(f"SELECT Id, LeadId, ContactId, Status FROM CampaignMember WHERE CampaignId = '{campaign}'")
    return {r["ContactId"] or r["LeadId"]: r for r in rows["records"]}


def nurture_calls(sb: Sandbox) -> dict[str, int]:
    counts: dict[str, int] = {}
    for app_ in (sb.hubspot.app, sb.salesforce.app):
        for (name, _), n in app_.counts.items():
            if name in NURTURE_ROUTES:
                counts[name] = counts.get(name, 0) + n
    return counts


def stored(source: str, ids: list[str]) -> dict[str, Any]:
    return State(Settings().state_url).contacts(source, ids)


def test_mqls_join_sqls_do_not_and_a_rerun_makes_no_nurture_call(sandbox_env, monkeypatch):
    sb = sandbox_env
    list_id, campaign, sf = setup_nurture(sb, monkeypatch)
    runs = {r["source"]: r for r in cli("backfill")["runs"]}
    assert all(r["status"] == "ok" and r["failed"] == 0 for r in runs.values()), runs
    members = sb.hubspot.list_members(list_id)
    assert len(members) == runs["hubspot"]["nurture_added"] > 0
    for cid in members:  # every member is an MQL who has not unsubscribed or been disqualified
        props = sb.hubspot.contact(cid) or {}
        assert props.get("lifecyclestage") == "marketingqualifiedlead", (cid, props.get("lifecyclestage"))
        assert props.get("hs_email_optout") != "true" and props.get("hs_lead_status") != "UNQUALIFIED"
    state = State(Settings().state_url)
    mqls = [cid for cid, stage in state.db.execute(
        "SELECT contact_id, crm_stage FROM scores WHERE tenant='default' AND source='hubspot'") if stage == "mql"]
    contacts = state.contacts("hubspot", mqls)
    wanted = {cid for cid, c in contacts.items() if not (c.do_not_contact or c.archived or c.read_only)}
    assert wanted - set(members) == set(), "an MQL was not enrolled"
    sqls = [cid for cid, stage in state.db.execute(
        "SELECT contact_id, crm_stage FROM scores WHERE tenant='default' AND source='hubspot'") if stage == "sql"]
    assert sqls and not set(sqls) & set(members)
    on_campaign = campaign_members(sf, campaign)
    assert len(on_campaign) == runs["salesforce"]["nurture_added"] > 0
    for rid, member in on_campaign.items():
        obj = "Contact" if rid.startswith("003") else "Lead"
        rec = sf.__getattr__(obj).get(rid)
        assert rec["LeadSync_Stage__c"] == "MQL" and not rec["HasOptedOutOfEmail"] and member["Status"] == "Sent"
    believed = state.db.execute(
        "SELECT source, count(*) FROM nurture_members WHERE tenant='default' GROUP BY source").fetchall()
    assert dict(believed) == {"hubspot": len(members), "salesforce": len(on_campaign)}
    # The audit trail names every enrolment.
    trail = cli("runs", "show", runs["hubspot"]["run_id"])["audit"]
    assert sorted(a["record_id"] for a in trail if a["field"] == f"nurture:{list_id}" and a["after"] == "member") \
        == sorted(members)
    calls = nurture_calls(sb)
    again = cli("sync", "--once")
    assert again["nurture_added"] == again["nurture_removed"] == 0
    assert nurture_calls(sb) == calls  # zero nurture calls when membership is already right
    assert sb.hubspot.list_members(list_id) == members


def test_plan_shows_enrolments_and_a_member_already_there_is_not_doubled(sandbox_env, monkeypatch):
    sb = sandbox_env
    list_id, campaign, sf = setup_nurture(sb, monkeypatch)
    planned = cli("plan")
    adds = [m for m in planned["nurture"] if m["action"] == "add"]
    assert planned["nurture_added"] == len(adds) > 0 and planned["nurture_removed"] == 0
    assert all(m["email"] for m in adds)
    assert sb.hubspot.list_members(list_id) == [] and campaign_members(sf, campaign) == {}  # plan writes nothing
    human = runner.invoke(app, ["plan"], catch_exceptions=False).stdout
    assert "to enrol" in human and "enrol" in human
    hs = sorted(m["record_id"] for m in adds if m["source"] == "hubspot")
    sf_ids = sorted(m["record_id"] for m in adds if m["source"] == "salesforce")
    assert hs and sf_ids
    # Already members before leadsync ever ran: added to the list by hand, and a campaign member with another
    # status. Neither is doubled; the member gets the configured status.
    hubspot(sb, "PUT", f"/crm/v3/lists/{list_id}/memberships/add", json=[hs[0]])
    who = "ContactId" if sf_ids[0].startswith("003") else "LeadId"
    by_hand = sf.CampaignMember.create({"CampaignId": campaign, who: sf_ids[0], "Status": "Responded"})["id"]
    runs = {r["source"]: r for r in cli("backfill")["runs"]}
    assert all(r["failed"] == 0 for r in runs.values()), runs
    assert sb.hubspot.list_members(list_id) == sorted(hs, key=int)
    on_campaign = campaign_members(sf, campaign)
    assert sorted(on_campaign) == sf_ids and on_campaign[sf_ids[0]]["Id"] == by_hand
    assert {m["Status"] for m in on_campaign.values()} == {"Sent"}


def test_members_leave_on_sql_disqualification_and_unsubscribe(sandbox_env, monkeypatch):
    sb = sandbox_env
    list_id, campaign, sf = setup_nurture(sb, monkeypatch, exit_status="Removed")
    cli("backfill")
    members = sb.hubspot.list_members(list_id)
    on_campaign = campaign_members(sf, campaign)
    sf_only = [rid for rid in on_campaign if not State(Settings().state_url).keys_linking_to([f"salesforce:{rid}"])]
    hs_alone = [cid for cid in members if not stored("hubspot", [cid])[cid].links]
    assert len(hs_alone) >= 3 and len(sf_only) >= 2
    to_sql, disqualified, unsubscribed = hs_alone[:3]
    hubspot(sb, "PATCH", f"/crm/v3/objects/contacts/{to_sql}",
            json={"properties": {"lifecyclestage": "salesqualifiedlead"}})
    hubspot(sb, "PATCH", f"/crm/v3/objects/contacts/{disqualified}",
            json={"properties": {"hs_lead_status": "UNQUALIFIED"}})
    with sb.hubspot.app.lock:  # the person unsubscribed (HubSpot sets this read-only property itself)
        store = sb.hubspot.portal.stores["contacts"]
        store.set_system(store.records[unsubscribed], {"hs_email_optout": "true"}, iso(datetime.now(UTC)))
    lead_out, opted_out = sf_only[:2]
    for rid, values in ((lead_out, {"Status": "Closed - Not Converted"}), (opted_out, {"HasOptedOutOfEmail": True})):
        obj = "Contact" if rid.startswith("003") else "Lead"
        if obj == "Contact" and "Status" in values:
            values = {"HasOptedOutOfEmail": True}
        sf.__getattr__(obj).update(rid, values)
    runs = {r["source"]: r for r in cli("sync", "--once")["runs"]}
    assert runs["hubspot"]["nurture_removed"] == 3 and runs["salesforce"]["nurture_removed"] == 2, runs
    assert runs["hubspot"]["nurture_added"] == runs["salesforce"]["nurture_added"] == 0
    assert sb.hubspot.list_members(list_id) == sorted(set(members) - {to_sql, disqualified, unsubscribed}, key=int)
    after = campaign_members(sf, campaign)
    assert after[lead_out]["Status"] == after[opted_out]["Status"] == "Removed"  # kept, with the exit status
    assert {after[r]["Status"] for r in set(on_campaign) - {lead_out, opted_out}} == {"Sent"}
    trail = cli("runs", "show", runs["salesforce"]["run_id"])["audit"]
    exits = {a["record_id"]: (a["before"], a["after"]) for a in trail if a["field"] == f"nurture:{campaign}"}
    assert exits == {lead_out: ("Sent", None), opted_out: ("Sent", None)}
    assert cli("sync", "--once")["nurture_removed"] == 0


def test_undo_takes_enrolments_back_and_restores_exits(sandbox_env, monkeypatch):
    sb = sandbox_env
    list_id, campaign, sf = setup_nurture(sb, monkeypatch)
    runs = {r["source"]: r for r in cli("backfill")["runs"]}
    members = sb.hubspot.list_members(list_id)
    on_campaign = campaign_members(sf, campaign)
    preview = cli("undo", runs["hubspot"]["run_id"], "--plan")
    assert sorted(m["record_id"] for m in preview["nurture_to_revert"]) == sorted(members)
    assert all(m["action"] == "remove" for m in preview["nurture_to_revert"])
    for source in ("hubspot", "salesforce"):
        undone = cli("undo", runs[source]["run_id"], "--yes")
        # (a Salesforce undo also counts the hand-off tasks it deleted with their Leads as failed completions)
        assert undone["nurture_reverted"] == runs[source]["nurture_added"] and undone["nurture_left"] == []
    assert sb.hubspot.list_members(list_id) == [] and campaign_members(sf, campaign) == {}
    assert State(Settings().state_url).count_nurture_members() == 0
    # Re-applied, the run's decisions come back with their memberships.
    cli("undo", "--reapply", runs["hubspot"]["run_id"])
    cli("undo", "--reapply", runs["salesforce"]["run_id"])
    back = {r["source"]: r for r in cli("sync", "--once", "--rescore", "--yes")["runs"]}
    state = State(Settings().state_url)
    listed, joined = sb.hubspot.list_members(list_id), campaign_members(sf, campaign)
    assert len(listed) == back["hubspot"]["nurture_added"] > 0 and len(joined) == back["salesforce"]["nurture_added"]
    assert set(state.nurture_members("hubspot", list_id, listed)) == set(listed)
    assert set(state.nurture_members("salesforce", campaign, list(joined))) == set(joined) != set()
    on_campaign = joined
    # Undo of an exit puts the member back, with the status it had.
    rid = sorted(on_campaign)[0]
    obj = "Contact" if rid.startswith("003") else "Lead"
    sf.__getattr__(obj).update(rid, {"HasOptedOutOfEmail": True})
    exit_run = {r["source"]: r for r in cli("sync", "--once")["runs"]}["salesforce"]
    assert exit_run["nurture_removed"] == 1 and rid not in campaign_members(sf, campaign)
    assert cli("undo", exit_run["run_id"], "--yes")["nurture_reverted"] == 1
    assert campaign_members(sf, campaign)[rid]["Status"] == "Sent"


def test_one_membership_call_per_batch(sandbox_env, monkeypatch):
    sb = sandbox_env
    list_id, campaign, sf = setup_nurture(sb, monkeypatch, batch_size="7")
    runs = {r["source"]: r for r in cli("backfill")["runs"]}
    added = {s: runs[s]["nurture_added"] for s in runs}
    assert added["hubspot"] > 7 and added["salesforce"] > 7
    calls = nurture_calls(sb)
    # 400 people are one decision batch (sync.batch_size 1000): ceil(n / 7) calls per CRM.
    assert calls.get("lists.memberships.add") == math.ceil(added["hubspot"] / 7)
    assert calls.get("sf.collection_create") == math.ceil(added["salesforce"] / 7)
    assert len(sb.hubspot.list_members(list_id)) == added["hubspot"]


def test_a_bad_list_or_member_status_fails_the_records_with_the_crms_reason_and_the_run_goes_on(sandbox_env,
                                                                                                monkeypatch):
    sb = sandbox_env
    setup_nurture(sb, monkeypatch, member_status="Attended")  # not one of the campaign's member statuses
    monkeypatch.setenv("LEADSYNC_NURTURE__HUBSPOT_LIST_ID", "424242")  # no such list
    runs = {r["source"]: r for r in cli("backfill", code=4)["runs"]}  # 4: done, some records rejected
    for r in runs.values():
        assert r["status"] == "ok with failures" and r["failed"] > 0 and r["records_updated"] > 0, r
        assert r["nurture_added"] == 0
    failures = [f for f in cli("failures")["failures"] if f["kind"] == "nurture"]
    by_source = {s: [f for f in failures if f["source"] == s] for s in ("hubspot", "salesforce")}
    assert len(by_source["hubspot"]) == runs["hubspot"]["failed"]
    assert all(f["error_code"] == "OBJECT_NOT_FOUND" and "list 424242" in f["message"] for f in by_source["hubspot"])
    assert all(f["error_code"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST" and "Attended" in f["message"]
               and json.loads(f["fields"]) == ["Status"] for f in by_source["salesforce"])
    assert State(Settings().state_url).count_nurture_members() == 0
    # Fixed, the next sync enrols them: the refused records were kept for retry.
    monkeypatch.setenv("LEADSYNC_NURTURE__MEMBER_STATUS", "Sent")
    again = {r["source"]: r for r in cli("sync", "--once", code=4)["runs"]}  # the HubSpot list is still wrong
    assert again["salesforce"]["nurture_added"] == len(by_source["salesforce"]) and again["salesforce"]["failed"] == 0
    assert not [f for f in cli("failures")["failures"] if f["source"] == "salesforce" and f["kind"] == "nurture"]


def test_a_lost_enrolment_answer_never_doubles_a_campaign_member(sandbox_env, monkeypatch):
    from sandbox.server import Fault

    sb = sandbox_env
    list_id, campaign, sf = setup_nurture(sb, monkeypatch)
    # The first insert is processed, and its answer never arrives (the connection drops after the commit).
    sb.salesforce.app.faults.append(Fault(endpoint="sf.collection_create", commit_late_ms=1, remaining=1))
    sb.hubspot.app.faults.append(Fault(endpoint="lists.memberships.add", commit_late_ms=1, remaining=1))
    cli("backfill")
    assert [f.remaining for f in (*sb.salesforce.app.faults, *sb.hubspot.app.faults)] == [0, 0]  # both fired
    cli("sync", "--once")  # whatever the first run could not confirm, this one settles
    rows = sf.query_all(f"SELECT Id, LeadId, ContactId FROM CampaignMember WHERE CampaignId = '{campaign}'")["records"]
    people = [r["ContactId"] or r["LeadId"] for r in rows]
    assert people and len(people) == len(set(people))  # one member per record, never two
    state = State(Settings().state_url)
    believed = state.nurture_members("salesforce", campaign, people)
    assert set(believed) == set(people) and {m for m, _ in believed.values()} == {r["Id"] for r in rows}
    listed = sb.hubspot.list_members(list_id)
    assert listed and set(state.nurture_members("hubspot", list_id, listed)) == set(listed)
    assert cli("sync", "--once")["nurture_added"] == 0


def test_changes_wait_for_a_full_batch_and_a_run_that_dies_before_writing_them_leaves_them_for_the_next(
        sandbox_env, monkeypatch):
    from sandbox.server import Fault

    sb = sandbox_env
    list_id, _, _ = setup_nurture(sb, monkeypatch, batch_size="200")  # more than this portal's MQLs: one last call
    sb.hubspot.app.faults.append(Fault(endpoint="lists.memberships.add", status=401, remaining=1,
                                       body={"status": "error", "message": "expired", "category": "INVALID_AUTH"}))
    runs = {r["source"]: r for r in cli("backfill", code=1)["runs"]}
    assert runs["hubspot"]["status"] == "error" and runs["hubspot"]["records_updated"] > 0
    assert sb.hubspot.list_members(list_id) == []
    state = State(Settings().state_url)
    mqls = [cid for cid, stage in state.db.execute(
        "SELECT contact_id, crm_stage FROM scores WHERE tenant='default' AND source='hubspot'") if stage == "mql"]
    wanted = [cid for cid, c in state.contacts("hubspot", mqls).items() if not c.do_not_contact]
    assert wanted and set(wanted) <= set(state.dirty("hubspot"))  # the unwritten enrolments kept their records
    again = {r["source"]: r for r in cli("sync", "--once")["runs"]}
    assert again["hubspot"]["nurture_added"] == len(sb.hubspot.list_members(list_id)) >= len(wanted)
    assert not set(wanted) & set(State(Settings().state_url).dirty("hubspot"))  # written, and no longer dirty
    assert cli("sync", "--once")["nurture_added"] == 0
