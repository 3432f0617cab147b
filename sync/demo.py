"""What `leadsync demo` shows of the person layer, through the real clients against the in-process sandbox:
persons linked across the CRMs, HubSpot SQLs created as Salesforce Leads with their tasks, MQLs enrolled in
nurture (a HubSpot list and a Salesforce campaign), a Salesforce disqualification reaching HubSpot within one
sync, and one person explained across both CRMs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests
from rich.console import Console
from simple_salesforce import Salesforce

from sandbox.run import HUBSPOT_TOKEN, SALESFORCE_SESSION
from sync.persons import whole_identity
from sync.safe_text import crm, plain
from sync.state import State


def _salesforce(sb: Any) -> Salesforce:
    s = requests.Session()
    s.verify = str(sb.salesforce.ca_pem_path)
    s.trust_env = False
    return Salesforce(instance_url=sb.salesforce_url, session_id=SALESFORCE_SESSION, version="59.0", session=s)


def _hubspot_props(sb: Any, cid: str, *props: str) -> dict[str, Any]:
    r = requests.get(f"{sb.hubspot_url}/crm/v3/objects/contacts/{cid}", params={"properties": ",".join(props)},
                     headers={"Authorization": f"Bearer {HUBSPOT_TOKEN}"}, timeout=30)
    r.raise_for_status()
    return r.json()["properties"]


def nurture_targets(sb: Any) -> tuple[str, str]:
    """A static contact list and a campaign to nurture MQLs in, made through the CRMs' APIs as marketing would."""
    r = requests.post(f"{sb.hubspot_url}/crm/v3/lists", headers={"Authorization": f"Bearer {HUBSPOT_TOKEN}"},
                      json={"name": "MQL nurture", "objectTypeId": "0-1", "processingType": "MANUAL"}, timeout=30)
    r.raise_for_status()
    campaign = _salesforce(sb).Campaign.create({"Name": "MQL nurture", "Type": "Email", "IsActive": True})
    return str(r.json()["list"]["listId"]), str(campaign["id"])


def nurture_story(sb: Any, state: State, out: Console, list_id: str, campaign_id: str) -> dict[str, Any]:
    """Who the backfill enrolled, read back from both CRMs, and one of them with the reason they qualified."""
    sf = _salesforce(sb)
    r = requests.get(f"{sb.hubspot_url}/crm/v3/lists/{list_id}/memberships", params={"limit": 250},
                     headers={"Authorization": f"Bearer {HUBSPOT_TOKEN}"}, timeout=30)
    r.raise_for_status()
    listed = [m["recordId"] for m in r.json()["results"]]
    members = sf.query_all(f"SELECT Id, LeadId, ContactId, Status FROM CampaignMember WHERE CampaignId = "
                           f"'{campaign_id}'")["records"]
    out.rule("Nurture: MQLs that are not sales-ready yet")
    out.print(f"{r.json().get('total', len(listed)):,} HubSpot MQLs joined static list {list_id} \"MQL nurture\"; "
              f"{len(members):,} Salesforce Leads/Contacts joined campaign {campaign_id} with status "
              f"{members[0]['Status'] if members else 'Sent'!r}. They leave when they become SQL, are disqualified or "
              "unsubscribe; a re-run with nothing new makes no nurture call")
    figures: dict[str, Any] = {"hubspot_list": list_id, "hubspot_members": r.json().get("total", len(listed)),
                               "salesforce_campaign": campaign_id, "salesforce_members": len(members)}
    if listed:
        detail = state.score_detail("hubspot", listed[0]) or {}
        who = (detail.get("contact") or {}).get("email") or listed[0]
        why = "; ".join(str(x.get("text")) for x in (detail.get("reasons") or [])[:3])
        out.print(f"  e.g. {crm(who)} (HubSpot contact {listed[0]}, score {detail.get('total')}): {crm(why)}")
        figures["example"] = {"contact": listed[0], "email": who, "score": detail.get("total")}
    return figures


def persons_figures(state: State) -> dict[str, Any]:
    identity, _ = whole_identity(state)
    created = state.handoffs(statuses=("created",))
    return {"persons": len(identity.persons),
            "in_both_crms": sum(1 for p in identity.persons if len({k.partition(":")[0] for k in p.records}) > 1),
            "identity_conflicts": len(identity.conflicts), "handoff_leads": len(created)}


def _linked_lead(state: State) -> tuple[str, str] | None:
    """A live Salesforce Lead and the HubSpot contact it is one person with."""
    identity, refs = whole_identity(state)
    for p in identity.persons:
        hs = [k for k in p.records if k.startswith("hubspot:") and refs[k].writable]
        leads = [k for k in p.records if refs[k].object_type == "Lead" and refs[k].writable]
        if len(hs) == 1 and len(leads) == 1:
            return hs[0].partition(":")[2], leads[0].partition(":")[2]
    return None


def story(sb: Any, state: State, out: Console, run_sync: Callable[[], Any],
          explain: Callable[[str], None]) -> dict[str, Any]:
    """Print the person-layer part of the demo; returns its figures (also for `--json`)."""
    sf = _salesforce(sb)
    figures = persons_figures(state)
    out.rule("One person across both CRMs")
    out.print(f"{figures['persons']:,} persons; {figures['in_both_crms']:,} of them have records in both CRMs and "
              f"carry one score there; {figures['identity_conflicts']} identity conflicts left for a person "
              "(`leadsync identity conflicts`)")
    leads = sf.query_all("SELECT Id, Name, Company, LeadSync_HubSpot_Id__c FROM Lead "
                         "WHERE LeadSync_Person_Key__c != null ORDER BY Id")["records"]
    out.print(f"{len(leads)} HubSpot SQLs had no Salesforce record: each got one Lead, linked both ways, "
              "and a follow-up task for sales")
    if leads:
        lead = leads[0]
        tasks = sf.query_all(f"SELECT Subject, Description FROM Task WHERE WhoId = '{lead['Id']}'")["records"]
        out.print(f"  e.g. Lead {lead['Id']} {crm(lead['Name'])} ({crm(lead['Company'])}), from HubSpot contact "
                  f"{lead['LeadSync_HubSpot_Id__c']}")
        for t in tasks[:1]:
            out.print(f"  [bold]{crm(t['Subject'])}[/]")
            out.print(plain(t.get("Description") or "", lines=True), markup=False, highlight=False)
    pair = _linked_lead(state)
    if pair is None:
        return figures
    hid, lid = pair
    before = _hubspot_props(sb, hid, "hs_lead_status", "lifecyclestage")
    sf.Lead.update(lid, {"Status": "Closed - Not Converted"})
    run_sync()
    after = _hubspot_props(sb, hid, "hs_lead_status", "lifecyclestage")
    out.rule("Sales disqualifies a lead in Salesforce; one sync later, HubSpot knows")
    out.print(f"Salesforce Lead {lid} → Status 'Closed - Not Converted'; HubSpot contact {hid}: lead status "
              f"{before.get('hs_lead_status') or '(none)'} → {after.get('hs_lead_status')}, lifecycle stage "
              f"{before.get('lifecyclestage')} → {after.get('lifecyclestage')} (never promoted over sales)")
    figures["disqualified"] = {"salesforce_lead": lid, "hubspot_contact": hid, "hubspot_before": before,
                               "hubspot_after": after}
    email = (sb.hubspot.contact(hid) or {}).get("email")
    if email:
        out.rule(f"leadsync explain {email}: one person, both CRMs")
        explain(email)
    return figures
