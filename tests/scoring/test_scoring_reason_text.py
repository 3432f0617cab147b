"""The CRM's score-reason text: what pushed the score up *and* down, within the field's length."""

from __future__ import annotations

from mapping.model import Stage
from scoring import default_model, score
from scoring.result import Reason, Score


def test_a_negative_score_shows_what_held_it_down(contact, eng, now):
    c = contact(email="ana@gmail.com", title="Student", company_size=20000, country="US")
    s = score(default_model(), c, [eng("unsubscribe", 3)], now)
    assert s.total < 0
    text = s.reason_text()
    assert "-20 student or intern" in text and "-10 personal email address" in text and "unsubscribed" in text
    assert "+8 enterprise (10,000+ employees)" in text
    assert text.index("+8") < text.index("-20")  # for, then against: each strongest first


def test_the_text_fits_the_field_and_keeps_both_sides(contact, eng, now):
    c = contact(email="ana@acme.com", title="VP Marketing", company_size=2000, country="US", industry="Software")
    s = score(default_model(), c, [eng("demo_request", 3, "Demo request"),
                                   eng("page_view", 2, "https://acme.example/careers")], now)
    short = s.reason_text(60)
    assert len(short) <= 60
    assert short == "+28 requested a demo; -5 visited careers pages"  # the strongest for and against
    assert len(s.reason_text()) <= 255 and s.reason_text().count(";") >= 5


def test_a_disqualified_contact_says_so_first(contact, now):
    s = score(default_model(), contact(email="x@competitor.example", title="VP Sales"), [], now)
    assert s.reason_text().startswith("not promoted: works at a competitor")


def test_one_overlong_reason_is_cut_visibly():
    s = Score(0, 5, 5, Stage.LEAD, (Reason("r", "engagement", 5, "x" * 400),), (), None, (), None, "m@1")
    text = s.reason_text(255)
    assert len(text) == 255 and text.endswith("…")
