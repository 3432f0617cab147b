"""Rule semantics on small inline models: predicates, groups, caps, negative points, decay."""

from __future__ import annotations

import dataclasses
import math

import pytest

from scoring import ScoringModel, loads_model, score

STAGES = """
[stages.lead]
engagement = 1
[stages.mql]
fit = 10
engagement = 10
[stages.sql]
fit = 20
engagement = 30
"""


def model(body: str, head: str = "") -> ScoringModel:
    return loads_model(head + STAGES + body, "inline.toml")


def rule_points(s, rule: str) -> int | None:
    return next((r.points for r in s.reasons if r.rule == rule), None)


FIT = """
[lists]
free = ["gmail.com"]
[[fit]]
id = "vp"
group = "seniority"
field = "title"
regex = '\\bvp\\b'
points = 20
reason = "VP-level title"
[[fit]]
id = "manager"
group = "seniority"
field = "title"
regex = 'manager|vp'
points = 10
reason = "manager"
[[fit]]
id = "tech"
field = "industry"
equals = "technology"
points = 7
reason = "tech"
[[fit]]
id = "country"
field = "country"
in = ["Germany", "France"]
points = 3
reason = "market"
[[fit]]
id = "size"
field = "company_size"
min = 200
max = 1000
points = 5
reason = "mid-size"
[[fit]]
id = "free"
field = "email_domain"
in_list = "free"
points = -10
reason = "free mail"
[[fit]]
id = "no_title"
field = "title"
missing = true
points = -2
reason = "no title"
"""


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"title": "VP Sales Manager"}, {"vp": 20, "manager": None}),  # group: first match only
        ({"title": "Sales Manager"}, {"vp": None, "manager": 10}),
        ({"industry": " TECHNOLOGY "}, {"tech": 7}),  # trimmed, case-insensitive
        ({"country": "france"}, {"country": 3}),
        ({"company_size": 200}, {"size": 5}),  # min inclusive
        ({"company_size": 1000}, {"size": None}),  # max exclusive
        ({"email": "x@GMAIL.com"}, {"free": -10}),
        ({"title": "  "}, {"no_title": -2}),  # blank is missing
        ({"title": None}, {"no_title": -2, "manager": None}),
    ],
)
def test_fit_predicates(contact, now, fields, expected):
    s = score(model(FIT), contact(**fields), [], now)
    for rule, points in expected.items():
        assert rule_points(s, rule) == points, (rule, s.reasons)


def test_fit_reason_carries_evidence(contact, now):
    s = score(model(FIT), contact(title="VP Marketing"), [], now)
    vp = next(r for r in s.reasons if r.rule == "vp")
    assert (vp.kind, vp.text, vp.evidence) == ("fit", "VP-level title", ("title: VP Marketing",))


ENGAGEMENT = """
[[engagement]]
id = "careers"
kind = "page_view"
url = '^/careers'
points = -5
cap = 8
reason = "careers"
[[engagement]]
id = "pricing"
kind = "page_view"
url = '^/pricing'
points = 10
cap = 25
reason = "visited the pricing page"
[[engagement]]
id = "pages"
kind = "page_view"
points = 1
reason = "visited the site"
[[engagement]]
id = "webinar"
kind = "webinar"
campaign = 'q3'
points = 6
reason = "attended a Q3 webinar"
[[engagement]]
id = "unsubscribe"
kind = "unsubscribe"
points = -15
reason = "unsubscribed"
"""


def test_first_matching_rule_wins_and_caps_bound_each_rule(contact, eng, now):
    visits = [eng("page_view", 0, "https://x.com/pricing?utm=1") for _ in range(4)]
    visits.append(eng("page_view", 0, "https://x.com/careers/eng"))
    s = score(model(ENGAGEMENT), contact(), visits, now)
    assert rule_points(s, "pricing") == 25  # 40 capped at 25
    assert rule_points(s, "pages") is None  # pricing visits were not counted twice
    assert rule_points(s, "careers") == -5
    pricing = next(r for r in s.reasons if r.rule == "pricing")
    assert pricing.raw_points == 40 and pricing.decayed_points == 40
    assert pricing.text == "visited the pricing page (4×)"


def test_negative_cap_bounds_both_directions(contact, eng, now):
    s = score(model(ENGAGEMENT), contact(), [eng("page_view", 0, "/careers") for _ in range(5)], now)
    assert rule_points(s, "careers") == -8


def test_negative_points_lower_engagement(contact, eng, now):
    s = score(model(ENGAGEMENT), contact(), [eng("page_view", 0, "/pricing"), eng("unsubscribe", 1)], now)
    assert s.engagement == 10 - 15


def test_campaign_narrows_a_rule(contact, eng, now):
    m = model(ENGAGEMENT)
    s = score(m, contact(), [eng("webinar", 0, "Scoring", campaign="2026-Q3-launch"), eng("webinar", 0, "x")], now)
    webinar = next(r for r in s.reasons if r.rule == "webinar")
    assert webinar.points == 6 and len(webinar.evidence) == 1


