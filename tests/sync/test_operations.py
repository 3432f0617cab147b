"""Running unattended: JSON logs with the run id, no secret anywhere, a clean stop on SIGTERM."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

from sandbox.run import HUBSPOT_TOKEN, SALESFORCE_SESSION


def _env(sb, tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADSYNC_")}
    env.update(sb.env(), LEADSYNC_STATE_URL=f"sqlite:///{tmp_path}/state.db")
    return env


def test_json_logs_carry_the_run_id_and_no_secret(sandbox, tmp_path):
    env = _env(sandbox, tmp_path)
    proc = subprocess.run([sys.executable, "-m", "sync.cli", "--log-format", "json", "-v", "backfill", "--source",
                           "salesforce", "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(line) for line in proc.stderr.splitlines() if line.strip()]
    run_id = json.loads(proc.stdout)["run_id"]
    assert lines and any(entry["run_id"] == run_id for entry in lines)
    assert all({"ts", "level", "run_id", "msg"} <= entry.keys() for entry in lines)
    db = (tmp_path / "state.db").read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("state.db-*"))
    for secret in (HUBSPOT_TOKEN, SALESFORCE_SESSION):
        assert secret not in proc.stdout and secret not in proc.stderr
        assert secret.encode() not in db
    rows = sqlite3.connect(tmp_path / "state.db").execute("SELECT summary FROM runs").fetchall()
    assert all(SALESFORCE_SESSION not in r[0] for r in rows)


def _ok_runs(db) -> int:
    """Runs that ended ok so far; 0 while the run is still creating the file or its tables."""
    if not db.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(db, timeout=5)) as conn:
            return conn.execute("SELECT count(*) FROM runs WHERE tenant='default' AND status='ok'").fetchone()[0]
    except sqlite3.OperationalError:  # no file or table yet, or the WAL switch under way
        return 0


def test_sigterm_finishes_cleanly_and_the_next_run_continues(sandbox, tmp_path):
    env = _env(sandbox, tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "sync.cli", "sync", "--every", "1m", "--source", "hubspot",
                             "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    db = tmp_path / "state.db"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _ok_runs(db):
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    statuses = [r[0] for r in sqlite3.connect(db).execute("SELECT status FROM runs WHERE tenant='default'")]
    # Between runs it just exits; mid-run the run ends "stopped". Never left "running".
    assert statuses and set(statuses) <= {"ok", "stopped"}
    after = subprocess.run([sys.executable, "-m", "sync.cli", "sync", "--once", "--source", "hubspot", "--json"],
                           env=env, capture_output=True, text=True, timeout=120)
    assert after.returncode == 0 and json.loads(after.stdout)["runs"][0]["status"] == "ok"
