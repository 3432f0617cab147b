"""HubSpotConnector against the emulator, through the real hubspot-api-client."""

from __future__ import annotations

import math
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.base import AuthError, Connector, QuotaExhausted, registry
from connectors.hubspot import HubSpotConnector, HubSpotSettings
from mapping.hubspot import map_page, outbound_fields, parse_datetime
from mapping.model import CreateTask, FieldChange, SetFields, Stage
from sandbox.server import Fault, Response
from tests.cassettes import leaked, recorder, secret_values
from tests.live import live_settings

CASSETTES = Path(__file__).resolve().parents[2] / "cassettes"
RATE_429 = {"status": "error", "message": "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT", "correlationId": "x", "policyName": "TEN_SECONDLY_ROLLING"}


def _set(record_id: str, **values: str) -> SetFields:
    return SetFields("hubspot", "contacts", record_id, {k: FieldChange(None, v) for k, v in values.items()})


def _task(contact_id: str, key: str = "hubspot:101:lead->sql") -> CreateTask:
    return CreateTask("hubspot", "contacts", contact_id, "70000001", key, "Call: SQL reached", "Pricing x3",
                      datetime(2026, 11, 2, 9, tzinfo=UTC))


def _requests(emu) -> Counter[str]:
    return Counter({name: n for (name, _), n in emu.app.counts.items()})


def test_registered_and_satisfies_the_protocol(emu, make_connector):
    assert registry()["hubspot"] is HubSpotConnector
    assert isinstance(make_connector(emu), Connector)


def test_backfill_spends_one_call_per_page_and_none_per_contact(emu, make_connector):
    conn = make_connector(emu)
    pages = list(conn.pull({}))
    n = len(emu.contact_ids())
    by_stream = Counter(p.stream for p in pages)
    assert by_stream["contacts"] == math.ceil(n / 100)
    assert sum(len(p.records) for p in pages if p.stream == "contacts") == n
    calls = _requests(emu)
    archived = len(emu.archived_contact_ids())
    assert calls["contacts.list"] == math.ceil(n / 100) + math.ceil(archived / 100)  # live, then ?archived=true
    assert calls["contacts.get"] == calls["contacts.search"] == 0
    assert set(by_stream) == {"contacts", "contacts_archived", "page_views", "email_events", "form_submissions",
                              "meetings", "owners"}
    assert calls["owners.list"] == 2  # active, then archived: read once a run for the report's names
    assert conn.api_calls == emu.app.api_calls()
    for stream in set(by_stream) - {"owners"}:  # every stream ends with an epoch-ms cursor (compared as strings)
        assert re.fullmatch(r"\d{13}", [p for p in pages if p.stream == stream][-1].cursor)
    cursors = [p.cursor for p in pages if p.stream == "contacts"]
    assert cursors == sorted(cursors)  # string order is progress order, and the final cursor wins
    mapped = [map_page(p) for p in pages]
    assert sum(len(m.contacts) for m in mapped) == n + archived
    assert all(e.contact_email for m in mapped for e in m.engagements if not e.contact_id)


def test_incremental_pull_returns_what_changed_since_the_watermark(emu, make_connector):
    conn = make_connector(emu, overlap_ms=0)
    conn.ensure_fields()
    watermarks = {p.stream: p.cursor for p in conn.pull({}) if p.cursor}
    changed = emu.contact_ids()[5:8]
    assert all(r.ok for r in conn.apply([_set(i, leadsync_score="1") for i in changed]))
    again = [p for p in conn.pull(watermarks) if p.stream == "contacts"]
    got = {r["id"]: r["properties"] for p in again for r in p.records}
    assert set(changed) <= set(got)
    assert all(parse_datetime(p["lastmodifieddate"]).timestamp() * 1000 >= int(watermarks["contacts"])
               for p in got.values())
    assert int(again[-1].cursor) > int(watermarks["contacts"])
    assert emu.app.counts[("contacts.search", 200)] == 1


