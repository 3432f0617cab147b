"""Turns `sandbox.seed` people into Salesforce rows: users, a queue, campaigns, leads, contacts, activity.

Salesforce keeps one CampaignMember per (campaign, person) whose Status only
moves up (Sent < Opened < Clicked), so repeated opens collapse into one row,
as in a real org. Page views have no Salesforce object (no Pardot) and are
dropped here on purpose. About a third of leads and contacts were touched by a
data-enrichment job at one second, so thousands of rows share a SystemModstamp.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sandbox import bulk
from sandbox.bulk import Job
from sandbox.history import Timeline, timeline
from sandbox.salesforce.ids import seeded_counter, seeded_id
from sandbox.salesforce.query import remember_stamps
from sandbox.salesforce.store import Row, Store
from sandbox.seed import ASSETS, EMAILS, FORMS, OWNERS, SF_QUEUE_ID, WEBINARS, Event, Person

LEAD_STATUS_OF = {"NEW": "Open - Not Contacted", "OPEN": "Open - Not Contacted", "IN_PROGRESS": "Working - Contacted",
                  "ATTEMPTED_TO_CONTACT": "Working - Contacted", "UNQUALIFIED": "Closed - Not Converted", None:
                  "Open - Not Contacted"}

#: Seed event kind -> (campaign status, rank within the campaign, responded).
MEMBER_STATUS: dict[str, tuple[str, int, bool]] = {
    "email_open": ("Opened", 1, True),
    "email_click": ("Clicked", 2, True),
    "hard_bounce": ("Bounced", 3, False),
    "unsubscribe": ("Unsubscribed", 4, False),
    "form_submit": ("Submitted", 1, True),
    "content_download": ("Downloaded", 1, True),
    "webinar": ("Attended", 1, True),
    "demo_request": ("Requested", 1, True),
}
CAMPAIGN_TYPE_OF_KIND = {"email_open": "Email", "email_click": "Email", "hard_bounce": "Email",
                         "unsubscribe": "Email", "form_submit": "Web", "content_download": "Content",
                         "webinar": "Webinar", "demo_request": "Demo Request"}


#: One object per distinct date and second within a chunk. Many rows share one (a third of leads and
#: contacts share the enrichment stamp; a row's CreatedDate is often its SystemModstamp), and a shared
#: object is pickled once per chunk and kept once in the store: a chunk comes back from its worker
#: about 3x faster, and the store holds a third of the date objects.
_CANON: dict[date, date] = {}


def _sec(at: datetime) -> datetime:
    if at.microsecond:  # most seeded times are whole seconds already; `replace` costs more than the rest
        at = at.replace(microsecond=0)
    return _CANON.setdefault(at, at)  # type: ignore[return-value]


def _day(at: datetime) -> date:
    day = at.date()
    return _CANON.setdefault(day, day)


@dataclass
class _Member:
    event: Event
    first: Event
    last: Event
    first_response: Event | None


class SeedLoader:
    """Loads one seed into a store; ids come from per-table counters, so a seed always gives the same ids."""

    def __init__(self, store: Store, anchor: datetime, field_history: bool = True) -> None:
        self.store = store
        self.anchor = anchor
        self.field_history = field_history
        self.seed = 0
        self.origin = _sec(anchor - timedelta(days=900))
        self.enrichment = (anchor - timedelta(days=3)).replace(hour=7, minute=25, second=37, microsecond=0)
        self.campaigns: dict[str, str] = {}
        self.accounts: dict[str, str] = {}

    def load(self, seed: int, contacts: int, prepared: Iterable[list[Part]] | None = None) -> None:
        """Seed the store. `prepared`: the chunk results of `job()` from a shared pass (see `sandbox.bulk`),
        used only when they were made for this store's schema and campaigns."""
        self.seed = seed
        self._users()
        self._lead_statuses()
        self._campaign_rows()
        context = self.context()
        if not isinstance(prepared, Prepared) or prepared.context != context:
            prepared = (part for (part,) in bulk.chunks(seed, contacts, self.anchor, [job(context)]))
        fresh: dict[str, list[tuple[datetime, str]]] = {"Lead": [], "Contact": []}
        with bulk.paused_gc(contacts):
            for chunk in prepared:
                seen = {name: len(fresh[name]) for name in ("Lead", "Contact")}
                for part in chunk:
                    self._place(part, fresh)
                # render the new leads' and contacts' stamps now, while the workers make the next chunk
                remember_stamps(stamp for name, start in seen.items() for stamp, _ in fresh[name][start:])
            for name in ("Lead", "Contact", "Opportunity"):  # seeded ids are 2·index + 1 and + 2: later records come after
                table = self.store.tables[name]
                table.counter = max(table.counter, seeded_counter(contacts))
            self.store.reindex(fresh)

    def context(self) -> Context:
        """What the per-person work needs from this loader: field names per object, campaign ids, stamps."""
        return Context(self.anchor, self.enrichment, {n: tuple(o.fields) for n, o in self.store.schema.items()},
                       dict(self.campaigns), self.field_history, self.seed)

    def _place(self, part: Part, fresh: dict[str, list[tuple[datetime, str]]]) -> None:
        """Take a worker-built person: its Lead / Contact rows come with their (pure) ids; give it its Account
        and its activity rows ids (per-table counters, in seed order), and note each row's (SystemModstamp, Id)
        in `fresh` for the stamp index."""
        records, account, extra = part
        tables = self.store.tables
        account_id = self._account(*account) if account is not None else None
        for sobject, row in records:
            if account_id is not None and "AccountId" in row:
                row["AccountId"] = account_id
            who = row["Id"]
            tables[sobject].rows[who] = row
            fresh.setdefault(sobject, []).append((row["SystemModstamp"], who))
        for other, other_row in extra:
            table = tables[other]
            other_id = other_row["Id"] = table.next_id()
            table.rows[other_id] = other_row
            fresh.setdefault(other, []).append((other_row["SystemModstamp"], other_id))

    def _row(self, sobject: str, values: Row, created: datetime, stamp: datetime | None = None) -> Row:
        obj = self.store.schema[sobject]
        row: Row = dict.fromkeys(obj.fields)
        row.update((k, v) for k, v in values.items() if k in obj.fields)  # an org without leadsync's fields
        row.setdefault("Id", None)
        if row["Id"] is None:
            row["Id"] = self.store.tables[sobject].next_id()
        row["IsDeleted"] = False
        row["CreatedDate"] = _sec(created)
        row["LastModifiedDate"] = row["SystemModstamp"] = _sec(stamp or created)
        if "Name" in obj.fields and sobject in ("Lead", "Contact", "User"):
            row["Name"] = " ".join(p for p in (row.get("FirstName"), row.get("LastName")) if p)
        self.store.load(sobject, row)
        return row

    def _users(self) -> None:
        for o in OWNERS:
            self._row("User", {"Id": o.salesforce_id, "FirstName": o.first_name, "LastName": o.last_name,
                               "Email": o.email, "Username": o.email + ".sandbox", "IsActive": o.active}, self.origin)
        self._row("Group", {"Id": SF_QUEUE_ID, "Name": "Inbound Lead Queue", "Type": "Queue"}, self.origin)

    def _lead_statuses(self) -> None:
        for i, label in enumerate(self.store.schema["Lead"].fields["Status"].picklist):
            self._row("LeadStatus", {"MasterLabel": label, "ApiName": label, "IsConverted": label == "Closed - Converted",
                                     "IsDefault": i == 0, "SortOrder": i + 1}, self.origin)

    def _campaign_rows(self) -> None:
        named = [(n, "Email") for n in EMAILS] + [(n, "Webinar") for n in WEBINARS] + \
                [(n, "Content") for n in ASSETS] + [(n, "Web") for n in FORMS[:2]] + [("Demo request", "Demo Request")]
        for name, kind in named:
            row = self._row("Campaign", {"Name": name, "Type": kind, "Status": "In Progress", "IsActive": True,
                                         "StartDate": (self.anchor - timedelta(days=200)).date(),
                                         "OwnerId": OWNERS[0].salesforce_id}, self.origin)
            self.campaigns[name] = row["Id"]

    def _account(self, company: str, customer: bool, industry: str, size: int | None, country: str,
                 owner: str) -> str:
        account_id = self.accounts.get(company)
        if account_id is None:
            row = self._row("Account", {"Name": company, "Type": "Customer - Direct" if customer else "Prospect",
                                        "Industry": industry, "NumberOfEmployees": size,
                                        "BillingCountry": country, "OwnerId": owner}, self.origin)
            account_id = self.accounts[company] = row["Id"]
        elif customer:
            self.store.tables["Account"].rows[account_id]["Type"] = "Customer - Direct"
        return account_id


