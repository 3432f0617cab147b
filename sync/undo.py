"""Undo a run: restore what it wrote, where the CRM still holds what it wrote, and close its tasks.

A field someone changed since the run is left alone and reported: undo never
overwrites a person's later edit. The undo is itself a run with its own audit.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from connectors.base import Connector, chunks
from mapping.model import FieldChange, SetFields
from sync.state import State, norm_value
from sync.undo_handoffs import undo_handoffs


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
    tasks_closed: int = 0
    failed: int = 0
    api_calls: int = 0
    duration_s: float = 0.0
    records_deleted: int = 0  # hand-off records the run created, deleted (untouched since)
    records_left: list[dict[str, Any]] = field(default_factory=list)  # hand-off records someone has worked on

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def undo_run(state: State, connector: Connector, run_id: str) -> UndoSummary:
    run = state.run(run_id)
    if run is None:
        raise ValueError(f"no run {run_id!r} in the state store")
    if run["source"] != connector.name:
        raise ValueError(f"run {run_id} wrote to {run['source']}, not {connector.name}")
    started, calls0 = time.perf_counter(), connector.api_calls
    undo_id = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-undo-{uuid.uuid4().hex[:6]}"
    summary = UndoSummary(undo_id, run_id, connector.name)
    state.start_run(undo_id, "undo", connector.name)
    try:
        _restore_fields(state, connector, run_id, summary)
        undo_handoffs(state, connector, run_id, summary)  # first: their tasks go with them, not merely closed
        _close_tasks(state, connector, run_id, summary)
        summary.status = "ok" if not summary.failed else "ok with failures"
    finally:
        summary.api_calls = connector.api_calls - calls0
        summary.duration_s = round(time.perf_counter() - started, 3)
        state.finish_run(undo_id, summary.status, summary.to_dict())
    return summary


def _restore_fields(state: State, connector: Connector, run_id: str, summary: UndoSummary) -> None:
    wrote: dict[tuple[str, str], dict[str, tuple[str | None, str | None]]] = defaultdict(dict)
    for row in state.audit_for_run(run_id):
        if row["object_type"] not in ("task", "handoff"):  # created records are undone by sync/undo_handoffs.py
            wrote[(row["object_type"], row["record_id"])][row["field"]] = (row["before"], row["after"])
    by_type: dict[str, list[str]] = defaultdict(list)
    for object_type, record_id in wrote:
        by_type[object_type].append(record_id)
    for object_type, ids in by_type.items():
        names = sorted({f for rid in ids for f in wrote[(object_type, rid)]})
        for part in chunks(ids, 100):
            current = connector.read_fields(object_type, part, names)
            changes = [c for rid in part if (c := _revert(object_type, rid, wrote[(object_type, rid)],
                                                          current.get(rid, {}), summary))]
            _apply_reverts(state, connector, changes, summary)


def _revert(object_type: str, record_id: str, wrote: dict[str, tuple[str | None, str | None]],
            current: dict[str, Any], summary: UndoSummary) -> SetFields | None:
    fields: dict[str, FieldChange] = {}
    for name, (before, after) in wrote.items():
        now = current.get(name)
        if norm_value(now) == norm_value(after) or (now in (None, "") and after in (None, "")):
            fields[name] = FieldChange(after, before)
        else:
            summary.fields_left.append({"record_id": record_id, "field": name, "run_wrote": after, "crm_now": now})
    if not fields:
        return None
    return SetFields(source=summary.source, object_type=object_type, record_id=record_id, fields=fields,
                     reasons=(f"undo of run {summary.undone_run}",), allow_regression=True)


def _apply_reverts(state: State, connector: Connector, changes: list[SetFields], summary: UndoSummary) -> None:
    if not changes:
        return
    results = connector.apply(changes)
    with state.tx():
        for res in results:
            ch = res.change
            assert isinstance(ch, SetFields)
            if res.ok:
                state.set_managed(ch.source, ch.record_id, ch.values())
                state.audit(summary.run_id, ch.source, ch.object_type, ch.record_id,
                            {f: (fc.before, fc.after) for f, fc in ch.fields.items()})
                summary.fields_restored += len(ch.fields)
                summary.records_updated += 1
            else:
                summary.failed += 1
                state.record_failure(ch.source, f"undo:{ch.key}", ch.record_id, "undo", res.error_code, res.message,
                                     res.fields, summary.run_id, max_attempts=1)


def _close_tasks(state: State, connector: Connector, run_id: str, summary: UndoSummary) -> None:
    created = [t for t in state.tasks_for_run(run_id) if t["status"] == "created" and t["crm_id"]]
    if not created:
        return
    failed = set(connector.complete_tasks([t["crm_id"] for t in created]))
    for t in created:
        if t["crm_id"] in failed:
            summary.failed += 1
            continue
        state.task_completed(t["key"], datetime.now(timezone.utc))
        state.task_undone(t["key"])
        state.audit(summary.run_id, summary.source, "task", t["crm_id"], {"status": ("open", "completed")})
        summary.tasks_closed += 1