def test_search_restarts_its_window_before_the_10k_cap(emu, make_connector):
    conn = make_connector(emu, search_page_size=50, search_restart_at=120, overlap_ms=0)
    pages = list(conn._streams.contacts_since(0))
    ids = [r["id"] for p in pages for r in p.records]
    assert sorted(ids) == sorted(emu.contact_ids()) and len(ids) == len(set(ids))
    assert ("contacts.search", 400) not in emu.app.counts


def test_a_killed_backfill_resumes_from_its_cursor(emu, make_connector):
    conn = make_connector(emu)
    stream = conn.pull({})
    first = next(stream)
    assert first.cursor.startswith("0list:000000001:")
    rest = [p for p in make_connector(emu).pull({"contacts": first.cursor}) if p.stream == "contacts"]
    ids = [r["id"] for p in [first, *rest] for r in p.records]
    assert ids == emu.contact_ids()


def test_apply_reports_the_bad_id_and_writes_the_rest(emu, make_connector):
    conn = make_connector(emu)
    ids = emu.contact_ids()[:4]
    changes = [_set(i, **outbound_fields(Stage.MQL, 60, 25, 35, "fit")) for i in ids[:2]]
    changes += [_set("99999", leadsync_score="5"), _set(ids[2], leadsync_score="7"),
                _set("ada@example.com", leadsync_score="9")]  # an email as id: HubSpot's silent no-op
    conn.ensure_fields()
    results = conn.apply(changes)
    assert [r.ok for r in results] == [True, True, False, True, False]
    assert results[2].error_code == "OBJECT_NOT_FOUND" and "Check that ids are valid" in results[2].message
    assert results[4].error_code == "NOT_APPLIED"
    assert emu.contact(ids[0])["leadsync_score"] == "60"
    assert emu.contact(ids[2])["leadsync_score"] == "7"


def test_a_whole_batch_validation_error_is_narrowed_to_the_bad_record(emu, make_connector):
    conn = make_connector(emu)
    conn.ensure_fields()
    ids = emu.contact_ids()[:6]
    changes = [_set(i, leadsync_score="3") for i in ids]
    changes[4] = _set(ids[4], leadsync_score="three")
    results = conn.apply(changes)
    assert [r.ok for r in results] == [True, True, True, True, False, True]
    assert results[4].error_code == "INVALID_LONG" and results[4].fields == ("leadsync_score",)


def test_silently_ignored_backward_stage_is_reported(emu, make_connector):
    conn = make_connector(emu)
    cid = next(i for i in emu.contact_ids() if emu.contact(i)["lifecyclestage"] == "customer")
    [result] = conn.apply([_set(cid, lifecyclestage="lead")])  # no `before`: the connector cannot know
    assert not result.ok and result.error_code == "LIFECYCLE_NOT_APPLIED"
    assert emu.contact(cid)["lifecyclestage"] == "customer"
    back = SetFields("hubspot", "contacts", cid, {"lifecyclestage": FieldChange("customer", "lead")},
                     allow_regression=True)
    [undo] = conn.apply([back])  # only undo may move back: clear, then set
    assert undo.ok and emu.contact(cid)["lifecyclestage"] == "lead"


def test_task_is_created_once_with_its_key_owner_and_association(emu, make_connector):
    conn = make_connector(emu)
    conn.ensure_fields()
    cid = emu.contact_ids()[0]
    [result] = conn.apply([_task(cid)])
    assert result.ok and result.crm_id
    [task] = emu.tasks()
    assert task["id"] == result.crm_id and task["contact_ids"] == [cid]
    props = task["properties"]
    assert (props["hs_task_status"], props["hs_task_priority"], props["hubspot_owner_id"]) == (
        "NOT_STARTED", "HIGH", "70000001")
    assert props["leadsync_key"] == "hubspot:101:lead->sql" and props["hs_timestamp"] == "2026-11-02T09:00:00.000Z"
    assert conn.find_task("hubspot:101:lead->sql") == result.crm_id
    assert conn.find_task("hubspot:nope") is None


