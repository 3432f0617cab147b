"""The funnel report: every figure marketing and sales share, computed from the state store alone.

Pure over the `State` (no CRM calls, no clock: `now` is an argument), so the
same database and `now` always give the same dict, byte for byte once dumped.
`build_report` returns a JSON-ready dict with a fixed key order; the terminal
and HTML renderings (`sync.report_render`) only lay it out.

Definitions the numbers rest on (repeated in the report's `definitions`):
- A contact's stage *now* is `scores.crm_stage` (what the CRM holds after the
  last run), else the snapshot's lifecycle stage. Archived and read-only
  records (e.g. converted Salesforce leads, which live on as their Contact)
  are inactive: counted, but kept out of the funnel and the duplicate checks.
- A *new MQL/SQL* is a contact's first recorded entry into that stage in
  `stage_history`; later re-entries are *recycles*. A *regression* is a
  recorded move to a lower funnel stage.
- Weeks start on Monday 00:00 UTC; every time is UTC. Business hours are all
  hours Monday to Friday (no holidays, no per-owner time zones).
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from mapping.model import STAGE_RANK, Stage
from scoring.compiled import EMAIL_RE
from sync.report_history import history_section
from sync.stage_history import deal_entries, person_histories
from sync.state import State

FUNNEL: tuple[str, ...] = ("subscriber", "lead", "mql", "sql", "opportunity", "customer")
STAGE_COLUMNS: tuple[str, ...] = (*FUNNEL, "other", "unknown")
#: Fewer decided outcomes than this and a conversion rate is flagged as thin history.
MIN_DECIDED = 20
TOP_RULES = 10
SCORE_BIN = 10
_DAY = timedelta(days=1)
_WEEK = timedelta(days=7)
_NO_OWNER = "(no owner)"
_NO_TASK_OWNER = "(no task owner)"
_NO_COUNTRY = "(unknown)"
InBucket = Callable[[datetime], bool]


# --------------------------------------------------------------------------- loaded rows


@dataclass(frozen=True, slots=True)
class ContactRow:
    """The few fields of a contact the report needs, parsed once."""

    source: str
    id: str
    email: str | None
    owner: str
    country: str
    created_at: datetime | None
    stage: str
    score: int | None
    active: bool


@dataclass(frozen=True, slots=True)
class Change:
    """One recorded stage change."""

    source: str
    contact_id: str
    from_stage: str | None
    to_stage: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Journey:
    """What the stage history says about one contact: first entries and the recycles/regressions."""

    first_mql: datetime | None
    first_sql: datetime | None
    regressions: tuple[datetime, ...]
    recycles: tuple[datetime, ...]
    max_rank: int


@dataclass(frozen=True, slots=True)
class Window:
    """The reporting period [since, until) and its Monday-aligned weeks."""

    since: datetime
    until: datetime
    weeks: tuple[datetime, ...]

    def contains(self, at: datetime | None) -> bool:
        return at is not None and self.since <= at < self.until


# --------------------------------------------------------------------------- small helpers


def utc(dt: datetime) -> datetime:
    """Naive datetimes are taken as UTC, so callers can pass either."""
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def parse_time(value: Any) -> datetime | None:
    """An ISO timestamp from the store, as aware UTC; None for missing or unparsable values."""
    if not value:
        return None
    try:
        return utc(datetime.fromisoformat(str(value)))
    except ValueError:
        return None


def week_start(dt: datetime) -> datetime:
    """Monday 00:00 UTC of the week holding `dt`."""
    d = utc(dt)
    return datetime(d.year, d.month, d.day, tzinfo=timezone.utc) - timedelta(days=d.weekday())


def business_hours(start: datetime, end: datetime) -> float:
    """Hours between two instants that fall on Monday to Friday (UTC); whole weeks count 120 h."""
    start, end = utc(start), utc(end)
    if end <= start:
        return 0.0
    seconds = 0.0
    day = datetime(start.year, start.month, start.day, tzinfo=timezone.utc)
    while day < end:
        if day.weekday() == 0 and day >= start and day + _WEEK <= end:
            seconds += 5 * 86400.0
            day += _WEEK
            continue
        if day.weekday() < 5:
            seconds += (min(end, day + _DAY) - max(start, day)).total_seconds()
        day += _DAY
    return seconds / 3600.0


def rate(part: int, whole: int) -> float | None:
    """A share rounded for display; None rather than a misleading 0 when there is nothing to divide."""
    return round(part / whole, 3) if whole else None


def median(values: Sequence[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def _rank(stage: str | None) -> int:
    """Funnel position of a stage name; -1 for 'other', unknown names and None."""
    try:
        return STAGE_RANK[Stage(stage)] if stage else -1
    except ValueError:
        return -1


def _days(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds() / 86400.0


def _iso(dt: datetime) -> str:
    return dt.isoformat()


def _sorted_map(counts: Mapping[str, Any]) -> dict[str, Any]:
    return {k: counts[k] for k in sorted(counts)}


def _stage_counts(rows: Iterable[ContactRow]) -> dict[str, int]:
    counts = Counter(r.stage for r in rows)
    return {s: counts.get(s, 0) for s in STAGE_COLUMNS}


# --------------------------------------------------------------------------- loading


def _contact_row(source: str, cid: str, email: str | None, data: str, crm_stage: str | None,
                 total: int | None, names: Mapping[tuple[str, str], str] | None = None) -> ContactRow:
    d = json.loads(data)
    owner = d.get("owner_id")
    stage = crm_stage or d.get("lifecycle_stage") or "unknown"
    if stage not in STAGE_COLUMNS:
        stage = "other"
    return ContactRow(
        source=source, id=cid, email=(email or "").strip().lower() or None,
        owner=owner_label(source, owner, names or {}), country=d.get("country") or _NO_COUNTRY,
        created_at=parse_time(d.get("created_at")), stage=stage, score=total,
        active=not (d.get("archived") or d.get("read_only")),
    )


def owner_label(source: str, owner_id: str | None, names: Mapping[tuple[str, str], str]) -> str:
    """The owner's name as the CRM knows it (owners read once per run), else the id; no owner is said so."""
    if not owner_id:
        return _NO_OWNER
    return names.get((source, owner_id)) or owner_id


