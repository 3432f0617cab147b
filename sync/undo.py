"""Undo a run: restore what it wrote, where the CRM still holds what it wrote, and close its tasks.

A field someone changed since the run is left alone and reported: undo never
overwrites a person's later edit. The undo is itself a run with its own audit.

What undo means for later syncs: **a run undone stays undone** until a person
re-applies it (`leadsync undo --reapply RUN_ID`) or the contact's inputs change.
Each contact undo restored is *held*: its score row keeps the fingerprint of
its inputs (the snapshot without leadsync's own fields, and its engagement)
and the managed values undo left. A sync skips a held contact while both still
match; anything else (a person edits the contact, new engagement) ends the hold
and the contact is decided afresh. The snapshot and the dirty set are made to
agree with what undo restored, and an undone task's ledger key is never
created again.

Undo is resumable: it marks itself in the audit log before any write and writes
each revert's audit intent before the CRM call, so a killed undo re-run ends
exactly where an unkilled one does (a field already restored counts as restored;
a HubSpot stage the killed run had cleared but not set yet is set).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from connectors.base import Connector, chunks
from mapping.model import Contact, Engagement, FieldChange, SetFields, Stage
from sync.state import State, contact_to_json, norm_value
from sync.undo_handoffs import undo_handoffs
from sync.undo_nurture import plan_nurture_undo, undo_nurture

Wrote = dict[str, tuple[str | None, str | None]]  # field -> (before, after) as the run wrote it


@dataclass
class UndoSummary:
    run_id: str
    undone_run: str
    source: str
    kind: str = "undo"
    status: str = "ok"
    fields_restored: int = 0
    records_updated: int = 0
    fields_left: list[dict[str, Any]] = field(default_factory=list)  # changed by someone since
    fields_to_restore: list[dict[str, Any]] = field(default_factory=list)  # --plan only: what it would restore
    contacts_held: int = 0
    tasks_closed: int = 0
    failed: int = 0
    api_calls: int = 0
    duration_s: float = 0.0
    records_deleted: int = 0  # hand-off records the run created, deleted (untouched since)
    records_left: list[dict[str, Any]] = field(default_factory=list)  # hand-off records someone has worked on
    nurture_reverted: int = 0  # enrolments taken back and exits re-enrolled (sync/undo_nurture.py)
    nurture_left: list[dict[str, Any]] = field(default_factory=list)  # memberships changed again since
    nurture_to_revert: list[dict[str, Any]] = field(default_factory=list)  # --plan only

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class _Decision:
    """One record's verdict: what to write, what is already back, what a person changed since."""

    object_type: str
    record_id: str
    revert: dict[str, FieldChange] = field(default_factory=dict)
    restored: dict[str, str | None] = field(default_factory=dict)  # already holds the run's `before`
    left: dict[str, Any] = field(default_factory=dict)  # field -> the CRM's value now


def _check_run(state: State, connector: Connector, run_id: str) -> dict[str, Any]:
    run = state.run(run_id)
    if run is None:
        raise ValueError(f"no run {run_id!r} in the state store")
    if run["source"] != connector.name:
        raise ValueError(f"run {run_id} wrote to {run['source']}, not {connector.name}")
    return run


def plan_undo(state: State, connector: Connector, run_id: str) -> UndoSummary:
    """What `undo_run` would restore and what it would leave (edited since). Reads the CRM, writes nothing."""
    _check_run(state, connector, run_id)
    calls0 = connector.api_calls
    summary = UndoSummary("plan", run_id, connector.name, kind="undo plan")
    wrote = _wrote_of(state, run_id)
    for d in _decide_all(state, connector, run_id):
        _note_left(d, wrote[(d.object_type, d.record_id)], summary)
        for name, fc in d.revert.items():
            summary.fields_to_restore.append({"record_id": d.record_id, "field": name, "from": fc.before,
                                              "to": fc.after})
    summary.nurture_to_revert = plan_nurture_undo(state, run_id)
    summary.api_calls = connector.api_calls - calls0
    return summary


def undo_run(state: State, connector: Connector, run_id: str) -> UndoSummary:
    _check_run(state, connector, run_id)
    started, calls0 = time.perf_counter(), connector.api_calls
    undo_id = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-undo-{uuid.uuid4().hex[:6]}"
    summary = UndoSummary(undo_id, run_id, connector.name)
    state.start_run(undo_id, "undo", connector.name)
    with state.tx():  # first: a killed undo must be found by the next one
        state.audit(undo_id, connector.name, "undo", run_id, {"undone_run": (None, run_id)})
    try:
        _restore_fields(state, connector, run_id, summary)
        undo_handoffs(state, connector, run_id, summary)  # first: their tasks go with them, not merely closed
        undo_nurture(state, connector, run_id, summary)
        _close_tasks(state, connector, run_id, summary)
        summary.status = "ok" if not summary.failed else "ok with failures"
    finally:
        summary.api_calls = connector.api_calls - calls0
        summary.duration_s = round(time.perf_counter() - started, 3)
        state.finish_run(undo_id, summary.status, summary.to_dict())
    return summary


