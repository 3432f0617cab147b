"""Re-recording the Salesforce cassette the documented way (`LEADSYNC_RECORD_LIVE=1` with login
credentials), the sandbox standing in for the org and expiring sessions mid-recording so the re-login is
on the wire: no consumer secret, password, security token or session id may reach the YAML."""

from __future__ import annotations

import contextlib
import importlib
import threading

import pytest

from sandbox.salesforce import SalesforceEmulator
from tests.cassettes import FILTERED
from tests.salesforce.conftest import ANCHOR


@pytest.mark.parametrize("flow", ["client_credentials", "soap_password"])
def test_login_re_recording_keeps_no_secret(live_env, monkeypatch, tmp_path, flow):
    org = SalesforceEmulator(seed=4, contacts=60, anchor=ANCHOR)
    org.start()
    try:
        creds = org.oauth
        live_env("SALESFORCE", login_url=org.instance_url, ca_bundle=org.ca_pem_path)
        if flow == "client_credentials":
            live_env("SALESFORCE", consumer_key=creds.consumer_key, consumer_secret=creds.consumer_secret,
                     domain="sandbox.my")
            secrets = [creds.consumer_secret]
        else:
            live_env("SALESFORCE", username=creds.username, password=creds.password,
                     security_token=creds.security_token)
            secrets = [creds.password, creds.security_token]
        org.expire_session_after(2)  # sessions die mid-recording: the re-login is recorded too
        module = importlib.import_module("tests.salesforce.test_salesforce_cassette")
        monkeypatch.setattr(module, "CASSETTES", tmp_path)  # write where the test can look, not into cassettes/
        warns = pytest.warns(DeprecationWarning) if flow == "soap_password" else contextlib.nullcontext()
        with warns:
            module.test_backfill_pull_replays_from_cassette()
        text = (tmp_path / "salesforce_backfill_pull.yaml").read_text()
        assert ("/services/oauth2/token" in text or "/services/Soap/u/" in text) and FILTERED in text
        sessions = list(org.sessions.tokens)
        assert len(sessions) >= 2 and [s for s in [*secrets, *sessions] if s and s in text] == []
    finally:
        threading.Thread(target=org.stop, daemon=True).start()
