"""Deterministic, realistic people and engagement histories for both emulators.

Each person is a pure function of (seed, index, anchor), so a million can be
made lazily or in parallel and any one regenerated on its own. A hidden
`propensity` drives how much and how purposefully a person engages, so a good
scoring model measurably beats a bad one; `fit` drives title, size and
industry the same way. Some dirt is on purpose: blank and invalid emails,
duplicates within and across CRMs, unicode, very long values, picklist values
the CRM does not list. About a fifth of people are in both CRMs; how their records overlap (the native
connector's ids, case/space email variants, duplicate and converted Leads, profile fields one CRM lacks) is
drawn from a hash of (seed, index) in `_overlap`, and `sandbox.overlap` is its ground truth.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import NamedTuple, TypeVar

FIRST = ["Ana", "Ben", "Chloé", "Dmitri", "Eva", "Farah", "Gustavo", "Hana", "Ivan", "Jia", "Kofi", "Lena",
         "Marco", "Nadia", "Olu", "Priya", "Quinn", "Rafael", "Sofia", "Tomás", "Uma", "Viktor", "Wen",
         "Ximena", "Yusuf", "Zoë", "Amélie", "Björn", "Søren", "Łukasz", "Noor", "Sam", "Alex", "Kim"]
LAST = ["Smith", "García", "Müller", "Rossi", "Nguyen", "Kowalski", "Tanaka", "Okafor", "Dubois", "Silva",
        "O'Brien", "Johansson", "Patel", "Kim", "Haddad", "Novák", "Fernández", "Schmidt", "Ivanova",
        "Chen", "Jones", "Lefèvre", "Andersen", "Costa", "Yılmaz", "Brown", "Walker", "Moreau"]
COMPANY_A = ["Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay", "Soylent",
             "Tyrell", "Cyberdyne", "Aperture", "Massive", "Pied Piper", "Wonka", "Gringotts", "Oscorp"]
COMPANY_B = ["Labs", "Systems", "Group", "Analytics", "Health", "Logistics", "Bank", "Retail", "Software",
             "Energy", "Foods", "Media", "Robotics", "Cloud", "Partners"]
# (title, seniority, fit weight): higher weight = better fit for a B2B SaaS seller
TITLES = [
    ("Chief Revenue Officer", "executive", 1.0), ("VP Marketing", "vp", 0.95), ("VP Sales", "vp", 0.95),
    ("Head of Marketing Operations", "director", 0.9), ("Director of Demand Generation", "director", 0.85),
    ("RevOps Manager", "manager", 0.8), ("Marketing Operations Manager", "manager", 0.75),
    ("Sales Manager", "manager", 0.6), ("Growth Marketer", "individual", 0.5),
    ("Marketing Coordinator", "individual", 0.35), ("Account Executive", "individual", 0.3),
    ("Software Engineer", "individual", 0.2), ("Consultant", "individual", 0.2),
    ("Student", "student", 0.0), ("Intern", "student", 0.05), ("", "unknown", 0.2),
]
INDUSTRIES = [("Technology", 1.0), ("Financial Services", 0.8), ("Healthcare", 0.6), ("Retail", 0.6),
              ("Manufacturing", 0.5), ("Education", 0.2), ("Government", 0.1), ("Non-Profit", 0.1),
              ("Media", 0.5), ("Telecommunications", 0.7), ("Crypto Mining", 0.1)]  # last: not in SF picklist
COUNTRIES = [("United States", 1.0), ("United Kingdom", 0.9), ("Germany", 0.9), ("France", 0.8),
             ("Canada", 0.9), ("Australia", 0.8), ("Brazil", 0.5), ("India", 0.5), ("Japan", 0.6),
             ("Nigeria", 0.3), ("Poland", 0.6), ("Mexico", 0.5)]
SIZES = [(5, 0.1), (25, 0.3), (80, 0.6), (250, 0.9), (900, 1.0), (3500, 1.0), (12000, 0.7), (60000, 0.5)]
FREE_MAIL = ["gmail.com", "yahoo.com", "outlook.com", "hotmail.com"]

T = TypeVar("T")

SITE = "https://www.example-saas.com"
PAGES_GENERIC = ["/", "/blog/lead-scoring-101", "/blog/revops-playbook", "/product", "/integrations",
                 "/customers", "/about"]
PAGES_INTENT = ["/pricing", "/product/scoring", "/security", "/compare/leadsync-vs-spreadsheets"]
PAGES_NEGATIVE = ["/careers", "/careers/engineering"]
ASSETS = ["ebook-lead-scoring-guide", "whitepaper-revops-benchmarks", "checklist-crm-hygiene"]
WEBINARS = ["Webinar: Fixing the MQL handoff", "Webinar: Scoring that sales trusts"]
EMAILS = ["Newsletter October", "Newsletter November", "Product update", "Nurture 1: Why scoring",
          "Nurture 2: Case study", "Nurture 3: Book a demo"]
FORMS = ["Newsletter signup", "Contact us", "Content download", "Webinar registration", "Demo request"]


@dataclass(frozen=True, slots=True)
class Owner:
    index: int
    first_name: str
    last_name: str
    email: str
    active: bool
    hubspot_id: str
    salesforce_id: str


OWNERS: tuple[Owner, ...] = tuple(
    # 15-char id + checksum suffix: only the "O" of "005Ow" is upper case, so every suffix is "IAA".
    Owner(i, first, last, f"{first.lower()}.{last.lower()}@example-saas.com", active, str(70000001 + i),
          f"005Ow{str(i).zfill(10)}IAA")
    for i, (first, last, active) in enumerate([
        ("Maya", "Reed", True), ("Jonas", "Berg", True), ("Aisha", "Khan", True), ("Leo", "Martin", True),
        ("Grace", "Ho", True), ("Diego", "Ruiz", True), ("Pat", "Lowe", False), ("Ines", "Duarte", True),
    ])
)
#: A Salesforce lead queue (ids starting 00G): some leads are owned by it, not a user.
SF_QUEUE_ID = "00GQu0000000001AAA"


class Event(NamedTuple):
    """One seeded engagement. A tuple, not a frozen dataclass: a million people make ~20 million of these,
    and a tuple is built in half the time."""

    at: datetime  # first: tuples sort by (at, kind, detail), the order a person's events are kept in
    kind: str  # an EngagementKind value
    detail: str = ""


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs a tenth of making a person
class Person:
    index: int
    first_name: str
    last_name: str
    email: str  # may be "" or invalid on purpose
    title: str
    seniority: str
    company: str
    company_size: int | None
    industry: str
    country: str
    created_at: datetime
    in_hubspot: bool
    in_salesforce: bool
    sf_object: str  # "Lead" or "Contact"
    owner: Owner
    sf_queue_owned: bool
    sales_stage: str | None  # "opportunity" / "customer" already set by sales, else None
    lead_status: str | None
    propensity: float  # hidden truth: how likely to buy
    fit: float  # hidden truth: how well they match the ideal customer
    converted_lead: bool  # Salesforce holds a converted Lead and the Contact it became (sf_object "Lead" only)
    events: tuple[Event, ...] = field(default=())
    # Cross-CRM overlap (see `_overlap`; drawn from a hash, not from the person's rng, so no other value moves):
    sf_email: str = ""  # the email as Salesforce holds it: `email`, or a case/space variant of it
    native_link: bool = False  # in both CRMs, and the HubSpot contact carries the native connector's id
    duplicate_lead: bool = False  # Salesforce also holds a second live Lead with the same email
    hs_blank: tuple[str, ...] = ()  # of "title", "industry", "company_size": blank in HubSpot, set in Salesforce
    sf_blank: tuple[str, ...] = ()  # the same, blank in Salesforce, set in HubSpot


def _pick_weighted(rng: random.Random, items: list, key_weight) -> object:
    total = sum(key_weight(x) for x in items)
    r = rng.random() * total
    for x in items:
        r -= key_weight(x)
        if r <= 0:
            return x
    return items[-1]


class _Rng(random.Random):
    """`random.Random` whose `choice` and `randint` make the very same `getrandbits` draws as CPython's, in
    fewer Python calls: a million people make ~40 million of them."""

    def choice(self, seq: Sequence[T]) -> T:
        n = len(seq)
        k = n.bit_length()
        r = self.getrandbits(k)
        while r >= n:
            r = self.getrandbits(k)
        return seq[r]

    def randint(self, a: int, b: int) -> int:
        return a + self.choice(range(b - a + 1))  # the same single draw below b - a + 1


def person(seed: int, index: int, anchor: datetime) -> Person:
    """The person at `index` for this seed; events lie in the 180 days before `anchor`."""
    rng = _Rng(seed * 1_000_003 + index)
    fit_pref = rng.random()
    title, seniority, tw = rng.choice(TITLES) if rng.random() < 0.5 else max(
        rng.sample(TITLES, 3), key=lambda t: t[2] if fit_pref > 0.5 else -t[2])
    industry, iw = rng.choice(INDUSTRIES)
    country, cw = rng.choice(COUNTRIES)
    size, sw = rng.choice(SIZES)
    fit = round((tw * 0.45 + iw * 0.25 + sw * 0.2 + cw * 0.1), 3)
    # Propensity: mostly driven by fit, plus noise; a few great-fit people never buy.
    propensity = max(0.0, min(1.0, fit * 0.7 + rng.gauss(0.0, 0.18) + (0.1 if rng.random() < 0.1 else 0.0)))
    first, last = rng.choice(FIRST), rng.choice(LAST)
    company = f"{rng.choice(COMPANY_A)} {rng.choice(COMPANY_B)}"
    domain = company.lower().replace(" ", "") + ".com"
    local = f"{first}.{last}".lower().replace("'", "").replace(" ", "")
    roll = rng.random()
    if roll < 0.02:
        email = ""
    elif roll < 0.035:
        email = f"{local}.at.{domain}"  # invalid on purpose
    elif roll < 0.12 or seniority == "student":
        email = f"{local}{index}@{rng.choice(FREE_MAIL)}"
    else:
        email = f"{local}{index}@{domain}"
    if index % 97 == 96:
        email = person(seed, index - 1, anchor).email  # a duplicate within the CRM, on purpose
    if rng.random() < 0.01:
        title = (title or "Manager") + " — " + "very long title " * 30  # very long value
    where = rng.random()
    in_hubspot, in_salesforce = where < 0.75, where >= 0.55  # ~20% in both
    created_at = anchor - timedelta(days=rng.uniform(20, 720), seconds=rng.randint(0, 86399))
    owner = rng.choice(OWNERS)  # = OWNERS[rng.randrange(len(OWNERS))]: the same draw
    sales_stage = None
    if propensity > 0.55 and rng.random() < 0.12:
        sales_stage = "customer" if rng.random() < 0.4 else "opportunity"
    lead_status = rng.choice(["NEW", "OPEN", "IN_PROGRESS", "ATTEMPTED_TO_CONTACT", None, None])
    if rng.random() < 0.03:
        lead_status = "UNQUALIFIED"
    events = tuple(sorted(_events(rng, propensity, anchor, created_at)))
    p = Person(
        index=index, first_name=first, last_name=last, email=email, title=title, seniority=seniority,
        company=company, company_size=None if rng.random() < 0.08 else size, industry=industry,
        country=country, created_at=created_at, in_hubspot=in_hubspot, in_salesforce=in_salesforce,
        sf_object="Contact" if sales_stage or rng.random() < 0.3 else "Lead", owner=owner,
        sf_queue_owned=rng.random() < 0.05, sales_stage=sales_stage, lead_status=lead_status,
        propensity=round(propensity, 3), fit=fit, converted_lead=rng.random() < 0.02, events=events,
        sf_email=email,
    )
    if in_salesforce:
        _overlap(p, _hash64(seed * 1_000_003 + index))
    else:
        p.converted_lead = False
    return p


#: Overlap rates (see `_overlap`): of the people in both CRMs, NATIVE_LINK carry the native connector's id and
#: CASE_VARIANT have a case/space variant of the email in Salesforce; PROFILE_GAP lack profile fields in HubSpot
#: that Salesforce has, and as many the reverse; of live Leads with a valid email, DUPLICATE_LEAD have a second
#: live Lead (about 1% of the people in Salesforce).
NATIVE_LINK, CASE_VARIANT, PROFILE_GAP, DUPLICATE_LEAD = 0.40, 0.05, 0.10, 0.015
_M64 = 0xFFFFFFFFFFFFFFFF
_PROFILE_FIELDS = (("title",), ("title", "industry"), ("title", "company_size"), ("industry", "company_size"),
                   ("title", "industry", "company_size"), ("title",), ("title",), ("title", "industry"))


def _hash64(n: int) -> int:
    """splitmix64 of `n`: 64 well-mixed bits per person for the overlap coins (cheaper than another rng)."""
    z = (n * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & _M64
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9 & _M64
    z = (z ^ (z >> 27)) * 0x94D049BB133111EB & _M64
    return z ^ (z >> 31)


def _email_variant(email: str, k: int) -> str:
    """`email` as a person typed it into Salesforce: the same address once trimmed and lower-cased."""
    local, _, domain = email.partition("@")
    if k == 0:
        return f"{local.title()}@{domain.capitalize()}"  # Ana.Smith12@Acme.com
    if k == 1:
        return f"{local.title()}@{domain} "  # Ana.Smith12@acme.com + a trailing space
    if k == 2:
        return email.upper()
    return f" {email}"  # a leading space


def _overlap(p: Person, h: int) -> None:
    """Set a Salesforce person's overlap traits from 64 hash bits (16 per coin), so none of the person's own
    draws move. Only people in both CRMs get links, variants and profile gaps."""
    is_lead = p.sf_object == "Lead"
    p.converted_lead = p.converted_lead and is_lead
    valid = "@" in p.email
    if is_lead and not p.converted_lead and valid and (h & 0xFFFF) < DUPLICATE_LEAD * 65536:
        p.duplicate_lead = True
    if not p.in_hubspot:
        return
    p.native_link = (h >> 16 & 0xFFFF) < NATIVE_LINK * 65536
    if valid and (h >> 32 & 0xFFF) < CASE_VARIANT * 4096:
        k = h >> 44 & 3
        variant = _email_variant(p.email, k)
        if variant.strip().lower() != p.email.lower():  # "yılmaz".upper().lower() is "yilmaz": not the same
            variant = _email_variant(p.email, 3)
        p.sf_email = variant
    gap = (h >> 46 & 0xFFF) / 4096
    if gap < 2 * PROFILE_GAP:
        fields = _PROFILE_FIELDS[h >> 58 & 7] if is_lead else ("title",)  # a Contact has no Industry or size
        have = {"title": bool(p.title), "industry": True, "company_size": p.company_size is not None}
        fields = tuple(f for f in fields if have[f])  # a gap needs a value on the other side
        if gap < PROFILE_GAP:
            p.hs_blank = fields
        else:
            p.sf_blank = fields


_SECOND = timedelta(seconds=1)


def _events(rng: random.Random, p: float, anchor: datetime, created: datetime) -> list[Event]:
    start = max(created, anchor - timedelta(days=180))
    span = max((anchor - start).total_seconds(), 3600.0)

    power, draw = 1.0 + p * 2, rng.random

    def when() -> datetime:
        # Engaged people engage more recently: skew towards the anchor.
        return anchor - _SECOND * int(draw() ** power * span)  # = timedelta(seconds=...), twice as fast

    out: list[Event] = []
    for _ in range(rng.randint(1, 4 + int(p * 14))):
        name = rng.choice(EMAILS)
        at = when()
        out.append(Event(at, "email_open", name))
        if rng.random() < 0.15 + 0.5 * p:
            out.append(Event(at + timedelta(minutes=rng.randint(1, 90)), "email_click", name))
    for _ in range(rng.randint(0, 2 + int(p * 16))):
        page = rng.choice(PAGES_INTENT) if rng.random() < p * 0.6 else rng.choice(PAGES_GENERIC)
        out.append(Event(when(), "page_view", SITE + page))
    if rng.random() < 0.05:
        out.append(Event(when(), "page_view", SITE + rng.choice(PAGES_NEGATIVE)))
    if rng.random() < 0.2 + 0.5 * p:
        out.append(Event(when(), "form_submit", rng.choice(FORMS[:2])))
    if rng.random() < 0.1 + 0.5 * p:
        out.append(Event(when(), "content_download", rng.choice(ASSETS)))
    if rng.random() < 0.05 + 0.3 * p:
        out.append(Event(when(), "webinar", rng.choice(WEBINARS)))
    if p > 0.55 and rng.random() < (p - 0.45) * 0.9:
        # A buying burst: several pricing visits in a week, often a demo request.
        burst = anchor - timedelta(days=rng.uniform(0.5, 25))
        for k in range(rng.randint(2, 4)):
            out.append(Event(burst + timedelta(hours=k * rng.randint(3, 30)), "page_view", SITE + "/pricing"))
        if rng.random() < 0.6:
            out.append(Event(burst + timedelta(hours=rng.randint(1, 48)), "demo_request", "Demo request"))
    if p > 0.6 and rng.random() < 0.2:
        out.append(Event(when(), "meeting", "Discovery call"))
    if rng.random() < 0.04:
        out.append(Event(when(), "unsubscribe", rng.choice(EMAILS)))
    if rng.random() < 0.01:
        out.append(Event(when(), "hard_bounce", rng.choice(EMAILS)))
    return [e for e in out if e.at <= anchor]


def people(seed: int, count: int, anchor: datetime) -> Iterator[Person]:
    for i in range(count):
        yield person(seed, i, anchor)


def default_anchor(now: datetime | None = None) -> datetime:
    """Midnight UTC today: histories look current, and stay fixed within a day."""
    now = now or datetime.now(timezone.utc)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)