def reapply(state: State, source: str, run_id: str) -> list[str]:
    """Take an undo back: end the holds of the contacts an undo of `run_id` restored and mark them dirty, so
    the next sync decides them afresh (undone hand-off tasks stay closed; their keys are not used again)."""
    ids = state.undo_held_by(source, run_id)
    with state.tx():
        state.release_undo_holds(source, ids)
        state.mark_dirty(source, ids)
    return ids


# ------------------------------------------------------------------ deciding


def _wrote_of(state: State, run_id: str) -> dict[tuple[str, str], Wrote]:
    wrote: dict[tuple[str, str], Wrote] = defaultdict(dict)
    for row in state.audit_for_run(run_id):
        if row["object_type"] not in ("task", "undo", "handoff") and not row["field"].startswith("nurture:"):
            # created records: sync/undo_handoffs.py; memberships: sync/undo_nurture.py
            wrote[(row["object_type"], row["record_id"])][row["field"]] = (row["before"], row["after"])
    return wrote


def _prior_intents(state: State, run_id: str) -> set[tuple[str, str]]:
    """(record, field) that an earlier, perhaps killed, undo of this run set out to restore."""
    return {(row["record_id"], row["field"]) for undo_id in state.undo_runs_of(run_id)
            for row in state.audit_for_run(undo_id) if row["object_type"] not in ("task", "undo")
            and not row["field"].startswith("nurture:")}


def _decide_all(state: State, connector: Connector, run_id: str) -> list[_Decision]:
    wrote = _wrote_of(state, run_id)
    prior = _prior_intents(state, run_id)
    by_type: dict[str, list[str]] = defaultdict(list)
    for object_type, record_id in wrote:
        by_type[object_type].append(record_id)
    out: list[_Decision] = []
    for object_type, ids in by_type.items():
        names = sorted({f for rid in ids for f in wrote[(object_type, rid)]})
        for part in chunks(ids, 100):
            current = connector.read_fields(object_type, part, names)
            out.extend(_decide(object_type, rid, wrote[(object_type, rid)], current.get(rid, {}), prior)
                       for rid in part)
    return out


def _same(a: Any, b: Any) -> bool:
    return norm_value(a) == norm_value(b) or (a in (None, "") and b in (None, ""))


def _decide(object_type: str, record_id: str, wrote: Wrote, current: dict[str, Any],
            prior: set[tuple[str, str]]) -> _Decision:
    d = _Decision(object_type, record_id)
    for name, (before, after) in wrote.items():
        now = current.get(name)
        if _same(now, after):
            d.revert[name] = FieldChange(after, before)
        elif _same(now, before):
            d.restored[name] = before  # restored already (an earlier undo), or the run's write never landed
        elif now in (None, "") and (record_id, name) in prior:
            d.revert[name] = FieldChange(now, before)  # a killed undo cleared the stage and never set it
        else:
            d.left[name] = now
    return d


def _note_left(d: _Decision, wrote: Wrote, summary: UndoSummary) -> None:
    for name, now in d.left.items():
        summary.fields_left.append({"record_id": d.record_id, "field": name, "run_wrote": wrote[name][1],
                                    "crm_now": now})


# ------------------------------------------------------------------ restoring


def _restore_fields(state: State, connector: Connector, run_id: str, summary: UndoSummary) -> None:
    wrote = _wrote_of(state, run_id)
    stages = state.stage_changes_for_run(run_id)
    decisions = _decide_all(state, connector, run_id)
    for d in decisions:
        _note_left(d, wrote[(d.object_type, d.record_id)], summary)
    for part in chunks(decisions, 100):
        _apply_reverts(state, connector, list(part), stages, summary)


def _revert_change(summary: UndoSummary, d: _Decision) -> SetFields:
    return SetFields(source=summary.source, object_type=d.object_type, record_id=d.record_id, fields=d.revert,
                     reasons=(f"undo of run {summary.undone_run}",), allow_regression=True)


