"""Honest status for monitors, through the real clients against the sandbox: exit codes and a top-level
`status` on every --json output, `leadsync status` (the sync-health page), Ctrl-C ending a run as `stopped`,
killed runs found by the next command, and a fresh state refusing a CRM another state already writes to."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from sandbox.server import Fault
from sync.cli import app
from sync.outcome import BUSY, FAILED, OK, PARTIAL, STOPPED, USAGE
from sync.state import State

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def run(*args: str, code: int | None = OK) -> dict:
    """One command in-process with --json: its exit code checked, its one JSON object returned."""
    result = runner.invoke(app, [*args, "--json"], catch_exceptions=False)
    if code is not None:
        assert result.exit_code == code, (result.exit_code, result.output)
    body = json.loads(result.stdout)
    assert "status" in body, body
    return body


def _env(sb, tmp_path: Path, state: str = "state.db") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADSYNC_")}
    env.update(sb.env(), LEADSYNC_STATE_URL=f"sqlite:///{tmp_path}/{state}", PYTHONPATH=str(ROOT))
    return env


def _running(db: Path) -> bool:
    if not db.exists():
        return False
    try:
        with contextlib.closing(sqlite3.connect(db, timeout=5)) as conn:
            query = "SELECT count(*) FROM runs WHERE tenant='default' AND status='running'"
            return conn.execute(query).fetchone()[0] > 0
    except sqlite3.OperationalError:
        return False


def _start_slow_backfill(sandbox, tmp_path: Path) -> subprocess.Popen[str]:
    """A HubSpot backfill in its own process, every request slowed so it is surely mid-run when signalled."""
    sandbox.hubspot.app.faults.append(Fault("*", latency_ms=150))
    proc = subprocess.Popen([sys.executable, "-m", "sync.cli", "backfill", "--source", "hubspot", "--json"],
                            env=_env(sandbox, tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _running(tmp_path / "state.db"):
        time.sleep(0.05)
    assert _running(tmp_path / "state.db"), "the backfill never started"
    time.sleep(1.0)
    return proc


def _reject_one_lead(sb) -> dict:
    """One unconverted Salesforce Lead whose writes the org refuses (a validation rule), as a real org would."""
    lead = next(r for r in sb.salesforce.records("Lead") if r.get("IsConverted") is False and r.get("Email"))
    sb.salesforce.reject_writes([lead["Id"]])
    return lead


def _salesforce(sb):
    """simple-salesforce on the sandbox org, as a person's own tools would use it."""
    import requests
    from simple_salesforce import Salesforce

    from sandbox.run import SALESFORCE_SESSION

    session = requests.Session()
    session.verify, session.trust_env = str(sb.salesforce.ca_pem_path), False
    return Salesforce(instance_url=sb.salesforce_url, session_id=SALESFORCE_SESSION, version="59.0", session=session)


def _writes(app) -> int:
    """Requests to the emulator's write endpoints so far."""
    return sum(n for (ep, _), n in app.counts.items() if any(w in ep for w in ("update", "create", "upsert")))


# --------------------------------------------------------------------------- exit codes and JSON status


def test_plan_with_wrong_credentials_exits_1_and_says_error(sandbox_env, monkeypatch):
    monkeypatch.setenv("LEADSYNC_HUBSPOT__ACCESS_TOKEN", "pat-wrong")
    body = run("plan", "--source", "hubspot", code=FAILED)
    assert body["status"] == "error" and body["runs"][0]["status"] == "error"
    assert "AuthError" in body["runs"][0]["message"]


def test_every_json_output_carries_a_status(sandbox_env):
    first = run("backfill", "--source", "hubspot")
    assert first["status"] == "ok" and first["run_status"] == "ok"
    assert run("sync", "--once")["status"] == "ok"
    assert run("plan")["status"] == "ok"
    assert run("runs")["status"] == "ok"
    assert run("runs", "show", first["run_id"])["status"] == "ok"  # a run record: its own status
    assert run("failures")["status"] == "ok"
    assert run("report")["status"] == "ok"
    assert run("identity", "conflicts")["status"] == "ok"
    assert run("status", code=None)["status"] in ("ok", "attention")


