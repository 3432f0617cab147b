"""Settings: environment (`LEADSYNC_…`, nested with `__`) over an optional `leadsync.toml`.

Secrets are `SecretStr` in the connector settings and never printed; `describe()`
shows what is configured without a single secret character.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from platformdirs import user_data_path
from pydantic import BaseModel, Field, ValidationError, field_validator
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
from sync.decide import COMPANY_PLACEHOLDER, NurturePolicy, PersonPolicy
from sync.routing_settings import AlertSettings, RoutingSettings

#: Canonical fields that `identity.copy_fields` may name (each CRM maps them to its own fields).
COPYABLE = ("title", "company", "country")


class SyncSettings(BaseModel):
    """How runs behave; constants a RevOps engineer may want to tune."""

    # contacts scored and planned per step: a multiple of both CRMs' write batches; checked here, not after a pull
    batch_size: int = Field(1000, ge=1)
    max_attempts: int = Field(5, ge=1)  # a rejected change is retried this often, then held for a person
    task_due_days: int = Field(1, ge=0)  # follow-up tasks are due this many days after the hand-off
    create_tasks: bool = True


class SafetySettings(BaseModel):
    """Limits on what one run may change at once (see README, "Previewing a model change")."""

    #: A model change or rescore that would change the stage of more than this share of the persons refuses
    #: to run without --yes; 1 turns the check off.
    max_stage_moves_share: float = Field(0.2, ge=0, le=1)


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


class NurtureSettings(BaseModel):
    """Enrolling MQLs that are not sales-ready where marketing nurtures them (README, "Nurture")."""

    #: Stages that enrol; a person leaves when their stage moves on (SQL), or when disqualified or unsubscribed.
    stages: list[Stage] = Field(default_factory=lambda: [Stage.MQL])
    hubspot_list_id: str | None = None  # a MANUAL (static) contact list's ILS id
    salesforce_campaign_id: str | None = None  # the Campaign (701…) its Leads / Contacts join
    member_status: str = "Sent"  # CampaignMember Status on enrolment (one of the campaign's member statuses)
    exit_status: str | None = None  # CampaignMember Status on exit, e.g. "Removed"; unset: the member is deleted
    batch_size: int = Field(100, ge=1, le=200)  # records per membership call (Salesforce collections take 200)

    @field_validator("stages")
    @classmethod
    def _enrolling(cls, v: list[Stage]) -> list[Stage]:
        bad = [s.value for s in v if s in (Stage.OTHER,)]
        if bad:
            raise ValueError(f"nurture.stages: {', '.join(bad)} cannot enrol")
        return v

    def policy(self, configured: set[str]) -> NurturePolicy | None:
        """The plain policy for a run; a target counts only in a CRM that is configured."""
        targets = {src: t for src, t in (("hubspot", self.hubspot_list_id),
                                         ("salesforce", self.salesforce_campaign_id)) if t and src in configured}
        if not targets:
            return None
        return NurturePolicy(frozenset(self.stages), targets, self.member_status, self.exit_status, self.batch_size)


class SettingsError(ValueError):
    """Settings that cannot be used: the message names the config file or the setting, never a secret."""


#: Sections whose values are shown in errors; elsewhere a value may be a credential.
_SHOWN_SECTIONS = frozenset({"sync", "state_url", "model_path", "safety", "nurture"})


def config_path() -> Path | None:
    """The config file in effect: `LEADSYNC_CONFIG` (which must exist), else `./leadsync.toml` if present."""
    named = os.environ.get("LEADSYNC_CONFIG")
    if named:
        path = Path(named)
        if not path.is_file():
            raise SettingsError(f"LEADSYNC_CONFIG={named}: no such file" if not path.exists()
                                else f"LEADSYNC_CONFIG={named}: not a file")
        return path
    default = Path("leadsync.toml")
    return default if default.exists() else None


def _toml_source(settings_cls: type[BaseSettings], path: Path) -> PydanticBaseSettingsSource:
    """The config file as a settings source; unreadable or invalid TOML is a SettingsError naming the file."""
    try:
        return TomlConfigSettingsSource(settings_cls, toml_file=path)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise SettingsError(f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                            f"{exc.start})") from None
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read config file ({exc.strerror})") from None


def _describe(exc: ValidationError) -> str:
    config = config_path()
    return describe_errors(exc, f"environment LEADSYNC_… or {config}" if config else "environment LEADSYNC_…")


def describe_errors(exc: ValidationError, origin: str) -> str:
    """One line per bad setting, dotted as in TOML; values shown only where they cannot be secrets."""
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        got = err.get("input")
        shown = f", got {got!r}" if loc and loc[0] in _SHOWN_SECTIONS and not isinstance(got, dict) else ""
        lines.append(f"setting {'.'.join(loc)}: {err['msg']}{shown}")
    return f"invalid settings ({origin}):\n  " + "\n  ".join(lines)


#: `LEADSYNC_*` variables that are not settings: the config and tenants files' paths, the tenant a command
#: runs for, and the tests' re-recording switch.
NOT_SETTINGS = frozenset({"LEADSYNC_CONFIG", "LEADSYNC_TENANTS", "LEADSYNC_TENANT", "LEADSYNC_RECORD_LIVE"})


def default_state_url() -> str:
    """SQLite in the per-user data directory (e.g. ~/.local/share/leadsync): the same state from any folder.

    It used to be `.leadsync/state.db` under the working directory, so a run from another folder silently
    started a fresh state and rewrote the CRM's records as if it had never seen them."""
    return f"sqlite:///{user_data_path('leadsync', appauthor=False) / 'state.db'}"


