"""The emulator's wire contract, asserted through real simple-salesforce over TLS."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from sandbox.salesforce import SalesforceEmulator
from sandbox.salesforce.ids import checksum
from tests.salesforce.conftest import make_client

STAMP = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000\+0000$"


def open_leads(emu: SalesforceEmulator) -> list[dict[str, Any]]:
    return [r for r in emu.records("Lead") if not r["IsConverted"] and not r["IsDeleted"]]


# ------------------------------------------------------------------ data and ids


def test_seeded_ids_are_18_chars_with_valid_checksums_and_prefixes(emu: SalesforceEmulator) -> None:
    # User ids come from sandbox.seed.OWNERS as they are (no checksum), so they are not checked here.
    prefixes = {"Lead": "00Q", "Contact": "003", "Campaign": "701", "CampaignMember": "00v", "Task": "00T",
                "Event": "00U", "Account": "001"}
    for sobject, prefix in prefixes.items():
        rows = emu.records(sobject)
        assert rows, sobject
        for row in rows[:50]:
            assert len(row["Id"]) == 18 and row["Id"].startswith(prefix)
            assert checksum(row["Id"][:15]) == row["Id"][15:]


def test_dirty_data_and_shared_stamps_are_present(emu: SalesforceEmulator) -> None:
    leads = emu.records("Lead")
    assert any(r["Industry"] == "Crypto Mining" for r in leads)  # not in the picklist, on purpose
    assert any(r["OwnerId"].startswith("00G") for r in leads)  # queue-owned
    assert any(r["IsConverted"] for r in leads)
    stamps: dict[str, int] = {}
    for r in leads + emu.records("Contact"):
        stamps[r["SystemModstamp"]] = stamps.get(r["SystemModstamp"], 0) + 1
    assert max(stamps.values()) > 200


# ------------------------------------------------------------------ query


def test_query_shape_nested_relationships_and_wire_values(sf: Salesforce) -> None:
    body = sf.query("SELECT Id, Name, NumberOfEmployees, Owner.Name, SystemModstamp FROM Lead "
                    "WHERE NumberOfEmployees != null AND OwnerId LIKE '005%' LIMIT 3")
    assert body["totalSize"] == 3 and body["done"] is True
    rec = body["records"][0]
    assert rec["attributes"] == {"type": "Lead", "url": f"/services/data/v59.0/sobjects/Lead/{rec['Id']}"}
    assert isinstance(rec["NumberOfEmployees"], int)
    assert rec["Owner"]["attributes"]["type"] == "Name" and rec["Owner"]["Name"]
    import re

    assert re.match(STAMP, rec["SystemModstamp"])


def test_where_semantics_match_a_python_filter(emu: SalesforceEmulator, sf: Salesforce) -> None:
    soql = ("SELECT Id FROM Lead WHERE (Industry IN ('Retail', 'Media') OR Email LIKE '%GMAIL.com') "
            "AND NOT (Country = 'Germany') AND IsConverted = false AND Title != null")
    got = {r["Id"] for r in sf.query_all(soql)["records"]}
    want = {r["Id"] for r in emu.records("Lead")
            if (r["Industry"] in ("Retail", "Media") or (r["Email"] or "").lower().endswith("gmail.com"))
            and r["Country"] != "Germany" and not r["IsConverted"] and r["Title"] is not None}
    assert got == want and got


def test_order_by_several_keys_and_count(emu: SalesforceEmulator, sf: Salesforce) -> None:
    rows = sf.query_all("SELECT Id, Country, CreatedDate FROM Lead ORDER BY Country DESC, CreatedDate")["records"]
    keys = [(r["Country"], r["CreatedDate"]) for r in rows]
    assert keys == sorted(keys, key=lambda k: (k[0], _neg(k[1])), reverse=True)
    count = sf.query("SELECT COUNT() FROM Lead WHERE IsConverted = true")
    assert count["records"] == [] and count["totalSize"] == sum(1 for r in emu.records("Lead") if r["IsConverted"])


def _neg(stamp: str) -> tuple[int, ...]:
    return tuple(-ord(c) for c in stamp)


def test_paging_with_next_records_url_and_batch_size(emu: SalesforceEmulator, sf: Salesforce) -> None:
    total = len(emu.records("CampaignMember"))
    first = sf.query("SELECT Id FROM CampaignMember")
    assert len(first["records"]) == 2000 and first["totalSize"] == total and not first["done"]
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/") and first["nextRecordsUrl"].endswith(
        "-2000")
    small = sf.query("SELECT Id FROM CampaignMember", headers={"Sforce-Query-Options": "batchSize=50"})
    assert len(small["records"]) == 200  # minimum batch size
    ids = [r["Id"] for r in sf.query_all_iter("SELECT Id FROM CampaignMember",
                                              headers={"Sforce-Query-Options": "batchSize=500"})]
    assert len(ids) == len(set(ids)) == total
    assert emu.app.counts[("sf.query_more", 200)] == (total - 1) // 500


def test_expired_locator_is_invalid_query_locator(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.query_more("/services/data/v59.0/query/01gNOPE-2000", identifier_is_url=True)
    assert err.value.content[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_invalid_field_error_has_the_real_caret_shape(sf: Salesforce) -> None:
    soql = "select Id, Company,Email,LastName,SF_date__c, ConvertedContactId from Lead"
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.query(soql)
    assert err.value.status == 400
    [body] = err.value.content
    assert body["errorCode"] == "INVALID_FIELD" and "fields" not in body
    assert body["message"].startswith(f"\n{soql}\n{' ' * 34}^\nERROR at Row:1:Column:35\n"
                                      "No such column 'SF_date__c' on entity 'Lead'. If you are attempting")


@pytest.mark.parametrize(("soql", "code", "needle"), [
    ("SELECT Id FROM Lead WHERE", "MALFORMED_QUERY", "unexpected token: '<EOF>'"),
    ("SELECT Id FROM Leads", "INVALID_TYPE", "sObject type 'Leads' is not supported."),
    ("SELECT Id, Boss.Name FROM Lead", "INVALID_FIELD", "Didn't understand relationship 'Boss'"),
    ("SELECT Id FROM Lead WHERE SystemModstamp > '2024-01-01T00:00:00Z'", "INVALID_FIELD",
     "must be of type dateTime and should not be enclosed in quotes"),
    ("SELECT Id FROM Lead WHERE Email = 5", "INVALID_FIELD", "must be of type string and should be enclosed"),
])
def test_query_errors(sf: Salesforce, soql: str, code: str, needle: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.query(soql)
    assert err.value.content[0]["errorCode"] == code
    assert needle in err.value.content[0]["message"]
    assert "^\nERROR at Row:1:Column:" in err.value.content[0]["message"]


def test_query_all_sees_deleted_rows(emu: SalesforceEmulator, sf: Salesforce) -> None:
    victim = open_leads(emu)[0]["Id"]
    assert sf.restful(f"sobjects/Lead/{victim}", method="DELETE") is None
    soql = f"SELECT Id, IsDeleted FROM Lead WHERE Id = '{victim}'"
    assert sf.query(soql)["totalSize"] == 0
    rows = sf.query_all(soql, include_deleted=True)["records"]
    assert [(r["Id"], r["IsDeleted"]) for r in rows] == [(victim, True)]
    # the incremental shape is answered from the stamp index, which knows deleted ids without reading rows
    ordered = "SELECT Id FROM Lead WHERE SystemModstamp >= 2000-01-01T00:00:00Z ORDER BY SystemModstamp, Id"
    assert victim not in {r["Id"] for r in sf.query_all(ordered)["records"]}
    assert victim in {r["Id"] for r in sf.query_all(ordered, include_deleted=True)["records"]}
    with pytest.raises(SalesforceResourceNotFound):
        sf.restful(f"sobjects/Lead/{victim}")


# ------------------------------------------------------------------ describe and single records


def test_describe_lists_types_picklists_and_external_ids(sf: Salesforce) -> None:
    fields = {f["name"]: f for f in sf.restful("sobjects/Task/describe")["fields"]}
    assert fields["LeadSync_Key__c"]["externalId"] and fields["LeadSync_Key__c"]["unique"]
    assert fields["TaskSubtype"]["updateable"] is False
    assert [p["value"] for p in fields["Priority"]["picklistValues"]] == ["High", "Normal", "Low"]
    lead = {f["name"]: f for f in sf.restful("sobjects/Lead/describe")["fields"]}
    assert lead["LeadSync_Score__c"]["type"] == "double" and lead["SystemModstamp"]["createable"] is False


def test_single_record_crud_and_upsert_status_codes(emu: SalesforceEmulator, sf: Salesforce) -> None:
    lead = open_leads(emu)[0]
    assert sf.restful(f"sobjects/Lead/{lead['Id']}", method="PATCH", json={"LeadSync_Score__c": 12}) is None
    after = emu.record("Lead", lead["Id"])
    assert after["LeadSync_Score__c"] == 12.0 and after["SystemModstamp"] > lead["SystemModstamp"]
    body = {"WhoId": lead["Id"], "Subject": "Follow up"}
    first = sf.restful("sobjects/Task/LeadSync_Key__c/k%2F1", method="PATCH", json=body)
    assert first["created"] is True and first["success"] is True
    raw = sf._call_salesforce("PATCH", sf.base_url + "sobjects/Task/LeadSync_Key__c/k%2F1", json=body)
    assert raw.status_code == 200 and raw.json()["created"] is False and raw.json()["id"] == first["id"]
    assert emu.record("Task", first["id"])["LeadSync_Key__c"] == "k/1"
    created = sf.restful("sobjects/Lead", method="POST", json={"LastName": "Nobody", "Company": "X"})
    assert created["success"] and created["id"].startswith("00Q")
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.restful("sobjects/Lead", method="POST", json={"LastName": "Nobody"})
    assert err.value.content == [{"message": "Required fields are missing: [Company]",
                                  "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["Company"]}]


# ------------------------------------------------------------------ collections


def _patch(sf: Salesforce, records: list[dict[str, Any]], all_or_none: bool = False) -> Any:
    return sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": all_or_none, "records": records})


def _lead(record_id: str, **values: Any) -> dict[str, Any]:
    return {"attributes": {"type": "Lead"}, "id": record_id, **values}


def test_collection_limit_is_200(emu: SalesforceEmulator, sf: Salesforce) -> None:
    leads = open_leads(emu)
    with pytest.raises(SalesforceMalformedRequest) as err:
        _patch(sf, [_lead(r["Id"], LeadSync_Score__c=1) for r in leads[:201]])
    assert err.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    assert len(_patch(sf, [_lead(r["Id"], LeadSync_Score__c=1) for r in leads[:200]])) == 200


def test_collection_per_record_failures_have_no_id(emu: SalesforceEmulator, sf: Salesforce) -> None:
    ok, other = open_leads(emu)[:2]
    converted = next(r for r in emu.records("Lead") if r["IsConverted"])
    results = _patch(sf, [_lead(ok["Id"], LeadSync_Score__c=7), _lead(converted["Id"], LeadSync_Score__c=7),
                          _lead(other["Id"], Nope__c=1), _lead(other["Id"], LeadSync_Stage__c="Hot")])
    assert results[0] == {"id": ok["Id"], "success": True, "errors": []}
    assert results[1] == {"success": False, "errors": [{"statusCode": "CANNOT_UPDATE_CONVERTED_LEAD",
                                                        "message": "cannot reference converted lead", "fields": []}]}
    assert results[2]["errors"][0]["statusCode"] == "INVALID_FIELD" and "id" not in results[2]
    assert results[3]["errors"][0] == {"statusCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                                       "message": "LeadSync Stage: bad value for restricted picklist field: Hot",
                                       "fields": ["LeadSync_Stage__c"]}
    assert emu.record("Lead", ok["Id"])["LeadSync_Score__c"] == 7.0


def test_all_or_none_rolls_back_every_record(emu: SalesforceEmulator, sf: Salesforce) -> None:
    good, bad = open_leads(emu)[:2]
    results = _patch(sf, [_lead(good["Id"], LeadSync_Score__c=9), _lead(bad["Id"], Nope__c=1)], all_or_none=True)
    assert results[0] == {"success": False, "errors": [{
        "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "message": "Record rolled back because not all records were valid and the request was using AllOrNone header",
        "fields": []}]}
    assert results[1]["errors"][0]["statusCode"] == "INVALID_FIELD"
    assert emu.record("Lead", good["Id"]) == good


def test_collection_create_and_upsert_report_created(emu: SalesforceEmulator, sf: Salesforce) -> None:
    who = open_leads(emu)[0]["Id"]
    task = {"attributes": {"type": "Task"}, "WhoId": who, "Subject": "Call back", "LeadSync_Key__c": "a"}
    created = sf.restful("composite/sobjects", method="POST", json={"allOrNone": False, "records": [task]})
    assert created[0]["success"] and created[0]["id"].startswith("00T")
    again = sf.restful("composite/sobjects/Task/LeadSync_Key__c", method="PATCH",
                       json={"allOrNone": False, "records": [task, {**task, "LeadSync_Key__c": "b"}]})
    assert [(r["success"], r["created"]) for r in again] == [(True, False), (True, True)]
    assert again[0]["id"] == created[0]["id"]
    bad_who = {**task, "LeadSync_Key__c": "c", "WhoId": "001Sb0000000001AAA"}
    [failed] = sf.restful("composite/sobjects/Task/LeadSync_Key__c", method="PATCH",
                          json={"allOrNone": False, "records": [bad_who]})
    assert failed["success"] is False and failed["created"] is False and "id" not in failed
    assert failed["errors"][0]["statusCode"] == "FIELD_INTEGRITY_EXCEPTION" and failed["errors"][0]["fields"] == [
        "WhoId"]


def test_lock_faults_fail_listed_records_once(emu: SalesforceEmulator, sf: Salesforce) -> None:
    a, b = open_leads(emu)[:2]
    emu.lock_rows([b["Id"]])
    first = _patch(sf, [_lead(a["Id"], LeadSync_Score__c=1), _lead(b["Id"], LeadSync_Score__c=1)])
    assert first[0]["success"] and first[1]["errors"][0]["statusCode"] == "UNABLE_TO_LOCK_ROW"
    assert first[1]["errors"][0]["message"].endswith(b["Id"])
    assert _patch(sf, [_lead(b["Id"], LeadSync_Score__c=1)])[0]["success"]


# ------------------------------------------------------------------ limits and auth


def test_limit_header_and_limits_resource(emu: SalesforceEmulator, sf: Salesforce) -> None:
    sf.query("SELECT Id FROM User")
    usage = sf.api_usage["api-usage"]
    assert (usage.used, usage.total) == (1, 15000)
    limits = sf.limits()
    assert limits["DailyApiRequests"] == {"Max": 15000, "Remaining": 15000 - 2}


def test_daily_limit_exceeded(emu: SalesforceEmulator, sf: Salesforce) -> None:
    emu.api_usage = 15000
    with pytest.raises(SalesforceRefusedRequest) as err:
        sf.query("SELECT Id FROM User")
    assert err.value.status == 403
    assert err.value.content == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]


def test_invalid_session_body_and_expiry_after_n_calls(emu: SalesforceEmulator) -> None:
    resp = requests.get(emu.instance_url + "/services/data/v59.0/limits", verify=emu.ca_pem_path,
                        headers={"Authorization": "Bearer wrong"})
    assert resp.status_code == 401
    assert resp.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    emu.expire_session_after(2)
    sf = make_client(emu)
    sf.query("SELECT Id FROM User")
    sf.query("SELECT Id FROM User")
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT Id FROM User")


def test_oauth_client_credentials_token(emu: SalesforceEmulator) -> None:
    resp = requests.post(emu.instance_url + "/services/oauth2/token", verify=emu.ca_pem_path,
                         data={"grant_type": "client_credentials"},
                         auth=("leadsync-sandbox-key", "leadsync-sandbox-secret"))
    body = resp.json()
    assert resp.status_code == 200 and body["instance_url"] == emu.instance_url
    assert make_client(emu, body["access_token"]).query("SELECT COUNT() FROM User")["totalSize"] == 8
    denied = requests.post(emu.instance_url + "/services/oauth2/token", verify=emu.ca_pem_path,
                           data={"grant_type": "client_credentials"}, auth=("leadsync-sandbox-key", "wrong"))
    assert denied.status_code == 400 and denied.json()["error"] == "invalid_client"


# ------------------------------------------------------------------ Bulk API 2.0


def test_bulk2_query_through_simple_salesforce(emu: SalesforceEmulator, sf: Salesforce) -> None:
    soql = "SELECT Id, Account.Type, SystemModstamp, HasOptedOutOfEmail, LeadSync_Score__c FROM Contact ORDER BY Id"
    pages = list(sf.bulk2.Contact.query(soql, max_records=200, wait=0))
    contacts = sorted(emu.records("Contact"), key=lambda r: r["Id"])
    assert len(pages) == -(-len(contacts) // 200)
    header, first = pages[0].splitlines()[:2]
    assert header == '"Id","Account.Type","SystemModstamp","HasOptedOutOfEmail","LeadSync_Score__c"'
    c = contacts[0]
    stamp = c["SystemModstamp"].replace("+0000", "Z")
    assert first.startswith(f'"{c["Id"]}","')
    assert f'"{stamp}","{str(c["HasOptedOutOfEmail"]).lower()}",""' in first  # nulls are empty, datetimes end in Z
    assert emu.app.counts[("sf.bulk_query_job", 200)] == 2  # InProgress, then JobComplete
    with pytest.raises(SalesforceMalformedRequest):
        list(sf.bulk2.Lead.query("SELECT COUNT() FROM Lead", wait=0))


def test_body_that_is_not_an_object_is_a_json_parser_error(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.restful("composite/sobjects", method="PATCH", data="[1, 2]")
    assert err.value.content[0]["errorCode"] == "JSON_PARSER_ERROR"
