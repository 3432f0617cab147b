"""Nurture membership, written: each decided record's wanted membership (sync/decide.py) against what leadsync
believes it is (the state's `nurture_members`), as batched adds and removes, audited and kept in the state.

A record whose wanted membership equals the believed one costs no call, so a re-run with nothing new makes
none. Every add and remove is an audit row (`nurture:<target>`, before/after `member` or empty) written as an
intent before the call and settled after it, so undo can take it back and a kill leaves it traceable. Calls are
safe to repeat: HubSpot ignores members added twice, Salesforce's duplicate member is found and counted as
enrolled, a member already gone counts as removed. A record the CRM refuses is kept with its code and reason
in the failures table and stays dirty, so the next sync tries it again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mapping.model import ChangeResult, FieldChange, Membership, SetFields
from sync.decide import NurturePolicy
from sync.plan import ContactPlan

MEMBER = "member"


def audit_field(target: str) -> str:
    return f"nurture:{target}"


def changes_for(state: Any, source: str, plans: Sequence[ContactPlan], np: NurturePolicy) -> list[Membership]:
    """The adds and removes that make the CRM hold what was decided (nothing where it already does)."""
    target = np.targets.get(source)
    decided = [p for p in plans if p.nurture is not None]
    if target is None or not decided:
        return []
    believed = state.nurture_members(source, target, [p.contact.id for p in decided])
    salesforce = source == "salesforce"
    out = []
    for p in decided:
        c = p.contact
        if p.nurture and c.id not in believed:
            out.append(Membership(source, target, c.object_type, c.id, True, None,
                                  np.member_status if salesforce else None, c.email))
        elif not p.nurture and c.id in believed:
            out.append(Membership(source, target, c.object_type, c.id, False, believed[c.id][0],
                                  np.exit_status if salesforce else None, c.email, believed[c.id][1]))
    return out


def intent(m: Membership) -> SetFields:
    """The audit row of one membership change, in the shape the audit log takes field writes: the member
    status (or `member`) joined, or left."""
    before, after = (None, m.status or MEMBER) if m.add else (m.was or MEMBER, None)
    return SetFields(m.source, m.object_type, m.record_id, {audit_field(m.target): FieldChange(before, after)})


def write(state: Any, connector: Any, changes: Sequence[Membership], run_id: str, batch_size: int,
          max_attempts: int, summary: Any) -> list[str]:
    """Intents, the batched calls, then settle; returns the ids of the records the CRM refused."""
    if not changes:
        return []
    with state.tx():
        state.audit_intent(run_id, [intent(m) for m in changes])
    results: list[ChangeResult] = connector.apply_memberships(list(changes), batch_size)
    failed: list[str] = []
    with state.tx():
        for res in results:
            m = res.change
            assert isinstance(m, Membership)
            if res.ok:
                settle(state, m, res.crm_id, run_id)
                state.resolve_failure(m.source, m.key)
                if m.add:
                    summary.nurture_added += 1
                else:
                    summary.nurture_removed += 1
                continue
            state.audit_settle(run_id, m.record_id, "rejected")
            state.record_failure(m.source, m.key, m.record_id, "nurture", res.error_code, res.message, res.fields,
                                 run_id, max_attempts)
            summary.failed += 1
            failed.append(m.record_id)
    return failed


def settle(state: Any, m: Membership, member_id: str | None, run_id: str) -> None:
    """What the state believes after a change the CRM accepted (the audit row's pending intent settled)."""
    if m.add:
        state.nurture_joined(m.source, m.target, m.record_id, member_id or m.member_id, m.status, run_id)
    else:
        state.nurture_left(m.source, m.target, m.record_id)
    state.audit_settle(run_id, m.record_id, "ok")


def as_json(m: Membership) -> dict[str, Any]:
    return {"source": m.source, "target": m.target, "object_type": m.object_type, "record_id": m.record_id,
            "email": m.email, "action": "add" if m.add else "remove", "status": m.status}
