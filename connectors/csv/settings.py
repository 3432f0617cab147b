"""Settings of the CSV connector: where the exports are and which column means what."""

from __future__ import annotations

from pydantic import BaseModel, Field

#: Canonical contact field → the export's column (defaults fit a typical CRM export).
DEFAULT_CONTACT_COLUMNS: dict[str, str] = {
    "id": "id", "email": "email", "first_name": "first_name", "last_name": "last_name", "title": "title",
    "company": "company", "company_size": "company_size", "industry": "industry", "country": "country",
    "owner_id": "owner_id", "lifecycle_stage": "lifecycle_stage", "lead_status": "lead_status",
    "created_at": "created_at", "updated_at": "updated_at",
}
DEFAULT_ENGAGEMENT_COLUMNS: dict[str, str] = {
    "id": "id", "contact_id": "contact_id", "kind": "kind", "occurred_at": "occurred_at", "detail": "detail",
    "campaign": "campaign",
}
PAGE_SIZE = 1000


class CsvSettings(BaseModel):
    contacts_path: str | None = None
    engagements_path: str | None = None
    contact_columns: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_CONTACT_COLUMNS))
    engagement_columns: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_ENGAGEMENT_COLUMNS))
    #: Export value → canonical EngagementKind value, e.g. {"Email Opened": "email_open"}.
    kind_values: dict[str, str] = Field(default_factory=dict)
    #: Where planned writes go: a CSV of field changes and one of tasks (CSV sources are read-only).
    changes_path: str = ".leadsync/csv_changes.csv"
    tasks_path: str = ".leadsync/csv_tasks.csv"
    delimiter: str = ","
    encoding: str = "utf-8-sig"