class Prepared:
    """`job(context)` chunk results from elsewhere (`sandbox.run.start_sandbox`'s shared pass) for
    `SeedLoader.load`: an iterable, read once, that may still be filling while the org places its rows."""

    def __init__(self, context: Context, chunks: Iterable[list[Part]]) -> None:
        self.context = context
        self._chunks = iter(chunks)

    def __iter__(self) -> Iterator[list[Part]]:
        return self._chunks


def default_context(schema: dict[str, Any], anchor: datetime, seed: int, field_history: bool = True) -> Context:
    """The context a `SeedLoader` on a fresh store with `schema` will have for `seed`."""
    loader = SeedLoader(Store(schema, lambda: anchor), anchor, field_history)
    loader.seed = seed
    loader._users()
    loader._lead_statuses()
    loader._campaign_rows()
    return loader.context()


@dataclass(frozen=True)
class Context:
    anchor: datetime
    enrichment: datetime
    fields: dict[str, tuple[str, ...]]  # in schema order
    campaigns: dict[str, str]
    field_history: bool = True  # the org tracks Lead/Contact field history (LeadHistory, ContactHistory rows)
    seed: int = 0  # the history dates hash it with the person's index (`sandbox.history`)


#: A person's Salesforce rows: ([(object, row)] its Leads and Contact, ids set (`ids.seeded_id`); the Account
#: fields of its Contact or None; [(object, row)] its activity, ids not yet given, links to its records set).
Part = tuple[list[tuple[str, Row]], tuple[Any, ...] | None, list[tuple[str, Row]]]


