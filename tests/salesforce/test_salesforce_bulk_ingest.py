"""Bulk API 2.0 ingest jobs, driven through real simple-salesforce (`sf.bulk2.X.insert/update/upsert/delete`)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.bulk2 import Operation
from simple_salesforce.exceptions import (
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceOperationError,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from sandbox.salesforce import SalesforceEmulator
from sandbox.seed import OWNERS
from sandbox.server import Fault
from tests.salesforce.conftest import ANCHOR, SESSION, make_client

MISSING_LASTNAME = "REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --"


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(text.splitlines()))


def open_leads(emu: SalesforceEmulator) -> list[dict[str, Any]]:
    return [r for r in emu.records("Lead") if not r["IsConverted"] and not r["IsDeleted"]]


def seen(sf: Salesforce) -> list[requests.Response]:
    """Every response the client receives from now on (simple-salesforce's Bulk calls don't expose them)."""
    out: list[requests.Response] = []
    sf.session.hooks["response"].append(lambda resp, *args, **kwargs: out.append(resp))
    return out


def ingest_url(emu: SalesforceEmulator, job_id: str) -> str:
    return f"{emu.instance_url}/services/data/v59.0/jobs/ingest/{job_id}"


# ------------------------------------------------------------------ operations


def test_upsert_by_external_id_creates_then_updates(emu: SalesforceEmulator, sf: Salesforce) -> None:
    who = open_leads(emu)[0]["Id"]
    first = sf.bulk2.Task.upsert(records=[{"LeadSync_Key__c": "ls-1", "Subject": "Call", "WhoId": who},
                                          {"LeadSync_Key__c": "ls-2", "Subject": "Call", "WhoId": who}],
                                 external_id_field="LeadSync_Key__c", wait=0)
    assert first[0]["numberRecordsProcessed"] == 2 and first[0]["numberRecordsFailed"] == 0
    created = {r["LeadSync_Key__c"]: r for r in rows(sf.bulk2.Task.get_successful_records(first[0]["job_id"]))}
    assert {r["sf__Created"] for r in created.values()} == {"true"}
    one = created["ls-1"]["sf__Id"]
    before = emu.record("Task", one)
    assert (before["Subject"], before["WhoId"], before["LeadSync_Key__c"]) == ("Call", who, "ls-1")

    second = sf.bulk2.Task.upsert(records=[{"LeadSync_Key__c": "LS-1", "Subject": "Email"},  # keys match any case
                                           {"LeadSync_Key__c": "ls-3", "Subject": "Call"},
                                           {"LeadSync_Key__c": "ls-3", "Subject": "Other"}],
                                  external_id_field="LeadSync_Key__c", wait=0)
    assert second[0]["numberRecordsProcessed"] == 3 and second[0]["numberRecordsFailed"] == 1
    done = rows(sf.bulk2.Task.get_successful_records(second[0]["job_id"]))
    assert [(r["sf__Id"] == one, r["sf__Created"]) for r in done] == [(True, "false"), (False, "true")]
    after = emu.record("Task", one)
    assert after["Subject"] == "Email" and after["WhoId"] == who  # columns not sent are left alone
    assert after["SystemModstamp"] == after["LastModifiedDate"] >= before["SystemModstamp"]
    [dup] = rows(sf.bulk2.Task.get_failed_records(second[0]["job_id"]))
    assert dup["sf__Error"].startswith("DUPLICATE_EXTERNAL_ID:") and dup["Subject"] == "Other"


def test_upsert_by_id_updates_and_moves_system_modstamp(emu: SalesforceEmulator, sf: Salesforce) -> None:
    lead = min(open_leads(emu), key=lambda r: r["SystemModstamp"])
    res = sf.bulk2.Lead.upsert(records=[{"Id": lead["Id"], "LeadSync_Score__c": "61.5"}], wait=0)  # default key: Id
    assert res[0]["numberRecordsFailed"] == 0
    [ok] = rows(sf.bulk2.Lead.get_successful_records(res[0]["job_id"]))
    assert (ok["sf__Id"], ok["sf__Created"]) == (lead["Id"], "false")
    after = emu.record("Lead", lead["Id"])
    assert after["LeadSync_Score__c"] == 61.5 and after["SystemModstamp"] > lead["SystemModstamp"]


def test_insert_from_a_csv_file_reports_the_failed_row(emu: SalesforceEmulator, sf: Salesforce,
                                                       tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_text("LastName,Company,HasOptedOutOfEmail,NumberOfEmployees\n"
                    "Lovelace,Analytical Engines,true,12\n"
                    ",Nameless Inc,false,3\n")
    [res] = sf.bulk2.Lead.insert(csv_file=str(path), wait=0)
    assert (res["numberRecordsProcessed"], res["numberRecordsFailed"], res["numberRecordsTotal"]) == (2, 1, 2)
    [ok] = rows(sf.bulk2.Lead.get_successful_records(res["job_id"]))
    assert ok["sf__Created"] == "true" and ok["LastName"] == "Lovelace"
    made = emu.record("Lead", ok["sf__Id"])
    assert (made["HasOptedOutOfEmail"], made["NumberOfEmployees"], made["OwnerId"]) == (True, 12, OWNERS[0].salesforce_id)
    assert made["CreatedDate"] == made["SystemModstamp"]
    failed_text = sf.bulk2.Lead.get_failed_records(res["job_id"])
    assert failed_text.splitlines()[0] == '"sf__Id","sf__Error",LastName,Company,HasOptedOutOfEmail,NumberOfEmployees'
    [failed] = rows(failed_text)
    assert failed == {"sf__Id": "", "sf__Error": MISSING_LASTNAME, "LastName": "", "Company": "Nameless Inc",
                      "HasOptedOutOfEmail": "false", "NumberOfEmployees": "3"}
    assert sf.bulk2.Lead.get_unprocessed_records(res["job_id"]) == \
        "LastName,Company,HasOptedOutOfEmail,NumberOfEmployees\n"  # header only: nothing left over


def test_update_fails_converted_leads_and_locked_rows_but_commits_the_rest(emu: SalesforceEmulator,
                                                                         sf: Salesforce) -> None:
    converted = next(r for r in emu.records("Lead") if r["IsConverted"])
    good, locked = open_leads(emu)[:2]
    emu.lock_rows([locked["Id"]])
    [res] = sf.bulk2.Lead.update(records=[{"Id": good["Id"], "LeadSync_Score__c": "42"},
                                          {"Id": converted["Id"], "LeadSync_Score__c": "42"},
                                          {"Id": locked["Id"], "LeadSync_Score__c": "42"}], wait=0)
    assert (res["numberRecordsProcessed"], res["numberRecordsFailed"]) == (3, 2)
    failed = {r["sf__Id"]: r["sf__Error"] for r in rows(sf.bulk2.Lead.get_failed_records(res["job_id"]))}
    assert failed == {converted["Id"]: "CANNOT_UPDATE_CONVERTED_LEAD:cannot reference converted lead:--",
                      locked["Id"]: f"UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record or 1 "
                                    f"records: {locked['Id']}:--"}
    assert emu.record("Lead", good["Id"])["LeadSync_Score__c"] == 42.0
    assert emu.record("Lead", converted["Id"])["SystemModstamp"] == converted["SystemModstamp"]


def test_empty_cells_keep_a_value_and_na_clears_it(emu: SalesforceEmulator, sf: Salesforce) -> None:
    lead = next(r for r in open_leads(emu) if r["Title"])
    sf.Lead.update(lead["Id"], {"LeadSync_Reason__c": "webinar"})
    [res] = sf.bulk2.Lead.update(records=[{"Id": lead["Id"], "Title": "", "LeadSync_Reason__c": "#N/A"}], wait=0)
    assert res["numberRecordsFailed"] == 0
    after = emu.record("Lead", lead["Id"])
    assert after["Title"] == lead["Title"] and after["LeadSync_Reason__c"] is None


def test_delete_soft_deletes_and_reports_already_deleted_rows(emu: SalesforceEmulator, sf: Salesforce) -> None:
    lead = open_leads(emu)[0]
    [res] = sf.bulk2.Lead.delete(records=[{"Id": lead["Id"]}], wait=0)
    assert rows(sf.bulk2.Lead.get_successful_records(res["job_id"])) == [
        {"sf__Id": lead["Id"], "sf__Created": "false", "Id": lead["Id"]}]
    assert emu.record("Lead", lead["Id"])["IsDeleted"] is True
    [again] = sf.bulk2.Lead.delete(records=[{"Id": lead["Id"]}], wait=0)
    [failed] = rows(sf.bulk2.Lead.get_failed_records(again["job_id"]))
    assert failed["sf__Error"] == "ENTITY_IS_DELETED:entity is deleted:--"


# ------------------------------------------------------------------ job lifecycle


def test_polling_goes_open_upload_complete_in_progress_job_complete(emu: SalesforceEmulator, sf: Salesforce) -> None:
    responses = seen(sf)
    [res] = sf.bulk2.Lead.update(records=[{"Id": open_leads(emu)[0]["Id"], "LeadSync_Score__c": "7"}], wait=0)
    jobs = [r for r in responses if r.request.method != "PUT"]  # the upload answers 201 with no body
    assert [(r.request.method, r.json()["state"]) for r in jobs] == [
        ("POST", "Open"), ("PATCH", "UploadComplete"), ("GET", "InProgress"), ("GET", "JobComplete"),
        ("GET", "JobComplete")]
    created = jobs[0].json()
    assert created["contentUrl"] == f"services/data/v59.0/jobs/ingest/{res['job_id']}/batches"
    assert (created["id"][:3], created["object"], created["operation"], created["apiVersion"]) == \
        ("750", "Lead", "update", 59.0)
    assert created["createdById"] == OWNERS[0].salesforce_id
    final = jobs[-1].json()
    assert (final["jobType"], final["numberRecordsProcessed"], final["numberRecordsFailed"]) == ("V2Ingest", 1, 0)
    assert "contentUrl" not in final
    assert emu.app.counts[("sf.bulk_ingest_job", 200)] == 3


def test_a_failed_poll_makes_simple_salesforce_abort_leaving_rows_unprocessed(emu: SalesforceEmulator,
                                                                             sf: Salesforce) -> None:
    leads = open_leads(emu)[:2]
    emu.app.faults.append(Fault(endpoint="sf.bulk_ingest_job", status=500, remaining=1,
                                body=[{"errorCode": "UNKNOWN_EXCEPTION", "message": "boom"}]))
    with pytest.raises(SalesforceGeneralError):  # simple-salesforce then aborts the job itself
        sf.bulk2.Lead.update(records=[{"Id": r["Id"], "LeadSync_Score__c": "99"} for r in leads], wait=0)
    [job_id] = emu.api.ingest.jobs
    assert sf.bulk2.Lead._client.get_job(job_id, False)["state"] == "Aborted"
    assert rows(sf.bulk2.Lead.get_unprocessed_records(job_id)) == [
        {"Id": r["Id"], "LeadSync_Score__c": "99"} for r in leads]
    assert rows(sf.bulk2.Lead.get_successful_records(job_id)) == []
    assert all(emu.record("Lead", r["Id"])["LeadSync_Score__c"] == r["LeadSync_Score__c"] for r in leads)
    with pytest.raises(SalesforceOperationError, match="Aborted"):
        sf.bulk2.Lead._client.wait_for_job(job_id, False, 0)


def test_unknown_column_fails_the_job_with_every_row_unprocessed(emu: SalesforceEmulator, sf: Salesforce) -> None:
    with pytest.raises(SalesforceOperationError, match="InvalidBatch : Field name not found : Bogus__c"):
        sf.bulk2.Lead.insert(records=[{"LastName": "X", "Company": "Y", "Bogus__c": "1"}], wait=0)
    [job_id] = emu.api.ingest.jobs
    job = sf.bulk2.Lead._client.get_job(job_id, False)
    assert (job["state"], job["numberRecordsProcessed"]) == ("Failed", 0)
    assert len(rows(sf.bulk2.Lead.get_unprocessed_records(job_id))) == 1


def test_line_ending_must_match_the_job(emu: SalesforceEmulator, sf: Salesforce) -> None:
    client = sf.bulk2.Lead._client
    job_id = client.create_job(Operation.insert, line_ending="LF")["id"]
    client.upload_job_data(job_id, "LastName,Company\r\nA,B\r\n")
    client.close_job(job_id)
    client.get_job(job_id, False)
    job = client.get_job(job_id, False)
    assert job["state"] == "Failed"
    assert job["errorMessage"] == "ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is LF"
    crlf = client.create_job(Operation.insert, line_ending="CRLF", column_delimiter="SEMICOLON")["id"]
    client.upload_job_data(crlf, "LastName;Company\r\nSemi;Colon, Inc\r\n")
    client.close_job(crlf)
    client.wait_for_job(crlf, False, 0)
    assert client.get_ingest_results(crlf, "successfulResults").endswith('"true";Semi;Colon, Inc\r\n')


def test_one_upload_per_job_and_delete_needs_a_closed_job(emu: SalesforceEmulator, sf: Salesforce) -> None:
    client = sf.bulk2.Lead._client
    job_id = client.create_job(Operation.insert)["id"]
    client.upload_job_data(job_id, "LastName,Company\nA,B\n")
    with pytest.raises(SalesforceMalformedRequest) as second:
        client.upload_job_data(job_id, "LastName,Company\nC,D\n")
    assert second.value.content[0]["errorCode"] == "BULK_API_ERROR"
    assert "Found multiple contents for job" in second.value.content[0]["message"]
    with pytest.raises(SalesforceMalformedRequest) as still_open:
        client.delete_job(job_id, False)
    assert still_open.value.content[0]["errorCode"] == "INVALIDJOBSTATE"
    client.abort_job(job_id, False)
    with pytest.raises(SalesforceMalformedRequest):
        client.close_job(job_id)  # an aborted job cannot be closed
    resp = sf.session.delete(ingest_url(emu, job_id), headers={"Authorization": f"Bearer {SESSION}"})
    assert resp.status_code == 204 and resp.content == b""  # which simple-salesforce's delete_job cannot parse
    with pytest.raises(SalesforceResourceNotFound):
        client.get_job(job_id, False)


@pytest.mark.parametrize(("make", "code", "needle"), [
    (lambda sf: sf.bulk2.Nope._client.create_job(Operation.insert), "INVALIDJOB", "Unable to find object: Nope"),
    (lambda sf: sf.bulk2.Lead._client.create_job(Operation.upsert, external_id_field="Email"), "INVALIDJOB",
     "Email does not match an External ID for Lead"),
    (lambda sf: sf.bulk2.Lead._client.create_job(Operation.upsert), "INVALIDJOB", "External ID was blank for Lead"),
    (lambda sf: sf.bulk2.Lead._client.create_job(Operation.hard_delete), "INVALIDJOB", "Hard Delete"),
    (lambda sf: sf.bulk2.Lead._client.create_job(Operation.insert, column_delimiter="SPACE"), "API_ERROR",
     "property: 'columnDelimiter'"),
])
def test_bad_job_requests(sf: Salesforce, make: Any, code: str, needle: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as err:
        make(sf)
    assert err.value.content[0]["errorCode"] == code and needle in err.value.content[0]["message"]


# ------------------------------------------------------------------ accounting and persistence


def test_every_ingest_call_is_counted_and_carries_the_limit_header(emu: SalesforceEmulator, sf: Salesforce) -> None:
    responses = seen(sf)
    before = emu.api_usage
    [res] = sf.bulk2.Lead.insert(records=[{"LastName": "Count", "Company": "Me"}], wait=0)
    sf.bulk2.Lead.get_failed_records(res["job_id"])
    # create, upload, close, two polls, the final get_job, failedResults
    assert len(responses) == 7 and emu.api_usage == before + 7
    assert [r.headers["Sforce-Limit-Info"] for r in responses] == [
        f"api-usage={before + n}/15000" for n in range(1, 8)]
    emu.api_usage = 15000
    with pytest.raises(SalesforceRefusedRequest) as err:
        sf.bulk2.Lead.insert(records=[{"LastName": "Over", "Company": "Limit"}], wait=0)
    assert err.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


def test_rows_written_by_a_job_are_saved_to_the_state_file(tmp_path: Path) -> None:
    state = str(tmp_path / "org.json")
    emu = SalesforceEmulator(seed=2, contacts=100, anchor=ANCHOR, session_id=SESSION, state_file=state)
    emu.start()
    try:
        [res] = make_client(emu).bulk2.Lead.insert(records=[{"LastName": "Durable", "Company": "Disk"}], wait=0)
        [ok] = rows(make_client(emu).bulk2.Lead.get_successful_records(res["job_id"]))
        reloaded = SalesforceEmulator(seed=3, contacts=10, anchor=ANCHOR, session_id=SESSION, state_file=state)
        assert reloaded.record("Lead", ok["sf__Id"])["LastName"] == "Durable"  # on disk before stop()
    finally:
        emu.stop()
