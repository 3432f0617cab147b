"""Writes: contact field updates in batches of 100, and follow-up tasks created at most once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from typing import Any

from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInput,
    BatchReadInputSimplePublicObjectId,
    SimplePublicObjectBatchInput,
    SimplePublicObjectId,
)
from hubspot.crm.objects.tasks import (
    AssociationSpec,
    BatchInputSimplePublicObjectBatchInputForCreate,
    PublicAssociationsForObject,
    PublicObjectId,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInputForCreate,
    SimplePublicObjectInputForCreate,
)

from connectors.base import chunks
from connectors.hubspot.transport import HubSpotError, Transient, Transport, embedded_details, model
from mapping.base import crm_text
from mapping.hubspot import MAX_TEXT, parse_stage
from mapping.model import STAGE_RANK, ChangeResult, CreateTask, SetFields

TASK_TO_CONTACT = 204  # directional: task → contact (reference §4.1)
TASK_KEY = "leadsync_key"
AMBIGUOUS = "AMBIGUOUS"  # error code of a create that may or may not have landed


def _iso(change: CreateTask) -> str:
    due = change.due if change.due.tzinfo else change.due.replace(tzinfo=UTC)
    return due.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ambiguous(change: CreateTask, exc: Exception) -> ChangeResult:
    """A create whose answer was lost and whose task is not (yet) found: it may still commit on HubSpot's side."""
    return ChangeResult(change, ok=False, error_code=AMBIGUOUS, retryable=True,
                        message=f"create answer lost ({exc}); the task may still appear, so it is left pending and "
                                "looked up again once it has settled")


def _needs_clear(change: SetFields) -> bool:
    """An undo moving the stage back: HubSpot ignores that unless the stage is cleared first (reference §3.1).

    Only undo sets `allow_regression`; a sync never moves a stage backwards, and
    if it tried, the read-back would report HubSpot's silent no-op.
    """
    fc = change.fields.get("lifecyclestage")
    if not change.allow_regression or fc is None or not fc.after:
        return False
    try:
        before, after = parse_stage(fc.before), parse_stage(fc.after)
    except ValueError:
        return True  # a stage we cannot rank: clearing first is harmless
    return before is None or after is None or STAGE_RANK[after] < STAGE_RANK[before]


def _failure(change: SetFields, err: HubSpotError) -> ChangeResult:
    """One record's failure with HubSpot's own code: the per-property detail code when it gave one."""
    details = err.details
    code = str(details[0].get("error")) if details else str(err.code)
    fields = tuple(str(d.get("name")) for d in details if d.get("name")) or tuple(change.fields)
    message = "; ".join(str(d.get("message")) for d in details) if details else str(err)
    return ChangeResult(change, ok=False, crm_id=change.record_id, error_code=code, message=message, fields=fields,
                        retryable=bool(err.status and err.status >= 500))


def _record_failure(change: SetFields, err: dict[str, Any]) -> ChangeResult:
    """One record's 207 error: a VALIDATION_ERROR reports its per-property code and fields from inside
    `message` (reference §2.4, §5.5), like a whole-batch 400 narrowed to one record; others their category."""
    details = embedded_details(str(err.get("message") or ""))
    code = str(details[0].get("error")) if details else str(err.get("category"))
    fields = tuple(str(d.get("name")) for d in details if d.get("name")) or tuple(change.fields)
    message = "; ".join(str(d.get("message")) for d in details) if details else str(err.get("message"))
    return ChangeResult(change, ok=False, crm_id=change.record_id, error_code=code, message=message, fields=fields)


