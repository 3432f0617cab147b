"""Owner routing inside a run: who gets each hand-off, persisted before anything is written.

The rules themselves are pure (`sync.route`); this module feeds them what a run knows (the CRMs' users,
read once per run; the persisted assignment and round-robin counts) and puts the answer into the person's
decision: the owner of a created hand-off record, the owner of the why-now task, the routing reasons in
the task body, and the record's owner field where the team lets leadsync write it — never over an owner
somebody else set (an owner leadsync did not write, by the audit log and the hand-off ledger).

The assignment is committed before the decision goes on to any write: a re-run after a crash, or a retry,
finds it and keeps the same rep, and a round-robin turn is counted exactly once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date
from typing import Any

from mapping.model import Contact, CreateTask, FieldChange, SetFields
from sync import routing_state as rs
from sync.decide import Handoff, PersonDecision
from sync.engine import mapping_for
from sync.plan import ContactPlan
from sync.route import QUEUE_PREFIX, Assignment, Availability, Facts, RoutingPolicy, route
from sync.state import State

log = logging.getLogger("leadsync.routing")


def read_availability(connectors: Mapping[str, Any]) -> Availability:
    """Each CRM's inactive users, one read per CRM; a CRM that cannot say is treated as all-active (logged)."""
    inactive: dict[str, frozenset[str]] = {}
    read = set()
    for name, conn in connectors.items():
        owners = getattr(conn, "owners", None)
        if owners is None:
            continue
        try:
            states = owners()
        except Exception as exc:  # routing must not stop a sync; the next run reads again
            log.warning("routing: could not read %s users (%s); treating them as active", name, type(exc).__name__)
            continue
        inactive[name] = frozenset(i for i, active in states.items() if not active)
        read.add(name)
    return Availability(inactive, frozenset(read))


