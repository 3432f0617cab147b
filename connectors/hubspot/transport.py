"""Every HTTP call the connector makes: counting, pacing, error translation and retries.

All calls go through the real `hubspot-api-client`, with `_preload_content=False`
so pages are parsed once with `json.loads` instead of into a model per record.
urllib3's own retries are switched off so that `api_calls` counts every request
and tenacity alone decides what is retried (reference §1.3).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from functools import cache
from typing import Any

import hubspot
import orjson
import urllib3
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from connectors.base import AuthError, ConfigError, ConnectorError, QuotaExhausted, http_date
from connectors.hubspot.settings import HubSpotSettings


class HubSpotError(ConnectorError):
    """A HubSpot error response; `code` is its category (or 429 policy), `body` the parsed JSON."""

    def __init__(self, message: str, *, code: str | None, status: int | None, body: dict[str, Any]) -> None:
        super().__init__(message, code=code, status=status)
        self.body = body

    @property
    def details(self) -> list[dict[str, Any]]:
        """Per-property details HubSpot embeds as JSON inside `message` (reference §5.5)."""
        return embedded_details(str(self.body.get("message") or ""))


def embedded_details(message: str) -> list[dict[str, Any]]:
    """The JSON list after the first `: [` of a VALIDATION_ERROR message (reference §5.5); [] if none."""
    head, sep, rest = message.partition(": [")
    if not sep:
        return []
    try:
        parsed = json.loads("[" + rest)
    except ValueError:
        return []
    return [d for d in parsed if isinstance(d, dict)] if isinstance(parsed, list) else []


class RateLimited(HubSpotError):
    """A 429 that passes: the burst window or the search's per-second limit. Always safe to retry."""

    def __init__(self, message: str, *, code: str | None, body: dict[str, Any], wait_s: float) -> None:
        super().__init__(message, code=code, status=429, body=body)
        self.wait_s = wait_s


class Transient(ConnectorError):
    """5xx, timeout or dropped connection: the request may or may not have been processed."""

    transient = True  # type: ignore[assignment]


class Throttle:
    """Sliding-window pacing so a normal run never meets a 429 (shared per token = per tenant)."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit, self.window_s = limit, window_s
        self.sent: deque[float] = deque()
        self.lock = threading.Lock()

    def reserve(self) -> float:
        """Book the next free slot; returns how long the caller must wait before sending."""
        with self.lock:
            now = time.monotonic()
            while self.sent and self.sent[0] <= now - self.window_s:
                self.sent.popleft()
            wait = 0.0
            if len(self.sent) >= self.limit:
                wait = max(0.0, self.sent.popleft() + self.window_s - now)
            self.sent.append(now + wait)
            return wait


_THROTTLES: dict[tuple[str, str], tuple[Throttle, Throttle]] = {}
_THROTTLES_LOCK = threading.Lock()


def model(cls: Callable[..., Any], **fields: Any) -> Any:
    """A request body model of the generated client, built with its package's one shared Configuration.

    Left to itself, every model object builds a Configuration of its own (loggers, pools, settings: a quarter
    of a millisecond each), which for a write batch costs more than sending it. Models only read it (for
    client-side validation), so one instance per package serves them all.
    """
    return cls(**fields, local_vars_configuration=_configuration(cls.__module__.rsplit(".models", 1)[0]))


@cache
def _configuration(package: str) -> Any:
    return importlib.import_module(f"{package}.configuration").Configuration()


def shared_throttles(settings: HubSpotSettings) -> tuple[Throttle, Throttle]:
    """One (burst, search) pair per portal and token in this process: the quota is the tenant's, not the
    connector instance's, so a sync and an undo running side by side share it."""
    key = (settings.base_url, hashlib.sha256(settings.credential_key().encode()).hexdigest())
    with _THROTTLES_LOCK:
        if key not in _THROTTLES:
            _THROTTLES[key] = (Throttle(settings.burst_limit, settings.burst_window_s),
                               Throttle(settings.search_per_second, 1.05))
        return _THROTTLES[key]


def _check_credentials(settings: HubSpotSettings) -> None:
    """A private-app token, or all three OAuth values; a partial OAuth set names what is missing."""
    oauth = {"CLIENT_ID": settings.client_id, "CLIENT_SECRET": settings.client_secret,
             "REFRESH_TOKEN": settings.refresh_token}
    given = [k for k, v in oauth.items() if v]
    if given and len(given) < len(oauth):
        missing = ", ".join(f"LEADSYNC_HUBSPOT__{k}" for k in oauth if k not in given)
        raise ConfigError(f"OAuth needs client id, secret and refresh token; missing {missing}")
    if not settings.configured:
        raise ConfigError("LEADSYNC_HUBSPOT__ACCESS_TOKEN (or the OAuth client id, secret and refresh token) "
                          "is not set")


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    for key, value in dict(headers).items():
        if key.lower() == name.lower():
            return str(value)
    return None


