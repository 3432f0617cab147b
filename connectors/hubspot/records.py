"""Batch reads and task updates by record id, for undo and task hand-off health."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hubspot.crm.objects import (
    BatchInputSimplePublicObjectBatchInput,
    BatchReadInputSimplePublicObjectId,
    SimplePublicObjectBatchInput,
    SimplePublicObjectId,
)

from connectors.base import chunks
from connectors.hubspot.transport import Transport, model


class Records:
    def __init__(self, transport: Transport) -> None:
        self.t = transport

    def read_fields(self, object_type: str, ids: Sequence[str], fields: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Current values by id, 100 ids per call; ids HubSpot does not know are left out (207 errors)."""
        api = self.t.api("crm.objects.batch_api")
        out: dict[str, dict[str, Any]] = {}
        for part in chunks(list(ids), self.t.settings.batch_size):
            req = model(BatchReadInputSimplePublicObjectId, inputs=[model(SimplePublicObjectId, id=i) for i in part],
                                                     properties=list(fields), properties_with_history=[])
            _, body = self.t.call(api.read, object_type, req, archived=False)
            for rec in body.get("results") or []:
                props = rec.get("properties") or {}
                out[str(rec["id"])] = {f: props.get(f) for f in fields}
        return out

    def task_states(self, crm_ids: Sequence[str]) -> dict[str, bool]:
        """Whether each task is completed; unknown (deleted) tasks are left out."""
        return {tid: closed for tid, (closed, _) in self.task_details(crm_ids).items()}

    def task_details(self, crm_ids: Sequence[str]) -> dict[str, tuple[bool, str | None]]:
        """(completed, owner) of each task in the same read: the owner is who holds it now (reassigned or
        not), which the hand-off SLA credits; unknown (deleted) tasks are left out."""
        rows = self.read_fields("tasks", crm_ids, ["hs_task_status", "hubspot_owner_id"])
        return {tid: (row.get("hs_task_status") == "COMPLETED", row.get("hubspot_owner_id") or None)
                for tid, row in rows.items()}

    def complete_tasks(self, crm_ids: Sequence[str]) -> list[str]:
        """Mark tasks COMPLETED (an idempotent batch update); returns the ids HubSpot did not update."""
        api = self.t.api("crm.objects.batch_api")
        failed: list[str] = []
        for part in chunks(list(crm_ids), self.t.settings.batch_size):
            inputs = [model(SimplePublicObjectBatchInput, id=i, properties={"hs_task_status": "COMPLETED"}) for i in part]
            _, body = self.t.call(api.update, "tasks", model(BatchInputSimplePublicObjectBatchInput, inputs=inputs))
            done = {str(r.get("id")) for r in body.get("results") or []}
            failed += [i for i in part if i not in done]
        return failed

    def reassign_tasks(self, owners: Mapping[str, str]) -> list[str]:
        """Set tasks' `hubspot_owner_id` (SLA re-routing); returns the ids HubSpot did not update."""
        api = self.t.api("crm.objects.batch_api")
        failed: list[str] = []
        for part in chunks(list(owners), self.t.settings.batch_size):
            inputs = [model(SimplePublicObjectBatchInput, id=i, properties={"hubspot_owner_id": owners[i]}) for i in part]
            _, body = self.t.call(api.update, "tasks", model(BatchInputSimplePublicObjectBatchInput, inputs=inputs))
            done = {str(r.get("id")) for r in body.get("results") or []}
            failed += [i for i in part if i not in done]
        return failed