class Router:
    def __init__(self, state: State, policy: RoutingPolicy, availability: Availability, today: date,
                 run_id: str, persist: bool = True) -> None:
        self.state, self.policy, self.avail, self.today = state, policy, availability, today
        self.run_id, self.persist = run_id, persist
        self.counters = rs.counters(state)
        self.routed: dict[str, int] = {}  # rule → persons routed by it in this run

    def apply(self, d: PersonDecision, records: Sequence[Contact]) -> PersonDecision:
        """The decision with its hand-off routed; unchanged when it hands nothing off."""
        tasked = next((p for p in d.plans if p.task), None)
        if d.handoff is None and tasked is None:
            return d
        target = d.handoff.target if d.handoff else tasked.contact.source  # type: ignore[union-attr]
        a = self.assign(d, records, target)
        if d.handoff is not None:
            return replace(d, handoff=self._handoff(d.handoff, a))
        return replace(d, plans=[self._plan(p, a) if p is tasked else p for p in d.plans])

    def assign(self, d: PersonDecision, records: Sequence[Contact], target: str) -> Assignment:
        p = d.profile.contact
        live = [c for c in records if not (c.read_only or c.archived) and c.owner_id]
        live.sort(key=lambda c: c.source != target)
        facts = Facts(target, p.country, p.industry, p.company_size, tuple((c.source, c.owner_id) for c in live))
        keys = [c.key for c in records]
        a = route(self.policy, facts, self.avail, self.today, self.counters, rs.previous(self.state, keys))
        self.routed[a.rule] = self.routed.get(a.rule, 0) + 1
        if a.counted and a.team and a.rep:
            team = self.counters.setdefault(a.team, {})
            team[a.rep] = team.get(a.rep, 0) + 1
        if self.persist:
            with self.state.tx():
                rs.save_assignment(self.state, d.person, keys, a, self.run_id)
        return a

    def reroute(self, tasks: Sequence[dict[str, Any]], connectors: Mapping[str, Any]) -> int:
        """Overdue hand-off tasks to another rep by the same rules (their owner counts as unavailable): the
        assignment persisted, the task's owner set in the CRM and audited, the ledger's owner updated."""
        moves: dict[str, list[tuple[dict[str, Any], Assignment]]] = {}
        for t in tasks:
            c = self.state.contacts(t["source"], [t["contact_id"]]).get(t["contact_id"])
            conn = connectors.get(t["source"])
            if c is None or not t["crm_id"] or getattr(conn, "reassign_tasks", None) is None or \
                    t["payload"].get("_rerouted_from"):  # once: a crash before its escalation must not move it again
                continue
            current = self.policy.rep_by_id(t["source"], t["owner_id"]) if t["owner_id"] else None
            inactive = dict(self.avail.inactive)
            for crm, oid in (current.ids.items() if current else ()):
                inactive[crm] = inactive.get(crm, frozenset()) | {oid}
            facts = Facts(t["source"], c.country, c.industry, c.company_size)
            a = route(self.policy, facts, Availability(inactive, self.avail.read), self.today, self.counters)
            if not a.owner_id or a.owner_id == t["owner_id"]:
                continue
            was = current.name if current else (t["owner_id"] or "nobody")
            a = replace(a, reasons=(f"re-routed from {was} after the SLA", *a.reasons))
            moves.setdefault(t["source"], []).append((t, a))
        moved = 0
        for source, items in moves.items():
            failed = set(connectors[source].reassign_tasks({t["crm_id"]: a.owner_id for t, a in items}))
            with self.state.tx():
                for t, a in items:
                    if t["crm_id"] in failed:
                        continue
                    keys = [f"{t['source']}:{t['contact_id']}"]
                    rows = rs.assignment_rows(self.state, keys)
                    rs.save_assignment(self.state, rows[0]["person"] if rows else keys[0], keys, a, self.run_id)
                    if a.counted and a.team and a.rep:
                        team = self.counters.setdefault(a.team, {})
                        team[a.rep] = team.get(a.rep, 0) + 1
                    was = a.reasons[0].removeprefix("re-routed from ").removesuffix(" after the SLA")
                    payload = {**t["payload"], "owner_id": a.owner_id, "_rerouted_from": was}
                    self.state.db.execute(
                        "UPDATE task_ledger SET owner_id=?, payload=? WHERE tenant=? AND key=?",
                        (a.owner_id, json.dumps(payload), self.state.tenant, t["key"]))
                    self.state.audit(self.run_id, source, "task", t["crm_id"], {"owner_id": (t["owner_id"], a.owner_id)})
                    moved += 1
        return moved

    def _handoff(self, h: Handoff, a: Assignment) -> Handoff:
        values = dict(h.values)
        if a.owner_id:
            values["task_owner_id"] = a.owner_id
            if self.policy.may_write(h.target, h.stage):
                values["owner_id" if h.target == "salesforce" else "hubspot_owner_id"] = a.owner_id
        task = (h.task[0], h.task[1] + "\n" + a.text()) if h.task else None
        return replace(h, values=values, task=task, reasons=(*h.reasons, a.text()))

    def _plan(self, p: ContactPlan, a: Assignment) -> ContactPlan:
        assert p.task is not None
        c = p.contact
        task: CreateTask = replace(p.task, owner_id=a.owner_id or p.task.owner_id, body=p.task.body + "\n" + a.text())
        set_fields = p.set_fields
        if a.owner_id and a.owner_id != c.owner_id and self.policy.may_write(c.source, p.stage_to):
            field_name = mapping_for(c.source).OWNER_FIELD
            if self._ours(c, field_name):
                change = {field_name: FieldChange(c.owner_id, a.owner_id)}
                set_fields = replace(set_fields, fields={**set_fields.fields, **change}) if set_fields else \
                    SetFields(c.source, c.object_type, c.id, change, email=c.email)
            else:
                task = replace(task, body=task.body + f"\nOwner {c.owner_id} was set by hand: left as it is.")
        return replace(p, task=task, set_fields=set_fields)

    def _ours(self, c: Contact, field_name: str) -> bool:
        """Whether leadsync may replace the record's owner: none, a queue, or the one leadsync wrote."""
        if not c.owner_id or c.owner_id.startswith(QUEUE_PREFIX):
            return True
        return rs.owner_written(self.state, c.source, c.id, field_name) == c.owner_id


def explain(state: State, policy: RoutingPolicy, d: PersonDecision, records: Sequence[Contact],
            today: date) -> dict[str, Any]:
    """What `leadsync explain` says of a person's routing: the persisted assignment, else what the rules
    would pick now (without the CRMs' user lists, so every rep counts as active; nothing is saved)."""
    rows = rs.assignment_rows(state, [c.key for c in records])
    if rows:
        r = rows[0]
        return {"persisted": True, "rule": r["rule"], "rep": r["rep"], "team": r["team"], "owner_id": r["owner_id"],
                "at": r["at"], "run_id": r["run_id"], "reasons": r["reasons"]}
    target = d.handoff.target if d.handoff else next((p.contact.source for p in d.plans if p.task),
                                                      records[0].source if records else "salesforce")
    router = Router(state, policy, Availability(), today, "explain", persist=False)
    a = router.assign(d, records, target)
    return {"persisted": False, "rule": a.rule, "rep": a.rep, "team": a.team, "owner_id": a.owner_id,
            "at": None, "run_id": None, "reasons": [*a.reasons, "(not routed yet: users' activity not read)"]}