def test_explain_of_an_unknown_email_is_a_json_error(sandbox_env):
    body = run("explain", "nobody@nowhere.example", code=FAILED)
    assert body["status"] == "error" and "nobody@nowhere.example" in body["error"] and body["contacts"] == []


def test_runs_show_of_an_unknown_run_is_a_json_error(sandbox_env):
    body = run("runs", "show", "no-such-run", code=FAILED)
    assert body["status"] == "error" and "no-such-run" in body["error"]


def test_a_sync_whose_records_the_crm_rejects_exits_partial(sandbox_env):
    """Rejected writes are not a clean run: exit 4 and `partial`, the run itself `ok with failures`."""
    _reject_one_lead(sandbox_env)
    body = run("backfill", "--source", "salesforce", code=PARTIAL)
    assert body["status"] == "partial" and body["run_status"] == "ok with failures" and body["failed"] > 0


def test_a_locked_crm_exits_busy_with_a_json_status(sandbox_env):
    from sync.lock import writer_lock

    state = State(os.environ["LEADSYNC_STATE_URL"])
    with writer_lock(state, "hubspot"):
        body = run("backfill", "--source", "hubspot", code=BUSY)
    assert body["status"] == "busy" and body["busy"] == ["hubspot"]


# --------------------------------------------------------------------------- Ctrl-C and kills


def test_ctrl_c_ends_a_run_as_stopped_and_the_next_run_resumes(sandbox, tmp_path):
    proc = _start_slow_backfill(sandbox, tmp_path)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == STOPPED, (proc.returncode, err[-2000:])
    assert "Traceback" not in err and "Stopping after the batch in hand" in err
    body = json.loads(out)
    assert body["status"] == "stopped" and body["run_status"] == "stopped"
    with contextlib.closing(sqlite3.connect(tmp_path / "state.db")) as conn:
        runs = conn.execute("SELECT status, finished_at IS NOT NULL FROM runs WHERE tenant='default'").fetchall()
        assert runs == [("stopped", 1)]
    sandbox.hubspot.app.faults.clear()
    again = subprocess.run([sys.executable, "-m", "sync.cli", "backfill", "--resume", "--source", "hubspot",
                            "--json"], env=_env(sandbox, tmp_path), capture_output=True, text=True, timeout=120)
    assert again.returncode == OK, again.stderr[-2000:]
    assert json.loads(again.stdout)["status"] == "ok"


