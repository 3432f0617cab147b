"""Fixtures for the Dagster tests: the shipped instance YAML in a temporary DAGSTER_HOME, tenants files
pointing at sandboxes, and databases on the suite's throw-away PostgreSQL server."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from sandbox.run import HUBSPOT_TOKEN, SALESFORCE_SESSION, Sandbox
from tests.sync.test_state_postgres import PgServer, pg_server  # noqa: F401  (the session's server)

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "deploy" / "dagster" / "dagster.yaml"
#: The secrets a tenants file names; handed to load_tenants as its environment, never written to the file.
SECRETS = {"SANDBOX_HUBSPOT_TOKEN": HUBSPOT_TOKEN, "SANDBOX_SF_SESSION": SALESFORCE_SESSION}
_numbers = itertools.count(1)


def shipped_instance(home: Path, **overrides: Any):
    """A Dagster instance from deploy/dagster/dagster.yaml (storage: SQLite under `home`), with `overrides`
    replacing top-level keys."""
    import dagster as dg  # here, not at the top: without the extra each test module skips itself
    import yaml

    config = yaml.safe_load(SHIPPED.read_text())
    config.update(overrides)
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return dg.DagsterInstance.from_config(str(home))


def database(server: PgServer) -> str:
    """A fresh database on the session's server; its URL carries no password (a tenants file may hold it)."""
    name = f"leadsync_dg{next(_numbers)}"
    with server.admin() as admin:
        admin.execute(f"CREATE DATABASE {name} TEMPLATE template0")
    return server.url(name, password=None)


def tenant_table(name: str, sb: Sandbox, state_url: str, **extra: str) -> str:
    """A `[tenants.NAME]` table for a sandbox's portal and org: secrets by variable, as the file requires."""
    lines = [f"[tenants.{name}]", f'state_url = "{state_url}"',
             'hubspot.access_token_env = "SANDBOX_HUBSPOT_TOKEN"', f'hubspot.base_url = "{sb.hubspot_url}"',
             'salesforce.session_id_env = "SANDBOX_SF_SESSION"', f'salesforce.instance_url = "{sb.salesforce_url}"',
             f'salesforce.ca_bundle = "{sb.salesforce.ca_pem_path}"']
    lines += [f"{k} = {v}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"
