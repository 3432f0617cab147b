"""Owner routing: who works a hand-off. Pure: no I/O, no clock (`today` is an argument).

Rules run in order and the first that names an available owner wins; every step that was tried says why in
`Assignment.reasons`, which goes into the task body and `leadsync explain`:
1. keep the person's existing owner, if that owner is an active user, not away, and can own the record the
   task goes to (a queue is never kept: a queue is what routing routes from);
2. keep the rep leadsync routed the person to before, while that rep is available: a re-run, a retry or a
   resumed crash never moves a person to another rep;
3. territory / segment rules (country, region, company size, industry → a team), then weighted round robin
   inside the team over the members who are available (active in the CRM, not away);
4. the fallback rep, else the fallback owner or queue id per CRM.

Round robin is "largest deficit first": each available member's fair share of the team's assignments so far
(plus this one) is `(n + 1) * weight / W`; the member furthest below it is picked (ties: fewer assignments,
then config order). With counts persisted per team and member, every member's count stays within one of its
weighted share over any number of assignments, across runs and crashes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from mapping.model import Stage

#: Salesforce queue ids (Group) start with 00G: a queue owns a record until someone takes it.
QUEUE_PREFIX = "00G"


@dataclass(frozen=True, slots=True)
class Rep:
    name: str
    ids: Mapping[str, str]  # CRM → that CRM's owner / user id
    away: tuple[tuple[date, date], ...] = ()  # inclusive date ranges

    def away_on(self, day: date) -> tuple[date, date] | None:
        return next(((a, b) for a, b in self.away if a <= day <= b), None)


@dataclass(frozen=True, slots=True)
class Team:
    name: str
    members: tuple[tuple[str, int], ...]  # (rep name, weight ≥ 1), in config order


@dataclass(frozen=True, slots=True)
class Rule:
    """A territory / segment rule: every condition given must hold (an empty one is no condition)."""

    name: str
    team: str
    countries: frozenset[str] = frozenset()  # compared case-insensitively
    industries: frozenset[str] = frozenset()
    min_size: int | None = None
    max_size: int | None = None

    def match(self, facts: Facts) -> str | None:
        """Why the rule matches the person, or None."""
        why = []
        if self.countries:
            if not facts.country or facts.country.strip().casefold() not in self.countries:
                return None
            why.append(f"country {facts.country}")
        if self.industries:
            if not facts.industry or facts.industry.strip().casefold() not in self.industries:
                return None
            why.append(f"industry {facts.industry}")
        if self.min_size is not None or self.max_size is not None:
            size = facts.company_size
            if size is None or (self.min_size is not None and size < self.min_size) or \
                    (self.max_size is not None and size > self.max_size):
                return None
            why.append(f"company size {size}")
        return ", ".join(why) or "matches everyone"


@dataclass(frozen=True, slots=True)
class RoutingPolicy:
    reps: Mapping[str, Rep] = field(default_factory=dict)
    teams: Mapping[str, Team] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()
    keep_active_owner: bool = True
    fallback: str | None = None  # a rep name
    fallback_ids: Mapping[str, str] = field(default_factory=dict)  # CRM → owner or queue id
    write_owner: Mapping[str, frozenset[Stage]] = field(default_factory=dict)  # CRM → stages leadsync may set it at

    def rep_by_id(self, crm: str, owner_id: str) -> Rep | None:
        return next((r for r in self.reps.values() if r.ids.get(crm) == owner_id), None)

    def may_write(self, crm: str, stage: Stage | None) -> bool:
        return stage is not None and stage in self.write_owner.get(crm, frozenset())


@dataclass(frozen=True, slots=True)
class Facts:
    """The person as routing sees it: the merged profile's segment fields and their records' owners."""

    target: str  # the CRM of the record the task goes to
    country: str | None = None
    industry: str | None = None
    company_size: int | None = None
    owners: tuple[tuple[str, str], ...] = ()  # (CRM, owner id) of the live records, the target's first


@dataclass(frozen=True, slots=True)
class Availability:
    """Who can take work today, as read from the CRMs (once per run)."""

    inactive: Mapping[str, frozenset[str]] = field(default_factory=dict)  # CRM → inactive owner ids
    read: frozenset[str] = frozenset()  # CRMs whose users were read; elsewhere a user counts as active


@dataclass(frozen=True, slots=True)
class Previous:
    """The assignment persisted for this person by an earlier run."""

    rep: str | None
    team: str | None
    rule: str
    at: str


@dataclass(frozen=True, slots=True)
class Assignment:
    rule: str  # "existing-owner", "previous", a rule's name, "fallback", or "none"
    owner_id: str | None  # the owner in the target CRM (None: leave the CRM's default)
    rep: str | None = None
    team: str | None = None
    reasons: tuple[str, ...] = ()
    counted: bool = False  # a round-robin turn was taken (the team's counter moves on)

    def text(self) -> str:
        return "Routed: " + "; ".join(self.reasons) + "."


def _unavailable(rep: Rep, crm: str, avail: Availability, today: date) -> str | None:
    """Why `rep` cannot take a hand-off in `crm` today, or None."""
    oid = rep.ids.get(crm)
    if not oid:
        return f"{rep.name} has no {crm} user"
    for c, i in rep.ids.items():
        if i in avail.inactive.get(c, frozenset()):
            return f"{rep.name} is inactive in {c}"
    away = rep.away_on(today)
    if away:
        return f"{rep.name} is away until {away[1].isoformat()}"
    return None


def _existing(policy: RoutingPolicy, facts: Facts, avail: Availability, today: date,
              reasons: list[str]) -> Assignment | None:
    for crm, oid in facts.owners:
        rep = policy.rep_by_id(crm, oid)
        label = rep.name if rep else f"{crm} owner {oid}"
        if oid.startswith(QUEUE_PREFIX):
            reasons.append(f"existing owner {oid} is a queue")
            continue
        if oid in avail.inactive.get(crm, frozenset()):
            reasons.append(f"existing owner {label} is inactive in {crm}")
            continue
        if rep is not None:
            why = _unavailable(rep, facts.target, avail, today)
            if why:
                reasons.append(f"existing owner: {why}")
                continue
            reasons.append(f"kept the existing owner {rep.name} (active)")
            return Assignment("existing-owner", rep.ids[facts.target], rep.name, None, tuple(reasons))
        if crm == facts.target:
            reasons.append(f"kept the existing owner {oid} (active in {crm})")
            return Assignment("existing-owner", oid, None, None, tuple(reasons))
        reasons.append(f"existing owner {label} is not a configured rep with a {facts.target} user")
    return None


def pick(team: Team, available: Sequence[str], counts: Mapping[str, int]) -> str:
    """Largest deficit first (see module doc): deterministic, integers only."""
    weights = {name: w for name, w in team.members if name in available}
    total_w = sum(weights.values())
    n = sum(counts.get(name, 0) for name in weights)
    order = {name: i for i, (name, _) in enumerate(team.members)}
    return max(weights, key=lambda r: ((n + 1) * weights[r] - counts.get(r, 0) * total_w,
                                       -counts.get(r, 0), -order[r]))


def route(policy: RoutingPolicy, facts: Facts, avail: Availability, today: date,
          counters: Mapping[str, Mapping[str, int]], previous: Previous | None = None) -> Assignment:
    """The owner of one person's hand-off, with every reason."""
    reasons: list[str] = []
    if policy.keep_active_owner:
        kept = _existing(policy, facts, avail, today, reasons)
        if kept:
            return kept
    if previous is not None and previous.rep in policy.reps:
        rep = policy.reps[previous.rep]
        why = _unavailable(rep, facts.target, avail, today)
        if why is None:
            reasons.append(f"kept {rep.name}, routed on {previous.at[:10]} by {previous.rule!r} (stable across runs)")
            return Assignment("previous", rep.ids[facts.target], rep.name, previous.team, tuple(reasons))
        reasons.append(f"routed before to {why}")
    for rule in policy.rules:
        why = rule.match(facts)
        if why is None:
            continue
        team = policy.teams[rule.team]
        available = []
        for name, _ in team.members:
            skip = _unavailable(policy.reps[name], facts.target, avail, today)
            if skip:
                reasons.append(f"skipped {skip}")
            else:
                available.append(name)
        if not available:
            reasons.append(f"rule {rule.name!r} ({why}) → team {team.name}: nobody available")
            continue
        name = pick(team, available, counters.get(team.name, {}))
        weight = dict(team.members)[name]
        reasons.append(f"rule {rule.name!r} ({why}) → team {team.name}; round robin picked {name} "
                       f"(weight {weight}, {counters.get(team.name, {}).get(name, 0)} earlier)")
        return Assignment(rule.name, policy.reps[name].ids[facts.target], name, team.name, tuple(reasons), True)
    if policy.fallback:
        rep = policy.reps[policy.fallback]
        why = _unavailable(rep, facts.target, avail, today)
        if why is None:
            reasons.append(f"no rule matched with someone available: fallback {rep.name}")
            return Assignment("fallback", rep.ids[facts.target], rep.name, None, tuple(reasons))
        reasons.append(f"fallback {why}")
    queue = policy.fallback_ids.get(facts.target)
    if queue:
        reasons.append(f"fallback owner {queue}")
        return Assignment("fallback", queue, None, None, tuple(reasons))
    reasons.append("no rule or fallback named an owner: the CRM's default applies")
    return Assignment("none", None, None, None, tuple(reasons))
