"""next_stage: forward-only, sales-owned untouched, disqualifying statuses, recycling."""

from __future__ import annotations

import dataclasses

import pytest

from mapping.model import Stage
from scoring import Score, default_model, next_stage


@pytest.fixture(scope="module")
def model():
    return default_model()


def implied(stage: Stage, disqualified: str | None = None, idle_days: float | None = 1.0) -> Score:
    return Score(fit=30, engagement=40, total=70, stage=stage, reasons=(), signals=(), disqualified=disqualified,
                 interests=(), idle_days=idle_days, model="test@1")


@pytest.mark.parametrize(
    ("current", "scored", "expected"),
    [
        (None, Stage.LEAD, Stage.LEAD),
        (Stage.SUBSCRIBER, Stage.MQL, Stage.MQL),
        (Stage.LEAD, Stage.SQL, Stage.SQL),
        (Stage.MQL, Stage.LEAD, None),  # never backwards
        (Stage.SQL, Stage.MQL, None),
        (Stage.MQL, Stage.MQL, None),  # nothing to write
        (Stage.OPPORTUNITY, Stage.SQL, None),  # sales-owned
        (Stage.CUSTOMER, Stage.SQL, None),
        (Stage.OTHER, Stage.SQL, None),
    ],
)
def test_forward_only_and_sales_owned(model, current, scored, expected):
    assert next_stage(model, current, None, implied(scored)) == expected


@pytest.mark.parametrize("status", ["UNQUALIFIED", "unqualified", "Closed - Not Converted"])
def test_disqualifying_lead_status_blocks_any_move(model, status):
    assert next_stage(model, Stage.LEAD, status, implied(Stage.SQL)) is None
    assert next_stage(model, None, status, implied(Stage.SQL)) is None


def test_disqualified_contact_is_not_promoted_past_lead(model):
    assert next_stage(model, Stage.LEAD, "OPEN", implied(Stage.SQL, "works at a competitor")) is None
    assert next_stage(model, None, None, implied(Stage.SQL, "no valid email address")) is Stage.LEAD


def test_rejected_sql_recycles_to_lead_after_quiet_period(model):
    after = model.recycle.after_days
    quiet = implied(Stage.SQL, idle_days=after + 1)
    assert next_stage(model, Stage.SQL, "BAD_TIMING", quiet) is Stage.LEAD
    assert next_stage(model, Stage.SQL, "BAD_TIMING", dataclasses.replace(quiet, idle_days=None)) is Stage.LEAD
    # recycled and still quiet: held at lead, not promoted straight back
    assert next_stage(model, Stage.LEAD, "BAD_TIMING", quiet) is None


def test_rejected_sql_that_keeps_engaging_is_left_alone(model):
    busy = implied(Stage.SQL, idle_days=2)
    assert next_stage(model, Stage.SQL, "BAD_TIMING", busy) is None
    assert next_stage(model, Stage.LEAD, "BAD_TIMING", busy) is Stage.SQL  # re-engaged: promoted again
