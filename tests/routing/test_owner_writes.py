"""The record's owner is written only where the team allows it, and only over no owner, a queue, or the owner
leadsync itself wrote (audit log): an owner somebody set stays, and the task says so."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from mapping.model import Contact, CreateTask, FieldChange, SetFields, Stage
from sync.plan import ContactPlan
from sync.route import Assignment, Availability, RoutingPolicy
from sync.routing_run import Router
from sync.state import State

NOW = datetime(2026, 12, 3, tzinfo=timezone.utc)
ROUTED = Assignment("emea", "005MAYA", "maya", "emea", ("round robin picked maya",), True)


@pytest.fixture
def state(tmp_path):
    st = State(f"sqlite:///{tmp_path}/state.db")
    yield st
    st.close()


def plan(owner: str | None) -> ContactPlan:
    c = Contact("salesforce", "00Q1", "Lead", email="a@b.com", owner_id=owner, lifecycle_stage=Stage.MQL)
    sf = SetFields("salesforce", "Lead", "00Q1", {"LeadSync_Stage__c": FieldChange("MQL", "SQL")},
                   Stage.MQL, Stage.SQL)
    task = CreateTask("salesforce", "Lead", "00Q1", owner, "ls-1", "Follow up", "Why now: pricing.", NOW, Stage.SQL)
    return ContactPlan(c, sf, task, Stage.SQL)


def router(state: State, write: bool = True) -> Router:
    policy = RoutingPolicy(write_owner={"salesforce": frozenset({Stage.SQL})} if write else {})
    return Router(state, policy, Availability(), date(2026, 12, 3), "run-1", persist=False)


@pytest.mark.parametrize("owner", [None, "00GQu0000000001AAA"])
def test_no_owner_or_a_queue_is_replaced(state, owner):
    p = router(state)._plan(plan(owner), ROUTED)
    assert p.set_fields.fields["OwnerId"] == FieldChange(owner, "005MAYA")
    assert p.task.owner_id == "005MAYA" and p.task.body.endswith("Routed: round robin picked maya.")


def test_a_manual_owner_stays_and_the_task_says_so(state):
    p = router(state)._plan(plan("005JONAS"), ROUTED)
    assert "OwnerId" not in p.set_fields.fields
    assert p.task.owner_id == "005MAYA" and "Owner 005JONAS was set by hand: left as it is." in p.task.body


def test_an_owner_leadsync_wrote_may_be_replaced(state):
    with state.tx():
        state.audit("run-0", "salesforce", "Lead", "00Q1", {"OwnerId": ("00GQu0000000001AAA", "005JONAS")})
    p = router(state)._plan(plan("005JONAS"), ROUTED)
    assert p.set_fields.fields["OwnerId"] == FieldChange("005JONAS", "005MAYA")


def test_no_owner_write_where_the_team_does_not_allow_it(state):
    p = router(state, write=False)._plan(plan(None), ROUTED)
    assert "OwnerId" not in p.set_fields.fields and p.task.owner_id == "005MAYA"
