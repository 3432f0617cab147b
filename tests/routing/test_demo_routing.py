"""`leadsync demo` routes its hand-offs by territory over the sandbox's users and shows the alert it would send."""

from __future__ import annotations

import json
import os

from typer.testing import CliRunner

from sync.cli import app
from sync.state import State

EMEA = {"United Kingdom", "Germany", "France", "Poland", "Nigeria"}
AMERICAS = {"United States", "Canada", "Brazil", "Mexico"}


def test_demo_shows_territory_routing_and_the_alert(tmp_path, monkeypatch):
    for name in [k for k in os.environ if k.startswith("LEADSYNC_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["demo", "--contacts", "600", "--json", "--state-dir", str(tmp_path)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output[-2000:]
    routing = json.loads(result.stdout)["routing"]
    teams = routing["round_robin"]
    assert "pat" not in teams.get("emea", {}) and "leo" not in teams.get("americas", {})  # inactive, away
    example = routing["example"]
    assert example["rule"] in ("emea", "americas")
    text = example["slack"]["text"]
    assert text.startswith("*Follow up:") and f"round robin picked {example['rep']}" in text
    st = State(f"sqlite:///{tmp_path}/state.db")
    rows = st.db.execute("SELECT DISTINCT record_key, rule FROM route_assignments WHERE tenant='default'").fetchall()
    records = st.records([k for k, _ in rows])
    checked = 0
    for key, rule in rows:
        c = records.get(key)
        if c is None or not c.country:
            continue
        if rule == "emea":
            assert c.country in EMEA
        elif rule == "americas":
            assert c.country in AMERICAS
        checked += rule in ("emea", "americas")
    assert checked > 0
