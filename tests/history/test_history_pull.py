"""Stage history read from both CRMs by a backfill and a sync, through the CLI, against the sandbox."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from sandbox.history import timeline
from sandbox.hubspot.seeding import contact_id
from sandbox.run import start_sandbox
from sandbox.salesforce.ids import seeded_id
from sandbox.seed import OWNERS, people
from sync.cli import app
from sync.state import State

runner = CliRunner()
SEED, COUNT = 7, 400  # the conftest sandbox


def cli(*args: str) -> dict:
    result = runner.invoke(app, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _truth(anchor):
    return [(p, timeline(SEED, p, anchor)) for p in people(SEED, COUNT, anchor)]


def _close(a, b) -> bool:
    return abs((a - b).total_seconds()) < 1.0  # Salesforce stamps are whole seconds


def test_hubspot_stage_dates_arrive_with_the_contact_pages(sandbox_env, tmp_path):
    cli("backfill", "--source", "hubspot")
    state = State(f"sqlite:///{tmp_path}/state.db")
    entries = [e for e in state.stage_history("hubspot") if e.origin == "crm_date_property"]
    truth = {contact_id(p.index): (p, tl) for p, tl in _truth(sandbox_env.hubspot.portal.anchor) if p.in_hubspot}
    assert {e.contact_id for e in entries} == set(truth)  # every contact has at least its lead/subscriber date
    past = 0
    for e in entries:
        p, tl = truth[e.contact_id]
        want = {"subscriber": p.created_at, "lead": tl.lead_at, "mql": tl.mql_at, "sql": tl.sql_at,
                "opportunity": tl.opportunity_at, "customer": tl.customer_at}[e.stage]
        assert want is not None and _close(e.entered_at, want), (e, tl)
        past += e.stage in ("mql", "sql", "opportunity", "customer")
    held = sum(1 for p, _ in truth.values() if p.sales_stage)
    assert held > 5 and past >= 3 * held  # mql, sql, opportunity (and customer) for each of them
    names = state.owner_names()  # the owners API, once a run: archived owners too
    assert {names[("hubspot", o.hubspot_id)] for o in OWNERS} == {f"{o.first_name} {o.last_name}" for o in OWNERS}
    state.close()


def test_salesforce_field_history_conversions_and_opportunities(sandbox_env, tmp_path):
    cli("backfill", "--source", "salesforce")
    state = State(f"sqlite:///{tmp_path}/state.db")
    truth = [(p, tl) for p, tl in _truth(sandbox_env.salesforce.anchor) if p.in_salesforce]
    entries = state.stage_history("salesforce")
    origins = Counter(e.origin for e in entries)
    assert origins["crm_history"] > 0 and origins["created_fallback"] > 0 and origins["converted"] > 0
    got = {(e.contact_id, e.stage, e.origin): e.entered_at for e in entries}
    for p, tl in truth:
        if p.sf_object == "Contact":
            cid = seeded_id("Contact", p.index)
            assert _close(got[(cid, "lead", "crm_history")], tl.lead_at)
            if tl.opportunity_at:
                assert _close(got[(cid, "opportunity", "crm_history")], tl.opportunity_at)
            if tl.customer_at:
                assert _close(got[(cid, "customer", "crm_history")], tl.customer_at)
        elif p.converted_lead:
            lid = seeded_id("Lead", p.index)
            assert _close(got[(lid, "sql", "crm_history")], tl.sql_at)  # the leadConverted row
            assert got[(lid, "sql", "converted")].date() == tl.sql_at.date()  # ConvertedDate is a date
    opps = {o.contact_id: o for o in state.opportunities("salesforce")}
    deals = {seeded_id("Contact", p.index): tl.deal for p, tl in truth if tl.deal}
    assert set(opps) == set(deals)
    for cid, deal in deals.items():
        o = opps[cid]
        assert (o.is_closed, o.is_won, o.stage_name) == (deal.is_closed, deal.is_won, deal.stage_name)
        assert _close(o.created_at, deal.created_at) and o.close_date.date() == deal.close_date
    assert any(o.is_won for o in opps.values())
    names = state.owner_names()  # the org's Users
    assert all(names[("salesforce", o.salesforce_id)] == f"{o.first_name} {o.last_name}" for o in OWNERS)
    state.close()


@pytest.fixture
def no_history_env(tmp_path, monkeypatch):
    """A sandbox whose Salesforce org tracks no field history."""
    sb = start_sandbox(contacts=COUNT, seed=SEED, field_history=False)
    for key, value in sb.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("LEADSYNC_STATE_URL", f"sqlite:///{tmp_path}/state.db")
    monkeypatch.delenv("LEADSYNC_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    yield sb
    sb.stop()


def test_without_field_history_created_and_converted_dates_stand_in(no_history_env, tmp_path):
    cli("backfill", "--source", "salesforce")
    state = State(f"sqlite:///{tmp_path}/state.db")
    entries = state.stage_history("salesforce")
    origins = Counter(e.origin for e in entries)
    assert origins["crm_history"] == 0
    truth = [(p, tl) for p, tl in _truth(no_history_env.salesforce.anchor) if p.in_salesforce]
    records = sum(1 + p.duplicate_lead + p.converted_lead for p, _ in truth)
    assert origins["created_fallback"] == records  # every Lead and Contact: lead at CreatedDate
    assert origins["converted"] == sum(p.converted_lead for p, _ in truth)
    assert len(state.opportunities("salesforce")) == sum(1 for _, tl in truth if tl.deal)  # not field history
    state.close()


def test_incremental_sync_reads_only_new_history(sandbox_env, tmp_path):
    cli("backfill", "--source", "salesforce")
    state = State(f"sqlite:///{tmp_path}/state.db")
    before = len(state.stage_history("salesforce"))
    mark = state.watermarks("salesforce")["LeadHistory"]
    org = sandbox_env.salesforce.store
    lead = next(r for r in org.tables["Lead"].rows.values() if not r["IsConverted"])
    at = org.stamp() + timedelta(seconds=5)
    row = {"Id": org.tables["LeadHistory"].next_id(), "IsDeleted": False, "CreatedDate": at, "SystemModstamp": at,
           "LastModifiedDate": at, "LeadId": lead["Id"], "Field": "LeadSync_Stage__c", "OldValue": None,
           "NewValue": "MQL", "DataType": "Text", "CreatedById": None}  # an admin set the stage by hand
    org.load("LeadHistory", row)
    cli("sync", "--once", "--source", "salesforce")
    after = state.stage_history("salesforce", [lead["Id"]])
    assert any(e.stage == "mql" and e.origin == "crm_history" and _close(e.entered_at, at) for e in after)
    assert state.watermarks("salesforce")["LeadHistory"] > mark
    # leadsync's own stage writes in the backfill came back as the org's field history, stage for stage
    entries = state.stage_history("salesforce")
    wrote = {(e.contact_id, e.stage) for e in entries if e.origin == "leadsync_write"}
    echoed = {(e.contact_id, e.stage) for e in entries if e.origin == "crm_history"}
    assert wrote and wrote <= echoed
    assert len(state.stage_history("salesforce")) > before
    state.close()
