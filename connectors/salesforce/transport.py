"""HTTP for the connector: a counted, CA-pinned session, authentication, retries and error translation.

simple-salesforce is always used in direct-session mode and only through
`sf.query` / `sf.query_more` / `sf.restful` (plus `util.call_salesforce` for
Bulk CSV results), so its own re-login paths (which can loop forever through
`sf.Lead.*`, reference §1.3) never run: this module re-authenticates once
itself and turns every failure into the connector exception hierarchy.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce, SalesforceLogin
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceRefusedRequest,
)
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from connectors.base import AuthError, ConfigError, ConnectorError, QuotaExhausted, http_date
from connectors.salesforce.settings import SalesforceSettings

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Reference §1.1: why the password flows are on their way out.
SOAP_RETIREMENT = ("Salesforce username/password + security token login uses SOAP login(), which is not "
                   "available from API version 65.0 on and retires in Summer '27; switch to JWT bearer "
                   "(consumer_key + private_key) or client credentials (consumer_key + consumer_secret)")
OAUTH_PASSWORD_RETIREMENT = ("The OAuth username-password flow is being deprecated by Salesforce (help article "
                             "000886201); switch to client credentials or JWT bearer")
BARE_SESSION_EXPIRED = ("Salesforce session expired or invalid, and only a session id is configured, which "
                        "cannot be renewed: refresh LEADSYNC_SALESFORCE__SESSION_ID (or configure JWT bearer or "
                        "client credentials so leadsync can log in again)")


class _CountingAdapter(HTTPAdapter):
    """Counts every request actually sent (retries included), optionally re-targeting a URL prefix."""

    def __init__(self, on_send: Callable[[], None], rewrite: tuple[str, str] | None = None) -> None:
        super().__init__()
        self._on_send = on_send
        self._rewrite = rewrite

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        if self._rewrite and request.url and request.url.startswith(self._rewrite[0]):
            request.url = self._rewrite[1] + request.url[len(self._rewrite[0]):]
        self._on_send()
        return super().send(request, *args, **kwargs)


def error_code(exc: SalesforceError) -> tuple[str | None, str]:
    """(errorCode, message) from a whole-request error body (a JSON array), or (None, text)."""
    content = exc.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        first = content[0]
        return first.get("errorCode"), str(first.get("message", ""))
    if isinstance(content, dict):
        return content.get("errorCode") or content.get("error"), str(content.get("message", content))
    return None, str(content)


def is_concurrent_limit(exc: BaseException) -> bool:
    """REQUEST_LIMIT_EXCEEDED means two things; only the concurrent one is worth waiting for."""
    if not isinstance(exc, SalesforceRefusedRequest):
        return False
    code, message = error_code(exc)
    return code == "REQUEST_LIMIT_EXCEEDED" and "concurrent" in message.lower()


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, requests.ConnectionError | requests.Timeout):
        return True
    if isinstance(exc, SalesforceGeneralError) and exc.status >= 500:
        return True
    return is_concurrent_limit(exc)


class Transport:
    """Owns the session and the simple-salesforce client; `call` runs one idempotent operation safely."""

    def __init__(self, settings: SalesforceSettings, sleep: Callable[[float], None] | None = None) -> None:
        self.settings = settings
        self.api_calls = 0
        #: When the last answer left Salesforce, by the org's clock (its `Date` header, whole seconds); the
        #: client's clock if no header came. A stream settles at its first query's (connector BEHAVIOR.md).
        self.answered_at: datetime | None = None
        self.session = self._make_session()
        self._sf: Salesforce | None = None
        self._sleep = sleep
        self._warned = False  # the password-flow deprecation is said once per connector

    def _count(self) -> None:
        self.api_calls += 1

    def _keep_date(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.answered_at = http_date(response.headers.get("Date")) or datetime.now(UTC)

    def _make_session(self) -> requests.Session:
        s = requests.Session()
        s.trust_env = False  # REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE must not override the configured CA
        s.verify = self.settings.ca_bundle or True
        s.hooks["response"].append(self._keep_date)
        counting = _CountingAdapter(self._count)
        s.mount("https://", counting)
        s.mount("http://", counting)
        if self.settings.login_url:
            login_host = f"https://{self.settings.domain}.salesforce.com"
            s.mount(login_host + "/", _CountingAdapter(self._count, (login_host, self.settings.login_url.rstrip("/"))))
        return s

    # ------------------------------------------------------------------ auth
    @property
    def sf(self) -> Salesforce:
        if self._sf is None:
            self._sf = self._connect(fresh=False)
        return self._sf

    def _connect(self, fresh: bool) -> Salesforce:
        st = self.settings
        if st.session_id is not None and st.instance_url and not fresh:
            return Salesforce(instance_url=st.instance_url, session_id=st.session_id.get_secret_value(),
                              version=st.api_version, session=self.session, object_pairs_hook=dict)
        if not st.has_login():
            raise AuthError(BARE_SESSION_EXPIRED, code="INVALID_SESSION_ID", status=401)
        session_id, instance = self._login()
        return Salesforce(instance=instance, session_id=session_id, version=st.api_version, session=self.session,
                          object_pairs_hook=dict)  # plain dicts parse faster than the default OrderedDict

    def _login(self) -> tuple[str, str]:
        """Run the configured grant through simple-salesforce's own login code (so its wire format is real).

        A login the server fails to answer (5xx, dropped connection) is retried with the policy of every
        other call; whatever still fails becomes a ConnectorError (AuthError when the CRM refused).
        """
        try:
            return self._retry_policy(_is_transient_login)(self._login_once)
        except _LoginUnavailable as exc:
            raise ConnectorError(f"Salesforce login unavailable: HTTP {exc.status}: {exc.detail} (still, after "
                                 f"{self.settings.max_attempts} attempts)", code=exc.code, status=exc.status) from exc
        except requests.RequestException as exc:
            raise ConnectorError(f"Salesforce login unreachable: {exc}") from exc

    def _login_once(self) -> tuple[str, str]:
        """One login attempt; the HTTP answers it got are kept, since simple-salesforce drops the status."""
        kwargs: dict[str, Any] = {"session": self.session, "domain": self.settings.domain,
                                  "sf_version": self.settings.api_version, **self._grant()}
        answers: list[requests.Response] = []

        def keep(response: requests.Response, *args: Any, **kw: Any) -> None:
            answers.append(response)

        self.session.hooks["response"].append(keep)
        try:
            session_id, instance = SalesforceLogin(**kwargs)
        except SalesforceAuthenticationFailed as exc:
            raise _login_failure(answers, exc.code, exc.auth_message) from exc
        except requests.RequestException:
            raise  # retried, then reported as unreachable
        except OSError as exc:  # after RequestException, which is an OSError too
            raise ConfigError(f"Salesforce login: cannot read private_key_file: {exc}", code="BAD_KEY_FILE") from exc
        except (AttributeError, TypeError, KeyError, ValueError) as exc:
            if not answers:  # simple-salesforce refused the settings before sending anything
                raise ConfigError(f"Salesforce login: {exc}", code="BAD_LOGIN_SETTINGS") from exc
            # it could not read the answer: a 5xx JSON array, a 200 without instance_url …
            raise _login_failure(answers, None, f"unreadable login response (HTTP {answers[-1].status_code}: "
                                               f"{_body_text(answers[-1])})") from exc
        finally:
            self.session.hooks["response"].remove(keep)
        if not session_id or not instance:
            raise AuthError("Salesforce login: the response carries no access token or instance URL",
                            code="BAD_LOGIN_RESPONSE")
        return session_id, instance.rstrip("/")

    def _grant(self) -> dict[str, Any]:
        """`SalesforceLogin` arguments for the configured flow, in the order `SalesforceSettings` documents.

        The two password flows still work but are being retired, so each warns
        (once per connector) with the date and the replacement.
        """
        st = self.settings
        if st.username and st.consumer_key and (st.private_key or st.private_key_file):
            key = {"privatekey": _secret(st.private_key)} if st.private_key else {"privatekey_file": st.private_key_file}
            return {"username": st.username, "consumer_key": st.consumer_key, **key}
        if st.consumer_key and st.consumer_secret and st.username and st.password:
            self._deprecated(OAUTH_PASSWORD_RETIREMENT)
            return {"username": st.username, "password": _secret(st.password), "consumer_key": st.consumer_key,
                    "consumer_secret": _secret(st.consumer_secret)}
        if st.consumer_key and st.consumer_secret:
            return {"consumer_key": st.consumer_key, "consumer_secret": _secret(st.consumer_secret)}
        self._deprecated(SOAP_RETIREMENT)
        return {"username": st.username, "password": _secret(st.password), "security_token": _secret(st.security_token)}

    def _deprecated(self, message: str) -> None:
        """A `DeprecationWarning` for developers and a log warning for whoever reads the run's logs."""
        if self._warned:
            return
        self._warned = True
        warnings.warn(message, DeprecationWarning, stacklevel=4)
        log.warning(message)

    # ------------------------------------------------------------------ calls
    def call(self, op: Callable[[Salesforce], T], what: str) -> T:
        """Run `op` with retries on transient failures and one re-authentication on an expired session."""
        self._check_budget(what)
        renewed = False
        while True:
            try:
                return self._retrying(op)
            except SalesforceExpiredSession as exc:
                if not self.settings.has_login():
                    raise AuthError(f"{what}: {BARE_SESSION_EXPIRED}", code="INVALID_SESSION_ID", status=401) from exc
                if renewed:
                    raise AuthError(f"{what}: Salesforce rejected a freshly issued session (INVALID_SESSION_ID); "
                                    "re-authenticating again will not help: check the user's API access and "
                                    "the connected app's policies", code="INVALID_SESSION_ID", status=401) from exc
                log.info("Salesforce session expired; authenticating again")
                self._sf = self._connect(fresh=True)
                renewed = True
            except SalesforceRefusedRequest as exc:
                code, message = error_code(exc)
                if is_concurrent_limit(exc):
                    raise QuotaExhausted(f"{what}: {message} (still, after {self.settings.max_attempts} attempts "
                                         "with backoff)", code=code, status=403) from exc
                if code == "REQUEST_LIMIT_EXCEEDED":
                    raise QuotaExhausted(f"{what}: {message}", code=code, status=403) from exc
                raise ConfigError(f"{what}: {code}: {message}", code=code, status=403) from exc
            except SalesforceError as exc:
                code, message = error_code(exc)
                raise ConnectorError(f"{what}: {code}: {message}", code=code, status=exc.status) from exc
            except requests.RequestException as exc:
                raise ConnectorError(f"{what}: {exc}") from exc

    def api_usage(self) -> Any:
        """simple-salesforce's parse of the last `Sforce-Limit-Info` header (used, total), or None."""
        return self._sf.api_usage.get("api-usage") if self._sf is not None else None

    def _check_budget(self, what: str) -> None:
        """Stop before the run's call budget or the org-wide reserve is spent (QuotaExhausted: resume later).

        The daily allocation is shared by every integration in the org, so
        `api_reserve` leaves its last calls to them; usage comes free with every
        response (`Sforce-Limit-Info`, parsed by simple-salesforce).
        """
        st = self.settings
        if st.call_budget is not None and self.api_calls >= st.call_budget:
            raise QuotaExhausted(f"{what}: this run's budget of {st.call_budget} API calls is spent", code="CALL_BUDGET")
        usage = self._sf.api_usage.get("api-usage") if self._sf is not None else None
        if st.api_reserve and usage is not None and usage.total - usage.used <= st.api_reserve:
            raise QuotaExhausted(f"{what}: {usage.used}/{usage.total} daily API calls used; the last "
                                 f"{st.api_reserve} are left to other integrations", code="API_RESERVE")

    def _retrying(self, op: Callable[[Salesforce], T]) -> T:
        return self._retry_policy(is_transient)(lambda: op(self.sf))

    def _retry_policy(self, retry: Callable[[BaseException], bool]) -> Retrying:
        """The one tenacity policy for API calls and logins: attempts, backoff (longer for the concurrent
        limit) and the injectable sleep; `retry` says which failures are transient."""
        st = self.settings
        transient = wait_random_exponential(multiplier=st.backoff_base_s, max=st.backoff_max_s)
        concurrent = wait_random_exponential(multiplier=st.concurrent_backoff_s, max=st.concurrent_backoff_max_s)

        def wait(state: RetryCallState) -> float:
            """Long-running requests free up in tens of seconds, so the concurrent limit backs off longer."""
            failed = state.outcome.exception() if state.outcome else None
            return concurrent(state) if failed is not None and is_concurrent_limit(failed) else transient(state)

        return Retrying(
            stop=stop_after_attempt(st.max_attempts),
            wait=wait,
            retry=retry_if_exception(retry),
            reraise=True,
            **({"sleep": self._sleep} if self._sleep else {}),
        )

    def close(self) -> None:
        self.session.close()


