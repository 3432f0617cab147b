"""Ground truth for the person layer: which seeded records exist in which CRM, and what links them.

`overlap(seed, count, anchor)` lists, per seed person, the records both emulators built from it (ids and
emails exactly as each CRM holds them) and how they are linked: the native connector's ids on the HubSpot
contact, a case/space variant of the email in Salesforce, a second live Lead, a converted Lead and its Contact,
profile fields known to one CRM only, and the seed's in-CRM duplicate email. `person_records(p)` is the same
for one person, without the two facts that depend on the people before it in HubSpot (its email dropped as a
duplicate; its contact deleted or merged), which `overlap` adds. `summary(rows)` counts each kind.

Everything here is recomputed from `sandbox.seed`, never read from an emulator, so tests can compare the two.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sandbox.hubspot.portal import DELETED_EVERY, MERGED_EVERY
from sandbox.hubspot.seeding import contact_id
from sandbox.salesforce.ids import seeded_id
from sandbox.seed import Person, people


@dataclass(frozen=True, slots=True)
class Records:
    """One seed person's records. HubSpot fields are None when the person is not in HubSpot, Salesforce ones
    when not in Salesforce."""

    index: int
    hubspot_id: str | None
    #: As HubSpot stores it: lower-cased; None when blank, or dropped because an earlier contact has it.
    hubspot_email: str | None
    #: "live", "deleted" (archived) or "merged" (archived into `hubspot_merged_into`).
    hubspot_state: str | None
    hubspot_merged_into: str | None
    #: The person's Lead: live, or converted (then `salesforce_contact_id` is the Contact it became).
    salesforce_lead_id: str | None
    salesforce_contact_id: str | None
    #: A second live Lead with the same email (`Person.duplicate_lead`).
    salesforce_duplicate_lead_id: str | None
    #: As Salesforce stores it, untrimmed and in its own case; None when blank.
    salesforce_email: str | None
    converted: bool
    #: The HubSpot contact's `salesforceleadid` / `salesforcecontactid` (the native connector's link).
    native_lead_id: str | None
    native_contact_id: str | None
    #: In both CRMs, and the two emails differ, but only in case and/or surrounding spaces.
    case_variant: bool
    hs_blank: tuple[str, ...]
    sf_blank: tuple[str, ...]
    #: The seed's deliberate in-CRM duplicate: this person has the email of the person at this index.
    shares_email_with: int | None
    #: In HubSpot only, with a demo request and a high propensity (>= 0.7): should score as sales-ready.
    hubspot_only_sales_ready: bool

    @property
    def in_hubspot(self) -> bool:
        return self.hubspot_id is not None

    @property
    def in_salesforce(self) -> bool:
        return self.salesforce_lead_id is not None or self.salesforce_contact_id is not None

    @property
    def in_both(self) -> bool:
        return self.in_hubspot and self.in_salesforce

    @property
    def salesforce_id(self) -> str | None:
        """The record the person layer should prefer: the Contact when there is one, else the Lead."""
        return self.salesforce_contact_id or self.salesforce_lead_id

    @property
    def native_link(self) -> bool:
        return self.native_lead_id is not None or self.native_contact_id is not None


def normalise(email: str | None) -> str:
    """The person layer's email key: trimmed and lower-cased."""
    return (email or "").strip().lower()


def person_records(p: Person) -> Records:
    """`p`'s records, as if no earlier HubSpot contact had its email and none was archived."""
    hs = p.in_hubspot
    lead = seeded_id("Lead", p.index) if p.in_salesforce and p.sf_object == "Lead" else None
    contact = seeded_id("Contact", p.index) if p.in_salesforce and (p.sf_object == "Contact" or p.converted_lead) \
        else None
    native = p.native_link and hs
    hs_email = (p.email.lower() or None) if hs else None
    sf_email = (p.sf_email or None) if p.in_salesforce else None
    return Records(
        index=p.index,
        hubspot_id=contact_id(p.index) if hs else None, hubspot_email=hs_email,
        hubspot_state="live" if hs else None, hubspot_merged_into=None,
        salesforce_lead_id=lead, salesforce_contact_id=contact,
        salesforce_duplicate_lead_id=seeded_id("Lead", p.index, second=True) if p.duplicate_lead else None,
        salesforce_email=sf_email, converted=p.converted_lead,
        native_lead_id=lead if native else None, native_contact_id=contact if native else None,
        case_variant=bool(hs and p.in_salesforce and sf_email and hs_email and sf_email != hs_email),
        hs_blank=p.hs_blank, sf_blank=p.sf_blank,
        shares_email_with=p.index - 1 if p.index % 97 == 96 else None,
        hubspot_only_sales_ready=hs and not p.in_salesforce and p.propensity >= 0.7 and "@" in p.email
        and any(e.kind == "demo_request" for e in p.events),
    )


def overlap(seed: int, count: int, anchor: datetime) -> list[Records]:
    """Every seed person's records, index order, with HubSpot's order-dependent facts applied (the same rules
    as `seeding.Builder.feed` and `portal._archive_some`)."""
    rows = [person_records(p) for p in people(seed, count, anchor)]
    seen: set[str] = set()
    in_hubspot: list[int] = []  # positions in HubSpot's id order = seed order
    for k, r in enumerate(rows):
        if not r.in_hubspot:
            continue
        in_hubspot.append(k)
        if r.hubspot_email is not None:
            if r.hubspot_email in seen:
                rows[k] = replace(r, hubspot_email=None)
            else:
                seen.add(r.hubspot_email)
    for n in range(DELETED_EVERY - 1, len(in_hubspot), DELETED_EVERY):
        rows[in_hubspot[n]] = replace(rows[in_hubspot[n]], hubspot_state="deleted")
    for n in range(MERGED_EVERY - 1, len(in_hubspot), MERGED_EVERY):
        winner, loser = rows[in_hubspot[n - 1]], rows[in_hubspot[n]]
        if winner.hubspot_state == "live" and loser.hubspot_state == "live":
            rows[in_hubspot[n]] = replace(loser, hubspot_state="merged", hubspot_merged_into=winner.hubspot_id)
    return rows


def summary(rows: list[Records]) -> dict[str, int]:
    """How many people of each overlap kind (the figures BEHAVIOR.md quotes for seed 1 at 2,000 people)."""
    both = [r for r in rows if r.in_both]
    return {
        "people": len(rows),
        "hubspot": sum(r.in_hubspot for r in rows),
        "salesforce": sum(r.in_salesforce for r in rows),
        "both": len(both),
        "native_link": sum(r.native_link for r in both),
        "native_lead_id": sum(r.native_lead_id is not None for r in both),
        "native_contact_id": sum(r.native_contact_id is not None for r in both),
        "case_variant": sum(r.case_variant for r in both),
        "duplicate_lead": sum(r.salesforce_duplicate_lead_id is not None for r in rows),
        "converted": sum(r.converted for r in rows),
        "hs_blank": sum(bool(r.hs_blank) for r in both),
        "sf_blank": sum(bool(r.sf_blank) for r in both),
        "shares_email_with": sum(r.shares_email_with is not None for r in rows),
        "hubspot_only_sales_ready": sum(r.hubspot_only_sales_ready for r in rows),
    }
