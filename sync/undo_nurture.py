"""Undo of a run's nurture changes: what it enrolled leaves, what it took out comes back.

Read from the run's audit rows (`nurture:<target>`). A record is reverted only while the state still holds
what the run left (it is still a member the run added, still out where the run removed it): a later run or
undo that changed it again wins, and is reported, never overwritten. Undo of an enrolment deletes the
HubSpot list membership or the Salesforce CampaignMember; undo of an exit re-enrols with the member status
the record had. Each revert is audited in the undo run, so it can itself be traced.
"""

from __future__ import annotations

from typing import Any

from connectors.base import Connector
from mapping.model import Membership
from sync import nurture
from sync.state import State

PREFIX = "nurture:"


def _reverts(state: State, run_id: str) -> tuple[list[Membership], list[dict[str, Any]]]:
    """The memberships that take the run back, and the records left because they changed since."""
    last: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in state.audit_for_run(run_id):
        if row["field"].startswith(PREFIX):
            last[(row["source"], row["field"][len(PREFIX):], row["record_id"])] = row
    out, left = [], []
    for (source, target, rid), row in sorted(last.items()):
        believed = state.nurture_members(source, target, [rid]).get(rid)
        added = row["after"] is not None
        if added and believed is not None:
            out.append(Membership(source, target, row["object_type"], rid, False, believed[0], None, None,
                                  believed[1]))
        elif not added and believed is None:
            status = row["before"] if source == "salesforce" and row["before"] != nurture.MEMBER else None
            out.append(Membership(source, target, row["object_type"], rid, True, None, status))
        else:
            left.append({"record_id": rid, "target": target, "run": "added" if added else "removed",
                         "now": "not a member" if believed is None else "a member"})
    return out, left


def plan_nurture_undo(state: State, run_id: str) -> list[dict[str, Any]]:
    return [nurture.as_json(m) for m in _reverts(state, run_id)[0]]


def undo_nurture(state: State, connector: Connector, run_id: str, summary: Any, batch_size: int = 100) -> None:
    changes, left = _reverts(state, run_id)
    summary.nurture_left.extend(left)
    if not changes or not hasattr(connector, "apply_memberships"):
        return
    with state.tx():
        state.audit_intent(summary.run_id, [nurture.intent(m) for m in changes])
    results = connector.apply_memberships(changes, batch_size)  # type: ignore[attr-defined]
    with state.tx():
        for res in results:
            m = res.change
            assert isinstance(m, Membership)
            if res.ok:
                nurture.settle(state, m, res.crm_id, summary.run_id)
                summary.nurture_reverted += 1
            else:
                state.audit_settle(summary.run_id, m.record_id, "rejected")
                state.record_failure(m.source, f"undo:{m.key}", m.record_id, "undo", res.error_code, res.message,
                                     res.fields, summary.run_id, max_attempts=1)
                summary.failed += 1
