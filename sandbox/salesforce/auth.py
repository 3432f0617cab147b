"""Sessions and the login endpoints: OAuth 2.0 token grants and SOAP login()."""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import jwt

from sandbox.salesforce import soap
from sandbox.server import App, Request, Response

INVALID_SESSION = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
LOGIN_ROUTES = frozenset({"sf.token", "sf.soap_login"})  # no session needed, not counted as API calls


@dataclass
class Sessions:
    """Valid access tokens and how many calls each has left (None: until expired by hand)."""

    tokens: dict[str, int | None] = field(default_factory=dict)
    ttl_calls: int | None = None

    def issue(self, token: str | None = None) -> str:
        token = token or "00Dsandbox!" + secrets.token_urlsafe(24)
        self.tokens[token] = self.ttl_calls
        return token

    def use(self, token: str) -> bool:
        if token not in self.tokens:
            return False
        left = self.tokens[token]
        if left is not None:
            if left <= 0:
                del self.tokens[token]
                return False
            self.tokens[token] = left - 1
        return True


@dataclass
class OAuthConfig:
    """The credentials the login endpoints accept."""

    consumer_key: str
    consumer_secret: str
    username: str
    password: str
    security_token: str = ""
    jwt_public_key: str | None = None
    #: What a web-server or user-agent flow would have handed the app; the refresh-token grant takes it.
    refresh_token: str = "5Aep861sandboxRefreshToken0000000000000000000000000000000000000000"


class Logins:
    """`POST /services/oauth2/token` and `POST /services/Soap/u/{version}`; each success issues a new token."""

    def __init__(self, app: App, sessions: Sessions, oauth: OAuthConfig) -> None:
        self.app = app
        self.sessions = sessions
        self.oauth = oauth
        self.instance_url = ""  # set once the server is listening
        app.route("POST", "/services/oauth2/token", "sf.token")(self.token)
        app.route("POST", "/services/Soap/u/{version}", "sf.soap_login")(self.soap_login)

    def token(self, req: Request) -> Response:
        """OAuth 2.0 token endpoint: client credentials, JWT bearer, refresh token and (deprecated) password grants."""
        form = {k: v[-1] for k, v in parse_qs(req.body.decode(), keep_blank_values=True).items()}
        grant = form.get("grant_type", "")
        if grant == "client_credentials":
            key, secret = _basic_auth(req.headers.get("authorization", "")) or (form.get("client_id"),
                                                                                form.get("client_secret"))
            if (key, secret) != (self.oauth.consumer_key, self.oauth.consumer_secret):
                return Response(400, {"error": "invalid_client", "error_description": "invalid client credentials"})
        elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            if not self._jwt_ok(form.get("assertion", "")):
                return Response(400, {"error": "invalid_grant", "error_description": "invalid assertion"})
        elif grant == "refresh_token":
            # Refresh token flow (help "OAuth 2.0 Refresh Token Flow for Renewed Sessions"): client_id, the
            # refresh token, and client_secret when the app requires it; a new access token, no new refresh token.
            if form.get("client_id") != self.oauth.consumer_key or form.get("client_secret") not in (
                    None, self.oauth.consumer_secret):
                return Response(400, {"error": "invalid_client_id", "error_description": "client identifier invalid"})
            if form.get("refresh_token") != self.oauth.refresh_token:
                return Response(400, {"error": "invalid_grant", "error_description": "expired access/refresh token"})
        elif grant == "password":
            if (form.get("client_id"), form.get("client_secret"), form.get("username"), form.get("password")) != (
                    self.oauth.consumer_key, self.oauth.consumer_secret, self.oauth.username, self.oauth.password):
                return Response(400, {"error": "invalid_grant", "error_description": "authentication failure"})
        else:
            return Response(400, {"error": "unsupported_grant_type", "error_description": "grant type not supported"})
        with self.app.lock:
            access = self.sessions.issue()
        return Response(200, {
            "access_token": access, "instance_url": self.instance_url,
            "id": "https://login.salesforce.com/id/00DSb0000000001AAA/005Ow0000000000IAA",
            "token_type": "Bearer", "issued_at": str(int(time.time() * 1000)), "signature": secrets.token_urlsafe(32),
            "scope": "api",
        })

    def soap_login(self, req: Request) -> Response:
        """SOAP login(): the password must be the user's password followed by the security token."""
        fields = soap.handle_login(req)
        if isinstance(fields, Response):
            return fields
        expected = (self.oauth.username, self.oauth.password + self.oauth.security_token)
        if (fields["username"], fields["password"]) != expected:
            return soap.fault("INVALID_LOGIN", "Invalid username, password, security token; or user locked out.")
        with self.app.lock:
            access = self.sessions.issue()
        return soap.success(self.instance_url, req.params["version"], access, "005Ow0000000000IAA")

    def _jwt_ok(self, assertion: str) -> bool:
        """Check iss/sub/exp; verify the RS256 signature when a public key is configured."""
        try:
            if self.oauth.jwt_public_key:
                claims = jwt.decode(assertion, self.oauth.jwt_public_key, algorithms=["RS256"],
                                    options={"verify_aud": False})
            else:
                claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            return False
        exp = float(claims.get("exp", 0))
        return claims.get("iss") == self.oauth.consumer_key and claims.get("sub") == self.oauth.username and \
            exp > time.time() and _audience_ok(str(claims.get("aud", "")))


def _audience_ok(aud: str) -> bool:
    """Salesforce accepts its login or test host, or a My Domain / community URL, as the JWT audience."""
    return aud in ("https://login.salesforce.com", "https://test.salesforce.com") or (
        aud.startswith("https://") and aud.endswith(".salesforce.com"))


def _basic_auth(header: str) -> tuple[str, str] | None:
    scheme, _, payload = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        key, _, secret = base64.b64decode(payload).decode().partition(":")
    except ValueError:
        return None
    return key, secret
