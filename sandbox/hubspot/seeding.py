"""Turn `sandbox.seed` people into HubSpot records and engagement streams.

Everything is a pure function of (seed, contacts, anchor) so two emulators
built alike serve identical data, and ids are stable across runs.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sandbox.hubspot.catalog import LIFECYCLE_STAGES, employee_range
from sandbox.seed import EMAILS, SITE, Event, Person, people

CONTACT_ID_BASE = 51_000_000_000
MEETING_ID_BASE = 61_000_000_000
CAMPAIGN_ID_BASE = 310_000_001
PORTAL_ID = 4_242_424
_NS = uuid.UUID("6f1c3a52-1d1b-4f5e-9a53-6b3f3f1f0c01")
#: Seed engagement kinds that HubSpot records as a form submission, and the form each lands on.
FORM_KINDS = {"content_download": "Content download", "webinar": "Webinar registration",
              "demo_request": "Demo request"}
FORM_NAMES = ("Newsletter signup", "Contact us", "Content download", "Webinar registration", "Demo request")
#: The extra form field that carries the seed event's detail, per form.
FORM_DETAIL_FIELD = {"Content download": "asset", "Webinar registration": "webinar"}


def iso(at: datetime) -> str:
    """HubSpot's datetime wire format: ISO-8601 UTC with milliseconds."""
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def stable_id(*parts: object) -> str:
    return str(uuid.uuid5(_NS, "/".join(map(str, parts))))


def contact_id(index: int) -> str:
    return str(CONTACT_ID_BASE + index * 7)


def form_guid(name: str) -> str:
    return stable_id("form", name)


def campaign_id(name: str) -> int:
    return CAMPAIGN_ID_BASE + EMAILS.index(name)


@dataclass
class Streams:
    """Engagement detail as HubSpot serves it: global, time-ordered streams."""

    web_events: list[dict[str, Any]] = field(default_factory=list)  # /events/v3/events items
    email_events: list[dict[str, Any]] = field(default_factory=list)  # /email/public/v1/events items
    submissions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # form guid -> newest first
    meetings: list[tuple[str, dict[str, str | None], str]] = field(default_factory=list)  # id, props, contact


@dataclass
class Seeded:
    contacts: dict[str, dict[str, str | None]]
    streams: Streams


def build(seed: int, count: int, anchor: datetime) -> Seeded:
    """Contacts (HubSpot side only) and their engagement streams."""
    contacts: dict[str, dict[str, str | None]] = {}
    streams = Streams(submissions={form_guid(n): [] for n in FORM_NAMES})
    seen_emails: set[str] = set()
    for p in people(seed, count, anchor):
        if not p.in_hubspot:
            continue
        cid = contact_id(p.index)
        email = p.email.lower() or None
        if email in seen_emails:
            email = None  # HubSpot keeps primary emails unique; the duplicate lands without one
        if email:
            seen_emails.add(email)
        contacts[cid] = contact_properties(seed, p, cid, email)
        _add_streams(streams, p, cid, email)
    streams.web_events.sort(key=lambda e: (e["occurredAt"], e["id"]))
    streams.email_events.sort(key=lambda e: (e["created"], e["id"]))
    for subs in streams.submissions.values():
        subs.sort(key=lambda s: (-s["submittedAt"], s["conversionId"]))
    streams.meetings.sort(key=lambda m: int(m[0]))
    return Seeded(contacts, streams)


def _stage(seed: int, p: Person) -> str:
    if p.sales_stage:
        return p.sales_stage
    return "subscriber" if random.Random(seed * 7919 + p.index).random() < 0.15 else "lead"


def contact_properties(seed: int, p: Person, cid: str, email: str | None) -> dict[str, str | None]:
    """Every stored property of one contact; values are strings, unset ones absent."""
    stage = _stage(seed, p)
    modified = max([p.created_at, *(e.at for e in p.events)])
    props: dict[str, str | None] = {
        "hs_object_id": cid, "email": email, "firstname": p.first_name, "lastname": p.last_name,
        "jobtitle": p.title or None, "company": p.company, "numemployees": employee_range(p.company_size),
        "industry": p.industry, "country": p.country, "hubspot_owner_id": p.owner.hubspot_id,
        "lifecyclestage": stage, "hs_lead_status": p.lead_status, "createdate": iso(p.created_at),
        "lastmodifieddate": iso(modified), "hs_pipeline": "contacts-lifecycle-pipeline",
    }
    first = 0 if stage == "subscriber" else 1
    for s in LIFECYCLE_STAGES[first : LIFECYCLE_STAGES.index(stage) + 1]:
        props[f"hs_lifecyclestage_{s}_date"] = iso(p.created_at)
    props.update(aggregates(p.events))
    return {k: v for k, v in props.items() if v is not None}


