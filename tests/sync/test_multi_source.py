"""One sync over both CRMs: a CRM that fails or is locked never keeps the other from its run."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from typer.testing import CliRunner

from sync.cli import app
from sync.settings import Settings

runner = CliRunner()


def test_a_failing_crm_does_not_stop_the_other(sandbox_env, monkeypatch):
    token = Settings().hubspot.access_token
    monkeypatch.setenv("LEADSYNC_HUBSPOT__ACCESS_TOKEN", "pat-na1-wrong")
    result = runner.invoke(app, ["sync", "--once", "--json"], catch_exceptions=False)
    assert result.exit_code == 1
    runs = {r["source"]: r for r in json.loads(result.stdout)["runs"]}
    assert runs["hubspot"]["status"] == "error" and runs["hubspot"]["message"]
    assert runs["salesforce"]["status"] == "ok" and runs["salesforce"]["contacts_pulled"] > 0
    # HubSpot was never pulled: who is there is unknown, so nothing is decided yet (stages only move forward).
    assert runs["salesforce"]["records_updated"] == 0 and "first complete pull" in runs["salesforce"]["message"]
    monkeypatch.setenv("LEADSYNC_HUBSPOT__ACCESS_TOKEN", token.get_secret_value())
    both = json.loads(runner.invoke(app, ["sync", "--once", "--json"], catch_exceptions=False).stdout)
    assert all(r["status"] == "ok" for r in both["runs"]) and both["records_updated"] > 0
    # Once both were pulled, a CRM failing again no longer holds back the other: it decides with what it knows.
    monkeypatch.setenv("LEADSYNC_HUBSPOT__ACCESS_TOKEN", "pat-na1-wrong")
    monkeypatch.setenv("LEADSYNC_SALESFORCE__OVERLAP_S", "0")
    later = {r["source"]: r for r in json.loads(
        runner.invoke(app, ["sync", "--once", "--rescore", "--json"], catch_exceptions=False).stdout)["runs"]}
    assert later["hubspot"]["status"] == "error" and later["salesforce"]["contacts_scored"] > 0


def test_a_locked_crm_is_skipped_and_the_other_runs(sandbox_env):
    state_url = Settings().state_url
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from sync.state import State; from sync.lock import writer_lock\n"
         f"s = State({state_url!r})\n"
         "with writer_lock(s, 'hubspot'):\n    print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        result = runner.invoke(app, ["sync", "--once", "--json"], catch_exceptions=False)
        assert time.monotonic() - started < 55  # it did not wait for the lock
        assert result.exit_code == 3
        runs = {r["source"]: r for r in json.loads(result.stdout)["runs"]}
        assert set(runs) == {"salesforce"} and runs["salesforce"]["status"] == "ok"
        assert "another leadsync run" in result.stderr
    finally:
        holder.kill()
        holder.wait()
