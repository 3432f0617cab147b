"""Re-recording cassettes against a real CRM: opt-in, never in CI."""

from __future__ import annotations

import os
from typing import Any


def live_settings(source: str) -> Any | None:
    """The CRM's settings from the environment when LEADSYNC_RECORD_LIVE=1, else None (use the sandbox)."""
    if os.environ.get("LEADSYNC_RECORD_LIVE") != "1":
        return None
    from sync.settings import Settings

    settings = Settings()
    if source not in settings.configured_sources():
        raise RuntimeError(f"LEADSYNC_RECORD_LIVE=1 but {source} is not configured (see README)")
    return getattr(settings, source)
