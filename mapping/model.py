"""The canonical model every layer speaks: contacts, engagement, stages and changes.

Plain frozen dataclasses with slots: the scorer touches millions of these, and a
pydantic model per record would cost more than the scoring itself. Validation
happens once, at the edge, in the per-CRM mapping modules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType


class Stage(StrEnum):
    """Lifecycle stages, in funnel order (see STAGE_RANK)."""

    SUBSCRIBER = "subscriber"
    LEAD = "lead"
    MQL = "mql"
    SQL = "sql"
    OPPORTUNITY = "opportunity"
    CUSTOMER = "customer"
    OTHER = "other"


#: Funnel position; OTHER is outside the funnel and never moved automatically.
STAGE_RANK: Mapping[Stage, int] = MappingProxyType(
    {
        Stage.SUBSCRIBER: 0,
        Stage.LEAD: 1,
        Stage.MQL: 2,
        Stage.SQL: 3,
        Stage.OPPORTUNITY: 4,
        Stage.CUSTOMER: 5,
        Stage.OTHER: -1,
    }
)

#: Stages sales owns: leadsync never moves a contact out of them.
SALES_OWNED: frozenset[Stage] = frozenset({Stage.OPPORTUNITY, Stage.CUSTOMER, Stage.OTHER})


class EngagementKind(StrEnum):
    EMAIL_OPEN = "email_open"
    EMAIL_CLICK = "email_click"
    EMAIL_REPLY = "email_reply"
    PAGE_VIEW = "page_view"
    FORM_SUBMIT = "form_submit"
    CONTENT_DOWNLOAD = "content_download"
    WEBINAR = "webinar"  # attended (or watched) a webinar
    WEBINAR_REGISTRATION = "webinar_registration"  # signed up for one: intent, not yet attendance
    MEETING = "meeting"
    CALL = "call"
    DEMO_REQUEST = "demo_request"
    UNSUBSCRIBE = "unsubscribe"
    HARD_BOUNCE = "hard_bounce"
    OTHER = "other"


#: Where a stage entry's date comes from, most trustworthy first: the CRM's field history (Salesforce
#: LeadHistory/ContactHistory), a CRM stage-date property (HubSpot `hs_lifecyclestage_<stage>_date`), a
#: conversion date (Salesforce `ConvertedDate`), the record's creation (field history off: lead at CreatedDate),
#: leadsync's own write (the run that set the stage).
ORIGINS: tuple[str, ...] = ("crm_history", "crm_date_property", "converted", "created_fallback", "leadsync_write")


@dataclass(frozen=True, slots=True)
class StageEntry:
    """A record entered `stage` (a `Stage` value) at `entered_at`, as `origin` (one of ORIGINS) says."""

    source: str
    contact_id: str
    stage: str
    entered_at: datetime
    origin: str


@dataclass(frozen=True, slots=True)
class Opportunity:
    """A deal on a record (Salesforce Opportunity): opened, closed, won."""

    source: str
    id: str
    contact_id: str | None
    created_at: datetime
    close_date: datetime | None
    is_closed: bool
    is_won: bool
    stage_name: str | None = None
    amount: float | None = None
    owner_id: str | None = None


@dataclass(frozen=True, slots=True)
class Owner:
    """A CRM user records are owned by (HubSpot owner, Salesforce User): the report shows the name."""

    source: str
    id: str
    name: str | None
    email: str | None
    active: bool = True


@dataclass(frozen=True, slots=True)
class Contact:
    """One person as a CRM holds them, in canonical terms.

    `object_type` keeps the CRM's own kind (HubSpot `contacts`, Salesforce
    `Lead` or `Contact`) because writes must go back to the same object.
    `managed` holds the CRM's current values of the fields leadsync writes,
    keyed by the CRM's field name, so a plan can diff without another read.
    """

    source: str
    id: str
    object_type: str = "contacts"
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    title: str | None = None
    company: str | None = None
    company_size: int | None = None
    industry: str | None = None
    country: str | None = None
    owner_id: str | None = None
    lifecycle_stage: Stage | None = None
    lead_status: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    do_not_contact: bool = False
    archived: bool = False
    read_only: bool = False  # e.g. a converted Salesforce lead
    managed: Mapping[str, str | None] = field(default_factory=dict)
    extra: Mapping[str, str | None] = field(default_factory=dict)
    #: Records in other CRMs this record names as the same human (`"salesforce:00Q…"`), strongest identity
    #: evidence: HubSpot's native-connector ids, leadsync's own link fields, a hand-off's origin.
    links: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """`source:id`, unique across every CRM: how identity, overrides and links name a record."""
        return f"{self.source}:{self.id}"

    @property
    def name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p) or (self.email or self.id)


@dataclass(frozen=True, slots=True)
class Engagement:
    """One thing a person did. `detail` is the URL, asset, form or campaign name.

    A connector that only knows the person's email (HubSpot's email events)
    leaves `contact_id` empty and sets `contact_email`; sync resolves it.
    """

    source: str
    id: str
    contact_id: str
    kind: EngagementKind
    occurred_at: datetime
    detail: str = ""
    campaign: str = ""
    contact_email: str | None = None


# --------------------------------------------------------------------------- changes


@dataclass(frozen=True, slots=True)
class FieldChange:
    before: str | None
    after: str | None


@dataclass(frozen=True, slots=True)
class SetFields:
    """Set CRM fields on one record. Field names and values are the CRM's own."""

    source: str
    object_type: str
    record_id: str
    fields: Mapping[str, FieldChange]
    stage_from: Stage | None = None
    stage_to: Stage | None = None
    reasons: tuple[str, ...] = ()
    email: str | None = None
    #: Set only by undo: the stage may move backwards (HubSpot then needs clear-then-set).
    allow_regression: bool = False

    @property
    def key(self) -> str:
        return f"{self.source}:{self.object_type}:{self.record_id}"

    def values(self) -> dict[str, str | None]:
        return {name: fc.after for name, fc in self.fields.items()}


