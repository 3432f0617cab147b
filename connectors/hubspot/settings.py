"""HubSpot connector settings: credentials plus the API's documented limits as tunable constants."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr


class HubSpotSettings(BaseModel):
    """Nested under `LEADSYNC_HUBSPOT__*` by the app settings; defaults match HubSpot's limits (reference §5)."""

    access_token: SecretStr | None = None
    base_url: str = "https://api.hubapi.com"

    # Page and batch sizes: always the API maximum, the quota is what binds.
    contacts_page_size: int = Field(100, le=100)
    search_page_size: int = Field(200, le=200)
    batch_size: int = Field(100, le=100)
    web_events_page_size: int = 100
    email_events_page_size: int = 1000
    forms_page_size: int = 50
    submissions_page_size: int = 50
    meetings_page_size: int = 100

    # Incremental pulls.
    overlap_ms: int = 5 * 60 * 1000  # re-read this much before each watermark (indexing lag, clock skew)
    search_restart_at: int = 9_800  # start a new search window before the 10,000-result cap
    email_event_types: tuple[str, ...] = ("OPEN", "CLICK", "BOUNCE", "STATUSCHANGE")

    # Client-side pacing, per token: stay under the 10-second burst and the search's own per-second limit.
    burst_limit: int = 180
    burst_window_s: float = 10.0
    search_per_second: int = 4

    # Retries (idempotent calls only for 5xx and dropped connections; 429 always, it was not processed).
    max_attempts: int = 6
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    rate_limit_backoff_s: float = 1.0  # when a 429 names no wait (no Retry-After, window not spent)
    timeout_s: float = 30.0
    task_create_attempts: int = 3

    # Writes.
    read_back_stage: bool = True  # re-read lifecyclestage after writing it: HubSpot may silently ignore it
    field_group: str = "leadsync"
