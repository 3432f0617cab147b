"""Emulator features for peers and for fault tests: absolute paging links, singular names, schemas, legacy
properties, per-record validation failures, and persistence across restarts."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import requests
from hubspot.crm.contacts import BatchInputSimplePublicObjectBatchInput, SimplePublicObjectBatchInput
from hubspot.crm.objects.meetings import SimplePublicObjectInput as MeetingInput
from hubspot.crm.properties import PropertyCreate

from connectors.hubspot import HubSpotConnector, HubSpotSettings
from mapping.model import CreateTask, FieldChange, SetFields
from sandbox.hubspot import HubSpotEmulator

ANCHOR = datetime(2026, 11, 1, tzinfo=UTC)


def _get(emu: HubSpotEmulator, url: str, method: str = "GET", **kw) -> requests.Response:
    s = requests.Session()
    s.trust_env = False
    full = url if url.startswith("http") else emu.base_url + url
    return s.request(method, full, headers={"Authorization": f"Bearer {emu.token}"}, timeout=10, **kw)


def test_paging_link_is_absolute_on_the_sandbox_and_can_be_followed(shared_emu):
    first = _get(shared_emu, "/crm/v3/objects/contacts?limit=100&properties=email").json()
    link = first["paging"]["next"]["link"]
    assert link.startswith(shared_emu.base_url + "/crm/v3/objects/contacts?") and "properties=email" in link
    second = _get(shared_emu, link).json()
    assert second["results"][0]["id"] == first["paging"]["next"]["after"]
    assert set(second["results"][0]["properties"]) >= {"email", "hs_object_id"}
    events = _get(shared_emu, "/events/v3/events?objectType=contact&eventType=e_visited_page&limit=10"
                              "&sort=ASCENDING").json()
    follow = _get(shared_emu, events["paging"]["next"]["link"]).json()
    assert follow["results"] and follow["results"][0]["occurredAt"] >= events["results"][-1]["occurredAt"]


def test_singular_object_names_schemas_and_properties_never_empty(shared_emu, sdk):
    plural = _get(shared_emu, "/crm/v3/objects/contacts?limit=5").json()["results"]
    assert _get(shared_emu, "/crm/v3/objects/contact?limit=5").json()["results"] == plural
    cid = plural[0]["id"]
    assert _get(shared_emu, f"/crm/v3/objects/contact/{cid}").json()["id"] == cid
    assert _get(shared_emu, "/crm/v3/objects/0-1?limit=1").json()["results"][0]["id"] == cid
    assert ("contacts.list", 200) in shared_emu.app.counts  # singular routes share the plural's names
    assert _get(shared_emu, "/crm/v3/schemas").json() == {"results": []}
    for object_type in ("contacts", "contact", "tasks", "meetings"):
        assert _get(shared_emu, f"/crm/v3/properties/{object_type}").json()["results"]
    assert len(sdk(shared_emu).crm.properties.core_api.get_all("contacts").results) >= 200
    legacy = _get(shared_emu, "/properties/v2/contacts/properties").json()
    assert isinstance(legacy, list) and len(legacy) >= 200
    stage = next(p for p in legacy if p["name"] == "lifecyclestage")
    assert stage["options"][0]["value"] == "subscriber" and isinstance(stage["createdAt"], int)
    assert _get(shared_emu, "/properties/v1/contacts/properties").json() == legacy


def test_rejected_ids_get_a_per_record_207_validation_error(new_emu, sdk, make_connector):
    emu = new_emu(contacts=60)
    good, bad = emu.contact_ids()[:2]
    emu.crm.reject_ids.clear()
    assert _get(emu, "/_sandbox/hubspot/reject", "POST", json={"ids": [bad]}).json() == {"ids": [bad]}
    resp = sdk(emu).crm.contacts.batch_api.update(BatchInputSimplePublicObjectBatchInput(inputs=[
        SimplePublicObjectBatchInput(id=i, properties={"jobtitle": "CTO"}) for i in (good, bad)]))
    assert [r.id for r in resp.results] == [good] and resp.num_errors == 1
    err = resp.errors[0]
    assert (err.category, err.context["ids"], err.errors[0].code, err.errors[0]._in) == (
        "VALIDATION_ERROR", [bad], "INVALID_STRING", "jobtitle")
    detail = json.loads(err.message.split(": [", 1)[1].join(["[", ""]))[0]
    assert detail["name"] == "jobtitle" and detail["error"] == "INVALID_STRING"
    assert emu.contact(good)["jobtitle"] == "CTO" and emu.contact(bad).get("jobtitle") != "CTO"
    conn = make_connector(emu)
    conn.ensure_fields()
    changes = [SetFields("hubspot", "contacts", i, {"leadsync_score": FieldChange(None, "5")}) for i in (good, bad)]
    ok, rejected = conn.apply(changes)
    assert ok.ok and not rejected.ok
    assert (rejected.error_code, rejected.fields) == ("INVALID_LONG", ("leadsync_score",))


def test_state_file_keeps_everything_a_test_wrote_across_a_restart(tmp_path, sdk):
    path = str(tmp_path / "portal.json")
    first = HubSpotEmulator(seed=3, contacts=60, anchor=ANCHOR, token="pat-t", state_file=path)
    first.start()
    client = sdk(first)
    conn = HubSpotConnector(HubSpotSettings(access_token="pat-t", base_url=first.base_url))
    conn.ensure_fields()
    cid, gone = first.contact_ids()[:2]
    results = conn.apply([
        SetFields("hubspot", "contacts", cid, {"leadsync_score": FieldChange(None, "42"),
                                               "lifecyclestage": FieldChange(None, "salesqualifiedlead")}),
        CreateTask("hubspot", "contacts", cid, None, "k-1", "Call", "now", ANCHOR)])
    assert all(r.ok for r in results)
    meeting = client.crm.objects.meetings.basic_api.get_page(limit=1).results[0]
    client.crm.objects.meetings.basic_api.update(meeting.id, MeetingInput(properties={"hs_meeting_outcome": "NO_SHOW"}))
    client.crm.contacts.basic_api.archive(gone)
    client.crm.properties.core_api.create("tasks", PropertyCreate(name="extra_flag", label="x", type="string",
                                                                  field_type="text", group_name="task"))
    saved_mid_run = json.loads((tmp_path / "portal.json").read_text())  # written through, before any stop
    assert any(r["id"] == gone for r in saved_mid_run["stores"]["contacts"]["archived"])
    before = (first.contact(cid), first.archived_contact_ids(), first.tasks())
    first.stop()

    second = HubSpotEmulator(seed=3, contacts=60, anchor=ANCHOR, token="pat-t", state_file=path)
    second.start()
    try:
        assert (second.contact(cid), second.archived_contact_ids(), second.tasks()) == before
        assert second.tasks()[0]["properties"]["leadsync_key"] == "k-1"
        assert second.portal.stores["meetings"].records[meeting.id].properties["hs_meeting_outcome"] == "NO_SHOW"
        assert second.contact(cid)["leadsync_score"] == "42"
        history = sdk(second, token="pat-t").crm.contacts.basic_api.get_by_id(
            cid, properties=["lifecyclestage"], properties_with_history=["lifecyclestage"])
        assert history.properties_with_history["lifecyclestage"][0].value == "salesqualifiedlead"
        again = HubSpotConnector(HubSpotSettings(access_token="pat-t", base_url=second.base_url))
        assert again.missing_fields() == []  # custom properties and the group survived
        assert "extra_flag" in {p.name for p in sdk(second, token="pat-t").crm.properties.core_api.get_all(
            "tasks").results}
    finally:
        second.stop()


def test_paging_link_keeps_the_scheme_and_host_the_client_called_over_tls(tmp_path):
    """A peer that calls https://api.hubapi.com (redirected to a TLS listener) must be handed https links on
    that host, or it would follow them in plain HTTP to port 80."""
    import ssl

    import trustme

    from sandbox.server import serve

    emu = HubSpotEmulator(seed=1, contacts=150, anchor=ANCHOR, token="t")
    ca = trustme.CA()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    server, _ = serve(emu.app, "127.0.0.1", 0, ssl_context=ctx)
    try:
        bundle = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(bundle))
        s = requests.Session()
        s.trust_env = False
        url = f"https://127.0.0.1:{server.server_address[1]}/crm/v3/objects/contacts?limit=100"
        page = s.get(url, headers={"Authorization": "Bearer t", "Host": "api.hubapi.com"}, verify=str(bundle),
                     timeout=10).json()
        assert page["paging"]["next"]["link"].startswith("https://api.hubapi.com/crm/v3/objects/contacts?")
    finally:
        server.shutdown()
        server.server_close()
