"""The scheduled sync: `--every` needs a unit and a minimum, an edited model is picked up by the next cycle,
and time decay runs once a day inside the sync (no separate `--rescore` job) — against the sandbox."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scoring import default_model, load_model
from scoring.loader import DEFAULT_MODEL_PATH
from sync import cli as cli_module
from sync.cli import app
from sync.interval import IntervalError, parse_interval
from sync.outcome import USAGE
from sync.schedule import ModelWatch, daily_rescore, last_rescore, note_rescore
from sync.settings import Settings
from sync.state import State

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def run(*args: str, code: int = 0) -> dict:
    result = runner.invoke(app, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


# --------------------------------------------------------------------------- --every


@pytest.mark.parametrize("text, seconds", [("15m", 900), ("1h", 3600), ("1d", 86400), ("90s", 90), ("1.5h", 5400),
                                           ("2D", 172800), (" 60s ", 60)])
def test_intervals_with_a_unit_parse(text, seconds):
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text, says", [("15", "unit"), ("", "unit"), ("m", "unit"), ("-5m", "unit"),
                                        ("fifteen minutes", "unit"), ("0s", "minimum"), ("30s", "minimum"),
                                        ("0.5m", "minimum")])
def test_intervals_without_a_unit_or_below_the_minimum_are_refused(text, says):
    with pytest.raises(IntervalError, match=says):
        parse_interval(text)


@pytest.mark.parametrize("every", ["15", "0s", "10s"])
def test_sync_every_refuses_a_bare_number_or_a_tight_loop_before_any_work(every, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADSYNC_")}
    env.update(PYTHONPATH=str(ROOT), LEADSYNC_STATE_URL=f"sqlite:///{tmp_path}/state.db", COLUMNS="200")
    done = subprocess.run([sys.executable, "-m", "sync.cli", "sync", "--every", every], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == USAGE, done.stderr
    assert "--every" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "state.db").exists()  # refused before a state was even opened


# --------------------------------------------------------------------------- the model file, reloaded


def _model_file(path: Path, mql_total: int = 40) -> Path:
    text = DEFAULT_MODEL_PATH.read_text(encoding="utf-8")
    path.write_text(text.replace("total = 40 ", f"total = {mql_total} ", 1), encoding="utf-8")
    return path


def test_a_model_watch_reloads_an_edited_file_and_keeps_the_last_good_one(tmp_path, caplog):
    path = _model_file(tmp_path / "model.toml")
    watch = ModelWatch(str(path), lambda p: load_model(p) if p else default_model())
    first = watch.current()
    assert watch.current() is first  # unchanged file: the same model, not loaded again
    _model_file(path, mql_total=30)
    with caplog.at_level(logging.WARNING, logger="leadsync.sync"):
        second = watch.current()
    assert second is not first and "changed: reloaded" in caplog.text
    path.write_text("[stages.mql\n", encoding="utf-8")  # a typo in an edit
    assert watch.current() is second and "does not load" in (watch.problem or "")
    _model_file(path, mql_total=35)
    assert watch.current() is not second and watch.problem is None


def test_the_loop_scores_its_next_cycle_with_the_edited_model(sandbox_env, tmp_path, monkeypatch):
    path = _model_file(tmp_path / "model.toml")
    monkeypatch.setenv("LEADSYNC_MODEL_PATH", str(path))
    run("backfill", "--source", "hubspot")
    settings = Settings()
    state = State(settings.state_url)
    watch = ModelWatch(settings.model_path, lambda p: load_model(p) if p else default_model())
    cycle = cli_module._sync_cycle(settings, state, "hubspot", watch, False, False, False, True)
    assert cycle[0].status == "ok" and cycle[0].fields_updated == 0
    _model_file(path, mql_total=20)  # a looser MQL bar: some leads become MQLs
    note_rescore(state, "hubspot", datetime.now(timezone.utc).date() - timedelta(days=1))  # and today's rescore is due
    cycle = cli_module._sync_cycle(settings, state, "hubspot", watch, False, False, False, True)
    assert cycle[0].status == "ok" and any(k.endswith("->mql") for k in cycle[0].stage_changes), cycle[0]


# --------------------------------------------------------------------------- daily decay rescore


def test_daily_rescore_marks_everyone_once_per_day(tmp_path):
    from mapping.model import Contact

    state = State(f"sqlite:///{tmp_path}/state.db")
    now = datetime(2026, 3, 2, tzinfo=timezone.utc)
    state.upsert_contacts([Contact(source="hubspot", id=str(i), email=f"p{i}@x.io", updated_at=now)
                           for i in range(5)], "r1")
    state.clear_dirty("hubspot", [str(i) for i in range(5)])
    today = date(2026, 3, 2)
    assert daily_rescore(state, ["hubspot"], today) == ["hubspot"] and len(state.dirty("hubspot")) == 5
    state.clear_dirty("hubspot", state.dirty("hubspot"))
    assert daily_rescore(state, ["hubspot"], today) == [] and state.dirty("hubspot") == []
    assert daily_rescore(state, ["hubspot"], today, forced=True) == ["hubspot"]  # --rescore
    state.clear_dirty("hubspot", state.dirty("hubspot"))
    assert daily_rescore(state, ["hubspot"], today + timedelta(days=1)) == ["hubspot"]
    assert last_rescore(state, "hubspot") == "2026-03-03"


def test_the_first_sync_of_a_day_rescores_without_a_separate_job(sandbox_env):
    first = run("backfill", "--source", "hubspot")
    same_day = run("sync", "--once", "--source", "hubspot")
    assert same_day["rescored"] == [] and same_day["contacts_scored"] < first["contacts_scored"]
    state = State(Settings().state_url)
    note_rescore(state, "hubspot", datetime.now(timezone.utc).date() - timedelta(days=1))  # the last rescore was yesterday
    next_day = run("sync", "--once", "--source", "hubspot")
    assert next_day["rescored"] == ["hubspot"]
    assert next_day["contacts_scored"] >= first["contacts_scored"] - 5  # everyone scored again
    assert next_day["fields_updated"] == 0  # (the same real day: the same decay, nothing to write)
    assert run("sync", "--once", "--source", "hubspot")["rescored"] == []  # once a day
