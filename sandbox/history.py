"""A seeded person's past in the funnel: when they became lead, MQL, SQL, opportunity and customer.

Pure and deterministic, like `sandbox.seed.person`: every date comes from the person's own events and a
splitmix64 hash of (seed, index), never from the person's rng, so no value seeded before this module moved.
Conversions follow qualifying engagement: the MQL date is the person's first qualifying action (a content
download, webinar, form, demo request, meeting or pricing/product page view), the SQL date their first demo
request or meeting after it (else their third qualifying action, else a few days on), and only people sales
already holds at opportunity or customer (`Person.sales_stage`, drawn from the hidden propensity) or whose
Salesforce Lead was converted have any of those dates. Their events after the opportunity opened stay as
seeded: post-conversion activity, which a model that peeks at the future would wrongly credit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sandbox.seed import PAGES_INTENT, SITE, Person

_M64 = 0xFFFFFFFFFFFFFFFF
_SALT = 0x5EED_4157_0E1D_2026
_QUALIFYING = frozenset({"content_download", "webinar", "form_submit", "demo_request", "meeting"})
_INTENT_URLS = frozenset(SITE + p for p in PAGES_INTENT)
_SALES_READY = frozenset({"demo_request", "meeting"})
#: Open opportunities' StageName (Salesforce's default sales process), and the closed ones.
OPEN_STAGES = ("Prospecting", "Qualification", "Needs Analysis", "Proposal/Price Quote")
WON, LOST = "Closed Won", "Closed Lost"
_LATEST = timedelta(hours=1)  # no seeded date is later than the anchor minus this


@dataclass(frozen=True, slots=True)
class Deal:
    """The person's Salesforce Opportunity."""

    created_at: datetime
    close_date: date
    is_closed: bool
    is_won: bool
    stage_name: str
    amount: int


@dataclass(frozen=True, slots=True)
class Timeline:
    """When the person entered each stage (None: never), and their deal."""

    lead_at: datetime
    mql_at: datetime | None = None
    sql_at: datetime | None = None
    opportunity_at: datetime | None = None
    customer_at: datetime | None = None
    working_at: datetime | None = None  # a Lead's Status moved to "Working - Contacted"
    deal: Deal | None = None


def _hash(seed: int, index: int) -> int:
    z = ((seed * 1_000_003 + index) ^ _SALT) * 0x9E3779B97F4A7C15 & _M64
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9 & _M64
    z = (z ^ (z >> 27)) * 0x94D049BB133111EB & _M64
    return z ^ (z >> 31)


def _frac(h: int, k: int) -> float:
    """The k-th of four 16-bit fractions in `h`."""
    return (h >> (16 * k) & 0xFFFF) / 65536.0


def _qualifying(p: Person, after: datetime) -> list[datetime]:
    return [e.at for e in p.events if e.at > after and (
        e.kind in _QUALIFYING or (e.kind == "page_view" and e.detail in _INTENT_URLS))]


def _cap(at: datetime, floor: datetime, anchor: datetime) -> datetime:
    """`at`, but after `floor` and before the anchor: a late first action squeezes the later stages."""
    latest = anchor - _LATEST
    return min(max(at, floor + timedelta(minutes=30)), latest) if floor < latest else latest


def timeline(seed: int, p: Person, anchor: datetime) -> Timeline:
    """The person's stage dates; see the module docstring for how each is drawn."""
    h = _hash(seed, p.index)
    lead_at = p.created_at
    working = None
    if p.lead_status in ("IN_PROGRESS", "ATTEMPTED_TO_CONTACT", "UNQUALIFIED"):
        working = _cap(lead_at + timedelta(days=1 + 20 * _frac(h, 3)), lead_at, anchor)
    converted = p.converted_lead and p.sf_object == "Lead"
    if not p.sales_stage and not converted:
        return Timeline(lead_at, working_at=working)
    acts = _qualifying(p, lead_at)
    mql = _cap(acts[0] if acts else lead_at + timedelta(days=3 + 27 * _frac(h, 0)), lead_at, anchor)
    if converted:  # sales converted the Lead ten days after it came in (sandbox.salesforce.data)
        conv = lead_at + timedelta(days=10)
        mql = min(mql, conv - timedelta(hours=12))
        return Timeline(lead_at, mql, conv, conv, None, working, _deal(h, conv, None, anchor, may_lose=True))
    ready = [a for a in acts if a > mql and any(e.at == a and e.kind in _SALES_READY for e in p.events)]
    later = [a for a in acts if a > mql]
    sql_at = ready[0] if ready else later[2] if len(later) > 2 else mql + timedelta(days=2 + 18 * _frac(h, 1))
    sql = _cap(sql_at, mql, anchor)
    opp = _cap(sql + timedelta(days=0.5 + 9.5 * _frac(h, 2)), sql, anchor)
    won = None
    if p.sales_stage == "customer":
        cycle = timedelta(days=15 + 60 * _frac(h, 3))
        if opp + cycle > anchor - timedelta(days=1):  # too late to have closed: the deal was won earlier
            won = max(anchor - timedelta(days=1 + 9 * _frac(h >> 1, 0)), lead_at + timedelta(days=4))
            opp = max(min(opp, won - cycle), lead_at + timedelta(days=3))
            sql = min(sql, opp - timedelta(hours=12))
            mql = min(mql, sql - timedelta(hours=12))
        else:
            won = opp + cycle
    return Timeline(lead_at, mql, sql, opp, won, working, _deal(h, opp, won, anchor, may_lose=False))


def _deal(h: int, opened: datetime, won: datetime | None, anchor: datetime, may_lose: bool) -> Deal:
    """A won deal closes on the customer date; a converted Lead's is lost (half of them) or still open; an
    opportunity's is open."""
    amount = 5_000 + int(95_000 * _frac(h >> 7, 1)) // 500 * 500
    if won is not None:
        return Deal(opened, won.date(), True, True, WON, amount)
    if may_lose and _frac(h >> 11, 2) < 0.5:
        closed = _cap(opened + timedelta(days=10 + 50 * _frac(h >> 5, 0)), opened, anchor)
        return Deal(opened, closed.date(), True, False, LOST, amount)
    stage = OPEN_STAGES[int(_frac(h >> 3, 1) * len(OPEN_STAGES))]
    return Deal(opened, (opened + timedelta(days=30 + 60 * _frac(h >> 9, 2))).date(), False, False, stage, amount)
