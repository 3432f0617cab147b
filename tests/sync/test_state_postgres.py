"""The state store on PostgreSQL: the SQLite behaviours again, plus what differs by engine.

A throw-away PostgreSQL server is started for the session (as the `postgres` OS user when
we are root: the server refuses to run as root), on a free port on 127.0.0.1 with trust
auth, and every test gets its own database. If the server binaries are missing they are
installed from Debian's `postgresql` package; if that is impossible the tests fail loudly.
"""

from __future__ import annotations

import glob
import itertools
import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from sandbox.run import start_sandbox
from sync.cli import app
from sync.db import connect, mask_url
from sync.state import _MIGRATIONS, SCHEMA_VERSION, State, StateError
from tests.sync.test_state import (  # the SQLite behaviours, re-run here on PostgreSQL via `state` below
    T0,
    contact,
    test_engagement_is_stored_once_and_marks_its_contact,  # noqa: F401
    test_failures_retry_then_held,  # noqa: F401
    test_our_write_echo_is_recognised,  # noqa: F401
    test_task_ledger_intent_then_confirm,  # noqa: F401
    test_unchanged_contact_is_not_dirty_and_changed_one_is,  # noqa: F401
)

PASSWORD = "s3cret-pw"  # trust auth ignores it; it is here to prove it never shows
_INITDB_GLOB = "/usr/lib/postgresql/*/bin/initdb"
_db_numbers = itertools.count(1)


# ----------------------------------------------------------------------------- the server


@dataclass
class PgServer:
    port: int
    root: Path
    bin: Path
    as_postgres: list[str]

    def url(self, dbname: str, password: str | None = PASSWORD) -> str:
        auth = f"postgres:{password}" if password else "postgres"
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{dbname}"

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(self.url("postgres"), autocommit=True)