def _apply_reverts(state: State, connector: Connector, decisions: list[_Decision],
                   stages: dict[str, tuple[str | None, str]], summary: UndoSummary) -> None:
    """Intent first, then the CRM call, then settle and hold: a kill anywhere leaves the next undo enough."""
    changes = [_revert_change(summary, d) for d in decisions if d.revert]
    with state.tx():
        state.audit_intent(summary.run_id, changes)
    results = {res.change.record_id: res for res in connector.apply(changes)} if changes else {}
    with state.tx():
        for d in decisions:
            res = results.get(d.record_id)
            if res is not None and not res.ok:
                summary.failed += 1
                state.audit_settle(summary.run_id, d.record_id, "rejected")
                state.record_failure(summary.source, f"undo:{res.change.key}", d.record_id, "undo", res.error_code,
                                     res.message, res.fields, summary.run_id, max_attempts=1)
                continue
            if res is not None:
                state.audit_settle(summary.run_id, d.record_id, "ok")
                summary.fields_restored += len(d.revert)
                summary.records_updated += 1
            _settle_contact(state, d, stages.get(d.record_id), summary)


def _settle_contact(state: State, d: _Decision, stage: tuple[str | None, str] | None,
                    summary: UndoSummary) -> None:
    """Make the snapshot say what the CRM now holds, take the contact off the dirty set, and hold it."""
    values = {**{n: fc.after for n, fc in d.revert.items()}, **d.restored}
    if not values:
        return  # everything was edited since: nothing of the run is left to hold
    stage_field = importlib.import_module(f"mapping.{summary.source}").MANAGED_FIELDS[0]
    back = Stage(stage[0]) if stage and stage[0] and stage_field in values else None
    state.set_managed(summary.source, d.record_id, values, back)
    state.clear_dirty(summary.source, [d.record_id])
    contact = state.contacts(summary.source, [d.record_id]).get(d.record_id)
    if contact is None:
        return
    engagements = state.engagements_for(summary.source, [d.record_id])[d.record_id]
    hold = {"run": summary.undone_run, "undo": summary.run_id, "inputs": input_fingerprint(contact, engagements),
            "managed": {**values, **d.left}}
    state.set_undo_hold(summary.source, d.record_id, hold, back.value if back else None)
    summary.contacts_held += 1


def _close_tasks(state: State, connector: Connector, run_id: str, summary: UndoSummary) -> None:
    """Close the run's tasks and mark them undone; a pending one (its create unconfirmed) is found and closed,
    or marked undone so no later run creates it."""
    tasks = state.tasks_for_run(run_id)
    pending = [t["key"] for t in tasks if t["status"] == "pending"]
    found = connector.find_tasks(pending) if pending else {}
    live = [(t["key"], t["crm_id"]) for t in tasks if t["status"] in ("created", "undone") and t["crm_id"]]
    live += [(k, found[k]) for k in pending if k in found]
    failed = set(connector.complete_tasks([crm_id for _, crm_id in live])) if live else set()
    with state.tx():
        for key, crm_id in live:
            if crm_id in failed:
                # Already undone (deleted with its hand-off record just before, or closed by a killed undo):
                # nothing is left to close, so it is not a failure.
                if state.task_entries([key])[key]["status"] != "undone":
                    summary.failed += 1
                continue
            if state.task_entries([key])[key]["status"] != "undone":  # a re-run after a kill: once is enough
                if key in found:
                    state.task_confirm(key, crm_id)
                state.task_completed(key, datetime.now(timezone.utc))
                state.task_undone(key)
                state.audit(summary.run_id, summary.source, "task", crm_id, {"status": ("open", "completed")})
            summary.tasks_closed += 1
        for key in pending:
            if key not in found:
                state.task_undone(key)


# ------------------------------------------------------------------ holds


def input_fingerprint(contact: Contact, engagements: Sequence[Engagement]) -> str:
    """What a decision about this contact depends on, without leadsync's own output: the snapshot less its
    managed fields and the stage they carry (so our writes and their echo never count as a change), and
    every engagement (id, kind, time)."""
    d = json.loads(contact_to_json(contact))
    for key in ("managed", "lifecycle_stage", "updated_at"):
        d.pop(key, None)
    d["engagements"] = sorted([e.id, e.kind.value, e.occurred_at.isoformat()] for e in engagements)
    return hashlib.blake2b(json.dumps(d, sort_keys=True).encode(), digest_size=16).hexdigest()


def still_held(hold: dict[str, Any], contact: Contact, engagements: Sequence[Engagement]) -> bool:
    """A hold lasts while the inputs and leadsync's fields are as undo left them."""
    return input_fingerprint(contact, engagements) == hold.get("inputs") and all(
        _same(contact.managed.get(name), value) for name, value in (hold.get("managed") or {}).items())