DECAY_HEAD = """
[decay]
half_life_days = 10
window_days = 25
"""
DECAY = """
[[engagement]]
id = "click"
kind = "email_click"
points = 40
reason = "clicked"
[[engagement]]
id = "meeting"
kind = "meeting"
points = 40
half_life_days = 20
reason = "met"
"""


@pytest.mark.parametrize(("days", "points"), [(0, 40), (10, 20), (20, 10), (5, round(40 * 0.5 ** 0.5)), (26, None)])
def test_half_life_decay_from_explicit_now(contact, eng, now, days, points):
    s = score(model(DECAY, DECAY_HEAD), contact(), [eng("email_click", days)], now)
    assert rule_points(s, "click") == points


def test_decayed_points_are_exact_and_rule_half_life_overrides(contact, eng, now):
    s = score(model(DECAY, DECAY_HEAD), contact(), [eng("email_click", 3), eng("meeting", 20)], now)
    click = next(r for r in s.reasons if r.rule == "click")
    assert math.isclose(click.decayed_points, 40 * 0.5 ** 0.3)
    assert click.raw_points == 40
    assert rule_points(s, "meeting") == 20  # its own 20-day half-life


def test_future_engagement_is_ignored(contact, eng, now):
    s = score(model(DECAY, DECAY_HEAD), contact(), [eng("email_click", -1)], now)
    assert s.engagement == 0 and s.reasons == ()


def test_total_cap_is_an_explicit_reason(contact, eng, now):
    m = model(DECAY, "[caps]\nengagement = 50\n")
    s = score(m, contact(), [eng("email_click", 0), eng("meeting", 0)], now)
    assert s.engagement == 50
    assert rule_points(s, "engagement_cap") == -30
    assert sum(r.points for r in s.reasons) == s.total


def test_naive_datetimes_are_read_as_utc(contact, eng, now):
    m = model(DECAY, DECAY_HEAD)
    aware = score(m, contact(), [eng("email_click", 3)], now)
    e = eng("email_click", 3)
    e = dataclasses.replace(e, occurred_at=e.occurred_at.replace(tzinfo=None))
    naive = score(m, contact(), [e], now.replace(tzinfo=None))
    assert naive.reasons[0].decayed_points == aware.reasons[0].decayed_points


PROPERTY_HEAD = 'missing_values = ["", "Select"]\n'
PROPERTY = """
[[property]]
id = "visits_high"
group = "visits"
column = "TotalVisits"
min = 5
points = 8
axis = "engagement"
reason = "5 or more visits"
[[property]]
id = "visits_missing"
group = "visits"
column = "TotalVisits"
missing = true
points = -3
reason = "visits unknown"
[[property]]
id = "source_ref"
column = "Lead Source"
in = ["Reference", "Referral Sites"]
points = 6
reason = "referred"
[[property]]
id = "source_other"
column = "Lead Source"
not_in = ["Reference", "Referral Sites", "Google"]
points = 1
reason = "another source"
"""


@pytest.mark.parametrize(
    ("extra", "fit", "engagement"),
    [
        ({"TotalVisits": "7", "Lead Source": "reference"}, 6, 8),
        ({"TotalVisits": "1,200", "Lead Source": "Google"}, 0, 8),  # thousands separator
        ({"TotalVisits": "Select", "Lead Source": "Select"}, -3, 0),  # the form default means missing
        ({"Lead Source": "Fax"}, -3 + 1, 0),  # absent column is missing; unknown level is "other"
    ],
)
def test_property_rules_read_extra_columns(contact, now, extra, fit, engagement):
    s = score(model(PROPERTY, PROPERTY_HEAD), contact(extra=extra), [], now)
    assert (s.fit, s.engagement) == (fit, engagement), s.reasons


SIGNALS = """
[[signal]]
id = "demo"
kind = "demo_request"
lookback_days = 30
reason = "requested a demo"
[[signal]]
id = "busy"
kind = []
min_count = 3
window_days = 2
lookback_days = 10
stage = "mql"
reason = "{count} actions in {days} days"
"""


def test_signal_lookback_and_any_kind_window(contact, eng, now):
    m = model(SIGNALS)
    assert score(m, contact(), [eng("demo_request", 31)], now).signals == ()
    assert score(m, contact(), [eng("demo_request", 29)], now).stage.value == "sql"
    busy = [eng("email_open", 1.0), eng("page_view", 1.5, "/x"), eng("webinar", 2.5, "w"), eng("unsubscribe", 1)]
    assert score(m, contact(), busy, now).signals == ("3 actions in 2 days",)
    assert score(m, contact(), busy[:2], now).signals == ()  # unsubscribes are not activity
