"""Runs: backfill, incremental sync and plan, one source at a time.

Order of work in a run, each step committed before the next:
pull pages (store snapshot, advance watermark) → score the contacts that
changed → diff against the CRM's current values → apply field changes →
create hand-off tasks through the ledger → settle (snapshots, audit, scores,
dirty set). A crash anywhere leaves the dirty set and the ledger saying
exactly what is left to do.

The calls overlap the local work (sync/ahead.py): the pull runs pages ahead
of the store, the next batch is decided while this batch's writes are on the
wire, and a batch is settled while the next batch's first call is out.
"""

from __future__ import annotations

import importlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from types import ModuleType
from typing import Any

from connectors.base import Connector, ConnectorError, QuotaExhausted, RawPage, chunks
from mapping.base import MappingIssue
from mapping.identity import OTHER_CRM
from mapping.model import STAGE_RANK, ChangeResult, CreateTask, Engagement, SetFields, Stage
from scoring import Score, ScoringModel
from sync import outcome
from sync.ahead import WriteLane
from sync.decide import PersonPolicy
from sync.logs import run_id_var
from sync.plan import ContactPlan
from sync.prefetch import prefetched
from sync.state import State

log = logging.getLogger("leadsync.sync")


class Stopped(Exception):
    """A stop was requested (SIGTERM): the run ends after the batch in hand, resumable."""


class _Skip(Exception):
    """This source's run has ended (its status says why); the sync goes on with the others."""


def scoring_time(now: datetime) -> datetime:
    """Scores decay by the day, not the second: two syncs on one day agree, so nothing new means no write."""
    return now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


def mapping_for(source: str) -> ModuleType:
    """The mapping module of a connector: `mapping.<source>`."""
    return importlib.import_module(f"mapping.{source}")


@dataclass
class RunSummary:
    run_id: str
    source: str
    kind: str
    status: str = "running"
    contacts_pulled: int = 0
    engagements_pulled: int = 0
    contacts_scored: int = 0
    stage_changes: dict[str, int] = field(default_factory=dict)
    fields_updated: int = 0
    records_updated: int = 0
    tasks_created: int = 0
    records_created: int = 0  # hand-offs: records created in this CRM for a person from another
    nurture_added: int = 0  # records enrolled in this CRM's nurture list / campaign (sync/nurture.py)
    nurture_removed: int = 0  # records taken out of it
    failed: int = 0
    skipped: int = 0
    issues: int = 0
    api_calls: int = 0
    duration_s: float = 0.0
    missing_fields: list[str] = field(default_factory=list)
    streams: dict[str, dict[str, int]] = field(default_factory=dict)  # per stream: pages, records
    calls_by_phase: dict[str, int] = field(default_factory=dict)  # setup, pull, write
    seconds_by_phase: dict[str, float] = field(default_factory=dict)  # wall time in each (the rest: deciding)
    alerts: dict[str, int] = field(default_factory=dict)  # hand-off alerts / escalations by outcome (sent, queued…)
    message: str | None = None
    quota: dict[str, int] | None = None  # the CRM's daily API allocation left at the end (connector.quota())
    code: str | None = None  # the CRM's or connector's code for a pause or an error (BUDGET, DAILY, 401 …)
    transient: bool = False  # an error that may pass by itself (sync/outcome.py): an orchestrator retries it

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stage_changes"] = dict(sorted(self.stage_changes.items()))
        d["seconds_by_phase"] = {k: round(v, 2) for k, v in self.seconds_by_phase.items()}
        return d


@dataclass
class PlanOutput:
    """What a run would write: kept for `leadsync plan` and for tests."""

    set_fields: list[SetFields] = field(default_factory=list)
    tasks: list[CreateTask] = field(default_factory=list)
    handoffs: list[Any] = field(default_factory=list)  # sync.decide.Handoff: records to create elsewhere
    #: A plan's new score and person of each record it would change (what a preview ranks and explains).
    scores: dict[str, tuple[Score, str]] = field(default_factory=dict)
    persons: set[str] = field(default_factory=set)  # every person a plan decided with a record here
    nurture: list[Any] = field(default_factory=list)  # mapping.model.Membership: enrolments and exits