class _LoginUnavailable(Exception):
    """The login endpoint failed to answer (5xx): transient, like a 5xx from any other call."""

    def __init__(self, status: int, code: str | None, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status, self.code, self.detail = status, code, detail


def _is_transient_login(exc: BaseException) -> bool:
    return isinstance(exc, _LoginUnavailable | requests.ConnectionError | requests.Timeout)


def _login_failure(answers: list[requests.Response], code: Any, message: str | None) -> Exception:
    """A 5xx answer is the server's trouble (retry); anything else is the CRM refusing the login."""
    status = answers[-1].status_code if answers else None
    text = (message or "").strip()[:300]
    if status is not None and status >= 500 and not _is_soap_fault(answers[-1]):  # SOAP refusals come as 500
        found, detail = _body_error(answers[-1])
        return _LoginUnavailable(status, found, detail or text or "no detail")
    return AuthError(f"Salesforce login failed: {code}: {text}" if code else f"Salesforce login failed: {text}",
                     code=str(code) if code else None, status=status)


def _body_error(response: requests.Response) -> tuple[str | None, str]:
    """(errorCode, "CODE: message") from an error body: a JSON array (REST style) or an OAuth object."""
    try:
        body = response.json()
    except ValueError:
        return None, _body_text(response)
    first = body[0] if isinstance(body, list) and body else body
    if not isinstance(first, dict):
        return None, _body_text(response)
    code = first.get("errorCode") or first.get("error")
    message = first.get("message") or first.get("error_description") or ""
    return (str(code) if code else None), f"{code}: {message}" if code else str(message)


def _is_soap_fault(response: requests.Response) -> bool:
    """SOAP login() answers a refusal (INVALID_LOGIN …) as HTTP 500 with a fault naming the exception."""
    return b"exceptionCode" in response.content


def _body_text(response: requests.Response) -> str:
    """An answer's first bytes, for a message (never the request, which holds credentials)."""
    text = response.text.strip().replace("\n", " ")
    return text[:200] if text else "empty body"


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None
