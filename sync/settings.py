"""Settings: environment (`LEADSYNC_…`, nested with `__`) over an optional `leadsync.toml`.

Secrets are `SecretStr` in the connector settings and never printed; `describe()`
shows what is configured without a single secret character.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from connectors.csv.settings import CsvSettings
from connectors.hubspot.settings import HubSpotSettings
from connectors.salesforce.settings import SalesforceSettings


class SyncSettings(BaseModel):
    """How runs behave; constants a RevOps engineer may want to tune."""

    batch_size: int = 1000  # contacts scored and planned per step: a multiple of both CRMs' write batches
    max_attempts: int = 5  # a rejected change is retried this often, then held for a person
    task_due_days: int = 1  # follow-up tasks are due this many days after the hand-off
    create_tasks: bool = True


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEADSYNC_", env_nested_delimiter="__", extra="ignore")

    hubspot: HubSpotSettings = Field(default_factory=HubSpotSettings)
    salesforce: SalesforceSettings = Field(default_factory=SalesforceSettings)
    csv: CsvSettings = Field(default_factory=CsvSettings)
    state_url: str = "sqlite:///.leadsync/state.db"
    model_path: str | None = None  # scoring model TOML; the shipped default when unset
    sync: SyncSettings = Field(default_factory=SyncSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config = os.environ.get("LEADSYNC_CONFIG") or ("leadsync.toml" if Path("leadsync.toml").exists() else None)
        if config:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config))
        return tuple(sources)

    def configured_sources(self) -> list[str]:
        out = []
        if self.hubspot.configured:  # a private-app token, or OAuth client + refresh token
            out.append("hubspot")
        sf = self.salesforce
        if sf.instance_url and (sf.session_id or sf.consumer_key or sf.username):
            out.append("salesforce")
        elif sf.username or sf.consumer_key:
            out.append("salesforce")
        if self.csv.contacts_path:
            out.append("csv")
        return out

    def describe(self) -> dict[str, Any]:
        """Configuration with secrets masked, for logs and `--json` output."""
        return self.model_dump(mode="json")  # SecretStr dumps as '**********'
