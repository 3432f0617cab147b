"""One decision per person, written per record. Pure: no I/O, no clock (`now` is an argument).

A person's records are merged into one profile (mapping/profile.py), their engagement pooled, and scored
once. Every writable record then gets the same score fields and the person's stage in its own CRM's
vocabulary, under that CRM's rules: forward-only, never over a sales-owned stage or a disqualifying lead
status. The most advanced stage any record holds is the person's floor (an Opportunity in Salesforce moves
the HubSpot contact to opportunity), except for a record that sales blocked or that is being recycled.
The why-now task goes to exactly one record, the one sales works in (a Salesforce Contact, else Lead, else
the contact itself); a person who reaches the hand-off stage with no record in the hand-off CRM gets one
created there (`Handoff`), and the task rides on it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import MappingProxyType, ModuleType
from typing import Any

from mapping import hubspot as hubspot_mapping
from mapping import salesforce as salesforce_mapping
from mapping.identity import OTHER_CRM
from mapping.model import SALES_OWNED, STAGE_RANK, Contact, CreateTask, Engagement, Stage
from mapping.profile import DEFAULT_RULES, Profile, merge, pool
from scoring import Score, ScoringModel, next_stage, score
from scoring.policy import status_in
from sync.plan import ContactPlan, plan_contact, task_key, task_text

#: leadsync's link fields, in each CRM's vocabulary.
LINK_FIELDS = frozenset({hubspot_mapping.LINK_FIELD, salesforce_mapping.LINK_FIELD})
#: What a hand-off Lead's Company says when no record knows the company (Salesforce requires one); the
#: spelling HubSpot's own connector uses.
COMPANY_PLACEHOLDER = "[not provided]"


@dataclass(frozen=True)
class NurturePolicy:
    """Where marketing nurtures MQLs that are not sales-ready, as plain values (built from `sync.settings`)."""

    stages: frozenset[Stage] = frozenset({Stage.MQL})  # a person whose stage is one of these is enrolled
    targets: Mapping[str, str] = field(default_factory=dict)  # source -> HubSpot list id / Salesforce Campaign id
    member_status: str = "Sent"  # CampaignMember Status on enrolment
    exit_status: str | None = None  # CampaignMember Status on exit; None deletes the member
    batch_size: int = 100  # records per membership call


@dataclass(frozen=True)
class PersonPolicy:
    """The team's person-level settings, as plain values (built from `sync.settings`)."""

    rules: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_RULES))
    copy_fields: tuple[str, ...] = ()
    handoff_stage: Stage = Stage.SQL
    handoff_to: tuple[str, ...] = ()  # CRMs a person is created in on reaching `handoff_stage`
    lead_source: str | None = "Web"
    handoff_owner: str | None = None
    company_placeholder: str = COMPANY_PLACEHOLDER
    create_tasks: bool = True
    due_days: int = 1
    #: Sources whose connector can store leadsync's link field (an org may lack the Salesforce one).
    link_sources: frozenset[str] = frozenset()
    #: Sources leadsync has pulled (now or before): only there is a missing record known to be missing.
    known_sources: frozenset[str] = frozenset()
    nurture: NurturePolicy | None = None


@dataclass(frozen=True, slots=True)
class Handoff:
    """Create the person's record in `target` (exactly once: `key` is its External ID / unique value)."""

    key: str
    origin: str  # record key of the record the person is handed off from
    target: str
    object_type: str
    values: Mapping[str, Any]  # canonical fields of the new record
    managed: Mapping[str, str | None]  # the target's score and stage fields
    stage: Stage
    task: tuple[str, str] | None  # (subject, body) of the why-now task on the new record
    reasons: tuple[str, ...] = ()


@dataclass
class PersonDecision:
    person: str
    score: Score
    profile: Profile
    stage: Stage | None  # the most advanced stage the person's records hold once this is written
    plans: list[ContactPlan]
    handoff: Handoff | None = None
    duplicates_dropped: int = 0


def handoff_key(origin: str, target: str) -> str:
    """One hand-off per origin record per target CRM: the External ID the create upserts on."""
    return "lsp-" + hashlib.sha256(f"{origin}>{target}".encode()).hexdigest()[:32]


def _rank(stage: Stage | None) -> int:
    return STAGE_RANK[stage] if stage is not None else 0


def _sales_record(records: Sequence[Contact]) -> Contact | None:
    """Where the why-now task goes: the record sales works in."""
    live = [c for c in records if not (c.read_only or c.archived)]
    for pick in (lambda c: c.source == "salesforce" and c.object_type == "Contact",
                 lambda c: c.source == "salesforce", lambda c: True):
        found = [c for c in live if pick(c)]
        if found:
            return found[0]
    return None