def load_contacts(state: State) -> list[ContactRow]:
    names = state.owner_names()
    return [_contact_row(*r, names=names) for r in state.report_contacts()]


def load_changes(state: State) -> list[Change]:
    """Stage changes in time order (stable on write order for equal times): leadsync's writes, and the
    entries the CRMs' own history gives (no "from": the CRM said only when the stage was entered), deals'
    opened/won dates included, so a first backfill already shows when people really qualified."""
    out = []
    for source, cid, before, after, at in state.report_stage_history():
        when = parse_time(at)
        if when is not None:
            out.append(Change(source, cid, before, after, when))
    crm = [e for e in state.stage_history() if e.origin != "leadsync_write"]
    for e in [*crm, *deal_entries(state.opportunities())]:
        out.append(Change(e.source, e.contact_id, None, e.stage, utc(e.entered_at)))
    return sorted(out, key=lambda c: c.at)


def journeys(changes: Sequence[Change]) -> dict[tuple[str, str], Journey]:
    """Per contact: first MQL/SQL entry, and which changes moved back or re-entered after a move back."""
    by_contact: dict[tuple[str, str], list[Change]] = defaultdict(list)
    for ch in changes:
        by_contact[(ch.source, ch.contact_id)].append(ch)
    return {key: _journey(chs) for key, chs in by_contact.items()}


def _journey(changes: Sequence[Change]) -> Journey:
    first: dict[str, datetime] = {}
    regressions, recycles = [], []
    reached = -1
    for ch in changes:
        before, after = _rank(ch.from_stage), _rank(ch.to_stage)
        if before >= 0 and after >= 0 and after < before:
            regressions.append(ch.at)
        elif ch.from_stage is not None and before < reached:
            recycles.append(ch.at)  # the CRM moved them back between our runs, and they came round again
        first.setdefault(ch.to_stage, ch.at)
        reached = max(reached, before, after)
    return Journey(first.get("mql"), first.get("sql"), tuple(regressions), tuple(recycles), reached)