@dataclass(frozen=True, slots=True)
class CreateTask:
    """One follow-up task for a contact's owner.

    `idempotency_key` names the (contact, stage transition) so that a task is
    created at most once across retries, crashes and re-runs.
    """

    source: str
    object_type: str
    contact_id: str
    owner_id: str | None
    idempotency_key: str
    subject: str
    body: str
    due: datetime
    stage_to: Stage = Stage.SQL
    email: str | None = None

    @property
    def key(self) -> str:
        return self.idempotency_key


@dataclass(frozen=True, slots=True)
class CreateRecord:
    """Create a person's record in another CRM (a hand-off), exactly once.

    `fields` are the CRM's own field names (logical ones for Salesforce's score fields, as in `SetFields`);
    `idempotency_key` goes into the CRM's External ID / unique property, so a re-send never duplicates.
    """

    source: str
    object_type: str
    idempotency_key: str
    fields: Mapping[str, object]
    origin: str  # the record key the person is handed off from

    @property
    def key(self) -> str:
        return self.idempotency_key


@dataclass(frozen=True, slots=True)
class Membership:
    """Enrol a record in a nurture target (a HubSpot static list, a Salesforce Campaign), or take it out.

    `member_id` is the Salesforce CampaignMember id once known (exits and undo address the member by it);
    `status` the CampaignMember Status to set (Salesforce only; an exit with no status deletes the member).
    """

    source: str
    target: str
    object_type: str
    record_id: str
    add: bool
    member_id: str | None = None
    status: str | None = None
    email: str | None = None
    was: str | None = None  # on an exit: the member status it had (the audit's "before"; undo re-enrols with it)

    @property
    def key(self) -> str:
        return f"{self.source}:nurture:{self.target}:{self.record_id}"


Change = SetFields | CreateTask | CreateRecord | Membership


@dataclass(frozen=True, slots=True)
class ChangeResult:
    """What the CRM said about one change. `error_code` is the CRM's own code."""

    change: Change
    ok: bool
    crm_id: str | None = None  # id of the created task, or the record updated
    error_code: str | None = None
    message: str | None = None
    fields: tuple[str, ...] = ()
    retryable: bool = False
    skipped: bool = False  # deliberately not written (e.g. converted lead)
