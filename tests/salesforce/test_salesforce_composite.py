"""`/composite` through simple-salesforce's `sf.restful`, and the two meanings of REQUEST_LIMIT_EXCEEDED."""

from __future__ import annotations

from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from connectors.base import QuotaExhausted
from connectors.salesforce import SalesforceConnector
from sandbox.salesforce import SalesforceEmulator
from tests.salesforce.conftest import fast_settings

V = "/services/data/v59.0"


def lead_body(name: str, **extra: Any) -> dict[str, Any]:
    return {"LastName": name, "Company": "Composite Co", **extra}


def test_composite_runs_subrequests_in_order_with_references(emu: SalesforceEmulator, sf: Salesforce) -> None:
    calls = emu.api_usage
    reply = sf.restful("composite", method="POST", json={"allOrNone": False, "compositeRequest": [
        {"method": "POST", "url": f"{V}/sobjects/Lead", "referenceId": "newLead", "body": lead_body("Ada")},
        {"method": "GET", "url": f"{V}/sobjects/Lead/@{{newLead.id}}?fields=LastName", "referenceId": "readBack"},
        {"method": "PATCH", "url": f"{V}/sobjects/Lead/@{{newLead.id}}", "referenceId": "score",
         "body": {"LeadSync_Score__c": 12}},
        {"method": "PATCH", "url": f"{V}/sobjects/Lead/@{{newLead.id}}", "referenceId": "bad",
         "body": {"LeadSync_Stage__c": "Hot"}},
        {"method": "GET", "url": f"{V}/sobjects/Lead/@{{bad.id}}", "referenceId": "afterBad"},
    ]})
    items = reply["compositeResponse"]
    assert [i["referenceId"] for i in items] == ["newLead", "readBack", "score", "bad", "afterBad"]
    assert [i["httpStatusCode"] for i in items] == [201, 200, 204, 400, 400]
    new_id = items[0]["body"]["id"]
    assert items[0]["httpHeaders"] == {"Location": f"{V}/sobjects/Lead/{new_id}"}
    assert items[1]["body"]["LastName"] == "Ada" and items[1]["body"]["attributes"]["type"] == "Lead"
    assert items[3]["body"][0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"  # whole-request shape
    assert items[4]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert emu.record("Lead", new_id)["LeadSync_Score__c"] == 12.0  # no allOrNone: the good ones stay
    assert emu.api_usage == calls + 1  # one API call for the whole composite


def test_composite_all_or_none_rolls_everything_back(emu: SalesforceEmulator, sf: Salesforce) -> None:
    before = len(emu.records("Lead"))
    reply = sf.restful("composite", method="POST", json={"allOrNone": True, "compositeRequest": [
        {"method": "POST", "url": f"{V}/sobjects/Lead", "referenceId": "a", "body": lead_body("Kept?")},
        {"method": "POST", "url": f"{V}/sobjects/Lead", "referenceId": "b", "body": {"LastName": "No company"}},
        {"method": "POST", "url": f"{V}/sobjects/Lead", "referenceId": "c", "body": lead_body("Never run")},
    ]})
    codes = [(i["httpStatusCode"], i["body"][0]["errorCode"]) for i in reply["compositeResponse"]]
    assert codes == [(400, "PROCESSING_HALTED"), (400, "REQUIRED_FIELD_MISSING"), (400, "PROCESSING_HALTED")]
    assert len(emu.records("Lead")) == before


def test_composite_refuses_more_than_25_subrequests(sf: Salesforce) -> None:
    subs = [{"method": "GET", "url": f"{V}/limits", "referenceId": f"r{i}"} for i in range(26)]
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.restful("composite", method="POST", json={"compositeRequest": subs})
    assert err.value.content[0]["errorCode"] == "LIMIT_EXCEEDED"


def test_concurrent_limit_is_retried_with_backoff(emu: SalesforceEmulator) -> None:
    slept: list[float] = []
    conn = SalesforceConnector(fast_settings(emu), sleep=slept.append)
    emu.exceed_concurrent_limit(times=2, endpoint="sf.query")
    assert conn.find_task("x") is None
    assert emu.app.counts[("sf.query", 403)] == 2 and len(slept) == 2 and all(s >= 0 for s in slept)
    emu.exceed_concurrent_limit(times=None)  # never clears: give up after max_attempts
    with pytest.raises(QuotaExhausted) as err:
        conn.find_task("x")
    assert err.value.code == "REQUEST_LIMIT_EXCEEDED" and "ConcurrentRequests" in str(err.value)
    assert emu.app.counts[("sf.query", 403)] == 2 + conn.settings.max_attempts
    conn.close()


def test_daily_limit_pauses_without_retrying(emu: SalesforceEmulator) -> None:
    slept: list[float] = []
    conn = SalesforceConnector(fast_settings(emu), sleep=slept.append)
    emu.api_usage = emu.api.daily_limit
    with pytest.raises(QuotaExhausted) as err:
        conn.find_task("x")
    assert "TotalRequests" in str(err.value) and slept == [] and conn.api_calls == 1
    conn.close()