def make_window(now: datetime, since: datetime | None, until: datetime | None, weeks: int) -> Window:
    """Default: the last `weeks` Monday-weeks, the current (partial) one included, up to `now`."""
    end = utc(until) if until else utc(now)
    start = utc(since) if since else week_start(end) - (max(weeks, 1) - 1) * _WEEK
    if start >= end:
        raise ValueError(f"empty report window: since {start.isoformat()} is not before until {end.isoformat()}")
    first, out = week_start(start), []
    while first < end:
        out.append(first)
        first += _WEEK
    return Window(start, end, tuple(out))


# --------------------------------------------------------------------------- funnel now


def funnel_section(active: Sequence[ContactRow]) -> dict[str, Any]:
    """Contacts per stage now, in total and broken down by source, owner and country."""
    def by(attr: str) -> dict[str, dict[str, int]]:
        groups: dict[str, list[ContactRow]] = defaultdict(list)
        for r in active:
            groups[getattr(r, attr)].append(r)
        return {k: _stage_counts(groups[k]) for k in sorted(groups)}

    return {
        "stages": list(STAGE_COLUMNS),
        "total": _stage_counts(active),
        "by_source": by("source"),
        "by_owner": by("owner"),
        "by_country": by("country"),
    }


# --------------------------------------------------------------------------- persons (one human, counted once)


def persons_section(state: State, contacts: Sequence[ContactRow], journeys_: Mapping[tuple[str, str], Journey],
                    window: Window) -> dict[str, Any]:
    """The funnel and the flow with each human counted once: a person stands at the most advanced stage any of
    their live records holds (the stage leadsync writes into all of them) and became MQL or SQL when the first
    of their records did; plus the identity conflicts a person must settle."""
    from sync.persons import whole_identity  # the report reads the state only; identity is pure

    identity, _ = whole_identity(state)
    rows = {f"{r.source}:{r.id}": r for r in contacts}
    stages: list[str] = []
    merged: dict[tuple[str, str], Journey] = {}
    created: dict[tuple[str, str], datetime | None] = {}
    both = 0
    for p in identity.persons:
        live = [rows[k] for k in p.records if k in rows and rows[k].active]
        if not live:
            continue
        stages.append(max((r.stage for r in live), key=_rank))
        both += len({r.source for r in live}) > 1
        mine = [j for k in p.records if (j := journeys_.get(tuple(k.split(":", 1))))]  # type: ignore[arg-type]
        if mine:
            key = ("person", p.key)
            merged[key] = _merge_journeys(mine)
            created[key] = min((r.created_at for r in live if r.created_at), default=None)
    counts = Counter(stages)
    conflicts = [{"records": list(c.records), "reason": c.reason, "email": c.email} for c in identity.conflicts]
    keys = sorted(merged)
    weeks = []
    for start in window.weeks:
        def in_week(at: datetime | None, start: datetime = start) -> bool:
            return at is not None and window.contains(at) and start <= at < start + _WEEK
        figures = _flow_figures(keys, merged, created, in_week, window.until)
        weeks.append({"week_start": start.date().isoformat(), "new_mql": figures["new_mql"],
                      "new_sql": figures["new_sql"]})
    return {
        "persons": len(stages), "in_several_crms": both,
        "funnel": {s: counts.get(s, 0) for s in STAGE_COLUMNS},
        "flow": {"weeks": weeks, "total": _flow_figures(keys, merged, created, window.contains, window.until)},
        "identity_conflicts": len(conflicts), "identity_conflict_examples": conflicts[:20],
    }


def _merge_journeys(journeys_: Sequence[Journey]) -> Journey:
    """One person's journey from their records': the first entry into each stage is the person's."""
    def first(values: Iterable[datetime | None]) -> datetime | None:
        return min((v for v in values if v is not None), default=None)
    return Journey(first(j.first_mql for j in journeys_), first(j.first_sql for j in journeys_),
                   tuple(sorted(a for j in journeys_ for a in j.regressions)),
                   tuple(sorted(a for j in journeys_ for a in j.recycles)), max(j.max_rank for j in journeys_))


# --------------------------------------------------------------------------- flow over time


