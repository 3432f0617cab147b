"""Undo of the records a run created in another CRM (hand-offs).

A created record that nobody has touched since — not converted, still in the org's default status, no
activity but leadsync's own task — is deleted with that task. Anything else is left and reported: undo never
destroys a sales rep's work. An undone hand-off keeps its key in the ledger as `undone`, so later syncs do not
create it again (the person is handed off again only if a person re-plans it).
"""

from __future__ import annotations

from typing import Any

from connectors.base import Connector
from sync.state import State


def undo_handoffs(state: State, connector: Connector, run_id: str, summary: Any) -> None:
    entries = [h for h in state.handoffs_for_run(run_id) if h["status"] == "created" and h["crm_id"]]
    if not entries or not hasattr(connector, "delete_records"):
        return
    object_type = entries[0]["object_type"]
    busy = connector.record_activity(object_type, [h["crm_id"] for h in entries])  # type: ignore[attr-defined]
    for h in entries:
        if h["crm_id"] in busy:
            summary.records_left.append({"record_id": h["crm_id"], "origin": h["origin"], "why": busy[h["crm_id"]]})
    todo = [h for h in entries if h["crm_id"] not in busy]
    tasks = state.tasks_on(connector.name, [h["crm_id"] for h in todo])
    failed_tasks = set(connector.delete_records([t["crm_id"] for t in tasks]))  # type: ignore[attr-defined]
    blocked = {t["contact_id"] for t in tasks if t["crm_id"] in failed_tasks}
    failed = set(connector.delete_records([h["crm_id"] for h in todo if h["crm_id"] not in blocked]))  # type: ignore[attr-defined]
    with state.tx():
        for t in tasks:
            if t["crm_id"] not in failed_tasks:
                state.task_undone(t["key"])
        for h in todo:
            if h["crm_id"] in failed or h["crm_id"] in blocked:
                summary.failed += 1
                continue
            state.handoff_set(h["key"], "undone")
            state.archive_contact(connector.name, h["crm_id"])
            src, _, rid = h["origin"].partition(":")
            state.mark_dirty(src, [rid])  # its link to the deleted record is cleared by the next sync
            state.audit(summary.run_id, connector.name, "handoff", h["crm_id"], {"deleted": (h["origin"], None)})
            summary.records_deleted += 1
