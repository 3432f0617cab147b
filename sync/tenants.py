"""Tenants: many teams served from one state, declared in `tenants.toml`.

A tenant is one team: its HubSpot portal and/or Salesforce org, its settings, scoring model, budget and
schedule. The file holds no secret: a credential is named by the environment variable that holds it
(`access_token_env = "ACME_HUBSPOT_TOKEN"`), read when the file is loaded. Each tenant is validated on its
own, so one team's bad configuration stops that team only (`TenantsFile.errors`), never its neighbours.

    [defaults]                       # every tenant's starting point (any leadsync.toml setting)
    state_url_env = "LEADSYNC_STATE_URL"
    schedule = "*/15 * * * *"

    [tenants.acme]
    model_path = "models/acme.toml"  # relative paths are relative to this file
    hubspot.access_token_env = "ACME_HUBSPOT_TOKEN"
    hubspot.max_calls_per_run = 20000

The single-team path needs no file: tenant `default` is the environment and `leadsync.toml`, as before.
"""

from __future__ import annotations

import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from sync.db import mask_url
from sync.settings import Settings, SettingsError, describe_errors, unknown_toml

DEFAULT = "default"
TENANTS_ENV = "LEADSYNC_TENANTS"  # the tenants file's path; else ./tenants.toml when present
DEFAULT_SCHEDULE = "*/15 * * * *"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_CRON_FIELD = re.compile(r"^[A-Za-z0-9*/,\-?LW#]+$")
#: Keys a tenant table holds besides the settings leadsync.toml takes.
_TENANT_KEYS = ("schedule",)
#: Settings naming a local file: relative to the tenants file, not to wherever a run starts.
_PATHS = (("model_path",), ("salesforce", "private_key_file"), ("salesforce", "ca_bundle"), ("csv", "contacts_path"))


@dataclass(frozen=True)
class Tenant:
    """One team as a run needs it: its settings (secrets resolved from the environment) and cadence."""

    name: str
    settings: Settings
    schedule: str = DEFAULT_SCHEDULE  # cron, five fields, UTC


@dataclass(frozen=True)
class TenantsFile:
    """Every tenant the file declares: the usable ones, and why each of the others is not."""

    path: Path | None
    tenants: dict[str, Tenant] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return sorted({*self.tenants, *self.errors})

    def get(self, name: str) -> Tenant:
        """The tenant, or a SettingsError saying why it cannot run (unknown, or badly configured)."""
        if name in self.tenants:
            return self.tenants[name]
        if name in self.errors:
            raise SettingsError(self.errors[name])
        declared = ", ".join(self.names) or "none"
        raise SettingsError(f"{self.path or 'tenants.toml'}: no tenant {name!r} (declared: {declared})")


class _TenantSettings(Settings):
    """Settings from the tenant's table alone: no `LEADSYNC_*` variable and no leadsync.toml leaks in, so
    one team's run can never pick up another team's (or the default team's) token."""

    def __init__(self, **values: Any) -> None:
        BaseSettings.__init__(self, **values)

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   **_: PydanticBaseSettingsSource) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def tenants_path() -> Path | None:
    """`LEADSYNC_TENANTS` (which must exist), else `./tenants.toml` when present."""
    named = os.environ.get(TENANTS_ENV)
    if named:
        if not Path(named).is_file():
            raise SettingsError(f"{TENANTS_ENV}={named}: no such file")
        return Path(named)
    local = Path("tenants.toml")
    return local if local.is_file() else None


def load_tenants(path: Path | str | None = None, environ: Mapping[str, str] | None = None) -> TenantsFile:
    """Read and validate every tenant. A file that is not valid TOML, or has no `[tenants]`, is a
    SettingsError; a tenant that cannot be used is listed in `errors` with the key at fault."""
    path = Path(path) if path is not None else tenants_path()
    if path is None:
        return TenantsFile(None)
    env = os.environ if environ is None else environ
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"{path}: cannot read tenants file: {exc}") from None
    extra = sorted(set(data) - {"defaults", "tenants"})
    if extra:
        raise SettingsError(f"{path}: unknown top-level key(s) {', '.join(extra)} (only [defaults] and [tenants.NAME])")
    declared = data.get("tenants")
    if not isinstance(declared, dict) or not declared:
        raise SettingsError(f"{path}: declares no tenant (add a [tenants.NAME] table)")
    defaults = data.get("defaults") or {}
    out = TenantsFile(path)
    for name in sorted(declared):
        try:
            out.tenants[name] = _tenant(name, _merge(defaults, declared[name]), path, env)
        except SettingsError as exc:
            out.errors[name] = str(exc)
    return out