def _version_key(path: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", path)]


def _postgres_bin() -> Path:
    """The newest installed server's bin dir, installing Debian's package when there is none."""
    found = glob.glob(_INITDB_GLOB)
    if not found:
        _install_postgresql()
        found = glob.glob(_INITDB_GLOB)
    if not found:
        pytest.fail(f"PostgreSQL server binaries not found ({_INITDB_GLOB}) even after installing `postgresql`")
    return Path(max(found, key=_version_key)).parent


def _install_postgresql() -> None:
    if os.geteuid() != 0:
        pytest.fail("PostgreSQL server binaries are missing and we are not root to install them: "
                    "run `apt-get install -y postgresql` first")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "postgresql"]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            pytest.fail(f"could not install PostgreSQL for the state-store tests ({' '.join(cmd)}):\n"
                        f"{done.stderr[-2000:]}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(server_cmd: list[str], what: str, log: Path | None = None) -> None:
    done = subprocess.run(server_cmd, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        tail = log.read_text()[-2000:] if log and log.exists() else ""
        pytest.fail(f"PostgreSQL {what} failed: {done.stdout[-1000:]}{done.stderr[-2000:]}{tail}")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    with running_server() as server:
        yield server


@contextmanager
def running_server() -> Iterator[PgServer]:
    """A throw-away server for as long as the block runs (the session fixture's, and bench_tenants.py's)."""
    bindir = _postgres_bin()
    root = Path(tempfile.mkdtemp(prefix="leadsync-pg-"))
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
        as_postgres = ["runuser", "-u", "postgres", "--"]
    server = PgServer(_free_port(), root, bindir, as_postgres)
    data, log = root / "data", root / "server.log"
    _run([*as_postgres, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
          "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"], "initdb")
    opts = (f"-p {server.port} -k {root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
    _run([*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "30",
          "-o", opts, "start"], "start", log)
    try:
        yield server
    finally:
        subprocess.run([*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """A fresh database whose default collation is not bytewise (ICU en-US), to keep ordering honest."""
    name = f"leadsync_t{next(_db_numbers)}"
    with pg_server.admin() as admin:
        admin.execute(f"CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'")
    yield pg_server.url(name)
    with pg_server.admin() as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def state(pg_url: str) -> Iterator[State]:
    """Overrides test_state.py's SQLite `state` for the behaviours imported above."""
    s = State(pg_url)
    assert s.engine == "postgresql"
    yield s
    s.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on both engines."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/state.db"
    return request.getfixturevalue("pg_url")


# ----------------------------------------------------------------------------- schema and engine


def test_schema_is_versioned_and_reopened_not_recreated(url):
    s = State(url)
    with s.tx():
        s.upsert_contacts([contact()], "r1")
    s.close()
    s2 = State(url)
    assert s2.count_contacts() == 1
    assert s2.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
    s2.close()


def test_newer_schema_is_refused_without_showing_the_password(url):
    s = State(url)
    s.db.execute("UPDATE meta SET value='999' WHERE key='schema_version'")
    s.close()
    with pytest.raises(StateError, match="newer") as caught:
        State(url)
    assert PASSWORD not in str(caught.value)


def test_version_1_database_is_upgraded_keeping_audit_order(url):
    db = connect(url)  # what leadsync 0.1 left behind: schema 1, audit ordered by rowid only
    with db.transaction():
        db.execute(db.dialect.ddl("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"))
        for statement in _MIGRATIONS[1]:
            db.execute(db.dialect.ddl(statement))
        db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        db.executemany("INSERT INTO audit VALUES (?,?,?,?,?,?,?,?,?)",
                       [("r1", "hubspot", "contact", rid, "leadsync_score", None, "1", T0.isoformat(), "ok")
                        for rid in ("9", "1", "5")])
    db.close()
    s = State(url)
    assert s._schema_version() == SCHEMA_VERSION
    s.audit("r1", "hubspot", "contact", "0", {"leadsync_score": (None, "2")})
    assert [a["record_id"] for a in s.audit_for_run("r1")] == ["9", "1", "5", "0"]
    s.close()


def test_version_3_engagements_move_to_compact_rows_with_nothing_lost(url):
    """Migration 4: times become epoch milliseconds and texts are stored once; every row reads back the same."""
    db = connect(url)
    with db.transaction():
        db.execute(db.dialect.ddl("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"))
        for version in (1, 2, 3):
            for statement in _MIGRATIONS[version]:
                db.execute(db.dialect.ddl(statement))
        db.execute("INSERT INTO meta VALUES ('schema_version', '3')")
        db.executemany("INSERT INTO engagements VALUES (?,?,?,?,?,?,?,?)", [
            ("hubspot", "e1", "7", None, "page_view", "2026-01-05T12:00:00.123000+00:00", "https://x.io/pricing", ""),
            ("hubspot", "e2", "7", None, "page_view", "2026-01-06T08:30:00+00:00", "https://x.io/pricing", ""),
            ("salesforce", "e1", "00Q1", "ada@x.io", "webinar", "2025-12-31T23:59:59+00:00", "Q4 launch", "Launch"),
        ])
    db.close()
    s = State(url)
    assert s._schema_version() == SCHEMA_VERSION
    hs = s.engagements_for("hubspot", ["7"])["7"]
    assert [(e.id, e.occurred_at, e.detail, e.campaign) for e in hs] == [
        ("e1", datetime(2026, 1, 5, 12, 0, 0, 123000, tzinfo=timezone.utc), "https://x.io/pricing", ""),
        ("e2", datetime(2026, 1, 6, 8, 30, tzinfo=timezone.utc), "https://x.io/pricing", "")]
    (sf,) = s.engagements_for("salesforce", ["00Q1"])["00Q1"]
    assert (sf.kind, sf.detail, sf.campaign, sf.contact_email) == ("webinar", "Q4 launch", "Launch", "ada@x.io")
    texts = s.db.execute("SELECT count(*) FROM texts WHERE tenant='default'").fetchone()[0]
    assert texts == 4  # pricing URL once, "", name, campaign
    assert s.upsert_engagements(hs) == []  # unchanged rows are recognised as such after the move
    s.close()


def test_tx_is_all_or_nothing(url):
    s = State(url)
    with pytest.raises(RuntimeError), s.tx():
        s.upsert_contacts([contact("1")], "r1")
        raise RuntimeError("crash mid-batch")
    assert s.count_contacts() == 0 and s.dirty("hubspot") == []
    s.close()


def test_ordering_is_bytewise_on_both_engines(url):
    ids = ["b", "B", "a", "_1", "10", "9", "é"]
    s = State(url)
    with s.tx():
        s.upsert_contacts([contact(i) for i in ids], "r1")
    assert s.all_contact_ids("hubspot") == sorted(ids) == s.dirty("hubspot")
    s.close()


def test_upserts_replace_and_ignore_like_sqlite_did(url):
    s = State(url)
    row = ("hubspot", "1", 10, 20, 30, "mql", None, "{}", T0.isoformat())
    s.save_scores([row])
    s.save_scores([(*row[:6], "mql", '{"total": 31}', T0.isoformat())])
    assert s.score_detail("hubspot", "1") == {"total": 31}
    assert s.stage_counts() == {"hubspot": {"mql": 1}}
    s.mark_dirty("hubspot", ["1", "1"])
    s.mark_dirty("hubspot", ["1"])
    assert s.dirty("hubspot") == ["1"]
    s.task_intent("k1", "hubspot", "1", "sql", "r1", {})
    s.task_confirm("k1", "900")
    s.task_intent("k1", "hubspot", "1", "sql", "r2", {})  # re-planned: a created task stays created
    assert s.task_entry("k1") == {"key": "k1", "status": "created", "crm_id": "900", "run_id": "r2"}
    s.task_undone("k1")
    assert s.task_entry("k1")["status"] == "undone"
    s.close()


def test_set_stage_keeps_the_snapshot_in_step(url):
    from mapping.model import Stage

    s = State(url)
    s.upsert_contacts([contact("1")], "r1")
    s.clear_dirty("hubspot", ["1"])
    s.set_stage("hubspot", "1", Stage.MQL)
    assert s.contacts("hubspot", ["1"])["1"].lifecycle_stage == Stage.MQL
    assert s.upsert_contacts([contact("1", lifecycle_stage=Stage.MQL)], "r2") == []  # the echo is no change
    s.close()


@pytest.mark.parametrize("bad", ["mysql://u:hunter2@h/db", "sqlite:relative.db", "postgresq://u:hunter2@h/db"])
def test_unsupported_urls_are_refused_without_showing_the_password(bad):
    with pytest.raises(StateError, match="unsupported") as caught:
        State(bad)
    assert "hunter2" not in str(caught.value)


def test_unreachable_server_is_a_state_error_without_the_password():
    with pytest.raises(StateError, match="cannot open") as caught:
        State(f"postgresql://u:{PASSWORD}@127.0.0.1:{_free_port()}/x?connect_timeout=2")
    assert PASSWORD not in str(caught.value)


@pytest.mark.parametrize("raw, masked", [
    ("postgresql://u:p%40ss@db.example:5433/leads", "postgresql://u:***@db.example:5433/leads"),
    ("postgres://u@h/db?password=pw&sslmode=require", "postgres://u@h/db?password=***&sslmode=require"),
    ("postgresql://h/db", "postgresql://h/db"),
    ("sqlite:///.leadsync/state.db", "sqlite:///.leadsync/state.db"),
])
def test_describe_url_masks_the_password(raw, masked):
    assert mask_url(raw) == masked


def test_describe_url_on_a_state(pg_url):
    s = State(pg_url)
    assert PASSWORD not in s.describe_url() and ":***@" in s.describe_url()
    s.close()


# ----------------------------------------------------------------------------- end to end


@contextmanager
def sandbox_on(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int) -> Iterator[None]:
    """A sandbox of 300 people with leadsync's settings pointing at it and at this PostgreSQL state."""
    sb = start_sandbox(contacts=300, seed=seed)
    try:
        for key, value in sb.env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("LEADSYNC_STATE_URL", pg_url)
        monkeypatch.delenv("LEADSYNC_CONFIG", raising=False)
        monkeypatch.chdir(tmp_path)
        yield
    finally:
        sb.stop()


def test_backfill_against_the_sandbox_with_postgresql_state(pg_url, tmp_path, monkeypatch):
    with sandbox_on(pg_url, tmp_path, monkeypatch, seed=3):
        runner = CliRunner()
        outputs = []
        for args in (["backfill", "--source", "hubspot"], ["sync", "--once", "--source", "hubspot"]):
            result = runner.invoke(app, [*args, "--json"], catch_exceptions=False)
            outputs.append(result.output)
            assert result.exit_code == 0, result.output
        first, again = (json.loads(o) for o in outputs)
        assert first["status"] == "ok" and first["contacts_pulled"] > 0 and first["failed"] == 0
        assert first["fields_updated"] > 0 and first["tasks_created"] > 0
        assert again["fields_updated"] == 0 and again["tasks_created"] == 0 and again["failed"] == 0
        assert all(PASSWORD not in o for o in outputs)
    s = State(pg_url)
    assert s.count_contacts("hubspot") == first["contacts_pulled"]
    assert [r["status"] for r in s.runs()] == ["ok", "ok"]
    assert len(s.audit_for_run(first["run_id"])) >= first["fields_updated"]
    s.close()


def test_one_writer_per_source_on_both_engines(url):
    from sync.lock import LockBusy, writer_lock

    first, second = State(url), State(url)
    try:
        with writer_lock(first, "hubspot"):
            with pytest.raises(LockBusy, match="another leadsync run"):
                with writer_lock(second, "hubspot"):
                    pass
            with writer_lock(second, "salesforce"):  # another CRM is another writer
                pass
        with writer_lock(second, "hubspot"):  # released on exit
            pass
    finally:
        first.close()
        second.close()


def test_persons_and_hand_offs_with_postgresql_state(pg_url, tmp_path, monkeypatch):
    """The person layer's tables and queries (links, overrides, the hand-off ledger) on PostgreSQL."""
    with sandbox_on(pg_url, tmp_path, monkeypatch, seed=4):
        runner = CliRunner()

        def cli(*args: str) -> dict:
            result = runner.invoke(app, [*args, "--json"], catch_exceptions=False)
            assert result.exit_code == 0, result.output
            return json.loads(result.stdout)

        first = cli("backfill")
        created = sum(r["records_created"] for r in first["runs"])
        assert created > 0 and all(r["failed"] == 0 for r in first["runs"])
        again = cli("sync", "--once")
        assert again["fields_updated"] == 0 and again["records_created"] == 0 and again["tasks_created"] == 0
        conflicts = cli("identity", "conflicts")
        assert conflicts["persons"] > 0


def test_nurture_membership_is_kept_alike_on_both_engines(url):
    s = State(url)
    with s.tx():
        s.nurture_joined("salesforce", "701A", "00Q1", "00v1", "Sent", "r1")
        s.nurture_joined("salesforce", "701A", "00Q2", "00v2", "Sent", "r1")
        s.nurture_joined("hubspot", "5001", "51", None, None, "r1")
        s.nurture_joined("salesforce", "701A", "00Q1", "00v1", "Responded", "r2")  # an upsert, not a second row
    assert s.nurture_members("salesforce", "701A", ["00Q1", "00Q2", "00Q3"]) == {
        "00Q1": ("00v1", "Responded"), "00Q2": ("00v2", "Sent")}
    with s.tx():
        s.nurture_left("salesforce", "701A", "00Q2")
    assert s.nurture_members("salesforce", "701A", ["00Q2"]) == {}
    assert s.nurture_members("hubspot", "5001", ["51"]) == {"51": (None, None)}
    assert (s.count_nurture_members(), s.count_nurture_members("hubspot")) == (2, 1)
