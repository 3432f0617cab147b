"""The seeded cross-CRM overlap the person layer links (sandbox/overlap.py), read through the real clients.

One sandbox at the demo size (2,000 people, seed 1) serves every test here; nothing writes to it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import hubspot
import pytest
import requests
from hubspot.crm.contacts import BatchReadInputSimplePublicObjectId, PublicObjectSearchRequest
from simple_salesforce import Salesforce

from sandbox.overlap import Records, normalise, overlap, person_records, summary
from sandbox.run import HUBSPOT_TOKEN, SALESFORCE_SESSION, Sandbox, start_sandbox
from sandbox.salesforce import SalesforceEmulator
from sandbox.salesforce.ids import checksum, make_id, seeded_counter, seeded_id
from sandbox.seed import person

SEED, COUNT = 1, 2000
ANCHOR = datetime(2026, 5, 1, tzinfo=UTC)
NATIVE = ["salesforceleadid", "salesforcecontactid", "email", "jobtitle", "industry", "numemployees"]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    sb = start_sandbox(contacts=COUNT, seed=SEED, anchor=ANCHOR, search_per_second=1000, burst_limit=100_000)
    yield sb
    sb.stop()


@pytest.fixture(scope="module")
def truth() -> list[Records]:
    return overlap(SEED, COUNT, ANCHOR)


@pytest.fixture(scope="module")
def hs(sandbox: Sandbox) -> hubspot.Client:
    return hubspot.Client.create(access_token=HUBSPOT_TOKEN, host=sandbox.hubspot_url, base_url=sandbox.hubspot_url)


@pytest.fixture(scope="module")
def sf(sandbox: Sandbox) -> Salesforce:
    s = requests.Session()
    s.verify = sandbox.salesforce.ca_pem_path
    s.trust_env = False
    return Salesforce(instance_url=sandbox.salesforce_url, session_id=SALESFORCE_SESSION, version="59.0", session=s)


@pytest.fixture(scope="module")
def hs_contacts(hs: hubspot.Client) -> dict[str, dict[str, Any]]:
    """Every live contact, paged through the list endpoint with the native connector's properties."""
    out: dict[str, dict[str, Any]] = {}
    after = None
    while True:
        page = hs.crm.contacts.basic_api.get_page(limit=100, after=after, properties=NATIVE)
        out.update((c.id, c.properties) for c in page.results)
        if page.paging is None:
            return out
        after = page.paging.next.after


@pytest.fixture(scope="module")
def sf_rows(sf: Salesforce) -> dict[str, dict[str, Any]]:
    """Every Lead and Contact by id (SOQL through simple-salesforce)."""
    leads = sf.query_all("SELECT Id, Email, Title, Industry, NumberOfEmployees, IsConverted, ConvertedContactId, "
                         "Status FROM Lead")["records"]
    contacts = sf.query_all("SELECT Id, Email, Title, AccountId FROM Contact")["records"]
    return {r["Id"]: dict(r) for r in [*leads, *contacts]}


def test_catalog_lists_the_native_connector_ids_as_read_only_strings(hs: hubspot.Client) -> None:
    for name, label in (("salesforceleadid", "Salesforce Lead ID"), ("salesforcecontactid", "Salesforce Contact ID")):
        prop = hs.crm.properties.core_api.get_by_name("contacts", name)
        assert (prop.label, prop.type, prop.field_type, prop.group_name) == (label, "string", "text",
                                                                               "salesforceinformation")
        assert prop.modification_metadata.read_only_value is True and prop.hubspot_defined is True
    groups = {g.name for g in hs.crm.properties.groups_api.get_all("contacts").results}
    assert "salesforceinformation" in groups


def test_overlap_counts_at_the_demo_size_are_plausible(truth: list[Records]) -> None:
    s = summary(truth)
    assert s["people"] == COUNT and 350 <= s["both"] <= 480  # ~20% in both
    assert 0.30 <= s["native_link"] / s["both"] <= 0.50  # ~40% carry the connector's id
    assert s["native_lead_id"] > 0 and s["native_contact_id"] > 0
    assert 0.02 <= s["case_variant"] / s["both"] <= 0.09  # ~5%
    assert 0.005 <= s["duplicate_lead"] / s["salesforce"] <= 0.02  # ~1% of Salesforce people
    assert s["converted"] >= 5
    assert 0.05 <= s["hs_blank"] / s["both"] <= 0.15 and 0.05 <= s["sf_blank"] / s["both"] <= 0.15
    assert s["hubspot_only_sales_ready"] >= 10
    # the figures BEHAVIOR.md quotes
    assert s == {"people": 2000, "hubspot": 1525, "salesforce": 889, "both": 414, "native_link": 153,
                 "native_lead_id": 102, "native_contact_id": 53, "case_variant": 20, "duplicate_lead": 13,
                 "converted": 13, "hs_blank": 41, "sf_blank": 53, "shares_email_with": 20,
                 "hubspot_only_sales_ready": 23}


