"""SalesforceConnector against the emulator: pulls, writes, retries, auth and quota."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.base import AuthError, ConfigError, Connector, QuotaExhausted, registry
from connectors.salesforce import SalesforceConnector, SalesforceSettings
from connectors.salesforce.connector import wire_stamp
from mapping.model import CreateTask, FieldChange, SetFields, Stage
from mapping.salesforce import map_page, outbound_fields
from sandbox.salesforce import CONCURRENT_LIMIT, SalesforceEmulator
from sandbox.server import Fault, Request, Response
from tests.salesforce.conftest import ANCHOR, SESSION, fast_settings, make_client

Factory = Callable[..., SalesforceConnector]
DUE = datetime(2026, 5, 4, tzinfo=UTC)


def set_fields(record: dict[str, Any], obj: str = "Lead", **values: str | None) -> SetFields:
    return SetFields("salesforce", obj, record["Id"], {k: FieldChange(None, v) for k, v in values.items()})


def task(record: dict[str, Any], key: str, obj: str = "Lead") -> CreateTask:
    return CreateTask("salesforce", obj, record["Id"], record["OwnerId"], key, "Call: now sales-ready", "why", DUE)


def writable_leads(emu: SalesforceEmulator) -> list[dict[str, Any]]:
    return [r for r in emu.records("Lead") if not r["IsConverted"] and r["OwnerId"].startswith("005")]


def capture_bodies(emu: SalesforceEmulator, route: str) -> list[Any]:
    """Request bodies the emulator received on one route, in order."""
    seen: list[Any] = []

    def hook(req: Request, name: str, resp: Response) -> None:
        if name == route:
            seen.append(req.json())

    emu.app.after_hooks.append(hook)
    return seen


# ------------------------------------------------------------------ pull


def test_backfill_pulls_every_object_in_full_pages(emu: SalesforceEmulator, make_connector: Factory) -> None:
    conn = make_connector()
    pages = list(conn.pull({}))
    streams = ["Lead", "Contact", "CampaignMember", "Task", "Event", "EmailMessage", "Opportunity"]
    history = ["LeadHistory", "ContactHistory"]  # by CreatedDate (history rows have no SystemModstamp)
    assert list(dict.fromkeys(p.stream for p in pages)) == [*streams, *history, "User"]
    streams.append("User")  # the owners' names, by SystemModstamp like the rest
    for stream in history:
        got = [p for p in pages if p.stream == stream]
        assert len(got) == max(1, math.ceil(len(emu.records(stream)) / 2000)), stream
        assert sum(len(p.records) for p in got) == len(emu.records(stream)) > 0
    for stream in streams:
        n = len(emu.records(stream))
        got = [p for p in pages if p.stream == stream]
        assert len(got) == max(1, math.ceil(n / 2000)), stream
        assert sum(len(p.records) for p in got) == n
        assert all("attributes" not in r for p in got for r in p.records)
        # The last page settles the stream at its query's time (the org's Date header): past every stamp read.
        assert max(r["SystemModstamp"] for r in emu.records(stream)) <= got[-1].cursor <= wire_stamp(
            datetime.now(UTC))
    # One call per page (no describe unless a query needs it), plus one email lookup per Task page with email
    # Tasks (their EmailMessages) and per EmailMessage page (their Tasks' WhoId): 200 ids per query.
    lookups = sum(math.ceil(sum(r.get("TaskSubtype") == "Email" for r in p.records) / 200) for p in pages
                  if p.stream == "Task") + sum(1 for p in pages if p.stream == "EmailMessage" and p.records)
    assert conn.api_calls == len(pages) + lookups
    assert conn.api_calls == emu.app.api_calls()
    mapped = [map_page(p) for p in pages]
    assert sum(len(m.contacts) for m in mapped) == len(emu.records("Lead")) + len(emu.records("Contact"))


def test_system_modstamp_ties_across_page_boundaries(emu: SalesforceEmulator, make_connector: Factory) -> None:
    rows = sorted(emu.records("Lead"), key=lambda r: (r["SystemModstamp"], r["Id"]))
    stamps = [r["SystemModstamp"] for r in rows]
    tie = max(set(stamps), key=stamps.count)
    assert stamps.count(tie) > 150  # the enrichment job's second
    watermark = stamps[stamps.index(tie) - 100]  # so the tie straddles the first page boundary
    conn = make_connector(query_batch_size=200)
    pages = list(conn.pull_stream("Lead", watermark))
    assert pages[0].records[-1]["SystemModstamp"] == pages[1].records[0]["SystemModstamp"] == tie
    ids = [r["Id"] for p in pages for r in p.records]
    assert len(ids) == len(set(ids))
    assert set(ids) == {r["Id"] for r in rows if r["SystemModstamp"] >= watermark}
    assert pages[0].cursor == tie
    # Resuming from a cursor in the middle of the tie re-reads the tie (>=) and loses nothing after it.
    resumed = {r["Id"] for p in conn.pull_stream("Lead", pages[0].cursor) for r in p.records}
    assert resumed == {r["Id"] for r in rows if r["SystemModstamp"] >= tie}


def test_expired_locator_restarts_without_duplicates(emu: SalesforceEmulator, make_connector: Factory) -> None:
    conn = make_connector(query_batch_size=500)
    seen: list[str] = []
    for i, page in enumerate(conn.pull_stream("CampaignMember", None)):
        seen.extend(r["Id"] for r in page.records)
        if i == 1:
            emu.api.cursors.clear()  # the org dropped the cursor between pages
    assert len(seen) == len(set(seen)) == len(emu.records("CampaignMember"))
    assert emu.app.counts[("sf.query_more", 400)] == 1


def test_incremental_pull_sees_only_new_writes(emu: SalesforceEmulator, make_connector: Factory) -> None:
    conn = make_connector()
    cursors = {p.stream: p.cursor for p in conn.pull({}) if p.cursor}
    lead = writable_leads(emu)[0]
    assert conn.apply([set_fields(lead, LeadSync_Score__c="3")])[0].ok
    again = [(p.stream, r) for p in conn.pull(cursors) for r in p.records]
    # `>=` re-reads only the rows at each stored cursor's second, plus what changed since.
    # (History rows have no SystemModstamp: their cursor is CreatedDate, and the rows at its second come again.)
    # The cursor is the first query's time, so a write in that same second is one of the rows at the cursor.
    changed = [r["Id"] for stream, r in again if r.get("SystemModstamp", r.get("CreatedDate")) != cursors[stream]]
    assert set(changed) <= {lead["Id"]} and lead["Id"] in {r["Id"] for _, r in again}
    # (The seeded Users share one stamp, so all of them come again: eight rows, once a sync.)
    assert len([s for s, _ in again if not s.endswith("History") and s != "User"]) <= len(cursors) + 5


def test_pull_works_before_fields_exist_and_ensure_fields_names_them() -> None:
    bare = SalesforceEmulator(seed=1, contacts=200, anchor=ANCHOR, session_id=SESSION, with_managed_fields=False)
    bare.start()
    try:
        conn = SalesforceConnector(fast_settings(bare), sleep=lambda s: None)
        pages = list(conn.pull({}))
        assert sum(len(p.records) for p in pages if p.stream == "Lead") == len(bare.records("Lead"))
        # Lead, Contact and Task select custom fields: each is refused once, described, and re-queried.
        assert bare.app.counts[("sf.query", 400)] == 3 and bare.app.counts[("sf.describe", 200)] == 3
        assert map_page(pages[0]).contacts[0].managed["LeadSync_Score__c"] is None
        missing = conn.missing_fields()
        assert "Lead.LeadSync_Stage__c" in missing and "Task.LeadSync_Key__c" in missing and len(missing) == 11
        with pytest.raises(ConfigError) as err:
            conn.ensure_fields()
        assert "Contact.LeadSync_Reason__c" in str(err.value)
        conn.close()
    finally:
        bare.stop()


def test_ensure_fields_is_a_no_op_when_present(make_connector: Factory) -> None:
    conn = make_connector()
    assert conn.missing_fields() == [] and conn.ensure_fields() == []


# ------------------------------------------------------------------ apply


def test_apply_reports_converted_invalid_and_ok(emu: SalesforceEmulator, make_connector: Factory) -> None:
    conn = make_connector()
    leads = writable_leads(emu)
    converted = next(r for r in emu.records("Lead") if r["IsConverted"])
    contact = emu.records("Contact")[0]
    values = outbound_fields(Stage.MQL, 55, 30, 25, "Pricing page x3")
    changes = [set_fields(leads[0], **values), set_fields(converted, **values),
               set_fields(leads[1], LeadSync_Stage__c="Hot"), set_fields(contact, "Contact", **values),
               *[set_fields(r, LeadSync_Score__c="1") for r in leads[2:202]]]
    results = conn.apply(changes)
    assert [r.change for r in results] == changes
    ok, skipped, failed, ok_contact = results[:4]
    assert ok.ok and ok.crm_id == leads[0]["Id"]
    assert skipped.skipped and not skipped.ok and skipped.error_code == "CANNOT_UPDATE_CONVERTED_LEAD"
    assert (failed.ok, failed.error_code, failed.fields) == (False, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                                                             ("LeadSync_Stage__c",))
    assert ok_contact.ok and all(r.ok for r in results[4:])
    written = emu.record("Lead", leads[0]["Id"])
    assert written["LeadSync_Score__c"] == 55.0 and written["LeadSync_Stage__c"] == "MQL"  # a JSON number
    assert emu.record("Lead", converted["Id"]) == converted
    assert emu.app.counts[("sf.collection_update", 200)] == 2  # 204 changes → 200 + 4


def test_follow_up_task_is_created_once(emu: SalesforceEmulator, make_connector: Factory) -> None:
    conn = make_connector()
    lead = writable_leads(emu)[0]
    first = conn.apply([task(lead, "lead-42:sql")])[0]
    second = conn.apply([task(lead, "lead-42:sql")])[0]
    assert first.ok and second.ok and first.crm_id == second.crm_id
    tasks = [t for t in emu.records("Task") if t["LeadSync_Key__c"] == "lead-42:sql"]
    assert len(tasks) == 1
    t = tasks[0]
    assert (t["WhoId"], t["OwnerId"], t["Status"], t["Priority"], t["ActivityDate"]) == (
        lead["Id"], lead["OwnerId"], "Not Started", "High", "2026-05-04")
    assert conn.find_task("lead-42:sql") == t["Id"] and conn.find_task("nope") is None
    twice = conn.apply([task(lead, "dup"), task(lead, "dup")])  # one key twice in one batch
    assert twice[0].ok and twice[0].crm_id == twice[1].crm_id
    assert sum(1 for t in emu.records("Task") if t["LeadSync_Key__c"] == "dup") == 1


def test_task_owner_rules_for_queues_and_inactive_users(emu: SalesforceEmulator, make_connector: Factory) -> None:
    conn = make_connector(queue_owner_id="005Ow0000000003IAA")
    queued = next(r for r in emu.records("Lead") if r["OwnerId"].startswith("00G") and not r["IsConverted"])
    inactive = next(r for r in emu.records("Contact") if r["OwnerId"] == "005Ow0000000006IAA")
    results = conn.apply([task(queued, "q"), task(inactive, "i", "Contact")])
    assert all(r.ok for r in results), results
    assert {emu.record("Task", r.crm_id or "")["OwnerId"] for r in results} == {"005Ow0000000003IAA"}


def test_locked_rows_are_retried_alone(emu: SalesforceEmulator, make_connector: Factory) -> None:
    conn = make_connector()
    leads = writable_leads(emu)[:5]
    emu.lock_rows([leads[2]["Id"]])
    bodies = capture_bodies(emu, "sf.collection_update")
    results = conn.apply([set_fields(r, LeadSync_Score__c="8") for r in leads])
    assert all(r.ok for r in results)
    assert [len(b["records"]) for b in bodies] == [5, 1]
    assert bodies[1]["records"][0]["id"] == leads[2]["Id"]


def test_rows_still_locked_after_retries_are_retryable_failures(emu: SalesforceEmulator,
                                                                make_connector: Factory) -> None:
    conn = make_connector(lock_retry_attempts=2)
    lead = writable_leads(emu)[0]
    emu.lock_rows([lead["Id"]], times=5)
    [res] = conn.apply([set_fields(lead, LeadSync_Score__c="8")])
    assert (res.ok, res.error_code, res.retryable) == (False, "UNABLE_TO_LOCK_ROW", True)


def test_seeded_lock_rate_is_deterministic(emu: SalesforceEmulator, make_connector: Factory) -> None:
    emu.lock_rate(0.3, seed=5)
    conn = make_connector()
    results = conn.apply([set_fields(r, LeadSync_Score__c="2") for r in writable_leads(emu)[:100]])
    assert all(r.ok for r in results)
    assert emu.app.counts[("sf.collection_update", 200)] == 2


# ------------------------------------------------------------------ transport


def test_transient_failures_are_retried_and_counted(emu: SalesforceEmulator, make_connector: Factory) -> None:
    emu.app.faults = [Fault(endpoint="sf.query", status=503, body=[{"errorCode": "SERVER_UNAVAILABLE",
                                                                    "message": "try later"}], remaining=2),
                      Fault(endpoint="sf.query_more", drop=True, remaining=1),
                      Fault(endpoint="sf.collection_update", status=403, body=CONCURRENT_LIMIT, remaining=1)]
    conn = make_connector(query_batch_size=1000)
    pages = list(conn.pull_stream("CampaignMember", None))
    assert sum(len(p.records) for p in pages) == len(emu.records("CampaignMember"))
    assert conn.api_calls == len(pages) + 3  # pages + two 503s and one dropped connection
    assert conn.apply([set_fields(writable_leads(emu)[0], LeadSync_Score__c="4")])[0].ok


def test_daily_limit_raises_quota_exhausted(emu: SalesforceEmulator, make_connector: Factory) -> None:
    conn = make_connector()
    emu.api_usage = 15000 - 1  # the first query is the last call the org allows
    with pytest.raises(QuotaExhausted) as err:
        list(conn.pull({}))
    assert err.value.code == "REQUEST_LIMIT_EXCEEDED"


def test_expired_direct_session_is_an_auth_error(emu: SalesforceEmulator, make_connector: Factory) -> None:
    conn = make_connector()
    emu.expire_sessions()
    with pytest.raises(AuthError):
        conn.find_task("x")


def _rsa_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


def test_jwt_login_and_one_reauthentication(emu: SalesforceEmulator) -> None:
    private, public = _rsa_pair()
    emu.oauth.jwt_public_key = public
    settings = SalesforceSettings(username=emu.oauth.username, consumer_key=emu.oauth.consumer_key,
                                  private_key=private, login_url=emu.instance_url, ca_bundle=emu.ca_pem_path)
    conn = SalesforceConnector(settings, sleep=lambda s: None)
    assert conn.find_task("x") is None
    emu.expire_sessions()
    assert conn.find_task("x") is None  # 401 → one new JWT grant → retried
    assert emu.app.counts[("sf.token", 200)] == 2
    emu.expire_session_after(0)  # every new token dies at once: re-auth does not help
    emu.expire_sessions()
    with pytest.raises(AuthError):
        conn.find_task("x")
    conn.close()


def test_client_credentials_login(emu: SalesforceEmulator) -> None:
    settings = SalesforceSettings(consumer_key=emu.oauth.consumer_key, consumer_secret=emu.oauth.consumer_secret,
                                  domain="sandbox.my", login_url=emu.instance_url, ca_bundle=emu.ca_pem_path)
    conn = SalesforceConnector(settings)
    assert conn.missing_fields() == []
    bad = SalesforceConnector(SalesforceSettings(**{**settings.model_dump(), "consumer_secret": "nope"}))
    with pytest.raises(AuthError):
        bad.missing_fields()
    conn.close()
    bad.close()


def test_env_ca_variables_cannot_override_the_configured_ca(monkeypatch: pytest.MonkeyPatch,
                                                            make_connector: Factory) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/ca.pem")
    monkeypatch.setenv("CURL_CA_BUNDLE", "/nonexistent/ca.pem")
    assert make_connector().find_task("x") is None


def test_is_a_registered_connector(make_connector: Factory) -> None:
    conn = make_connector()
    assert isinstance(conn, Connector) and conn.name == "salesforce"
    assert registry()["salesforce"] is SalesforceConnector
    assert conn.apply([]) == [] and conn.api_calls == 0


def test_large_pulls_switch_to_bulk_and_match_rest(emu: SalesforceEmulator, make_connector: Factory) -> None:
    rest = make_connector(query_batch_size=200)
    rest_pages = list(rest.pull_stream("Contact", None))
    bulk = make_connector(query_batch_size=200, bulk_threshold=50, bulk_page_size=100)
    bulk_pages = list(bulk.pull_stream("Contact", None))
    assert [p.meta["api"] for p in bulk_pages] == ["rest"] + ["bulk2"] * (len(bulk_pages) - 1)
    rest_records = [r for p in rest_pages for r in p.records]
    bulk_records = [r for p in bulk_pages for r in p.records]
    assert bulk_records == rest_records  # CSV typed back into exactly the REST shape
    # Both settle at their own first query's time (by the server's clock), never before the newest stamp read.
    newest = max(r["SystemModstamp"] for r in rest_records)
    assert newest <= rest_pages[-1].cursor <= bulk_pages[-1].cursor
    assert emu.app.counts[("sf.bulk_query_create", 200)] == 1
    assert emu.app.counts[("sf.bulk_query_results", 200)] == len(bulk_pages) - 1


def test_read_fields_task_states_and_complete_tasks(emu: SalesforceEmulator, make_connector: Factory) -> None:
    conn = make_connector()
    leads = writable_leads(emu)[:3]
    assert conn.apply([set_fields(leads[0], LeadSync_Score__c="41", LeadSync_Stage__c="MQL")])[0].ok
    values = conn.read_fields("Lead", [r["Id"] for r in leads] + ["00QSb0000000zzzAAA"],
                              ["LeadSync_Score__c", "LeadSync_Stage__c", "Nope__c"])
    assert set(values) == {r["Id"] for r in leads}
    assert values[leads[0]["Id"]] == {"LeadSync_Score__c": 41.0, "LeadSync_Stage__c": "MQL", "Nope__c": None}
    made = conn.apply([task(r, f"k{i}") for i, r in enumerate(leads)])
    ids = [r.crm_id or "" for r in made]
    assert conn.task_states(ids) == dict.fromkeys(ids, False)
    assert conn.complete_tasks(ids[:2] + ["00TSb0000000zzzAAA"]) == ["00TSb0000000zzzAAA"]
    assert conn.task_states(ids) == {ids[0]: True, ids[1]: True, ids[2]: False}
    assert emu.record("Task", ids[0])["Status"] == "Completed"


def test_validation_rule_rejection_is_reported_with_the_crm_reason(emu: SalesforceEmulator,
                                                                   make_connector: Factory) -> None:
    leads = writable_leads(emu)[:3]
    emu.reject_writes([leads[1]["Id"]], fields=["LeadSync_Score__c"])
    results = make_connector().apply([set_fields(r, LeadSync_Score__c="5") for r in leads])
    assert [r.ok for r in results] == [True, False, True]
    bad = results[1]
    assert (bad.error_code, bad.message, bad.fields, bad.retryable) == (
        "FIELD_CUSTOM_VALIDATION_EXCEPTION", "Score changes need a manager's approval", ("LeadSync_Score__c",), False)


def test_reserve_and_budget_stop_the_run_before_the_org_runs_dry(emu: SalesforceEmulator,
                                                                 make_connector: Factory) -> None:
    emu.api_usage = 15000 - 100
    reserved = make_connector(api_reserve=95)
    with pytest.raises(QuotaExhausted) as err:
        list(reserved.pull({}))
    assert err.value.code == "API_RESERVE" and emu.api_usage < 15000 - 95 + 2
    budgeted = make_connector(call_budget=3)
    with pytest.raises(QuotaExhausted) as err:
        list(budgeted.pull({}))
    assert err.value.code == "CALL_BUDGET" and budgeted.api_calls == 3


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_soap_password_and_token_login(emu: SalesforceEmulator) -> None:
    creds = {"username": emu.oauth.username, "password": emu.oauth.password,
             "security_token": emu.oauth.security_token, "login_url": emu.instance_url, "ca_bundle": emu.ca_pem_path}
    conn = SalesforceConnector(SalesforceSettings(**creds), sleep=lambda s: None)
    assert conn.find_task("x") is None
    emu.expire_sessions()
    assert conn.find_task("x") is None and emu.app.counts[("sf.soap_login", 200)] == 2
    wrong = SalesforceConnector(SalesforceSettings(**{**creds, "security_token": "stale"}))
    with pytest.raises(AuthError) as err:
        wrong.find_task("x")
    assert err.value.code == "INVALID_LOGIN"
    retired = SalesforceConnector(SalesforceSettings(**creds, api_version="65.0"))
    with pytest.raises(AuthError) as err:
        retired.find_task("x")
    assert err.value.code == "UNSUPPORTED_API_VERSION"
    for c in (conn, wrong, retired):
        c.close()


def test_incremental_pull_reports_deleted_contacts_as_archived(emu: SalesforceEmulator,
                                                               make_connector: Factory) -> None:
    conn = make_connector()
    cursors = {p.stream: p.cursor for p in conn.pull({}) if p.cursor}
    victim = writable_leads(emu)[0]["Id"]
    make_client(emu).restful(f"sobjects/Lead/{victim}", method="DELETE")
    pages = list(conn.pull_stream("Lead", cursors["Lead"]))
    contacts = [c for p in pages for c in map_page(p).contacts if c.id == victim]
    assert len(contacts) == 1 and contacts[0].archived


def test_find_tasks_looks_keys_up_in_one_query(emu, make_connector):
    connector = make_connector()
    from datetime import UTC, datetime

    from mapping.model import CreateTask

    lead = next(r for r in emu.records("Lead") if r.get("IsConverted") is False)
    task = CreateTask("salesforce", "Lead", lead["Id"], None, "key-found", "Follow up", "why",
                      datetime(2026, 11, 2, tzinfo=UTC))
    [created] = connector.apply([task])
    calls = connector.api_calls
    assert connector.find_tasks(["key-found", "key-missing"]) == {"key-found": created.crm_id}
    assert connector.api_calls == calls + 1


def test_task_subject_and_description_fit_the_fields_and_lose_nuls(emu: SalesforceEmulator,
                                                                   make_connector: Factory) -> None:
    lead = writable_leads(emu)[0]
    change = CreateTask("salesforce", "Lead", lead["Id"], lead["OwnerId"], "lead-long:sql",
                        "Follow up: Ann\x00 " + "x" * 300, "why\x00 " + "y" * 40_000, DUE)
    [result] = make_connector().apply([change])
    assert result.ok, result.message
    [t] = [t for t in emu.records("Task") if t["LeadSync_Key__c"] == "lead-long:sql"]
    assert len(t["Subject"]) == 255 and t["Subject"].startswith("Follow up: Ann xxx") and t["Subject"].endswith("…")
    assert len(t["Description"]) == 32_000 and t["Description"].startswith("why yyy")
    assert "\x00" not in t["Subject"] + t["Description"]


def test_a_task_upsert_that_commits_after_the_timeout_is_resent_without_a_duplicate(emu, make_connector):
    """Collections upsert on the LeadSync_Key__c External ID is idempotent: the timed-out send lands late,
    the transport's re-send lands too, and each key still has one Task."""
    import time
    from collections import Counter
    from datetime import UTC, datetime

    from mapping.model import CreateTask
    from sandbox.server import Fault

    connector = make_connector(timeout_s=0.5)
    leads = writable_leads(emu)[:3]
    tasks = [CreateTask("salesforce", "Lead", r["Id"], None, f"late-{r['Id']}", "Follow up", "why",
                        datetime(2026, 11, 2, tzinfo=UTC)) for r in leads]
    emu.app.faults = [Fault("sf.collection_upsert", commit_late_ms=2000, remaining=1)]
    results = connector.apply(tasks)
    assert all(r.ok for r in results)
    deadline = time.monotonic() + 15
    while emu.app.counts[("sf.collection_upsert", 200)] < 2 and time.monotonic() < deadline:
        time.sleep(0.05)  # the late send lands after the re-send
    assert emu.app.counts[("sf.collection_upsert", 200)] == 2  # both sends were processed
    keys = Counter(t.get("LeadSync_Key__c") for t in emu.records("Task") if t.get("LeadSync_Key__c"))
    assert keys == Counter({t.idempotency_key: 1 for t in tasks})
    assert sorted(r.crm_id for r in results) == sorted(
        t["Id"] for t in emu.records("Task") if (t.get("LeadSync_Key__c") or "").startswith("late-"))