def test_a_killed_run_is_marked_killed_by_status_and_clears_after_a_good_run(sandbox, tmp_path):
    proc = _start_slow_backfill(sandbox, tmp_path)
    proc.kill()
    proc.communicate(timeout=30)
    sandbox.hubspot.app.faults.clear()
    env = _env(sandbox, tmp_path)

    def status() -> tuple[int, dict]:
        done = subprocess.run([sys.executable, "-m", "sync.cli", "status", "--json"], env=env, capture_output=True,
                              text=True, timeout=120)
        return done.returncode, json.loads(done.stdout)

    code, page = status()
    assert code == FAILED and page["status"] == "error"
    assert len(page["marked_killed_now"]) == 1
    assert [f["what"] for f in page["findings"] if f["level"] == "error"] == ["last_run_killed"]
    hubspot = next(s for s in page["sources"] if s["source"] == "hubspot")
    assert hubspot["run_status"] == "killed"
    resumed = subprocess.run([sys.executable, "-m", "sync.cli", "backfill", "--resume", "--source", "hubspot",
                              "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == OK, resumed.stderr[-2000:]
    code, page = status()
    hubspot = next(s for s in page["sources"] if s["source"] == "hubspot")
    assert hubspot["run_status"] == "ok" and hubspot["quota"]["daily_limit"] > hubspot["quota"]["daily_remaining"] > 0
    assert not [f for f in page["findings"] if f["level"] == "error" and f["what"] != "stale"]
    assert page["runs_killed_or_stopped"][0]["status"] == "killed"  # still listed, no longer a finding


def test_the_next_run_marks_a_killed_run_killed(sandbox, tmp_path):
    proc = _start_slow_backfill(sandbox, tmp_path)
    proc.kill()
    proc.communicate(timeout=30)
    sandbox.hubspot.app.faults.clear()
    resumed = subprocess.run([sys.executable, "-m", "sync.cli", "backfill", "--resume", "--source", "hubspot",
                              "--json"], env=_env(sandbox, tmp_path), capture_output=True, text=True, timeout=120)
    assert resumed.returncode == OK, resumed.stderr[-2000:]
    with contextlib.closing(sqlite3.connect(tmp_path / "state.db")) as conn:
        rows = conn.execute("SELECT status FROM runs WHERE tenant='default' ORDER BY started_at").fetchall()
    assert rows == [("killed",), ("ok",)]


def test_ctrl_c_between_cycles_ends_a_sync_loop_cleanly(sandbox, tmp_path):
    db = tmp_path / "state.db"
    proc = subprocess.Popen([sys.executable, "-m", "sync.cli", "sync", "--every", "1m", "--source", "hubspot",
                             "--json"], env=_env(sandbox, tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(sqlite3.OperationalError):
            if db.exists():
                with contextlib.closing(sqlite3.connect(db, timeout=5)) as conn:
                    if conn.execute("SELECT count(*) FROM runs WHERE tenant='default' AND status='ok'").fetchone()[0]:
                        break
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == OK, (proc.returncode, err[-2000:])
    assert "Traceback" not in err and json.loads(out)["status"] == "ok"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert {r[0] for r in conn.execute("SELECT status FROM runs WHERE tenant='default'")} <= {"ok", "stopped"}


# --------------------------------------------------------------------------- leadsync status


def test_status_reports_each_crm_with_quota_failures_and_conflicts(sandbox_env):
    run("backfill")
    page = run("status", code=None)
    by_source = {s["source"]: s for s in page["sources"]}
    assert set(by_source) == {"hubspot", "salesforce"}
    for line in by_source.values():
        assert line["run_status"] == "ok" and line["kind"] == "backfill" and 0 <= line["age_s"] < 600
        assert line["quota"]["daily_limit"] > line["quota"]["daily_remaining"] > 0
    assert page["identity_conflicts"] >= 0 and page["failures"] == {"held": 0, "retrying": 0}
    levels = {f["level"] for f in page["findings"]}
    assert "error" not in levels
    assert (page["status"], page["exit_code"]) == (("attention", PARTIAL) if levels else ("ok", OK))
    result = runner.invoke(app, ["status"])  # the human page says the same
    assert result.exit_code == page["exit_code"] and "daily quota left" in result.stdout


def test_status_calls_a_crm_stale_when_nothing_ran_for_too_long(sandbox_env):
    run("backfill", "--source", "hubspot")
    time.sleep(1.2)
    page = run("status", "--stale-after", "1s", code=FAILED)
    assert page["status"] == "error" and "stale" in {f["what"] for f in page["findings"]}


def test_status_holds_failures_held_after_every_attempt(sandbox_env, monkeypatch):
    monkeypatch.setenv("LEADSYNC_SYNC__MAX_ATTEMPTS", "1")
    lead = _reject_one_lead(sandbox_env)
    run("backfill", "--source", "salesforce", code=PARTIAL)
    page = run("status", code=None)
    assert page["failures"]["held"] > 0 and "failures_held" in {f["what"] for f in page["findings"]}
    assert page["exit_code"] in (PARTIAL, FAILED)
    shown = run("failures")["failures"]
    assert [(f["record_id"], f["email"], f["attempts"], f["status"]) for f in shown] == [
        (lead["Id"], lead["Email"].strip().lower(), 1, "held")]
    # the manual retry keeps the count: failing again, it is held after its true number of attempts
    retried = run("failures", "--retry", code=PARTIAL)
    assert retried["status"] == "partial" and [(f["attempts"], f["status"]) for f in retried["failures"]] == [
        (2, "held")]


def test_status_with_a_bad_stale_after_is_a_usage_error(sandbox_env):
    result = runner.invoke(app, ["status", "--stale-after", "10"])
    assert result.exit_code == USAGE and "unit" in result.output


# --------------------------------------------------------------------------- a fresh state next to a used CRM


def test_a_fresh_state_refuses_a_crm_another_state_writes_to(sandbox_env, tmp_path, monkeypatch):
    first = run("backfill", "--source", "hubspot")
    assert first["fields_updated"] > 0
    writes = _writes(sandbox_env.hubspot.app)
    monkeypatch.setenv("LEADSYNC_STATE_URL", f"sqlite:///{tmp_path}/elsewhere.db")  # "another folder"
    planned = run("plan", "--source", "hubspot")  # a plan writes nothing, so it does not refuse: it warns
    assert planned["status"] == "ok" and "--new-state" in planned["warnings"][0]
    refused = run("backfill", "--source", "hubspot", code=USAGE)
    assert refused["status"] == "refused" and refused["fields_updated"] == 0 and refused["tasks_created"] == 0
    assert "--new-state" in refused["message"] and "leadsync_score" in refused["message"]
    other = State(f"sqlite:///{tmp_path}/elsewhere.db")
    assert other.audit_for_run(refused["run_id"]) == []
    assert _writes(sandbox_env.hubspot.app) == writes and refused["api_calls"] > 0  # it read, and wrote nothing
    assert run("sync", "--once", "--source", "hubspot", code=USAGE)["status"] == "refused"  # still refused
    taken = run("sync", "--once", "--source", "hubspot", "--new-state")
    assert taken["status"] == "ok"
    assert run("sync", "--once", "--source", "hubspot")["status"] == "ok"  # adopted: no flag needed again


def test_a_state_that_synced_before_is_never_refused(sandbox_env, tmp_path):
    run("backfill", "--source", "hubspot")
    again = run("backfill", "--source", "hubspot")  # its own values on every record: fine
    assert again["status"] == "ok"


# --------------------------------------------------------------------------- plan: every task, with its owner


def test_plan_shows_every_task_with_the_owner_it_goes_to(sandbox_env, monkeypatch):
    from sandbox.seed import OWNERS, SF_QUEUE_ID

    router = next(o.salesforce_id for o in OWNERS if o.active)
    monkeypatch.setenv("LEADSYNC_SALESFORCE__QUEUE_OWNER_ID", router)
    first = run("plan", "--source", "salesforce")["tasks"]
    lead = next(t["contact_id"] for t in first if t["contact_id"].startswith("00Q"))
    _salesforce(sandbox_env).Lead.update(lead, {"OwnerId": SF_QUEUE_ID})  # sales moves it to a queue
    planned = run("plan", "--source", "salesforce")
    queued = {r["Id"] for r in sandbox_env.salesforce.records("Lead") if r.get("OwnerId") == SF_QUEUE_ID}
    assert lead in queued
    tasks = planned["tasks"]
    assert tasks and not [t for t in tasks if (t["owner_id"] or "").startswith("00G")]  # never a queue
    assert all(t["owner_id"] == router for t in tasks if t["contact_id"] in queued)
    assert next(t["owner_id"] for t in tasks if t["contact_id"] == lead) == router
    result = runner.invoke(app, ["plan", "--source", "salesforce", "--limit", "1"])
    flat = " ".join(result.stdout.split())
    assert result.exit_code == OK and f"{len(tasks) - 1:,} more tasks not shown (of {len(tasks):,})" in flat
    assert "leadsync plan --all" in flat
    every = runner.invoke(app, ["plan", "--source", "salesforce", "--all"])
    assert "more tasks not shown" not in every.stdout and every.stdout.count("Follow up:") >= len(tasks)