def test_a_task_batch_whose_response_is_lost_is_found_not_duplicated(emu, make_connector):
    conn = make_connector(emu)
    conn.ensure_fields()
    lost = {"left": 1}

    def lose_response(req, name: str, resp: Response) -> None:  # created, but the client sees a 504
        if name == "objects.batch.create" and lost["left"]:
            lost["left"] -= 1
            resp.status, resp.body = 504, {"status": "error", "message": "Gateway timeout"}

    emu.app.after_hooks.append(lose_response)
    ids = emu.contact_ids()[:2]
    results = conn.apply([_task(ids[0], "k-one"), _task(ids[1], "k-two")])
    assert all(r.ok for r in results) and len(emu.tasks()) == 2  # looked up, never re-sent
    assert sorted(r.crm_id for r in results) == sorted(t["id"] for t in emu.tasks())
    assert emu.app.counts[("objects.batch.create", 504)] == 1
    assert not any(name == "objects.create" for name, _ in emu.app.counts)


def test_tasks_are_created_a_hundred_per_call(emu, make_connector):
    conn = make_connector(emu)
    conn.ensure_fields()
    ids = emu.contact_ids()[:150]
    emu.app.counts.clear()
    results = conn.apply([_task(cid, f"key-{cid}") for cid in ids])
    assert all(r.ok for r in results) and len(emu.tasks()) == 150
    assert _requests(emu)["objects.batch.create"] == 2
    by_contact = {t["contact_ids"][0]: t["id"] for t in emu.tasks()}
    assert [r.crm_id for r in results] == [by_contact[cid] for cid in ids]  # results in input order


def test_retries_429_bursts_and_503s_on_idempotent_calls(emu, make_connector):
    conn = make_connector(emu)
    emu.app.faults = [Fault("contacts.list", 429, RATE_429, remaining=2),
                      Fault("contacts.list", 503, {"status": "error", "message": "unavailable"}, remaining=1),
                      Fault("contacts.list", drop=True, remaining=1)]
    pages = [p for p in conn.pull({}) if p.stream == "contacts"]
    assert sum(len(p.records) for p in pages) == len(emu.contact_ids())
    assert emu.app.counts[("contacts.list", 429)] == 2 and emu.app.counts[("contacts.list", 503)] == 1
    assert conn.api_calls == emu.app.api_calls() + 1  # the dropped connection got no response to count
    assert len(conn.slept) == 4 and all(w > 0 for w in conn.slept)


def test_search_secondly_limit_is_waited_out(new_emu, make_connector):
    emu = new_emu(search_per_second=2)
    conn = make_connector(emu, search_per_second=50, search_page_size=100, real_sleep=True)
    pages = list(conn._streams.contacts_since(0))
    assert sum(len(p.records) for p in pages) == len(emu.contact_ids())
    assert conn.slept and emu.app.counts[("contacts.search", 429)] >= 1


def test_daily_limit_raises_quota_exhausted(new_emu, make_connector):
    emu = new_emu(daily_limit=2)
    conn = make_connector(emu)
    with pytest.raises(QuotaExhausted):
        list(conn.pull({}))
    assert conn.api_calls == 3


def test_wrong_token_raises_auth_error(emu):
    conn = HubSpotConnector(HubSpotSettings(access_token="pat-wrong", base_url=emu.base_url))
    with pytest.raises(AuthError):
        conn.missing_fields()
    assert conn.api_calls == 1


def test_fields_are_reported_then_created_idempotently(emu, make_connector):
    conn = make_connector(emu)
    expected = ["contacts.leadsync_score", "contacts.leadsync_fit", "contacts.leadsync_engagement",
                "contacts.leadsync_reason", "contacts.leadsync_salesforce_id", "contacts.leadsync_person_key",
                "tasks.leadsync_key"]
    assert conn.missing_fields() == expected
    assert conn.ensure_fields() == expected
    assert conn.ensure_fields() == [] and conn.missing_fields() == []