class Engine:
    def __init__(
        self,
        state: State,
        connector: Connector,
        model: ScoringModel,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        max_attempts: int = 5,
        batch_size: int = 1000,
        due_days: int = 1,
        create_tasks: bool = True,
        on_progress: Callable[[str, int], None] | None = None,
        stop: threading.Event | None = None,
        policy: PersonPolicy | None = None,
    ) -> None:
        self.state = state
        self.connector = connector
        self.source = connector.name
        self.mapping = mapping_for(self.source)
        self.model = model
        self.clock = clock
        self.max_attempts = max_attempts
        self.batch_size = batch_size
        self.due_days = due_days
        self.create_tasks = create_tasks
        self.on_progress = on_progress or (lambda stage, n: None)
        self.stop = stop or threading.Event()
        self.policy = policy or PersonPolicy(create_tasks=create_tasks, due_days=due_days)
        self.alive = True
        self.lane = WriteLane(self.source)  # write calls go out on it while `idle` steps the work ahead
        self._unsettled: Callable[[], None] | None = None  # the last batch's settle, done during the next call
        self.idle: Callable[[], bool] | None = None  # set by the coordinator: the next batch's decisions

    # ------------------------------------------------------------------ entry
    def run(self, kind: str, resume: bool = False, since: datetime | None = None) -> tuple[RunSummary, PlanOutput]:
        """kind: 'backfill' (full pull; `resume` continues a killed one from its checkpoints),
        'sync' (from watermarks) or 'plan' (a sync that writes nothing to the CRM).

        One source on its own; `sync.coordinator.Sync` runs several as one (decide per person)."""
        from sync.coordinator import Sync

        return Sync(self.state, {self.source: self}, self.model, self.policy).run(kind, resume, since)[self.source]

    # ------------------------------------------------------------------ phases (driven by sync.coordinator)
    def begin(self, kind: str) -> RunSummary:
        self._started = time.perf_counter()
        self._calls0 = self.connector.api_calls
        run_id = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{self.source[:2]}-{uuid.uuid4().hex[:6]}"
        self.state.start_run(run_id, kind, self.source)
        self.wall_now = self.clock()  # task due dates count from the real time of the hand-off
        self.now = scoring_time(self.wall_now)
        self.out = PlanOutput()
        self.alive = True
        return RunSummary(run_id, self.source, kind)

    def prepare(self, summary: RunSummary, resume: bool = False, since: datetime | None = None) -> None:
        """Field set-up and the pull: everything this source needs before anyone decides."""
        kind = summary.kind
        with self.guard(summary), self._phase(summary, "setup"):
            self._restore_cache()
            if kind == "plan":
                summary.missing_fields = self.connector.missing_fields()
            else:
                self.connector.ensure_fields()
        with self.guard(summary), self._phase(summary, "pull"):
            self._pull(self._start_from(kind, resume, since), summary, backfill=kind == "backfill")

    def before_write(self, summary: RunSummary) -> None:
        """Crash recovery of this source's tasks, and which tasks owners closed since."""
        if summary.kind == "plan":
            return
        with self.guard(summary), self._phase(summary, "write"):
            self._recover_tasks(summary)
            self._read_back_tasks()

    def take(self, plans: list[ContactPlan], scores: dict[str, Score], details: dict[str, dict[str, Any]],
             summary: RunSummary) -> None:
        """This source's share of the persons decided in one batch: plan it, or write it."""
        summary.contacts_scored += len(plans)
        for p in plans:
            if p.contact.read_only and not p.contact.archived:
                summary.skipped += 1
        if summary.kind == "plan":
            for p in plans:
                person = details.get(p.contact.id, {}).get("key", p.contact.key)
                self.out.persons.add(person)
                if p.set_fields or p.task:
                    self.out.scores[p.contact.key] = (scores[p.contact.id], person)
                if p.set_fields:
                    self.out.set_fields.append(p.set_fields)
                    self._count_planned(p, summary)
                if p.task:
                    self.out.tasks.append(self._as_sent(p.task))
                    summary.tasks_created += 1
            return
        with self.guard(summary), self._phase(summary, "write"):
            self._apply_batch(plans, scores, summary, self.now, details)
        self.on_progress("score", len(plans))

    def _restore_cache(self) -> None:
        """Hand the connector what it kept from its last run (Salesforce: describes), a plain parameter."""
        if hasattr(self.connector, "metadata_cache"):
            self.connector.metadata_cache = self.state.connector_cache(self.source)

    def _save_cache(self) -> None:
        """Keep what the connector would rather not read again (None: nothing new since it was restored)."""
        cache = getattr(self.connector, "metadata_cache", None)
        if cache is not None:
            with self.state.tx():
                self.state.set_connector_cache(self.source, cache)

    def _as_sent(self, task: CreateTask) -> CreateTask:
        """A planned task with the owner the connector will give it (a queue's router, a default user), so
        `plan` shows who gets each task; connectors that send the record's owner as is have no `task_owner`."""
        route = getattr(self.connector, "task_owner", None)
        return replace(task, owner_id=route(task.owner_id)) if route else task

    def finish(self, summary: RunSummary) -> None:
        try:  # the coordinator settles after its batches; this is for a run that ended in one (an error)
            self.settle_pending()
        except Exception:  # the state store failing: the records stay dirty and are decided again next run
            log.exception("run %s: the last batch written was not settled", summary.run_id)
        self.lane.close()
        self._save_cache()
        if summary.status == "running":
            summary.status = "ok" if not summary.failed else "ok with failures"
        summary.api_calls = self.connector.api_calls - self._calls0
        quota = getattr(self.connector, "quota", None)
        summary.quota = quota() if quota else None
        summary.duration_s = round(time.perf_counter() - self._started, 3)
        self.state.finish_run(summary.run_id, summary.status, summary.to_dict())
        log.info("run %s %s: %s", summary.run_id, summary.status, json.dumps(summary.to_dict(), sort_keys=True))

    @contextmanager
    def guard(self, summary: RunSummary) -> Iterator[None]:
        """Run one step of this source; a failure ends this source's run with a clean status and never
        reaches the other sources of the same sync. A stop request ends every source."""
        if not self.alive:
            raise _Skip()
        token = run_id_var.set(summary.run_id)
        try:
            yield
        except Stopped:
            summary.status = "stopped"
            summary.message = "stopped on request; the next run continues from here"
            self.alive = False
            raise
        except QuotaExhausted as exc:
            summary.status = "paused: quota"
            summary.message = str(exc)
            summary.code = exc.code
            log.warning("run %s paused: quota (%s)", summary.run_id, exc)
            self.alive = False
            raise _Skip() from exc
        except ConnectorError as exc:  # credentials, configuration, an API refusing: a person must act
            summary.status = "error"
            summary.message = f"{type(exc).__name__}: {exc}" + (f" [{exc.code}]" if exc.code else "")
            summary.code, summary.transient = exc.code, outcome.transient(exc)
            log.error("run %s failed: %s", summary.run_id, summary.message)
            self.alive = False
            raise _Skip() from exc
        except _Skip:
            raise
        except Exception as exc:
            summary.status = "error"
            summary.message = f"{type(exc).__name__}: {exc}"
            summary.transient = outcome.transient(exc)
            log.exception("run %s failed", summary.run_id)
            self.alive = False
            raise _Skip() from exc
        finally:
            run_id_var.reset(token)

    @contextmanager
    def _phase(self, summary: RunSummary, name: str) -> Iterator[None]:
        """Count the API calls each phase spends, so benchmarks compare like with like."""
        before, started = self.connector.api_calls, time.perf_counter()
        try:
            yield
        finally:
            summary.calls_by_phase[name] = summary.calls_by_phase.get(name, 0) + self.connector.api_calls - before
            summary.seconds_by_phase[name] = summary.seconds_by_phase.get(name, 0.0) + time.perf_counter() - started

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise Stopped()

    # ------------------------------------------------------------------ pull
    def _pull(self, watermarks: dict[str, str], summary: RunSummary, backfill: bool) -> None:
        """Store every page before its cursor is kept.

        Incremental: the cursor is the stream's watermark at once. Backfill: the cursor is a checkpoint
        (a killed backfill resumes from it), and becomes the watermark when the whole pull is done.
        """
        if backfill and PULL_DONE in watermarks:
            summary.message = f"the pull of run {watermarks[PULL_DONE]} had finished: resumed at the write phase"
            log.info(summary.message)
            self._keep_undone(summary)
            return
        in_hand: list[RawPage] = []  # pulled, not stored yet
        rows, since = 0, time.monotonic()
        try:
            # the next page is pulled while this one is stored (sync/prefetch.py)
            for page in prefetched(self.connector.pull({s: c for s, c in watermarks.items() if s != PULL_DONE}),
                                   depth=PULL_AHEAD_PAGES):
                in_hand.append(page)
                rows += len(page.records)
                if rows >= PULL_COMMIT_ROWS or time.monotonic() - since >= PULL_COMMIT_S or self.stop.is_set():
                    self._store_pages(in_hand, summary, backfill)
                    rows, since = 0, time.monotonic()
                self.on_progress("pull", len(page.records))
                self._check_stop()
        finally:  # whatever ended the pull (its end, a quota pause, an error), what was paid for is kept
            self._store_pages(in_hand, summary, backfill)
        if backfill:
            with self.state.tx():
                for stream, cursor in self.state.checkpoints(self.source).items():
                    self._set_watermark(stream, cursor)
                self.state.clear_checkpoints(self.source)
                self.state.set_checkpoint(self.source, PULL_DONE, summary.run_id)  # resume skips to the writes
        self._keep_undone(summary)

    def _store_pages(self, pages: list[RawPage], summary: RunSummary, backfill: bool) -> None:
        """Store pages with their cursors in one transaction, and empty the list.

        A commit per page spent a sixth of a backfill's CPU rewriting the same B-tree pages; a few thousand
        rows per commit keep kill -9 safety as it was (a cursor is stored with its page or not at all)
        and hold no write lock across a network wait (the pages are in hand before the transaction opens)."""
        taken = pages[:]
        pages.clear()
        if not taken:
            return
        with self.state.tx():
            for page in taken:
                self._store_page(page, summary)
                if page.cursor is not None:
                    if backfill:
                        self.state.set_checkpoint(self.source, page.stream, page.cursor)
                    else:
                        self._set_watermark(page.stream, page.cursor)

    def _keep_undone(self, summary: RunSummary) -> None:
        """A run undone stays undone: a contact undo restored is not decided again while its inputs and
        leadsync's fields are as undo left them (sync/undo.py); once they differ, its hold ends."""
        keep, holds = self.held(self.state.dirty(self.source))
        if holds:
            with self.state.tx():
                self.state.clear_dirty(self.source, sorted(keep))
                self.state.release_undo_holds(self.source, sorted(set(holds) - keep))
        held = self.state.count_undo_holds(self.source)
        if held and summary.message is None:  # say why they are not written (a plan shows nothing for them)
            summary.message = (f"{held} contacts stay as an undo left them until their inputs change; "
                               "`leadsync undo --reapply RUN_ID` has the next sync decide them again")
            log.info(summary.message)

    def held(self, ids: Sequence[str]) -> tuple[set[str], set[str]]:
        """Of these contacts: those an undo still holds (not to be decided again), and all with a hold."""
        from sync.undo import still_held  # here, not at the top: undo is an operation, not part of a run

        holds = self.state.undo_holds(self.source, ids)
        if not holds:
            return set(), set()
        contacts = self.state.contacts(self.source, list(holds))
        engagements = self.state.engagements_for(self.source, list(holds))
        keep = {cid for cid, hold in holds.items()
                if cid in contacts and still_held(hold, contacts[cid], engagements.get(cid, []))}
        return keep, set(holds)

    def _start_from(self, kind: str, resume: bool, since: datetime | None = None) -> dict[str, str]:
        """Where each stream starts: the beginning (backfill) or `since`, its checkpoint (resumed backfill),
        or its watermark (sync). A resumed backfill whose pull had finished gets the PULL_DONE marker instead
        (kept until the next fresh backfill), and `_pull` goes straight on to the write phase."""
        if kind != "backfill":
            return self.state.watermarks(self.source)
        if resume:
            return self.state.checkpoints(self.source)
        self.state.clear_checkpoints(self.source)
        if since is None:
            return {}
        cursor = self.connector.cursor_at(since if since.tzinfo else since.replace(tzinfo=timezone.utc))
        return {stream: cursor for stream in self.connector.streams}

    def _set_watermark(self, stream: str, cursor: str) -> None:
        old = self.state.watermarks(self.source).get(stream)
        if old is None or cursor > old:
            self.state.set_watermark(self.source, stream, cursor)

    def _store_page(self, page: RawPage, summary: RunSummary) -> None:
        counts = summary.streams.setdefault(page.stream, {"pages": 0, "records": 0})
        counts["pages"] += 1
        counts["records"] += len(page.records)
        mapped = self.mapping.map_page(page)
        if mapped.issues:
            self.state.add_issues(summary.run_id, mapped.issues)
            summary.issues += len(mapped.issues)
            for issue in mapped.issues[:5]:
                log.info("record %s field %s: %s", issue.record_id, issue.field, issue.message)
        if mapped.contacts:
            self.state.upsert_contacts(mapped.contacts, summary.run_id)
            summary.contacts_pulled += len(mapped.contacts)
        if mapped.stage_entries:
            self.state.add_stage_entries(mapped.stage_entries, summary.run_id)
        if mapped.opportunities:
            self.state.upsert_opportunities(mapped.opportunities, summary.run_id)
        if mapped.owners:
            self.state.save_owners(self.source, [(o.id, o.name, o.email, o.active) for o in mapped.owners])
        if mapped.engagements:
            engagements = self._resolve_emails(mapped.engagements, summary)
            self.state.upsert_engagements(engagements)
            summary.engagements_pulled += len(engagements)

    def _resolve_emails(self, engagements: Sequence[Any], summary: RunSummary) -> list[Any]:
        """Email-keyed engagement (email events, form fills) gets its contact id from the snapshot."""
        emails = [e.contact_email for e in engagements if not e.contact_id and e.contact_email]
        ids = self.state.ids_by_email(self.source, emails) if emails else {}
        out, unresolved = [], []
        for e in engagements:
            if not e.contact_id and e.contact_email:
                cid = ids.get(e.contact_email.strip().lower())
                if cid:  # built directly: dataclasses.replace costs about 10 µs an event here
                    e = Engagement(e.source, e.id, cid, e.kind, e.occurred_at, e.detail, e.campaign, e.contact_email)
                else:
                    unresolved.append(e)
            out.append(e)
        if unresolved:
            issues = [MappingIssue(self.source, e.id, "contact_email", f"no contact with email {e.contact_email!r}")
                      for e in unresolved]
            self.state.add_issues(summary.run_id, issues)
            summary.issues += len(issues)
        return out

    # ------------------------------------------------------------------ plan, apply
    def _count_planned(self, p: ContactPlan, summary: RunSummary) -> None:
        assert p.set_fields is not None
        summary.fields_updated += len(p.set_fields.fields)
        summary.records_updated += 1
        if p.stage_to:
            _count_stage(summary, p.contact.lifecycle_stage, p.stage_to)

    def _apply_batch(
        self, plans: list[ContactPlan], scores: dict[str, Score], summary: RunSummary, now: datetime,
        details: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        """Intents first (audit rows, task ledger), then the CRM call, then settle: a kill -9 at any point
        leaves enough behind for the next run to finish the job without a lost or doubled write."""
        changes = [p.set_fields for p in plans if p.set_fields]
        tasks = [p.task for p in plans if p.task and self._task_wanted(p.task)]
        with self.state.tx():
            self.state.audit_intent(summary.run_id, changes)
            for t in tasks:
                self.state.task_intent(t.idempotency_key, self.source, t.contact_id, t.stage_to.value,
                                       summary.run_id, _task_payload(t))
        if changes:  # the last batch's settle is done while this batch's call is out
            results = self.lane.call(self.idle, self.connector.apply, changes, meanwhile=self.settle_pending)
        else:
            self.settle_pending()
            results = []
        accepted = [res.change for res in results if res.ok]
        ok_ids = {ch.record_id for ch in accepted}  # type: ignore[union-attr]
        keep_dirty: set[str] = set()
        with self.state.tx():
            for res in results:
                ch = res.change
                assert isinstance(ch, SetFields)
                if res.ok:
                    continue
                self.state.audit_settle(summary.run_id, ch.record_id, "rejected")
                if res.skipped:
                    summary.skipped += 1
                else:
                    summary.failed += 1
                    status = self.state.record_failure(
                        self.source, ch.key, ch.record_id, "set_fields", res.error_code, res.message, res.fields,
                        summary.run_id, self.max_attempts,
                    )
                    if status == "retry":
                        keep_dirty.add(ch.record_id)
                    log.warning("record %s rejected: %s %s", ch.record_id, res.error_code, res.message)
            written = {p.contact.id for p in plans if p.set_fields is None} | ok_ids
            for t in tasks:
                if t.contact_id not in written:
                    self.state.task_cancel(t.idempotency_key)

        def settle() -> None:
            """The accepted writes, the scores and the dirty set: nothing a task call's answer changes, so
            settled while the next call is on the wire (`settle_pending`). A kill before this commits is a
            kill between the write and its settle: the audit intents stay pending, the records dirty, and
            the tasks are in the ledger."""
            with self.state.tx():
                self._record_writes(accepted, summary)  # type: ignore[arg-type]
                self._save_scores(plans, scores, ok_ids, now, details or {})
                self.state.clear_dirty(self.source, [p.contact.id for p in plans if p.contact.id not in keep_dirty])

        self._unsettled = settle  # pending before the task call: a call that raises leaves it to finish()
        self._apply_tasks([t for t in tasks if t.contact_id in written], summary)

    def settle_pending(self) -> None:
        """Settle the last batch written, if it is not yet: before anything reads its records' dirty marks,
        snapshots or scores (the coordinator's nurture hold, the hand-offs, the run's end)."""
        settle, self._unsettled = self._unsettled, None
        if settle is not None:
            settle()

    def _task_wanted(self, task: CreateTask) -> bool:
        """A key is used once: not again once created, nor once undone (the person undid that hand-off), nor
        while an earlier create of it may still land."""
        entry = self.state.task_entries([task.idempotency_key]).get(task.idempotency_key)
        if entry is None:
            return True
        return entry["status"] == "pending" and not self._settling(entry)

    def _settling(self, entry: dict[str, Any]) -> bool:
        """Whether a pending create may still land: it was sent (`_sent_at`, stamped just before the call) less
        than the connector's settle time ago. An entry never stamped was never sent (a crash came first); an
        idempotent create (Salesforce upserts on its External ID) has no settle time: re-sending is safe."""
        settle = float(getattr(self.connector, "task_settle_s", 0.0) or 0.0)
        sent = entry["payload"].get("_sent_at")
        if settle <= 0 or not sent:
            return False
        return (datetime.now(timezone.utc) - datetime.fromisoformat(sent)).total_seconds() < settle

    def _record_writes(self, accepted: Sequence[SetFields], summary: RunSummary) -> None:
        """Settle a batch of accepted writes in the state: snapshots, audit, failures and stage history at once."""
        if not accepted:
            return
        self.state.record_writes(self.source, [(ch.record_id, ch.values(), ch.stage_to, self._link_written(ch))
                                               for ch in accepted])
        self.state.audit_settle_many(summary.run_id, [ch.record_id for ch in accepted], "ok")
        self.state.resolve_failures(self.source, [ch.key for ch in accepted])
        moves = []
        for ch in accepted:
            summary.fields_updated += len(ch.fields)
            summary.records_updated += 1
            if ch.stage_to:
                moves.append((ch.record_id, ch.stage_from.value if ch.stage_from else None, ch.stage_to.value))
                _count_stage(summary, ch.stage_from, ch.stage_to)
        self.state.add_stage_changes(self.source, moves, summary.run_id)

    def _link_written(self, ch: SetFields) -> str | None:
        """The record key a write of leadsync's link field names (the echo will carry it as a link)."""
        field_name = getattr(self.mapping, "LINK_FIELD", None)
        value = ch.values().get(field_name) if field_name else None
        other = OTHER_CRM.get(self.source)
        return f"{other}:{value}" if value and other else None

    def _apply_tasks(self, tasks: list[CreateTask], summary: RunSummary) -> None:
        """Stamp the send, create, settle. A failed create stays pending in the ledger; one whose answer was
        lost (AMBIGUOUS) is then left alone until it has settled (`_settling`), so it is never sent twice."""
        if not tasks:
            return
        with self.state.tx():
            self.state.tasks_sent([t.idempotency_key for t in tasks], datetime.now(timezone.utc))
        results: list[ChangeResult] = self.lane.call(self.idle, self.connector.apply, tasks)
        with self.state.tx():
            for res in results:
                t = res.change
                assert isinstance(t, CreateTask)
                if res.ok:
                    self.state.task_confirm(t.idempotency_key, res.crm_id)
                    self.state.resolve_failure(self.source, t.idempotency_key)
                    self.state.audit(summary.run_id, self.source, "task", res.crm_id or "",
                                     {"created_for": (None, t.contact_id)})
                    summary.tasks_created += 1
                else:
                    summary.failed += 1
                    self.state.record_failure(self.source, t.idempotency_key, t.contact_id, "create_task",
                                              res.error_code, res.message, res.fields, summary.run_id,
                                              self.max_attempts)

    def _recover_tasks(self, summary: RunSummary) -> None:
        """Tasks whose create call may or may not have landed (a crash, a lost answer): look in the CRM first;
        leave alone those that may still land (`_settling`); create the rest only if the CRM really holds the
        stage the task hands off (the pull just refreshed it). Then report duplicates that exist anyway."""
        redo = []
        pending = self.state.pending_task_entries(self.source)
        found: dict[str, str] = {}
        for part in chunks([e["key"] for e in pending], 100):
            found.update(self.connector.find_tasks(part))
        waiting = 0
        for entry in pending:
            crm_id = found.get(entry["key"])
            if crm_id:
                self.state.task_confirm(entry["key"], crm_id)
                self.state.resolve_failure(self.source, entry["key"])
                continue
            if self._settling(entry):
                waiting += 1
                continue
            contact = self.state.contacts(self.source, [entry["contact_id"]]).get(entry["contact_id"])
            reached = contact and contact.lifecycle_stage and \
                STAGE_RANK[contact.lifecycle_stage] >= STAGE_RANK[Stage(entry["stage"])]
            if reached and entry["payload"]:
                redo.append(_payload_task(entry["payload"]))
            else:
                self.state.task_cancel(entry["key"])
        if waiting:
            log.warning("%d hand-off task(s) whose create answer was lost may still appear in %s: left pending, "
                        "looked up again by a later run", waiting, self.source)
        self._apply_tasks(redo, summary)
        self._check_duplicate_tasks(summary)

    def _check_duplicate_tasks(self, summary: RunSummary) -> None:
        """Two CRM tasks under one key (a create that landed later than anyone could wait, a copy made by
        hand): read the connector's tasks created since the last check, and report each such key once as a
        held `duplicate_task` failure. Nothing is deleted: an owner may already be working either task."""
        recent = getattr(self.connector, "recent_tasks", None)
        if recent is None:
            return
        started = datetime.now(timezone.utc)
        since = self._duplicate_check_since()
        ids: dict[str, set[str]] = {}
        for key, crm_id in recent(since) if since else []:
            ids.setdefault(key, set()).add(crm_id)
        entries = self.state.task_entries(list(ids))
        known = self.state.failure_keys(self.source, "duplicate_task")
        with self.state.tx():
            for key, crm_ids in sorted(ids.items()):
                entry = entries.get(key) or {}
                every = sorted(crm_ids | ({entry["crm_id"]} if entry.get("crm_id") else set()))
                if len(every) > 1 and f"duplicate:{key}" not in known:
                    self._report_duplicate(key, entry.get("contact_id") or "", every, summary)
            self.state.set_watermark(self.source, DUPLICATE_CHECK, started.isoformat())

    def _duplicate_check_since(self) -> datetime | None:
        """The last check's start less an overlap (a late commit, indexing lag); at first the oldest ledger entry."""
        last = self.state.watermarks(self.source).get(DUPLICATE_CHECK)
        if last is None:
            return self.state.oldest_task_at(self.source)
        overlap = float(getattr(self.connector, "task_settle_s", 0.0) or 0.0) + 300
        return datetime.fromtimestamp(datetime.fromisoformat(last).timestamp() - overlap, timezone.utc)

    def _report_duplicate(self, key: str, contact_id: str, crm_ids: list[str], summary: RunSummary) -> None:
        summary.failed += 1
        message = f"{len(crm_ids)} tasks carry key {key}: {', '.join(crm_ids)}; close or delete all but one"
        self.state.record_failure(self.source, f"duplicate:{key}", contact_id, "duplicate_task", "DUPLICATE_TASK",
                                  message, (), summary.run_id, max_attempts=1)
        log.warning("duplicate hand-off task for contact %s: %s", contact_id, message)

    def _settle_tasks(self, by_id: dict[str, dict[str, Any]], found: dict[str, tuple[bool, str | None]]) -> None:
        """Record who holds each task now and which closed."""
        with self.state.tx():
            for crm_id, (closed, holder) in found.items():
                entry = by_id[crm_id]
                if holder and holder != entry.get("owner_id"):
                    self.state.task_owner(entry["key"], holder)
                if closed:
                    self.state.task_completed(entry["key"], self.wall_now)

    def _read_back_tasks(self) -> None:
        """Which hand-off tasks the owners closed since the last run, and who holds each (the report's SLA
        figures credit the task's holder, who may not be the record's owner).

        Reading every open task costs a call per 100–200 open tasks on every sync, however quiet. A connector
        that can list leadsync's tasks closed since a time (`closed_tasks_since`: one query) is asked that
        instead (with each task's holder), from the last read-back's start less an overlap; the first read-back
        reads every open one. An open task handed to another rep is seen when it closes.
        """
        open_tasks = self.state.open_tasks(self.source)
        by_id = {t["crm_id"]: t for t in open_tasks if t["crm_id"]}
        closed_since = getattr(self.connector, "closed_tasks_since", None)
        last = self.state.watermarks(self.source).get(TASK_READ_BACK)
        started = datetime.now(timezone.utc)
        if closed_since is not None and last is not None:
            since = datetime.fromtimestamp(datetime.fromisoformat(last).timestamp() - TASK_READ_BACK_OVERLAP_S,
                                           timezone.utc)
            closed = closed_since(since) if by_id else {}
            self._settle_tasks(by_id, {i: (True, holder) for i, holder in closed.items() if i in by_id})
        else:
            details = getattr(self.connector, "task_details", None)
            for part in chunks(list(by_id), 100):
                self._settle_tasks(by_id, details(part) if details else
                                   {i: (c, None) for i, c in self.connector.task_states(part).items()})
        if closed_since is not None:
            with self.state.tx():
                self.state.set_watermark(self.source, TASK_READ_BACK, started.isoformat())

    def _save_scores(self, plans: list[ContactPlan], scores: dict[str, Score], ok_ids: set[str],
                     now: datetime, details: dict[str, dict[str, Any]]) -> None:
        rows = []
        for p in plans:
            s = scores[p.contact.id]
            crm_stage = p.contact.lifecycle_stage
            if p.stage_to and p.contact.id in ok_ids:
                crm_stage = p.stage_to
            detail = stored_detail(s)
            detail["contact"] = {"email": p.contact.email, "name": p.contact.name, "object_type": p.contact.object_type}
            if p.contact.id in details:
                detail["person"] = details[p.contact.id]
            rows.append((self.source, p.contact.id, s.fit, s.engagement, s.total, s.stage.value,
                         crm_stage.value if crm_stage else None, detail, now.isoformat()))
        self.state.save_scores(rows)


def stored_detail(s: Score) -> dict[str, Any]:
    """What the state keeps of a score: the figures and each reason's rule, kind, points and text.

    Evidence lists and raw points are left out: `explain` re-scores from the stored engagement, and the
    report needs only which rules gave how many points. It is most of a score's size.
    """
    return {"model": s.model, "fit": s.fit, "engagement": s.engagement, "total": s.total, "stage": s.stage.value,
            "disqualified": s.disqualified, "signals": list(s.signals), "interests": list(s.interests),
            "reasons": [{"rule": r.rule, "kind": r.kind, "points": r.points, "text": r.text} for r in s.reasons]}


def _count_stage(summary: RunSummary, before: Stage | None, after: Stage) -> None:
    key = f"{before.value if before else 'none'}->{after.value}"
    summary.stage_changes[key] = summary.stage_changes.get(key, 0) + 1


def _task_payload(t: CreateTask) -> dict[str, Any]:
    d = asdict(t)
    d["due"] = t.due.isoformat()
    d["stage_to"] = t.stage_to.value
    return d


def _task_from_payload(d: dict[str, Any]) -> CreateTask:
    return CreateTask(**{**d, "due": datetime.fromisoformat(d["due"]), "stage_to": Stage(d["stage_to"])})


def _payload_task(payload: dict[str, Any]) -> CreateTask:
    """The task a ledger payload describes, without the ledger's own bookkeeping keys (`_sent_at`)."""
    return _task_from_payload({k: v for k, v in payload.items() if not k.startswith("_")})

#: Pulled pages are stored together once they hold this many records, or were pulled over this long.
PULL_COMMIT_ROWS = 5000
PULL_COMMIT_S = 2.0
#: Pages the pull may run ahead of the store: enough to cover storing a commit's worth of rows (a few hundred
#: ms), so the pull never waits on the store; at most a few MB of raw pages in hand.
PULL_AHEAD_PAGES = 8
PULL_DONE = "~pull-done"  # checkpoint marker: this backfill's pull finished (its value: the run that did it)
DUPLICATE_CHECK = "tasks:duplicate-check"  # watermark: when duplicate tasks were last looked for
TASK_READ_BACK = "tasks:read-back"  # watermark: when closed hand-off tasks were last looked for
TASK_READ_BACK_OVERLAP_S = 300  # a late commit, and the client's clock against the CRM's
