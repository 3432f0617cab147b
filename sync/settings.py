"""Settings: environment (`LEADSYNC_…`, nested with `__`) over an optional `leadsync.toml`.

Secrets are `SecretStr` in the connector settings and never printed; `describe()`
shows what is configured without a single secret character.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from connectors.csv.settings import CsvSettings
from connectors.hubspot.settings import HubSpotSettings
from connectors.salesforce.settings import SalesforceSettings
from mapping.model import Stage
from mapping.profile import check_rules
from sync.decide import COMPANY_PLACEHOLDER, PersonPolicy

#: Canonical fields that `identity.copy_fields` may name (each CRM maps them to its own fields).
COPYABLE = ("title", "company", "country")


class SyncSettings(BaseModel):
    """How runs behave; constants a RevOps engineer may want to tune."""

    batch_size: int = 1000  # contacts scored and planned per step: a multiple of both CRMs' write batches
    max_attempts: int = 5  # a rejected change is retried this often, then held for a person
    task_due_days: int = 1  # follow-up tasks are due this many days after the hand-off
    create_tasks: bool = True


class IdentitySettings(BaseModel):
    """How records of one human across CRMs become one person (see README, "One person across CRMs")."""

    #: Per canonical field, which CRM's value the merged profile takes (mapping/profile.py rules).
    field_rules: dict[str, str] = Field(default_factory=dict)
    #: Canonical fields copied into every record of the person under those rules (title, company, country).
    copy_fields: list[str] = Field(default_factory=list)

    @field_validator("field_rules")
    @classmethod
    def _known_rules(cls, v: dict[str, str]) -> dict[str, str]:
        check_rules(v)
        return v

    @field_validator("copy_fields")
    @classmethod
    def _known_fields(cls, v: list[str]) -> list[str]:
        unknown = [f for f in v if f not in COPYABLE]
        if unknown:
            raise ValueError(f"identity.copy_fields: cannot copy {', '.join(unknown)} (one of {', '.join(COPYABLE)})")
        return v


class HandoffSettings(BaseModel):
    """Creating the person's record in the CRM sales works in, once they are ready for it."""

    stage: Stage = Stage.SQL  # MQL for teams whose SDRs qualify
    to_salesforce: bool = True  # HubSpot-only people reaching `stage` get a Salesforce Lead
    to_hubspot: bool = False  # Salesforce-only people reaching `stage` get a HubSpot contact (nurture)
    lead_source: str | None = "Web"
    owner_id: str | None = None  # the new Lead's owner; unset: the Salesforce queue owner, else the API user
    company_placeholder: str = COMPANY_PLACEHOLDER


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEADSYNC_", env_nested_delimiter="__", extra="ignore")

    hubspot: HubSpotSettings = Field(default_factory=HubSpotSettings)
    salesforce: SalesforceSettings = Field(default_factory=SalesforceSettings)
    csv: CsvSettings = Field(default_factory=CsvSettings)
    state_url: str = "sqlite:///.leadsync/state.db"
    model_path: str | None = None  # scoring model TOML; the shipped default when unset
    sync: SyncSettings = Field(default_factory=SyncSettings)
    identity: IdentitySettings = Field(default_factory=IdentitySettings)
    handoff: HandoffSettings = Field(default_factory=HandoffSettings)

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

    def person_policy(self) -> PersonPolicy:
        """The person-level rules for a run; hand-offs only between CRMs that are both configured."""
        configured = set(self.configured_sources())
        both = {"hubspot", "salesforce"} <= configured
        h = self.handoff
        targets = tuple(t for t, on in (("salesforce", h.to_salesforce), ("hubspot", h.to_hubspot)) if on and both)
        return PersonPolicy(
            rules=check_rules(self.identity.field_rules), copy_fields=tuple(self.identity.copy_fields),
            handoff_stage=h.stage, handoff_to=targets, lead_source=h.lead_source,
            handoff_owner=h.owner_id or self.salesforce.queue_owner_id, company_placeholder=h.company_placeholder,
            create_tasks=self.sync.create_tasks, due_days=self.sync.task_due_days,
        )

    def describe(self) -> dict[str, Any]:
        """Configuration with secrets masked, for logs and `--json` output."""
        return self.model_dump(mode="json")  # SecretStr dumps as '**********'
