"""The scorer: one contact and its engagement in, one explained Score out.

Pure and deterministic: no I/O, no clock (`now` is an argument), no
randomness. Every point in `total` is carried by exactly one Reason, so
`sum(r.points for r in s.reasons) == s.total` always holds and the number a
rep sees can be audited line by line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timezone
from operator import attrgetter
from typing import Any

from mapping.model import STAGE_RANK, Contact, Engagement, EngagementKind, Stage
from scoring.compiled import EMAIL_RE, CDisqualifier, CompiledModel, CSignal, compiled, meets
from scoring.result import Reason, ReasonKind, Score
from scoring.schema import ScoringModel

__all__ = ["Reason", "Score", "score"]

_DAY = 86400.0
_WHEN = attrgetter("occurred_at", "id")
_BOUNCE = EngagementKind.HARD_BOUNCE


def _timestamp(at: datetime) -> float:
    """POSIX seconds; a naive datetime is read as UTC, so results never depend on the machine's zone."""
    return (at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)).timestamp()


def _stamp(e: Engagement) -> str:
    where = f" {e.detail}" if e.detail else ""
    return f"{e.occurred_at.date().isoformat()} {e.kind}{where} [{e.id}]"


def _evidence(hits: list[Engagement], limit: int) -> tuple[str, ...]:
    """The most recent `limit` engagements, newest first, and how many earlier ones were left out."""
    ordered = sorted(hits, key=_WHEN, reverse=True)
    shown = tuple([_stamp(e) for e in ordered[:limit]])
    if len(ordered) > limit:
        shown += (f"… and {len(ordered) - limit} earlier",)
    return shown


def _field_reasons(cm: CompiledModel, contact: Contact) -> list[Reason]:
    """Fit and property rules, in model order; within a group only the first match counts."""
    matched = []
    for slot in cm.slots:
        found = slot.memo.get(slot.get(contact))
        matched.extend(found if found is not None else slot.hits(slot.get(contact)))
    if cm.slot_count > 1:
        matched.sort(key=_first)
    reasons: list[Reason] = []
    done: set[str] = set()
    for _, group, reason in matched:
        if group is not None:
            if group in done:
                continue
            done.add(group)
        if reason.points:
            reasons.append(reason)
    return reasons


def _first(hit: tuple[int, Any, Any]) -> int:
    return hit[0]


def _cap_reason(kind: ReasonKind, total: int, cap: int | None) -> Reason | None:
    if cap is None or total <= cap:
        return None
    return Reason(f"{kind}_cap", kind, cap - total, f"{kind} capped at {cap}")


def _burst(ages: list[float], sig: CSignal) -> int:
    """Most matching engagements inside any sliding `window`; 0 when below `min_count`."""
    if len(ages) < sig.min_count:
        return 0
    if sig.window == math.inf:
        return len(ages)
    times = sorted(ages)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] > sig.window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best if best >= sig.min_count else 0


def _signal_text(sig: CSignal, count: int) -> str:
    days = sig.window_days if sig.window_days is not None else sig.lookback / _DAY
    return sig.reason.format(count=count, days=f"{days:g}")


def _disqualifies(d: CDisqualifier, contact: Contact, bounced: bool) -> bool:
    if d.check is None:
        return d.test is not None and d.get is not None and bool(d.test(d.get(contact)))
    if d.check == "invalid_email":
        return not contact.email or EMAIL_RE.match(contact.email.strip()) is None
    if d.check == "do_not_contact":
        return contact.do_not_contact
    if d.check == "archived":
        return contact.archived
    return bounced  # hard_bounce


class _Tally:
    """Per-call accumulators for the engagement pass (one allocation per call, not per engagement)."""

    __slots__ = ("decayed", "hits", "sig_hits", "sig_ages", "interests", "idle", "bounced")

    def __init__(self, cm: CompiledModel) -> None:
        n = len(cm.engagement_rules)
        self.decayed = [0.0] * n
        self.hits: list[list[Engagement] | None] = [None] * n
        self.sig_hits: list[list[Engagement]] = [[] for _ in cm.signals]
        self.sig_ages: list[list[float]] = [[] for _ in cm.signals]
        self.interests: dict[str, float] = {}
        self.idle = math.inf
        self.bounced = False


