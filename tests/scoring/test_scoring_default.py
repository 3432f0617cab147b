"""The shipped model: two-axis stages, fast-track signals, disqualifiers, explanations, spread."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone

import pytest

from mapping.model import SALES_OWNED, Stage
from scoring import DEFAULT_MODEL_PATH, default_model, loads_model, score
from tests.scoring.seeded import seeded

SITE = "https://www.example-saas.com"


@pytest.fixture(scope="module")
def model():
    return default_model()


def buyer(contact):
    return contact(title="VP Marketing", industry="Technology", company_size=900, country="Germany",
                   email="vp@acme.io")


def test_every_point_has_a_reason(model, contact, eng, now):
    s = score(model, buyer(contact), [eng("email_click", 2, "Newsletter"), eng("page_view", 1, SITE + "/pricing")],
              now)
    assert sum(r.points for r in s.reasons) == s.total == s.fit + s.engagement
    assert all(r.text for r in s.reasons)


def test_high_engagement_student_stays_lead(model, contact, eng, now):
    student = contact(title="Student", industry="Education", company_size=5, email="kim@gmail.com")
    busy = [eng(kind, d, detail) for d in range(1, 12) for kind, detail in (
        ("email_click", "Newsletter"), ("page_view", SITE + "/product/scoring"),
        ("content_download", "ebook"), ("webinar", "Webinar: x"))]
    s = score(model, student, busy, now)
    assert s.engagement >= model.stages.sql.engagement  # plenty of engagement ...
    assert s.fit < model.stages.mql.fit  # ... no fit
    assert s.stage is Stage.LEAD


def test_good_fit_and_engagement_is_mql(model, contact, eng, now):
    events = [eng("email_click", 3, "Nurture"), eng("content_download", 5, "ebook"), eng("webinar", 9, "Webinar")]
    s = score(model, buyer(contact), events, now)
    assert s.stage is Stage.MQL, s.to_dict()


def test_demo_request_fast_tracks_to_sql(model, contact, eng, now):
    s = score(model, contact(title="Marketing Manager", company_size=80),
              [eng("demo_request", 2, "Demo request")], now)
    assert s.stage is Stage.SQL
    assert "requested a demo" in s.signals
    assert s.summary() == "requested a demo; Manager-level title; company of 50–200 employees"


def test_pricing_burst_fast_tracks_to_sql(model, contact, eng, now):
    visits = [eng("page_view", d, SITE + "/pricing") for d in (2.0, 4.5, 8.0)]
    s = score(model, contact(title="Marketing Manager", company_size=80), visits, now)
    assert s.stage is Stage.SQL
    assert "visited /pricing 3× in 7 days" in s.signals


def test_pricing_visits_spread_out_are_not_a_burst(model, contact, eng, now):
    visits = [eng("page_view", d, SITE + "/pricing") for d in (1, 9, 17)]
    s = score(model, contact(title="Marketing Manager", company_size=80), visits, now)
    assert not any("pricing" in sig for sig in s.signals)


def test_demo_request_from_poor_fit_does_not_fast_track(model, contact, eng, now):
    s = score(model, contact(title="Student", email="kim@gmail.com"), [eng("demo_request", 1, "Demo request")],
              now)
    assert "requested a demo" in s.signals and s.stage is not Stage.SQL


@pytest.mark.parametrize(
    ("fields", "events", "why"),
    [
        ({"email": "not-an-email"}, [], "no valid email address"),
        ({"email": None}, [], "no valid email address"),
        ({"email": "spy@competitor.example"}, [], "works at a competitor"),
        ({"do_not_contact": True}, [], "asked not to be contacted"),
        ({}, [("hard_bounce", 3, "Newsletter")], "email address hard-bounced"),
    ],
)
def test_disqualifiers(model, contact, eng, now, fields, events, why):
    c = contact(**{"title": "VP Sales", "company_size": 900, **fields})
    s = score(model, c, [eng("demo_request", 1, "Demo request"), *(eng(*e) for e in events)], now)
    assert s.disqualified == why
    assert any(r.kind == "disqualifier" and r.text == why for r in s.reasons)


def test_to_dict_is_deterministic_json(model, contact, eng, now):
    events = [eng("page_view", d, SITE + p) for d, p in ((1, "/pricing"), (2, "/security"), (3, "/pricing"))]
    events += [eng("email_open", d, "Newsletter") for d in range(8)]
    a = json.dumps(score(model, buyer(contact), events, now).to_dict())
    b = json.dumps(score(model, buyer(contact), list(events), now).to_dict())
    fresh = loads_model(DEFAULT_MODEL_PATH.read_text(encoding="utf-8"))  # empty memo caches
    assert a == b == json.dumps(score(fresh, buyer(contact), events[::-1], now).to_dict())
    assert list(json.loads(a))[:5] == ["model", "fit", "engagement", "total", "stage"]


def test_interests_rank_pages_by_decayed_weight(model, contact, eng, now):
    events = [eng("page_view", 1, SITE + "/security"), eng("page_view", 2, SITE + "/security"),
              eng("page_view", 1, SITE + "/pricing?plan=pro"), eng("page_view", 90, SITE + "/integrations"),
              eng("page_view", 0, SITE + "/"), eng("content_download", 5, "ebook-lead-scoring-guide")]
    s = score(model, buyer(contact), events, now)
    assert s.interests == ("/security", "/pricing", "ebook-lead-scoring-guide")


def test_evidence_lists_most_recent_first_and_counts_the_rest(model, contact, eng, now):
    s = score(model, buyer(contact), [eng("email_open", d, f"Mail {d}") for d in range(8)], now)
    opens = next(r for r in s.reasons if r.rule == "email_open")
    assert opens.evidence[0].endswith("email_open Mail 0 [" + opens.evidence[0].rsplit("[", 1)[1])
    assert opens.evidence[-1] == "… and 5 earlier"


def test_seeded_people_spread_across_the_funnel(model):
    anchor = datetime(2026, 11, 22, tzinfo=timezone.utc)
    stages = Counter()
    for _person, contact, engagements in seeded(1, 3000, anchor):
        if contact.lifecycle_stage in SALES_OWNED:
            continue
        s = score(model, contact, engagements, anchor)
        assert sum(r.points for r in s.reasons) == s.total == s.fit + s.engagement
        stages[s.stage] += 1
    n = sum(stages.values())
    share = {stage: stages[stage] / n for stage in Stage}
    assert 0.50 <= share[Stage.LEAD] <= 0.70, share
    assert 0.15 <= share[Stage.MQL] <= 0.30, share
    assert 0.05 <= share[Stage.SQL] <= 0.15, share
