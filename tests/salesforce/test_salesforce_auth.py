"""Every auth mode through the real simple-salesforce login path: `login_url` sends its hard-coded
`https://{domain}.salesforce.com` to the emulator, so logins and re-logins run for real over TLS."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.base import AuthError, ConfigError
from connectors.salesforce import SalesforceConnector, SalesforceSettings
from sandbox.salesforce import SalesforceEmulator
from tests.salesforce.conftest import SESSION


def rsa_pair() -> tuple[str, str]:
    """(private PEM, public PEM): the connected app holds the public half, leadsync signs with the private one."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


def connector(emu: SalesforceEmulator, **creds: Any) -> SalesforceConnector:
    settings = SalesforceSettings(login_url=emu.instance_url, ca_bundle=emu.ca_pem_path, **creds)
    return SalesforceConnector(settings, sleep=lambda s: None)


def test_jwt_bearer_with_key_file_verified_by_the_public_key(emu: SalesforceEmulator, tmp_path: Path) -> None:
    private, public = rsa_pair()
    emu.oauth.jwt_public_key = public
    key_file = tmp_path / "server.key"
    key_file.write_text(private)
    conn = connector(emu, username=emu.oauth.username, consumer_key=emu.oauth.consumer_key,
                     private_key_file=str(key_file))
    assert conn.find_task("x") is None
    emu.expire_sessions()
    assert conn.find_task("x") is None  # 401 → one new JWT grant → the call is retried
    assert emu.app.counts[("sf.token", 200)] == 2
    forged = connector(emu, username=emu.oauth.username, consumer_key=emu.oauth.consumer_key,
                       private_key=rsa_pair()[0])  # signed with a key the app does not know
    with pytest.raises(AuthError) as err:
        forged.find_task("x")
    assert err.value.code == "invalid_grant"
    lost = connector(emu, username=emu.oauth.username, consumer_key=emu.oauth.consumer_key,
                     private_key_file=str(tmp_path / "missing.key"))
    with pytest.raises(ConfigError, match="private_key_file"):
        lost.find_task("x")
    for c in (conn, forged, lost):
        c.close()


def test_client_credentials_reauthenticates_once_then_stops(emu: SalesforceEmulator) -> None:
    conn = connector(emu, consumer_key=emu.oauth.consumer_key, consumer_secret=emu.oauth.consumer_secret,
                     domain="sandbox.my")
    assert conn.find_task("x") is None
    emu.expire_sessions()
    assert conn.find_task("x") is None
    assert emu.app.counts[("sf.token", 200)] == 2
    emu.expire_session_after(0)  # every new token is refused at once: re-auth cannot help
    emu.expire_sessions()
    with pytest.raises(AuthError) as err:
        conn.find_task("x")
    assert err.value.code == "INVALID_SESSION_ID" and "freshly issued session" in str(err.value)
    assert emu.app.counts[("sf.token", 200)] == 3  # exactly one more login, no loop
    conn.close()


def test_bare_session_id_expiry_says_to_refresh_it(emu: SalesforceEmulator) -> None:
    conn = connector(emu, instance_url=emu.instance_url, session_id=SESSION)
    assert conn.find_task("x") is None
    emu.expire_sessions()
    with pytest.raises(AuthError) as err:
        conn.find_task("x")
    assert "refresh LEADSYNC_SALESFORCE__SESSION_ID" in str(err.value) and err.value.status == 401
    assert emu.app.counts[("sf.token", 200)] == 0 and emu.app.counts[("sf.soap_login", 200)] == 0
    conn.close()


def test_session_id_with_credentials_renews_through_a_login(emu: SalesforceEmulator) -> None:
    conn = connector(emu, instance_url=emu.instance_url, session_id=SESSION, consumer_key=emu.oauth.consumer_key,
                     consumer_secret=emu.oauth.consumer_secret, domain="sandbox.my")
    assert conn.find_task("x") is None and emu.app.counts[("sf.token", 200)] == 0
    emu.expire_sessions()
    assert conn.find_task("x") is None and emu.app.counts[("sf.token", 200)] == 1
    conn.close()


def test_password_and_token_warns_about_the_soap_retirement(emu: SalesforceEmulator,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    conn = connector(emu, username=emu.oauth.username, password=emu.oauth.password,
                     security_token=emu.oauth.security_token)
    with caplog.at_level(logging.WARNING, logger="connectors.salesforce.transport"), \
            pytest.warns(DeprecationWarning, match="Summer '27"):
        assert conn.find_task("x") is None
    assert any("65.0" in r.getMessage() and "Summer '27" in r.getMessage() for r in caplog.records)
    emu.expire_sessions()
    assert conn.find_task("x") is None and emu.app.counts[("sf.soap_login", 200)] == 2
    conn.close()


def test_oauth_password_flow_works_but_warns(emu: SalesforceEmulator) -> None:
    conn = connector(emu, username=emu.oauth.username, password=emu.oauth.password,
                     consumer_key=emu.oauth.consumer_key, consumer_secret=emu.oauth.consumer_secret)
    with pytest.warns(DeprecationWarning, match="username-password flow"):
        assert conn.find_task("x") is None
    assert emu.app.counts[("sf.token", 200)] == 1
    conn.close()
