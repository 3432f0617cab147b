"""A model that cannot mislead: load-time checks that name the rule, and calibration that respects them."""

from __future__ import annotations

import re

import pytest

from scoring import DEFAULT_MODEL_PATH, ModelError, default_model, load_model, loads_model
from scoring.calibrate import calibrate_rows, human_name
from tests.scoring.test_scoring_calibrate import synthetic_rows

STAGES = "[stages.mql]\ntotal = 10\n[stages.sql]\ntotal = 20\n"


def error_for(text: str) -> str:
    with pytest.raises(ModelError) as info:
        loads_model(text, "team.toml")
    return str(info.value)


def fit(reason: str = "VP-level title", points: int = 5, test: str = 'regex = "vp"', field: str = "title") -> str:
    return f'[[fit]]\nid = "r1"\nfield = "{field}"\n{test}\npoints = {points}\nreason = "{reason}"\n'


def prop(test: str, points: int = 5, reason: str = "answered the survey") -> str:
    return f'[[property]]\nid = "p1"\ncolumn = "Lead Source"\n{test}\npoints = {points}\nreason = "{reason}"\n'


def test_the_shipped_model_passes_every_check():
    assert load_model(DEFAULT_MODEL_PATH) == default_model()


@pytest.mark.parametrize(("stages", "expected"), [
    ("[stages.mql]\ntotal = 50\n[stages.sql]\ntotal = 40\n",
     "sql minimums at least those of mql: total 40 is below mql's 50, so a person could be SQL without being MQL"),
    ("[stages.mql]\nfit = 20\ntotal = 30\n[stages.sql]\nfit = 10\ntotal = 60\n", "fit 10 is below mql's 20"),
    ("[stages.mql]\nfit = 20\ntotal = 30\n[stages.sql]\ntotal = 60\n", "fit none is below mql's 20"),
    ("[stages.lead]\ntotal = 20\n[stages.mql]\ntotal = 10\n[stages.sql]\ntotal = 30\n",
     "mql minimums at least those of lead: total 10 is below lead's 20"),
])
def test_contradictory_thresholds_are_refused(stages, expected):
    msg = error_for(stages)
    assert re.match(r"team\.toml:\d+: stages\.(sql|mql): expected ", msg), msg
    assert expected in msg


def test_fit_and_engagement_minimums_imply_a_total():
    # SQL asks fit 25 + engagement 30 = 55 at least, above MQL's total 40: consistent.
    loads_model("[stages.mql]\ntotal = 40\n[stages.sql]\nfit = 25\nengagement = 30\n", "ok.toml")


def test_a_stage_the_caps_never_allow_is_refused():
    msg = error_for("[caps]\nfit = 20\nengagement = 50\n[stages.mql]\ntotal = 10\n[stages.sql]\nfit = 30\ntotal = 40\n")
    assert "stages.sql fit 30: expected at most what [caps] allow (20); SQL could never be reached" in msg


@pytest.mark.parametrize(("reason", "why"), [("", "not an empty one"), ("   ", "not an empty one"),
                                             ("title", "not a raw property name"),
                                             ("TotalVisits", "not a raw property name"),
                                             ("hs_analytics_num_visits", "not a raw property name"),
                                             ("Lead_Source__c", "not a raw property name")])
def test_a_reason_must_be_words(reason, why):
    msg = error_for(STAGES + fit(reason=reason))
    assert msg.startswith("team.toml:10: fit rule 'r1' reason: expected a reason") and why in msg, msg


def test_every_rule_kind_needs_a_reason():
    msg = error_for(STAGES + '[[engagement]]\nid = "e1"\nkind = "page_view"\npoints = 1\nreason = ""\n')
    assert "engagement rule 'e1' reason: expected a reason people can read" in msg
    msg = error_for(STAGES + '[[signal]]\nid = "s1"\nkind = "demo_request"\nreason = "demo_request"\n')
    assert "signal rule 's1' reason: expected a reason in words" in msg
    msg = error_for(STAGES + '[[disqualifier]]\nid = "d1"\ncheck = "archived"\nreason = " "\n')
    assert "disqualifier rule 'd1' reason" in msg
    msg = error_for(STAGES + prop('equals = "Google"', reason="Lead Source"))  # the column's own name
    assert "property rule 'p1' reason: expected a reason in words" in msg


def test_plain_words_are_fine_reasons():
    for reason in ("VP", "manager", "visited the pricing page", "company of 200–10,000 employees", "lead source: Google"):
        loads_model(STAGES + fit(reason=reason), "ok.toml")


@pytest.mark.parametrize("test", ["missing = true", 'equals = "not given"', 'in = ["Google", "Unknown"]',
                                  'equals = "Select"'])
def test_no_positive_points_for_a_missing_value(test):
    msg = error_for(STAGES + prop(test))
    assert "property rule 'p1' points: expected no positive points for" in msg, msg
    loads_model(STAGES + prop(test, points=-3), "ok.toml")  # a missing answer may cost points
    loads_model(STAGES + prop(test, points=0), "ok.toml")


def test_a_fit_rule_on_a_missing_field_cannot_pay_either():
    msg = error_for(STAGES + fit(test="missing = true", points=4))
    assert msg.startswith("team.toml:9: fit rule 'r1' points: expected no positive points for a missing value")


def test_a_value_the_model_calls_missing_cannot_pay():
    msg = error_for('missing_values = ["", "Does not apply"]\n' + STAGES + prop('in = ["does not apply", "x"]'))
    assert "property rule 'p1' points: expected no positive points for 'does not apply'" in msg


def test_an_engagement_kind_that_does_not_exist_is_named():
    msg = error_for(STAGES + '[[engagement]]\nid = "e1"\nkind = ["page_view", "webinar_attended"]\npoints = 1\n'
                    'reason = "attended"\n')
    assert re.search(r"team\.toml:\d+: engagement rule 'e1' kind\.1: expected 'email_open', .*'webinar'.*"
                     r"got 'webinar_attended'", msg), msg


# ------------------------------------------------------------------ calibration obeys the same checks


def test_human_names():
    assert human_name("TotalVisits") == "total visits"
    assert human_name("Lead Source") == "lead source"
    assert human_name("hs_analytics_num_visits") == "hs analytics num visits"
    assert human_name("Page Views Per Visit") == "page views per visit"
    assert human_name("LeadID") == "lead ID"


def test_calibration_never_pays_for_not_given_and_writes_words():
    rows = [{"TotalVisits": r["visits"], "Time_On_Site": r["minutes"], "Lead Source": r["source"],
             "converted": r["converted"]} for r in synthetic_rows()]
    result = calibrate_rows(rows, "converted", ["TotalVisits", "Time_On_Site", "Lead Source"], folds=3,
                            max_rules=12, seed=1)
    rules = result.model.properties
    assert rules and result.auc > 0.7
    # In these rows a blank time on site converts *better* than most answers: it still scores 0, and the
    # answers that convert worse than silence score negative instead.
    assert not any(r.missing for r in rules)
    assert not any(v.casefold() in ("select", "", "not given") for r in rules for v in (r.in_ or ()))
    assert any(r.points < 0 for r in rules if r.column == "Time_On_Site")
    for r in rules:
        assert not re.search(r"TotalVisits|Time_On_Site|Lead Source", r.reason), r.reason
    assert any(r.reason.startswith(("total visits", "time on site", "lead source")) for r in rules)
    assert loads_model(result.toml, "calibrated.toml") == result.model  # passes the load-time checks
