"""Login failures through the real simple-salesforce login code: transient ones retried like every other call,
every one a clean ConnectorError/AuthError (never simple-salesforce's AttributeError), and a clean run status."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.base import AuthError, ConnectorError
from connectors.salesforce import SalesforceConnector, SalesforceSettings
from sandbox.run import parse_fault
from sandbox.salesforce import SalesforceEmulator
from sandbox.server import Fault
from scoring.loader import default_model
from sync.engine import Engine
from sync.state import State


def connector(emu: SalesforceEmulator, slept: list[float] | None = None, **creds: Any) -> SalesforceConnector:
    creds = creds or {"consumer_key": emu.oauth.consumer_key, "consumer_secret": emu.oauth.consumer_secret,
                      "domain": "sandbox.my"}
    settings = SalesforceSettings(login_url=emu.instance_url, ca_bundle=emu.ca_pem_path, max_attempts=4, **creds)
    return SalesforceConnector(settings, sleep=(slept.append if slept is not None else lambda s: None))


def inject(emu: SalesforceEmulator, spec: str) -> None:
    """A fault in the sandbox's `--fault` syntax; a Salesforce 5xx body is a JSON array."""
    emu.app.faults.append(parse_fault(spec)[1])


def test_token_endpoint_5xx_with_a_json_array_body_is_retried_then_succeeds(emu):
    inject(emu, "salesforce:sf.token=503x2")
    slept: list[float] = []
    conn = connector(emu, slept)
    assert conn.find_task("x") is None
    assert emu.app.counts[("sf.token", 503)] == 2 and emu.app.counts[("sf.token", 200)] == 1
    assert len(slept) == 2  # the same backoff policy as every other call
    conn.close()


def test_token_endpoint_down_is_a_connector_error_after_max_attempts(emu):
    inject(emu, "salesforce:sf.token=503")
    conn = connector(emu)
    with pytest.raises(ConnectorError) as err:
        conn.find_task("x")
    assert not isinstance(err.value, AuthError)
    assert err.value.status == 503 and "503" in str(err.value) and "SERVER_UNAVAILABLE" in str(err.value)
    assert "{content}" not in str(err.value)
    assert emu.app.counts[("sf.token", 503)] == 4
    conn.close()


def test_soap_login_5xx_is_retried(emu):
    inject(emu, "salesforce:sf.soap_login=500x1")
    conn = connector(emu, username=emu.oauth.username, password=emu.oauth.password,
                     security_token=emu.oauth.security_token)
    with pytest.warns(DeprecationWarning):
        assert conn.find_task("x") is None
    assert emu.app.counts[("sf.soap_login", 500)] == 1 and emu.app.counts[("sf.soap_login", 200)] == 1
    conn.close()


def test_refused_login_is_an_auth_error_with_the_crm_reason_and_no_retry(emu):
    conn = connector(emu, consumer_key=emu.oauth.consumer_key, consumer_secret="wrong", domain="sandbox.my")
    with pytest.raises(AuthError) as err:
        conn.find_task("x")
    assert str(err.value) == "Salesforce login failed: invalid_client: invalid client credentials"
    assert err.value.code == "invalid_client"
    assert emu.app.counts[("sf.token", 400)] == 1
    conn.close()


def test_refused_soap_login_message_has_no_template_placeholder(emu):
    conn = connector(emu, username=emu.oauth.username, password="wrong", security_token="x")
    with pytest.warns(DeprecationWarning), pytest.raises(AuthError) as err:
        conn.find_task("x")
    assert "{content}" not in str(err.value) and "INVALID_LOGIN" in str(err.value)
    conn.close()


@pytest.mark.parametrize("body", [{}, [], "not json", {"access_token": "t"}])
def test_an_unreadable_token_response_is_an_auth_error(emu, body):
    emu.app.faults.append(Fault(endpoint="sf.token", status=200, body=body))
    conn = connector(emu)
    with pytest.raises(AuthError, match="Salesforce login"):
        conn.find_task("x")
    conn.close()


def test_a_backfill_whose_login_keeps_failing_ends_with_a_clean_error_status(emu, tmp_path):
    inject(emu, "salesforce:sf.token=503")
    state = State(f"sqlite:///{tmp_path}/state.db")
    summary, _ = Engine(state, connector(emu), default_model()).run("backfill")
    assert summary.status == "error"
    assert summary.message.startswith("ConnectorError: Salesforce login") and "503" in summary.message
    assert state.run(summary.run_id)["status"] == "error"