def test_ground_truth_is_a_pure_function_of_the_person(truth: list[Records]) -> None:
    assert overlap(SEED, COUNT, ANCHOR) == truth
    assert summary(overlap(2, COUNT, ANCHOR)) != summary(truth)
    for r in truth[:300]:
        alone = person_records(person(SEED, r.index, ANCHOR))
        assert (alone.salesforce_lead_id, alone.salesforce_contact_id, alone.native_lead_id,
                alone.salesforce_email) == (r.salesforce_lead_id, r.salesforce_contact_id, r.native_lead_id,
                                            r.salesforce_email)
    ids = [i for r in truth for i in (r.salesforce_lead_id, r.salesforce_contact_id, r.salesforce_duplicate_lead_id)
           if i]
    assert len(ids) == len(set(ids)) and all(checksum(i[:15]) == i[15:] for i in ids)
    assert [seeded_id("Lead", 0), seeded_id("Lead", 0, second=True), seeded_id("Contact", 1)] == [
        "00QSb0000000001MAA", "00QSb0000000002MAA", "003Sb0000000003IAA"]


def test_every_seeded_record_has_the_ground_truth_id_and_email(truth: list[Records],
                                                               sf_rows: dict[str, dict[str, Any]],
                                                               hs_contacts: dict[str, dict[str, Any]]) -> None:
    expected = {}
    for r in truth:
        for record_id in (r.salesforce_lead_id, r.salesforce_contact_id, r.salesforce_duplicate_lead_id):
            if record_id:
                expected[record_id] = r.salesforce_email
    assert {i: sf_rows[i]["Email"] for i in expected} == expected
    assert set(sf_rows) == set(expected)  # nothing else seeded in Lead / Contact
    live = {r.hubspot_id: r.hubspot_email for r in truth if r.hubspot_state == "live"}
    assert {i: p["email"] for i, p in hs_contacts.items()} == live


def test_native_ids_read_through_list_search_and_batch_point_at_the_salesforce_record(
        truth: list[Records], hs: hubspot.Client, hs_contacts: dict[str, dict[str, Any]],
        sf_rows: dict[str, dict[str, Any]]) -> None:
    linked = {r.hubspot_id: r for r in truth if r.native_link and r.hubspot_state == "live"}
    assert len(linked) >= 100
    # list
    listed = {i: (p["salesforceleadid"], p["salesforcecontactid"]) for i, p in hs_contacts.items()
              if p["salesforceleadid"] or p["salesforcecontactid"]}
    assert listed == {i: (r.native_lead_id, r.native_contact_id) for i, r in linked.items()}
    # search
    found: dict[str, tuple[Any, Any]] = {}
    for name in ("salesforceleadid", "salesforcecontactid"):
        after = None
        while True:
            page = hs.crm.contacts.search_api.do_search(PublicObjectSearchRequest(
                filter_groups=[{"filters": [{"propertyName": name, "operator": "HAS_PROPERTY"}]}],
                properties=NATIVE, limit=100, after=after))
            found.update((c.id, (c.properties["salesforceleadid"], c.properties["salesforcecontactid"]))
                         for c in page.results)
            if page.paging is None:
                break
            after = page.paging.next.after
    assert found == listed
    one = next(r for r in linked.values() if r.native_contact_id)
    page = hs.crm.contacts.search_api.do_search(PublicObjectSearchRequest(
        filter_groups=[{"filters": [{"propertyName": "salesforcecontactid", "operator": "EQ",
                                     "value": one.native_contact_id}]}], properties=NATIVE))
    assert [c.id for c in page.results] == [one.hubspot_id]
    # batch read
    ids = sorted(linked)[:100]
    batch = hs.crm.contacts.batch_api.read(BatchReadInputSimplePublicObjectId(
        inputs=[{"id": i} for i in ids], properties=NATIVE))
    assert {c.id: (c.properties["salesforceleadid"], c.properties["salesforcecontactid"])
            for c in batch.results} == {i: listed[i] for i in ids}
    # every id names a real record of the right object, of the same human
    for r in linked.values():
        for record_id, prefix in ((r.native_lead_id, "00Q"), (r.native_contact_id, "003")):
            if record_id:
                assert record_id.startswith(prefix) and record_id in sf_rows
                if r.hubspot_email:
                    assert normalise(sf_rows[record_id]["Email"]) == r.hubspot_email
    assert any(r.converted and r.native_lead_id and r.native_contact_id for r in truth)


def test_case_variant_emails_differ_only_in_case_and_spaces(truth: list[Records],
                                                           sf_rows: dict[str, dict[str, Any]],
                                                           hs_contacts: dict[str, dict[str, Any]]) -> None:
    variants = [r for r in truth if r.case_variant]
    assert len(variants) >= 10
    kinds = Counter()
    for r in variants:
        sf_email = sf_rows[r.salesforce_id]["Email"]
        assert sf_email == r.salesforce_email and sf_email != r.hubspot_email
        assert normalise(sf_email) == r.hubspot_email
        if r.hubspot_state == "live":
            assert hs_contacts[r.hubspot_id]["email"] == r.hubspot_email
        kinds["space" if sf_email != sf_email.strip() else "case"] += 1
    assert kinds["space"] and kinds["case"]
    # the other people in both CRMs have byte-identical emails
    assert all(r.salesforce_email == r.hubspot_email for r in truth
               if r.in_both and not r.case_variant and r.hubspot_email and r.salesforce_email)


