"""Structured logs: every line carries the run id; secrets never reach a handler."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from datetime import datetime, timezone

from sync.safe_text import plain

run_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("leadsync_run_id", default=None)

# Belt and braces: settings hold secrets as SecretStr, but a library may log a header or a URL.
_SECRET = re.compile(r"(?i)(bearer\s+|access_token=|sessionid=|session_id=|password=|token=)([^\s&\"',]+)")


#: Slack incoming-webhook paths are the credential (urllib3 logs the request line at DEBUG).
_WEBHOOK = re.compile(r"(/services/)([^\s\"']+)")


def redact(text: str) -> str:
    return _WEBHOOK.sub(r"\1***", _SECRET.sub(lambda m: m.group(1) + "***", text))


class _RunIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.run_id = run_id_var.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "run_id": getattr(record, "run_id", "-"),
            "msg": redact(record.getMessage()),
        }
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Lines for a terminal: redacted, and without control characters (a CRM value in a message is data)."""

    def format(self, record: logging.LogRecord) -> str:
        return plain(redact(super().format(record)), lines=True)


def setup(fmt: str = "text", verbose: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RunIdFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s [%(run_id)s] %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
