"""The stored stage history, deals and owners on both engines (SQLite and a throw-away PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from mapping.model import Opportunity, StageEntry
from sync.state import State
from tests.sync.test_state_postgres import pg_server, pg_url, url  # noqa: F401  (fixtures)

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)


def test_history_round_trips_once_with_its_origin(url):  # noqa: F811
    state = State(url)
    entries = [StageEntry("salesforce", "00Q1", "lead", T0, "created_fallback"),
               StageEntry("salesforce", "00Q1", "lead", T0, "crm_history"),
               StageEntry("salesforce", "00Q1", "sql", T0 + timedelta(days=9), "converted"),
               StageEntry("hubspot", "51", "mql", T0 + timedelta(days=1), "crm_date_property")]
    with state.tx():
        state.add_stage_entries(entries, "run-1")
        state.add_stage_entries(entries[:2], "run-2")  # re-pulled: kept once
        state.add_stage_change("hubspot", "51", "mql", "sql", "run-2")
        state.upsert_opportunities([Opportunity("salesforce", "006a", "003a", T0, T0 + timedelta(days=30), True,
                                                True, "Closed Won", 12500.0, "005x")], "run-1")
        state.save_owners("salesforce", [("005x", "Maya Reed", "maya@example.com", True)])
        state.save_owners("salesforce", [("005x", "Maya Reed-Ho", "maya@example.com", False)])  # renamed
    got = state.stage_history("salesforce", ["00Q1"])
    assert [(e.stage, e.origin, e.entered_at) for e in got] == [
        ("lead", "created_fallback", T0), ("lead", "crm_history", T0), ("sql", "converted", T0 + timedelta(days=9))]
    assert [e.origin for e in state.stage_history("hubspot")] == ["crm_date_property", "leadsync_write"]
    assert state.stage_history("salesforce", []) == []
    [deal] = state.opportunities()
    assert (deal.is_closed, deal.is_won, deal.amount, deal.close_date) == (True, True, 12500.0, T0 + timedelta(days=30))
    assert state.owner_names() == {("salesforce", "005x"): "Maya Reed-Ho"}
    state.close()