def job(context: Context) -> Job:
    return person_part, _chunk_list, context



def _chunk_list(context: Context, parts: list[Part]) -> list[Part]:
    _CANON.clear()
    return parts


def _new_row(ctx: Context, sobject: str, values: Row, created: datetime, stamp: datetime | None = None) -> Row:
    """`SeedLoader._row` without the id (given later, in seed order) and without storing it."""
    row: Row = dict.fromkeys(ctx.fields[sobject])
    for k, v in values.items():
        if k in row:  # an org without leadsync's fields
            row[k] = v
    row.setdefault("Id", None)
    row["IsDeleted"] = False
    row["CreatedDate"] = _sec(created)
    row["LastModifiedDate"] = row["SystemModstamp"] = _sec(stamp or created)
    if "Name" in row and sobject in ("Lead", "Contact", "User"):
        row["Name"] = " ".join(p for p in (row.get("FirstName"), row.get("LastName")) if p)
    return row


def _stamp(ctx: Context, person: Person, created: datetime) -> datetime:
    opt_out = [e.at for e in person.events if e.kind == "unsubscribe"]
    stamp = max([created, *opt_out])
    if person.index % 20 < 7 and stamp < ctx.enrichment:
        stamp = ctx.enrichment
    return stamp


def person_part(ctx: Context, p: Person) -> Part | None:
    """A person's Lead or Contact (a converted Lead and its Contact; a duplicate Lead), its Opportunity, field
    history and activity rows, computed in a worker (pure)."""
    if not p.in_salesforce:
        return None
    created = p.created_at
    i = p.index
    tl = timeline(ctx.seed, p, ctx.anchor)
    title = None if "title" in p.sf_blank or not p.title else p.title
    common = {
        "FirstName": p.first_name, "LastName": p.last_name, "Email": p.sf_email or None, "Title": title,
        "HasOptedOutOfEmail": any(e.kind == "unsubscribe" for e in p.events),
        "LeadSync_Stage__c": {"customer": "Customer", "opportunity": "Opportunity"}.get(p.sales_stage or ""),
        "LeadSource": "Web",
    }
    account = None
    records: list[tuple[str, Row]] = []
    history: list[tuple[str, Row]] = []
    stamp = _stamp(ctx, p, created)
    contact_id = None
    if p.sf_object == "Contact" or p.converted_lead:
        account = (p.company, p.sales_stage == "customer", p.industry, p.company_size, p.country,
                   p.owner.salesforce_id)
        contact_id = seeded_id("Contact", i)
    opportunity_id = seeded_id("Opportunity", i) if tl.deal is not None and contact_id else None
    if p.sf_object == "Lead":
        converted = p.converted_lead
        converted_at = created + timedelta(days=10)
        status = "Closed - Converted" if converted else LEAD_STATUS_OF.get(p.lead_status, LEAD_STATUS_OF[None])
        lead_id = seeded_id("Lead", i)
        records.append(("Lead", _new_row(ctx, "Lead", {
            **common, "Id": lead_id, "Company": p.company,
            "NumberOfEmployees": None if "company_size" in p.sf_blank else p.company_size,
            "Industry": None if "industry" in p.sf_blank else p.industry,
            "Country": p.country, "OwnerId": SF_QUEUE_ID if p.sf_queue_owned else p.owner.salesforce_id,
            "Status": status, "IsConverted": converted, "ConvertedDate": _day(converted_at) if converted else None,
            "ConvertedContactId": contact_id, "ConvertedOpportunityId": opportunity_id if converted else None,
        }, created, max(stamp, converted_at) if converted else stamp)))
        history += _lead_history(ctx, p, tl, status, converted_at if converted else None)
        if converted:  # the Contact the Lead became, on its conversion day
            records.append(("Contact", _new_row(ctx, "Contact", {
                **common, "Id": contact_id, "AccountId": None, "MailingCountry": p.country,
                "OwnerId": p.owner.salesforce_id,
            }, converted_at, max(stamp, converted_at))))
            history.append(_history_row(ctx, "ContactHistory", "ContactId", contact_id, "created", None, None,
                                        converted_at))
        if p.duplicate_lead:  # the same human again, e.g. a list import weeks later: a second live Lead
            again = min(created + timedelta(days=15 + i % 60, hours=i % 24), ctx.anchor - timedelta(days=1))
            second = seeded_id("Lead", i, second=True)
            records.append(("Lead", _new_row(ctx, "Lead", {
                "Id": second, "FirstName": p.first_name, "LastName": p.last_name,
                "Email": p.sf_email, "Company": p.company, "Country": p.country, "OwnerId": SF_QUEUE_ID,
                "Status": LEAD_STATUS_OF[None], "IsConverted": False, "HasOptedOutOfEmail": False,
                "LeadSource": "Purchased List",
            }, again)))
            history.append(_history_row(ctx, "LeadHistory", "LeadId", second, "created", None, None, again))
    else:
        records.append(("Contact", _new_row(ctx, "Contact", {
            **common, "Id": contact_id, "AccountId": None, "MailingCountry": p.country,
            "OwnerId": p.owner.salesforce_id,
        }, created, stamp)))
        assert contact_id is not None
        history += _contact_history(ctx, p, tl, contact_id)
    if opportunity_id is not None and tl.deal is not None:
        records.append(("Opportunity", _opportunity(ctx, p, tl, opportunity_id, contact_id)))
    if not ctx.field_history:
        history = []
    return records, account, history + _engagement(ctx, p, records[0][1]["Id"], contact_id)


