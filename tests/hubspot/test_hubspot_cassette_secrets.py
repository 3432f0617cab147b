"""Re-recording the HubSpot cassette the documented way (`LEADSYNC_RECORD_LIVE=1` with OAuth client id,
secret and refresh token), the sandbox standing in for the portal: no secret may reach the YAML."""

from __future__ import annotations

import importlib

import pytest

from sandbox.hubspot import HubSpotEmulator
from tests.cassettes import FILTERED, CassetteLeak, recorder


def test_oauth_re_recording_keeps_no_secret(new_emu, make_connector, live_env, monkeypatch, tmp_path):
    portal: HubSpotEmulator = new_emu(contacts=40)
    app = portal.oauth
    live_env("HUBSPOT", base_url=portal.base_url, client_id=app.client_id, client_secret=app.client_secret,
             refresh_token=app.refresh_token)
    module = importlib.import_module("tests.hubspot.test_hubspot_connector")
    monkeypatch.setattr(module, "CASSETTES", tmp_path)  # write where the test can look, not into cassettes/
    module.test_replays_a_recorded_cassette_on_any_port(new_emu, make_connector)
    text = (tmp_path / "hubspot_backfill.yaml").read_text()
    assert "/oauth/v1/token" in text and FILTERED in text  # the exchange is recorded, its bodies are not
    issued = list(app.tokens)
    assert issued and [s for s in [app.client_secret, app.refresh_token, *issued] if s in text] == []


def test_a_cassette_that_would_hold_a_secret_is_not_written(new_emu, sdk, tmp_path):
    portal: HubSpotEmulator = new_emu(contacts=5)
    contact = portal.contact_ids()[0]
    secret = portal.contact(contact)["email"]  # any value declared secret that a response carries
    with pytest.raises(CassetteLeak) as err:
        with recorder(tmp_path, lambda: [secret]).use_cassette("leak.yaml"):
            sdk(portal).crm.contacts.basic_api.get_by_id(contact, properties=["email"])
    assert not (tmp_path / "leak.yaml").exists() and secret not in str(err.value)
