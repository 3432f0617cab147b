"""Model regexes run on RE2: no pattern can hang scoring, and what RE2 refuses fails at load naming the rule."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from mapping.model import Contact, Engagement, EngagementKind
from scoring import ModelError, load_model, loads_model, score

STAGES = "[stages.mql]\ntotal = 10\n[stages.sql]\ntotal = 20\n"
NOW = datetime(2026, 5, 1, tzinfo=UTC)


def fit_rule(regex: str, rule_id: str = "evil") -> str:
    return f"[[fit]]\nid = \"{rule_id}\"\nfield = \"title\"\nregex = '{regex}'\npoints = 5\nreason = \"x\"\n"


@pytest.mark.timeout(60)  # only a guard: on a backtracking engine this never finishes
def test_catastrophic_backtracking_pattern_scores_at_once():
    model = loads_model(STAGES + fit_rule("(a+)+$"), "team.toml")
    contact = Contact(source="hubspot", id="1", title="a" * 40 + "!")
    assert score(model, contact, [], NOW).fit == 0
    assert score(model, Contact(source="hubspot", id="2", title="AAA"), [], NOW).fit == 5


@pytest.mark.timeout(60)
def test_catastrophic_engagement_url_pattern_scores_at_once():
    body = ('[[engagement]]\nid = "slow-url"\nkind = "page_view"\nurl = \'^/(a|aa)+$\'\npoints = 3\n'
            'reason = "x"\n')
    model = loads_model(STAGES + body, "team.toml")
    views = [Engagement("hubspot", "v1", "1", EngagementKind.PAGE_VIEW, NOW, detail="https://x.io/" + "a" * 60 + "!")]
    assert score(model, Contact(source="hubspot", id="1"), views, NOW).engagement == 0


@pytest.mark.parametrize(("regex", "why"), [
    ("a{4294967296}", "above 1000"), ("a{1001}", "above 1000"), ("x{2,99999}", "above 1000"),
    (r"(vp)\1", "invalid escape"), ("(?<=chief )officer", "invalid perl operator"),
])
def test_patterns_re2_cannot_take_are_model_errors_naming_file_and_rule(tmp_path, regex, why):
    path = tmp_path / "team.toml"
    path.write_text(STAGES + fit_rule("vp", "good") + fit_rule(regex), encoding="utf-8")
    with pytest.raises(ModelError) as info:
        load_model(path)
    msg = str(info.value)
    assert re.search(rf"^{re.escape(str(path))}:\d+: fit rule 'evil' regex: expected a valid regular expression", msg)
    assert why in msg


def test_lone_surrogate_in_crm_text_still_matches():
    model = loads_model(STAGES + fit_rule("vp"), "team.toml")
    assert score(model, Contact(source="hubspot", id="1", title="VP \ud800 Sales"), [], NOW).fit == 5