def _flow_figures(keys: Iterable[tuple[str, str]], journeys_: Mapping[tuple[str, str], Journey],
                  created: Mapping[tuple[str, str], datetime | None], in_bucket: InBucket, until: datetime
                  ) -> dict[str, Any]:
    """The flow figures for contacts' events that `in_bucket(datetime)` accepts."""
    new_mql = new_sql = cohort = converted = regressions = recycles = 0
    lead_to_mql: list[float] = []
    mql_to_sql: list[float] = []
    for key in keys:
        j = journeys_[key]
        regressions += sum(1 for at in j.regressions if in_bucket(at))
        recycles += sum(1 for at in j.recycles if in_bucket(at))
        if j.first_mql and in_bucket(j.first_mql):
            new_mql += 1
            cohort += 1
            if j.first_sql and j.first_mql < j.first_sql < until:
                converted += 1
            born = created.get(key)
            if born and born <= j.first_mql:
                lead_to_mql.append(_days(born, j.first_mql))
        if j.first_sql and in_bucket(j.first_sql):
            new_sql += 1
            if j.first_mql and j.first_mql < j.first_sql:
                mql_to_sql.append(_days(j.first_mql, j.first_sql))
    return {
        "new_mql": new_mql, "new_sql": new_sql,
        "mql_cohort": cohort, "mql_cohort_to_sql": converted, "mql_to_sql_rate": rate(converted, cohort),
        "median_days_lead_to_mql": median(lead_to_mql), "median_days_mql_to_sql": median(mql_to_sql),
        "regressions": regressions, "recycles": recycles,
    }


def flow_section(contacts: Sequence[ContactRow], journeys_: Mapping[tuple[str, str], Journey],
                 window: Window) -> dict[str, Any]:
    """Weekly new MQLs/SQLs, cohort MQL→SQL conversion, median days between stages, regressions/recycles.

    Conversion is by cohort: of the contacts that first became MQL in a week, the
    share that reached SQL afterwards (before `until`), so recent weeks read low
    until their cohort has had time to convert.
    """
    created = {(r.source, r.id): r.created_at for r in contacts}
    sources = sorted({k[0] for k in journeys_} | {r.source for r in contacts})
    keys = sorted(journeys_)

    def bucket(start: datetime) -> InBucket:
        end = start + _WEEK
        return lambda at: window.contains(at) and start <= at < end

    weeks = []
    for start in window.weeks:
        row: dict[str, Any] = {"week_start": start.date().isoformat()}
        row.update(_flow_figures(keys, journeys_, created, bucket(start), window.until))
        row["by_source"] = {
            s: {k: v for k, v in _flow_figures([k for k in keys if k[0] == s], journeys_, created, bucket(start),
                                               window.until).items() if k in ("new_mql", "new_sql")}
            for s in sources
        }
        weeks.append(row)
    total = _flow_figures(keys, journeys_, created, window.contains, window.until)
    total["by_source"] = {
        s: _flow_figures([k for k in keys if k[0] == s], journeys_, created, window.contains, window.until)
        for s in sources
    }
    return {"weeks": weeks, "total": total}


# --------------------------------------------------------------------------- hand-off health


def _task_figures(tasks: Sequence[dict[str, Any]], ref: datetime, sla_hours: float) -> dict[str, Any]:
    """Created/completed/open counts and SLA outcome for a set of confirmed tasks, as of `ref`."""
    done = within = late = open_ = overdue = 0
    hours: list[float] = []
    for t in tasks:
        completed = t["completed"]
        if completed is not None and completed <= ref:
            done += 1
            h = business_hours(t["start"], completed)
            hours.append(h)
            within, late = (within + 1, late) if h <= sla_hours else (within, late + 1)
        else:
            open_ += 1
            overdue += int(business_hours(t["start"], ref) > sla_hours)
    return {
        "created": len(tasks), "completed": done, "completed_within_sla": within, "completed_late": late,
        "open": open_, "overdue": overdue, "sla_met_rate": rate(within, done + overdue),
        "median_business_hours_to_complete": median(hours),
    }


