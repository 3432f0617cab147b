"""OAuth (refresh grant, expiring tokens, the real 401 bodies) and the per-run call budget."""

from __future__ import annotations

import json
import time

import pytest
from hubspot.crm.contacts.exceptions import UnauthorizedException

from connectors.base import AuthError, ConfigError, QuotaExhausted
from connectors.hubspot import HubSpotConnector, HubSpotSettings
from sandbox.hubspot.oauth import OAuthApp
from sandbox.server import Fault
from scoring.loader import default_model
from sync.engine import Engine
from sync.state import State

APP = {"client_id": "cid-1", "client_secret": "secret-1", "refresh_token": "refresh-1"}


def _oauth_connector(emu, **overrides) -> HubSpotConnector:
    settings = HubSpotSettings(base_url=emu.base_url, **{**APP, **overrides})
    return HubSpotConnector(settings, sleep=lambda s: None)


def _oauth_emu(new_emu, lifetime_s: float = 1800.0):
    return new_emu(contacts=60, oauth=OAuthApp(APP["client_id"], APP["client_secret"], APP["refresh_token"],
                                               lifetime_s=lifetime_s))


# ---------------------------------------------------------------- emulator


def test_token_endpoint_issues_expiring_tokens_with_the_real_401_bodies(new_emu, sdk):
    emu = _oauth_emu(new_emu)
    client = sdk(emu)
    tokens = client.oauth.tokens_api.create(grant_type="refresh_token", **APP)
    assert tokens.token_type == "bearer" and tokens.expires_in == 1800 and tokens.refresh_token == "refresh-1"
    assert sdk(emu, token=tokens.access_token).crm.contacts.basic_api.get_page(limit=1).results
    emu.oauth.expire_all()
    with pytest.raises(UnauthorizedException) as exc:
        sdk(emu, token=tokens.access_token).crm.contacts.basic_api.get_page(limit=1)
    body = json.loads(exc.value.body)
    assert body["category"] == "EXPIRED_AUTHENTICATION" and body["status"] == "error"
    assert body["message"].startswith("The OAuth token used to make this call expired ") and "second(s) ago" in \
        body["message"]
    assert list(body["context"]) == ["expire time"] and body["correlationId"]
    from hubspot.oauth.exceptions import ApiException as OAuthApiException

    with pytest.raises(OAuthApiException) as bad:
        client.oauth.tokens_api.create(grant_type="refresh_token", **{**APP, "refresh_token": "nope"})
    assert bad.value.status == 400 and json.loads(bad.value.body)["status"] == "BAD_REFRESH_TOKEN"
    assert ("oauth.token", 200) in emu.app.counts and emu.limits.daily_used == 1  # the token call is not quota


# --------------------------------------------------------------- connector


def test_oauth_connector_gets_a_token_and_refreshes_before_expiry(new_emu):
    emu = _oauth_emu(new_emu, lifetime_s=1.0)
    conn = _oauth_connector(emu)  # margin = min(60 s, half the 1 s lifetime): refresh after 0.5 s
    conn.missing_fields()
    assert emu.app.counts[("oauth.token", 200)] == 1
    time.sleep(0.6)
    conn.missing_fields()
    assert emu.app.counts[("oauth.token", 200)] == 2
    assert not [k for k in emu.app.counts if k[1] == 401]
    assert conn.api_calls == emu.app.api_calls() == 6  # token calls are counted too


def test_expired_token_refreshes_once_then_auth_error(new_emu):
    emu = _oauth_emu(new_emu)
    conn = _oauth_connector(emu)
    conn.missing_fields()
    emu.oauth.expire_all()  # e.g. clock skew: the token dies before expires_in said
    assert conn.missing_fields()
    assert emu.app.counts[("properties.list", 401)] == 1 and emu.app.counts[("oauth.token", 200)] == 2
    expired = {"status": "error", "message": "The OAuth token used to make this call expired 3 second(s) ago.",
               "correlationId": "x", "category": "EXPIRED_AUTHENTICATION", "context": {"expire time": ["x"]}}
    emu.app.faults = [Fault("properties.list", 401, expired, remaining=2)]
    with pytest.raises(AuthError, match="freshly refreshed OAuth access token") as exc:
        conn.missing_fields()
    assert exc.value.code == "EXPIRED_AUTHENTICATION"
    assert emu.app.counts[("oauth.token", 200)] == 3  # exactly one more refresh


def test_a_refused_refresh_token_is_an_auth_error_and_partial_oauth_a_config_error(new_emu):
    emu = _oauth_emu(new_emu)
    with pytest.raises(AuthError, match="BAD_REFRESH_TOKEN"):
        _oauth_connector(emu, refresh_token="revoked").missing_fields()
    with pytest.raises(ConfigError, match="LEADSYNC_HUBSPOT__REFRESH_TOKEN"):
        HubSpotConnector(HubSpotSettings(base_url=emu.base_url, client_id="x", client_secret="y"))
    assert HubSpotSettings(**APP).configured and not HubSpotSettings().configured
    assert "refresh-1" not in repr(HubSpotSettings(**APP))  # secrets stay secret


def test_private_app_token_still_works_beside_oauth(new_emu, make_connector):
    emu = _oauth_emu(new_emu)
    assert make_connector(emu).missing_fields()
    assert ("oauth.token", 200) not in emu.app.counts


# ------------------------------------------------------------------ budget


def test_budget_raises_quota_exhausted_before_the_call_that_would_pass_it(emu, make_connector):
    conn = make_connector(emu, max_calls_per_run=3)
    with pytest.raises(QuotaExhausted, match="^budget: 3 API calls") as exc:
        list(conn.pull({}))
    assert exc.value.code == "BUDGET" and conn.api_calls == 3 == emu.app.api_calls()


def test_a_run_paused_by_its_budget_is_completed_by_the_next(emu, make_connector, tmp_path):
    state = State(f"sqlite:///{tmp_path}/state.db")
    model = default_model()
    fields_setup = 11  # 2 property lists, 2 groups, 7 properties
    paused, _ = Engine(state, make_connector(emu, max_calls_per_run=fields_setup + 1), model).run("sync")
    assert paused.status == "paused: quota" and paused.message.startswith("budget:")
    assert paused.api_calls == fields_setup + 1 and paused.contacts_pulled == 100
    done, _ = Engine(state, make_connector(emu), model).run("sync")
    assert done.status == "ok" and done.failed == 0
    live, archived = len(emu.contact_ids()), len(emu.archived_contact_ids())
    assert done.contacts_pulled == live - 100 + archived  # resumed after the first page, not from scratch
    assert state.count_contacts("hubspot") == live + archived