def _field_model(model: type[BaseModel], name: str) -> type[BaseModel] | None:
    """The settings section a field holds, or None for a plain value (a string, a list, a dict of rules)."""
    ann = model.model_fields[name].annotation
    return ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None


def _unknown(model: type[BaseModel], path: list[str], where: str) -> str | None:
    """Why `path` (lower-case keys, outermost first) names no setting of `model`, or None if it does."""
    node: type[BaseModel] | None = model
    for depth, key in enumerate(path):
        if node is None:
            return None  # below a plain value, e.g. identity.field_rules.<field>
        if key not in node.model_fields:
            section = ".".join(path[:depth]) or "leadsync"
            near = difflib.get_close_matches(key, list(node.model_fields), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else f"; known: {', '.join(sorted(node.model_fields))}"
            return f"{where}: unknown setting {'.'.join(path)!r} ({section} has no {key!r}{hint})"
        node = _field_model(node, key)
    return None


def unknown_env(environ: Mapping[str, str], model: type[BaseModel]) -> list[str]:
    """Each `LEADSYNC_*` variable that sets nothing (a typo would otherwise be ignored silently)."""
    out = []
    for name in sorted(environ):
        if not name.upper().startswith("LEADSYNC_") or name.upper() in NOT_SETTINGS:
            continue
        why = _unknown(model, name[len("LEADSYNC_"):].lower().split("__"), f"environment {name}")
        if why:
            out.append(why)
    return out


def unknown_toml(data: Mapping[str, Any], model: type[BaseModel], path: Path | str, prefix: tuple[str, ...] = ()
                 ) -> list[str]:
    """Each key of the config file that sets nothing, by its dotted name."""
    out = []
    for key, value in data.items():
        keys = [*prefix, str(key)]
        why = _unknown(model, keys, str(path))
        if why:
            out.append(why)
            continue
        node: type[BaseModel] | None = model
        for k in keys:
            node = _field_model(node, k) if node is not None else None
        if node is not None and isinstance(value, Mapping):
            out.extend(unknown_toml(value, model, path, tuple(keys)))
    return out


def _check_names() -> None:
    """Unknown `LEADSYNC_*` variables and config keys are one SettingsError naming every one of them."""
    problems = unknown_env(os.environ, Settings)
    config = config_path()
    if config:
        _toml_source(Settings, config)  # unreadable or invalid TOML: its own clear error first
        problems += unknown_toml(tomllib.loads(config.read_text(encoding="utf-8")), Settings, config)
    if problems:
        raise SettingsError("unknown settings (a typo is never ignored):\n  " + "\n  ".join(problems))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEADSYNC_", env_nested_delimiter="__", extra="forbid")

    def __init__(self, **values: Any) -> None:
        """Settings from the environment and config file; anything unusable is one SettingsError."""
        _check_names()
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise SettingsError(_describe(exc)) from None

    hubspot: HubSpotSettings = Field(default_factory=HubSpotSettings)
    salesforce: SalesforceSettings = Field(default_factory=SalesforceSettings)
    csv: CsvSettings = Field(default_factory=CsvSettings)
    state_url: str = Field(default_factory=default_state_url)
    model_path: str | None = None  # scoring model TOML; the shipped default when unset
    sync: SyncSettings = Field(default_factory=SyncSettings)
    identity: IdentitySettings = Field(default_factory=IdentitySettings)
    handoff: HandoffSettings = Field(default_factory=HandoffSettings)
    # Owner routing, alerts and SLA escalation (sync/routing_settings.py; README "Owner routing and alerts")
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    safety: SafetySettings = Field(default_factory=SafetySettings)
    nurture: NurtureSettings = Field(default_factory=NurtureSettings)

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
        config = config_path()
        if config:
            sources.append(_toml_source(settings_cls, config))
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
            nurture=self.nurture.policy(configured),
        )

    def describe(self) -> dict[str, Any]:
        """Configuration with secrets masked, for logs and `--json` output."""
        return self.model_dump(mode="json")  # SecretStr dumps as '**********'
