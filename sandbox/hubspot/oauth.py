"""OAuth for a public app (reference §1.4): `POST /oauth/v1/token` (refresh grant) and expiring access tokens.

Tokens expire after `lifetime_s` (HubSpot: ~30 min today); a call with an expired one gets the real
401 `EXPIRED_AUTHENTICATION` body, so a connector's refresh logic is exercised against the real shapes.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qs

from sandbox.hubspot.limits import error_body
from sandbox.hubspot.seeding import iso
from sandbox.server import Request, Response


def _token_error(status: str, message: str) -> Response:
    """Token endpoint errors use `status` as the code (BAD_REFRESH_TOKEN, ...), not `category` *(assumed shape;
    the 400 BAD_REFRESH_TOKEN status is seen in airbytehq/airbyte#79592 and HGData/mk-node-hubspot#64)*."""
    return Response(400, {"status": status, "message": message, "correlationId": str(uuid.uuid4())})


def _ago(seconds: float) -> str:
    """HubSpot words the age in one unit: "0 second(s)", "5 hour(s)", "19884 day(s)" (reference §1.4)."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}(s)"
    return f"{int(seconds)} second(s)"


@dataclass
class OAuthApp:
    """One public app installed in the portal: its credentials and the access tokens it has issued."""

    client_id: str = "sandbox-client-id"
    client_secret: str = "sandbox-client-secret"
    refresh_token: str = "sandbox-refresh-token"
    lifetime_s: float = 1800.0
    now: Callable[[], float] = time.time
    tokens: dict[str, float] = field(default_factory=dict)  # access token -> expiry (epoch seconds)

    def token(self, req: Request) -> Response:
        """`POST /oauth/v1/token`, form-encoded, `grant_type=refresh_token` (the SDK's `tokens_api.create`)."""
        form = {k: v[-1] for k, v in parse_qs(req.body.decode(errors="replace")).items()}
        if form.get("grant_type") != "refresh_token":
            return _token_error("BAD_GRANT_TYPE", "grant_type must be refresh_token in the sandbox")
        if form.get("client_id") != self.client_id:
            return _token_error("BAD_CLIENT_ID", "missing or unknown client id")
        if form.get("client_secret") != self.client_secret:
            return _token_error("BAD_CLIENT_SECRET", "missing or invalid client secret")
        if form.get("refresh_token") != self.refresh_token:
            return _token_error("BAD_REFRESH_TOKEN", "missing or invalid refresh token")
        access = f"sandbox-oauth-{uuid.uuid4().hex}"
        self.tokens[access] = self.now() + self.lifetime_s
        return Response(200, {"token_type": "bearer", "refresh_token": self.refresh_token, "access_token": access,
                              "expires_in": int(self.lifetime_s)})

    def check(self, token: str) -> Response | None:
        """None for a live token this app issued; the real 401 body for an expired one (reference §1.4)."""
        expiry = self.tokens[token]
        late = self.now() - expiry
        if late < 0:
            return None
        at = iso(datetime.fromtimestamp(expiry, UTC))
        return Response(401, error_body(f"The OAuth token used to make this call expired {_ago(late)} ago.",
                                        "EXPIRED_AUTHENTICATION", context={"expire time": [at]}))

    def expire_all(self) -> None:
        """Make every issued token expired now (tests, `POST /_sandbox/hubspot/oauth/expire`)."""
        stamp = self.now()
        self.tokens = {t: min(exp, stamp) for t, exp in self.tokens.items()}
