"""Backtest and point-in-time calibration on a synthetic history whose hidden driver the model lacks.

In this world people convert after reading the docs (`/docs/...`), which the default model only counts
as "visited the website"; after converting they binge on pricing and demo pages, which a leaky model
would love. The backtest and the calibration must ignore that binge entirely, and the calibration must
find the docs.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import pytest

from mapping.model import Contact, Engagement, EngagementKind
from scoring.backtest import Subject, backtest, compare, replay
from scoring.calibrate_history import HistorySettings, calibrate_history
from scoring.loader import default_model, loads_model
from tests.scoring.seeded import seeded_subjects

START = date(2026, 1, 1)
END = date(2026, 9, 30)
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
PV = EngagementKind.PAGE_VIEW


def _view(key: str, n: int, at: datetime, path: str) -> Engagement:
    return Engagement("test", f"{key}-{n}", key, PV, at, f"https://example.com{path}")


def _person(rng: random.Random, i: int) -> Subject:
    key = f"p{i}"
    created = T0 + timedelta(days=rng.uniform(0, 200))
    contact = Contact("test", key, email=f"{key}@corp{i % 50}.com", title=rng.choice(
        ["VP Sales", "Director of Ops", "Engineer", "Head of Growth", "Analyst"]),
        company_size=rng.choice([20, 200, 2000]), country=rng.choice(["United States", "Germany", "Brazil"]),
        industry=rng.choice(["Software", "Retail", "Finance"]), created_at=created)
    keen = rng.random()
    fitness = (contact.title in ("VP Sales", "Head of Growth")) + ((contact.company_size or 0) >= 200)
    events: list[Engagement] = []
    outcome = None
    day = created
    docs = 0.0
    n = 0
    while day < datetime(2026, 9, 30, tzinfo=timezone.utc) and outcome is None:
        day += timedelta(days=rng.expovariate(0.25))
        path = "/docs/setup" if rng.random() < keen else rng.choice(["/blog/tips", "/", "/about"])
        events.append(_view(key, n := n + 1, day, path))
        if rng.random() < 0.03 * keen:  # keen readers sometimes ask for a demo
            events.append(Engagement("test", f"{key}-d{n}", key, EngagementKind.DEMO_REQUEST, day, "Demo request"))
        docs = docs * 0.8 + (path.startswith("/docs"))
        if rng.random() < 0.0015 * docs * docs * (0.1 + fitness):
            outcome = day + timedelta(hours=rng.uniform(1, 48))
    if outcome is not None:  # the post-conversion binge a leaky model would credit
        events += [_view(key, n + j + 1, outcome + timedelta(hours=j + 1), "/pricing") for j in range(6)]
    return Subject(key, contact, tuple(events), created, opportunity_at=outcome, owner=f"rep{i % 3}")


@pytest.fixture(scope="module")
def world() -> list[Subject]:
    rng = random.Random(7)
    return [_person(rng, i) for i in range(900)]


def _binge(s: Subject, n: int = 60) -> Subject:
    """The same person with an enormous burst of high-value activity right after their outcome."""
    if s.outcome_at is None:
        return s
    extra = tuple(Engagement("test", f"{s.key}-x{j}", s.key, kind, s.outcome_at + timedelta(minutes=j + 1),
                             detail)
                  for j in range(n) for kind, detail in ((PV, "https://example.com/pricing"),
                                                         (EngagementKind.DEMO_REQUEST, "Demo request")))
    return replace(s, engagements=s.engagements + extra)


def test_replay_finds_the_first_sql_day_and_stops_before_the_outcome() -> None:
    model = default_model()
    c = Contact("test", "a", email="ada@acme.io", title="VP Marketing", company_size=500, country="United States",
                industry="Software")
    demo = Engagement("test", "d1", "a", EngagementKind.DEMO_REQUEST, datetime(2026, 3, 10, 15, tzinfo=timezone.utc),
                      "Demo request")
    s = Subject("a", c, (demo,), datetime(2026, 3, 1, tzinfo=timezone.utc))
    v = replay(model, s, START, END)
    assert v.sql_on == date(2026, 3, 10)
    assert v.mql_on is not None and v.mql_on <= v.sql_on
    # the same demo request after a real opportunity predicts nothing
    late = replace(s, opportunity_at=datetime(2026, 3, 10, 9, tzinfo=timezone.utc))
    assert replay(model, late, START, END).sql_on is None


def test_post_outcome_activity_changes_neither_backtest_nor_calibration(world: list[Subject]) -> None:
    model = default_model()
    binged = [_binge(s) for s in world]
    assert sum(len(b.engagements) - len(s.engagements) for s, b in zip(world, binged, strict=True)) > 10_000
    a, b = backtest(model, world, START, END), backtest(model, binged, START, END)
    assert a.verdicts == b.verdicts and a.figures == b.figures
    settings = HistorySettings(step_days=14, horizon_days=60)
    ca = calibrate_history(model, world, START, END, settings)
    cb = calibrate_history(model, binged, START, END, settings)
    assert ca.toml == cb.toml
    assert (ca.auc_learned, ca.auc_current) == (cb.auc_learned, cb.auc_current)


def test_time_split_calibration_beats_the_default_on_the_later_cohort(world: list[Subject]) -> None:
    result = calibrate_history(default_model(), world, START, END, HistorySettings(step_days=14, horizon_days=60))
    assert result.train > 0 and result.test > 0 and result.positives_test > 0
    assert result.auc_learned > result.auc_current + 0.05
    assert any(r.startswith("learned_page_view_docs") for r in result.new_rules)
    docs = next(r for r in result.model.engagement if r.id.startswith("learned_page_view_docs"))
    assert docs.reason == "viewed pages under /docs" and docs.points > 1
    assert "not given" not in result.toml
    assert loads_model(result.toml) == result.model  # the same TOML format the scorer ships with
    assert sum(result.stage_moves.values()) > 0


def test_figures_and_compare(world: list[Subject]) -> None:
    model = default_model()
    base = backtest(model, world, START, END)
    f = base.figures
    assert f["persons"] == len(world) and f["would_sql"] >= f["sql_then_opportunity"]
    assert f["outcomes_caught"] <= f["outcomes_in_window"]
    if f["would_sql"]:
        assert f["precision"] == round(f["sql_then_opportunity"] / f["would_sql"], 4)
    assert sum(sum(o.values()) for o in f["sqls_per_week_per_owner"].values()) == f["would_sql"]
    learned = calibrate_history(model, world, START, END, HistorySettings(step_days=14, horizon_days=60)).model
    other = backtest(learned, world, START, END)
    diff = compare(base, other)
    moved = diff["persons"]
    assert sum(diff["moves"].values()) == len(moved) > 0
    for m in moved:
        a, b = base.by_key()[m.key].sql_on, other.by_key()[m.key].sql_on
        assert (m.before, m.after) == (a, b)
        assert m.kind == ("new" if a is None else "gone" if b is None else "earlier" if b < a else "later")
    assert set(diff["figures"]) == {"base", "other"}


def test_time_split_calibration_beats_the_default_on_the_sandbox_later_cohort() -> None:
    """The sandbox's seeded people and history (as its emulators serve them): learned on the earlier moments,
    measured on the later ones."""
    anchor = datetime(2026, 12, 1, tzinfo=timezone.utc)
    people = seeded_subjects(3, 5000, anchor)
    result = calibrate_history(default_model(), people, (anchor - timedelta(weeks=26)).date(), anchor.date(),
                               HistorySettings(horizon_days=30))
    assert result.positives_test > 50
    assert result.auc_learned > result.auc_current
    assert result.top_decile_learned > result.top_decile_current
