"""`extra_properties`: the team's own contact properties, pulled into `Contact.extra`, in bodies when a GET
would be too long for HubSpot's ~16 KB request target (the emulator answers 414 past 16,384 characters)."""

from __future__ import annotations

import math

import pytest
from hubspot.crm.contacts import BatchInputSimplePublicObjectBatchInput, SimplePublicObjectBatchInput
from hubspot.crm.properties import PropertyCreate, PropertyGroupCreate

from connectors.base import ConfigError, RawPage
from connectors.hubspot.streams import query_chars
from connectors.hubspot.transport import HubSpotError
from mapping.hubspot import map_page


def _answers(emu, sdk, names: list[str]) -> dict[str, dict[str, str]]:
    """Create `names` as contact properties (a "forms" group) and give every live contact a value for each."""
    client = sdk(emu)
    client.crm.properties.groups_api.create("contacts", PropertyGroupCreate(name="forms", label="Form answers"))
    for name in names:
        client.crm.properties.core_api.create("contacts", PropertyCreate(
            name=name, label=name, type="string", field_type="text", group_name="forms"))
    values: dict[str, dict[str, str]] = {}
    ids = emu.contact_ids()
    for start in range(0, len(ids), 100):
        inputs = []
        for cid in ids[start:start + 100]:
            values[cid] = {n: f"{cid}-{i}" for i, n in enumerate(names)}
            inputs.append(SimplePublicObjectBatchInput(id=cid, properties=values[cid]))
        client.crm.contacts.batch_api.update(BatchInputSimplePublicObjectBatchInput(inputs=inputs))
    return values


def test_a_backfill_with_hundreds_of_long_properties_reads_them_in_bodies(new_emu, make_connector, sdk):
    emu = new_emu(contacts=250, burst_limit=100_000)
    names = [f"form_answer_{i:03d}_what_is_your_preferred_training_format_and_budget" for i in range(300)]
    assert query_chars(names) > 16_384  # as a GET, this would be a 414
    values = _answers(emu, sdk, names)
    conn = make_connector(emu, extra_properties=tuple(names))
    before = emu.app.api_calls()
    pages = [p for p in conn._streams.contacts(None)]
    conn.check_extra_properties()
    n = len(emu.contact_ids())
    assert n > 100
    assert not [k for k in emu.app.counts if k[1] == 414]
    assert emu.app.api_calls() - before == 2 * math.ceil(n / 100) + 1  # list + batch read per 100, one check
    contacts = [c for p in pages for c in map_page(p).contacts]
    assert sorted(c.id for c in contacts) == sorted(emu.contact_ids())
    for c in contacts:
        assert {k: c.extra[k] for k in names} == values[c.id]
        assert c.email == emu.contact(c.id).get("email")
    as_get = make_connector(emu, extra_properties=tuple(names), max_query_chars=10**6)
    with pytest.raises(HubSpotError) as err:  # the same list as a GET: what the body path avoids
        next(as_get._streams.contacts(None))
    assert err.value.status == 414


def test_a_short_extra_list_stays_on_the_list_endpoint_and_search(new_emu, make_connector, sdk):
    emu = new_emu(contacts=120, burst_limit=100_000)
    values = _answers(emu, sdk, ["preferred_course"])
    conn = make_connector(emu, extra_properties=("preferred_course",), overlap_ms=0)
    pages = list(conn.pull({}))
    counts = {name: n for (name, status), n in emu.app.counts.items() if status == 200}
    assert "contacts.batch.read" not in counts
    got = {c.id: c.extra["preferred_course"] for p in pages if p.stream == "contacts" for c in map_page(p).contacts}
    assert got == {cid: v["preferred_course"] for cid, v in values.items()}
    watermarks = {p.stream: p.cursor for p in pages if p.cursor}
    cid = emu.contact_ids()[3]
    sdk(emu).crm.contacts.basic_api.update(cid, {"properties": {"preferred_course": "Rust, in person"}})
    again = [p for p in make_connector(emu, extra_properties=("preferred_course",), overlap_ms=0).pull(watermarks)
             if p.stream == "contacts"]  # incremental: search, properties in its body
    got = {c.id: c.extra["preferred_course"] for p in again for c in map_page(p).contacts}
    assert got[cid] == "Rust, in person"


def test_unknown_extra_properties_are_a_config_error_naming_them(emu, make_connector):
    conn = make_connector(emu, extra_properties=("email", "no_such_answer", "nor_this"))
    with pytest.raises(ConfigError) as err:
        next(conn.pull({}))
    assert "no_such_answer" in str(err.value) and "nor_this" in str(err.value) and "email," not in str(err.value)
    assert emu.app.api_calls() == 1


def test_mapping_puts_only_the_named_extra_properties_into_extra():
    record = {"id": "51", "properties": {"email": "a@b.co", "preferred_course": " Rust ", "budget": "",
                                         "hs_analytics_num_visits": "3", "unrequested": "x"}}
    [contact] = map_page(RawPage("contacts", [record], None, {"extra_properties": ("preferred_course", "budget",
                                                                                   "seats")})).contacts
    assert dict(contact.extra) == {"hs_analytics_num_visits": "3", "preferred_course": "Rust", "budget": None,
                                   "seats": None}
    [plain] = map_page(RawPage("contacts", [record])).contacts
    assert "preferred_course" not in plain.extra
