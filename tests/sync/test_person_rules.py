"""The pure person layer: identity, the merged profile, pooled engagement and the one decision per person."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.base import RawPage
from mapping import hubspot as hs_mapping
from mapping import salesforce as sf_mapping
from mapping.identity import Override, RecordRef, normalise_email, resolve, salesforce_id18
from mapping.model import Contact, Engagement, EngagementKind, Stage
from mapping.profile import check_rules, merge, pool
from scoring import default_model
from sync.decide import PersonPolicy, decide
from sync.engine import mapping_for

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def ref(key: str, email: str | None = None, object_type: str = "contacts", links: tuple[str, ...] = (),
        converted: bool = False) -> RecordRef:
    source = key.partition(":")[0]
    return RecordRef(key, source, object_type, normalise_email(email), links, converted=converted)


def groups(identity) -> set[frozenset[str]]:
    return {frozenset(p.records) for p in identity.persons}


def test_email_is_trimmed_and_lower_cased_and_blank_or_invalid_is_no_evidence():
    assert normalise_email("  Ana.Smith@Acme.COM ") == "ana.smith@acme.com"
    assert normalise_email("") is None and normalise_email("ana.at.acme.com") is None
    ids = resolve([ref("hubspot:1", " Ana@Acme.com"), ref("salesforce:00Q1", "ana@acme.com ", "Lead"),
                   ref("hubspot:2", "not-an-email"), ref("salesforce:00Q2", "not-an-email", "Lead")])
    assert groups(ids) == {frozenset({"hubspot:1", "salesforce:00Q1"}), frozenset({"hubspot:2"}),
                           frozenset({"salesforce:00Q2"})}
    assert ids.by_record()["salesforce:00Q1"].evidence["salesforce:00Q1"] == "email"


def test_explicit_ids_beat_email_and_a_contact_beats_leads():
    ids = resolve([
        ref("hubspot:1", "a@x.com", links=("salesforce:003A",)),
        ref("salesforce:003A", "other@x.com", "Contact"),
        ref("salesforce:00QA", "a@x.com", "Lead"),  # same email, but the ids say the Contact: points two ways
        ref("hubspot:2", "b@x.com"), ref("salesforce:00QB", "b@x.com", "Lead"), ref("salesforce:003B", "b@x.com",
                                                                                  "Contact"),
    ])
    person_of = ids.by_record()
    assert set(person_of["hubspot:1"].records) == {"hubspot:1", "salesforce:003A"}
    assert set(person_of["salesforce:00QA"].records) == {"salesforce:00QA"}
    assert set(person_of["hubspot:2"].records) == {"hubspot:2", "salesforce:003B"}  # the Contact wins
    assert any("points two ways" in c.reason for c in ids.conflicts)


def test_two_live_leads_with_one_email_are_ambiguous_and_link_nothing():
    ids = resolve([ref("hubspot:1", "a@x.com"), ref("salesforce:00Q1", "a@x.com", "Lead"),
                   ref("salesforce:00Q2", "A@x.com", "Lead")])
    assert groups(ids) == {frozenset({k}) for k in ("hubspot:1", "salesforce:00Q1", "salesforce:00Q2")}
    (conflict,) = ids.conflicts
    assert conflict.records == ("hubspot:1", "salesforce:00Q1", "salesforce:00Q2") and "Leads" in conflict.reason


def test_a_converted_lead_joins_its_contact_as_history():
    ids = resolve([ref("salesforce:00Q1", "a@x.com", "Lead", links=("salesforce:003C",), converted=True),
                   ref("salesforce:003C", "a@x.com", "Contact"), ref("hubspot:1", "a@x.com")])
    assert groups(ids) == {frozenset({"salesforce:00Q1", "salesforce:003C", "hubspot:1"})}
    assert not ids.conflicts


def test_manual_decisions_stand_above_automatic_evidence():
    refs = [ref("hubspot:1", "a@x.com"), ref("salesforce:00Q1", "a@x.com", "Lead"), ref("hubspot:2", "b@y.com")]
    assert groups(resolve(refs, [Override("unlink", "salesforce:00Q1")])) == {
        frozenset({"hubspot:1"}), frozenset({"salesforce:00Q1"}), frozenset({"hubspot:2"})}
    linked = resolve(refs, [Override("unlink", "hubspot:1"), Override("link", "hubspot:2", "salesforce:00Q1")])
    assert frozenset({"hubspot:2", "salesforce:00Q1"}) in groups(linked)
    assert linked.by_record()["salesforce:00Q1"].evidence["salesforce:00Q1"] == "manual link"


def test_fifteen_character_salesforce_ids_are_read_as_eighteen():
    assert salesforce_id18("00QOw0000000001") == "00QOw0000000001MAA"
    assert salesforce_id18("00QOw0000000001MAA") == "00QOw0000000001MAA"
    page = RawPage("contacts", [{"id": "7", "properties": {"email": "a@x.com", "salesforceleadid": "00QOw0000000001",
                                                           "salesforcecontactid": ""}}])
    (c,) = hs_mapping.map_page(page).contacts
    assert c.links == ("salesforce:00QOw0000000001MAA",)
    lead = {"Id": "00QOw0000000001MAA", "LastName": "S", "Company": "C", "IsConverted": True,
            "ConvertedContactId": "003Ow0000000002", "LeadSync_HubSpot_Id__c": "7"}
    (sf,) = sf_mapping.map_page(RawPage("Lead", [lead])).contacts
    assert set(sf.links) == {"hubspot:7", f"salesforce:{salesforce_id18('003Ow0000000002')}"}


def contact(source: str, rid: str, days_ago: int, **kw) -> Contact:
    object_type = kw.pop("object_type", "contacts" if source == "hubspot" else "Lead")
    return Contact(source=source, id=rid, object_type=object_type, updated_at=NOW - timedelta(days=days_ago), **kw)


def test_profile_rules_pick_each_field_and_keep_provenance():
    h = contact("hubspot", "1", 1, email="a@x.com", title=None, company="Acme", country="France",
                owner_id="hs-owner", lead_status="NEW")
    s = contact("salesforce", "00Q1", 5, email="a@x.com", title="VP Marketing", company="Acme Corp",
                country="Germany", owner_id="005A", lead_status="Working")
    p = merge([h, s], check_rules({}), anchor_key=h.key)
    assert p.contact.key == h.key
    assert p.contact.title == "VP Marketing" and p.provenance["title"].source == "salesforce"  # only there
    assert p.contact.company == "Acme" and p.contact.country == "France"  # two_way: the most recent
    assert p.contact.owner_id == "005A" and p.contact.lead_status == "Working"  # sales-owned: Salesforce
    rules = check_rules({"company": "always_salesforce", "country": "dont_sync", "title": "prefer_hubspot_unless_blank"})
    q = merge([h, s], rules, anchor_key=h.key)
    assert q.contact.company == "Acme Corp" and q.contact.country == "France" and q.contact.title == "VP Marketing"
    with pytest.raises(ValueError, match="unknown rule"):
        check_rules({"title": "newest"})
    with pytest.raises(ValueError, match="unknown field"):
        check_rules({"shoe_size": "two_way"})


def test_the_same_touch_in_both_crms_counts_once_but_repeats_in_one_crm_count():
    at = NOW - timedelta(days=2)
    a = Engagement("hubspot", "form:1", "1", EngagementKind.DEMO_REQUEST, at, "Demo request")
    a2 = Engagement("hubspot", "form:2", "1", EngagementKind.PAGE_VIEW, at, "/pricing")
    a3 = Engagement("hubspot", "web:3", "1", EngagementKind.PAGE_VIEW, at + timedelta(seconds=5), "/pricing")
    b = Engagement("salesforce", "00T1", "00Q1", EngagementKind.DEMO_REQUEST, at + timedelta(seconds=20), " demo  REQUEST")
    c = Engagement("salesforce", "00T2", "00Q1", EngagementKind.DEMO_REQUEST, at + timedelta(days=1), "Demo request")
    pooled, dropped = pool([[a, a2, a3], [b, c]])
    assert dropped == 1 and [e.id for e in pooled] == ["form:1", "form:2", "web:3", "00T2"]


def test_one_score_for_both_records_and_a_salesforce_title_raises_the_hubspot_fit():
    model = default_model()
    h = contact("hubspot", "1", 1, email="a@acme.com", lifecycle_stage=Stage.LEAD, company="Acme")
    s = contact("salesforce", "00Q1", 3, email="a@acme.com", title="VP Marketing", lifecycle_stage=Stage.LEAD,
                company="Acme")
    alone = decide([h], {}, model, NOW, NOW, mapping_for, PersonPolicy())
    both = decide([h, s], {}, model, NOW, NOW, mapping_for, PersonPolicy(link_sources=frozenset({"hubspot",
                                                                                                "salesforce"})))
    assert both.score.fit > alone.score.fit
    by_source = {p.contact.source: p for p in both.plans}
    hs_fields = {k: v.after for k, v in by_source["hubspot"].set_fields.fields.items()}
    sf_fields = {k: v.after for k, v in by_source["salesforce"].set_fields.fields.items()}
    assert hs_fields["leadsync_score"] == sf_fields["LeadSync_Score__c"] == str(both.score.total)
    assert hs_fields["leadsync_salesforce_id"] == "00Q1" and sf_fields["LeadSync_HubSpot_Id__c"] == "1"


def test_sales_state_flows_back_and_the_task_goes_where_sales_works():
    model = default_model()
    demo = [Engagement("hubspot", f"form:{i}", "1", EngagementKind.DEMO_REQUEST, NOW - timedelta(days=i), "Demo")
            for i in range(1, 3)]
    h = contact("hubspot", "1", 1, email="a@acme.com", title="VP Marketing", company_size=900,
                lifecycle_stage=Stage.LEAD, industry="Technology", country="United States")
    s = contact("salesforce", "00Q1", 3, email="a@acme.com", lifecycle_stage=Stage.LEAD)
    d = decide([h, s], {h.key: demo}, model, NOW, NOW, mapping_for, PersonPolicy())
    assert d.stage == Stage.SQL
    tasks = [p.task for p in d.plans if p.task]
    assert [t.source for t in tasks] == ["salesforce"]  # one task, on the record sales works in
    closed = contact("salesforce", "00Q1", 3, email="a@acme.com", lifecycle_stage=Stage.LEAD,
                     lead_status="Closed - Not Converted")
    d2 = decide([h, closed], {h.key: demo}, model, NOW, NOW, mapping_for, PersonPolicy())
    hs_plan = next(p for p in d2.plans if p.contact.source == "hubspot")
    fields = {k: v.after for k, v in hs_plan.set_fields.fields.items()}
    assert fields["hs_lead_status"] == "UNQUALIFIED" and "lifecyclestage" not in fields
    assert not any(p.task for p in d2.plans)
    opp = contact("salesforce", "003C", 3, email="a@acme.com", object_type="Contact",
                  lifecycle_stage=Stage.OPPORTUNITY)
    d3 = decide([h, opp], {}, model, NOW, NOW, mapping_for, PersonPolicy())
    hs_plan = next(p for p in d3.plans if p.contact.source == "hubspot")
    assert hs_plan.set_fields.fields["lifecyclestage"].after == "opportunity"


def test_a_hubspot_only_sql_is_handed_off_with_its_task_and_a_placeholder_company():
    model = default_model()
    demo = [Engagement("hubspot", f"form:{i}", "1", EngagementKind.DEMO_REQUEST, NOW - timedelta(days=i), "Demo")
            for i in range(1, 3)]
    h = contact("hubspot", "1", 1, email="a@acme.com", title="VP Marketing", company_size=900,
                lifecycle_stage=Stage.LEAD, industry="Technology", country="United States", last_name="Reed")
    policy = PersonPolicy(handoff_to=("salesforce",), known_sources=frozenset({"hubspot", "salesforce"}))
    d = decide([h], {h.key: demo}, model, NOW, NOW, mapping_for, policy)
    assert d.handoff is not None and not any(p.task for p in d.plans)
    record = sf_mapping.handoff_record("Lead", d.handoff.values, d.handoff.managed)
    assert record["Company"] == "[not provided]" and record["LastName"] == "Reed"
    assert record["LeadSync_HubSpot_Id__c"] == "1" and record["LeadSync_Stage__c"] == "SQL"
    assert d.handoff.task and "sales-ready" in d.handoff.task[0]
    assert decide([h], {h.key: demo}, model, NOW, NOW, mapping_for, policy, conflicted=True).handoff is None
