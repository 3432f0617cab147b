"""Sending one alert: a Slack incoming webhook (POST `{"text": …}`) or an email over SMTP.

Every failure is sorted by what it says about delivery, because an alert must never go out twice:
- `NotSent(transient=True)`: surely not delivered, worth retrying (connection refused, connect timeout,
  HTTP 429 / 5xx, SMTP 4xx); retried here with tenacity, then held for the next run;
- `NotSent(transient=False)`: refused for good (Slack 400/403/404/410 — invalid_payload, action_prohibited,
  no_service, channel_is_archived —, SMTP 5xx): held for a person;
- `Ambiguous`: the request went out and its answer was lost (read timeout, dropped connection); it may have
  been delivered, so it is never re-sent.
Messages never carry the webhook URL or password: both are `SecretStr`, unwrapped only for the call.
"""

from __future__ import annotations

import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid

import requests
from pydantic import SecretStr
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from sync.safe_text import plain


class NotSent(Exception):
    def __init__(self, message: str, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class Ambiguous(Exception):
    """Sent, answer lost: it may have been delivered."""


def slack_text(text: str) -> str:
    """CRM text as Slack message text: no control characters, and `&`, `<`, `>` as entities (Slack's only
    control characters: a name like `<!channel>` or `<https://x|click>` must stay text)."""
    return plain(text, lines=True).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(frozen=True)
class Smtp:
    host: str
    port: int
    sender: str
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = False


def post_slack(webhook: SecretStr, text: str, timeout_s: float, session: requests.Session | None = None) -> None:
    http = session or requests.Session()
    http.trust_env = False  # no proxy or CA variables from the environment for a secret URL
    try:
        resp = http.post(webhook.get_secret_value(), json={"text": text}, timeout=(timeout_s, timeout_s))
    except requests.ConnectTimeout:
        raise NotSent("Slack webhook: connect timeout", transient=True) from None
    except requests.ReadTimeout:
        raise Ambiguous("Slack webhook: no answer within the timeout") from None
    except requests.ConnectionError as exc:
        if _sent(exc):
            raise Ambiguous("Slack webhook: connection lost after sending") from None
        raise NotSent("Slack webhook: cannot connect", transient=True) from None
    except requests.RequestException as exc:
        raise Ambiguous(f"Slack webhook: {type(exc).__name__}") from None
    finally:
        if session is None:
            http.close()
    if resp.status_code == 200:
        return
    body = resp.text[:200]
    raise NotSent(f"Slack webhook answered {resp.status_code} {plain(body)}",
                  transient=resp.status_code == 429 or resp.status_code >= 500)


def _sent(exc: requests.ConnectionError) -> bool:
    """A ConnectionError after the request went out (reset, closed early) vs. one that never connected."""
    text = repr(exc)
    return not any(s in text for s in ("NewConnectionError", "Connection refused", "Name or service not known",
                                       "Failed to resolve"))


def send_email(smtp: Smtp, to: str, subject: str, body: str, message_id: str, timeout_s: float) -> None:
    msg = EmailMessage()
    msg["From"], msg["To"] = smtp.sender, to
    msg["Subject"] = plain(subject)[:200]
    msg["Message-ID"] = make_msgid(idstring=message_id[:60], domain="leadsync")
    msg.set_content(plain(body, lines=True))
    try:
        conn = smtplib.SMTP(smtp.host, smtp.port, timeout=timeout_s)
    except (OSError, smtplib.SMTPException) as exc:
        raise NotSent(f"SMTP {smtp.host}:{smtp.port}: cannot connect ({type(exc).__name__})", transient=True) from None
    try:
        try:
            if smtp.starttls:
                conn.starttls()
            if smtp.username and smtp.password:
                conn.login(smtp.username, smtp.password.get_secret_value())
        except smtplib.SMTPResponseException as exc:
            raise NotSent(f"SMTP refused: {exc.smtp_code}", transient=400 <= exc.smtp_code < 500) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise NotSent(f"SMTP session failed before sending ({type(exc).__name__})", transient=True) from None
        try:
            conn.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [c for c, _ in exc.recipients.values()]
            raise NotSent(f"SMTP refused the recipient: {codes}", transient=all(400 <= c < 500 for c in codes)) from None
        except smtplib.SMTPResponseException as exc:  # sender refused, data refused: an answer, so not delivered
            raise NotSent(f"SMTP refused: {exc.smtp_code}", transient=400 <= exc.smtp_code < 500) from None
        except OSError as exc:  # a timeout or a dropped connection mid-message (SMTPServerDisconnected too)
            raise Ambiguous(f"SMTP: connection lost while sending ({type(exc).__name__})") from None
    finally:
        try:
            conn.quit()
        except (OSError, smtplib.SMTPException):
            conn.close()


def with_retries(send: object, tries: int) -> None:
    """Call `send()`; transient NotSent is retried `tries` times with a short jittered backoff (never minutes:
    the sync waits for it), then raised."""
    retrying = Retrying(stop=stop_after_attempt(tries), wait=wait_random_exponential(multiplier=0.2, max=2),
                        retry=retry_if_exception(lambda e: isinstance(e, NotSent) and e.transient), reraise=True)
    retrying(send)  # type: ignore[arg-type]