def aggregates(events: tuple[Event, ...]) -> dict[str, str | None]:
    """The contact-level engagement roll-ups HubSpot computes from activity (reference §4.4-4.6)."""
    kinds = Counter(e.kind for e in events)
    last = {e.kind: e for e in events}  # events are time-ordered: the last one wins
    views = [e for e in events if e.kind == "page_view"]
    conversions = [e for e in events if e.kind in ("form_submit", *FORM_KINDS)]
    out: dict[str, str | None] = {
        "hs_analytics_num_page_views": str(kinds["page_view"]),
        "hs_analytics_num_visits": str(len({e.at.date() for e in views})),
        "hs_email_open": str(kinds["email_open"]), "hs_email_click": str(kinds["email_click"]),
        "hs_email_bounce": str(kinds["hard_bounce"]),
        "num_conversion_events": str(len(conversions)),
        "num_unique_conversion_events": str(len({_form_of(e) for e in conversions})),
        "hs_email_optout": "true" if kinds["unsubscribe"] else "false",
    }
    if views:
        out["hs_analytics_last_visit_timestamp"] = iso(views[-1].at)
        out["hs_analytics_first_visit_timestamp"] = iso(views[0].at)
    if "email_open" in last:
        out["hs_email_last_open_date"] = iso(last["email_open"].at)
    if "email_click" in last:
        out["hs_email_last_click_date"] = iso(last["email_click"].at)
    if conversions:
        out["recent_conversion_event_name"] = _form_of(conversions[-1])
        out["recent_conversion_date"] = iso(conversions[-1].at)
        out["first_conversion_event_name"] = _form_of(conversions[0])
        out["first_conversion_date"] = iso(conversions[0].at)
    if "meeting" in last:
        out["engagements_last_meeting_booked"] = iso(last["meeting"].at)
    if "hard_bounce" in last:
        out["hs_email_hard_bounce_reason_enum"] = "UNKNOWN_USER"
    return out


def _form_of(e: Event) -> str:
    return FORM_KINDS.get(e.kind, e.detail)


def _add_streams(streams: Streams, p: Person, cid: str, email: str | None) -> None:
    """Route each seed event to its stream; invalid addresses get no email and pass no form validation."""
    email = email if email and "@" in email else None
    for n, e in enumerate(p.events):
        eid = stable_id(cid, n, e.kind, e.at.isoformat())
        if e.kind == "page_view":
            streams.web_events.append(_web_event(eid, cid, e))
        elif e.kind == "meeting":
            mid = str(MEETING_ID_BASE + p.index * 7 + n)
            streams.meetings.append((mid, _meeting(mid, e, p), cid))
        elif e.kind in ("form_submit", *FORM_KINDS):
            if email:
                form = _form_of(e)
                streams.submissions[form_guid(form)].append(_submission(eid, e, form, p, email))
        elif email:
            streams.email_events.append(_email_event(eid, e, email))


def _web_event(eid: str, cid: str, e: Event) -> dict[str, Any]:
    path = e.detail.removeprefix(SITE) or "/"
    return {
        "objectType": "CONTACT", "objectId": cid, "eventType": "e_visited_page", "occurredAt": iso(e.at),
        "id": eid, "properties": {
            "hs_url": e.detail, "hs_page_path": path, "hs_title": path.strip("/").replace("-", " ").title() or "Home",
            "hs_referrer": "", "hs_session_source": "ORGANIC_SEARCH",
        },
    }


def _email_event(eid: str, e: Event, email: str) -> dict[str, Any]:
    """A legacy Email Events API item; unsubscribes are STATUSCHANGE, hard bounces BOUNCE/UNKNOWN_USER."""
    cid = campaign_id(e.detail) if e.detail in EMAILS else CAMPAIGN_ID_BASE
    sent_at = e.at - timedelta(hours=3)
    event: dict[str, Any] = {
        "id": eid, "created": ms(e.at), "recipient": email, "portalId": PORTAL_ID, "appId": 113,
        "appName": "BatchEmail", "emailCampaignId": cid,
        "sentBy": {"id": stable_id("sent", cid, email), "created": ms(sent_at)},
    }
    if e.kind == "email_open":
        event.update(type="OPEN", userAgent="Mozilla/5.0", browser={"name": "Chrome", "family": "Chrome"},
                     location={"country": "Unknown"}, duration=4200)
    elif e.kind == "email_click":
        event.update(type="CLICK", url=f"{SITE}/blog/lead-scoring-101?utm_campaign={cid}", userAgent="Mozilla/5.0")
    elif e.kind == "unsubscribe":
        event.update(type="STATUSCHANGE", source="SOURCE_RECIPIENT", portalSubscriptionStatus="UNSUBSCRIBED",
                     subscriptions=[{"id": 1001, "status": "UNSUBSCRIBED"}])
    elif e.kind == "hard_bounce":
        event.update(type="BOUNCE", category="UNKNOWN_USER", status="5.1.1", response="550 5.1.1 user unknown")
    else:
        event.update(type="DELIVERED", response="250 OK")
    return event


def _submission(eid: str, e: Event, form: str, p: Person, email: str) -> dict[str, Any]:
    values = [
        {"name": "email", "value": email, "objectTypeId": "0-1"},
        {"name": "firstname", "value": p.first_name, "objectTypeId": "0-1"},
        {"name": "lastname", "value": p.last_name, "objectTypeId": "0-1"},
    ]
    if form in FORM_DETAIL_FIELD:
        values.append({"name": FORM_DETAIL_FIELD[form], "value": e.detail, "objectTypeId": "0-1"})
    slug = form.lower().replace(" ", "-")
    return {"conversionId": eid, "submittedAt": ms(e.at), "values": values, "pageUrl": f"{SITE}/{slug}"}


def _meeting(mid: str, e: Event, p: Person) -> dict[str, str | None]:
    return {
        "hs_object_id": mid, "hs_timestamp": iso(e.at), "hs_meeting_title": e.detail,
        "hs_meeting_start_time": iso(e.at), "hs_meeting_end_time": iso(e.at + timedelta(minutes=30)),
        "hs_meeting_outcome": "COMPLETED", "hubspot_owner_id": p.owner.hubspot_id,
        "hs_createdate": iso(e.at - timedelta(days=2)), "hs_lastmodifieddate": iso(e.at),
    }
