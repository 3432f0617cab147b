"""HubSpot raw records ⇄ canonical model. Pure: no I/O, no clock.

The connector hands over raw pages exactly as HubSpot sent them (plus a little
page `meta`, such as campaign names and the form a submission page belongs to);
everything HubSpot-specific about values — strings everywhere, two datetime
precisions, enumeration ranges for company size, numeric custom lifecycle
stages — is decided here, once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from connectors.base import RawPage
from mapping.base import MappedPage, MappingIssue, shown
from mapping.identity import salesforce_id18
from mapping.model import Contact, Engagement, EngagementKind, Owner, Stage, StageEntry

SOURCE = "hubspot"
OBJECT_TYPE = "contacts"

#: Fields leadsync writes; the leadsync_* ones are custom properties the connector creates.
MANAGED_FIELDS: tuple[str, ...] = (
    "lifecyclestage", "leadsync_score", "leadsync_fit", "leadsync_engagement", "leadsync_reason",
    "leadsync_salesforce_id",
)
#: leadsync's link to the person's Salesforce record (written when it links or hands off): survives a lost state.
LINK_FIELD = "leadsync_salesforce_id"
#: The record owner field owner routing may write (where the team allows it).
OWNER_FIELD = "hubspot_owner_id"
#: A hand-off contact's idempotency key (a `hasUniqueValue` property): the create is an upsert on it.
PERSON_KEY_FIELD = "leadsync_person_key"
#: Salesforce ids HubSpot's own Salesforce connector writes on a synced contact (read only for leadsync).
NATIVE_LINK_FIELDS: tuple[str, ...] = ("salesforcecontactid", "salesforceleadid")
#: Contact-level engagement roll-ups, kept in `Contact.extra` for scoring and explanations.
AGGREGATE_FIELDS: tuple[str, ...] = (
    "hs_analytics_num_page_views", "hs_analytics_num_visits", "hs_analytics_last_visit_timestamp",
    "hs_email_open", "hs_email_click", "hs_email_last_open_date", "hs_email_last_click_date",
    "num_conversion_events", "recent_conversion_event_name", "recent_conversion_date",
)
_COUNT_AGGREGATES = frozenset({"hs_analytics_num_page_views", "hs_analytics_num_visits", "hs_email_open",
                               "hs_email_click", "num_conversion_events"})
_DATE_AGGREGATES = frozenset({"hs_analytics_last_visit_timestamp", "hs_email_last_open_date",
                              "hs_email_last_click_date", "recent_conversion_date"})
#: The date HubSpot stamps when a contact enters each lifecycle stage (reference §3.2), read with the contact
#: pages at no extra call: the stage history a first backfill starts from.
STAGE_DATE_PROPERTIES: Mapping[str, str] = MappingProxyType({
    f"hs_lifecyclestage_{name}_date": name for name in (
        "subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity", "customer")
})
#: What the connector requests for each contact (short enough to stay far below the 8 KB URI limit).
CONTACT_PROPERTIES: tuple[str, ...] = (
    "email", "firstname", "lastname", "jobtitle", "company", "numemployees", "industry", "country",
    "hubspot_owner_id", "lifecyclestage", "hs_lead_status", "createdate", "lastmodifieddate", "hs_email_optout",
    *AGGREGATE_FIELDS, *MANAGED_FIELDS[1:], *NATIVE_LINK_FIELDS, *STAGE_DATE_PROPERTIES,
)

#: `RawPage.meta` key naming the team's extra contact properties (`HubSpotSettings.extra_properties`): the
#: connector requests them, the mapping copies them into `Contact.extra` for calibrated scoring rules.
EXTRA_META = "extra_properties"

STAGE_FROM_HUBSPOT: Mapping[str, Stage] = MappingProxyType({
    "subscriber": Stage.SUBSCRIBER, "lead": Stage.LEAD, "marketingqualifiedlead": Stage.MQL,
    "salesqualifiedlead": Stage.SQL, "opportunity": Stage.OPPORTUNITY, "customer": Stage.CUSTOMER,
    "evangelist": Stage.OTHER, "other": Stage.OTHER,
})
STAGE_TO_HUBSPOT: Mapping[Stage, str] = MappingProxyType({
    Stage.SUBSCRIBER: "subscriber", Stage.LEAD: "lead", Stage.MQL: "marketingqualifiedlead",
    Stage.SQL: "salesqualifiedlead", Stage.OPPORTUNITY: "opportunity", Stage.CUSTOMER: "customer",
})
#: Canonical fields leadsync may copy into a HubSpot contact from the person's other records (`identity.copy_fields`).
COPY_FIELDS: Mapping[str, str] = MappingProxyType({"title": "jobtitle", "company": "company", "country": "country"})
#: The `hs_lead_status` option a disqualification in another CRM becomes (HubSpot's default option set).
DISQUALIFIED_STATUS = "UNQUALIFIED"
LEAD_STATUS_FIELD = "hs_lead_status"
#: Legacy email bounce categories that mean the address will never accept mail.
HARD_BOUNCE_CATEGORIES = frozenset({"UNKNOWN_USER", "MAILBOX_MISCONFIGURATION", "HARD_BOUNCE", "DOMAIN_REPUTATION"})
#: HubSpot text properties hold at most 65,536 characters.
MAX_TEXT = 65_536
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
#: A plain decimal employee count ("250", "250.0"); exponents, "NaN" and "inf" are not counts.
_NUMBER = re.compile(r"[0-9]{1,12}(\.[0-9]*)?")
_MAX_COUNT = 10**12


class BadValue(ValueError):
    """A raw value that cannot be read as its field's type."""


