"""Loading and validating model files: errors name file, line, rule and what was expected."""

from __future__ import annotations

import re

import pytest

from scoring import DEFAULT_MODEL_PATH, ModelError, default_model, dump_model, load_model, loads_model

STAGES = "[stages.mql]\ntotal = 10\n[stages.sql]\ntotal = 20\n"
GOOD_RULE = '[[fit]]\nid = "vp"\nfield = "title"\nregex = "vp"\npoints = 5\nreason = "VP"\n'


def error_for(text: str) -> str:
    with pytest.raises(ModelError) as info:
        loads_model(text, "team.toml")
    return str(info.value)


def test_default_model_loads_and_is_shared():
    assert default_model() is default_model()
    assert default_model().label == "b2b-saas-default@1"
    assert load_model(DEFAULT_MODEL_PATH) == default_model()


def test_wrong_type_names_file_line_rule_and_expectation():
    text = STAGES + GOOD_RULE + '[[fit]]\nid = "size"\nfield = "company_size"\nmin = 10\npoints = "ten"\nreason = "x"\n'
    msg = error_for(text)
    assert msg.startswith("team.toml:15: fit rule 'size' points: expected a valid integer"), msg


def test_misspelt_key_is_reported():
    msg = error_for(STAGES + GOOD_RULE.replace("points", "pionts"))
    assert "fit rule 'vp'" in msg and "unknown key 'pionts'" in msg and "missing required key 'points'" in msg


def test_bad_regex_is_reported_with_rule():
    msg = error_for(STAGES + '[[engagement]]\nid = "pricing"\nkind = "page_view"\nurl = "(/pricing"\n'
                    'points = 5\nreason = "x"\n')
    assert re.search(r"team\.toml:\d+: engagement rule 'pricing' url: expected a valid regular expression", msg)


def test_unknown_kind_and_field_are_reported():
    msg = error_for(STAGES + GOOD_RULE.replace('"title"', '"job"')
                    + '[[engagement]]\nid = "x"\nkind = "tweet"\npoints = 1\nreason = "x"\n')
    assert "fit rule 'vp' field: expected 'title'" in msg
    assert "engagement rule 'x' kind.0: expected 'email_open'" in msg


def test_predicate_needs_exactly_one_test():
    msg = error_for(STAGES + GOOD_RULE.replace('regex = "vp"', 'regex = "vp"\nequals = "VP"'))
    assert "fit rule 'vp'" in msg and "exactly one test" in msg


def test_duplicate_ids_and_unknown_lists_name_the_rule():
    msg = error_for(STAGES + GOOD_RULE + GOOD_RULE)
    assert msg == "team.toml:6: fit rule 'vp' id: expected ids unique across the model, this one is used twice"
    msg = error_for(STAGES + GOOD_RULE.replace('regex = "vp"', 'in_list = "nope"'))
    assert msg == "team.toml:6: fit rule 'vp' in_list: expected a list from [lists] (none defined), got 'nope'"


def test_missing_thresholds_and_bad_toml():
    assert "missing required key 'sql'" in error_for("[stages.mql]\ntotal = 1\n")
    assert error_for("[stages\n").startswith("team.toml: not valid TOML")


def test_unreadable_file_names_it(tmp_path):
    with pytest.raises(ModelError, match="nope.toml: cannot read"):
        load_model(tmp_path / "nope.toml")


def test_dump_round_trips():
    model = default_model()
    assert loads_model(dump_model(model, "generated")) == model