def test_replays_a_recorded_cassette_on_any_port(new_emu, make_connector):
    """Recorded once against the emulator; replayed by method + path + query, whatever the port.

    With LEADSYNC_RECORD_LIVE=1 and LEADSYNC_HUBSPOT__* set, it re-records against that portal instead.
    """
    cassette = CASSETTES / "hubspot_backfill.yaml"
    live = live_settings("hubspot")
    recording = live is not None or not cassette.exists()
    emu = new_emu(contacts=150)
    conn = HubSpotConnector(live) if live else make_connector(emu)

    def secrets() -> list[str]:  # checked before the cassette is written, OAuth tokens issued meanwhile included
        return secret_values(live or conn._transport.settings, emu.token, conn._transport.client.access_token)

    with recorder(cassette.parent, secrets).use_cassette(cassette.name, record_mode="all" if live else "once"):
        missing = conn.missing_fields()
        pages = []
        for page in conn.pull({}):
            if page.stream not in ("contacts", "contacts_archived"):
                break
            if page.stream == "contacts":
                pages.append(page)
    assert leaked(cassette.read_text(), secrets()) == 0
    if live:
        assert pages and pages[0].records
        return
    assert "contacts.leadsync_score" in missing
    assert [r["id"] for p in pages for r in p.records] == emu.contact_ids()
    if not recording:
        assert emu.app.api_calls() == 0  # everything came from the cassette


def test_read_fields_task_states_and_complete_tasks(emu, make_connector):
    conn = make_connector(emu)
    conn.ensure_fields()
    ids = emu.contact_ids()[:2]
    rows = conn.read_fields("contacts", [*ids, "424242"], ["lifecyclestage", "leadsync_score"])
    assert set(rows) == set(ids) and rows[ids[0]]["leadsync_score"] is None
    [task] = conn.apply([_task(ids[0])])
    assert conn.task_states([task.crm_id]) == {task.crm_id: False}
    assert conn.complete_tasks([task.crm_id, "424242"]) == ["424242"]
    assert conn.task_states([task.crm_id]) == {task.crm_id: True}


def test_close_is_safe(emu, make_connector):
    conn = make_connector(emu)
    conn.missing_fields()
    conn.close()
    assert conn.missing_fields()  # the API objects are rebuilt on demand


def test_incremental_meetings_come_from_search_plus_one_association_batch(emu, make_connector, sdk):
    from hubspot.crm.objects.meetings import SimplePublicObjectInput

    conn = make_connector(emu, overlap_ms=0)
    watermarks = {p.stream: p.cursor for p in conn.pull({}) if p.cursor}
    meeting = sdk(emu).crm.objects.meetings.basic_api.get_page(limit=1, associations=["contacts"]).results[0]
    sdk(emu).crm.objects.meetings.basic_api.update(
        meeting.id, SimplePublicObjectInput(properties={"hs_meeting_outcome": "RESCHEDULED"}))
    emu.app.counts.clear()
    pages = [p for p in conn.pull(watermarks) if p.stream == "meetings"]
    engagements = [e for p in pages for e in map_page(p).engagements]
    contact_id = meeting.associations["contacts"].results[0].id
    assert (f"meeting:{meeting.id}:{contact_id}", contact_id) in [(e.id, e.contact_id) for e in engagements]
    assert len(engagements) <= 2  # the changed meeting, plus any sitting exactly on the watermark (GTE)
    assert emu.app.counts[("objects.search", 200)] == 1
    assert emu.app.counts[("associations.batch.read", 200)] == 1
    assert ("objects.list", 200) not in emu.app.counts


def test_an_engagement_api_the_portal_lacks_is_reported_not_fatal(new_emu, make_connector):
    emu = new_emu(events_api=False)
    pages = list(make_connector(emu).pull({}))
    [views] = [p for p in pages if p.stream == "page_views"]
    assert views.records == [] and views.cursor is None and views.meta["unavailable"].startswith("MISSING_SCOPES")
    assert {p.stream for p in pages} == {"contacts", "contacts_archived", "page_views", "email_events",
                                         "form_submissions", "meetings", "owners"}


def test_throttle_books_slots_in_a_sliding_window():
    from connectors.hubspot.transport import Throttle

    throttle = Throttle(limit=3, window_s=10.0)
    waits = [throttle.reserve() for _ in range(4)]
    assert waits[:3] == [0.0, 0.0, 0.0] and 9.0 < waits[3] <= 10.0
