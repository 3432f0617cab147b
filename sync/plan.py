"""The pure diff: desired CRM state minus current CRM state, as Changes.

No I/O and no clock: the engine hands in the contact, its score, the stage
policy's verdict and `now`, and gets back what to write and why.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from mapping.model import STAGE_RANK, Contact, CreateTask, FieldChange, SetFields, Stage
from sync.state import norm_value


@dataclass(frozen=True, slots=True)
class ContactPlan:
    contact: Contact
    set_fields: SetFields | None
    task: CreateTask | None
    stage_to: Stage | None
    #: Nurture for this record: True enrol, False not (or no longer) a member, None leave alone (sync/nurture.py).
    nurture: bool | None = None


def task_key(source: str, object_type: str, contact_id: str, stage: Stage) -> str:
    """One key per contact per stage transition: the ledger's and the CRM's dedupe key."""
    raw = f"{source}:{object_type}:{contact_id}:{stage.value}"
    return "ls-" + hashlib.sha256(raw.encode()).hexdigest()[:32]


def diff_fields(current: dict[str, str | None], desired: dict[str, str | None]) -> dict[str, FieldChange]:
    out: dict[str, FieldChange] = {}
    for name, after in desired.items():
        before = current.get(name)
        if norm_value(before) != norm_value(after) and not (before in (None, "") and after in (None, "")):
            out[name] = FieldChange(before, after)
    return out


def plan_contact(
    contact: Contact,
    desired: dict[str, str | None],
    stage_to: Stage | None,
    reasons: tuple[str, ...],
    task_text: tuple[str, str] | None,
    now: datetime,
    due_days: int = 1,
) -> ContactPlan:
    """Changes for one contact. `task_text` is (subject, body) when a hand-off task is wanted."""
    if contact.read_only or contact.archived:
        return ContactPlan(contact, None, None, None)
    changes = diff_fields(dict(contact.managed), desired)
    moving = stage_to is not None and stage_to != contact.lifecycle_stage
    set_fields = None
    if changes:
        set_fields = SetFields(
            source=contact.source, object_type=contact.object_type, record_id=contact.id, fields=changes,
            stage_from=contact.lifecycle_stage if moving else None, stage_to=stage_to if moving else None,
            reasons=reasons, email=contact.email,
        )
    task = None
    was = STAGE_RANK[contact.lifecycle_stage] if contact.lifecycle_stage else 0
    if moving and stage_to is not None and task_text and STAGE_RANK[stage_to] >= STAGE_RANK[Stage.SQL] > was:
        subject, body = task_text
        task = CreateTask(
            source=contact.source, object_type=contact.object_type, contact_id=contact.id,
            owner_id=contact.owner_id, idempotency_key=task_key(contact.source, contact.object_type, contact.id, stage_to),
            subject=subject, body=body, due=now + timedelta(days=due_days), stage_to=stage_to, email=contact.email,
        )
    return ContactPlan(contact, set_fields, task, stage_to if moving else None)


def task_text(contact: Contact, summary: str, interests: tuple[str, ...], total: int) -> tuple[str, str]:
    """The hand-off note: why now, and what the person cared about."""
    who = contact.name
    company = f" at {contact.company}" if contact.company else ""
    subject = f"Follow up: {who}{company} is sales-ready"
    lines = [
        f"{who}{company} just became a sales-qualified lead (score {total}).",
        f"Why now: {summary}." if summary else "Why now: crossed the SQL threshold.",
    ]
    if interests:
        lines.append("They cared about: " + ", ".join(interests) + ".")
    if contact.title:
        lines.append(f"Title: {contact.title}.")
    lines.append("Created by leadsync; `leadsync explain " + (contact.email or contact.id) + "` shows every point.")
    return subject, "\n".join(lines)
