"""HubSpot connector settings: credentials plus the API's documented limits as tunable constants."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr


class HubSpotSettings(BaseModel):
    """Nested under `LEADSYNC_HUBSPOT__*` by the app settings; defaults match HubSpot's limits (reference §5)."""

    access_token: SecretStr | None = None  # a private app's static `pat-…` token
    base_url: str = "https://api.hubapi.com"
    # OAuth (public app): with all three set, access tokens come from `POST /oauth/v1/token` (refresh grant)
    # and `access_token` is ignored (reference §1.4).
    client_id: str | None = None
    client_secret: SecretStr | None = None
    refresh_token: SecretStr | None = None
    token_refresh_margin_s: float = 60.0  # refresh this long before `expires_in` runs out (at most half of it)

    # Budget: a run that would send more than this many requests stops with QuotaExhausted("budget: …"),
    # which the engine ends as "paused: quota"; the next run continues from the stored watermarks.
    max_calls_per_run: int | None = Field(None, ge=1)

    # Page and batch sizes: always the API maximum, the quota is what binds.
    contacts_page_size: int = Field(100, le=100)
    search_page_size: int = Field(200, le=200)
    batch_size: int = Field(100, le=100)
    web_events_page_size: int = 100
    email_events_page_size: int = 1000
    forms_page_size: int = 50
    submissions_page_size: int = 50
    meetings_page_size: int = 100

    # Contact properties the team wants read besides leadsync's own (custom properties, form answers): requested
    # with the others, checked against the properties API once per run (unknown → ConfigError), and mapped into
    # `Contact.extra`, where calibrated scoring rules read columns.
    extra_properties: tuple[str, ...] = ()
    # The list endpoint repeats `properties=` in its query string; past ~16 KB HubSpot answers 414 (reference
    # §2.1, §5.4). Above this many characters the backfill lists ids only and reads the properties with
    # `batch/read`, properties in the body (Airbyte keeps its query under 15,000).
    max_query_chars: int = Field(12_000, ge=1_000)

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
    # A task create whose answer was lost (timeout, 5xx, a crash mid-call) may still commit on HubSpot's side
    # after the client gave up. Until this long after it was sent its ledger entry stays pending: neither
    # re-sent nor cancelled, only looked up; after it, a key still not found is created again.
    task_settle_s: float = Field(120.0, ge=0)

    # Writes.
    read_back_stage: bool = True  # re-read lifecyclestage after writing it: HubSpot may silently ignore it
    field_group: str = "leadsync"

    @property
    def uses_oauth(self) -> bool:
        """All three OAuth credentials are set (then they win over `access_token`)."""
        return bool(self.client_id and self.client_secret and self.refresh_token)

    @property
    def configured(self) -> bool:
        """Credentials of either kind are present (what `configured_sources()` should ask)."""
        return self.access_token is not None or self.uses_oauth

    def credential_key(self) -> str:
        """What identifies the tenant's quota: the private-app token, or the OAuth app + refresh token."""
        if self.uses_oauth:
            assert self.refresh_token is not None
            return f"oauth:{self.client_id}:{self.refresh_token.get_secret_value()}"
        return self.access_token.get_secret_value() if self.access_token else ""
