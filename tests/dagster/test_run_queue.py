"""The shipped instance configuration (deploy/dagster/dagster.yaml) queues a second run of one tenant while
another tenant's run goes ahead: the real QueuedRunCoordinator and its daemon's dequeue iteration. Only the
run launcher is Dagster's test launcher (it records the launch instead of starting a process)."""

from __future__ import annotations

from pathlib import Path

import pytest

dg = pytest.importorskip("dagster")

import yaml  # noqa: E402
from dagster._core.remote_origin import InProcessCodeLocationOrigin  # noqa: E402
from dagster._core.test_utils import create_test_daemon_workspace_context  # noqa: E402
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin  # noqa: E402
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget  # noqa: E402
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon  # noqa: E402

from sync.orchestrate.definitions import build_definitions  # noqa: E402
from sync.tenants import load_tenants  # noqa: E402
from tests.dagster.conftest import SHIPPED, shipped_instance  # noqa: E402

TENANTS = """
[defaults]
state_url = "sqlite:///{root}/state.db"
hubspot.access_token_env = "TOKEN"
[tenants.alpha]
[tenants.beta]
"""
LOCATION = """
from sync.orchestrate.definitions import build_definitions
from sync.tenants import load_tenants

defs = build_definitions(load_tenants({path!r}, environ={{"TOKEN": "t"}}))
"""


def test_both_instance_files_agree_below_storage():
    local = yaml.safe_load(SHIPPED.read_text())
    production = yaml.safe_load((SHIPPED.parent / "dagster-postgres.yaml").read_text())
    assert production.pop("storage") == {"postgres": {"postgres_url": {"env": "DAGSTER_PG_URL"}}}
    assert production == local


def test_a_second_run_of_one_tenant_waits_while_another_tenant_runs(tmp_path: Path):
    (tmp_path / "tenants.toml").write_text(TENANTS.format(root=tmp_path))
    (tmp_path / "location.py").write_text(LOCATION.format(path=str(tmp_path / "tenants.toml")))
    instance = shipped_instance(tmp_path / "home", run_launcher={
        "module": "dagster._core.test_utils", "class": "MockedRunLauncher"})
    assert isinstance(instance.run_coordinator, dg.QueuedRunCoordinator)
    target = InProcessWorkspaceLoadTarget(InProcessCodeLocationOrigin(
        LoadableTargetOrigin(python_file=str(tmp_path / "location.py"), attribute="defs"), location_name="leadsync"))
    daemon = QueuedRunCoordinatorDaemon(interval_seconds=1)
    with create_test_daemon_workspace_context(target, instance) as workspace_process:
        workspace = workspace_process.create_request_context()
        location = workspace.get_code_location("leadsync")
        (repo_name,) = location.get_repositories()
        repo = location.get_repository(repo_name)
        defs = build_definitions(load_tenants(tmp_path / "tenants.toml", environ={"TOKEN": "t"}))

        def submit(job_name: str, partition: str | None = None) -> str:
            """A run as the UI, a schedule or a backfill submits it: the job's tags, and the partition's."""
            remote = repo.get_full_job(job_name)
            job = defs.get_job_def(job_name)
            tags = dict(job.run_tags)
            if partition:
                tags |= job.run_request_for_partition(partition_key=partition).tags
            run = instance.create_run_for_job(job, tags=tags, remote_job_origin=remote.get_remote_origin(),
                                              job_code_origin=remote.get_python_origin())
            instance.submit_run(run.run_id, workspace)
            return run.run_id

        def dequeue() -> set[str]:
            list(daemon.run_iteration(workspace_process))
            return {r.run_id for r in instance.run_launcher.queue()}

        alpha_sync = submit("sync_alpha")
        alpha_backfill = submit("backfill_tenants", "alpha")  # the same tenant: must wait
        beta_backfill = submit("backfill_tenants", "beta")  # another tenant: goes ahead
        assert dequeue() == {alpha_sync, beta_backfill}
        assert instance.get_run_by_id(alpha_backfill).status == dg.DagsterRunStatus.QUEUED
        assert dequeue() == {alpha_sync, beta_backfill}  # still waiting while alpha's first run is in progress
        instance.report_run_failed(instance.get_run_by_id(alpha_sync))
        assert dequeue() == {alpha_sync, beta_backfill, alpha_backfill}
