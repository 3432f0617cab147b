"""The Dagster code location: `dagster dev -m sync.dagster_defs` (needs the `leadsync[dagster]` extra).

Tenants come from `LEADSYNC_TENANTS` (or ./tenants.toml), read when the location loads; reload it in the
UI after editing the file. See sync/orchestrate/ for what the jobs do and README "Many tenants on Dagster".
"""

from __future__ import annotations

from sync.orchestrate.definitions import build_definitions
from sync.tenants import load_tenants

defs = build_definitions(load_tenants())
