"""Settings that cannot silently misfire: a mistyped `LEADSYNC_*` variable or config key is an error that
names it, and the default state lives in the per-user data directory whatever folder leadsync runs from."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sync.cli import STARTER_CONFIG
from sync.settings import Settings, SettingsError, unknown_env

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in [k for k in os.environ if k.startswith("LEADSYNC_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    return tmp_path


def leadsync(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sync.cli", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"})


def test_a_mistyped_environment_variable_is_an_error_naming_it_and_the_right_name(clean_env, monkeypatch):
    monkeypatch.setenv("LEADSYNC_HUBSPOT__ACESS_TOKEN", "pat-secret-value")
    with pytest.raises(SettingsError, match=r"LEADSYNC_HUBSPOT__ACESS_TOKEN.*did you mean 'access_token'"):
        Settings()
    done = leadsync("runs", cwd=clean_env)
    assert done.returncode == 2 and "LEADSYNC_HUBSPOT__ACESS_TOKEN" in done.stderr
    assert "pat-secret-value" not in done.stderr + done.stdout and "Traceback" not in done.stderr


def test_every_unknown_variable_is_named_at_once(clean_env, monkeypatch):
    monkeypatch.setenv("LEADSYNC_STATE", "sqlite:///x.db")
    monkeypatch.setenv("LEADSYNC_SYNC__BATCHSIZE", "5")
    with pytest.raises(SettingsError) as caught:
        Settings()
    text = str(caught.value)
    assert "LEADSYNC_STATE:" in text and "did you mean 'state_url'" in text
    assert "LEADSYNC_SYNC__BATCHSIZE" in text and "'batch_size'" in text


def test_variables_that_are_not_settings_and_free_form_sections_are_accepted(clean_env, monkeypatch):
    monkeypatch.setenv("LEADSYNC_RECORD_LIVE", "0")
    monkeypatch.setenv("LEADSYNC_SYNC__BATCH_SIZE", "500")
    assert Settings().sync.batch_size == 500
    env = {"LEADSYNC_IDENTITY__FIELD_RULES__TITLE": "x", "LEADSYNC_HUBSPOT": "{}", "OTHER": "1"}
    assert unknown_env(env, Settings) == []  # a dict's keys, a whole section as JSON, other programs' names


def test_an_unknown_config_key_is_an_error_naming_the_file_and_key(clean_env):
    config = clean_env / "leadsync.toml"
    config.write_text('state_url = "sqlite:////tmp/x.db"\nmodel = "m.toml"\n[sync]\nbatch_sise = 10\n'
                      '[hubspot]\nbase_url = "http://h"\n[salesforcee]\napi_version = "59.0"\n', encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        Settings()
    text = str(caught.value)
    for needle in ("leadsync.toml: unknown setting 'model'", "'model_path'", "'sync.batch_sise'", "'batch_size'",
                   "'salesforcee'", "'salesforce'"):
        assert needle in text, (needle, text)
    assert "base_url" not in text
    done = leadsync("runs", cwd=clean_env)
    assert done.returncode == 2 and "sync.batch_sise" in done.stderr


def test_the_default_state_is_per_user_and_the_same_from_any_folder(clean_env, tmp_path):
    here = Settings().state_url
    assert here == f"sqlite:///{tmp_path / 'xdg' / 'leadsync' / 'state.db'}"
    elsewhere = tmp_path / "some" / "other" / "folder"
    elsewhere.mkdir(parents=True)
    os.chdir(elsewhere)
    assert Settings().state_url == here
    done = leadsync("runs", "--json", cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "xdg" / "leadsync" / "state.db").exists() and not (elsewhere / ".leadsync").exists()


def test_the_state_url_setting_still_overrides_the_default(clean_env, monkeypatch, tmp_path):
    monkeypatch.setenv("LEADSYNC_STATE_URL", f"sqlite:///{tmp_path}/mine.db")
    assert Settings().state_url == f"sqlite:///{tmp_path}/mine.db"


def test_the_starter_config_sets_no_folder_relative_state(clean_env):
    assert "\nstate_url" not in STARTER_CONFIG and ".leadsync/state.db" not in STARTER_CONFIG
    (clean_env / "leadsync.toml").write_text(STARTER_CONFIG, encoding="utf-8")
    assert Settings().state_url.endswith("/xdg/leadsync/state.db")  # and it loads: no unknown key in it
