"""The code location loads and validates (the `dagster` CLI itself, and in Python), with one job set per
tenant, each tenant's own cadence, and tenants that cannot run still named rather than breaking the load."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

dg = pytest.importorskip("dagster")

from sync.orchestrate.definitions import build_definitions  # noqa: E402
from sync.tenants import load_tenants  # noqa: E402
from tests.dagster.conftest import SHIPPED  # noqa: E402

TENANTS = """
[defaults]
state_url = "sqlite:///{root}/state.db"
hubspot.access_token_env = "TOKEN"
[tenants.acme]
schedule = "0 */2 * * *"
[tenants.beta-co]
[tenants.beta_co]
[tenants.no-token]
hubspot.access_token_env = "UNSET_TOKEN"
[tenants."Not A Name"]
"""


@pytest.fixture
def tenants_file(tmp_path: Path) -> Path:
    path = tmp_path / "tenants.toml"
    path.write_text(TENANTS.format(root=tmp_path))
    return path


def test_dagster_cli_validates_the_module_with_the_shipped_instance(tenants_file, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(SHIPPED, home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "LEADSYNC_TENANTS": str(tenants_file), "TOKEN": "t"}
    done = subprocess.run([str(Path(sys.executable).parent / "dagster"), "definitions", "validate",
                           "-m", "sync.dagster_defs"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "All code locations passed validation" in done.stdout + done.stderr


def test_jobs_schedules_and_sensor_per_tenant(tenants_file):
    defs = build_definitions(load_tenants(tenants_file, environ={"TOKEN": "t"}))
    dg.Definitions.validate_loadable(defs)
    repo = defs.get_repository_def()
    jobs = {j.name for j in repo.get_all_jobs()}
    assert {"sync_acme", "sync_beta_co", "sync_no_token", "backfill_tenants", "backfill_all_tenants"} <= jobs
    assert not any("not_a_name" in j.lower() for j in jobs)
    schedules = {s.name: s.cron_schedule for s in repo.schedule_defs}
    assert schedules == {"sync_acme_schedule": "0 */2 * * *", "sync_beta_co_schedule": "*/15 * * * *"}
    assert defs.get_job_def("sync_acme").tags["leadsync/tenant"] == "acme"
    partitions = defs.get_job_def("backfill_tenants").partitions_def.get_partition_keys()
    assert partitions == ["acme", "beta-co", "no-token"]  # beta_co collides with beta-co's job name
    assert [s.name for s in repo.sensor_defs] == ["leadsync_watch"]
    tick = repo.get_sensor_def("leadsync_watch").evaluate_tick(
        dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral(), repository_def=repo))
    assert not tick.run_requests
    for named in ("Not A Name: ", "beta_co: configuration: its Dagster job name sync_beta_co is also tenant 'beta-co'",
                  "no-token: configuration: ", "UNSET_TOKEN"):
        assert named in tick.skip_message


def test_a_tenants_file_with_no_usable_tenant_still_loads(tmp_path):
    path = tmp_path / "tenants.toml"
    path.write_text('[tenants.only]\nhubspot.access_token_env = "UNSET"\n')
    defs = build_definitions(load_tenants(path, environ={}))
    dg.Definitions.validate_loadable(defs)
    assert not defs.get_repository_def().schedule_defs


def test_a_backfill_since_that_is_no_date_fails_without_a_retry(tenants_file):
    defs = build_definitions(load_tenants(tenants_file, environ={"TOKEN": "t"}))
    result = defs.get_job_def("backfill_tenants").execute_in_process(
        partition_key="acme", raise_on_error=False,
        run_config={"ops": {"backfill_tenant": {"config": {"since": "last tuesday"}}}})
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "since 'last tuesday': expected an ISO date" in failure.event_specific_data.error.message
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