def _tally(cm: CompiledModel, engagements: Sequence[Engagement], now_ts: float) -> _Tally:
    """One pass over the engagements: decayed points per rule, signal candidates, interests.

    The hot loop of the scorer: everything per distinct engagement comes memoised from
    `cm.classify`, so each engagement costs a timestamp, a dict lookup and some arithmetic.
    """
    t = _Tally(cm)
    rules, decayed, hits, sig_hits, sig_ages = cm.engagement_rules, t.decayed, t.hits, t.sig_hits, t.sig_ages
    lookbacks, memo, campaign_kinds, classify = cm.signal_lookbacks, cm.memo, cm.campaign_kinds, cm.classify
    irate, iwindow, interests, idle, exp = cm.interest_rate, cm.interest_window, t.interests, math.inf, math.exp
    for e in engagements:
        at = e.occurred_at
        age = now_ts - (at.timestamp() if at.tzinfo is not None else _timestamp(at))
        if age < 0:
            continue
        kind = e.kind
        found = None if kind in campaign_kinds else memo[kind].get(e.detail)
        ri, sigs, interest, negative = found or classify(kind, e.detail, e.campaign)
        if negative:
            t.bounced = t.bounced or kind is _BOUNCE
        elif age < idle:
            idle = age
        if ri >= 0:
            rule = rules[ri]
            if age <= rule.window:
                decayed[ri] += rule.points * exp(-rule.rate * age) if rule.rate else rule.points
                bucket = hits[ri]
                if bucket is None:
                    hits[ri] = [e]
                else:
                    bucket.append(e)
        for si in sigs:
            if age <= lookbacks[si]:
                sig_hits[si].append(e)
                sig_ages[si].append(age)
        if interest is not None and age <= iwindow:
            interests[interest] = interests.get(interest, 0.0) + (exp(-irate * age) if irate else 1.0)
    t.idle = idle
    return t


def _engagement_reasons(cm: CompiledModel, t: _Tally) -> list[Reason]:
    reasons = []
    for ri, bucket in enumerate(t.hits):
        if bucket is None:
            continue
        rule = cm.engagement_rules[ri]
        points = round(max(-rule.cap, min(rule.cap, t.decayed[ri])))
        if points == 0:
            continue
        count = len(bucket)
        text = rule.reason.format(count=count) if rule.counted else (
            rule.reason if count == 1 else f"{rule.reason} ({count}×)")
        reasons.append(Reason(rule.id, "engagement", points, text, _evidence(bucket, cm.max_evidence),
                              rule.points * count, t.decayed[ri]))
    return reasons


def score(model: ScoringModel, contact: Contact, engagements: Sequence[Engagement], now: datetime) -> Score:
    """Score one contact as of `now` (engagements after `now` are ignored)."""
    cm = compiled(model)
    now_ts = _timestamp(now)
    t = _tally(cm, engagements, now_ts)
    reasons = _field_reasons(cm, contact)
    reasons += _engagement_reasons(cm, t)
    fit = sum(r.points for r in reasons if r.kind == "fit")
    engagement = sum(r.points for r in reasons if r.kind == "engagement")

    signals: list[str] = []
    fast_track = Stage.SUBSCRIBER
    for si, sig in enumerate(cm.signals):
        count = _burst(t.sig_ages[si], sig)
        if not count:
            continue
        text = _signal_text(sig, count)
        signals.append(text)
        reasons.append(Reason(sig.id, "signal", sig.points, text, _evidence(t.sig_hits[si], cm.max_evidence),
                              sig.points, sig.points))
        engagement += sig.points
        if fit >= sig.min_fit and STAGE_RANK[sig.stage] > STAGE_RANK[fast_track]:
            fast_track = sig.stage

    disqualified: str | None = None
    for d in cm.disqualifiers:
        if _disqualifies(d, contact, t.bounced):
            disqualified = disqualified or d.reason
            reasons.append(Reason(d.id, "disqualifier", d.points, d.reason, (), d.points, d.points))
            fit += d.points

    for cap in (_cap_reason("fit", fit, cm.fit_cap), _cap_reason("engagement", engagement, cm.engagement_cap)):
        if cap is not None:
            reasons.append(cap)
            fit, engagement = (fit + cap.points, engagement) if cap.kind == "fit" else (
                fit, engagement + cap.points)

    stage = next((s for s, th in cm.stage_tests if meets(th, fit, engagement)), Stage.SUBSCRIBER)
    if STAGE_RANK[fast_track] > STAGE_RANK[stage]:
        stage = fast_track
    top = sorted(t.interests.items(), key=lambda kv: (-kv[1], kv[0]))[: cm.interest_top]
    return Score(fit, engagement, fit + engagement, stage, tuple(reasons), tuple(signals), disqualified,
                 tuple(k for k, _ in top), None if t.idle == math.inf else t.idle / _DAY, model.label)