def handoff_section(state: State, contacts: Sequence[ContactRow], window: Window, sla_hours: float
                    ) -> dict[str, Any]:
    """SQL follow-up tasks created in the window, by the task's holder: completed, late, still open, overdue.

    The holder is who the CRM says holds the task (read back on each sync: routed from a queue, given to
    the API user, or reassigned), never the record's owner; a task nobody holds is `(no task owner)`.
    `sqls_without_open_task` lists the records at SQL that no open follow-up task covers right now.

    A task's clock starts when the CRM confirmed it (else when it was planned).
    Tasks closed by `leadsync undo` (status 'undone') and tasks the CRM never
    confirmed are counted apart: neither says anything about the owner's speed.
    `overdue` = still open past the SLA at the end of the window; `completed_late`
    = closed, but after the SLA; `sla_met_rate` = within / (completed + overdue).
    """
    names = state.owner_names()
    tasks, other = [], Counter[str]()
    ledger = state.report_tasks()
    for t in ledger:
        start = parse_time(t["confirmed_at"]) or parse_time(t["created_at"])
        if not window.contains(start):
            continue
        if t["status"] != "created":
            other["undone" if t["status"] == "undone" else "not_confirmed"] += 1
            continue
        owner = owner_label(t["source"], t["owner_id"], names) if t["owner_id"] else _NO_TASK_OWNER
        tasks.append({"owner": owner, "source": t["source"], "start": start,
                      "completed": parse_time(t["completed_at"])})
    by_owner: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for t in tasks:
        by_owner[t["owner"]].append(t)
    return {
        "sla_business_hours": sla_hours,
        "total": {**_task_figures(tasks, window.until, sla_hours), "not_confirmed": other["not_confirmed"],
                  "undone": other["undone"]},
        "by_owner": {o: _task_figures(by_owner[o], window.until, sla_hours) for o in sorted(by_owner)},
        "sqls_without_open_task": _uncovered_sqls(contacts, ledger),
    }