def _history_row(ctx: Context, sobject: str, parent: str, parent_id: str, field: str, old: Any, new: Any,
                 at: datetime) -> tuple[str, Row]:
    """One LeadHistory/ContactHistory row; history rows have no SystemModstamp on the wire (the store's
    index still needs one, so it is the CreatedDate)."""
    row = _new_row(ctx, sobject, {parent: parent_id, "Field": field, "OldValue": old, "NewValue": new,
                                  "DataType": "Text" if field in ("Status", "LeadSync_Stage__c") else None,
                                  "CreatedById": OWNERS[0].salesforce_id}, at)
    return sobject, row


def _lead_history(ctx: Context, p: Person, tl: Timeline, status: str, converted_at: datetime | None
                  ) -> list[tuple[str, Row]]:
    """A Lead's created row and each Status change: worked, disqualified, or converted (Status, then the
    `leadConverted` row Salesforce writes on conversion)."""
    lead_id = seeded_id("Lead", p.index)
    rows = [_history_row(ctx, "LeadHistory", "LeadId", lead_id, "created", None, None, tl.lead_at)]
    opened, working = LEAD_STATUS_OF[None], "Working - Contacted"
    last = opened
    if tl.working_at is not None and converted_at is None:
        rows.append(_history_row(ctx, "LeadHistory", "LeadId", lead_id, "Status", opened, working, tl.working_at))
        last = working
        if status == "Closed - Not Converted":
            at = min(tl.working_at + timedelta(days=3), ctx.anchor - timedelta(hours=1))
            rows.append(_history_row(ctx, "LeadHistory", "LeadId", lead_id, "Status", working, status, at))
    if converted_at is not None:
        rows.append(_history_row(ctx, "LeadHistory", "LeadId", lead_id, "Status", last, status, converted_at))
        rows.append(_history_row(ctx, "LeadHistory", "LeadId", lead_id, "leadConverted", None, None, converted_at))
    return rows


