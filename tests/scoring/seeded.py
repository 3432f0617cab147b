"""The sandbox's synthetic people as canonical Contacts and Engagements, for scoring tests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from mapping.model import Contact, Engagement, EngagementKind, Stage
from sandbox.history import timeline
from sandbox.seed import Person, people
from scoring.backtest import Subject


def to_canonical(p: Person) -> tuple[Contact, list[Engagement]]:
    """One seeded person as the mapping layer would hand it to the scorer."""
    contact_id = str(p.index)
    contact = Contact(
        source="sandbox", id=contact_id, email=p.email or None, first_name=p.first_name,
        last_name=p.last_name, title=p.title or None, company=p.company, company_size=p.company_size,
        industry=p.industry, country=p.country, lifecycle_stage=Stage(p.sales_stage) if p.sales_stage else None,
        lead_status=p.lead_status, created_at=p.created_at,
    )
    engagements = [
        Engagement(source="sandbox", id=f"{contact_id}-{i}", contact_id=contact_id,
                   kind=EngagementKind(ev.kind), occurred_at=ev.at, detail=ev.detail)
        for i, ev in enumerate(p.events)
    ]
    return contact, engagements


def seeded(seed: int, count: int, anchor: datetime) -> Iterator[tuple[Person, Contact, list[Engagement]]]:
    for p in people(seed, count, anchor):
        contact, engagements = to_canonical(p)
        yield p, contact, engagements


def seeded_subjects(seed: int, count: int, anchor: datetime) -> list[Subject]:
    """The seed's people as backtest subjects: their engagement and the stage dates `sandbox.history` gives
    them (what the emulators serve as CRM history)."""
    out = []
    for p in people(seed, count, anchor):
        contact, engagements = to_canonical(p)
        t = timeline(seed, p, anchor)
        out.append(Subject(f"p:{p.index}", contact, tuple(engagements), p.created_at, t.opportunity_at,
                           t.customer_at, p.owner.email if p.owner else None))
    return out