def _parse_body(raw: Any) -> dict[str, Any]:
    """Parse a response body once, with orjson (pages are parsed here, not into SDK models)."""
    try:
        body = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        return {"message": raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)}
    return body if isinstance(body, dict) else {"message": str(body)}


class Transport:
    """The SDK client plus HubSpot-aware retry; `calls` counts HTTP requests, retries included."""

    def __init__(self, settings: HubSpotSettings, sleep: Callable[[float], None] = time.sleep) -> None:
        _check_credentials(settings)
        self.settings = settings
        self.sleep = sleep
        self.calls = 0
        #: When the last answer left HubSpot, epoch ms by HubSpot's clock (its `Date` header, whole seconds); the
        #: client's clock when it was sent if no header came. Search streams settle at their first query's.
        self.answered_ms: int | None = None
        #: (daily limit, remaining) from the last response's X-HubSpot-RateLimit-Daily headers (reference §5.3);
        #: None until a response carried them (OAuth apps get none).
        self.daily: tuple[int, int] | None = None
        token = "" if settings.uses_oauth or settings.access_token is None else settings.access_token.get_secret_value()
        self.client = hubspot.Client.create(
            access_token=token, host=settings.base_url,
            base_url=settings.base_url, retry=urllib3.util.Retry(total=0, redirect=0, raise_on_status=False),
        )
        self.burst, self.search_throttle = shared_throttles(settings)
        self._token_expires_at = 0.0  # monotonic; OAuth only: refresh before sending at or after this
        # Each SDK property access builds a new ApiClient and connection pool: build each API once.
        self._apis: dict[str, Any] = {}

    def api(self, path: str) -> Any:
        """`api("crm.contacts.basic_api")`, cached so its connection pool (keep-alive) is reused."""
        if path not in self._apis:
            obj: Any = self.client
            for part in path.split("."):
                obj = getattr(obj, part)
            self._apis[path] = obj
        return self._apis[path]

    def close(self) -> None:
        """Drop the cached API objects (and their connection pools)."""
        for api in self._apis.values():
            pool = getattr(getattr(getattr(api, "api_client", None), "rest_client", None), "pool_manager", None)
            if pool is not None:
                pool.clear()
        self._apis.clear()

    # ------------------------------------------------------------------ calls
    def call(self, fn: Callable[..., Any], *args: Any, idempotent: bool = True, search: bool = False,
             **kwargs: Any) -> tuple[int, dict[str, Any]]:
        """Run one SDK call (with retries) and return (status, parsed JSON body).

        With OAuth, the token is refreshed before `expires_in` runs out; a 401 EXPIRED_AUTHENTICATION anyway
        (clock skew, a revoked token) refreshes once and repeats the call, and a second 401 is an AuthError.
        """
        kwargs.setdefault("_preload_content", False)
        kwargs.setdefault("_request_timeout", self.settings.timeout_s)

        def once() -> tuple[int, dict[str, Any]]:
            if self.settings.uses_oauth and time.monotonic() >= self._token_expires_at:
                self.refresh_token()
            return self._send(fn, args, kwargs, search)

        try:
            return self._retrying(idempotent)(once)
        except AuthError as err:
            if not self.settings.uses_oauth or err.code != "EXPIRED_AUTHENTICATION":
                raise
        self.refresh_token()
        try:
            return self._retrying(idempotent)(once)
        except AuthError as err:
            raise AuthError(f"HubSpot rejected a freshly refreshed OAuth access token ({err.code}: {err}); "
                            "check the app's scopes and that it is still installed in the portal",
                            code=err.code, status=err.status) from err

    def _send(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
              search: bool) -> tuple[int, dict[str, Any]]:
        """One HTTP request: budget, pacing, counting, error translation."""
        self._check_budget()
        self._pace(search)
        self.calls += 1
        sent_ms = int(time.time() * 1000)
        try:
            resp = fn(*args, **kwargs)
        except urllib3.exceptions.HTTPError as exc:
            raise Transient(f"connection failed: {exc}") from exc
        except Exception as exc:  # each SDK package has its own ApiException (reference §1.5)
            raise self._translate(exc) from exc
        date = http_date(_header(getattr(resp, "headers", None), "Date"))
        self.answered_ms = int(date.timestamp() * 1000) if date else sent_ms
        self._note_daily(getattr(resp, "headers", None))
        return resp.status, _parse_body(resp.data)

    def _note_daily(self, headers: Any) -> None:
        limit, left = _header(headers, "X-HubSpot-RateLimit-Daily"), _header(headers, "X-HubSpot-RateLimit-Daily-Remaining")
        if limit and left and limit.isdigit() and left.isdigit():
            self.daily = (int(limit), int(left))

    def _check_budget(self) -> None:
        """Stop before the request that would pass `max_calls_per_run` (one connector serves one run)."""
        limit = self.settings.max_calls_per_run
        if limit is not None and self.calls >= limit:
            raise QuotaExhausted(f"budget: {limit} API calls per run spent; the next run continues from the "
                                 "stored watermarks", code="BUDGET")

    def refresh_token(self) -> None:
        """`POST /oauth/v1/token` (refresh grant) through the SDK's `oauth.tokens_api.create` (reference §1.4),
        then point every cached API object at the new token. A rejected refresh token is an AuthError."""
        s = self.settings
        assert s.client_secret is not None and s.refresh_token is not None
        api = self.api("oauth.tokens_api")
        kwargs = {"grant_type": "refresh_token", "refresh_token": s.refresh_token.get_secret_value(),
                  "client_id": s.client_id, "client_secret": s.client_secret.get_secret_value(),
                  "_preload_content": False, "_request_timeout": s.timeout_s}
        try:
            _, body = self._retrying(True)(lambda: self._send(api.create, (), kwargs, False))
        except HubSpotError as err:
            code = str(err.body.get("status") or err.code)
            raise AuthError(f"HubSpot refused the OAuth refresh token ({code}: {err}); re-authorise the app and "
                            "set LEADSYNC_HUBSPOT__REFRESH_TOKEN", code=code, status=err.status) from err
        token, expires_in = str(body.get("access_token") or ""), float(body.get("expires_in") or 0)
        if not token:
            raise AuthError("the OAuth token response carried no access_token", code="NO_ACCESS_TOKEN")
        margin = min(s.token_refresh_margin_s, expires_in / 2)
        self._token_expires_at = time.monotonic() + expires_in - margin
        self.client.access_token = token  # API objects built later read it from the client's config
        for cached in self._apis.values():
            configuration = getattr(getattr(cached, "api_client", None), "configuration", None)
            if configuration is not None:
                configuration.access_token = token

    def get(self, path: str, query: list[tuple[str, Any]]) -> dict[str, Any]:
        """GET an endpoint the SDK does not wrap, through an SDK ApiClient (unlike `api_request`, it
        honours host, timeouts and pooling)."""
        api_client = self.api("crm.objects.basic_api").api_client
        _, body = self.call(api_client.call_api, path, "GET", query_params=query,
                            header_params={"Accept": "application/json"}, auth_settings=["oauth2"],
                            response_types_map={})
        return body

    def _pace(self, search: bool) -> None:
        wait = max(self.search_throttle.reserve() if search else 0.0, self.burst.reserve())
        if wait > 0:
            self.sleep(wait)

    def _retrying(self, idempotent: bool) -> Retrying:
        def retryable(exc: BaseException) -> bool:
            return isinstance(exc, RateLimited) or (idempotent and isinstance(exc, Transient))

        backoff = wait_random_exponential(multiplier=self.settings.backoff_base_s, max=self.settings.backoff_max_s)

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, RateLimited):
                return exc.wait_s * (1 + random.random() * 0.1)
            return backoff(state)

        return Retrying(stop=stop_after_attempt(self.settings.max_attempts), retry=retry_if_exception(retryable),
                        wait=wait, sleep=self.sleep, reraise=True)

    def _translate(self, exc: Exception) -> Exception:
        status = getattr(exc, "status", None)
        if not isinstance(status, int) or status == 0:
            return Transient(f"request failed: {exc}")
        body = _parse_body(getattr(exc, "body", None))
        headers = getattr(exc, "headers", None)
        message = str(body.get("message") or getattr(exc, "reason", "") or f"HTTP {status}")
        if status == 401:
            return AuthError(message, code=str(body.get("category") or "UNAUTHORIZED"), status=401)
        if status == 429:
            return self._rate_limited(message, body, headers)
        if status >= 500 or status == 477:
            return Transient(f"HubSpot {status}: {message}")
        return HubSpotError(message, code=str(body.get("category") or f"HTTP_{status}"), status=status, body=body)

    def _rate_limited(self, message: str, body: dict[str, Any], headers: Any) -> Exception:
        """Dispatch on `policyName`, else on the message (reference §5.2); DAILY stops the run."""
        policy = str(body.get("policyName") or "").upper()
        if policy == "DAILY" or "daily limit" in message.lower():
            return QuotaExhausted(message, code="DAILY", status=429)
        if policy == "SECONDLY" or "secondly limit" in message.lower():
            return RateLimited(message, code=policy or "SECONDLY", body=body, wait_s=1.0)
        retry_after = _header(headers, "Retry-After")
        if retry_after and retry_after.replace(".", "", 1).isdigit():
            wait_s = float(retry_after)
        elif _header(headers, "X-HubSpot-RateLimit-Remaining") == "0":
            wait_s = int(_header(headers, "X-HubSpot-RateLimit-Interval-Milliseconds") or 10_000) / 1000
        else:
            wait_s = self.settings.rate_limit_backoff_s
        return RateLimited(message, code=policy or "TEN_SECONDLY_ROLLING", body=body, wait_s=wait_s)