def _link_for(record: Contact, records: Sequence[Contact], policy: PersonPolicy) -> str | None:
    """The id leadsync's link field on `record` should hold: the person's record in the other CRM."""
    if record.source not in policy.link_sources:
        return None
    other = OTHER_CRM.get(record.source)
    candidates = [c for c in records if c.source == other and not (c.read_only or c.archived)]
    candidates.sort(key=lambda c: (c.object_type != "Contact", c.id))
    if candidates:
        return candidates[0].id
    # A link leadsync wrote that no longer holds (unlinked, merged away) is cleared, but only once the other
    # CRM is known: after a lost state database the link is what finds the person again.
    field_name = next((k for k in record.managed if k in LINK_FIELDS), None)
    if field_name and record.managed.get(field_name) and other in policy.known_sources:
        return ""
    return None


def decide(records: Sequence[Contact], engagements: Mapping[str, Sequence[Engagement]], model: ScoringModel,
           now: datetime, wall_now: datetime, mappings: Callable[[str], ModuleType], policy: PersonPolicy,
           anchor: str | None = None, conflicted: bool = False) -> PersonDecision:
    """The person's score, stage and every record's plan. `now` is the scoring day, `wall_now` the time
    tasks count their due date from; `conflicted`: identity is unsure, so nothing is created elsewhere."""
    ordered = sorted(records, key=lambda c: (c.source != "hubspot", c.source, c.object_type, c.id))
    profile = merge(ordered, policy.rules, anchor)
    pooled, dropped = pool([engagements.get(c.key, ()) for c in ordered])
    s = score(model, profile.contact, pooled, now)
    why = s.summary()  # the task's "why now": what makes them sales-ready
    # The CRM's reason field: for and against, within the tightest CRM's limit (the same text in every record).
    crm_why = s.reason_text(salesforce_mapping.REASON_MAX)
    reasons = tuple(r.text for r in s.reasons)
    text = task_text(profile.contact, why, s.interests, s.total) if policy.create_tasks else None
    live = [c for c in ordered if not (c.read_only or c.archived)]
    floor = max((c.lifecycle_stage for c in live if c.lifecycle_stage and c.lifecycle_stage is not Stage.OTHER),
                key=_rank, default=None)
    handoff_targets = _handoff_targets(ordered, policy, conflicted)
    tasked = None if handoff_targets else _sales_record(ordered)
    plans: list[ContactPlan] = []
    reached: Stage | None = floor
    for c in ordered:
        target = _record_stage(c, profile.contact, s, floor, model)
        if target is not None and _rank(target) > _rank(reached):
            reached = target
        m = mappings(c.source)
        desired = m.outbound_fields(target, s.total, s.fit, s.engagement, crm_why, link=_link_for(c, ordered, policy))
        current = dict(c.managed)
        _flow_back(c, profile, model, m, desired, current, policy)
        plans.append(plan_contact(replace(c, managed=MappingProxyType(current)), desired, target, reasons,
                                  text if c is tasked else None, wall_now, policy.due_days))
    if policy.nurture is not None and policy.nurture.targets:
        plans = _with_nurture(plans, nurture_wanted(reached, profile.contact, s, model, policy.nurture),
                              policy.nurture)
    handoff = None
    # Sales-owned stages set by hand (an opportunity, a customer) are sales' business already: not a hand-off.
    if handoff_targets and _rank(reached) >= _rank(policy.handoff_stage) and reached not in SALES_OWNED:
        handoff = _handoff(ordered[0], handoff_targets[0], profile, s, crm_why, reasons, reached, text, mappings, policy)
    return PersonDecision(profile.contact.key, s, profile, reached, plans, handoff, dropped)


# ------------------------------------------------------------------ nurture


def nurture_wanted(stage: Stage | None, person: Contact, s: Score, model: ScoringModel, np: NurturePolicy) -> bool:
    """Whether the person belongs in nurture: their stage enrols (an MQL, not yet sales-ready), they have not
    unsubscribed (opted out in any CRM), and neither sales (a disqualifying lead status) nor the model
    (a disqualifier) ruled them out. Anything else is an exit."""
    if stage is None or stage not in np.stages or person.do_not_contact:
        return False
    return not (s.disqualified or status_in(person.lead_status, model.policy.disqualifying_lead_statuses))


def nurture_records(records: Sequence[Contact], targets: Mapping[str, str]) -> dict[str, bool]:
    """Which live records carry the person's membership, per CRM holding a target: every HubSpot contact of
    theirs (a list holds contacts), and in Salesforce one record, the Contact before a Lead (a campaign
    should count the human once). Their other live records there are never members."""
    out: dict[str, bool] = {}
    live = [c for c in records if not (c.read_only or c.archived) and c.source in targets]
    for source in targets:
        mine = sorted((c for c in live if c.source == source), key=lambda c: (c.object_type != "Contact", c.id))
        for i, c in enumerate(mine):
            out[c.key] = source == "hubspot" or i == 0
    return out


