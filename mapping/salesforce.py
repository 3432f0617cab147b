"""Salesforce raw records ⇄ canonical model. Pure: no I/O, no clock.

Records arrive as the REST query API returns them (datetimes `…000+0000`,
numbers as JSON numbers, relationship fields nested, e.g. `Account.Type`).
Salesforce has no lifecycle-stage field, so the stage lives in the custom
picklist `LeadSync_Stage__c`; without it, a Lead is a lead and a Contact at a
customer account is a customer. These names and labels are leadsync's logical
ones: an org that keeps the stage in `Lead.Status` or score fields under other
names is translated by the connector (`connectors/salesforce/fields.py`). Campaign members become engagement by their
campaign's Type plus the member Status, since one member row is all
Salesforce keeps per (campaign, person). An email logged both as a Task and as an
EmailMessage (linked by `ActivityId`) is one engagement keyed by the Task id, its
kind read from the message (see `_email`).
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
from mapping.model import Contact, Engagement, EngagementKind, Opportunity, Owner, Stage, StageEntry

SOURCE = "salesforce"
CONTACT_OBJECTS: tuple[str, ...] = ("Lead", "Contact")
ENGAGEMENT_OBJECTS: tuple[str, ...] = ("CampaignMember", "Task", "Event", "EmailMessage")
#: Field history objects (one row per tracked change) and the record each row belongs to.
HISTORY_OBJECTS: Mapping[str, str] = MappingProxyType({"LeadHistory": "LeadId", "ContactHistory": "ContactId"})
#: The history rows the connector asks for: creation, stage and status changes, conversion.
HISTORY_FIELDS: tuple[str, ...] = ("created", "Status", "LeadSync_Stage__c", "leadConverted")
OPPORTUNITY = "Opportunity"

#: Fields leadsync writes (custom fields on both Lead and Contact).
MANAGED_FIELDS: tuple[str, ...] = (
    "LeadSync_Stage__c", "LeadSync_Score__c", "LeadSync_Fit__c", "LeadSync_Engagement__c", "LeadSync_Reason__c",
)
#: External-id field on Task holding the follow-up's idempotency key.
TASK_KEY_FIELD = "LeadSync_Key__c"
#: leadsync's link to the person's HubSpot contact, on Lead and Contact (optional: an org may lack it).
LINK_FIELD = "LeadSync_HubSpot_Id__c"
#: The record owner field owner routing may write (where the team allows it).
OWNER_FIELD = "OwnerId"
#: External-id field on Lead holding a hand-off's idempotency key: the create is an upsert on it.
PERSON_KEY_FIELD = "LeadSync_Person_Key__c"
REASON_MAX = 255

#: What the connector SELECTs per object; fields the org lacks are dropped by the connector.
SELECT_FIELDS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "Lead": ("Id", "FirstName", "LastName", "Email", "Title", "Company", "NumberOfEmployees", "Industry", "Country",
             "OwnerId", "Status", "IsConverted", "ConvertedContactId", "ConvertedDate", "HasOptedOutOfEmail", "IsDeleted",
             "CreatedDate", "SystemModstamp", *MANAGED_FIELDS, LINK_FIELD),
    "Contact": ("Id", "FirstName", "LastName", "Email", "Title", "AccountId", "Account.Name", "Account.Type",
                "Account.Industry", "Account.NumberOfEmployees", "MailingCountry", "OwnerId", "HasOptedOutOfEmail",
                "IsDeleted", "CreatedDate", "SystemModstamp", *MANAGED_FIELDS, LINK_FIELD),
    "CampaignMember": ("Id", "CampaignId", "Campaign.Name", "Campaign.Type", "LeadId", "ContactId", "Status",
                       "HasResponded", "FirstRespondedDate", "CreatedDate", "SystemModstamp"),
    "Task": ("Id", "WhoId", "Subject", "TaskSubtype", "Status", "ActivityDate", "CompletedDateTime", "CreatedDate",
             "SystemModstamp", TASK_KEY_FIELD),
    "Event": ("Id", "WhoId", "Subject", "ActivityDateTime", "CreatedDate", "SystemModstamp"),
    "EmailMessage": ("Id", "ActivityId", "RelatedToId", "FromAddress", "ToAddress", "Subject", "MessageDate",
                     "Incoming", "Status", "IsTracked", "FirstOpenedDate", "LastOpenedDate", "IsBounced",
                     "CreatedDate", "SystemModstamp"),
    "User": ("Id", "Name", "Email", "IsActive", "SystemModstamp"),
    "Opportunity": ("Id", "ContactId", "AccountId", "StageName", "CloseDate", "IsClosed", "IsWon", "Amount",
                    "OwnerId", "IsDeleted", "CreatedDate", "SystemModstamp"),
})
#: Keys the connector adds to pulled records (not Salesforce fields): an email Task's own EmailMessage, and an
#: EmailMessage's Task (`{"WhoId": …}`, looked up by `ActivityId`). With both, either side maps one email the
#: same way, so it is counted once whichever side is pulled, and again, later.
LINKED_MESSAGE = "EmailMessage"
LINKED_TASK = "Activity"
#: `RawPage.meta` key naming the org's extra fields on a Lead/Contact page (`SalesforceSettings.extra_fields`):
#: the mapping copies them into `Contact.extra`, where calibrated scoring rules read columns.
EXTRA_META = "extra_fields"

#: Canonical fields leadsync may copy into a Lead or Contact from the person's other records; a Contact's
#: company lives on its Account, which leadsync does not write.
COPY_FIELDS: Mapping[str, Mapping[str, str]] = MappingProxyType({
    "Lead": MappingProxyType({"title": "Title", "company": "Company", "country": "Country"}),
    "Contact": MappingProxyType({"title": "Title", "country": "MailingCountry"}),
})
#: Salesforce owns lead status: no other CRM's disqualification is written into it.
DISQUALIFIED_STATUS = None
LEAD_STATUS_FIELD = "Status"

STAGE_FROM_SALESFORCE: Mapping[str, Stage] = MappingProxyType({
    "Subscriber": Stage.SUBSCRIBER, "Lead": Stage.LEAD, "MQL": Stage.MQL, "SQL": Stage.SQL,
    "Opportunity": Stage.OPPORTUNITY, "Customer": Stage.CUSTOMER,
})
STAGE_TO_SALESFORCE: Mapping[Stage, str] = MappingProxyType({v: k for k, v in STAGE_FROM_SALESFORCE.items()})
#: `RawPage.meta` flag set by the connector when the stage field may hold the org's own values (an unmapped
#: `Lead.Status` such as "Working - Contacted"): those are no leadsync stage, and not a data issue either.
ORG_STAGE_VALUES = "org_stage_values"

#: Member statuses that mean the same whatever the campaign type.
_STATUS_KINDS: Mapping[str, EngagementKind] = MappingProxyType({
    "opened": EngagementKind.EMAIL_OPEN, "clicked": EngagementKind.EMAIL_CLICK,
    "replied": EngagementKind.EMAIL_REPLY, "unsubscribed": EngagementKind.UNSUBSCRIBE,
    "bounced": EngagementKind.HARD_BOUNCE, "attended": EngagementKind.WEBINAR,
})
#: What a responded member of each campaign type did.
_RESPONDED_KINDS: Mapping[str, EngagementKind] = MappingProxyType({
    "demo request": EngagementKind.DEMO_REQUEST,
    "webinar": EngagementKind.WEBINAR_REGISTRATION,  # responded without "Attended": registered, not attended
    "content": EngagementKind.CONTENT_DOWNLOAD, "web": EngagementKind.FORM_SUBMIT,
    "email": EngagementKind.EMAIL_CLICK,
})
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class BadValue(ValueError):
    """A raw value that cannot be read as its field's type."""


