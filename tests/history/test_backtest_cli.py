"""`leadsync backtest` and `calibrate --from-state` over a backfilled sandbox: the state's persons, pooled
engagement and CRM history in, point-in-time figures out, with no CRM call."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from scoring.loader import default_model, dump_model, loads_model
from scoring.schema import ScoringModel
from sync.cli import app
from sync.history_subjects import outcomes_from_state, subjects
from sync.settings import Settings
from sync.state import State

runner = CliRunner()


def _json(*args: str) -> dict:
    result = runner.invoke(app, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _eager_model(tmp_path):
    """The default model with lower SQL thresholds: more hand-offs, and earlier."""
    data = default_model().model_dump(by_alias=True, exclude_defaults=True)
    data["version"] = "eager"
    data["stages"]["sql"] = {"fit": 20, "engagement": 15}
    data["stages"]["mql"] = {"fit": 15, "engagement": 8}
    path = tmp_path / "eager.toml"
    path.write_text(dump_model(ScoringModel.model_validate(data)))
    return path


def test_backtest_replays_stored_history_and_compares_two_models(sandbox_env, tmp_path):
    _json("backfill")
    calls = sandbox_env.hubspot.app.api_calls() + sandbox_env.salesforce.app.api_calls()
    state = State(Settings().state_url)
    people = subjects(state, outcomes_from_state(state))
    state.close()
    with_outcome = [s for s in people if s.outcome_at is not None]
    assert with_outcome, "the seeded history gives some persons an opportunity"
    out = _json("backtest", "--since", "52w", "--compare", str(_eager_model(tmp_path)), "--html",
                str(tmp_path / "bt.html"))
    assert out["status"] == "ok" and out["persons"] == len(people)
    base, other = out["figures"]["base"], out["figures"]["other"]
    assert base["persons"] == other["persons"] == len(people)
    assert other["would_sql"] >= base["would_sql"]  # lower thresholds hand off at least as many
    assert base["outcomes_caught"] <= base["outcomes_in_window"]
    by_person = {v["person"]: v for v in out["verdicts"]}
    for v in by_person.values():
        if v["sql_on"] and v["outcome_on"]:
            assert v["sql_on"] <= v["outcome_on"]  # nobody is credited for a hand-off after the outcome
    moves = out["moves"]
    assert sum(moves["counts"].values()) == len(moves["persons"]) > 0
    assert {m["kind"] for m in moves["persons"]} <= {"earlier", "later", "gone", "new"}
    html = (tmp_path / "bt.html").read_text()
    assert "<script" not in html and "Hand-offs that move" in html
    # the backtest reads the state only
    assert sandbox_env.hubspot.app.api_calls() + sandbox_env.salesforce.app.api_calls() == calls


def test_calibrate_from_state_writes_a_loadable_model_with_held_out_figures(sandbox_env, tmp_path):
    _json("backfill")
    out_path = tmp_path / "learned.toml"
    out = _json("calibrate", "--from-state", "--since", "52w", "--horizon", "30", "--out", str(out_path))
    assert out["status"] == "ok" and out["train_examples"] > 0 and out["test_examples"] > 0
    assert set(out["auc"]) == {"current", "learned"} and out["split"]
    learned = loads_model(out_path.read_text())  # the model checks at load accept what calibrate writes
    assert learned.version.endswith("+history")
    assert "not given" not in out_path.read_text()