def _tenant(name: str, table: Any, path: Path, env: Mapping[str, str]) -> Tenant:
    where = f"{path} [tenants.{name}]"
    if not _NAME.match(name):
        raise SettingsError(f"{where}: a tenant name is lower-case letters, digits, '-' and '_' (at most 63)")
    if not isinstance(table, dict):
        raise SettingsError(f"{where}: must be a table of settings")
    values = dict(table)
    schedule = str(values.pop("schedule", DEFAULT_SCHEDULE))
    _check_cron(schedule, where)
    problems: list[str] = []
    values = _resolve_secrets(values, Settings, (), env, where, problems)
    problems += unknown_toml(values, Settings, where)
    url = values.get("state_url")
    if isinstance(url, str) and mask_url(url) != url and "state_url_env" not in table:
        problems.append(f"{where}: state_url holds a password: name the variable that holds the URL instead "
                        "(state_url_env = \"VAR\")")
    if problems:
        raise SettingsError("\n  ".join(problems))
    _relative_to(values, path.parent)
    try:
        settings = _TenantSettings(**values)
    except ValidationError as exc:
        raise SettingsError(describe_errors(exc, where)) from None
    if not settings.configured_sources():
        raise SettingsError(f"{where}: configures no CRM (set hubspot.* and/or salesforce.* credentials)")
    return Tenant(name, settings, schedule)


def _merge(base: Any, over: Any) -> Any:
    """`over` on top of `base`, table by table (a tenant overrides one default setting, keeps the rest)."""
    if not isinstance(base, dict) or not isinstance(over, dict):
        return over
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(base.get(k), v) if k in base else v
    return out


def _check_cron(text: str, where: str) -> None:
    parts = text.split()
    if len(parts) != 5 or not all(_CRON_FIELD.match(p) for p in parts):
        raise SettingsError(f"{where}: schedule {text!r} is not a cron expression of five fields (e.g. '*/15 * * * *')")


def _resolve_secrets(values: dict[str, Any], model: type[BaseModel], at: tuple[str, ...], env: Mapping[str, str],
                     where: str, problems: list[str]) -> dict[str, Any]:
    """`X_env = "VAR"` becomes `X = $VAR` for each secret X; a secret written inline is refused (by key, never
    its value), as is a variable that is not set. Nested sections and lists of them (routing reps) alike."""
    out: dict[str, Any] = {}
    fields = model.model_fields
    for key, value in values.items():
        dotted = ".".join((*at, key))
        if key.endswith("_env") and (key[:-4] in fields or (model is Settings and key == "state_url_env")):
            target = key[:-4]
            if not isinstance(value, str) or not value:
                problems.append(f"{where}: {dotted} must name an environment variable")
            elif value not in env:
                problems.append(f"{where}: {dotted} names {value}, which is not set")
            else:
                out[target] = env[value]
            continue
        info = fields.get(key)
        if info is None:
            out[key] = value
            continue
        if _is_secret(info.annotation):
            problems.append(f"{where}: {dotted} is a secret and is not read from this file: name the environment "
                            f"variable that holds it ({key}_env = \"VAR\")")
            continue
        sub = _section(info.annotation)
        if sub is not None and isinstance(value, dict):
            out[key] = _resolve_secrets(value, sub, (*at, key), env, where, problems)
        elif sub is not None and isinstance(value, list):
            out[key] = [_resolve_secrets(v, sub, (*at, f"{key}[{i}]"), env, where, problems) if isinstance(v, dict)
                        else v for i, v in enumerate(value)]
        else:
            out[key] = value
    return out


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in _args(annotation)


def _section(annotation: Any) -> type[BaseModel] | None:
    """The settings model a field holds directly or as list items, else None."""
    for candidate in (annotation, *_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _args(annotation: Any) -> tuple[Any, ...]:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) in (typing.Union, list):
        return typing.get_args(annotation)
    return ()


def _relative_to(values: dict[str, Any], folder: Path) -> None:
    for keys in _PATHS:
        node: Any = values
        for k in keys[:-1]:
            node = node.get(k) if isinstance(node, dict) else None
        if isinstance(node, dict) and isinstance(node.get(keys[-1]), str):
            p = Path(node[keys[-1]]).expanduser()
            node[keys[-1]] = str(p if p.is_absolute() else folder / p)


def settings_for(name: str = DEFAULT) -> Settings:
    """The settings a command runs one tenant with. Tenant `default` is the environment and leadsync.toml
    (today's single team) unless the tenants file declares a tenant of that name."""
    if name == DEFAULT:
        path = tenants_path()
        found = load_tenants(path) if path else None
        if found is None or DEFAULT not in found.names:
            return Settings()
        return found.get(DEFAULT).settings
    found = load_tenants()
    if found.path is None:
        raise SettingsError(f"--tenant {name}: no tenants file (set {TENANTS_ENV} or add ./tenants.toml)")
    return found.get(name).settings