def test_duplicate_live_leads_share_one_email(truth: list[Records], sf_rows: dict[str, dict[str, Any]]) -> None:
    live = defaultdict(list)
    for i, row in sf_rows.items():
        if i.startswith("00Q") and not row["IsConverted"] and row["Email"] and "@" in row["Email"]:
            live[normalise(row["Email"])].append(i)
    dups = [r for r in truth if r.salesforce_duplicate_lead_id]
    assert len(dups) >= 5
    for r in dups:
        assert sorted(live[normalise(r.salesforce_email)])[:2] == [r.salesforce_lead_id, r.salesforce_duplicate_lead_id]
        assert sf_rows[r.salesforce_duplicate_lead_id]["Status"] == "Open - Not Contacted"
    ambiguous = {e for e, ids in live.items() if len(ids) > 1}
    # every ambiguous email is a seeded duplicate Lead or the seed's in-CRM duplicate (person i copies i - 1)
    explained = {normalise(r.salesforce_email) for r in dups} | {
        normalise(r.salesforce_email) for r in truth if r.shares_email_with is not None and r.salesforce_email}
    assert ambiguous and ambiguous <= explained


def test_converted_leads_point_at_a_contact_with_the_same_email(truth: list[Records], sf: Salesforce) -> None:
    rows = sf.query_all("SELECT Id, Email, Status, ConvertedDate, ConvertedContactId, ConvertedContact.Email "
                        "FROM Lead WHERE IsConverted = true")["records"]
    expected = {r.salesforce_lead_id: r.salesforce_contact_id for r in truth if r.converted}
    assert len(rows) == len(expected) >= 5
    assert {row["Id"]: row["ConvertedContactId"] for row in rows} == expected
    for row in rows:
        assert row["Status"] == "Closed - Converted" and row["ConvertedDate"]
        assert row["ConvertedContact"]["Email"] == row["Email"]
    contacts = sf.query_all("SELECT Id, AccountId FROM Contact WHERE Id IN ('" + "','".join(expected.values()) +
                            "')")["records"]
    assert len(contacts) == len(expected) and all(c["AccountId"] for c in contacts)


def test_progressive_profiling_leaves_fields_to_one_crm(truth: list[Records], sf_rows: dict[str, dict[str, Any]],
                                                        hs_contacts: dict[str, dict[str, Any]]) -> None:
    hs_prop = {"title": "jobtitle", "industry": "industry", "company_size": "numemployees"}
    sf_field = {"title": "Title", "industry": "Industry", "company_size": "NumberOfEmployees"}
    seen = Counter()
    for r in truth:
        if r.hubspot_state != "live" or not (r.hs_blank or r.sf_blank):
            continue
        contact, record = hs_contacts[r.hubspot_id], sf_rows[r.salesforce_id]
        for f in r.hs_blank:
            assert contact[hs_prop[f]] is None and record[sf_field[f]] is not None
            seen[f"hs_{f}"] += 1
        for f in r.sf_blank:
            assert contact[hs_prop[f]] is not None and record[sf_field[f]] is None
            seen[f"sf_{f}"] += 1
    assert min(seen.values()) >= 1 and set(seen) == {f"{crm}_{f}" for crm in ("hs", "sf") for f in hs_prop}


def test_hubspot_only_sales_ready_people_are_in_hubspot_alone(truth: list[Records], sf: Salesforce,
                                                             hs_contacts: dict[str, dict[str, Any]]) -> None:
    ready = [r for r in truth if r.hubspot_only_sales_ready and r.hubspot_state == "live"]
    assert len(ready) >= 10
    emails = [r.hubspot_email for r in ready if r.hubspot_email]
    quoted = "','".join(e.replace("'", "\\'") for e in emails)
    assert sf.query(f"SELECT COUNT() FROM Lead WHERE Email IN ('{quoted}')")["totalSize"] == 0
    assert all(not (hs_contacts[r.hubspot_id]["salesforceleadid"] or hs_contacts[r.hubspot_id]["salesforcecontactid"])
               for r in ready)


def test_records_created_after_seeding_get_ids_after_the_seeded_ones() -> None:
    emu = SalesforceEmulator(seed=SEED, contacts=300, anchor=ANCHOR, session_id=SALESFORCE_SESSION)
    emu.start()
    try:
        s = requests.Session()
        s.verify = emu.ca_pem_path
        s.trust_env = False
        client = Salesforce(instance_url=emu.instance_url, session_id=SALESFORCE_SESSION, version="59.0", session=s)
        seeded = {r["Id"] for r in emu.records("Lead")}
        made = client.Lead.create({"LastName": "Later", "Company": "Acme", "Email": "later@acme.com"})["id"]
        assert made not in seeded and made > max(seeded)
        assert made == make_id("00Q", seeded_counter(300) + 1)
    finally:
        emu.stop()
