"""The scoring model as data: the TOML file's shape, validated once with pydantic.

Everything a marketer may put in `default_model.toml` is declared here with
`extra="forbid"`, so a misspelt key fails at load time with the rule's name
instead of being silently ignored while scores drift.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mapping.model import EngagementKind
from scoring.regex import PatternError, compile_search

Axis = Literal["fit", "engagement"]
FitField = Literal[
    "title", "company", "company_size", "industry", "country", "email", "email_domain",
    "lead_status", "object_type", "source",
]
Check = Literal["invalid_email", "do_not_contact", "hard_bounce", "archived"]
FastTrack = Literal["mql", "sql"]


class ModelError(ValueError):
    """A scoring model that cannot be loaded; the message names file, rule and expectation."""


#: Values that mean "not answered" whatever the model's `missing_values`: no rule may pay points for them.
MISSING_WORDS = frozenset({"", "not given", "not provided", "[not provided]", "not specified", "not set", "unknown",
                           "none", "n/a", "na", "null", "nan", "select", "-"})
#: A reason that is an identifier, not words: snake_case, dotted, Salesforce `__c`, CamelCase ("TotalVisits").
_RAW_NAME = re.compile(r"^(?:[A-Za-z][A-Za-z0-9]*(?:[_.][A-Za-z0-9]+)+_*|[a-z]+(?:[A-Z][a-z0-9]*)+|"
                       r"[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+|[A-Za-z0-9_]+__c)$")


def check_reason(value: str, info: ValidationInfo) -> str:
    """Every point carries a reason reps can read: not empty, not the raw name of a field or column."""
    text = value.strip()
    if not text:
        raise ValueError("a reason people can read (reps see it in tasks and the CRM), not an empty one")
    names = {str(info.data.get(k) or "").strip().casefold() for k in ("field", "column")} - {""}
    if text.casefold() in names or _RAW_NAME.match(text):
        raise ValueError("a reason in words, not a raw property name (e.g. \"5 or more visits\", not "
                         "\"TotalVisits\")")
    return value


def _no_points_for_missing(points: int, info: ValidationInfo) -> int:
    """A missing answer earns nothing: positive points for "not given" would rank the silent above the engaged."""
    if points > 0:
        data = info.data
        values = [data.get("equals"), *(data.get("in_") or ())]
        if data.get("missing") is True or any(v is not None and v.strip().casefold() in MISSING_WORDS
                                              for v in values):
            raise ValueError("no positive points for a missing value (\"not given\", blank, \"Select\"): give "
                             "it 0 or negative points, or drop the rule")
    return points


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _check_regex(value: str | None) -> str | None:
    """Refuse at load what the RE2 engine the scorer uses cannot take, so the error names the rule."""
    if value is not None:
        try:
            compile_search(value)
        except PatternError as exc:
            raise ValueError(f"a valid regular expression ({exc})") from None
    return value


class Predicate(_Strict):
    """One test on a single value; exactly one of the tests may be given.

    Text comparisons are trimmed and case-insensitive; `min`/`max` form one
    numeric range test (min inclusive, max exclusive); `missing` matches an
    absent or blank value, which no other test matches.
    """

    equals: str | None = None
    in_: tuple[str, ...] | None = Field(default=None, alias="in")
    not_in: tuple[str, ...] | None = None
    in_list: str | None = None
    regex: str | None = None
    min: float | None = None
    max: float | None = None
    missing: bool | None = None

    _check = field_validator("regex")(_check_regex)

    @model_validator(mode="after")
    def _exactly_one_test(self) -> Predicate:
        tests = [self.equals is not None, self.in_ is not None, self.not_in is not None,
                 self.in_list is not None, self.regex is not None,
                 self.min is not None or self.max is not None, self.missing is not None]
        if sum(tests) != 1:
            raise ValueError("exactly one test: equals, in, not_in, in_list, regex, min/max or missing")
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise ValueError("min below max")
        return self


class FitRule(Predicate):
    """Points for who the person is. Within a `group` only the first matching rule counts."""

    id: str
    field: FitField
    points: int
    reason: str
    group: str | None = None

    _points = field_validator("points")(_no_points_for_missing)
    _reason = field_validator("reason")(check_reason)


class PropertyRule(Predicate):
    """Points for a column of `Contact.extra` (form answers, imported columns, calibrated bins)."""

    id: str
    column: str
    axis: Axis = "fit"
    points: int
    reason: str
    group: str | None = None

    _points = field_validator("points")(_no_points_for_missing)
    _reason = field_validator("reason")(check_reason)


class EngagementRule(_Strict):
    """Points per engagement of a kind; each engagement counts for the first rule that matches it.

    `url` is searched in the URL's path (so `^/pricing` works on any domain),
    `detail` in the whole detail text, `campaign` in the campaign name.
    `cap` bounds the rule's decayed total in either direction.
    """

    id: str
    kind: tuple[EngagementKind, ...]
    points: float
    reason: str
    url: str | None = None
    detail: str | None = None
    campaign: str | None = None
    cap: float | None = Field(default=None, gt=0)
    half_life_days: float | None = Field(default=None, gt=0)
    window_days: float | None = Field(default=None, gt=0)

    _check = field_validator("url", "detail", "campaign")(_check_regex)
    _reason = field_validator("reason")(check_reason)

    @field_validator("kind", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value


class Signal(_Strict):
    """A buying signal: `min_count` matching engagements within `window_days` (any sliding
    window inside the last `lookback_days`). It fast-tracks to `stage` when fit ≥ `min_fit`.

    An empty `kind` means every kind except unsubscribe and hard bounce. `reason`
    may use `{count}` and `{days}`.
    """

    id: str
    kind: tuple[EngagementKind, ...] = ()
    reason: str
    url: str | None = None
    detail: str | None = None
    campaign: str | None = None
    min_count: int = Field(default=1, ge=1)
    window_days: float | None = Field(default=None, gt=0)
    lookback_days: float = Field(default=30, gt=0)
    stage: FastTrack = "sql"
    min_fit: int = 0
    points: int = 0

    _check = field_validator("url", "detail", "campaign")(_check_regex)
    _reason = field_validator("reason")(check_reason)

    @field_validator("kind", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value


class Disqualifier(_Strict):
    """Blocks promotion: a built-in `check`, or a predicate on a contact field."""

    id: str
    reason: str
    check: Check | None = None
    field: FitField | None = None
    predicate: Predicate | None = Field(default=None, alias="test")
    points: int = 0

    _reason = field_validator("reason")(check_reason)

    @model_validator(mode="after")
    def _check_or_field(self) -> Disqualifier:
        if (self.check is None) == (self.field is None):
            raise ValueError("either check or field (with test)")
        if self.field is not None and self.predicate is None:
            raise ValueError("a test table with the field, e.g. test = { in_list = \"competitors\" }")
        return self


class Threshold(_Strict):
    """Minimum fit, engagement and total; every minimum given must be met (two-axis)."""

    fit: int | None = None
    engagement: int | None = None
    total: int | None = None

    @model_validator(mode="after")
    def _some_minimum(self) -> Threshold:
        if self.fit is None and self.engagement is None and self.total is None:
            raise ValueError("at least one of fit, engagement, total")
        return self


def floors(t: Threshold) -> dict[str, float]:
    """The least fit, engagement and total a threshold lets through (a fit and an engagement minimum
    imply a total minimum too)."""
    inf = float("-inf")
    fit = inf if t.fit is None else t.fit
    engagement = inf if t.engagement is None else t.engagement
    return {"fit": fit, "engagement": engagement,
            "total": max(inf if t.total is None else t.total, fit + engagement)}


class Stages(_Strict):
    """Each stage asks at least what the one below asks, on every axis: else a person could be SQL
    without being MQL, and the funnel would read upside down."""

    lead: Threshold = Threshold(total=1)
    mql: Threshold
    sql: Threshold

    @field_validator("mql", "sql")
    @classmethod
    def _not_below(cls, value: Threshold, info: ValidationInfo) -> Threshold:
        lower_name = "lead" if info.field_name == "mql" else "mql"
        lower = info.data.get(lower_name) if lower_name in info.data else Threshold(total=1)
        if lower is None:
            return value
        mine, theirs = floors(value), floors(lower)
        for axis in ("fit", "engagement", "total"):
            if mine[axis] < theirs[axis]:
                shown = "none" if mine[axis] == float("-inf") else f"{mine[axis]:g}"
                raise ValueError(
                    f"{info.field_name} minimums at least those of {lower_name}: {axis} {shown} is below "
                    f"{lower_name}'s {theirs[axis]:g}, so a person could be {info.field_name.upper()} without being "
                    f"{lower_name.upper()}")
        return value


class Decay(_Strict):
    """Default decay for engagement: halves every `half_life_days`; ignored after `window_days`."""

    half_life_days: float | None = Field(default=None, gt=0)
    window_days: float | None = Field(default=None, gt=0)


class Caps(_Strict):
    fit: int | None = Field(default=None, gt=0)
    engagement: int | None = Field(default=None, gt=0)


class Policy(_Strict):
    """What sales owns: lead statuses that stop leadsync from moving a stage."""

    disqualifying_lead_statuses: tuple[str, ...] = ()


class Recycle(_Strict):
    """An SQL whose lead status is in `lead_statuses` returns to `to_stage` after
    `after_days` without engagement; while the status stays, it is not promoted again
    until it engages again."""

    lead_statuses: tuple[str, ...] = ()
    after_days: float = Field(default=30, gt=0)
    to_stage: Literal["subscriber", "lead"] = "lead"


class Interests(_Strict):
    kind: tuple[EngagementKind, ...] = (
        EngagementKind.PAGE_VIEW, EngagementKind.CONTENT_DOWNLOAD, EngagementKind.WEBINAR,
        EngagementKind.WEBINAR_REGISTRATION,
    )
    top: int = Field(default=3, ge=0)
    exclude: str | None = None

    _check = field_validator("exclude")(_check_regex)


class Explain(_Strict):
    max_evidence: int = Field(default=5, ge=0)


class ScoringModel(_Strict):
    """One shared scoring model. Build it with `load_model`/`loads_model`; it compiles itself
    once on first use (precompiled regexes, per-kind rule tables) and is immutable after."""

    name: str = "unnamed"
    version: str = "1"
    description: str = ""
    missing_values: tuple[str, ...] = ("",)
    lists: dict[str, tuple[str, ...]] = {}
    decay: Decay = Decay()
    caps: Caps = Caps()
    stages: Stages
    policy: Policy = Policy()
    recycle: Recycle = Recycle()
    interests: Interests = Interests()
    explain: Explain = Explain()
    fit: tuple[FitRule, ...] = ()
    properties: tuple[PropertyRule, ...] = Field(default=(), alias="property")
    engagement: tuple[EngagementRule, ...] = ()
    signal: tuple[Signal, ...] = ()
    disqualifier: tuple[Disqualifier, ...] = ()

    _compiled: object | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _cross_references(self) -> ScoringModel:
        seen: set[str] = set()
        for section, alias in (("fit", "fit"), ("properties", "property"), ("engagement", "engagement"),
                               ("signal", "signal"), ("disqualifier", "disqualifier")):
            for rule in getattr(self, section):
                if rule.id in seen:
                    raise ValueError(f"{alias} rule {rule.id!r} id: expected ids unique across the model, "
                                     "this one is used twice")
                seen.add(rule.id)
                for pred in (rule, getattr(rule, "predicate", None)):
                    name = getattr(pred, "in_list", None)
                    if name is not None and name not in self.lists:
                        known = ", ".join(sorted(self.lists)) or "none defined"
                        raise ValueError(f"{alias} rule {rule.id!r} in_list: expected a list from [lists] "
                                         f"({known}), got {name!r}")
        self._check_missing_values()
        self._check_reachable()
        return self

    def _check_missing_values(self) -> None:
        """A property rule paying points for a value the model itself calls missing never matches: say so."""
        missing = {v.strip().casefold() for v in self.missing_values}
        for rule in self.properties:
            values = [rule.equals, *(rule.in_ or ())]
            hit = next((v for v in values if v is not None and v.strip().casefold() in missing), None)
            if hit is not None and rule.points > 0:
                raise ValueError(f"property rule {rule.id!r} points: expected no positive points for {hit!r}, "
                                 "which missing_values says means \"not given\"")

    def _check_reachable(self) -> None:
        """A stage whose minimum is above what the caps allow can never be reached."""
        caps = {"fit": self.caps.fit, "engagement": self.caps.engagement}
        caps["total"] = None if None in caps.values() else caps["fit"] + caps["engagement"]  # type: ignore[operator]
        for name in ("mql", "sql"):
            threshold = getattr(self.stages, name)
            for axis, cap in caps.items():
                need = getattr(threshold, axis)
                if cap is not None and need is not None and need > cap:
                    raise ValueError(f"stages.{name} {axis} {need}: expected at most what [caps] allow ({cap}); "
                                     f"{name.upper()} could never be reached")

    def __eq__(self, other: object) -> bool:
        """Equal when the rules are; the compiled cache is not part of a model's identity."""
        if not isinstance(other, ScoringModel):
            return NotImplemented
        return self.model_dump() == other.model_dump()

    __hash__ = None  # type: ignore[assignment]

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"
