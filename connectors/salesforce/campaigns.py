"""Nurture in Salesforce: a Lead or Contact joins a Campaign as a CampaignMember, through sObject Collections.

Enrolment inserts the member (`POST composite/sobjects`) with the configured Status; an insert the org refuses
with `DUPLICATE_VALUE` ("Already a campaign member.") means the person is enrolled already (by an earlier run
whose answer was lost, or by hand): the member is looked up and, if its Status differs, updated. Exit sets the
configured exit Status (`PATCH composite/sobjects`), which keeps the campaign's history and influence; with no
exit status the member is deleted (`DELETE composite/sobjects`), and one already gone counts as removed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from simple_salesforce import format_soql

from connectors.base import chunks
from mapping.model import ChangeResult, Membership

DUPLICATE = "DUPLICATE_VALUE"
GONE = frozenset({"ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY"})
WHO = {"Lead": "LeadId", "Contact": "ContactId"}

Query = Callable[[str], list[dict[str, Any]]]
Send = Callable[[str, str, Any], list[dict[str, Any]]]  # (method, params or body) -> collection results


def _failure(change: Membership, item: dict[str, Any]) -> ChangeResult:
    errors = item.get("errors") or [{}]
    return ChangeResult(change, ok=False, error_code=errors[0].get("statusCode"),
                        message="; ".join(str(e.get("message", "")) for e in errors),
                        fields=tuple(f for e in errors for f in e.get("fields") or ()))


class Campaigns:
    def __init__(self, query: Query, send: Send) -> None:
        self.query, self.send = query, send

    def apply(self, changes: Sequence[Membership], batch_size: int) -> list[ChangeResult]:
        """One collection call per `batch_size` members per kind of write; one result per change, in order."""
        out: dict[int, ChangeResult] = {}
        creates = [i for i, c in enumerate(changes) if c.add and not c.member_id]
        updates = [i for i, c in enumerate(changes) if (c.add and c.member_id) or (not c.add and c.status)]
        deletes = [i for i, c in enumerate(changes) if not c.add and not c.status]
        for part in chunks(creates, batch_size):
            out.update(self._create({i: changes[i] for i in part}, batch_size))
        for part in chunks(updates, batch_size):
            out.update(self._update({i: changes[i] for i in part}))
        for part in chunks(deletes, batch_size):
            out.update(self._delete({i: changes[i] for i in part}, batch_size))
        return [out[i] for i in range(len(changes))]

    def _create(self, batch: dict[int, Membership], batch_size: int) -> dict[int, ChangeResult]:
        records = [{"attributes": {"type": "CampaignMember"}, "CampaignId": c.target, WHO[c.object_type]: c.record_id,
                    "Status": c.status} for c in batch.values()]
        out: dict[int, ChangeResult] = {}
        enrolled: dict[int, Membership] = {}
        for (i, c), item in zip(batch.items(), self.send("POST", "composite/sobjects", records), strict=True):
            if item.get("success"):
                out[i] = ChangeResult(c, ok=True, crm_id=item.get("id"))
            elif ((item.get("errors") or [{}])[0]).get("statusCode") == DUPLICATE:
                enrolled[i] = c
            else:
                out[i] = _failure(c, item)
        if enrolled:
            out.update(self._already(enrolled, batch_size))
        return out

    def _already(self, batch: dict[int, Membership], batch_size: int) -> dict[int, ChangeResult]:
        """Members the org already has: found by campaign and person; a Status that differs is set."""
        found = self.members(next(iter(batch.values())).target, [c.record_id for c in batch.values()])
        out: dict[int, ChangeResult] = {}
        restate: dict[int, Membership] = {}
        for i, c in batch.items():
            member = found.get(c.record_id)
            if member is None:
                out[i] = ChangeResult(c, ok=False, error_code=DUPLICATE, message="Already a campaign member, "
                                      "but no member of this campaign names the record")
            elif c.status and member["Status"] != c.status:
                restate[i] = Membership(c.source, c.target, c.object_type, c.record_id, True, member["Id"], c.status,
                                        c.email)
            else:
                out[i] = ChangeResult(c, ok=True, crm_id=member["Id"])
        for i, res in self._update(restate).items():
            out[i] = ChangeResult(batch[i], res.ok, res.crm_id, res.error_code, res.message, res.fields)
        return out

    def _update(self, batch: dict[int, Membership]) -> dict[int, ChangeResult]:
        if not batch:
            return {}
        records = [{"attributes": {"type": "CampaignMember"}, "id": c.member_id, "Status": c.status}
                   for c in batch.values()]
        return {i: ChangeResult(c, ok=True, crm_id=c.member_id) if item.get("success") else _failure(c, item)
                for (i, c), item in zip(batch.items(), self.send("PATCH", "composite/sobjects", records), strict=True)}

    def _delete(self, batch: dict[int, Membership], batch_size: int) -> dict[int, ChangeResult]:
        unknown = [c for c in batch.values() if not c.member_id]
        found = self.members(unknown[0].target, [c.record_id for c in unknown]) if unknown else {}
        out: dict[int, ChangeResult] = {}
        todo: dict[int, tuple[Membership, str]] = {}
        for i, c in batch.items():
            member_id = c.member_id or (found.get(c.record_id) or {}).get("Id")
            if member_id is None:
                out[i] = ChangeResult(c, ok=True)  # not a member: nothing to delete
            else:
                todo[i] = (c, member_id)
        if todo:
            ids = ",".join(m for _, m in todo.values())
            for (i, (c, member_id)), item in zip(todo.items(), self.send("DELETE", "composite/sobjects", ids),
                                                 strict=True):
                code = ((item.get("errors") or [{}])[0]).get("statusCode")
                out[i] = ChangeResult(c, ok=True, crm_id=member_id) if item.get("success") or code in GONE else \
                    _failure(c, item)
        return out

    def members(self, campaign_id: str, record_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The campaign's live members among these Leads / Contacts: {record id: {Id, Status}}."""
        out: dict[str, dict[str, Any]] = {}
        for part in chunks(list(record_ids), 200):
            soql = format_soql("SELECT Id, LeadId, ContactId, Status FROM CampaignMember WHERE CampaignId = {} AND "
                               "(LeadId IN {} OR ContactId IN {})", campaign_id, list(part), list(part))
            for row in self.query(soql):
                for who in ("ContactId", "LeadId"):
                    if row.get(who) in part:
                        out.setdefault(row[who], row)
        return out
