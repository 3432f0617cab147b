"""Nurture in HubSpot: contacts added to and removed from a MANUAL (static) list, through the Lists API v3
(`client.crm.lists.memberships_api`: `PUT /crm/v3/lists/{listId}/memberships/add` and `/remove`, a JSON array
of record ids; see BEHAVIOR.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connectors.base import chunks
from connectors.hubspot.transport import HubSpotError, Transport
from mapping.model import ChangeResult, Membership

MEMBERS_PAGE = 250  # `GET /crm/v3/lists/{listId}/memberships`: "The maximum `limit` is 250" (the SDK's docstring)


def _added(body: dict[str, Any]) -> set[str]:
    """The ids a call added. The v3 spec (and the SDK model) spell the key `recordsIdsAdded`; newer reference
    pages `recordIdsAdded`: both are read."""
    return {str(i) for i in (body.get("recordsIdsAdded") or body.get("recordIdsAdded") or [])}


class Lists:
    def __init__(self, transport: Transport) -> None:
        self.t = transport

    def apply(self, changes: Sequence[Membership], batch_size: int) -> list[ChangeResult]:
        """One call per `batch_size` records per list and direction; one result per change, in order.

        Adding a member twice and removing a non-member are no-ops on HubSpot's side (ignored ids), so a
        re-sent call after a lost answer is harmless. An id HubSpot reports missing (no such contact) fails
        that record alone; a call HubSpot refuses (an unknown list, a list that is not MANUAL) fails its batch
        with HubSpot's code and message, and the rest of the run goes on.
        """
        out: dict[int, ChangeResult] = {}
        groups: dict[tuple[str, bool], list[int]] = {}
        for i, c in enumerate(changes):
            groups.setdefault((c.target, c.add), []).append(i)
        for (target, add), indexes in groups.items():
            for part in chunks(indexes, batch_size):
                out.update(self._call(target, add, {i: changes[i] for i in part}))
        return [out[i] for i in range(len(changes))]

    def _call(self, target: str, add: bool, batch: dict[int, Membership]) -> dict[int, ChangeResult]:
        api = self.t.api("crm.lists.memberships_api")
        ids = [c.record_id for c in batch.values()]
        try:
            _, body = self.t.call(api.add if add else api.remove, target, ids)
        except HubSpotError as err:
            what = f"list {target}: {err}" if err.status == 404 else str(err)
            return {i: ChangeResult(c, ok=False, error_code=err.code, message=what) for i, c in batch.items()}
        missing = {str(i) for i in body.get("recordIdsMissing") or []}
        return {i: ChangeResult(c, ok=True, crm_id=c.record_id) if c.record_id not in missing else
                ChangeResult(c, ok=False, error_code="OBJECT_NOT_FOUND",
                             message=f"HubSpot has no contact {c.record_id} to {'add to' if add else 'remove from'} "
                                     f"list {target}")
                for i, c in batch.items()}

    def members(self, list_id: str) -> list[str]:
        """Every record id in the list, in id order (250 per call)."""
        api = self.t.api("crm.lists.memberships_api")
        out: list[str] = []
        after: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": MEMBERS_PAGE}
            if after:
                kwargs["after"] = after
            _, body = self.t.call(api.get_page, list_id, **kwargs)
            out += [str(r.get("recordId")) for r in body.get("results") or []]
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return out
