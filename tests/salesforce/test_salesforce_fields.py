"""Configurable stage/score fields (custom picklist or Lead.Status, checked against the org at start-up)
and the routing of follow-up tasks for queue-owned leads."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.base import ConfigError
from connectors.salesforce import SalesforceConnector
from mapping.model import CreateTask, FieldChange, SetFields, Stage
from mapping.salesforce import map_page
from sandbox.salesforce import SalesforceEmulator
from sandbox.seed import OWNERS, SF_QUEUE_ID
from tests.salesforce.conftest import ANCHOR, SESSION, fast_settings

STATUSES = ("Open - Not Contacted", "Working - Contacted", "Marketing Qualified", "Sales Qualified",
            "Closed - Converted", "Closed - Not Converted")
STATUS_MAP = {"subscriber": "Open - Not Contacted", "lead": "Open - Not Contacted", "mql": "Marketing Qualified",
              "sql": "Sales Qualified"}


@pytest.fixture
def org() -> Iterator[SalesforceEmulator]:
    """An org that added its own qualification statuses to Lead.Status (and LeadStatus)."""
    e = SalesforceEmulator(seed=2, contacts=300, anchor=ANCHOR, session_id=SESSION, lead_statuses=STATUSES)
    e.start()
    yield e
    threading.Thread(target=e.stop, daemon=True).start()


def connect(emu: SalesforceEmulator, **overrides: Any) -> SalesforceConnector:
    return SalesforceConnector(fast_settings(emu, **overrides), sleep=lambda s: None)


def open_lead(emu: SalesforceEmulator) -> dict[str, Any]:
    return next(r for r in emu.records("Lead") if r["Status"] == "Open - Not Contacted" and not r["IsConverted"])


def test_stage_maps_onto_lead_status_both_ways(org: SalesforceEmulator) -> None:
    conn = connect(org, stage_field="Status", stage_values=STATUS_MAP)
    assert conn.ensure_fields() == []
    assert org.app.counts[("sf.query", 200)] == 1  # LeadStatus, read once at start-up
    lead = open_lead(org)
    change = SetFields("salesforce", "Lead", lead["Id"], {"LeadSync_Stage__c": FieldChange("Lead", "MQL"),
                                                          "LeadSync_Score__c": FieldChange(None, "61")})
    assert conn.apply([change])[0].ok
    written = org.record("Lead", lead["Id"])
    assert (written["Status"], written["LeadSync_Stage__c"], written["LeadSync_Score__c"]) == (
        "Marketing Qualified", None, 61.0)
    contacts = {c.id: c for p in conn.pull_stream("Lead", None) for c in map_page(p).contacts}
    mql = contacts[lead["Id"]]
    assert mql.lifecycle_stage is Stage.MQL and mql.managed["LeadSync_Stage__c"] == "MQL"
    assert mql.lead_status == "Marketing Qualified"  # still the status the scoring policy reads
    pages = list(conn.pull_stream("Lead", None))
    issues = [i for p in pages for i in map_page(p).issues]
    assert issues and not [i for i in issues if i.field == "LeadSync_Stage__c"]  # org statuses are no data issue
    working = next(c for c in contacts.values() if c.lead_status == "Working - Contacted")
    # An unmapped status is no leadsync stage, but stays the "before" value, so undo can restore it.
    assert working.lifecycle_stage is Stage.LEAD and working.managed["LeadSync_Stage__c"] == "Working - Contacted"
    assert conn.read_fields("Lead", [lead["Id"]], ["LeadSync_Stage__c"]) == {lead["Id"]: {"LeadSync_Stage__c": "MQL"}}
    undo = SetFields("salesforce", "Lead", lead["Id"], {"LeadSync_Stage__c": FieldChange("MQL", "Working - Contacted")},
                     allow_regression=True)
    assert conn.apply([undo])[0].ok and org.record("Lead", lead["Id"])["Status"] == "Working - Contacted"
    conn.close()


def test_unknown_or_converted_stage_value_stops_at_start_up(org: SalesforceEmulator) -> None:
    typo = connect(org, stage_field="Status", stage_values={**STATUS_MAP, "sql": "Sales Qualfied"})
    with pytest.raises(ConfigError) as err:
        typo.ensure_fields()
    assert "'Sales Qualfied'" in str(err.value) and "Lead.Status" in str(err.value)
    converting = connect(org, stage_field="Status", stage_values={**STATUS_MAP, "sql": "Closed - Converted"})
    with pytest.raises(ConfigError, match="converted lead status"):
        converting.missing_fields()
    partial = connect(org, stage_field="Status", stage_values={"mql": "Marketing Qualified"})
    with pytest.raises(ConfigError, match="subscriber, lead, sql"):
        partial.ensure_fields()
    custom = connect(org, stage_values={"mql": "Marketing Qualified"})  # not in LeadSync_Stage__c's picklist
    with pytest.raises(ConfigError, match="'Marketing Qualified'"):
        custom.ensure_fields()
    for c in (typo, converting, partial, custom):
        c.close()


def test_score_fields_can_be_renamed(org: SalesforceEmulator) -> None:
    conn = connect(org, field_names={"LeadSync_Score__c": "Lead_Score__c"})
    assert conn.missing_fields() == ["Lead.Lead_Score__c", "Contact.Lead_Score__c"]
    with pytest.raises(ConfigError, match="Nope__c"):
        connect(org, field_names={"Nope__c": "X__c"})
    conn.close()


def task_for(record: dict[str, Any], key: str) -> CreateTask:
    return CreateTask("salesforce", "Lead", record["Id"], record["OwnerId"], key, "Call", "why",
                      datetime(2026, 5, 4, tzinfo=UTC))


def test_queue_owned_leads_follow_the_routing_rule(org: SalesforceEmulator) -> None:
    queued = next(r for r in org.records("Lead") if r["OwnerId"] == SF_QUEUE_ID and not r["IsConverted"])
    other_queue = {**queued, "OwnerId": "00GQu0000000002AAA"}  # a queue the rule does not name
    router, fallback, api_user = OWNERS[2].salesforce_id, OWNERS[4].salesforce_id, OWNERS[0].salesforce_id
    cases = [({"queue_routing": {SF_QUEUE_ID: router}, "queue_owner_id": fallback}, queued, router),
             ({"queue_routing": {SF_QUEUE_ID: router}, "queue_owner_id": fallback}, other_queue, fallback),
             ({"queue_routing": {SF_QUEUE_ID: router}}, other_queue, api_user)]  # no OwnerId sent
    for i, (settings, lead, owner) in enumerate(cases):
        conn = connect(org, **settings)
        [res] = conn.apply([task_for(lead, f"route-{i}")])
        assert res.ok, res
        assert org.record("Task", res.crm_id or "")["OwnerId"] == owner, settings
        conn.close()
