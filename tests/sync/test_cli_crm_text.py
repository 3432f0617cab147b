"""CRM text printed by the CLI is data: markup shows literally, escape sequences never reach the terminal."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta, timezone

import pytest
from typer.testing import CliRunner

from sync.cli import app

NOW = datetime.now(timezone.utc)
OSC8 = "\x1b]8;;https://evil.example/\x1b\\click me\x1b]8;;\x1b\\"
EVIL_TITLE = f"VP \x1b[31mRed\x1b[0m {OSC8} \x9b2J\u202eboss"
runner = CliRunner()


def _write(path, header, rows) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


@pytest.fixture
def crm_text_env(tmp_path, monkeypatch):
    """A CSV source whose people have markup and escape sequences in their names, emails and titles."""
    _write(tmp_path / "contacts.csv", ["id", "email", "first_name", "last_name", "title", "company",
                                         "lifecycle_stage", "owner_id", "country"], [
        ["c1", "ann@acme.io", "Ann", "[/x]", EVIL_TITLE, "[bold]Acme[/bold] [link=https://evil.example]x[/link]",
         "lead", "[/o]", "\x1b]8;;https://evil.example/\x1b\\DE\x1b]8;;\x1b\\"],
        ["c2", "[/i]bob@acme.io", "Bob", "[red]", "VP Sales", "Beta \\", "lead", "<a href='https://evil'>o</a>",
         "[/c]"],
    ])
    day = timedelta(days=1)
    _write(tmp_path / "engagements.csv", ["id", "contact_id", "kind", "occurred_at", "detail"], [
        ["e1", "c1", "demo_request", (NOW - day).isoformat(), "Demo [/x] \x1b[2J"],
        ["e2", "c1", "page_view", (NOW - 2 * day).isoformat(), "https://x.io/pricing[/b]"],
        ["e3", "c2", "demo_request", (NOW - day).isoformat(), "[blink]Demo"],
        ["e4", "c2", "page_view", (NOW - day).isoformat(), "https://x.io/pricing"],
    ])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LEADSYNC_STATE_URL", f"sqlite:///{tmp_path}/state.db")
    monkeypatch.setenv("LEADSYNC_CSV__CONTACTS_PATH", str(tmp_path / "contacts.csv"))
    monkeypatch.setenv("LEADSYNC_CSV__ENGAGEMENTS_PATH", str(tmp_path / "engagements.csv"))
    monkeypatch.delenv("LEADSYNC_CONFIG", raising=False)
    return tmp_path


def _human(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 0, result.output
    return result.output


def _assert_clean(output: str) -> None:
    assert not any(ch in output for ch in ("\x1b", "\x9b", "\u202e")), repr(output)


def test_plan_prints_markup_in_emails_and_names_literally(crm_text_env):
    output = _human("plan", "--source", "csv")
    _assert_clean(output)
    assert "[/i]bob@acme.io" in output
    flat = " ".join(output.split())
    assert "follow-up tasks to create" in flat and "Follow up: Bob [red]" in flat  # a task table: for, owner, task


def test_explain_prints_a_name_with_markup_and_escape_sequences_as_data(crm_text_env):
    runner.invoke(app, ["backfill", "--source", "csv", "--json"], catch_exceptions=False)
    output = _human("explain", "ann@acme.io")
    _assert_clean(output)
    assert "Ann [/x] <ann@acme.io>" in output
    bob = _human("explain", "[/i]bob@acme.io")
    _assert_clean(bob)
    assert "Bob [red] <[/i]bob@acme.io>" in bob


def test_runs_show_and_failures_print_crm_values_as_data(crm_text_env):
    done = json.loads(runner.invoke(app, ["backfill", "--source", "csv", "--json"], catch_exceptions=False).stdout)
    run_id = done["runs"][0]["run_id"] if "runs" in done else done["run_id"]
    output = _human("runs", "show", run_id)
    _assert_clean(output)
    _human("failures")


def test_report_terminal_prints_owner_and_country_as_data(crm_text_env):
    runner.invoke(app, ["backfill", "--source", "csv", "--json"], catch_exceptions=False)
    output = _human("report")
    _assert_clean(output)
    assert "[/o]" in output and "[/c]" in output


def test_html_report_chart_shows_an_owner_id_as_text_not_a_link(crm_text_env):
    runner.invoke(app, ["backfill", "--source", "csv", "--json"], catch_exceptions=False)
    _human("report", "--html", "report.html")
    page = (crm_text_env / "report.html").read_text(encoding="utf-8")
    charts = page[page.index('data-chart="sla"'):page.index("<h2>Figures</h2>")]
    labels = json.loads(charts[charts.index('"x":') + 4:charts.index(',"y"')])
    assert labels == ["&lt;a href='https://evil'&gt;o&lt;/a&gt;", "[/o]"]  # plotly reads <a href> as a link


def test_text_logs_carry_no_escape_sequences_from_crm_values():
    import logging

    from sync.logs import TextFormatter

    record = logging.LogRecord("leadsync.sync", logging.WARNING, __file__, 1, "issue on %s: %s", ("c1", EVIL_TITLE),
                               None)
    line = TextFormatter("%(message)s").format(record)
    assert not any(ch in line for ch in ("\x1b", "\x9b", "\u202e")) and "click me" in line
