"""Cross-cutting HubSpot front-door behaviour: 414, auth, rate limits and their headers.

Installed as `App` hooks so every route (and fault injection) shares one account's quota.
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sandbox.server import Request, Response

if TYPE_CHECKING:
    from sandbox.hubspot.oauth import OAuthApp

#: Routes outside the token check and the quota: the OAuth token endpoint authenticates by its form.
UNGUARDED_ROUTES = frozenset({"oauth.token"})

#: Request-target length past which HubSpot answers 414: "around 16.2k characters" in PostHog's testing
#: (PostHog/posthog#31617); Airbyte keeps its properties parameter under 15,000 (airbytehq/airbyte#13691).
MAX_URI = 16_384
#: The real 414 body is the front proxy's HTML page (airbytehq/airbyte#33976).
URI_TOO_LONG = ("<html> <head><title>414 Request-URI Too Large</title></head> <body> <center><h1>414 "
                "Request-URI Too Large</h1></center> </body> </html>")
#: Routes limited by the CRM search API's own per-second policy (reference §2.5).
SEARCH_ROUTES = frozenset({"contacts.search", "objects.search"})


def error_body(message: str, category: str, **extra: Any) -> dict[str, Any]:
    """HubSpot's v3 error envelope (reference §5.5)."""
    return {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category, **extra}


def validation_error(message: str, **extra: Any) -> Response:
    return Response(400, error_body(message, "VALIDATION_ERROR", **extra))


def _rate_body(message: str, policy: str) -> dict[str, Any]:
    """429 bodies carry `errorType`/`policyName`, not `category` (reference §5.2)."""
    return {"status": "error", "message": message, "errorType": "RATE_LIMIT",
            "correlationId": str(uuid.uuid4()), "policyName": policy}


@dataclass
class Limits:
    """One private-app token's quota: a rolling burst window, a search window and a daily count."""

    token: str
    burst_limit: int = 190
    burst_window_s: float = 10.0
    daily_limit: int = 1_000_000
    search_per_second: int = 4
    burst: deque[float] = field(default_factory=deque)
    search: deque[float] = field(default_factory=deque)
    daily_used: int = 0
    oauth: OAuthApp | None = None

    def before(self, req: Request, name: str) -> Response | None:
        """The App hook: reject before the handler runs, in HubSpot's order (URI, auth, quota)."""
        if len(req.raw_target) > MAX_URI:
            return Response(414, URI_TOO_LONG, content_type="text/html")
        if name in UNGUARDED_ROUTES:
            return None
        denied = self._authenticate(req.headers.get("authorization", ""))
        return denied if denied is not None else self._admit(name, time.monotonic())

    def _authenticate(self, header: str) -> Response | None:
        """The private-app token, or a live OAuth access token; expired ones get EXPIRED_AUTHENTICATION."""
        bearer = header.removeprefix("Bearer ")
        if header.startswith("Bearer ") and bearer == self.token:
            return None
        if self.oauth is not None and header.startswith("Bearer ") and bearer in self.oauth.tokens:
            return self.oauth.check(bearer)
        return Response(401, error_body(
            "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can "
            "find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
            "INVALID_AUTHENTICATION"))

    def _admit(self, name: str, now: float) -> Response | None:
        _expire(self.burst, now - self.burst_window_s)
        if self.daily_used >= self.daily_limit:
            return Response(429, _rate_body("You have reached your daily limit.", "DAILY"))
        if len(self.burst) >= self.burst_limit:
            return Response(429, _rate_body("You have reached your ten_secondly_rolling limit.",
                                            "TEN_SECONDLY_ROLLING"), {"Retry-After": self._retry_after(now)})
        if name in SEARCH_ROUTES:
            _expire(self.search, now - 1.0)
            if len(self.search) >= self.search_per_second:
                return Response(429, _rate_body("You have reached your secondly limit.", "SECONDLY"))
            self.search.append(now)
        self.burst.append(now)
        self.daily_used += 1
        return None

    def _retry_after(self, now: float) -> str:
        wait = self.burst[0] + self.burst_window_s - now if self.burst else 1.0
        return str(max(1, int(wait + 0.999)))

    def headers(self, req: Request, name: str, resp: Response) -> None:
        """The after-hook: the X-HubSpot-RateLimit-* headers on every response (reference §5.3)."""
        if resp.status in (401, 414) or name in UNGUARDED_ROUTES:
            return
        resp.headers.update({
            "X-HubSpot-RateLimit-Daily": str(self.daily_limit),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, self.daily_limit - self.daily_used)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(self.burst_window_s * 1000)),
            "X-HubSpot-RateLimit-Max": str(self.burst_limit),
            "X-HubSpot-RateLimit-Remaining": str(max(0, self.burst_limit - len(self.burst))),
        })
        if name in SEARCH_ROUTES:
            resp.headers.setdefault("X-HubSpot-RateLimit-Secondly", str(self.search_per_second))
            resp.headers.setdefault("X-HubSpot-RateLimit-Secondly-Remaining",
                                    str(max(0, self.search_per_second - len(self.search))))


def _expire(window: deque[float], cutoff: float) -> None:
    while window and window[0] <= cutoff:
        window.popleft()