# ------------------------------------------------------------------ values


def parse_datetime(value: Any) -> datetime | None:
    """REST datetimes (`2026-05-01T07:25:37.000+0000`) and dates, as aware UTC datetimes."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadValue(f"not a datetime: {value!r}")
    try:
        at = datetime.fromisoformat(value)
        return at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)
    except (ValueError, OverflowError) as exc:  # OverflowError: 9999-12-31 at -05:00 is past datetime.max in UTC
        raise BadValue(f"not a datetime: {shown(value)}") from exc


def parse_int(value: Any) -> int | None:
    """A whole, non-negative count (NumberOfEmployees); NaN, infinity ("1e309") and text are BadValues."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadValue(f"not a number: {shown(value)}")
    try:
        number = float(value)
    except (ValueError, OverflowError) as exc:
        raise BadValue(f"not a number: {shown(value)}") from exc
    if not math.isfinite(number) or number < 0:
        raise BadValue(f"not a number: {shown(value)}")
    return int(number)


def parse_bool(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    raise BadValue(f"not a boolean: {value!r}")


def parse_stage(value: Any) -> Stage | None:
    if value is None or value == "":
        return None
    stage = STAGE_FROM_SALESFORCE.get(str(value))
    if stage is None:
        raise BadValue(f"unknown LeadSync_Stage__c value: {value!r}")
    return stage


def parse_email(value: Any) -> str | None:
    text = _text(value)
    if text is None:
        return None
    if not _EMAIL.match(text):
        raise BadValue(f"not an email address: {text!r}")
    return text


def field_text(value: Any) -> str | None:
    """A managed field's current value as the string a plan diffs against (`42.0` → `"42"`)."""
    if value is None or value == "":
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _parent(record: Mapping[str, Any], relation: str) -> Mapping[str, Any]:
    parent = record.get(relation)
    return parent if isinstance(parent, Mapping) else {}


class _Check:
    """Reads one record's values; a BadValue becomes the default plus a MappingIssue naming record and field."""

    def __init__(self, record_id: str, sink: list[MappingIssue]) -> None:
        self.record_id, self.sink = record_id, sink

    def read(self, field: str, parse: Callable[[Any], Any], value: Any, default: Any = None) -> Any:
        try:
            return parse(value)
        except BadValue as exc:
            self.issue(field, str(exc))
        except (ArithmeticError, ValueError, TypeError, AttributeError, OSError) as exc:
            # A shape no parser foresaw: still this record's issue, not a crash of the run.
            self.issue(field, f"unreadable value {shown(value)} ({type(exc).__name__})")
        return default

    def issue(self, field: str, message: str) -> None:
        self.sink.append(MappingIssue(SOURCE, self.record_id, field, message))


# ------------------------------------------------------------------ contacts


def _default_stage(object_type: str, account_type: str | None) -> Stage:
    """No LeadSync stage yet: a customer account's contact is a customer, anyone else a lead."""
    if object_type == "Contact" and (account_type or "").casefold().startswith("customer"):
        return Stage.CUSTOMER
    return Stage.LEAD


def map_contact(record: Mapping[str, Any], object_type: str, issues: list[MappingIssue],
                org_stage_values: bool = False, extra_fields: tuple[str, ...] = ()) -> Contact:
    """One Lead or Contact row; bad values become None plus an issue.

    With `org_stage_values`, a stage value that is not one of leadsync's labels is
    the org's own (kept in `managed`, so an audit and undo see the real value) and
    means "no leadsync stage yet". `extra_fields` (the org's custom fields the team
    named) go into `extra` as text (`42.0` → "42"), None when empty.
    """
    rid = str(record.get("Id") or "")
    check = _Check(rid, issues)
    account = _parent(record, "Account")
    is_lead = object_type == "Lead"
    raw_stage = record.get("LeadSync_Stage__c")
    if org_stage_values:
        stage = STAGE_FROM_SALESFORCE.get(str(raw_stage)) if raw_stage is not None else None
    else:
        stage = check.read("LeadSync_Stage__c", parse_stage, raw_stage)
    extra: dict[str, str | None] = {}
    if not is_lead:
        extra = {"AccountId": _text(record.get("AccountId")), "Account.Type": _text(account.get("Type"))}
    extra.update((f, field_text(record.get(f))) for f in extra_fields)
    return Contact(
        source=SOURCE, id=rid, object_type=object_type,
        email=check.read("Email", parse_email, record.get("Email")),
        first_name=_text(record.get("FirstName")), last_name=_text(record.get("LastName")),
        title=_text(record.get("Title")),
        company=_text(record.get("Company") if is_lead else account.get("Name")),
        company_size=check.read("NumberOfEmployees", parse_int,
                                record.get("NumberOfEmployees") if is_lead else account.get("NumberOfEmployees")),
        industry=_text(record.get("Industry") if is_lead else account.get("Industry")),
        country=_text(record.get("Country") if is_lead else record.get("MailingCountry")),
        owner_id=_text(record.get("OwnerId")),
        lifecycle_stage=stage or _default_stage(object_type, _text(account.get("Type"))),
        lead_status=_text(record.get("Status")),
        created_at=check.read("CreatedDate", parse_datetime, record.get("CreatedDate")),
        updated_at=check.read("SystemModstamp", parse_datetime, record.get("SystemModstamp")),
        do_not_contact=check.read("HasOptedOutOfEmail", parse_bool, record.get("HasOptedOutOfEmail"), False),
        archived=bool(record.get("IsDeleted")),
        read_only=is_lead and check.read("IsConverted", parse_bool, record.get("IsConverted"), False),
        managed=MappingProxyType({f: field_text(record.get(f)) for f in (*MANAGED_FIELDS, LINK_FIELD)}),
        extra=MappingProxyType(extra),
        links=_links(record),
    )


def _links(record: Mapping[str, Any]) -> tuple[str, ...]:
    """The HubSpot contact leadsync linked this record to, and a converted Lead's Contact."""
    out = set()
    hubspot = _text(record.get(LINK_FIELD))
    if hubspot:
        out.add(f"hubspot:{hubspot}")
    converted = salesforce_id18(_text(record.get("ConvertedContactId")))
    if converted:
        out.add(f"salesforce:{converted}")
    return tuple(sorted(out))


# ---------------------------------------------------------------- engagement


def campaign_kind(campaign_type: str | None, status: str | None, responded: bool) -> EngagementKind:
    """Campaign Type + member Status → what the person did; a member who never responded did nothing yet."""
    by_status = _STATUS_KINDS.get((status or "").strip().casefold())
    if by_status is not None:
        return by_status
    if not responded:
        return EngagementKind.OTHER
    return _RESPONDED_KINDS.get((campaign_type or "").strip().casefold(), EngagementKind.FORM_SUBMIT)


def _occurred(check: _Check, record: Mapping[str, Any], fields: tuple[str, ...]) -> datetime | None:
    """The first of `fields` that holds a readable datetime; each unreadable one is an issue."""
    for name in fields:
        at = check.read(name, parse_datetime, record.get(name))
        if at is not None:
            return at
    check.issue(fields[0], "no usable timestamp; engagement not mapped")
    return None


def _member(record: Mapping[str, Any], check: _Check) -> Engagement | None:
    at = _occurred(check, record, ("CreatedDate", "SystemModstamp"))
    if at is None:
        return None
    campaign = _parent(record, "Campaign")
    name = _text(campaign.get("Name")) or str(record.get("CampaignId") or "")
    responded = check.read("HasResponded", parse_bool, record.get("HasResponded"), False)
    kind = campaign_kind(_text(campaign.get("Type")), _text(record.get("Status")), responded)
    who = _text(record.get("LeadId")) or _text(record.get("ContactId"))
    if who is None:
        check.issue("LeadId", "campaign member has neither LeadId nor ContactId")
    return Engagement(SOURCE, check.record_id, who or "", kind, at, detail=name, campaign=name)


def task_kind(subtype: str | None, subject: str | None) -> EngagementKind:
    """Calls are calls; a logged email is engagement only when it is the prospect's reply."""
    if subtype == "Call":
        return EngagementKind.CALL
    if subtype == "Email" and re.search(r"\bre:", subject or "", re.IGNORECASE):
        return EngagementKind.EMAIL_REPLY
    return EngagementKind.OTHER


def _activity(record: Mapping[str, Any], check: _Check, kind: EngagementKind,
              when: tuple[str, ...]) -> Engagement | None:
    at = _occurred(check, record, when)
    if at is None:
        return None
    who = _text(record.get("WhoId"))
    if who is None:
        check.issue("WhoId", "activity is not linked to a lead or contact")
    return Engagement(SOURCE, check.record_id, who or "", kind, at, detail=_text(record.get("Subject")) or "")


def email_kind(message: Mapping[str, Any]) -> EngagementKind:
    """What one EmailMessage says the prospect did: an incoming message is their reply; an outgoing,
    tracked message with an open date was opened; anything else (unopened, untracked) is sales work."""
    if message.get("Incoming") is True:
        return EngagementKind.EMAIL_REPLY
    if message.get("IsTracked") is True and message.get("FirstOpenedDate"):
        return EngagementKind.EMAIL_OPEN
    return EngagementKind.OTHER


def _counterpart(message: Mapping[str, Any]) -> str | None:
    """The prospect's address: the sender of an incoming message, else the first recipient."""
    raw = message.get("FromAddress") if message.get("Incoming") is True else message.get("ToAddress")
    first = re.split(r"[;,]", str(raw or ""))[0].strip().lower()
    return first if _EMAIL.match(first) else None


def _email(message: Mapping[str, Any], who: str | None, check: _Check) -> Engagement | None:
    """One email as one engagement, keyed by the Task that also represents it (`ActivityId`, reference §3).

    Both the Task stream (with its message attached) and the EmailMessage stream (with its Task's WhoId
    attached) build exactly this, so the upsert by id keeps one row per email whichever arrives first or
    later. A message with no Task keeps its own id and is matched to its person by address (sync resolves
    `contact_email`); `RelatedToId` is not used, since the reference does not say it can name a Lead/Contact.
    """
    kind = email_kind(message)
    when = ("FirstOpenedDate",) if kind is EngagementKind.EMAIL_OPEN else ()
    at = _occurred(check, message, (*when, "MessageDate", "CreatedDate", "SystemModstamp"))
    if at is None:
        return None
    task_id = _text(message.get("ActivityId"))
    email = None if who else _counterpart(message)
    if who is None and email is None:
        check.issue("ActivityId", "email message is linked to no lead or contact and has no usable address")
    return Engagement(SOURCE, task_id or str(message.get("Id") or ""), who or "", kind, at,
                      detail=_text(message.get("Subject")) or "", contact_email=email)


def map_engagement(record: Mapping[str, Any], sobject: str, issues: list[MappingIssue]) -> Engagement | None:
    """One CampaignMember, Task, Event or EmailMessage; None (with an issue) only when it has no timestamp."""
    check = _Check(str(record.get("Id") or ""), issues)
    if sobject == "CampaignMember":
        return _member(record, check)
    if sobject == "EmailMessage":
        return _email(record, _text(_parent(record, LINKED_TASK).get("WhoId")), check)
    message = _parent(record, LINKED_MESSAGE)
    if sobject == "Task" and message:  # the email's EmailMessage decides: never a second count
        return _email({**message, "ActivityId": record.get("Id")}, _text(record.get("WhoId")), check)
    if sobject == "Task":
        kind = task_kind(_text(record.get("TaskSubtype")), _text(record.get("Subject")))
        return _activity(record, check, kind, ("CompletedDateTime", "CreatedDate", "SystemModstamp"))
    return _activity(record, check, EngagementKind.MEETING, ("ActivityDateTime", "CreatedDate", "SystemModstamp"))


def is_leadsync_task(record: Mapping[str, Any]) -> bool:
    """A follow-up leadsync created itself: sales work, not the prospect's engagement."""
    return bool(record.get(TASK_KEY_FIELD))


# ------------------------------------------------------------------ stage history


def record_stage_entries(record: Mapping[str, Any], issues: list[MappingIssue]) -> list[StageEntry]:
    """What a Lead/Contact row itself says of its past, whatever the org tracks: lead at CreatedDate
    (`created_fallback`) and, for a converted Lead, SQL on its ConvertedDate (`converted`). Field history,
    where the org keeps it, adds exact times (`history_entry`)."""
    rid = str(record.get("Id") or "")
    if not rid or record.get("IsDeleted"):
        return []
    check = _Check(rid, [])  # map_contact already reported a bad CreatedDate
    out = []
    created = check.read("CreatedDate", parse_datetime, record.get("CreatedDate"))
    if created is not None:
        out.append(StageEntry(SOURCE, rid, Stage.LEAD.value, created, "created_fallback"))
    if record.get("ConvertedDate"):
        converted = _Check(rid, issues).read("ConvertedDate", parse_datetime, record.get("ConvertedDate"))
        if converted is not None:
            out.append(StageEntry(SOURCE, rid, Stage.SQL.value, converted, "converted"))
    return out


def history_entry(record: Mapping[str, Any], sobject: str, issues: list[MappingIssue]) -> StageEntry | None:
    """One LeadHistory/ContactHistory row as a stage entry (origin `crm_history`), or None for a change that
    is no stage: creation is lead, conversion SQL, a stage field change the stage it set (the connector has
    put the org's stage field and values in leadsync's terms)."""
    rid = str(record.get("Id") or "")
    parent = _text(record.get(HISTORY_OBJECTS[sobject]))
    check = _Check(rid, issues)
    at = check.read("CreatedDate", parse_datetime, record.get("CreatedDate"))
    if parent is None or at is None:
        if parent is None:
            check.issue(HISTORY_OBJECTS[sobject], "history row without its record")
        return None
    name = record.get("Field")
    stage: Stage | None = None
    if name == "created":
        stage = Stage.LEAD
    elif name == "leadConverted":
        stage = Stage.SQL
    elif name == "LeadSync_Stage__c" and record.get("NewValue") is not None:
        stage = STAGE_FROM_SALESFORCE.get(str(record.get("NewValue")))
    return StageEntry(SOURCE, parent, stage.value, at, "crm_history") if stage else None


def map_opportunity(record: Mapping[str, Any], issues: list[MappingIssue]) -> Opportunity | None:
    """An Opportunity with its dates; CloseDate is a date (midnight UTC)."""
    rid = str(record.get("Id") or "")
    check = _Check(rid, issues)
    created = check.read("CreatedDate", parse_datetime, record.get("CreatedDate"))
    if record.get("IsDeleted"):
        return None
    if created is None:
        check.issue("CreatedDate", "opportunity without a created date: left out of the history")
        return None
    contact = _text(record.get("ContactId"))
    amount = record.get("Amount")
    return Opportunity(
        source=SOURCE, id=rid, contact_id=contact, created_at=created,
        close_date=check.read("CloseDate", parse_datetime, record.get("CloseDate")),
        is_closed=check.read("IsClosed", parse_bool, record.get("IsClosed"), False),
        is_won=check.read("IsWon", parse_bool, record.get("IsWon"), False),
        stage_name=_text(record.get("StageName")),
        amount=float(amount) if isinstance(amount, int | float) else None, owner_id=_text(record.get("OwnerId")),
    )


def map_page(page: RawPage) -> MappedPage:
    """Map one raw page of any Salesforce stream; an unknown stream is one issue, not an exception.

    leadsync's own follow-up tasks are left out on purpose (see `is_leadsync_task`).
    """
    out = MappedPage()
    if page.stream in CONTACT_OBJECTS:
        org_values = bool(page.meta.get(ORG_STAGE_VALUES))
        extras = tuple(page.meta.get(EXTRA_META) or ())
        out.contacts = [map_contact(r, page.stream, out.issues, org_values, extras) for r in page.records]
        out.stage_entries = [e for r in page.records for e in record_stage_entries(r, out.issues)]
    elif page.stream in HISTORY_OBJECTS:
        out.stage_entries = [e for r in page.records if (e := history_entry(r, page.stream, out.issues))]
    elif page.stream == "User":
        out.owners = [Owner(SOURCE, str(r["Id"]), _text(r.get("Name")), _text(r.get("Email")),
                            bool(r.get("IsActive", True))) for r in page.records if r.get("Id")]
    elif page.stream == OPPORTUNITY:
        out.opportunities = [o for r in page.records if (o := map_opportunity(r, out.issues))]
    elif page.stream in ENGAGEMENT_OBJECTS:
        for r in page.records:
            if page.stream == "Task" and is_leadsync_task(r):
                continue
            mapped = map_engagement(r, page.stream, out.issues)
            if mapped is not None:
                out.engagements.append(mapped)
    else:
        out.issues.append(MappingIssue(SOURCE, "", "stream", f"unknown stream {page.stream!r}"))
    return out


# ------------------------------------------------------------------ outbound


#: Canonical hand-off values → Lead fields.
_HANDOFF_FIELDS: Mapping[str, str] = MappingProxyType({
    "first_name": "FirstName", "last_name": "LastName", "email": "Email", "title": "Title", "company": "Company",
    "company_size": "NumberOfEmployees", "country": "Country", "lead_source": "LeadSource", "owner_id": "OwnerId",
    "link": LINK_FIELD,
})
#: Salesforce's own field lengths for what a hand-off copies from elsewhere (longer values are cut).
_LENGTHS: Mapping[str, int] = MappingProxyType({"FirstName": 40, "LastName": 80, "Email": 80, "Title": 128,
                                               "Company": 255, "Country": 80})


def handoff_record(object_type: str, values: Mapping[str, Any], managed: Mapping[str, str | None]) -> dict[str, Any]:
    """A hand-off Lead's fields: the person's profile, the score fields, the link back. Blank values are left
    out (Salesforce's defaults apply), too-long ones cut to the field's length."""
    out: dict[str, Any] = {}
    values = {**values, "company": values.get("company") or values.get("company_placeholder")}  # required here
    for name, value in values.items():
        crm = _HANDOFF_FIELDS.get(name)
        if crm is None or value in (None, ""):
            continue
        out[crm] = value[: _LENGTHS[crm]] if isinstance(value, str) and crm in _LENGTHS else value
    out.update({k: v for k, v in managed.items() if v is not None})
    return out


def copy_fields(object_type: str) -> Mapping[str, str]:
    """Canonical field → the object's field, for the fields a person's other records may fill in."""
    return COPY_FIELDS.get(object_type, {})


def outbound_fields(stage: Stage | None, score: int, fit: int, engagement: int, reason: str,
                    link: str | None = None) -> dict[str, str | None]:
    """The Salesforce values to write, as strings (the connector sends number fields as JSON numbers).

    `LeadSync_Stage__c` is included only for a stage its picklist lists; the
    reason is cut to the field's 255 characters.
    """
    out: dict[str, str | None] = {
        "LeadSync_Score__c": str(int(score)), "LeadSync_Fit__c": str(int(fit)),
        "LeadSync_Engagement__c": str(int(engagement)), "LeadSync_Reason__c": reason.strip()[:REASON_MAX] or None,
    }
    if stage is not None and stage in STAGE_TO_SALESFORCE:
        out["LeadSync_Stage__c"] = STAGE_TO_SALESFORCE[stage]
    if link is not None:  # "" clears a link that no longer holds
        out[LINK_FIELD] = link or None
    return out
