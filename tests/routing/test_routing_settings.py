"""`[routing]` / `[alerts]` in leadsync.toml: validated, with errors naming the rule, team or rep; secrets masked."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from sync.cli import app
from sync.settings import Settings, SettingsError

GOOD = """
[routing]
enabled = true
fallback = "maya"
write_owner = { salesforce = ["sql"] }
regions = { emea = ["DE", "FR"] }

[[routing.reps]]
name = "maya"
salesforce_id = "005A"
slack_webhook = "https://hooks.slack.com/services/T1/B1/VERYSECRET"

[[routing.teams]]
name = "emea"
members = { maya = 2 }

[[routing.rules]]
name = "emea-mid"
team = "emea"
regions = ["emea"]
min_company_size = 50

[alerts]
enabled = true
smtp_host = "127.0.0.1"
smtp_password = "SMTP-PASSWORD"
"""


def load(tmp_path, monkeypatch, text: str) -> Settings:
    path = tmp_path / "leadsync.toml"
    path.write_text(text)
    monkeypatch.setenv("LEADSYNC_CONFIG", str(path))
    return Settings()


def test_a_good_config_builds_the_policy(tmp_path, monkeypatch):
    s = load(tmp_path, monkeypatch, GOOD)
    p = s.routing.policy()
    [rule] = p.rules
    assert rule.countries == {"de", "fr"} and rule.min_size == 50 and p.teams["emea"].members == (("maya", 2),)
    dumped = str(s.describe())
    assert "VERYSECRET" not in dumped and "SMTP-PASSWORD" not in dumped


@pytest.mark.parametrize("change, message", [
    (('team = "emea"\nregions', 'team = "apac"\nregions'), "rule 'emea-mid': team 'apac' is not defined"),
    (('regions = ["emea"]', 'regions = ["nowhere"]'), "rule 'emea-mid': region 'nowhere' is not in routing.regions"),
    (("members = { maya = 2 }", "members = { maya = 2, bob = 1 }"), "team 'emea': member 'bob' is not a rep"),
    (("members = { maya = 2 }", "members = { maya = 0 }"), "weights must be whole numbers ≥ 1: maya=0"),
    (('fallback = "maya"', 'fallback = "zed"'), "fallback 'zed' is not a rep"),
    (('salesforce_id = "005A"', 'email = "m@x.com"'), "rep 'maya': needs hubspot_id or salesforce_id"),
    (("min_company_size = 50", "min_company_size = 50\nmax_company_size = 10"),
     "rule 'emea-mid': min_company_size 50 is above max_company_size 10"),
    (('write_owner = { salesforce = ["sql"] }', 'write_owner = { salesforce = ["hot"] }'), "write_owner.salesforce"),
    (('write_owner = { salesforce = ["sql"] }', 'write_owner = { pipedrive = ["sql"] }'), "'pipedrive' is not a CRM"),
])
def test_bad_config_names_the_rule_team_or_rep(tmp_path, monkeypatch, change, message):
    old, new = change
    assert old in GOOD
    with pytest.raises(SettingsError) as exc:
        load(tmp_path, monkeypatch, GOOD.replace(old, new))
    assert message in str(exc.value)
    assert "VERYSECRET" not in str(exc.value) and "SMTP-PASSWORD" not in str(exc.value)


def test_the_cli_reports_a_bad_routing_rule_and_exits(tmp_path, monkeypatch):
    path = tmp_path / "leadsync.toml"
    path.write_text(GOOD.replace('team = "emea"\nregions', 'team = "apac"\nregions'))
    monkeypatch.setenv("LEADSYNC_CONFIG", str(path))
    monkeypatch.setenv("LEADSYNC_STATE_URL", f"sqlite:///{tmp_path}/state.db")
    result = CliRunner().invoke(app, ["plan"])
    assert result.exit_code != 0
    said = " ".join((result.stderr if result.stderr_bytes else result.output).split())
    assert result.exit_code == 2 and "team 'apac' is not defined" in said