def _with_nurture(plans: list[ContactPlan], wanted: bool, np: NurturePolicy) -> list[ContactPlan]:
    carriers = nurture_records([p.contact for p in plans], np.targets)
    return [replace(p, nurture=wanted and carriers[p.contact.key]) if p.contact.key in carriers else p
            for p in plans]


def _record_stage(c: Contact, person: Contact, s: Score, floor: Stage | None, model: ScoringModel) -> Stage | None:
    """The stage to write on one record: the policy's verdict on the person's score, raised to the floor."""
    statuses = model.policy.disqualifying_lead_statuses
    own = next_stage(model, c.lifecycle_stage, c.lead_status, s)
    if person.lead_status != c.lead_status:  # another CRM's sales status also speaks for the person
        theirs = next_stage(model, c.lifecycle_stage, person.lead_status, s)
        if theirs is None or _rank(theirs) < _rank(own):
            own = theirs
    blocked = c.lifecycle_stage in SALES_OWNED or status_in(c.lead_status, statuses) \
        or status_in(person.lead_status, statuses)
    recycling = own is not None and _rank(own) < _rank(c.lifecycle_stage)
    best = own or c.lifecycle_stage
    if floor is not None and not blocked and not recycling and _rank(floor) > _rank(best):
        return floor
    return own


def _flow_back(c: Contact, profile: Profile, model: ScoringModel, m: ModuleType, desired: dict[str, str | None],
               current: dict[str, str | None], policy: PersonPolicy) -> None:
    """Sales state and copied fields from the person's other records (never over this CRM's own rule)."""
    person = profile.contact
    status = getattr(m, "DISQUALIFIED_STATUS", None)
    if status and person.lead_status != c.lead_status and \
            status_in(person.lead_status, model.policy.disqualifying_lead_statuses) and \
            not status_in(c.lead_status, model.policy.disqualifying_lead_statuses):
        desired[m.LEAD_STATUS_FIELD] = status
        current[m.LEAD_STATUS_FIELD] = c.lead_status
    targets = m.copy_fields(c.object_type)
    for name in policy.copy_fields:
        crm_field = targets.get(name)
        origin = profile.provenance.get(name)
        rule = policy.rules.get(name, "two_way")
        if crm_field is None or origin is None or origin.source == c.source or rule == "dont_sync":
            continue
        if rule.endswith(f"_{c.source}") or rule.endswith(f"_{c.source}_unless_blank") and getattr(c, name):
            continue  # this CRM owns the field: its own value stands
        value = getattr(person, name)
        if value in (None, "") or value == getattr(c, name):
            continue
        desired[crm_field] = str(value)
        current[crm_field] = None if getattr(c, name) is None else str(getattr(c, name))


def _handoff_targets(records: Sequence[Contact], policy: PersonPolicy, conflicted: bool) -> list[str]:
    """CRMs the person must be created in: configured, and holding no live record of theirs yet."""
    if conflicted or not policy.handoff_to:
        return []
    have = {c.source for c in records if not c.archived}
    origin_ok = any(not (c.read_only or c.archived) for c in records)
    return [t for t in policy.handoff_to if t not in have and origin_ok]


def _handoff(origin: Contact, target: str, profile: Profile, s: Score, why: str, reasons: tuple[str, ...],
             stage: Stage, text: tuple[str, str] | None, mappings: Callable[[str], ModuleType],
             policy: PersonPolicy) -> Handoff:
    p = profile.contact
    values: dict[str, Any] = {
        "first_name": p.first_name, "last_name": p.last_name or p.email or p.id, "email": p.email,
        "title": p.title, "company": p.company, "company_placeholder": policy.company_placeholder,
        "company_size": p.company_size,
        "country": p.country, "lead_source": policy.lead_source, "owner_id": policy.handoff_owner,
        "link": origin.id,
    }
    object_type = "Lead" if target == "salesforce" else "contacts"
    managed = mappings(target).outbound_fields(stage, s.total, s.fit, s.engagement, why)
    return Handoff(handoff_key(origin.key, target), origin.key, target, object_type, values, managed, stage, text,
                   reasons)


def handoff_task(h: Handoff, crm_id: str, owner_id: str | None, wall_now: datetime, due_days: int,
                 email: str | None) -> CreateTask | None:
    """The why-now task on a created record, keyed like any task on it (a re-run finds it, never doubles it)."""
    if h.task is None:
        return None
    subject, body = h.task
    return CreateTask(source=h.target, object_type=h.object_type, contact_id=crm_id, owner_id=owner_id,
                      idempotency_key=task_key(h.target, h.object_type, crm_id, h.stage), subject=subject, body=body,
                      due=wall_now + timedelta(days=due_days), stage_to=h.stage, email=email)
