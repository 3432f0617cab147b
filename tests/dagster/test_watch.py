"""Pauses, busy tenants and the watch sensor: `paused: quota` is a success that reports its metadata and is
re-launched once; a tenant another run is writing is retried; what needs a person is named."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

dg = pytest.importorskip("dagster")

from sandbox.run import start_sandbox  # noqa: E402
from sync.lock import writer_lock  # noqa: E402
from sync.orchestrate.definitions import build_definitions  # noqa: E402
from sync.orchestrate.watch import Finished, review  # noqa: E402
from sync.state import State  # noqa: E402
from sync.tenants import load_tenants  # noqa: E402
from tests.dagster.conftest import SECRETS, database, shipped_instance, tenant_table  # noqa: E402

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def capped(pg_server, tmp_path_factory):
    """One tenant whose HubSpot budget (3 calls a run) pauses every run; Salesforce left out."""
    sb = start_sandbox(contacts=60, seed=31)
    root = tmp_path_factory.mktemp("capped")
    url = database(pg_server)
    table = tenant_table("capped", sb, url, **{"hubspot.max_calls_per_run": "3"})
    table = "\n".join(line for line in table.splitlines() if not line.startswith("salesforce."))
    (root / "tenants.toml").write_text(table + "\n")
    defs = build_definitions(load_tenants(root / "tenants.toml", environ=SECRETS),
                             retry=dg.RetryPolicy(max_retries=1, delay=0))
    yield {"defs": defs, "instance": shipped_instance(root / "home"), "url": url}
    sb.stop()


def test_paused_on_budget_succeeds_with_metadata_and_is_relaunched_once(capped):
    defs, instance = capped["defs"], capped["instance"]
    result = defs.get_job_def("backfill_tenants").execute_in_process(
        instance=instance, partition_key="capped", raise_on_error=False)
    assert result.success
    (out,) = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    meta = {k: v.value for k, v in out.event_specific_data.metadata.items()}
    assert meta["status"] == "paused" and meta["runs"]["hubspot"]["status"] == "paused: quota"
    assert "budget: 3 API calls per run spent" in meta["runs"]["hubspot"]["message"]
    assert meta["api_calls"] == sum(meta["calls_by_phase"]["hubspot"].values()) == 3
    tags = result.dagster_run.tags
    assert (tags["leadsync/status"], tags["leadsync/pause"]) == ("paused", "budget")

    repo = defs.get_repository_def()
    sensor = repo.get_sensor_def("leadsync_watch")
    ticks = [sensor.evaluate_tick(dg.build_sensor_context(instance=instance, repository_def=repo)) for _ in range(2)]
    keys = [[r.run_key for r in tick.run_requests] for tick in ticks]
    assert keys[0] == keys[1] == [f"resume-{result.run_id}"]  # one key per pause: the daemon launches it once
    (request,) = ticks[0].run_requests
    assert request.job_name == "backfill_tenants" and request.partition_key == "capped"
    assert request.run_config["ops"]["backfill_tenant"]["config"] == {"resume": True}
    assert request.tags["leadsync/tenant"] == "capped"


def test_a_tenant_busy_elsewhere_is_retried_then_fails(capped):
    holder = State(capped["url"], tenant="capped")
    try:
        with writer_lock(holder, "hubspot"):
            result = capped["defs"].get_job_def("sync_capped").execute_in_process(
                instance=capped["instance"], raise_on_error=False)
    finally:
        holder.close()
    assert not result.success
    (retried,) = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert "another run holds the writer lock of hubspot" in retried.event_specific_data.error.cause.message
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failure.event_specific_data.user_failure_data.metadata["busy"].value == ["hubspot"]
    assert result.dagster_run.tags["leadsync/status"] == "busy"


def _finished(tenant: str, ended: datetime, succeeded: bool = True, **tags: str) -> Finished:
    return Finished(tenant, f"run-{tenant}", succeeded, ended, {"leadsync/kind": "sync", **tags})


def test_review_relaunches_when_the_window_allows_and_names_what_needs_a_person():
    runs = [
        _finished("budget", T0, **{"leadsync/status": "paused", "leadsync/pause": "budget"}),
        _finished("daily", T0, **{"leadsync/status": "paused", "leadsync/pause": "quota",
                                  "leadsync/attention": "quota"}),
        _finished("held", T0, **{"leadsync/status": "partial", "leadsync/held_failures": "4",
                                 "leadsync/identity_conflicts": "2"}),
        _finished("failed", T0, succeeded=False, **{"leadsync/status": "error"}),
    ]
    soon, lines = review(runs, {"broken": "tenants.toml [tenants.broken]: hubspot.access_token_env …"},
                         T0 + timedelta(minutes=30))
    assert [(r.tenant, r.run_key) for r in soon] == [("budget", "resume-run-budget")]
    later, _ = review(runs, {}, T0 + timedelta(minutes=61))
    assert [r.tenant for r in later] == ["budget", "daily"]
    assert lines[0].startswith("broken: configuration: ")
    text = "\n".join(lines)
    assert "held: 4 changes held" in text and "held: 2 identity conflicts" in text
    assert "failed: run run-failed failed (error)" in text and "daily: paused on the CRM's daily" in text