class Writer:
    def __init__(self, transport: Transport) -> None:
        self.t = transport
        self.s = transport.settings

    # ------------------------------------------------------------ set fields
    def set_fields(self, changes: Sequence[SetFields]) -> list[ChangeResult]:
        out: list[ChangeResult] = []
        for batch in chunks(changes, self.s.batch_size):
            backward = [c for c in batch if _needs_clear(c)]
            if backward:  # clear first, in its own request: batch order is not guaranteed
                self._update([(c, {"lifecyclestage": ""}) for c in backward])
            out.extend(self._write(list(batch)))
        return out

    def _write(self, batch: list[SetFields]) -> list[ChangeResult]:
        """Write one batch; a whole-batch 400 is split in halves until the bad records stand alone."""
        try:
            body = self._update([(c, c.values()) for c in batch])
        except HubSpotError as err:
            if err.status != 400:
                raise
            if len(batch) == 1:
                return [_failure(batch[0], err)]
            mid = len(batch) // 2
            return self._write(batch[:mid]) + self._write(batch[mid:])
        return self._results(batch, body)

    def _update(self, items: list[tuple[SetFields, dict[str, str | None]]]) -> dict[str, Any]:
        api = self.t.api("crm.contacts.batch_api")
        inputs = [model(SimplePublicObjectBatchInput, id=c.record_id, properties={k: v or "" for k, v in values.items()})
                  for c, values in items]
        _, body = self.t.call(api.update, model(BatchInputSimplePublicObjectBatchInput, inputs=inputs))
        return body

    def _results(self, batch: list[SetFields], body: dict[str, Any]) -> list[ChangeResult]:
        """One result per change: 207 errors name ids in `context.ids`; an id in neither list was a no-op."""
        written = {str(r.get("id")): r for r in body.get("results") or []}
        failed: dict[str, dict[str, Any]] = {}
        unnamed: dict[str, Any] = {}  # an error naming no ids explains the records missing from `results`
        for err in body.get("errors") or []:
            ids = (err.get("context") or {}).get("ids") or []
            for rid in ids:
                failed[str(rid)] = err
            if not ids:
                unnamed = err
        stages = self._read_back_stages(batch, written)
        out = []
        for c in batch:
            if c.record_id in failed:
                out.append(_record_failure(c, failed[c.record_id]))
            elif c.record_id not in written:
                out.append(ChangeResult(
                    c, ok=False, crm_id=c.record_id, error_code=str(unnamed.get("category") or "NOT_APPLIED"),
                    message=str(unnamed.get("message") or "HubSpot reported success but returned no record for this id"),
                    fields=tuple(c.fields)))
            elif c.record_id in stages and stages[c.record_id] != c.values().get("lifecyclestage"):
                out.append(ChangeResult(c, ok=False, crm_id=c.record_id, error_code="LIFECYCLE_NOT_APPLIED",
                                        message=f"HubSpot kept lifecyclestage={stages[c.record_id]!r}",
                                        fields=("lifecyclestage",)))
            else:
                out.append(ChangeResult(c, ok=True, crm_id=c.record_id, fields=tuple(c.fields)))
        return out

    def _read_back_stages(self, batch: list[SetFields], written: dict[str, Any]) -> dict[str, str | None]:
        """Re-read lifecyclestage where we wrote it: a backward set succeeds and changes nothing."""
        ids = [c.record_id for c in batch if c.record_id in written and c.values().get("lifecyclestage")]
        if not ids or not self.s.read_back_stage:
            return {}
        api = self.t.api("crm.contacts.batch_api")
        req = model(BatchReadInputSimplePublicObjectId, inputs=[model(SimplePublicObjectId, id=i) for i in ids],
                                                 properties=["lifecyclestage"], properties_with_history=[])
        _, body = self.t.call(api.read, req, archived=False)
        return {str(r["id"]): (r.get("properties") or {}).get("lifecyclestage") for r in body.get("results") or []}

    # ------------------------------------------------------------------ tasks
    def create_tasks(self, changes: Sequence[CreateTask]) -> list[ChangeResult]:
        """Tasks in batches of 100 (one call instead of a hundred).

        Batch create is not idempotent, and HubSpot offers no unique property on tasks (unique values are for
        contacts, companies, deals, tickets and custom objects), so a batch whose answer is lost (5xx, timeout,
        dropped connection) is never re-sent: it may still commit after the client gave up. Its keys are looked
        up once; those found are created, the rest come back AMBIGUOUS, which the engine keeps pending until a
        later lookup settles them. A batch HubSpot refuses outright (one bad input fails them all) created
        nothing, so it is redone one by one, each task with its own result and reason.
        """
        out: dict[str, ChangeResult] = {}
        for batch in chunks(list(changes), self.s.batch_size):
            by_key = {c.idempotency_key: c for c in batch}
            lost: Transient | None = None
            try:
                req = model(BatchInputSimplePublicObjectBatchInputForCreate, inputs=[
                    model(SimplePublicObjectBatchInputForCreate, properties=t.properties, associations=t.associations)
                    for t in map(self._task_input, batch)])
                _, body = self.t.call(self.t.api("crm.objects.tasks.batch_api").create, req, idempotent=False)
                for r in body.get("results") or []:
                    key = (r.get("properties") or {}).get(TASK_KEY)
                    if key in by_key:
                        out[key] = ChangeResult(by_key[key], ok=True, crm_id=str(r["id"]))
            except Transient as exc:
                lost = exc
            except HubSpotError:
                pass  # refused whole: no task was created; redo one by one for per-task reasons
            missing = [k for k in by_key if k not in out]
            if lost is not None:
                out.update(self._settle_lost(missing, by_key, lost))
                continue
            for key in missing:
                out[key] = self.create_task(by_key[key])
        return [out[c.idempotency_key] for c in changes]

    def _settle_lost(self, keys: Sequence[str], by_key: dict[str, CreateTask],
                     exc: Transient) -> dict[str, ChangeResult]:
        """After a create whose answer was lost: found tasks are created; the rest are ambiguous, not absent."""
        found = self.find_tasks(keys) if keys else {}
        return {k: ChangeResult(by_key[k], ok=True, crm_id=found[k]) if k in found else _ambiguous(by_key[k], exc)
                for k in keys}

    def find_tasks(self, keys: Sequence[str]) -> dict[str, str]:
        """Task ids by `leadsync_key`, up to 100 keys per search call (the oldest task of a key wins)."""
        return {k: ids[0] for k, ids in self.find_task_ids(keys).items()}

    def find_task_ids(self, keys: Sequence[str]) -> dict[str, list[str]]:
        """Every task id per `leadsync_key`, oldest first: more than one is a duplicate to report."""
        found: dict[str, list[str]] = {}
        for part in chunks(list(keys), 100):
            filters = [{"propertyName": TASK_KEY, "operator": "IN", "values": list(part)}]
            for r in self._search_tasks(filters):
                found.setdefault(str(r["properties"][TASK_KEY]), []).append(str(r["id"]))
        return found

    def recent_tasks(self, since_ms: int) -> list[tuple[str, str]]:
        """(key, id) of every task carrying a `leadsync_key` created at or after `since_ms`, oldest first
        (200 per search call)."""
        filters = [{"propertyName": TASK_KEY, "operator": "HAS_PROPERTY"},
                   {"propertyName": "hs_createdate", "operator": "GTE", "value": str(since_ms)}]
        return [(str(r["properties"][TASK_KEY]), str(r["id"])) for r in self._search_tasks(filters)]

    def closed_tasks_since(self, since_ms: int) -> dict[str, str | None]:
        """Tasks carrying a `leadsync_key` that are COMPLETED and were modified at or after `since_ms`, with who
        holds each (`hubspot_owner_id`): one search call per 200, however many tasks are open."""
        filters = [{"propertyName": TASK_KEY, "operator": "HAS_PROPERTY"},
                   {"propertyName": "hs_task_status", "operator": "EQ", "value": "COMPLETED"},
                   {"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": str(since_ms)}]
        return {str(r["id"]): (r.get("properties") or {}).get("hubspot_owner_id") or None
                for r in self._search_tasks(filters, [TASK_KEY, "hubspot_owner_id"])}

    def _search_tasks(self, filters: list[dict[str, Any]], properties: list[str] | None = None
                      ) -> list[dict[str, Any]]:
        """All pages of one tasks search, oldest first; none when the key property does not exist yet."""
        out: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            req = model(PublicObjectSearchRequest, filter_groups=[{"filters": filters}], properties=properties or [TASK_KEY],
                                            sorts=[{"propertyName": "hs_createdate", "direction": "ASCENDING"}],
                                            limit=200, after=after)
            try:
                _, body = self.t.call(self.t.api("crm.objects.tasks.search_api").do_search, req, search=True)
            except HubSpotError as err:
                if err.status == 400:  # the key property does not exist yet: no task can carry it
                    return out
                raise
            out.extend(r for r in body.get("results") or [] if (r.get("properties") or {}).get(TASK_KEY))
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return out

    def create_task(self, change: CreateTask) -> ChangeResult:
        """Create once, never re-sent in the same run: after a lost answer (5xx, timeout) the key is looked up,
        and if it is not there yet the result is AMBIGUOUS (the create may still land)."""
        try:
            _, body = self.t.call(self.t.api("crm.objects.tasks.basic_api").create, self._task_input(change),
                                  idempotent=False)
            return ChangeResult(change, ok=True, crm_id=str(body.get("id")))
        except Transient as exc:
            return self._settle_lost([change.idempotency_key], {change.idempotency_key: change}, exc)[
                change.idempotency_key]
        except HubSpotError as err:
            details = err.details
            return ChangeResult(change, ok=False, error_code=str(details[0].get("error")) if details else err.code,
                                message=str(err), retryable=False)

    @staticmethod
    def _task_input(change: CreateTask) -> SimplePublicObjectInputForCreate:
        props = {
            "hs_timestamp": _iso(change), "hs_task_subject": crm_text(change.subject, MAX_TEXT),
            "hs_task_body": crm_text(change.body, MAX_TEXT),
            "hs_task_status": "NOT_STARTED", "hs_task_priority": "HIGH", "hs_task_type": "TODO",
            TASK_KEY: change.idempotency_key,
        }
        if change.owner_id:
            props["hubspot_owner_id"] = change.owner_id
        link = PublicAssociationsForObject(
            to=PublicObjectId(id=change.contact_id),
            types=[AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=TASK_TO_CONTACT)])
        return model(SimplePublicObjectInputForCreate, properties=props, associations=[link])

    def find_task(self, key: str) -> str | None:
        """The task carrying this `leadsync_key`, via tasks search (idempotent, retried)."""
        return self.find_tasks([key]).get(key)
