"""The model turned into fast runtime tables, once per model.

The scorer runs tens of thousands of times a second, so everything that does
not depend on the contact is done here: regexes compiled, lists case-folded,
decay rates precomputed, and each distinct (kind, detail, campaign) classified
once and memoised (the same few URLs and assets recur across every contact).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from mapping.model import Contact, EngagementKind, Stage
from scoring.regex import compile_search
from scoring.result import Reason
from scoring.schema import (
    Disqualifier,
    EngagementRule,
    FitRule,
    Predicate,
    PropertyRule,
    ScoringModel,
    Signal,
    Threshold,
)

_DAY = 86400.0
_LN2 = math.log(2.0)
_CACHE_LIMIT = 200_000
_NEGATIVE_KINDS = frozenset({EngagementKind.UNSUBSCRIBE, EngagementKind.HARD_BOUNCE})
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")

Test = Callable[[Any], bool]
Getter = Callable[[Contact], Any]


def url_path(detail: str) -> str:
    """The path of a URL (origin and query dropped), or the text itself if it is not a URL."""
    scheme = detail.find("://")
    if scheme < 0:
        return detail
    slash = detail.find("/", scheme + 3)
    path = detail[slash:] if slash >= 0 else "/"
    return path.split("?", 1)[0].split("#", 1)[0] or "/"


def email_domain(contact: Contact) -> str | None:
    email = contact.email
    if not email or "@" not in email:
        return None
    return email.rsplit("@", 1)[1].strip().lower() or None


def to_number(value: Any) -> float | None:
    """A finite number from an int, float or text like "1,200"; None for anything else."""
    if value is None:
        return None
    try:
        x = float(value) if isinstance(value, int | float) else float(str(value).replace(",", ""))
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def compile_test(pred: Predicate, lists: dict[str, tuple[str, ...]]) -> Test:
    """A predicate as a function of an already-normalised value (None when missing)."""
    if pred.missing is not None:
        want = pred.missing
        return lambda v: (v is None) is want
    if pred.equals is not None:
        target = pred.equals.strip().casefold()
        return lambda v: v is not None and str(v).casefold() == target
    if pred.in_ is not None or pred.in_list is not None:
        options = pred.in_ if pred.in_ is not None else lists[pred.in_list or ""]
        members = frozenset(o.strip().casefold() for o in options)
        return lambda v: v is not None and str(v).casefold() in members
    if pred.not_in is not None:
        excluded = frozenset(o.strip().casefold() for o in pred.not_in)
        return lambda v: v is not None and str(v).casefold() not in excluded
    if pred.regex is not None:
        search = compile_search(pred.regex)
        return lambda v: v is not None and search(str(v)) is not None
    low = -math.inf if pred.min is None else pred.min
    high = math.inf if pred.max is None else pred.max

    def in_range(v: Any) -> bool:
        x = to_number(v)
        return x is not None and low <= x < high

    return in_range


def _normaliser(missing: frozenset[str]) -> Callable[[Any], Any]:
    def norm(value: Any) -> Any:
        if value is None or isinstance(value, int | float):
            return value
        text = str(value).strip()
        return None if text.casefold() in missing else text

    return norm


def _field_getter(name: str) -> Getter:
    return email_domain if name == "email_domain" else attrgetter(name)


def _extra_getter(column: str) -> Getter:
    return lambda c: c.extra.get(column)


@dataclass(frozen=True, slots=True)
class CFieldRule:
    """A fit or property rule, compiled; `slot` is the FieldSlot whose value it tests."""

    id: str
    slot: int
    test: Test
    axis: str
    points: int
    reason: str
    group: str | None


#: One rule matching one field value: (rule index, group, its Reason, built once).
FieldHit = tuple[int, str | None, Reason]


class FieldSlot:
    """One contact field (or extra column) that rules test, with a memo of what each value matches.

    The same titles, industries and sizes recur across a portal, so each distinct
    raw value is normalised and run through its rules once.
    """

    __slots__ = ("label", "get", "norm", "rules", "memo")

    def __init__(self, label: str, get: Getter, norm: Callable[[Any], Any]) -> None:
        self.label = label
        self.get = get
        self.norm = norm
        self.rules: list[tuple[int, CFieldRule]] = []
        self.memo: dict[Any, tuple[FieldHit, ...]] = {}

    def hits(self, raw: Any) -> tuple[FieldHit, ...]:
        found = self.memo.get(raw)
        if found is None:
            value = self.norm(raw)
            shown = "(missing)" if value is None else str(value)[:80]
            found = tuple(
                (i, r.group, Reason(r.id, "fit" if r.axis == "fit" else "engagement", r.points, r.reason,
                                    (f"{self.label}: {shown}",), float(r.points), float(r.points)))
                for i, r in self.rules if r.test(value))
            if len(self.memo) < _CACHE_LIMIT:
                self.memo[raw] = found
        return found


@dataclass(frozen=True, slots=True)
class CEngagementRule:
    id: str
    points: float
    reason: str
    counted: bool  # reason template has {count}
    cap: float
    rate: float  # decay per second (0 = none)
    window: float  # seconds


@dataclass(frozen=True, slots=True)
class CSignal:
    id: str
    reason: str
    min_count: int
    window: float  # seconds; inf when any count in the lookback will do
    window_days: float | None
    lookback: float  # seconds
    stage: Stage
    min_fit: int
    points: int


@dataclass(frozen=True, slots=True)
class CDisqualifier:
    id: str
    reason: str
    check: str | None
    get: Getter | None
    test: Test | None
    points: int


@dataclass(frozen=True, slots=True)
class Matcher:
    kinds: frozenset[EngagementKind] | None
    url: Callable[[str], Any] | None
    detail: Callable[[str], Any] | None
    campaign: Callable[[str], Any] | None

    def matches(self, kind: EngagementKind, detail: str, path: str, campaign: str) -> bool:
        if self.kinds is None:
            if kind in _NEGATIVE_KINDS:
                return False
        elif kind not in self.kinds:
            return False
        return ((self.url is None or self.url(path) is not None)
                and (self.detail is None or self.detail(detail) is not None)
                and (self.campaign is None or self.campaign(campaign) is not None))


def _matcher(rule: EngagementRule | Signal) -> Matcher:
    def rx(pattern: str | None) -> Callable[[str], Any] | None:
        return None if pattern is None else compile_search(pattern)

    return Matcher(frozenset(rule.kind) or None, rx(rule.url), rx(rule.detail), rx(rule.campaign))


#: What one distinct engagement means: its rule (-1 if none), the signals it feeds, its interest
#: key, and whether it is a negative kind (unsubscribe, bounce) that does not count as activity.
Classified = tuple[int, tuple[int, ...], str | None, bool]


class CompiledModel:
    """Runtime form of a ScoringModel; built by `compiled(model)`, never by hand."""

    def __init__(self, model: ScoringModel) -> None:
        fit_missing = frozenset({""})
        prop_missing = frozenset(v.strip().casefold() for v in model.missing_values) | fit_missing
        self.slots: list[FieldSlot] = []
        self._slot_keys: list[str] = []
        rules = [self._field_rule(r, r.field, f"field:{r.field}", _field_getter(r.field), fit_missing,
                                  "fit", model) for r in model.fit]
        rules += [self._field_rule(r, r.column, f"extra:{r.column}", _extra_getter(r.column), prop_missing,
                                   r.axis, model) for r in model.properties]
        for i, rule in enumerate(rules):
            self.slots[rule.slot].rules.append((i, rule))
        self.slot_count = len(self.slots)
        self.engagement_rules = tuple(self._engagement(r, model) for r in model.engagement)
        self.engagement_matchers = tuple(_matcher(r) for r in model.engagement)
        self.signals = tuple(self._signal(s) for s in model.signal)
        self.signal_matchers = tuple(_matcher(s) for s in model.signal)
        self.signal_lookbacks = tuple(s.lookback for s in self.signals)
        self.disqualifiers = tuple(self._disqualifier(d, model, _normaliser(fit_missing))
                                   for d in model.disqualifier)
        self.stage_tests = tuple((stage, t) for stage, t in (
            (Stage.SQL, model.stages.sql), (Stage.MQL, model.stages.mql), (Stage.LEAD, model.stages.lead)))
        self.fit_cap = model.caps.fit
        self.engagement_cap = model.caps.engagement
        self.interest_kinds = frozenset(model.interests.kind)
        self.interest_exclude = (compile_search(model.interests.exclude)
                                 if model.interests.exclude else None)
        self.interest_top = model.interests.top
        self.interest_rate = _rate(model.decay.half_life_days)
        self.interest_window = math.inf if model.decay.window_days is None else model.decay.window_days * _DAY
        self.max_evidence = model.explain.max_evidence
        self.campaign_kinds = frozenset(
            k for r in (*model.engagement, *model.signal) if r.campaign is not None
            for k in (r.kind or tuple(EngagementKind)))
        self.memo: dict[EngagementKind, dict[str, Classified]] = {k: {} for k in EngagementKind}

    def _field_rule(self, rule: FitRule | PropertyRule, label: str, key: str, get: Getter,
                    missing: frozenset[str], axis: str, model: ScoringModel) -> CFieldRule:
        if key in self._slot_keys:
            slot = self._slot_keys.index(key)
        else:
            slot = len(self.slots)
            self._slot_keys.append(key)
            self.slots.append(FieldSlot(label, get, _normaliser(missing)))
        return CFieldRule(rule.id, slot, compile_test(rule, model.lists), axis, rule.points, rule.reason,
                          rule.group)

    @staticmethod
    def _engagement(rule: EngagementRule, model: ScoringModel) -> CEngagementRule:
        half_life = rule.half_life_days or model.decay.half_life_days
        window = rule.window_days or model.decay.window_days
        return CEngagementRule(rule.id, rule.points, rule.reason, "{count}" in rule.reason,
                               rule.cap or math.inf, _rate(half_life),
                               math.inf if window is None else window * _DAY)

    @staticmethod
    def _signal(sig: Signal) -> CSignal:
        window = math.inf if sig.window_days is None else sig.window_days * _DAY
        return CSignal(sig.id, sig.reason, sig.min_count, window, sig.window_days,
                       sig.lookback_days * _DAY, Stage(sig.stage), sig.min_fit, sig.points)

    @staticmethod
    def _disqualifier(d: Disqualifier, model: ScoringModel, norm: Callable[[Any], Any]) -> CDisqualifier:
        if d.field is None or d.predicate is None:
            return CDisqualifier(d.id, d.reason, d.check, None, None, d.points)
        get = _field_getter(d.field)
        return CDisqualifier(d.id, d.reason, None, lambda c: norm(get(c)),
                             compile_test(d.predicate, model.lists), d.points)

    def classify(self, kind: EngagementKind, detail: str, campaign: str) -> Classified:
        """Rule, signals and interest key of one distinct engagement, memoised."""
        memo = self.memo[kind]
        key = detail if kind not in self.campaign_kinds else f"{detail}\x00{campaign}"
        found = memo.get(key)
        if found is not None:
            return found
        path = url_path(detail)
        rule = next((i for i, m in enumerate(self.engagement_matchers)
                     if m.matches(kind, detail, path, campaign)), -1)
        signals = tuple(i for i, m in enumerate(self.signal_matchers) if m.matches(kind, detail, path, campaign))
        interest = None
        if kind in self.interest_kinds and detail:
            interest = path if self.interest_exclude is None or not self.interest_exclude(path) else None
        found = (rule, signals, interest, kind in _NEGATIVE_KINDS)
        if len(memo) < _CACHE_LIMIT:
            memo[key] = found
        return found


def _rate(half_life_days: float | None) -> float:
    return 0.0 if half_life_days is None else _LN2 / (half_life_days * _DAY)


def meets(threshold: Threshold, fit: int, engagement: int) -> bool:
    return ((threshold.fit is None or fit >= threshold.fit)
            and (threshold.engagement is None or engagement >= threshold.engagement)
            and (threshold.total is None or fit + engagement >= threshold.total))


def compiled(model: ScoringModel) -> CompiledModel:
    """The model's runtime tables, built on first use and kept on the (immutable) model."""
    found = model._compiled
    if found is None:
        found = CompiledModel(model)
        model._compiled = found
    return found  # type: ignore[return-value]
