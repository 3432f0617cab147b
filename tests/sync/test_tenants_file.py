"""tenants.toml: each tenant validated on its own, secrets only by environment variable, nothing leaking in
from the single-team environment; `--tenant` understood wherever it is typed."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync.cli_context import hoist_tenant
from sync.settings import SettingsError
from sync.tenants import DEFAULT_SCHEDULE, load_tenants, settings_for

FILE = """
[defaults]
state_url = "postgresql://leadsync@db.internal/leadsync"
sync.batch_size = 500

[tenants.acme]
schedule = "*/5 * * * *"
model_path = "models/acme.toml"
hubspot.access_token_env = "ACME_HS"
hubspot.max_calls_per_run = 20000

[tenants.globex]
sync.batch_size = 200
salesforce.instance_url = "https://globex.my.salesforce.com"
salesforce.session_id_env = "GLOBEX_SF_SESSION"
"""


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "tenants.toml"
    p.write_text(text)
    return p


def test_tenants_get_their_own_settings_secrets_from_the_environment(tmp_path):
    found = load_tenants(_write(tmp_path, FILE), {"ACME_HS": "pat-acme", "GLOBEX_SF_SESSION": "00Dglobex"})
    assert found.errors == {}
    acme, globex = found.get("acme"), found.get("globex")
    assert acme.schedule == "*/5 * * * *" and globex.schedule == DEFAULT_SCHEDULE
    assert acme.settings.hubspot.access_token.get_secret_value() == "pat-acme"
    assert acme.settings.hubspot.max_calls_per_run == 20000
    assert acme.settings.configured_sources() == ["hubspot"]
    assert globex.settings.configured_sources() == ["salesforce"]
    # defaults apply, and a tenant overrides one of them without losing the rest of the section
    assert acme.settings.sync.batch_size == 500 and globex.settings.sync.batch_size == 200
    assert acme.settings.sync.max_attempts == 5
    assert acme.settings.state_url == globex.settings.state_url == "postgresql://leadsync@db.internal/leadsync"
    # a relative model path is relative to the tenants file, not to wherever the run starts
    assert acme.settings.model_path == str(tmp_path / "models/acme.toml")
    assert "pat-acme" not in str(acme.settings.describe())


def test_a_bad_tenant_fails_alone_naming_the_key(tmp_path):
    text = FILE + '\n[tenants.initech]\nhubspot.access_token = "pat-inline-secret"\n' \
                  '\n[tenants.umbrella]\nhubspot.access_token_env = "UMBRELLA_HS"\nsync.batch_sise = 3\n'
    found = load_tenants(_write(tmp_path, text), {"ACME_HS": "x", "GLOBEX_SF_SESSION": "y"})
    assert sorted(found.tenants) == ["acme", "globex"]
    assert sorted(found.errors) == ["initech", "umbrella"]
    assert "hubspot.access_token is a secret" in found.errors["initech"]
    assert "pat-inline-secret" not in found.errors["initech"]
    assert "UMBRELLA_HS, which is not set" in found.errors["umbrella"]
    assert "sync.batch_sise" in found.errors["umbrella"] and "batch_size" in found.errors["umbrella"]
    with pytest.raises(SettingsError, match="initech"):
        found.get("initech")
    with pytest.raises(SettingsError, match="no tenant 'nobody'.*acme, globex, initech, umbrella"):
        found.get("nobody")


@pytest.mark.parametrize("table, message", [
    ('schedule = "every 15 minutes"\nhubspot.access_token_env = "T"', "not a cron expression"),
    ('hubspot.base_url = "https://api.hubapi.com"', "configures no CRM"),
    ('state_url = "postgresql://u:hunter2@db/x"\nhubspot.access_token_env = "T"', "state_url holds a password"),
    ('sync.batch_size = 0\nhubspot.access_token_env = "T"', "setting sync.batch_size"),
])
def test_tenant_errors_are_clear(tmp_path, table, message):
    found = load_tenants(_write(tmp_path, f"[tenants.t1]\n{table}\n"), {"T": "pat"})
    assert message in found.errors["t1"]
    assert "hunter2" not in found.errors["t1"]


def test_bad_names_and_files(tmp_path):
    found = load_tenants(_write(tmp_path, '[tenants."Acme Corp"]\nhubspot.access_token_env = "T"\n'), {"T": "x"})
    assert "lower-case letters" in found.errors["Acme Corp"]
    with pytest.raises(SettingsError, match="declares no tenant"):
        load_tenants(_write(tmp_path, "[defaults]\n"))
    with pytest.raises(SettingsError, match="unknown top-level"):
        load_tenants(_write(tmp_path, "[tenant.acme]\n"))
    with pytest.raises(SettingsError, match="cannot read tenants file"):
        load_tenants(_write(tmp_path, "[tenants.acme\n"))


def test_routing_secrets_in_lists_come_from_the_environment(tmp_path):
    text = ('[tenants.acme]\nhubspot.access_token_env = "T"\n'
            '[[tenants.acme.routing.reps]]\nname = "ana"\nhubspot_id = "101"\nslack_webhook_env = "ANA_HOOK"\n')
    found = load_tenants(_write(tmp_path, text), {"T": "x", "ANA_HOOK": "https://hooks.slack.example/ana"})
    assert found.errors == {}
    rep = found.get("acme").settings.routing.reps[0]
    assert rep.slack_webhook.get_secret_value() == "https://hooks.slack.example/ana"


def test_tenant_settings_ignore_the_single_team_environment(tmp_path, monkeypatch):
    """A tenant that sets no HubSpot token must not pick up the default team's LEADSYNC_HUBSPOT__ACCESS_TOKEN."""
    monkeypatch.setenv("LEADSYNC_HUBSPOT__ACCESS_TOKEN", "pat-default-team")
    monkeypatch.setenv("GLOBEX_SF_SESSION", "00D")
    monkeypatch.setenv("ACME_HS", "pat-acme")
    monkeypatch.setenv("LEADSYNC_TENANTS", str(_write(tmp_path, FILE)))
    assert settings_for("globex").configured_sources() == ["salesforce"]
    assert settings_for("default").hubspot.access_token.get_secret_value() == "pat-default-team"
    monkeypatch.delenv("LEADSYNC_TENANTS")
    monkeypatch.chdir(tmp_path / "..")
    with pytest.raises(SettingsError, match="no tenants file"):
        settings_for("globex")


@pytest.mark.parametrize("argv, hoisted", [
    (["plan", "--tenant", "acme", "--json"], ["--tenant", "acme", "plan", "--json"]),
    (["identity", "show", "--tenant=acme", "a@b.c"], ["--tenant=acme", "identity", "show", "a@b.c"]),
    (["--tenant", "acme", "runs"], ["--tenant", "acme", "runs"]),
    (["explain", "--", "--tenant"], ["explain", "--", "--tenant"]),
    (["runs"], ["runs"]),
])
def test_tenant_option_is_hoisted_from_anywhere(argv, hoisted):
    assert hoist_tenant(argv) == hoisted
