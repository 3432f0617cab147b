"""Contacts leadsync creates in HubSpot for a person who exists only in Salesforce (`handoff.to_hubspot`).

Exactly once through HubSpot itself: the hand-off key goes into `leadsync_person_key`, a property created with
`hasUniqueValue`, and the create is a `batch/upsert` on it, so a re-send updates the contact it already made.
An upsert may answer COMPLETE with empty `results` (reference §2.4), so ids are read back by key.
"""

from __future__ import annotations

from collections.abc import Sequence

from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchReadInputSimplePublicObjectId,
    SimplePublicObjectBatchInputUpsert,
    SimplePublicObjectId,
)

from connectors.base import chunks
from connectors.hubspot.transport import HubSpotError, Transport, model
from mapping.hubspot import PERSON_KEY_FIELD
from mapping.model import ChangeResult, CreateRecord


class Handoffs:
    def __init__(self, transport: Transport) -> None:
        self.t = transport

    def find(self, keys: Sequence[str]) -> dict[str, str]:
        """Contact id by hand-off key, for the keys that have one (keys HubSpot does not know are 207 errors)."""
        api = self.t.api("crm.contacts.batch_api")
        out: dict[str, str] = {}
        for part in chunks(list(keys), self.t.settings.batch_size):
            req = model(BatchReadInputSimplePublicObjectId, inputs=[model(SimplePublicObjectId, id=k) for k in part],
                                                     properties=[PERSON_KEY_FIELD], properties_with_history=[],
                                                     id_property=PERSON_KEY_FIELD)
            _, body = self.t.call(api.read, req, archived=False)
            for rec in body.get("results") or []:
                key = (rec.get("properties") or {}).get(PERSON_KEY_FIELD)
                if key:
                    out[str(key)] = str(rec["id"])
        return out

    def create(self, batch: Sequence[CreateRecord]) -> list[ChangeResult]:
        api = self.t.api("crm.contacts.batch_api")
        failed: dict[str, ChangeResult] = {}
        for part in chunks(list(batch), self.t.settings.batch_size):
            inputs = [model(SimplePublicObjectBatchInputUpsert,
                id=c.idempotency_key, id_property=PERSON_KEY_FIELD,
                properties={k: "" if v is None else str(v) for k, v in c.fields.items()}) for c in part]
            try:
                self.t.call(api.upsert, model(BatchInputSimplePublicObjectBatchInputUpsert, inputs=inputs))
            except HubSpotError as err:  # the whole batch refused (e.g. an email another contact has)
                if err.status != 400 or len(part) == 1:
                    if err.status != 400:
                        raise
                    failed[part[0].idempotency_key] = ChangeResult(part[0], ok=False, error_code=str(err.code),
                                                                   message=str(err))
                    continue
                for c in part:  # one at a time, so one bad record does not hold back the rest
                    failed.update({r.change.key: r for r in self.create([c]) if not r.ok})
        found = self.find([c.idempotency_key for c in batch if c.idempotency_key not in failed])
        out = []
        for c in batch:
            if c.idempotency_key in failed:
                out.append(failed[c.idempotency_key])
            elif c.idempotency_key in found:
                out.append(ChangeResult(c, ok=True, crm_id=found[c.idempotency_key]))
            else:
                out.append(ChangeResult(c, ok=False, error_code="NOT_CREATED",
                                        message="upsert answered, but no contact holds the key"))
        return out