def _uncovered_sqls(contacts: Sequence[ContactRow], ledger: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Active records at SQL with no open follow-up task: nobody is on the hook for them right now.

    `task_closed`: their task was completed or undone, yet they are still SQL; `never_had_task`: none was
    confirmed (tasks off, a hand-off still planned, or the stage set in the CRM by a person)."""
    tasks: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for t in ledger:
        tasks[(t["source"], t["contact_id"])].append(t)
    rows = []
    for r in contacts:
        if not r.active or r.stage != "sql":
            continue
        mine = [t for t in tasks[(r.source, r.id)] if t["status"] in ("created", "undone")]
        if any(t["status"] == "created" and not t["completed_at"] for t in mine):
            continue
        rows.append({"source": r.source, "id": r.id, "email": r.email, "owner": r.owner,
                     "task": "closed" if mine else "none"})
    return {"count": len(rows), "task_closed": sum(r["task"] == "closed" for r in rows),
            "never_had_task": sum(r["task"] == "none" for r in rows), "examples": rows[:20]}


# --------------------------------------------------------------------------- why leads qualify


def top_rules(state: State, new_sqls: Sequence[tuple[str, str]], n: int = TOP_RULES) -> dict[str, Any]:
    """Rules by the positive points they give the window's new SQLs (their latest stored score)."""
    points: Counter[str] = Counter()
    contacts: Counter[str] = Counter()
    meta: dict[str, tuple[str, str]] = {}
    for source, cid in new_sqls:
        detail = state.score_detail(source, cid) or {}
        for r in detail.get("reasons", []):
            if r.get("points", 0) > 0:
                points[r["rule"]] += r["points"]
                contacts[r["rule"]] += 1
                meta.setdefault(r["rule"], (r.get("kind", ""), r.get("text", "")))
    all_points = sum(points.values())
    ranked = sorted(points, key=lambda rule: (-points[rule], rule))[:n]
    return {
        "new_sqls": len(new_sqls),
        "points_total": all_points,
        "rules": [
            {"rule": rule, "kind": meta[rule][0], "example": meta[rule][1], "points": points[rule],
             "contacts": contacts[rule], "share_of_points": rate(points[rule], all_points)}
            for rule in ranked
        ],
    }


def _quartiles(values: Sequence[int]) -> tuple[float, float, float]:
    if len(values) == 1:
        return (float(values[0]),) * 3
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return round(q1, 1), round(q2, 1), round(q3, 1)


def score_distribution(active: Sequence[ContactRow]) -> dict[str, Any]:
    """Per stage now: count, min/quartiles/max/mean of the total score, and a histogram in bins of 10."""
    out: dict[str, Any] = {}
    for stage in STAGE_COLUMNS:
        values = sorted(r.score for r in active if r.stage == stage and r.score is not None)
        if not values:
            continue
        q1, q2, q3 = _quartiles(values)
        bins = Counter(math.floor(v / SCORE_BIN) * SCORE_BIN for v in values)
        out[stage] = {
            "count": len(values), "min": values[0], "p25": q1, "median": q2, "p75": q3, "max": values[-1],
            "mean": round(statistics.fmean(values), 1),
            "histogram": {str(b): bins[b] for b in sorted(bins)},
        }
    return {"bin_width": SCORE_BIN, "by_stage": out}


# --------------------------------------------------------------------------- forecast


def _history_rate(stage: str, contacts: Sequence[ContactRow], reached: Mapping[tuple[str, str], int]
                  ) -> dict[str, Any]:
    """Stage→customer from history: won / (won + lost) among contacts known to have reached `stage`.

    Known to have reached it: the stage history shows it (or beyond), or they hold it
    (or opportunity) now. Won: customer now. Lost: outside the funnel ('other') or
    back below `stage` now. Still at sql/opportunity: open, left out of the rate.
    """
    floor = _rank(stage)
    won = lost = open_ = 0
    for r in contacts:
        now_rank = _rank(r.stage) if r.stage != "unknown" else -2
        seen = reached.get((r.source, r.id), -1) >= floor or floor <= now_rank < _rank("customer")
        if not seen:
            continue
        if r.stage == "customer":
            won += 1
        elif r.stage == "other" or 0 <= now_rank < floor:
            lost += 1
        else:
            open_ += 1
    return {"won": won, "lost": lost, "open": open_, "rate": rate(won, won + lost)}


def _funnel_rate(stage: str, funnel_total: Mapping[str, int]) -> dict[str, Any]:
    """Stage→customer from today's funnel: customers / contacts at `stage` or beyond.

    A fallback for thin history; it counts customers that never went through the
    hand-off and leaves today's open deals as not won, so it is only indicative.
    """
    past = sum(funnel_total.get(s, 0) for s in FUNNEL[FUNNEL.index(stage):])
    customers = funnel_total.get("customer", 0)
    return {"customers": customers, "at_or_beyond": past, "rate": rate(customers, past)}


def _stage_forecast(stage: str, active: Sequence[ContactRow], reached: Mapping[tuple[str, str], int],
                    funnel_total: Mapping[str, int]) -> tuple[dict[str, Any], str | None]:
    """One stage's rates (both shown), the one used, the expected customers, and a note when thin."""
    history = _history_rate(stage, active, reached)
    funnel = _funnel_rate(stage, funnel_total)
    decided = history["won"] + history["lost"]
    thin = decided < MIN_DECIDED
    method = "history" if not thin else "funnel" if funnel["rate"] is not None else None
    used = history["rate"] if method == "history" else funnel["rate"]
    n = funnel_total.get(stage, 0)
    note = None
    if method is None:
        note = f"no {stage}→customer rate: no decided outcomes in the stage history and no customers to compare"
    elif thin:
        note = (f"{stage}→customer: only {decided} decided outcome(s) in the stage history (fewer than "
                f"{MIN_DECIDED}); using the funnel snapshot rate (customers ÷ contacts at {stage} or beyond): "
                "indicative only")
    figures = {"now": n, "rate": used, "method": method, "expected": None if used is None else round(n * used, 1),
               "thin_history": thin, "history": history, "funnel": funnel}
    return figures, note


def _deal_rate(opportunities: Sequence[Any]) -> dict[str, Any]:
    """Opportunity→customer from the CRM's closed deals: won / (won + lost), every closed deal on record."""
    won = sum(1 for o in opportunities if o.is_closed and o.is_won)
    lost = sum(1 for o in opportunities if o.is_closed and not o.is_won)
    return {"won": won, "lost": lost, "open": sum(1 for o in opportunities if not o.is_closed),
            "rate": rate(won, won + lost)}


def _use_deals(figures: dict[str, Any], deals: dict[str, Any], note: str | None) -> tuple[dict[str, Any], str | None]:
    """The opportunity stage's rate from closed deals once there are MIN_DECIDED of them (else as it was)."""
    figures["deals"] = deals
    if deals["won"] + deals["lost"] < MIN_DECIDED or deals["rate"] is None:
        return figures, note
    figures.update(rate=deals["rate"], method="deals", thin_history=False,
                   expected=round(figures["now"] * deals["rate"], 1))
    return figures, None


def forecast_section(active: Sequence[ContactRow], journeys_: Mapping[tuple[str, str], Journey],
                     funnel_total: Mapping[str, int], opportunities: Sequence[Any] = ()) -> dict[str, Any]:
    """Expected customers from today's SQLs and opportunities at their conversion rates, rates shown.

    The rate comes from stage history once it has MIN_DECIDED decided outcomes,
    else from the funnel snapshot, and the report says which and why. The
    opportunity stage prefers the CRM's closed deals (won / won + lost) once
    there are MIN_DECIDED of them.
    """
    reached = {k: j.max_rank for k, j in journeys_.items()}
    by_stage, notes = {}, []
    for stage in ("sql", "opportunity"):
        by_stage[stage], note = _stage_forecast(stage, active, reached, funnel_total)
        if stage == "opportunity":
            by_stage[stage], note = _use_deals(by_stage[stage], _deal_rate(opportunities), note)
        if note:
            notes.append(note)
    complete = all(p["expected"] is not None for p in by_stage.values())
    expected = round(sum(p["expected"] or 0.0 for p in by_stage.values()), 1)
    return {
        "expected_customers": expected if complete else None,
        "complete": complete,
        "thin_history": any(p["thin_history"] for p in by_stage.values()),
        "min_decided": MIN_DECIDED,
        "by_stage": by_stage,
        "notes": notes,
    }


# --------------------------------------------------------------------------- data quality


def _duplicates(rows: Iterable[ContactRow]) -> tuple[int, int]:
    """(emails held by more than one record, records holding them)."""
    counts = Counter(r.email for r in rows if r.email)
    dup = [n for n in counts.values() if n > 1]
    return len(dup), sum(dup)


def data_quality_section(state: State, contacts: Sequence[ContactRow], window: Window) -> dict[str, Any]:
    """Missing/invalid emails, duplicates within and across CRMs, held failures, recent mapping issues.

    Emails are compared normalised (trimmed, lower-cased) and validated with the
    scorer's own pattern. Mapping issues are counted once per (source, record,
    field) seen in the window: the same bad value is re-reported on every pull.
    """
    active = [r for r in contacts if r.active]
    by_source: dict[str, Any] = {}
    for source in sorted({r.source for r in contacts}):
        rows = [r for r in active if r.source == source]
        emails, dup_records = _duplicates(rows)
        by_source[source] = {
            "contacts": sum(1 for r in contacts if r.source == source), "active": len(rows),
            "missing_email": sum(1 for r in rows if not r.email),
            "invalid_email": sum(1 for r in rows if r.email and not EMAIL_RE.match(r.email)),
            "duplicate_emails": emails, "duplicate_records": dup_records,
        }
    sources_by_email: dict[str, set[str]] = defaultdict(set)
    for r in active:
        if r.email and EMAIL_RE.match(r.email):
            sources_by_email[r.email].add(r.source)
    cross = sorted(e for e, s in sources_by_email.items() if len(s) > 1)
    return {
        "by_source": by_source,
        "missing_email": sum(v["missing_email"] for v in by_source.values()),
        "invalid_email": sum(v["invalid_email"] for v in by_source.values()),
        "duplicates_within_crm": sum(v["duplicate_emails"] for v in by_source.values()),
        "duplicates_cross_crm": len(cross),
        "duplicates_cross_crm_examples": cross[:10],
        "failures": _failures(state),
        "mapping_issues": _issues(state, window),
    }


def _failures(state: State) -> dict[str, Any]:
    rows = state.failures()
    codes = Counter(f["error_code"] or "(none)" for f in rows)
    return {
        "total": len(rows),
        "by_source": _sorted_map(Counter(f["source"] for f in rows)),
        "by_status": _sorted_map(Counter(f["status"] for f in rows)),
        "by_kind": _sorted_map(Counter(f["kind"] for f in rows)),
        "top_errors": [{"error_code": c, "count": n} for c, n in sorted(codes.items(), key=lambda x: (-x[1], x[0]))[:5]],
    }


def _issues(state: State, window: Window) -> dict[str, Any]:
    seen: dict[tuple[str, str, str], str] = {}
    for source, record_id, field, message, at in state.report_issues():
        if window.contains(parse_time(at)):
            seen[(source, record_id, field)] = message
    fields = Counter(k[2] for k in seen)
    return {
        "total": len(seen),
        "by_source": _sorted_map(Counter(k[0] for k in seen)),
        "top_fields": [{"field": f, "count": n} for f, n in sorted(fields.items(), key=lambda x: (-x[1], x[0]))[:5]],
    }


# --------------------------------------------------------------------------- the report


DEFINITIONS: dict[str, str] = {
    "stage_now": "scores.crm_stage (what the CRM holds after the last run), else the snapshot's stage",
    "inactive": "archived or read-only records (e.g. converted Salesforce leads): counted, not in the funnel",
    "new_mql/new_sql": "a contact's first recorded entry into the stage, by the week it happened",
    "mql_to_sql_rate": "of a week's new MQLs (cohort), the share that reached SQL before the window's end",
    "median_days_lead_to_mql": "contact created_at to first MQL, for that week's new MQLs",
    "median_days_mql_to_sql": "first MQL to first SQL, for that week's new SQLs that had been MQL",
    "regressions": "recorded moves to a lower funnel stage",
    "recycles": "recorded changes out of a stage below one the contact had already reached",
    "sla": "business hours (Mon-Fri, UTC) from the task's confirmation to completion or to the window's end",
    "forecast": "today's SQLs and opportunities x their rate to customer: won/(won+lost) in the stage history, "
                "or customers/(contacts at the stage or beyond) in today's funnel while history is thin; "
                "opportunities use the CRM's closed deals (won/(won+lost)) once there are enough of them",
    "backfill": "stage entries come from the CRMs' own history where they keep it (field history, stage-date "
                "properties, conversion and created dates, opportunities) and from leadsync's writes otherwise; "
                "history.origins says which",
    "history": "per person: first entry into each stage over all their records; cohorts = of a week's entrants "
               "into a stage, those that reached a later one before the window's end",
    "time": "all times UTC; weeks start Monday",
}


def build_report(state: State, *, now: datetime, since: datetime | None = None, until: datetime | None = None,
                 weeks: int = 12, sla_hours: float = 24) -> dict[str, Any]:
    """Every figure of the funnel report as one JSON-ready dict with a deterministic key order.

    `now` is the report's clock (pure: no wall clock read); the flow window is
    [since, until), by default the last `weeks` Monday-weeks up to `now`.
    The funnel, score distribution, forecast and duplicates describe the store now.
    """
    now = utc(now)
    window = make_window(now, since, until, weeks)
    contacts = load_contacts(state)
    active = [r for r in contacts if r.active]
    journeys_ = journeys(load_changes(state))
    funnel = funnel_section(active)
    new_sqls = sorted(k for k, j in journeys_.items() if window.contains(j.first_sql))
    forecast = forecast_section(active, journeys_, funnel["total"], state.opportunities())
    notes = list(forecast["notes"])
    if not journeys_:
        notes.append("no stage history yet: flow and conversion figures are empty")
    return {
        "generated_at": _iso(now),
        "window": {"since": _iso(window.since), "until": _iso(window.until), "weeks": len(window.weeks),
                   "sla_business_hours": sla_hours, "timezone": "UTC", "week_starts": "monday"},
        "totals": {
            "contacts": len(contacts), "active": len(active), "inactive": len(contacts) - len(active),
            "by_source": _sorted_map(Counter(r.source for r in contacts)),
        },
        "funnel": funnel,
        "persons": persons_section(state, contacts, journeys_, window),
        "flow": flow_section(contacts, journeys_, window),
        "history": history_section(person_histories(state), window.since, window.until, window.weeks),
        "handoff": handoff_section(state, contacts, window, sla_hours),
        "qualification": {"top_rules": top_rules(state, new_sqls), "score_distribution": score_distribution(active)},
        "forecast": forecast,
        "data_quality": data_quality_section(state, contacts, window),
        "definitions": dict(DEFINITIONS),
        "notes": notes,
    }