# ------------------------------------------------------------------ values


def parse_datetime(value: str | int | None) -> datetime | None:
    """HubSpot datetimes: ISO with or without milliseconds, or epoch milliseconds (reference §2.1).

    Anything Python cannot represent (year 10000, thousands of digits) is a BadValue: one
    far-future meeting must become an issue, not stop every run.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise BadValue(f"not a datetime: {shown(value)}")
    text = str(value).strip()
    if text.isascii() and text.isdigit():
        return _from_epoch_ms(text)
    try:
        at = datetime.fromisoformat(text)
    except ValueError as exc:
        raise BadValue(f"not a datetime: {shown(text)}") from exc
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _from_epoch_ms(digits: str) -> datetime:
    """Epoch milliseconds as a UTC datetime; out of datetime's range is a BadValue."""
    if len(digits) > 16:  # beyond year 10000 whatever the digits; also keeps int() off huge strings
        raise BadValue(f"epoch milliseconds out of range: {shown(digits)}")
    try:
        return datetime.fromtimestamp(int(digits) / 1000, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise BadValue(f"epoch milliseconds out of range: {shown(digits)}") from exc


def parse_company_size(value: str | None) -> int | None:
    """`numemployees`: the midpoint of a range ("100-500" → 300), the bound of "10000+", or a plain number.

    Midpoints, not lower bounds: a scoring threshold such as "≥ 200 employees"
    should count the "100-500" band, where most of its companies lie. Text such as
    "12 employees", "NaN" or "1e309" is a BadValue, never a silent number.
    """
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise BadValue(f"not a company size: {shown(value)}")
    text = str(value).strip().replace(",", "")
    if text.endswith("+"):
        return _count(text[:-1], value)
    if "-" in text.lstrip("-"):
        low, high = (_count(p, value) for p in text.split("-", 1))
        return (low + high) // 2
    return _count(text, value)


def _count(text: str, value: object) -> int:
    """A non-negative whole number of employees ("250", "250.0"); anything else is a BadValue."""
    try:
        number = float(text) if _NUMBER.fullmatch(text) else math.nan
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number < 0 or number >= _MAX_COUNT:
        raise BadValue(f"not a company size: {shown(value)}")
    return int(number)


def parse_stage(value: str | None) -> Stage | None:
    """Default stages by internal name; evangelist, other and custom (numeric-id) stages are OTHER."""
    if value is None or value == "":
        return None
    stage = STAGE_FROM_HUBSPOT.get(value)
    if stage is not None:
        return stage
    if value.isdigit():
        return Stage.OTHER
    raise BadValue(f"unknown lifecycle stage: {value!r}")


def parse_email(value: Any) -> str | None:
    """An email address, or None when unset; blank or malformed text is a BadValue (as for Salesforce)."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if not _EMAIL.match(text):
        raise BadValue(f"blank email address: {shown(value)}" if not text else f"not an email address: {shown(text)}")
    return text


def _mapping(value: Any) -> Mapping[str, Any]:
    """A JSON object as sent, or an empty one when the CRM sent something else there."""
    return value if isinstance(value, Mapping) else {}


def _properties(record: Mapping[str, Any], issues: list[MappingIssue]) -> Mapping[str, Any]:
    """A record's `properties`; anything but an object is an issue, and the record maps with none."""
    props = record.get("properties")
    if props is not None and not isinstance(props, Mapping):
        issues.append(MappingIssue(SOURCE, str(record.get("id") or ""), "properties",
                                   f"not an object: {shown(props)}"))
    return _mapping(props)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


# ------------------------------------------------------------------ contacts


class _Issues:
    """Collects issues for one record; `read` turns a BadValue into None plus an issue."""

    def __init__(self, record_id: str, sink: list[MappingIssue]) -> None:
        self.record_id, self.sink = record_id, sink

    def read(self, field: str, parse: Callable[[Any], Any], value: Any, default: Any = None) -> Any:
        try:
            return parse(value)
        except BadValue as exc:
            self.sink.append(MappingIssue(SOURCE, self.record_id, field, str(exc)))
        except (ArithmeticError, ValueError, TypeError, AttributeError, OSError) as exc:
            # A shape no parser foresaw (a list where text belongs): still this record's issue, not a crash.
            message = f"unreadable value {shown(value)} ({type(exc).__name__})"
            self.sink.append(MappingIssue(SOURCE, self.record_id, field, message))
        return default


def map_contact(record: Mapping[str, Any], issues: list[MappingIssue], archived: bool = False,
                extra_properties: tuple[str, ...] = ()) -> Contact:
    """One `/crm/v3/objects/contacts` record; bad values become None plus an issue.

    `archived`: the record came from the archived list (deleted or merged away): sync never writes to it.
    `extra_properties`: the team's own properties, kept as text in `extra` (unset ones as None, so a rule
    can tell "no answer" from "not requested").
    """
    props = _properties(record, issues)
    rid = str(record.get("id") or props.get("hs_object_id") or "")
    check = _Issues(rid, issues)
    return Contact(
        source=SOURCE, id=rid, object_type=OBJECT_TYPE,
        email=check.read("email", parse_email, props.get("email"), _text(props.get("email"))), first_name=_text(props.get("firstname")),
        last_name=_text(props.get("lastname")), title=_text(props.get("jobtitle")),
        company=_text(props.get("company")),
        company_size=check.read("numemployees", parse_company_size, props.get("numemployees")),
        industry=_text(props.get("industry")), country=_text(props.get("country")),
        owner_id=_text(props.get("hubspot_owner_id")),
        lifecycle_stage=check.read("lifecyclestage", parse_stage, props.get("lifecyclestage"), Stage.OTHER),
        lead_status=_text(props.get("hs_lead_status")),
        created_at=check.read("createdate", parse_datetime, props.get("createdate") or record.get("createdAt")),
        updated_at=check.read("lastmodifieddate", parse_datetime,
                              props.get("lastmodifieddate") or record.get("updatedAt")),
        do_not_contact=str(props.get("hs_email_optout") or "").lower() == "true",
        archived=archived or bool(record.get("archived")),
        managed=MappingProxyType({f: props.get(f) for f in MANAGED_FIELDS}),
        extra=MappingProxyType({**_aggregates(props, check),
                                **{f: _text(props.get(f)) for f in extra_properties}}),
        links=_links(props),
    )


def _links(props: Mapping[str, Any]) -> tuple[str, ...]:
    """The Salesforce records this contact names: HubSpot's connector's ids, then leadsync's own."""
    ids = (salesforce_id18(_text(props.get(f))) for f in (*NATIVE_LINK_FIELDS, LINK_FIELD))
    return tuple(sorted({f"salesforce:{i}" for i in ids if i}))


def parse_count(value: Any) -> str | None:
    """A roll-up count as HubSpot's numeric text ("12", "12.0"); "1e309", "NaN", "12 visits" are BadValues."""
    if value is None or value == "":
        return None
    _count(str(value).strip(), value)
    return str(value).strip()


def _aggregates(props: Mapping[str, Any], check: _Issues) -> dict[str, Any]:
    """The roll-ups the portal sent, as sent; a count or date that does not read as one is None plus an issue."""
    out: dict[str, Any] = {}
    for name in AGGREGATE_FIELDS:
        if name not in props:
            continue
        value = props[name]
        if name in _COUNT_AGGREGATES:
            out[name] = check.read(name, parse_count, value)
        elif name in _DATE_AGGREGATES:
            out[name] = value if check.read(name, parse_datetime, value) is not None else None
        else:
            out[name] = value
    return out


# ---------------------------------------------------------------- engagement


def _page_view(rec: Mapping[str, Any], page: RawPage, check: _Issues) -> Engagement | None:
    at = check.read("occurredAt", parse_datetime, rec.get("occurredAt"))
    if at is None:
        return None
    url = str(_mapping(rec.get("properties")).get("hs_url") or "")
    return Engagement(SOURCE, f"web:{rec.get('id')}", str(rec.get("objectId") or ""), EngagementKind.PAGE_VIEW,
                      at, detail=url)


def _email_kind(rec: Mapping[str, Any]) -> EngagementKind:
    kind = str(rec.get("type") or "")
    if kind == "OPEN":
        return EngagementKind.EMAIL_OPEN
    if kind == "CLICK":
        return EngagementKind.EMAIL_CLICK
    if kind == "BOUNCE" and str(rec.get("category") or "") in HARD_BOUNCE_CATEGORIES:
        return EngagementKind.HARD_BOUNCE
    if kind == "STATUSCHANGE" and str(rec.get("portalSubscriptionStatus") or "") == "UNSUBSCRIBED":
        return EngagementKind.UNSUBSCRIBE
    return EngagementKind.OTHER


def _email_event(rec: Mapping[str, Any], page: RawPage, check: _Issues) -> Engagement | None:
    at = check.read("created", parse_datetime, rec.get("created"))
    if at is None:
        return None
    campaign = str(rec.get("emailCampaignId") or "")
    names: Mapping[str, str] = page.meta.get("campaign_names") or {}
    email = _text(rec.get("recipient"))
    return Engagement(SOURCE, f"email:{rec.get('id')}", "", _email_kind(rec), at,
                      detail=names.get(campaign, campaign), campaign=campaign,
                      contact_email=email.lower() if email else None)


def _form_kind(form_name: str, values: Mapping[str, str]) -> tuple[EngagementKind, str]:
    """Which kind of action a form stands for, and its detail (the asset or webinar when the form names one)."""
    name = form_name.lower()
    if "demo" in name:
        return EngagementKind.DEMO_REQUEST, form_name
    if "asset" in values or "download" in name:
        return EngagementKind.CONTENT_DOWNLOAD, values.get("asset") or form_name
    if "webinar" in values or "webinar" in name:  # a sign-up form: attendance is not in a form submission
        return EngagementKind.WEBINAR_REGISTRATION, values.get("webinar") or form_name
    return EngagementKind.FORM_SUBMIT, form_name


def _submission(rec: Mapping[str, Any], page: RawPage, check: _Issues) -> Engagement | None:
    at = check.read("submittedAt", parse_datetime, rec.get("submittedAt"))
    if at is None:
        return None
    raw_values = rec.get("values")
    values = {str(v.get("name")): str(v.get("value") or "")
              for v in (raw_values if isinstance(raw_values, list) else []) if isinstance(v, Mapping)}
    form_name = str(page.meta.get("form_name") or rec.get("formName") or "")
    kind, detail = _form_kind(form_name, values)
    email = _text(values.get("email"))
    if email is None:
        check.sink.append(MappingIssue(SOURCE, check.record_id, "email", "submission carries no email"))
    return Engagement(SOURCE, f"form:{rec.get('conversionId')}", "", kind, at, detail=detail,
                      campaign=str(page.meta.get("form_id") or ""), contact_email=email.lower() if email else None)


def _meetings(rec: Mapping[str, Any], issues: list[MappingIssue]) -> list[Engagement]:
    """One engagement per associated contact: a meeting with two attendees counts for both."""
    props = _properties(rec, issues)
    rid = str(rec.get("id") or "")
    check = _Issues(rid, issues)
    at = check.read("hs_meeting_start_time", parse_datetime, props.get("hs_meeting_start_time")
                    or props.get("hs_timestamp"))
    results = _mapping(_mapping(rec.get("associations")).get("contacts")).get("results")
    contacts = [c for c in results if isinstance(c, Mapping)] if isinstance(results, list) else []
    if at is None or not contacts:
        if at is not None:
            issues.append(MappingIssue(SOURCE, rid, "associations", "meeting has no associated contact"))
        return []
    title = str(props.get("hs_meeting_title") or "")
    return [Engagement(SOURCE, f"meeting:{rid}:{c.get('id')}", str(c.get("id")), EngagementKind.MEETING, at,
                       detail=title) for c in contacts]


_EVENT_MAPPERS: Mapping[str, Callable[[Mapping[str, Any], RawPage, _Issues], Engagement | None]] = {
    "page_views": _page_view, "email_events": _email_event, "form_submissions": _submission,
}
_ID_KEYS = {"page_views": "id", "email_events": "id", "form_submissions": "conversionId"}


def stage_entries(record: Mapping[str, Any], issues: list[MappingIssue]) -> list[StageEntry]:
    """The contact's `hs_lifecyclestage_<stage>_date` values as stage entries (origin `crm_date_property`);
    a date that does not parse is an issue naming the record and property."""
    props = _mapping(record.get("properties"))
    rid = str(record.get("id") or props.get("hs_object_id") or "")
    check = _Issues(rid, issues)
    out = []
    for prop, name in STAGE_DATE_PROPERTIES.items():
        if props.get(prop) in (None, ""):
            continue
        at = check.read(prop, parse_datetime, props.get(prop))
        if at is not None:
            out.append(StageEntry(SOURCE, rid, STAGE_FROM_HUBSPOT[name].value, at, "crm_date_property"))
    return out


def map_owner(record: Mapping[str, Any]) -> Owner | None:
    """One `/crm/v3/owners` item: its id is what `hubspot_owner_id` holds."""
    oid = _text(record.get("id"))
    if oid is None:
        return None
    name = " ".join(p for p in (_text(record.get("firstName")), _text(record.get("lastName"))) if p) or None
    return Owner(SOURCE, oid, name or _text(record.get("email")), _text(record.get("email")),
                 not record.get("archived"))


def map_page(page: RawPage) -> MappedPage:
    """Map one raw page of any HubSpot stream; an unknown stream is one issue, not an exception."""
    out = MappedPage()
    if page.stream in ("contacts", "contacts_archived"):
        archived = page.stream == "contacts_archived"
        extras = tuple(page.meta.get(EXTRA_META) or ())
        out.contacts = [map_contact(r, out.issues, archived, extras) for r in page.records]
        out.stage_entries = [e for r in page.records for e in stage_entries(r, out.issues)]
    elif page.stream == "owners":
        out.owners = [o for r in page.records if (o := map_owner(r))]
    elif page.stream == "meetings":
        out.engagements = [e for r in page.records for e in _meetings(r, out.issues)]
    elif page.stream in _EVENT_MAPPERS:
        mapper, id_key = _EVENT_MAPPERS[page.stream], _ID_KEYS[page.stream]
        for r in page.records:
            mapped = mapper(r, page, _Issues(str(r.get(id_key) or ""), out.issues))
            if mapped is not None:
                out.engagements.append(mapped)
    else:
        out.issues.append(MappingIssue(SOURCE, "", "stream", f"unknown stream {page.stream!r}"))
    return out


# ------------------------------------------------------------------ outbound


_HANDOFF_PROPERTIES: Mapping[str, str] = MappingProxyType({
    "first_name": "firstname", "last_name": "lastname", "email": "email", "title": "jobtitle", "company": "company",
    "country": "country", "link": LINK_FIELD,
    "hubspot_owner_id": "hubspot_owner_id",  # set only by owner routing (a HubSpot owner id)
})


def handoff_record(object_type: str, values: Mapping[str, Any], managed: Mapping[str, str | None]) -> dict[str, Any]:
    """A hand-off contact's properties: the person's profile, the score fields and stage, the link back.
    The company placeholder Salesforce needs is left out: HubSpot does not require a company."""
    out = {_HANDOFF_PROPERTIES[k]: v for k, v in values.items() if k in _HANDOFF_PROPERTIES and v not in (None, "")}
    out.update({k: v for k, v in managed.items() if v is not None})
    return out


def copy_fields(object_type: str) -> Mapping[str, str]:
    """Canonical field → contact property, for the fields a person's other records may fill in."""
    return COPY_FIELDS


def outbound_fields(stage: Stage | None, score: int, fit: int, engagement: int, reason: str,
                    link: str | None = None) -> dict[str, str | None]:
    """The HubSpot values to write; numbers as plain strings (no whitespace, reference §3.4).

    `lifecyclestage` is included only for a funnel stage HubSpot has a default value for; `link` (the
    person's Salesforce record id) only when the person has one.
    """
    out: dict[str, str | None] = {
        "leadsync_score": str(int(score)), "leadsync_fit": str(int(fit)),
        "leadsync_engagement": str(int(engagement)), "leadsync_reason": reason.strip()[:MAX_TEXT] or None,
    }
    if stage is not None and stage in STAGE_TO_HUBSPOT:
        out["lifecyclestage"] = STAGE_TO_HUBSPOT[stage]
    if link is not None:  # "" clears a link that no longer holds
        out[LINK_FIELD] = link or None
    return out
