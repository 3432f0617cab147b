"""Bad settings, config files and scoring models are one clear error naming the file (and rule or key),
from the `leadsync` command too: never a traceback, never silently ignored, never late."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sync.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parents[2]
STAGES = "[stages.mql]\ntotal = 10\n[stages.sql]\ntotal = 20\n"


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in [k for k in os.environ if k.startswith("LEADSYNC_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LEADSYNC_STATE_URL", f"sqlite:///{tmp_path}/state.db")
    return tmp_path


def leadsync(*args: str) -> subprocess.CompletedProcess[str]:
    """The real command line in a subprocess, with this test's environment and working directory."""
    return subprocess.run([sys.executable, "-m", "sync.cli", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"})


def assert_clean_failure(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    flat = " ".join(done.stderr.split())
    for needle in needles:
        assert needle in flat, (needle, done.stderr)


def test_a_config_file_that_does_not_exist_is_an_error_naming_it(clean_env, monkeypatch):
    missing = clean_env / "nope" / "leadsync.toml"
    monkeypatch.setenv("LEADSYNC_CONFIG", str(missing))
    with pytest.raises(SettingsError, match=f"LEADSYNC_CONFIG={missing}: no such file"):
        Settings()
    assert_clean_failure(leadsync("runs"), str(missing), "no such file")


def test_a_config_file_that_is_not_toml_names_its_path_and_line(clean_env, monkeypatch):
    bad = clean_env / "team.toml"
    bad.write_text('[sync]\nbatch_size = 100\nstate_url = "x\n', encoding="utf-8")
    monkeypatch.setenv("LEADSYNC_CONFIG", str(bad))
    with pytest.raises(SettingsError, match=rf"^{bad}: not valid TOML: .*line 3"):
        Settings()
    assert_clean_failure(leadsync("runs"), str(bad), "not valid TOML")


def test_a_config_file_that_is_not_utf8_names_its_path(clean_env, monkeypatch):
    bad = clean_env / "team.toml"
    bad.write_bytes(b'model_path = "caf\xe9.toml"\n')
    monkeypatch.setenv("LEADSYNC_CONFIG", str(bad))
    with pytest.raises(SettingsError, match=rf"^{bad}: not UTF-8"):
        Settings()


@pytest.mark.parametrize("value", ["0", "-5"])
def test_batch_size_below_one_fails_when_settings_load(clean_env, monkeypatch, value):
    monkeypatch.setenv("LEADSYNC_SYNC__BATCH_SIZE", value)
    with pytest.raises(SettingsError, match=rf"sync\.batch_size: .*greater than or equal to 1, got '{value}'"):
        Settings()
    assert_clean_failure(leadsync("runs"), "sync.batch_size")


def test_batch_size_from_the_config_file_is_validated_with_its_path(clean_env, monkeypatch):
    config = clean_env / "leadsync.toml"
    config.write_text("[sync]\nbatch_size = 0\n", encoding="utf-8")
    with pytest.raises(SettingsError, match=r"sync\.batch_size") as err:
        Settings()
    assert "leadsync.toml" in str(err.value)


def test_a_secret_that_fails_validation_is_not_echoed(clean_env, monkeypatch):
    monkeypatch.setenv("LEADSYNC_HUBSPOT__MAX_CALLS_PER_RUN", "lots")
    monkeypatch.setenv("LEADSYNC_HUBSPOT__ACCESS_TOKEN", "pat-na1-very-secret")
    with pytest.raises(SettingsError) as err:
        Settings()
    assert "hubspot.max_calls_per_run" in str(err.value) and "very-secret" not in str(err.value)


@pytest.mark.parametrize(("model", "needles"), [
    (STAGES + '[[fit]]\nid = "huge"\nfield = "title"\nregex = "a{4294967296}"\npoints = 1\nreason = "x"\n',
     ["model.toml:8: fit rule 'huge' regex"]),
    ("name = 'caf\u00e9'\n".encode("latin-1"), ["model.toml", "not UTF-8"]),
    ("[stages\n", ["model.toml", "not valid TOML"]),
])
def test_a_bad_scoring_model_is_a_clean_cli_error_naming_file_and_rule(clean_env, monkeypatch, model, needles):
    path = clean_env / "model.toml"
    path.write_bytes(model if isinstance(model, bytes) else model.encode())
    monkeypatch.setenv("LEADSYNC_MODEL_PATH", str(path))
    assert_clean_failure(leadsync("explain", "ann@acme.io"), *needles)
