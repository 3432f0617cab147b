"""Cross-cutting HubSpot front-door behaviour: 414, auth, rate limits and their headers.

Installed as `App` hooks so every route (and fault injection) shares one account's quota.
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from sandbox.server import Request, Response

MAX_URI = 8192
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

    def before(self, req: Request, name: str) -> Response | None:
        """The App hook: reject before the handler runs, in HubSpot's order (URI, auth, quota)."""
        if len(req.raw_target) > MAX_URI:
            return Response(414, "<html><body><h1>414 Request-URI Too Large</h1></body></html>",
                            content_type="text/html")
        if req.headers.get("authorization", "") != f"Bearer {self.token}":
            return Response(401, error_body(
                "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can "
                "find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                "INVALID_AUTHENTICATION"))
        return self._admit(name, time.monotonic())

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
        if resp.status in (401, 414):
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
