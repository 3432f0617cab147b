"""Emulator behaviours peers tripped over, through simple-salesforce over TLS: six-digit fractions in SOQL
datetimes, the refresh-token grant, deleting a finished Bulk 2.0 query job, `DailyBulkApiBatches` in `/limits`,
and a slow request that delays only itself."""

from __future__ import annotations

import threading
import time

import pytest
import requests
from simple_salesforce.exceptions import SalesforceError, SalesforceResourceNotFound

from sandbox.server import Fault
from tests.salesforce.conftest import make_client


def test_datetime_literals_take_six_fractional_digits(sf) -> None:
    where = "SELECT COUNT() FROM Lead WHERE SystemModstamp >= {}"
    millis = sf.query(where.format("2026-04-01T00:00:00.000Z"))["totalSize"]
    micros = sf.query(where.format("2026-04-01T00:00:00.000000Z"))["totalSize"]
    offset = sf.query(where.format("2026-04-01T02:00:00.000000+02:00"))["totalSize"]
    assert millis == micros == offset > 0
    later = sf.query(where.format("2026-04-30T23:59:59.999999Z"))["totalSize"]
    assert later < micros


def _token(emu, **form: str) -> requests.Response:
    s = requests.Session()
    s.verify, s.trust_env = emu.ca_pem_path, False
    return s.post(f"{emu.instance_url}/services/oauth2/token", data={"grant_type": "refresh_token", **form}, timeout=10)


def test_refresh_token_grant_issues_a_working_session(emu) -> None:
    oauth = emu.oauth
    reply = _token(emu, client_id=oauth.consumer_key, client_secret=oauth.consumer_secret,
                   refresh_token=oauth.refresh_token)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["instance_url"] == emu.instance_url and body["token_type"] == "Bearer" and "refresh_token" not in body
    assert make_client(emu, body["access_token"]).query("SELECT Id FROM Lead LIMIT 1")["records"]
    bad = _token(emu, client_id=oauth.consumer_key, refresh_token="5Aep-revoked")
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"
    assert _token(emu, client_id="someone-else", refresh_token=oauth.refresh_token).json()["error"] == \
        "invalid_client_id"


def test_a_finished_bulk_query_job_can_be_deleted(sf) -> None:
    job = sf.restful("jobs/query", method="POST", json={"operation": "query", "query": "SELECT Id FROM Lead"})
    with pytest.raises(SalesforceError) as running:  # not terminated yet: refused
        sf.restful(f"jobs/query/{job['id']}", method="DELETE")
    assert running.value.status == 400 and running.value.content[0]["errorCode"] == "API_ERROR"
    while sf.restful(f"jobs/query/{job['id']}")["state"] != "JobComplete":
        pass
    assert sf.restful(f"jobs/query/{job['id']}", method="DELETE") is None  # 204, no body
    with pytest.raises(SalesforceResourceNotFound):
        sf.restful(f"jobs/query/{job['id']}")


def test_limits_list_daily_bulk_api_batches(sf) -> None:
    limits = sf.limits()
    assert limits["DailyBulkApiBatches"]["Max"] == 15000
    assert {"DailyApiRequests", "DailyBulkV2QueryJobs"} <= set(limits)


def test_a_slow_request_delays_only_itself(emu) -> None:
    emu.app.faults = [Fault("sf.query", latency_ms=60_000, remaining=1)]
    slow = make_client(emu)

    def query() -> None:
        try:
            slow.query("SELECT Id FROM Lead LIMIT 1", timeout=1)
        except requests.RequestException:
            pass  # the client gives up; the server sleeps on, outside the emulator's lock

    thread = threading.Thread(target=query, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while emu.app.faults[0].remaining and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    assert make_client(emu).limits()["DailyApiRequests"]["Max"] > 0  # answered meanwhile
    assert time.monotonic() - started < 5
    thread.join(10)
