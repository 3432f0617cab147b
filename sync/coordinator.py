"""One sync across every configured CRM: pull per source, decide per person, write per record.

Order of work, each step committed before the next:
1. each source's set-up and pull (its own watermarks and quota); a source that fails ends its own run with a
   clean status and the others go on;
2. each source's task recovery;
3. the dirty records of every source, in batches: the records around them are gathered, grouped into persons,
   each person decided once (sync/decide.py), and each source writes its records' share (nurture memberships
   gather into full batches first; a record whose membership is still unwritten stays dirty). The next batch
   is decided while this one's writes are on the wire, and each source settles a batch during its next call
   (sync/ahead.py); the last batch is settled before the hand-offs;
4. hand-offs: records created in another CRM, through a ledger (planned → pending → created), exactly once:
   the create is an upsert on an External ID holding the hand-off key, looked up before it is ever re-sent;
   then the origin records are decided again, so the link back is written in the same sync;
5. each source's last, part-full batch of nurture memberships.
A source that is not part of this run keeps its dirty records and its planned hand-offs for the next one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from connectors.base import chunks
from mapping.model import Contact, CreateRecord, Engagement, Membership, Stage
from scoring import Score, ScoringModel
from sync import nurture
from sync.ahead import Ahead, run_through
from sync.decide import Handoff, PersonDecision, PersonPolicy, decide, handoff_task
from sync.engine import Engine, PlanOutput, RunSummary, Stopped, _Skip, _task_payload, mapping_for
from sync.guard import MoveGuard, Refused, model_fingerprint
from sync.persons import gather
from sync.plan import ContactPlan
from sync.whole_runs import WholeRuns

log = logging.getLogger("leadsync.sync")
#: Persons decided between two looks at whether a write's answer is in (about a millisecond each).
DECIDE_STEP = 8
FIRST_BATCH_SHARE = 5  # the first batch of a run is this fraction of the batch size
Decisions = list[tuple[Any, list[Contact], PersonDecision]]


class Sync(WholeRuns):
    """`rescore`: decide every stored record of these CRMs, not only the changed ones (also implied when the
    model differs from the one the last run of a CRM used). `guard`: refuse such a run when it would move
    too many persons' stage at once (sync/guard.py); None: no limit."""

    def __init__(self, state: Any, engines: Mapping[str, Engine], model: ScoringModel,
                 policy: PersonPolicy | None = None, routing: Any = None, alerts: Any = None, *,
                 rescore: bool = False, guard: MoveGuard | None = None) -> None:
        self.state = state
        self.routing_settings, self.alert_settings = routing, alerts  # sync.routing_settings, or None: off
        self.router: Any = None
        self.engines = dict(engines)
        self.model = model
        self.rescore = rescore
        self.guard = guard
        self._person_size: dict[str, int] = {}  # records of the person behind each hand-off (plan counts)
        self.fingerprint = model_fingerprint(model)
        first = next(iter(self.engines.values()))
        self.policy = policy or first.policy
        self.batch_size = first.batch_size
        self.stop = first.stop
        self._ahead: Ahead[Decisions] | None = None  # the next batch's decisions, stepped during writes
        for e in self.engines.values():
            e.idle = self._work_ahead

    def run(self, kind: str, resume: bool = False, since: datetime | None = None,
            check: Callable[[list[str]], str | None] | None = None) -> dict[str, tuple[RunSummary, PlanOutput]]:
        """`check(pulled sources)`, called after the pulls and before anything is decided or written, may
        refuse the run with a reason (sync/adopt.py: a fresh state meeting a CRM leadsync already wrote to)."""
        self.kind = kind
        self.summaries = {src: e.begin(kind) for src, e in self.engines.items()}
        self._nurture_buffer: dict[str, dict[str, Membership]] = {}  # per source: record id -> unwritten change
        self._nurture_held: dict[str, set[str]] = {}  # per source: records kept dirty until their change is written
        first = next(iter(self.engines.values()))
        self.now, self.wall_now = first.now, first.wall_now
        try:
            for src, e in self.engines.items():
                self._step(e.prepare, self.summaries[src], resume, since)
            refusal = check(list(self._live())) if check else None
            if refusal:
                for s in self.summaries.values():
                    if s.status == "running":
                        s.status, s.message = "refused", refusal
            else:
                for src, e in self.engines.items():
                    self._step(e.before_write, self.summaries[src])
                self._policy_for_run()
                self._start_routing()
                everyone = self._everyone()
                if everyone and kind != "plan":
                    self._mark_everyone(everyone)
                self._decide_dirty(everyone=bool(everyone))
                self._handoffs()
                self._flush_nurture()
                self._send_alerts()
        except Stopped:
            for s in self.summaries.values():
                if s.status == "running":
                    s.status, s.message = "stopped", "stopped on request; the next run continues from here"
        except Refused as exc:
            for src, s in self.summaries.items():
                if self.engines[src].alive and s.status == "running":
                    s.status, s.message = "refused", str(exc)
        finally:
            for src, e in self.engines.items():
                e.finish(self.summaries[src])
        self._keep_fingerprint()  # not after an exception nobody caught: that run did not apply the model
        return {src: (self.summaries[src], e.out) for src, e in self.engines.items()}

    @staticmethod
    def _step(fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except _Skip:
            pass

    def _live(self) -> dict[str, Engine]:
        return {src: e for src, e in self.engines.items() if e.alive}

    def _policy_for_run(self) -> None:
        """Link fields are written only where this run's connector can store them; a hand-off is decided only
        towards a CRM leadsync has pulled (in this run or before): who is missing there is unknown otherwise."""
        unsupported = {src for src, e in self.engines.items()
                       if e.alive and not getattr(e.connector, "supports_links", lambda: True)()}
        sources = {"hubspot", "salesforce", *self.engines} - unsupported
        known = frozenset(t for t in {"hubspot", "salesforce", *self.engines}
                          if (t in self.engines and self.engines[t].alive) or self.state.watermarks(t))
        self.policy = replace(self.policy, link_sources=frozenset(sources), known_sources=known,
                              handoff_to=tuple(t for t in self.policy.handoff_to if t in known))

    # ------------------------------------------------------------------ owner routing and alerts
    def _start_routing(self) -> None:
        """Routing for this run: each live CRM's users read once (inactive ones are skipped)."""
        from sync.routing_run import Router, read_availability
        from sync.routing_state import alerts_since

        if self.alert_settings is not None and self.alert_settings.enabled and self.kind != "plan":
            alerts_since(self.state)  # the first run with alerts on alerts its own hand-offs, none from before
        r = self.routing_settings
        if r is None or not r.enabled:
            return

        avail = read_availability({src: e.connector for src, e in self._live().items()})
        run_id = next(iter(self.summaries.values())).run_id
        self.router = Router(self.state, r.policy(), avail, self.wall_now.date(), run_id,
                             persist=self.kind != "plan")

    def _send_alerts(self) -> None:
        """Alerts for the hand-offs created (this run or an earlier one that died first) and SLA escalations.
        Never fails the sync: every outcome is the alert's own status (sync/alerts.py)."""
        a = self.alert_settings
        if a is None or not a.enabled or self.kind == "plan" or self.routing_settings is None:
            return
        from sync.alerts import Alerts

        run_id = next(iter(self.summaries.values())).run_id
        try:
            if a.escalate and a.reroute_on_escalation and self.router is not None:
                from sync.alerts import overdue
                from sync.routing_state import alerts_since

                late = overdue(self.state, alerts_since(self.state), self.wall_now, a.sla_business_hours)
                self.router.reroute([t for t, _ in late], {src: e.connector for src, e in self._live().items()})
            counts = Alerts(self.state, self.routing_settings, a).run(self.wall_now, run_id)
        except Exception:  # the state store itself failing: the next run queues and sends again
            log.exception("run %s: alerts not sent", run_id)
            return
        for src, c in counts.items():
            summary = self.summaries.get(src) or next(iter(self.summaries.values()))
            for k, n in c.items():
                summary.alerts[k] = summary.alerts.get(k, 0) + n

    # ------------------------------------------------------------------ decide per person
    def _decide_dirty(self, everyone: bool = False) -> None:
        blind = [src for src, e in self.engines.items() if not e.alive and not self.state.watermarks(src)]
        if blind and len(self.engines) > 1:
            # A CRM that failed before leadsync ever finished pulling it: who is in it, and what sales decided
            # there, is unknown. Deciding now would promote people it may have disqualified, for good (stages
            # only move forward); the pulled records stay dirty for the next run instead.
            for src, s in self.summaries.items():
                if self.engines[src].alive:
                    s.message = (f"nothing decided: {', '.join(blind)} failed before its first complete pull; "
                                 "the next run decides with both CRMs")
            return
        keys = [f"{src}:{rid}" for src, e in self._live().items() for rid in self._to_decide(e, everyone)]
        self.decided: set[str] = set()
        # A small first batch: nothing is on the wire while it is decided, so the writes start sooner.
        first = max(1, self.batch_size // FIRST_BATCH_SHARE)
        parts = [keys[:first], *(list(part) for part in chunks(keys[first:], self.batch_size))] if keys else []
        ahead: Ahead[Decisions] | None = None
        try:
            for i, part in enumerate(parts):
                decisions = ahead.result() if ahead else run_through(self._deciding(part, self.decided))
                # The next batch is decided while this one's writes are on the wire (sync/ahead.py). Its
                # records are filtered at its first step, once this batch's persons are in `decided`.
                ahead = Ahead(self._deciding(parts[i + 1], self.decided)) if i + 1 < len(parts) else None
                self._ahead = ahead
                try:
                    self._decide(part, decisions)
                finally:
                    self._ahead = None
                if self.stop.is_set():
                    raise Stopped()
        finally:
            self._settle()

    def _settle(self) -> None:
        """Each source's last batch, settled (an engine settles a batch during its next call)."""
        for src, e in self.engines.items():
            if e.alive:
                self._step(self._settle_one, e, self.summaries[src])

    @staticmethod
    def _settle_one(e: Engine, summary: RunSummary) -> None:
        with e.guard(summary), e._phase(summary, "write"):
            e.settle_pending()

    def _work_ahead(self) -> bool:
        """One step of the next batch's decisions (called while a write is on the wire); False: none left."""
        return self._ahead is not None and self._ahead.step()

    def _decisions(self, keys: Sequence[str]) -> Decisions:
        """The persons behind these records, each decided once; reads the state, writes nothing."""
        return run_through(self._deciding(keys))

    def _deciding(self, keys: Sequence[str], skip: set[str] | frozenset[str] = frozenset()
                  ) -> Generator[None, None, Decisions]:
        """`_decisions` in steps (records of `skip` left out when it starts): each yield is a point where a
        write's answer may be taken in."""
        keys = [k for k in keys if k not in skip]
        if not keys:
            return []
        seeds = list(self.state.records(keys).values())
        yield
        batch = gather(self.state, seeds)
        yield
        person_of, conflicted = batch.person_of(), batch.conflicted()
        persons = {}
        for k in keys:
            if k in person_of:
                persons.setdefault(person_of[k].key, person_of[k])
        engagements = self._engagements([k for p in persons.values() for k in p.records], batch.records)
        out = []
        for n, person in enumerate(persons.values(), 1):
            if n % DECIDE_STEP == 0:
                yield
            records = [batch.records[k] for k in person.records]
            d = decide(records, engagements, self.model, self.now, self.wall_now, mapping_for, self.policy,
                       anchor=person.records[0], conflicted=any(k in conflicted for k in person.records))
            out.append((person, records, d))
        return out

    def _to_decide(self, e: Engine, everyone: bool) -> list[str]:
        """A source's records to decide: its dirty set; in a plan of everyone, every record an undo does not
        hold (a sync marks them dirty instead, see `_mark_everyone`)."""
        if not (everyone and self.kind == "plan"):
            return self.state.dirty(e.source)
        ids = self.state.all_contact_ids(e.source)
        held, _ = e.held(ids)
        return [i for i in ids if i not in held]

    def _decide(self, keys: Sequence[str], decisions: Decisions | None = None) -> list[Handoff]:
        """Decide these records' persons (or take `decisions` made for them), and write or plan each share."""
        plans: dict[str, list[ContactPlan]] = {}
        scores: dict[str, dict[str, Score]] = {}
        details: dict[str, dict[str, dict[str, Any]]] = {}
        handoffs = []
        for person, records, d in self._decisions(keys) if decisions is None else decisions:
            if self.router is not None:  # after the guard's dry pass, which needs no owner: routing persists
                d = self.router.apply(d, records)
            detail = _detail(d, person.records)
            for p in d.plans:
                src = p.contact.source
                plans.setdefault(src, []).append(p)
                scores.setdefault(src, {})[p.contact.id] = d.score
                details.setdefault(src, {})[p.contact.id] = detail
            if d.handoff:
                handoffs.append(d.handoff)
                self._person_size[d.handoff.key] = len(person.records)
            self.decided.update(person.records)
        # The hand-off intents are committed before any write clears these records from the dirty set: a kill
        # between the two leaves the hand-off planned, never forgotten.
        self._plan_handoffs(handoffs)
        live = self._live()
        for src, e in live.items():
            if plans.get(src):
                refused = self._nurture(e, plans[src])  # before the field writes clear the records from dirty
                self._step(e.take, plans[src], scores[src], details[src], self.summaries[src])
                if self._nurture_buffer.get(src):  # the hold reads what the settle clears from the dirty set
                    self._step(self._settle_one, e, self.summaries[src])
                self._hold_nurture(src, refused)
        self._defer([p for src, ps in plans.items() if src not in live for p in ps])
        return handoffs

    # ------------------------------------------------------------------ nurture
    def _nurture(self, e: Engine, plans: list[ContactPlan]) -> list[str]:
        """This source's nurture adds and removes for one batch (sync/nurture.py): planned, or buffered and written
        in full `nurture.batch_size` calls (the rest at the end of the run); returns the records the CRM refused."""
        np = self.policy.nurture
        if np is None or e.source not in np.targets:
            return []
        changes = nurture.changes_for(self.state, e.source, plans, np)
        summary = self.summaries[e.source]
        if self.kind == "plan":
            e.out.nurture.extend(changes)
            summary.nurture_added += sum(1 for m in changes if m.add)
            summary.nurture_removed += sum(1 for m in changes if not m.add)
            return []
        buffer = self._nurture_buffer.setdefault(e.source, {})
        for p in plans:  # a later decision about a record replaces an unwritten earlier one
            if p.nurture is not None:
                buffer.pop(p.contact.id, None)
        buffer.update({m.record_id: m for m in changes})
        return self._write_nurture(e, full_only=True)

    def _write_nurture(self, e: Engine, full_only: bool) -> list[str]:
        np, buffer = self.policy.nurture, self._nurture_buffer.get(e.source) or {}
        assert np is not None or not buffer
        n = len(buffer) // np.batch_size * np.batch_size if np and full_only else len(buffer)
        if n == 0 or np is None:
            return []
        ids = list(buffer)[:n]
        batch = [buffer.pop(i) for i in ids]
        summary = self.summaries[e.source]
        try:
            with e.guard(summary), e._phase(summary, "write"):
                refused = nurture.write(self.state, e.connector, batch, summary.run_id, np.batch_size,
                                        e.max_attempts, summary)
        except _Skip:
            return []  # the source's run ended: its held records stay dirty for the next one
        held = self._nurture_held.get(e.source, set())
        done = [i for i in ids if i in held and i not in set(refused)]
        if done:
            with self.state.tx():
                self.state.clear_dirty(e.source, done)
            held.difference_update(done)
        return refused

    def _hold_nurture(self, source: str, refused: list[str]) -> None:
        """After the field writes: a record whose nurture change is still unwritten (or was refused) stays dirty,
        so a kill before its call leaves it for the next run. A record the field writes kept dirty is left so."""
        buffer = self._nurture_buffer.get(source) or {}
        held = self._nurture_held.setdefault(source, set())
        todo = [i for i in buffer if i not in held]
        if todo:
            kept = self.state.dirty_among(source, todo)
            mine = [i for i in todo if i not in kept]
            held.update(mine)
        else:
            mine = []
        if mine or refused:
            with self.state.tx():
                self.state.mark_dirty(source, [*mine, *refused])

    def _flush_nurture(self) -> None:
        """The part-full last batch of each source's nurture changes."""
        for e in self._live().values():
            self._write_nurture(e, full_only=False)

    def _defer(self, plans: Sequence[ContactPlan]) -> None:
        """Records of a CRM this run cannot write: kept dirty, so the next run of that CRM decides them."""
        if self.kind == "plan":
            return
        by_source: dict[str, list[str]] = {}
        for p in plans:
            if p.set_fields or p.task:
                by_source.setdefault(p.contact.source, []).append(p.contact.id)
        if by_source:
            with self.state.tx():
                for src, ids in by_source.items():
                    self.state.mark_dirty(src, ids)

    def _engagements(self, keys: Sequence[str], records: Mapping[str, Contact]) -> dict[str, list[Engagement]]:
        by_source: dict[str, list[str]] = {}
        for k in keys:
            by_source.setdefault(records[k].source, []).append(records[k].id)
        out: dict[str, list[Engagement]] = {}
        for src, ids in by_source.items():
            for rid, history in self.state.engagements_for(src, ids).items():
                out[f"{src}:{rid}"] = history
        return out

    # ------------------------------------------------------------------ hand-offs
    def _origin_summary(self, h: Handoff) -> RunSummary | None:
        return self.summaries.get(h.origin.partition(":")[0])

    def _plan_handoffs(self, handoffs: list[Handoff]) -> None:
        if not handoffs:
            return
        if self.kind == "plan":
            for h in handoffs:
                engine = self.engines.get(h.origin.partition(":")[0])
                if engine is not None:
                    engine.out.handoffs.append(h)
                    self._count_planned_handoff(h)
            return
        with self.state.tx():
            for h in handoffs:
                summary = self._origin_summary(h)
                self.state.handoff_plan(h.key, h.origin, h.target, h.object_type,
                                        summary.run_id if summary else "", _handoff_payload(h))

    def _count_planned_handoff(self, h: Handoff) -> None:
        """What a sync does for one hand-off, counted as the sync counts it (a preview's counts are the apply's):
        the record created with its stage and why-now task in the target, then the person decided again, which
        writes the link to the new record on the origin. A target not in this run keeps the hand-off planned."""
        target, origin = self.summaries.get(h.target), self._origin_summary(h)
        if target is None or origin is None or not self.engines[h.target].alive:
            return
        target.records_created += 1
        _count(target, h.stage)
        target.tasks_created += h.task is not None
        target.contacts_scored += 1
        origin.contacts_scored += self._person_size.get(h.key, 1)
        if h.origin.partition(":")[0] in self.policy.link_sources:
            origin.records_updated += 1
            origin.fields_updated += 1

    def _handoffs(self) -> None:
        if self.kind == "plan":
            return
        for target, e in self._live().items():
            entries = self.state.handoffs(target)
            if entries:
                self._step(self._execute, e, entries)

    def _execute(self, e: Engine, entries: list[dict[str, Any]]) -> None:
        summary = self.summaries[e.source]
        if not getattr(e.connector, "supports_handoffs", lambda: False)():
            summary.message = (f"{len(entries)} hand-off(s) left planned: {e.source} has no External ID field "
                               "for the hand-off key (see BEHAVIOR.md)")
            log.warning("run %s: %s", summary.run_id, summary.message)
            return
        with e.guard(summary), e._phase(summary, "write"):
            wanted = [_handoff_from(entry) for entry in entries]
            # Looked up first, by key: a create whose answer a crash or a timeout swallowed is ours, and done.
            found = e.connector.find_records(wanted[0].object_type, [h.key for h in wanted])
            created: list[tuple[Handoff, str]] = [(h, found[h.key]) for h in wanted if h.key in found]
            fresh = self._still_wanted(e, [h for h in wanted if h.key not in found])
            with self.state.tx():
                for h in fresh:
                    self.state.handoff_set(h.key, "pending", run_id=summary.run_id)
            changes = [_create(e.mapping, h) for h in fresh]
            results = e.connector.apply(changes) if changes else []
            for h, res in zip(fresh, results, strict=True):
                if res.ok and res.crm_id:
                    created.append((h, res.crm_id))
                    continue
                summary.failed += 1
                with self.state.tx():
                    status = self.state.record_failure(e.source, h.key, h.origin, "create_record", res.error_code,
                                                       res.message, res.fields, summary.run_id, e.max_attempts)
                    self.state.handoff_set(h.key, "planned" if status == "retry" else "failed")
                log.warning("hand-off %s → %s rejected: %s %s", h.origin, e.source, res.error_code, res.message)
            self._confirm(e, created, summary)
        origins = [h.origin for h, _ in created]
        if origins:
            self._relink(origins)

    def _still_wanted(self, e: Engine, handoffs: list[Handoff]) -> list[Handoff]:
        """A hand-off not yet in the CRM whose person has since gained a record there (pulled, or linked by
        hand) links to it instead: a hand-off never duplicates a record sales already has."""
        todo = []
        for h in handoffs:
            origin = self.state.records([h.origin]).get(h.origin)
            batch = gather(self.state, [origin]) if origin else None
            person = batch.person_of().get(h.origin) if batch else None
            has_target = person is not None and any(
                k.startswith(f"{e.source}:") and not batch.records[k].archived for k in person.records)
            if origin is None or origin.archived or has_target or h.origin in (batch.conflicted() if batch else ()):
                with self.state.tx():
                    self.state.handoff_set(h.key, "linked" if has_target else "cancelled")
                continue
            todo.append(h)
        return todo

    def _confirm(self, e: Engine, created: list[tuple[Handoff, str]], summary: RunSummary) -> None:
        tasks = []
        with self.state.tx():
            for h, crm_id in created:
                self.state.handoff_set(h.key, "created", crm_id, summary.run_id)
                self.state.put_contact(_new_record(e.mapping, h, crm_id, self.wall_now), summary.run_id)
                self.state.audit(summary.run_id, e.source, "handoff", crm_id,
                                 {"created_for": (None, h.origin), "handoff_key": (None, h.key)})
                self.state.resolve_failure(e.source, h.key)
                summary.records_created += 1
                self.state.add_stage_change(e.source, crm_id, None, h.stage.value, summary.run_id)
                _count(summary, h.stage)
                owner = h.values.get("task_owner_id") or h.values.get("owner_id")  # routed, else the configured one
                task = handoff_task(h, crm_id, owner, e.wall_now, self.policy.due_days,
                                    h.values.get("email"))
                if task is not None and e._task_wanted(task):
                    self.state.task_intent(task.idempotency_key, e.source, crm_id, task.stage_to.value,
                                           summary.run_id, _task_payload(task))
                    tasks.append(task)
        e._apply_tasks(tasks, summary)

    def _relink(self, origins: list[str]) -> None:
        """Decide the origin persons again: the link back (and the new record's fields) in this same sync."""
        with self.state.tx():
            for key in origins:
                src, _, rid = key.partition(":")
                self.state.mark_dirty(src, [rid])
        keys = [k for k in origins if k.partition(":")[0] in self._live()]
        for part in chunks(keys, self.batch_size):
            self._decide(list(part))
        self._settle()


def _count(summary: RunSummary, stage: Stage) -> None:
    key = f"none->{stage.value}"
    summary.stage_changes[key] = summary.stage_changes.get(key, 0) + 1


def _detail(d: PersonDecision, records: Sequence[str]) -> dict[str, Any]:
    """Who the person behind a record's score is (`explain` re-derives the rest: evidence, provenance)."""
    return {"key": d.person, "records": list(records), "duplicates_dropped": d.duplicates_dropped}


def _handoff_payload(h: Handoff) -> dict[str, Any]:
    return {"origin": h.origin, "target": h.target, "object_type": h.object_type, "values": dict(h.values),
            "managed": dict(h.managed), "stage": h.stage.value, "task": list(h.task) if h.task else None,
            "reasons": list(h.reasons)}


def _handoff_from(entry: Mapping[str, Any]) -> Handoff:
    p = entry["payload"]
    return Handoff(entry["key"], p["origin"], p["target"], p["object_type"], p["values"], p["managed"],
                   Stage(p["stage"]), tuple(p["task"]) if p.get("task") else None, tuple(p.get("reasons") or ()))


def _create(m: Any, h: Handoff) -> CreateRecord:
    return CreateRecord(source=h.target, object_type=h.object_type, idempotency_key=h.key, origin=h.origin,
                        fields=m.handoff_record(h.object_type, h.values, h.managed))


def _new_record(m: Any, h: Handoff, crm_id: str, now: datetime) -> Contact:
    """The created record as the state will know it until its first pull: its echo is then no change."""
    v = h.values
    managed = dict(h.managed)
    link = getattr(m, "LINK_FIELD", None)
    if link:
        managed[link] = h.origin.partition(":")[2]
    return Contact(source=h.target, id=crm_id, object_type=h.object_type, email=v.get("email"),
                   first_name=v.get("first_name"), last_name=v.get("last_name"), title=v.get("title"),
                   company=v.get("company") or (v.get("company_placeholder") if h.target == "salesforce" else None),
                   company_size=v.get("company_size"), country=v.get("country"),
                   owner_id=v.get("owner_id"), lifecycle_stage=h.stage, created_at=now, managed=managed,
                   links=(h.origin,))
