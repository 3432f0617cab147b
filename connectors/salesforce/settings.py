"""Salesforce connector settings: credentials, plus the API's documented limits as tunable constants."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr

from mapping.model import Stage


class SalesforceSettings(BaseModel):
    """Nested under `LEADSYNC_SALESFORCE__*`. Which credentials are set picks the auth flow:

    - `instance_url` + `session_id`: a ready session; it cannot be renewed, so an expiry is an `AuthError`.
    - `username` + `consumer_key` + `private_key` (or `private_key_file`): JWT bearer (re-runs the grant when the session dies).
    - `consumer_key` + `consumer_secret` (+ `username`/`password` for the deprecated OAuth password flow):
      client credentials on the My Domain `domain` (e.g. `acme.my`).
    - `username` + `password` + `security_token`: SOAP login (API ≤ 64.0, retiring Summer '27); it warns
      (`DeprecationWarning` and a log line) on use, as does the OAuth password flow.
    A session id together with credentials starts with the session and re-authenticates on expiry.
    """

    instance_url: str | None = None
    session_id: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    security_token: SecretStr | None = None
    consumer_key: str | None = None
    consumer_secret: SecretStr | None = None
    private_key: SecretStr | None = None  # PEM text of the JWT signing key
    private_key_file: str | None = None  # or a path to it
    domain: str = "login"
    ca_bundle: str | None = None  # trust a private CA (the sandbox's); env CA variables never override it
    api_version: str = "59.0"
    queue_owner_id: str | None = None  # owner of follow-up tasks for queue-owned or inactive-owner records
    #: Queue id (`00G…`) → user id who gets follow-up tasks for that queue's leads; other queues fall back to
    #: `queue_owner_id`, else no OwnerId is sent and Salesforce makes the API user the owner (reference §7.8).
    queue_routing: dict[str, str] = Field(default_factory=dict)

    # Where stage and score live (reference §3: no standard lifecycle field on Lead/Contact).
    #: Lead field holding the stage: leadsync's custom picklist, or "Status" to map stages onto Lead.Status.
    stage_field: str = "LeadSync_Stage__c"
    #: Canonical stage → the org's picklist value (empty: leadsync's own labels "Lead", "MQL", …). With
    #: `stage_field="Status"` it must name a status for subscriber, lead, mql and sql; checked against describe.
    stage_values: dict[Stage, str] = Field(default_factory=dict)
    #: leadsync score field → the org's field, e.g. {"LeadSync_Score__c": "Lead_Score__c"} (Lead and Contact).
    field_names: dict[str, str] = Field(default_factory=dict)
    #: Object → the org's own fields the team wants read (e.g. {"Lead": ["Course__c"]}; Lead and Contact only):
    #: selected with the rest, checked against describe at start-up (unknown → ConfigError naming them), and
    #: put into `Contact.extra`, where calibrated scoring rules read columns.
    extra_fields: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    #: Send login/token calls for `https://{domain}.salesforce.com` to this base URL instead (sandbox, proxy).
    login_url: str | None = None

    # Reads: pages at the API maximum; a short overlap re-reads rows committed late (reference §2.3).
    query_batch_size: int = Field(2000, ge=200, le=2000)
    overlap_s: int = Field(60, ge=0)

    # Large pulls switch to Bulk API 2.0 when a query has more than this many rows left after its first
    # REST page (0: never). A job is a handful of calls whatever its size (reference §2.4).
    bulk_threshold: int = Field(10_000, ge=0)
    bulk_page_size: int = Field(10_000, ge=1)
    bulk_poll_s: float = 1.0
    bulk_poll_max_s: float = 15.0
    bulk_timeout_s: float = 3600.0

    # Writes: sObject Collections take at most 200 records per call (reference §4.2).
    write_batch_size: int = Field(200, ge=1, le=200)
    lock_retry_attempts: int = Field(4, ge=1)  # UNABLE_TO_LOCK_ROW: re-send only the locked records
    task_status: str = "Not Started"
    task_priority: str = "High"

    # Quota: the daily allocation is shared by every integration in the org (reference §5.3).
    api_reserve: int = Field(0, ge=0)  # stop (QuotaExhausted) when this few daily calls remain
    call_budget: int | None = Field(None, ge=0)  # most calls one connector (one run) may make

    # Transport retries (5xx, dropped connections, concurrent-request limit; every call leadsync makes is idempotent).
    max_attempts: int = Field(5, ge=1)
    backoff_base_s: float = 0.5
    backoff_max_s: float = 20.0
    #: The concurrent-request limit counts requests running ≥ 20 s (reference §5.3): wait longer before retrying.
    concurrent_backoff_s: float = 5.0
    concurrent_backoff_max_s: float = 60.0
    timeout_s: float = 120.0

    def has_login(self) -> bool:
        """Whether credentials allow a fresh session (not only a given session id)."""
        return bool(
            (self.username and self.consumer_key and (self.private_key or self.private_key_file))
            or (self.consumer_key and self.consumer_secret)
            or (self.username and self.password and self.security_token)
        )