def _contact_history(ctx: Context, p: Person, tl: Timeline, contact_id: str) -> list[tuple[str, Row]]:
    """A Contact's created row, and sales setting its stage field to Opportunity, then Customer (tracked only
    where the org has leadsync's fields)."""
    rows = [_history_row(ctx, "ContactHistory", "ContactId", contact_id, "created", None, None, tl.lead_at)]
    if "LeadSync_Stage__c" not in ctx.fields["Contact"]:
        return rows
    if tl.opportunity_at is not None:
        rows.append(_history_row(ctx, "ContactHistory", "ContactId", contact_id, "LeadSync_Stage__c", None,
                                 "Opportunity", tl.opportunity_at))
    if tl.customer_at is not None:
        rows.append(_history_row(ctx, "ContactHistory", "ContactId", contact_id, "LeadSync_Stage__c", "Opportunity",
                                 "Customer", tl.customer_at))
    return rows


def _opportunity(ctx: Context, p: Person, tl: Timeline, opportunity_id: str, contact_id: str | None) -> Row:
    deal = tl.deal
    assert deal is not None
    closed_at = datetime.combine(deal.close_date, deal.created_at.timetz()) if deal.is_closed else deal.created_at
    return _new_row(ctx, "Opportunity", {
        "Id": opportunity_id, "Name": f"{p.company} - New Business", "AccountId": None, "ContactId": contact_id,
        "StageName": deal.stage_name, "CloseDate": _day(datetime.combine(deal.close_date, deal.created_at.timetz())),
        "Amount": float(deal.amount), "IsClosed": deal.is_closed, "IsWon": deal.is_won, "LeadSource": "Web",
        "OwnerId": p.owner.salesforce_id,
    }, deal.created_at, max(deal.created_at, closed_at))


def _engagement(ctx: Context, p: Person, record_id: str, contact_id: str | None) -> list[tuple[str, Row]]:
    """Campaign members and activity. A converted person's members keep the Lead and gain the Contact, and its
    tasks and events moved to the Contact, as a conversion does."""
    lead_id = record_id if p.sf_object == "Lead" else None
    who = contact_id or record_id
    out: list[tuple[str, Row]] = []
    for name, m in _members(p.events).items():
        status, _, responded = MEMBER_STATUS[m.event.kind]
        out.append(("CampaignMember", _new_row(ctx, "CampaignMember", {
            "CampaignId": ctx.campaigns[name], "LeadId": lead_id, "ContactId": contact_id, "Status": status,
            "HasResponded": responded, "FirstRespondedDate": _day(m.first_response.at) if m.first_response else None,
        }, m.first.at, m.last.at)))
    owner = p.owner.salesforce_id
    for e in p.events:
        if e.kind == "meeting":
            call_at = e.at - timedelta(days=1)
            out.append(("Task", _new_row(ctx, "Task", {
                "WhoId": who, "Subject": "Call", "TaskSubtype": "Call", "CallType": "Outbound",
                "Status": "Completed", "IsClosed": True, "Priority": "Normal", "OwnerId": owner,
                "ActivityDate": _day(call_at), "CompletedDateTime": _sec(call_at),
                "Description": f"Booked: {e.detail}"}, call_at)))
            out.append(("Event", _new_row(ctx, "Event", {
                "WhoId": who, "Subject": f"Meeting: {e.detail}", "EventSubtype": "Event",
                "ActivityDateTime": _sec(e.at), "DurationInMinutes": 30, "OwnerId": owner}, e.at)))
        elif e.kind == "demo_request":
            reply_at = e.at + timedelta(hours=3)
            if reply_at <= ctx.anchor:
                out.append(("Task", _new_row(ctx, "Task", {
                    "WhoId": who, "Subject": "Email: Re: Your demo request", "TaskSubtype": "Email",
                    "Status": "Completed", "IsClosed": True, "Priority": "Normal", "OwnerId": owner,
                    "ActivityDate": _day(reply_at), "CompletedDateTime": _sec(reply_at)}, reply_at)))
    return out


def _members(events: Iterable[Event]) -> dict[str, _Member]:
    """One member per campaign, keeping the highest-ranked status and first/last touch."""
    out: dict[str, _Member] = {}
    for e in events:
        if e.kind not in MEMBER_STATUS:
            continue
        name = e.detail
        responded = MEMBER_STATUS[e.kind][2]
        m = out.get(name)
        if m is None:
            out[name] = _Member(e, e, e, e if responded else None)
            continue
        if MEMBER_STATUS[e.kind][1] > MEMBER_STATUS[m.event.kind][1]:
            m.event = e
        m.last = max(m.last, e, key=lambda x: x.at)
        if responded and m.first_response is None:
            m.first_response = e
    return out
