"""Emulator contract: the wire behaviour of reference/hubspot-api.md, seen through hubspot-api-client."""

from __future__ import annotations

import json
import re

import pytest
import requests
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInput,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInput,
)
from hubspot.crm.contacts.exceptions import ApiException, UnauthorizedException
from hubspot.crm.objects.tasks import (
    AssociationSpec,
    PublicAssociationsForObject,
    PublicObjectId,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.properties import PropertyCreate, PropertyGroupCreate

from sandbox.hubspot import HubSpotEmulator

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _update(client, *items: tuple[str, dict[str, str]]):
    inputs = [SimplePublicObjectBatchInput(id=i, properties=p) for i, p in items]
    return client.crm.contacts.batch_api.update(BatchInputSimplePublicObjectBatchInput(inputs=inputs))


def _raw(emu: HubSpotEmulator, method: str, path: str, **kw) -> requests.Response:
    s = requests.Session()
    s.trust_env = False
    return s.request(method, emu.base_url + path, headers={"Authorization": f"Bearer {emu.token}"}, timeout=10, **kw)


# ----------------------------------------------------------------- contacts list


def test_list_pages_of_100_and_no_paging_key_on_last_page(shared_emu, sdk):
    api = sdk(shared_emu).crm.contacts.basic_api
    seen, after, pages = [], None, 0
    while True:
        page = api.get_page(limit=100, after=after, properties=["email", "lifecyclestage", "numemployees"])
        pages += 1
        seen += [r.id for r in page.results]
        if page.paging is None:
            break
        after = page.paging.next.after
    assert seen == shared_emu.contact_ids() and len(set(seen)) == len(seen)
    assert pages == -(-len(seen) // 100)
    last = _raw(shared_emu, "GET", f"/crm/v3/objects/contacts?limit=100&after={after}").json()
    assert "paging" not in last


def test_list_values_are_strings_unset_are_null_and_always_id_and_modified(shared_emu, sdk):
    body = _raw(shared_emu, "GET", "/crm/v3/objects/contacts?limit=100&properties=jobtitle&properties=leadsync_x"
                "&properties=numemployees&properties=createdate&archived=false").json()
    props = [r["properties"] for r in body["results"]]
    assert all(set(p) == {"jobtitle", "leadsync_x", "numemployees", "createdate", "hs_object_id",
                          "lastmodifieddate"} for p in props)
    assert all(p["leadsync_x"] is None for p in props)
    assert all(v is None or isinstance(v, str) for p in props for v in p.values())
    assert all(ISO_MS.match(p["createdate"]) for p in props)
    assert {p["numemployees"] for p in props} <= {None, "1-5", "5-25", "25-50", "50-100", "100-500", "500-1000",
                                                  "1000-5000", "5000-10000", "10000+"}
    default = _raw(shared_emu, "GET", "/crm/v3/objects/contacts?limit=1").json()["results"][0]["properties"]
    assert set(default) == {"createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"}


def test_get_by_id_and_by_email(shared_emu, sdk):
    api = sdk(shared_emu).crm.contacts.basic_api
    cid = shared_emu.contact_ids()[3]
    rec = api.get_by_id(cid, properties=["email", "lifecyclestage"])
    assert rec.properties["lifecyclestage"] in {"subscriber", "lead", "opportunity", "customer"}
    by_email = api.get_by_id(rec.properties["email"], id_property="email")
    assert by_email.id == cid


def test_uri_past_16k_is_414_with_the_proxy_html_and_15k_passes(shared_emu):
    def props(n: int) -> str:
        return "&".join(f"properties=prop_{i:05d}" for i in range(n))

    assert len(props(650)) > 14_000 and _raw(shared_emu, "GET", f"/crm/v3/objects/contacts?{props(650)}").ok
    too_long = _raw(shared_emu, "GET", f"/crm/v3/objects/contacts?{props(800)}")
    assert too_long.status_code == 414 and too_long.headers["Content-Type"].startswith("text/html")
    assert "<title>414 Request-URI Too Large</title>" in too_long.text


# -------------------------------------------------------------------- batch


def test_batch_update_over_100_inputs_is_400_validation_error(client, emu):
    ids = emu.contact_ids()[:101]
    with pytest.raises(ApiException) as exc:
        _update(client, *[(i, {"leadsync_x": "1"}) for i in ids])
    assert exc.value.status == 400
    assert json.loads(exc.value.body)["category"] == "VALIDATION_ERROR"


def test_batch_update_unknown_id_is_207_with_errors(client, emu):
    cid = emu.contact_ids()[0]
    resp = _update(client, (cid, {"jobtitle": "CTO"}), ("123", {"jobtitle": "CTO"}))
    assert type(resp).__name__ == "BatchResponseSimplePublicObjectWithErrors"
    assert [r.id for r in resp.results] == [cid]
    assert resp.num_errors == 1 and resp.errors[0].category == "OBJECT_NOT_FOUND"
    assert resp.errors[0].context == {"ids": ["123"]}
    assert emu.contact(cid)["jobtitle"] == "CTO"


def test_unknown_and_read_only_properties_fail_the_batch_with_details_in_message(client, emu):
    cid = emu.contact_ids()[0]
    with pytest.raises(ApiException) as exc:
        _update(client, (cid, {"no_such_prop": "1", "hs_email_open": "5"}))
    body = json.loads(exc.value.body)
    assert exc.value.status == 400 and body["category"] == "VALIDATION_ERROR"
    details = json.loads(body["message"].split(": [", 1)[1].join(["[", ""]))
    assert {d["error"] for d in details} == {"PROPERTY_DOESNT_EXIST", "READ_ONLY_VALUE"}
    with pytest.raises(ApiException) as exc:
        _update(client, (cid, {"lifecyclestage": "champion"}))
    assert "INVALID_OPTION" in json.loads(exc.value.body)["message"]


def test_lifecyclestage_is_forward_only_unless_cleared_first(client, emu):
    cid = next(i for i in emu.contact_ids() if emu.contact(i)["lifecyclestage"] == "lead")
    _update(client, (cid, {"lifecyclestage": "salesqualifiedlead"}))
    after_sql = emu.contact(cid)
    assert after_sql["lifecyclestage"] == "salesqualifiedlead"
    assert ISO_MS.match(after_sql["hs_lifecyclestage_salesqualifiedlead_date"])
    resp = _update(client, (cid, {"lifecyclestage": "lead"}))  # backward: succeeds, changes nothing
    assert resp.status == "COMPLETE" and not getattr(resp, "errors", None)
    assert emu.contact(cid) == after_sql  # not even lastmodifieddate moved
    _update(client, (cid, {"lifecyclestage": ""}))
    _update(client, (cid, {"lifecyclestage": "lead"}))
    final = emu.contact(cid)
    assert final["lifecyclestage"] == "lead" and final["lastmodifieddate"] > after_sql["lastmodifieddate"]


def test_only_real_changes_bump_lastmodifieddate(client, emu):
    cid = emu.contact_ids()[1]
    before = emu.contact(cid)
    _update(client, (cid, {"firstname": before["firstname"]}))
    assert emu.contact(cid)["lastmodifieddate"] == before["lastmodifieddate"]


def test_batch_read_missing_ids_are_207(client, emu):
    from hubspot.crm.contacts import BatchReadInputSimplePublicObjectId, SimplePublicObjectId

    req = BatchReadInputSimplePublicObjectId(inputs=[SimplePublicObjectId(id=emu.contact_ids()[0]),
                                                     SimplePublicObjectId(id="42")],
                                             properties=["email"], properties_with_history=[])
    resp = client.crm.contacts.batch_api.read(req)
    assert len(resp.results) == 1 and resp.errors[0].context == {"ids": ["42"]}


# ------------------------------------------------------------------- search


def test_search_filters_sorts_and_totals(shared_emu, sdk):
    api = sdk(shared_emu).crm.contacts.search_api
    cut = "2026-10-01T00:00:00.000Z"
    req = PublicObjectSearchRequest(
        filter_groups=[{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": "1790812800000"}]}],
        sorts=[{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}], properties=["lastmodifieddate"],
        limit=200)
    page = api.do_search(req)
    stamps = [r.properties["lastmodifieddate"] for r in page.results]
    assert stamps == sorted(stamps) and all(s >= cut for s in stamps)
    expected = sum(1 for i in shared_emu.contact_ids() if shared_emu.contact(i)["lastmodifieddate"] >= cut)
    assert page.total == expected


def test_search_past_10k_is_400_not_an_empty_page(shared_emu, sdk):
    api = sdk(shared_emu).crm.contacts.search_api
    with pytest.raises(ApiException) as exc:
        api.do_search(PublicObjectSearchRequest(limit=200, after="9900"))
    assert exc.value.status == 400


def test_search_has_its_own_secondly_limit(new_emu):
    emu = new_emu(contacts=20, search_per_second=4)
    statuses = [_raw(emu, "POST", "/crm/v3/objects/contacts/search", json={"limit": 1}) for _ in range(6)]
    assert [r.status_code for r in statuses].count(429) >= 1
    body = next(r for r in statuses if r.status_code == 429).json()
    assert body["policyName"] == "SECONDLY" and body["errorType"] == "RATE_LIMIT"
    assert body["message"] == "You have reached your secondly limit."
    assert _raw(emu, "GET", "/crm/v3/objects/contacts?limit=1").status_code == 200


# --------------------------------------------------------------- auth / limits


def test_wrong_token_is_401_invalid_authentication(shared_emu, sdk):
    with pytest.raises(UnauthorizedException) as exc:
        sdk(shared_emu, token="pat-wrong").crm.contacts.basic_api.get_page(limit=1)
    body = json.loads(exc.value.body)
    assert body["category"] == "INVALID_AUTHENTICATION" and body["status"] == "error"
    assert body["message"].startswith("Authentication credentials not found.")


def test_burst_and_daily_429_bodies_and_headers(new_emu):
    emu = new_emu(contacts=20, burst_limit=3, burst_window_s=30, daily_limit=5)
    ok = _raw(emu, "GET", "/crm/v3/objects/contacts?limit=1")
    assert ok.headers["X-HubSpot-RateLimit-Max"] == "3"
    assert ok.headers["X-HubSpot-RateLimit-Remaining"] == "2"
    assert ok.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "30000"
    assert ok.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "4"
    for _ in range(2):
        _raw(emu, "GET", "/crm/v3/objects/contacts?limit=1")
    burst = _raw(emu, "GET", "/crm/v3/objects/contacts?limit=1")
    assert burst.status_code == 429 and int(burst.headers["Retry-After"]) >= 1
    assert burst.json()["policyName"] == "TEN_SECONDLY_ROLLING" and burst.json()["errorType"] == "RATE_LIMIT"
    assert "category" not in burst.json()
    emu.limits.burst.clear()
    for _ in range(2):
        _raw(emu, "GET", "/crm/v3/objects/contacts?limit=1")
    daily = _raw(emu, "GET", "/crm/v3/objects/contacts?limit=1")
    assert daily.status_code == 429 and daily.json()["policyName"] == "DAILY"
    assert daily.json()["message"] == "You have reached your daily limit."


# -------------------------------------------------------------------- tasks


def test_task_create_requires_hs_timestamp_and_reads_back_its_association(client, emu):
    api = client.crm.objects.tasks.basic_api
    cid = emu.contact_ids()[0]
    link = PublicAssociationsForObject(to=PublicObjectId(id=cid), types=[
        AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=204)])
    from hubspot.crm.objects.tasks.exceptions import ApiException as TaskApiException

    with pytest.raises(TaskApiException) as exc:
        api.create(SimplePublicObjectInputForCreate(properties={"hs_task_subject": "x"}, associations=[link]))
    assert exc.value.status == 400 and json.loads(exc.value.body)["category"] == "VALIDATION_ERROR"
    created = api.create(SimplePublicObjectInputForCreate(
        properties={"hs_timestamp": "2026-11-02T09:00:00.000Z", "hs_task_subject": "Call"}, associations=[link]))
    assert created.properties["hs_task_status"] == "NOT_STARTED"
    assert created.properties["hs_task_priority"] == "NONE"
    assert created.properties["hs_task_family"] == "SALES"
    back = api.get_by_id(created.id, associations=["contacts"])
    assert back.associations["contacts"].results[0].id == cid
    assert back.associations["contacts"].results[0].type == "task_to_contact"
    assert emu.tasks()[0]["contact_ids"] == [cid]


def test_properties_api_options_groups_and_409(client, emu):
    core = client.crm.properties.core_api
    stage = core.get_by_name("contacts", "lifecyclestage")
    assert [o.value for o in stage.options][:4] == ["subscriber", "lead", "marketingqualifiedlead",
                                                    "salesqualifiedlead"]
    assert "UNQUALIFIED" in [o.value for o in core.get_by_name("contacts", "hs_lead_status").options]
    groups = client.crm.properties.groups_api
    groups.create("contacts", PropertyGroupCreate(name="leadsync", label="leadsync", display_order=-1))
    from hubspot.crm.properties.exceptions import ApiException as PropApiException

    with pytest.raises(PropApiException) as exc:
        groups.create("contacts", PropertyGroupCreate(name="leadsync", label="leadsync", display_order=-1))
    assert exc.value.status == 409
    spec = PropertyCreate(name="leadsync_score", label="score", type="number", field_type="number",
                          group_name="leadsync")
    created = core.create("contacts", spec)
    assert created.name == "leadsync_score" and created.modification_metadata.read_only_value is False
    with pytest.raises(PropApiException) as exc:
        core.create("contacts", spec)
    assert exc.value.status == 409
    cid = emu.contact_ids()[0]
    _update(client, (cid, {"leadsync_score": "42"}))
    assert emu.contact(cid)["leadsync_score"] == "42"
    with pytest.raises(ApiException):
        _update(client, (cid, {"leadsync_score": "forty"}))


# --------------------------------------------------------------- engagement


def test_engagement_streams_page_and_filter(shared_emu, sdk):
    client = sdk(shared_emu)
    first = client.events.events_api.get_page(object_type="contact", event_type="e_visited_page", limit=100,
                                              sort=["ASCENDING"])
    assert len(first.results) == 100 and first.paging.next.after
    stamps = [e.occurred_at for e in first.results]
    assert stamps == sorted(stamps) and first.results[0].properties["hs_url"].startswith("https://")
    later = client.events.events_api.get_page(object_type="contact", event_type="e_visited_page",
                                              occurred_after=stamps[-1], sort=["ASCENDING"], limit=5)
    assert all(e.occurred_at > stamps[-1] for e in later.results)
    email = _raw(shared_emu, "GET", "/email/public/v1/events?eventType=CLICK&limit=50").json()
    assert email["hasMore"] is True and len(email["events"]) == 50
    assert all(e["type"] == "CLICK" and "@" in e["recipient"] for e in email["events"])
    rest = _raw(shared_emu, "GET", f"/email/public/v1/events?eventType=CLICK&limit=1000&offset={email['offset']}")
    assert rest.json()["hasMore"] is False
    assert {e["id"] for e in rest.json()["events"]}.isdisjoint(e["id"] for e in email["events"])
    forms = client.marketing.forms.forms_api.get_page()
    names = {f.name: f.id for f in forms.results}
    assert {"Contact us", "Content download", "Webinar registration", "Demo request"} <= set(names)
    subs = _raw(shared_emu, "GET", f"/form-integrations/v1/submissions/forms/{names['Content download']}"
                "?limit=50").json()["results"]
    assert subs and all({v["name"] for v in s["values"]} >= {"email", "asset"} for s in subs)
    assert [s["submittedAt"] for s in subs] == sorted((s["submittedAt"] for s in subs), reverse=True)
    owners = client.crm.owners.owners_api.get_page()
    assert owners.results and all(not o.archived for o in owners.results)


def test_indexed_incremental_search_matches_the_full_scan(client, emu):
    """The lastmodifieddate range query is answered from an index; it must agree with the generic scan."""
    cid = emu.contact_ids()[7]
    _update(client, (cid, {"jobtitle": "Head of RevOps"}))
    api = client.crm.contacts.search_api

    def ids(*extra: dict, direction: str = "ASCENDING", after: str = "0") -> tuple[int, list[str]]:
        filters = [{"propertyName": "lastmodifieddate", "operator": "GT", "value": "2026-10-15T00:00:00Z"},
                   {"propertyName": "lastmodifieddate", "operator": "LTE", "value": "4102444800000"}, *extra]
        page = api.do_search(PublicObjectSearchRequest(
            filter_groups=[{"filters": filters}], sorts=[{"propertyName": "lastmodifieddate", "direction": direction}],
            properties=["lastmodifieddate"], limit=50, after=after))
        return page.total, [r.id for r in page.results]

    scan = {"propertyName": "hs_object_id", "operator": "HAS_PROPERTY"}
    for direction in ("ASCENDING", "DESCENDING"):
        for after in ("0", "50"):
            assert ids(direction=direction, after=after) == ids(scan, direction=direction, after=after)
    total, first = ids(direction="DESCENDING")
    assert first[0] == cid and total > 50


def test_properties_with_history_record_api_changes(client, emu):
    from hubspot.crm.contacts import BatchReadInputSimplePublicObjectId, SimplePublicObjectId

    cid = next(i for i in emu.contact_ids() if emu.contact(i)["lifecyclestage"] == "lead")
    _update(client, (cid, {"lifecyclestage": "marketingqualifiedlead"}))
    rec = client.crm.contacts.basic_api.get_by_id(cid, properties=["lifecyclestage"],
                                                  properties_with_history=["lifecyclestage"])
    values = [(h.value, h.source_type) for h in rec.properties_with_history["lifecyclestage"]]
    assert values == [("marketingqualifiedlead", "INTEGRATION"), ("lead", "IMPORT")]
    page = client.crm.contacts.basic_api.get_page(limit=100, properties_with_history=["lifecyclestage"])
    assert len(page.results) == 50
    too_many = BatchReadInputSimplePublicObjectId(
        inputs=[SimplePublicObjectId(id=i) for i in emu.contact_ids()[:51]], properties=["email"],
        properties_with_history=["lifecyclestage"])
    with pytest.raises(ApiException) as exc:
        client.crm.contacts.batch_api.read(too_many)
    assert "for property histories is 50" in json.loads(exc.value.body)["message"]
