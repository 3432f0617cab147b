"""Rendering: the terminal tables, and the HTML report opened in headless Chromium.

The browser test installs Debian's `chromium` when it is missing (we run as
root); if that is impossible it fails with the reason instead of skipping. It
reads the page's own render status (charts drawn, errors caught) from
`--dump-dom` and saves a screenshot under tests/artifacts/ for a human to look at.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from rich.console import Console

from sync.report import build_report
from sync.report_render import CHARTS, render_html, render_terminal
from tests.report.history import NOW, build_state

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    state = build_state(tmp_path_factory.mktemp("render") / "state.db")
    yield build_report(state, now=NOW, weeks=4)
    state.close()


@pytest.fixture(scope="module")
def html_file(report, tmp_path_factory):
    return render_html(report, tmp_path_factory.mktemp("html") / "report.html")


def _install_chromium() -> str:
    """Path of a Chromium binary, installing Debian's package when missing; fails loudly if it cannot."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    steps = (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"])
    for cmd in steps:
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
        except (OSError, subprocess.TimeoutExpired) as exc:
            pytest.fail(f"cannot install chromium for the HTML report test: {' '.join(cmd)}: {exc}")
        if done.returncode != 0:
            pytest.fail(f"cannot install chromium for the HTML report test: {' '.join(cmd)} exited "
                        f"{done.returncode}:\n{done.stderr[-2000:]}")
    found = shutil.which("chromium")
    if not found:
        pytest.fail("apt-get installed chromium but no `chromium` binary is on PATH")
    return found


@pytest.fixture(scope="module")
def chromium() -> str:
    return _install_chromium()


def _run_chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90)


# --------------------------------------------------------------------------- terminal


def test_terminal_shows_every_section(report):
    console = Console(record=True, width=150)
    render_terminal(report, console)
    text = console.export_text()
    for title in ("Funnel now", "Weekly flow", "Hand-off", "Why leads qualify", "Score distribution",
                  "Forecast", "Data quality", "Funnel by owner", "Funnel by country"):
        assert title in text
    assert "66.7%" in text and "1.0 (indicative)" in text and "indicative only" in text


# --------------------------------------------------------------------------- HTML


def test_html_is_self_contained(report, html_file):
    page = html_file.read_text(encoding="utf-8")
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", page), "the report must not load anything"
    assert "@media print" in page and "Plotly.newPlot" in page
    assert page.count("plotly.js v") >= 1, "plotly.js itself is inline"
    for name, _ in CHARTS:
        assert f'id="chart-{name}"' in page
    data = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S)
    assert data and json.loads(data.group(1)) == report


def test_html_escapes_data_from_the_crm(report, tmp_path):
    hostile = json.loads(json.dumps(report))
    hostile["handoff"]["by_owner"]['</script><b id="x">'] = hostile["handoff"]["by_owner"].pop("o1")
    page = render_html(hostile, tmp_path / "r.html").read_text(encoding="utf-8")
    assert '<b id="x">' not in page


def test_html_renders_in_headless_chromium(html_file, chromium, tmp_path):
    dom = _run_chromium(chromium, tmp_path / "profile-dom", "--virtual-time-budget=10000", "--dump-dom",
                        html_file.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = re.search(r'<pre id="render-status" hidden="">(.*?)</pre>', dom.stdout, re.S)
    assert found and found.group(1), "the page's render status script did not run"
    status = json.loads(found.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
    assert status["plotly"] is True
    assert status["errors"] == []
    assert sorted(status["charts"]) == sorted(f"chart-{name}" for name, _ in CHARTS)
    for chart, drawn in status["charts"].items():
        assert drawn["svg"] >= 1 and drawn["marks"] > 0, f"{chart} drew nothing: {drawn}"

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    done = _run_chromium(chromium, tmp_path / "profile-shot", "--virtual-time-budget=10000",
                         "--window-size=1366,2400", f"--screenshot={shot}", html_file.as_uri())
    assert done.returncode == 0 and shot.exists() and shot.stat().st_size > 20_000, done.stderr[-2000:]
